//! An SU cluster's status and the `/RECOVER-VM-DEFINITION` lease rule (seed 001 §3.4, §5),
//! pure over what the HSDB holds: each unit's last alive message and the health of its VIOSs.
//!
//! * INACTIVE: deactivated by an administrator — no live migration.
//! * ERROR: a unit wrote no alive message within the lease (powered off, dead, cut off): the
//!   cluster function, live migration, is not fulfilled.
//! * WARNING: both units are alive but one has lost a VIOS — redundancy is not fully given.
//! * NORMAL: everything is available.
//!
//! A definition owned by the other unit may be recovered only when that unit's lease expired:
//! while it still writes alive messages it may be running the VM (the fence against a VM
//! defined and run twice).
use crate::domain::{SuClusterStatus, UnitHeartbeat};
use std::time::Duration;

/// One unit of the cluster, as the controller sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFacts {
    pub host: String,
    /// Since its last alive message; `None`: it never wrote one.
    pub alive_age: Option<Duration>,
    /// Its VIOSs whose host monitor heartbeats are current.
    pub healthy_vios: usize,
    pub vios: usize,
}

pub fn heartbeat(unit: &UnitFacts, lease: Duration) -> UnitHeartbeat {
    match unit.alive_age {
        Some(age) if age <= lease => UnitHeartbeat::Normal,
        _ => UnitHeartbeat::NotAccessible,
    }
}

pub fn status(active: bool, units: &[UnitFacts], lease: Duration) -> SuClusterStatus {
    if !active {
        return SuClusterStatus::Inactive;
    }
    if units.iter().any(|u| heartbeat(u, lease) == UnitHeartbeat::NotAccessible) {
        return SuClusterStatus::Error;
    }
    if units.iter().any(|u| u.healthy_vios < u.vios) {
        return SuClusterStatus::Warning;
    }
    SuClusterStatus::Normal
}

/// The events of a change, in the seed's texts: each unit's heartbeat that changed, then the
/// cluster's state.
pub fn transitions(
    name: &str,
    before: (SuClusterStatus, &[UnitHeartbeat]),
    after: (SuClusterStatus, &[UnitHeartbeat]),
    hosts: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let (old, new) = (before.1.get(i).copied().unwrap_or_default(), after.1.get(i).copied().unwrap_or_default());
        if old != new {
            out.push(format!("Network heartbeat of unit '{host}' changed from '{old}' to '{new}'"));
        }
    }
    if before.0 != after.0 {
        out.push(format!("Cluster state of '{name}' changed from '{}' to '{}'", before.0, after.0));
    }
    out
}

/// May the definitions of `remote` be taken over? Only once its lease expired.
pub fn may_recover(remote: &UnitFacts, lease: Duration) -> Result<(), String> {
    match remote.alive_age {
        Some(age) if age <= lease => Err(format!(
            "host {} wrote an alive message {} ms ago (lease {} ms): it may still run its VMs, so its \
             definitions stay with it",
            remote.host,
            age.as_millis(),
            lease.as_millis()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(1500);

    fn unit(host: &str, alive_ms: Option<u64>, healthy_vios: usize) -> UnitFacts {
        UnitFacts { host: host.into(), alive_age: alive_ms.map(Duration::from_millis), healthy_vios, vios: 2 }
    }

    #[test]
    fn the_status_follows_the_seeds_rules() {
        let both = [unit("A", Some(100), 2), unit("B", Some(200), 2)];
        assert_eq!(status(true, &both, LEASE), SuClusterStatus::Normal);
        assert_eq!(status(false, &both, LEASE), SuClusterStatus::Inactive, "deactivated wins");
        let one_vios = [unit("A", Some(100), 1), unit("B", Some(200), 2)];
        assert_eq!(status(true, &one_vios, LEASE), SuClusterStatus::Warning);
        let silent = [unit("A", Some(100), 1), unit("B", Some(1600), 2)];
        assert_eq!(status(true, &silent, LEASE), SuClusterStatus::Error, "a unit gone is worse than a VIOS");
        let never = [unit("A", Some(100), 2), unit("B", None, 2)];
        assert_eq!(status(true, &never, LEASE), SuClusterStatus::Error);
    }

    #[test]
    fn changes_are_told_in_the_seeds_words() {
        let hosts = ["A".to_string(), "B".to_string()];
        let before = (SuClusterStatus::Normal, &[UnitHeartbeat::Normal, UnitHeartbeat::Normal][..]);
        let after = (SuClusterStatus::Error, &[UnitHeartbeat::Normal, UnitHeartbeat::NotAccessible][..]);
        assert_eq!(
            transitions("SUC", before, after, &hosts),
            [
                "Network heartbeat of unit 'B' changed from 'NORMAL' to 'NOT_ACCESSIBLE'",
                "Cluster state of 'SUC' changed from 'NORMAL' to 'ERROR'",
            ]
        );
        assert!(transitions("SUC", before, before, &hosts).is_empty());
    }

    #[test]
    fn a_definition_is_recovered_only_after_the_lease() {
        assert!(may_recover(&unit("B", Some(200), 2), LEASE).unwrap_err().contains("alive message 200 ms ago"));
        assert!(may_recover(&unit("B", Some(1501), 0), LEASE).is_ok());
        assert!(may_recover(&unit("B", None, 0), LEASE).is_ok(), "never alive: nothing to fence");
    }
}
