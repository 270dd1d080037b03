//! SU clusters (seed 001 §3): exactly two server units that share their VM definitions through
//! the HSDB (the seed's CRD) and offer live migration between them. Each SU writes an alive
//! message ([`SuAliveRecord`]) regularly; the controller computes the cluster's status from
//! them and keeps it on the record, so a change raises the seed's event once.
use serde::{Deserialize, Serialize};
use strum::Display;

/// Seed 001's cluster status: NORMAL, WARNING (restricted, e.g. redundancy lost), ERROR (live
/// migration not possible), INACTIVE (deactivated by an administrator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SuClusterStatus {
    #[default]
    Normal,
    Warning,
    Error,
    Inactive,
}

/// A unit's network heartbeat as the cluster sees it (seed: NORMAL or NOT_ACCESSIBLE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum UnitHeartbeat {
    #[default]
    Normal,
    NotAccessible,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuClusterRecord {
    pub name: String,
    /// The two server units (hosts).
    pub hosts: Vec<String>,
    /// Deactivated clusters (INACTIVE) take no live migration.
    pub active: bool,
    /// The status last computed, and each unit's heartbeat then (same order as `hosts`).
    pub status: SuClusterStatus,
    pub heartbeats: Vec<UnitHeartbeat>,
}

/// A server unit's alive message (seed: written by the monitor system to the CRD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuAliveRecord {
    pub host: String,
    /// A new value on every start of the unit.
    pub incarnation: String,
    pub at_ms: i64,
}
