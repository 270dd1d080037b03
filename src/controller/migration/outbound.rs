//! One outbound live migration per source host (the pre-check's "live migration of VM X from
//! this unit is running"), held also for requests that arrive at the same moment: the source
//! unit's inventory shows a migration only once its job started, so two requests checked side
//! by side would both pass. The active controller claims the source host before the pre-check
//! and holds the claim until the migration ended; migrations of one operation (an evacuation)
//! share it. After a failover the units' own inventories are the record again.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
struct Claim {
    /// The evacuation the migrations belong to; empty: a lone migration.
    operation: String,
    /// The VM that claimed the host first (named in a refusal).
    vm: String,
    holders: usize,
}

/// The source hosts with an outbound migration running or about to start.
#[derive(Clone, Default)]
pub struct OutboundClaims(Arc<Mutex<BTreeMap<String, Claim>>>);

/// Held while a migration out of `host` runs; dropping it gives the host back.
pub struct OutboundClaim {
    claims: OutboundClaims,
    host: String,
}

impl OutboundClaims {
    /// Claims `host` for `vm`'s migration of `operation`; the VM of the migration that holds
    /// it already (for another operation) when it cannot be claimed.
    pub fn claim(&self, host: &str, operation: &str, vm: &str) -> Result<OutboundClaim, String> {
        let mut claims = self.0.lock().expect("outbound claims");
        match claims.get_mut(host) {
            Some(c) if !operation.is_empty() && c.operation == operation => c.holders += 1,
            Some(c) => return Err(c.vm.clone()),
            None => {
                let claim = Claim { operation: operation.into(), vm: vm.into(), holders: 1 };
                claims.insert(host.into(), claim);
            }
        }
        Ok(OutboundClaim { claims: self.clone(), host: host.into() })
    }

    /// The VM whose migration holds `host` for another operation than `operation`, if any.
    pub fn holder(&self, host: &str, operation: &str) -> Option<String> {
        let claims = self.0.lock().expect("outbound claims");
        claims.get(host).filter(|c| operation.is_empty() || c.operation != operation).map(|c| c.vm.clone())
    }
}

impl Drop for OutboundClaim {
    fn drop(&mut self) {
        let mut claims = self.claims.0.lock().expect("outbound claims");
        if let Some(c) = claims.get_mut(&self.host) {
            c.holders -= 1;
            if c.holders == 0 {
                claims.remove(&self.host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lone_migration_out_of_a_host_is_refused_until_the_first_ended() {
        let claims = OutboundClaims::default();
        let first = claims.claim("host-1", "", "vm-1-1").unwrap();
        assert_eq!(claims.claim("host-1", "", "vm-1-2").err(), Some("vm-1-1".into()));
        assert_eq!(claims.holder("host-1", ""), Some("vm-1-1".into()));
        let other_host = claims.claim("host-2", "", "vm-2-1");
        assert!(other_host.is_ok(), "another source host is free");
        drop(first);
        assert!(claims.claim("host-1", "", "vm-1-2").is_ok());
    }

    #[test]
    fn migrations_of_one_evacuation_share_the_host() {
        let claims = OutboundClaims::default();
        let a = claims.claim("host-1", "evacuate-host-1", "vm-1-1").unwrap();
        let b = claims.claim("host-1", "evacuate-host-1", "vm-1-2").unwrap();
        assert_eq!(claims.holder("host-1", "evacuate-host-1"), None);
        assert_eq!(claims.claim("host-1", "", "vm-1-3").err(), Some("vm-1-1".into()));
        drop(a);
        assert_eq!(claims.claim("host-1", "", "vm-1-3").err(), Some("vm-1-1".into()), "b still runs");
        drop(b);
        assert_eq!(claims.holder("host-1", ""), None);
    }
}
