//! Per-site guest network identity (seed 000 §2.4, `vmr_dr_ip_conf` / `ghostdev`): a VM keeps
//! its hostname and address at the other site unless told otherwise; where the sites' networks
//! differ, the administrator sets an identity per site, the controller expands it into a map
//! from each host's serial to the identity (what the seed's `setup_dr_hosts.cfg` stanzas hold),
//! the map travels with the VM's definition, and the VM agent applies the entry of the host it
//! boots on before the VM's applications start.
use crate::error::{Result, VmrmError, quote};
use crate::pb;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Most entries a guest's identity map holds (hosts of both sites).
pub const MAX_IDENTITIES: usize = 1024;

/// A hostname and an IPv4 configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkIdentity {
    pub hostname: String,
    pub ip: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// One entry of a guest's map: the host's serial and the identity the guest takes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestIdentity {
    pub serial: String,
    pub identity: NetworkIdentity,
}

fn address(what: &str, raw: &str) -> Result<Ipv4Addr> {
    raw.parse().map_err(|_| VmrmError::invalid(format!("{what} `{}` is not an IPv4 address", quote(raw))))
}

impl NetworkIdentity {
    /// An identity from an administrator's words: a hostname (1 to 63 letters, digits or `-`
    /// per label, not starting or ending with `-`), an address, a netmask and a gateway.
    pub fn parse(hostname: &str, ip: &str, netmask: &str, gateway: &str) -> Result<Self> {
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if hostname.len() > 253 || !hostname.split('.').all(label_ok) {
            return Err(VmrmError::invalid(format!("`{}` is not a hostname", quote(hostname))));
        }
        let netmask = address("netmask", netmask)?;
        if u32::from(netmask).leading_ones() != u32::from(netmask).count_ones() {
            return Err(VmrmError::invalid(format!("netmask {netmask} is not a contiguous mask")));
        }
        Ok(Self {
            hostname: hostname.to_string(),
            ip: address("ip", ip)?,
            netmask,
            gateway: address("gateway", gateway)?,
        })
    }

    /// What the guest writes for its network (the seed's `ifcfg-net0` and `hostname`).
    pub fn config_file(&self) -> String {
        format!("HOSTNAME={}\nIPADDR={}\nNETMASK={}\nGATEWAY={}\n", self.hostname, self.ip, self.netmask, self.gateway)
    }
}

impl From<&GuestIdentity> for pb::GuestIdentity {
    fn from(g: &GuestIdentity) -> Self {
        let i = &g.identity;
        Self {
            serial: g.serial.clone(),
            hostname: i.hostname.clone(),
            ip: i.ip.to_string(),
            netmask: i.netmask.to_string(),
            gateway: i.gateway.to_string(),
        }
    }
}

impl TryFrom<&pb::GuestIdentity> for GuestIdentity {
    type Error = VmrmError;
    fn try_from(g: &pb::GuestIdentity) -> Result<Self> {
        uuid::Uuid::parse_str(&g.serial)
            .map_err(|_| VmrmError::invalid(format!("`{}` is not a host serial", quote(&g.serial))))?;
        let identity = NetworkIdentity::parse(&g.hostname, &g.ip, &g.netmask, &g.gateway)?;
        Ok(Self { serial: g.serial.clone(), identity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_a_hostname_and_addresses() {
        let id = NetworkIdentity::parse("rt11006b", "10.40.1.6", "255.255.255.0", "10.40.1.1").unwrap();
        assert_eq!(id.config_file(), "HOSTNAME=rt11006b\nIPADDR=10.40.1.6\nNETMASK=255.255.255.0\nGATEWAY=10.40.1.1\n");
        for (h, ip, mask) in [
            ("-bad", "10.0.0.1", "255.0.0.0"),
            ("a/b", "10.0.0.1", "255.0.0.0"),
            ("ok", "10.0.0.300", "255.0.0.0"),
            ("ok", "10.0.0.1", "255.0.255.0"),
            ("", "10.0.0.1", "255.0.0.0"),
        ] {
            assert!(NetworkIdentity::parse(h, ip, mask, "10.0.0.254").is_err(), "{h} {ip} {mask}");
        }
        let wire = pb::GuestIdentity { serial: "not-a-uuid".into(), ..Default::default() };
        assert!(GuestIdentity::try_from(&wire).is_err());
    }
}
