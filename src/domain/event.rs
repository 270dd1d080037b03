//! The event catalogue (seed names) and the stored event row.
use serde::{Deserialize, Serialize};
use strum::Display;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum EventName {
    HostFailureDetected,
    VmFailureDetected,
    /// A partition stuck in "Migrating - Running" for a day (seed FDE VM rule).
    VmLpmHangDetected,
    /// A partition in a non-running state whose heartbeats are missing for 2·VMFDT.
    VmNonrespDetected,
    ViosNodeFailure,
    ViosNodeActive,
    /// A host monitor answers again, or with a new incarnation after a restart.
    ViosHmRespDetected,
    RestartStarted,
    RestartCompleted,
    RestartFailed,
    /// `restart_policy=advisory_mode`: what the mapper would do; nothing moves.
    RestartAdvised,
    /// A recovery task ended: "N out of M VMs have been successfully restarted".
    RecoveryCompleted,
    /// A controller that became active took over an unfinished recovery task.
    RecoveryResumed,
    DiscoveryCompleted,
    /// An application is in FAILURE after its restarts inside the VM (seed:
    /// PERMANENT_APP_FAILURE); for a critical one the VM is restarted.
    PermanentAppFailure,
    /// A live migration started ("from X to Y").
    LpmStarted,
    /// A live migration completed: the VM runs on its target.
    LpmCompleted,
    /// A live migration was aborted and rolled back: the VM runs on its source.
    LpmAborted,
    /// Seed 001's Sys-Mgmt notices of a live migration: "VM 'x' on Server Unit 'y' paused",
    /// "… created" (on the target), "… deleted" (on the source, always last).
    VmPaused,
    VmCreated,
    VmDeleted,
    /// Seed 001: "Cluster state of 'X' changed from 'NORMAL' to 'WARNING'".
    ClusterStateChanged,
    /// Seed 001: "Network heartbeat of unit 'X' changed from 'NORMAL' to 'NOT_ACCESSIBLE'".
    UnitHeartbeatChanged,
    /// A VM definition was taken over from an SU that stopped writing alive messages.
    VmDefinitionRecovered,
    /// An HSDB member is at its quota or its disk is nearly full: the HSDB takes only
    /// deletions, unlocks and events until it clears (etcd's NOSPACE alarm).
    HsdbNospace,
    /// The NOSPACE alarm of an HSDB member cleared.
    HsdbNospaceCleared,
    /// The cluster's configuration or policies changed (who and what: the audit trail has it too).
    ConfigurationChanged,
    /// An HSDB member was added, promoted, demoted or removed.
    HsdbMembershipChanged,
}

impl EventName {
    pub fn severity(self) -> Severity {
        match self {
            Self::HostFailureDetected | Self::VmFailureDetected | Self::RestartFailed | Self::HsdbNospace => {
                Severity::Critical
            }
            Self::ViosNodeFailure
            | Self::PermanentAppFailure
            | Self::VmLpmHangDetected
            | Self::VmNonrespDetected
            | Self::RestartAdvised
            | Self::LpmAborted
            | Self::ClusterStateChanged
            | Self::UnitHeartbeatChanged
            | Self::HsdbMembershipChanged => Severity::Warning,
            Self::RestartStarted
            | Self::RestartCompleted
            | Self::RecoveryCompleted
            | Self::RecoveryResumed
            | Self::LpmStarted
            | Self::LpmCompleted
            | Self::VmDefinitionRecovered => Severity::Maintenance,
            Self::ViosNodeActive
            | Self::ViosHmRespDetected
            | Self::DiscoveryCompleted
            | Self::VmPaused
            | Self::VmCreated
            | Self::VmDeleted
            | Self::HsdbNospaceCleared
            | Self::ConfigurationChanged => Severity::Informational,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
pub enum Severity {
    Critical,
    Warning,
    Maintenance,
    Informational,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub name: EventName,
    pub subject: String,
    pub message: String,
    pub at_ms: i64,
}

impl EventRecord {
    pub fn new(name: EventName, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self { name, subject: subject.into(), message: message.into(), at_ms: crate::now_ms() }
    }
}
