//! First-failure data capture (seed 003) as stored in the HSDB: the cluster's incidents, each
//! node's bundle for one (its manifest and its chunks), the nodes registered to capture, and
//! the administrator's FFDC settings. One incident holds what every node saw at the moment a
//! trigger fired, so support reads one place instead of every node's log files.
use crate::error::{Result, VmrmError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use strum::{Display, EnumString, VariantArray};

/// What made a node open an incident (seed 003 §2.1: life cycle events, fabric loss, I/O
/// failures, resource alerts, periodic and manual dumps; the DBN change is ours).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Display, EnumString, VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FfdcTrigger {
    /// A registered node stopped answering (seed: complete failure of a VIOS).
    NodeFailed,
    /// A node registered for the first time, or again after it had left or failed.
    NodeAdded,
    /// A node left the cluster (it stopped on purpose and said so).
    NodeRemoved,
    /// A node lost its path to the storage (seed X1: the SAN).
    StorageLoss,
    /// A node lost its path to the HSDB (seed X3: the VIOS DB).
    HsdbLoss,
    /// An I/O to the SAN failed for another reason than the path (seed: I/O failure).
    IoFailure,
    /// A class of calls to another node kept failing.
    RpcFailure,
    /// A shared resource crossed its threshold (seed FIG. 8: a storage pool's use).
    ResourceThreshold,
    /// The administrator's periodic collection.
    Periodic,
    /// A cluster dump asked for by hand (`ksysmgr add ffdc`).
    Manual,
    /// Another HSDB member became the DBN.
    DbnChanged,
}

impl FfdcTrigger {
    /// Whether incidents of this trigger for one subject coalesce within the window: a manual
    /// dump is always its own incident, a periodic one is one per period anyway.
    pub fn coalesces(self) -> bool {
        !matches!(self, Self::Manual | Self::Periodic)
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentState {
    /// Contributions are still expected.
    Open,
    /// Every expected node contributed.
    Complete,
    /// The capture deadline passed with nodes missing (listed in the record).
    Partial,
}

/// One incident: what fired, where, who is expected to contribute (the registered nodes when
/// it was opened) and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FfdcIncidentRecord {
    /// Sorts by time: `YYYYMMDD-HHMMSS.mmm-<trigger>-<subject>`.
    pub id: String,
    pub trigger: FfdcTrigger,
    /// The node, link, resource or request the trigger is about.
    pub subject: String,
    /// The node that detected it.
    pub origin: String,
    /// The node that wrote the incident: the origin, or a peer it handed its report to.
    pub opened_by: String,
    pub detail: String,
    pub detected_at_ms: i64,
    /// Contributions arriving after this are still kept, but the incident is settled then.
    pub deadline_ms: i64,
    pub expected: Vec<String>,
    pub state: IncidentState,
    /// The expected nodes that had not contributed at the deadline.
    #[serde(default)]
    pub missing: Vec<String>,
    /// The bytes of its bundles, counted when it was settled.
    #[serde(default)]
    pub bytes: u64,
}

/// One node's contribution to an incident: the manifest of its chunks, written after them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FfdcBundleRecord {
    pub incident: String,
    /// The node whose diagnostics these are.
    pub node: String,
    /// The node that stored them: `node` itself, or the peer it handed them to (seed 003 §2.7).
    pub captured_by: String,
    pub captured_at_ms: i64,
    pub chunks: u32,
    pub bytes: u64,
    /// SHA-256 of the whole bundle, hex.
    pub sha256: String,
    /// The bundle was cut at the per-node cap (its text ends with a marker saying so).
    pub truncated: bool,
}

impl FfdcBundleRecord {
    pub fn key_of(incident: &str, node: &str) -> String {
        format!("{incident}/{node}")
    }
}

/// One piece of a bundle, small enough for one Raft entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FfdcChunkRecord {
    pub incident: String,
    pub node: String,
    pub captured_by: String,
    pub no: u32,
    /// The chunk's bytes, base64.
    pub data: String,
}

impl FfdcChunkRecord {
    pub fn key_of(incident: &str, node: &str, no: u32) -> String {
        format!("{incident}/{node}/{no:05}")
    }
}

/// A node that captures for incidents (seed 003 §1.6: the event listener registers with the
/// VIOS DB at start). The registrations are who an incident expects and who is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FfdcNodeRecord {
    pub node: String,
    /// Where its `Ffdc` service answers.
    pub endpoint: String,
    pub roles: Vec<String>,
    /// Changes at each start of the node.
    pub incarnation: String,
    pub registered_at_ms: i64,
    /// It stopped on purpose and said so: not expected in incidents until it registers again.
    #[serde(default)]
    pub left: bool,
    /// When the active controller found it not answering (cleared when it registers again).
    #[serde(default)]
    pub failed_at_ms: Option<i64>,
}

impl FfdcNodeRecord {
    /// Whether incidents expect its contribution: it neither left nor failed.
    pub fn expected(&self) -> bool {
        !self.left && self.failed_at_ms.is_none()
    }
}

/// The administrator's FFDC settings (`ksysmgr modify ffdc …`), one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FfdcSettings {
    /// The triggers that open incidents; the others are ignored.
    pub triggers: BTreeSet<FfdcTrigger>,
    /// Seconds between periodic collections; 0: none.
    pub periodic_secs: u64,
    /// Percent of the HSDB's quota whose crossing opens a resource incident.
    pub hsdb_threshold_pct: u8,
    /// The threshold is armed again only once use fell this many points under it.
    pub hysteresis_pct: u8,
    /// One incident per trigger and subject within this many seconds.
    pub coalesce_secs: u64,
    /// Seconds the nodes have to contribute before an incident is settled.
    pub deadline_secs: u64,
    /// MiB all incidents may hold; the oldest settled ones are evicted beyond it.
    pub quota_mib: u64,
    /// KiB one node's bundle may hold (cut beyond, with a marker).
    pub node_cap_kib: u64,
    /// MiB one incident's bundles may hold together: each node gets an equal share of it.
    #[serde(default = "default_incident_cap_mib")]
    pub incident_cap_mib: u64,
}

fn default_incident_cap_mib() -> u64 {
    8
}

impl Default for FfdcSettings {
    fn default() -> Self {
        Self {
            triggers: FfdcTrigger::VARIANTS.iter().copied().collect(),
            periodic_secs: 0,
            hsdb_threshold_pct: 75,
            hysteresis_pct: 5,
            coalesce_secs: 60,
            deadline_secs: 30,
            quota_mib: 32,
            node_cap_kib: 256,
            incident_cap_mib: default_incident_cap_mib(),
        }
    }
}

/// The allowed ranges of the settings, as `ksysmgr` and the admin API show them.
pub const PERIODIC_SECS: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;
pub const THRESHOLD_PCT: std::ops::RangeInclusive<u8> = 1..=99;
pub const HYSTERESIS_PCT: std::ops::RangeInclusive<u8> = 1..=50;
pub const COALESCE_SECS: std::ops::RangeInclusive<u64> = 1..=3600;
pub const DEADLINE_SECS: std::ops::RangeInclusive<u64> = 2..=600;
pub const QUOTA_MIB: std::ops::RangeInclusive<u64> = 1..=1024;
pub const NODE_CAP_KIB: std::ops::RangeInclusive<u64> = 16..=4096;
pub const INCIDENT_CAP_MIB: std::ops::RangeInclusive<u64> = 1..=256;

impl FfdcSettings {
    pub const KEY: &'static str = "ffdc";

    /// Refuses settings out of range (`InvalidArgument`, naming the setting and its range).
    pub fn check(&self) -> Result<()> {
        fn within<T: PartialOrd + std::fmt::Display>(
            name: &str,
            v: T,
            range: &std::ops::RangeInclusive<T>,
        ) -> Result<()> {
            match range.contains(&v) {
                true => Ok(()),
                false => Err(VmrmError::invalid(format!(
                    "{name}={v} is out of range: use {}..={}",
                    range.start(),
                    range.end()
                ))),
            }
        }
        if self.periodic_secs != 0 {
            within("periodic", self.periodic_secs, &PERIODIC_SECS)?;
        }
        within("hsdb_threshold", self.hsdb_threshold_pct, &THRESHOLD_PCT)?;
        within("hysteresis", self.hysteresis_pct, &HYSTERESIS_PCT)?;
        if self.hysteresis_pct >= self.hsdb_threshold_pct {
            return Err(VmrmError::invalid(format!(
                "hysteresis={} must be under hsdb_threshold={}",
                self.hysteresis_pct, self.hsdb_threshold_pct
            )));
        }
        within("coalesce", self.coalesce_secs, &COALESCE_SECS)?;
        within("deadline", self.deadline_secs, &DEADLINE_SECS)?;
        within("quota", self.quota_mib, &QUOTA_MIB)?;
        within("node_cap", self.node_cap_kib, &NODE_CAP_KIB)?;
        within("incident_cap", self.incident_cap_mib, &INCIDENT_CAP_MIB)
    }

    /// The bytes one node's bundle may hold in an incident expecting `expected` nodes: the
    /// per-node cap, or its equal share of the per-incident cap when that is less.
    pub fn bundle_cap(&self, expected: usize) -> usize {
        let share = (self.incident_cap_mib << 20) / expected.max(1) as u64;
        usize::try_from((self.node_cap_kib << 10).min(share)).unwrap_or(usize::MAX)
    }

    pub fn enabled(&self, trigger: FfdcTrigger) -> bool {
        self.triggers.contains(&trigger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range_and_each_setting_is_checked() {
        assert!(FfdcSettings::default().check().is_ok());
        let bad = |f: fn(&mut FfdcSettings)| {
            let mut s = FfdcSettings::default();
            f(&mut s);
            s.check().unwrap_err().to_string()
        };
        assert!(bad(|s| s.periodic_secs = 5).contains("periodic=5 is out of range: use 60..=604800"));
        assert!(bad(|s| s.hsdb_threshold_pct = 100).contains("hsdb_threshold=100"));
        assert!(bad(|s| s.hysteresis_pct = 0).contains("hysteresis=0"));
        assert!(
            bad(|s| {
                s.hsdb_threshold_pct = 10;
                s.hysteresis_pct = 10
            })
            .contains("must be under")
        );
        assert!(bad(|s| s.coalesce_secs = 0).contains("coalesce=0"));
        assert!(bad(|s| s.deadline_secs = 1).contains("deadline=1"));
        assert!(bad(|s| s.quota_mib = 0).contains("quota=0"));
        assert!(bad(|s| s.node_cap_kib = 8).contains("node_cap=8"));
        assert!(bad(|s| s.incident_cap_mib = 0).contains("incident_cap=0"));
        let s = FfdcSettings { node_cap_kib: 256, incident_cap_mib: 1, ..FfdcSettings::default() };
        assert_eq!(s.bundle_cap(2), 256 << 10, "the per-node cap");
        assert_eq!(s.bundle_cap(16), 64 << 10, "an equal share of the per-incident cap");
        assert_eq!(s.bundle_cap(0), 256 << 10);
    }

    #[test]
    fn trigger_names_are_the_snake_case_names() {
        for t in FfdcTrigger::VARIANTS {
            assert_eq!(serde_json::to_value(t).unwrap(), t.to_string());
            assert_eq!(t.to_string().parse::<FfdcTrigger>().unwrap(), *t);
        }
        assert!(!FfdcTrigger::Manual.coalesces());
        assert!(FfdcTrigger::NodeFailed.coalesces());
    }
}
