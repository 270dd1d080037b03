//! Configuration snapshots (seed 000 §3.9: `ksysmgr add snapshot`, named
//! `<cluster>_BASIC_<YYYY-MM-DD_HH:MM:SS>`): the cluster's configuration and policies — not its
//! running state — as one JSON document, kept in the HSDB and written where the administrator
//! says, and restored onto a fresh cluster. A snapshot that comes back from a file is checked
//! whole before anything is written: its format, every name, every setting's range, its size.
use super::names::{AffinityGroupName, ClusterName, HmcName, HostGroupName, HostName, UserName, VmName};
use super::notify::{CONTACTS_PER_USER, Contact, NotificationSettings, USERS_MAX};
use super::{AffinityGroupRecord, DetectionSettings, DetectionSpeed, FlexCapacity, HaMonitor, HmcRecord};
use super::{NotifyRecord, Priority, RestartPolicy};
use crate::error::{Result, VmrmError};
use serde::{Deserialize, Serialize};

/// The format this version writes and reads.
pub const FORMAT: &str = "vmrm-snapshot-1";
/// The largest snapshot read back (a thousand hosts' configuration is far below it).
pub const SNAPSHOT_MAX_BYTES: usize = 1024 * 1024;
/// The snapshots kept in the HSDB; the oldest goes when one more is taken.
pub const KEPT: usize = 8;

/// The configuration as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSnapshot {
    pub format: String,
    pub name: String,
    pub taken_ms: i64,
    pub cluster: String,
    pub ksysnodes: Vec<String>,
    pub system: SystemPolicies,
    /// With their login: a restored cluster reaches them without asking again.
    pub hmcs: Vec<HmcRecord>,
    pub hosts: Vec<HostPolicies>,
    pub host_groups: Vec<HostGroupPolicies>,
    pub vms: Vec<VmPolicies>,
    pub affinity: Vec<AffinityGroupRecord>,
    pub contacts: Vec<NotifyRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemPolicies {
    pub detection: DetectionSettings,
    pub ha_monitor: HaMonitor,
    pub notification: NotificationSettings,
    #[serde(default)]
    pub discovery: super::DiscoverySchedule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPolicies {
    pub name: String,
    pub ha_monitor: HaMonitor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroupPolicies {
    pub name: String,
    pub hosts: Vec<String>,
    pub repo_disk: Option<String>,
    pub ha_disk: Option<String>,
    pub detection: DetectionSettings,
    pub restart_policy: RestartPolicy,
    pub capacity: FlexCapacity,
    pub ha_monitor: HaMonitor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmPolicies {
    pub name: String,
    pub managed: bool,
    pub priority: Priority,
    pub homehost: String,
    pub blacklist_hosts: Vec<String>,
    pub ha_monitor: HaMonitor,
    pub vm_failure_detection_speed: Option<DetectionSpeed>,
}

/// A snapshot as the HSDB keeps it (table `snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub name: String,
    pub taken_ms: i64,
    /// The snapshot's JSON, as written to a file.
    pub content: String,
}

/// `<cluster>_BASIC_<YYYY-MM-DD_HH:MM:SS>` (UTC), the seed's name.
pub fn snapshot_name(cluster: &str, taken_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(taken_ms)
        .map_or_else(|| taken_ms.to_string(), |t| t.format("%Y-%m-%d_%H:%M:%S").to_string());
    format!("{cluster}_BASIC_{at}")
}

impl ConfigSnapshot {
    /// A snapshot read back: JSON of this format, at most [`SNAPSHOT_MAX_BYTES`], whose every
    /// name and setting is one vmrm takes (`InvalidArgument` naming the first that is not).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > SNAPSHOT_MAX_BYTES {
            return Err(VmrmError::invalid(format!(
                "the snapshot is {} bytes: at most {SNAPSHOT_MAX_BYTES} are read",
                bytes.len()
            )));
        }
        let snapshot: Self = serde_json::from_slice(bytes)
            .map_err(|e| VmrmError::invalid(format!("not a vmrm configuration snapshot: {e}")))?;
        if snapshot.format != FORMAT {
            return Err(VmrmError::invalid(format!(
                "snapshot format `{}` is not {FORMAT}",
                crate::error::quote(&snapshot.format)
            )));
        }
        snapshot.check()?;
        Ok(snapshot)
    }

    fn check(&self) -> Result<()> {
        ClusterName::parse(&self.cluster)?;
        HostName::all(&self.ksysnodes)?;
        for hmc in &self.hmcs {
            HmcName::parse(&hmc.name)?;
            if hmc.login.is_empty() || hmc.password.is_empty() || !crate::transport::is_endpoint(&hmc.ip) {
                return Err(VmrmError::invalid(format!("HMC {}: needs a login, a password and an address", hmc.name)));
            }
        }
        for host in &self.hosts {
            HostName::parse(&host.name)?;
        }
        for group in &self.host_groups {
            HostGroupName::parse(&group.name)?;
            HostName::all(&group.hosts)?;
            for p in [&group.capacity.cpu, &group.capacity.memory] {
                if [p.high, p.medium, p.low].iter().any(|v| !(1..=100).contains(v)) {
                    return Err(VmrmError::invalid(format!("host_group {}: a capacity not in 1-100", group.name)));
                }
            }
        }
        for vm in &self.vms {
            VmName::parse(&vm.name)?;
            HostName::parse(&vm.homehost)?;
            HostName::all(&vm.blacklist_hosts)?;
        }
        for group in &self.affinity {
            AffinityGroupName::parse(&group.name)?;
            VmName::all(&group.vms)?;
        }
        if self.contacts.len() > USERS_MAX {
            return Err(VmrmError::invalid(format!("more than {USERS_MAX} users with contacts")));
        }
        for user in &self.contacts {
            UserName::parse(&user.user)?;
            if user.contacts.len() > CONTACTS_PER_USER {
                return Err(VmrmError::invalid(format!("user {}: more than {CONTACTS_PER_USER} contacts", user.user)));
            }
            user.contacts.iter().try_for_each(|c| Contact::parse(c).map(drop))?;
        }
        let hosts: std::collections::BTreeSet<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        let grouped = self.host_groups.iter().flat_map(|g| &g.hosts);
        if let Some(h) = grouped.clone().find(|h| !hosts.contains(h.as_str())) {
            return Err(VmrmError::invalid(format!("host {h} is in a host group but not among the hosts")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> ConfigSnapshot {
        ConfigSnapshot {
            format: FORMAT.into(),
            name: snapshot_name("ITSO_HA", 1_543_332_226_000),
            taken_ms: 1_543_332_226_000,
            cluster: "ITSO_HA".into(),
            ksysnodes: vec!["ksys1".into()],
            system: SystemPolicies {
                detection: DetectionSettings::default(),
                ha_monitor: Some(true),
                notification: NotificationSettings::default(),
                discovery: Default::default(),
            },
            hmcs: vec![HmcRecord {
                name: "hmc1".into(),
                ip: "127.0.0.1:7201".into(),
                login: "u".into(),
                password: "p".into(),
                site: None,
            }],
            hosts: vec![HostPolicies { name: "host-1".into(), ha_monitor: None }],
            host_groups: vec![HostGroupPolicies {
                name: "HG1".into(),
                hosts: vec!["host-1".into()],
                repo_disk: None,
                ha_disk: None,
                detection: DetectionSettings::default(),
                restart_policy: RestartPolicy::AdvisoryMode,
                capacity: FlexCapacity::default(),
                ha_monitor: None,
            }],
            vms: vec![],
            affinity: vec![],
            contacts: vec![NotifyRecord { user: "ops".into(), contacts: vec!["ops@example.com".into()] }],
        }
    }

    #[test]
    fn the_seeds_name_and_a_round_trip() {
        assert_eq!(snapshot_name("oldclust", 1_543_332_226_000), "oldclust_BASIC_2018-11-27_15:23:46");
        let s = sample();
        assert_eq!(ConfigSnapshot::parse(&serde_json::to_vec(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn a_bad_snapshot_is_refused_whole() {
        let bad = |edit: fn(&mut ConfigSnapshot)| {
            let mut s = sample();
            edit(&mut s);
            ConfigSnapshot::parse(&serde_json::to_vec(&s).unwrap()).unwrap_err().to_string()
        };
        assert!(bad(|s| s.format = "vmrm-snapshot-9".into()).contains("is not vmrm-snapshot-1"));
        assert!(bad(|s| s.hosts[0].name = "../etc".into()).contains("not a valid host name"));
        assert!(bad(|s| s.host_groups[0].capacity.cpu.low = 0).contains("1-100"));
        assert!(bad(|s| s.contacts[0].contacts[0] = "nobody".into()).contains("not an e-mail address"));
        assert!(bad(|s| s.host_groups[0].hosts.push("host-9".into())).contains("host-9 is in a host group"));
        assert!(bad(|s| s.hmcs[0].password.clear()).contains("needs a login"));
        let e = ConfigSnapshot::parse(b"{\"format\": \"vmrm-snapshot-1\", \"extra\": 1}").unwrap_err();
        assert!(e.to_string().contains("not a vmrm configuration snapshot"), "{e}");
        let e = ConfigSnapshot::parse(&vec![b' '; SNAPSHOT_MAX_BYTES + 1]).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
