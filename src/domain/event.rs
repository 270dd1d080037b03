//! The event catalogue (seed names) and the stored event row.
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString};

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
    /// A host group was moved to the other site (seed: `ksysmgr move host_group`).
    HostGroupMoved,
    /// A scheduled discovery found a running VM nobody recorded (created outside vmrm).
    VmDiscovered,
    /// A scheduled discovery found a VM running on another host of its group (moved outside vmrm).
    VmMovedOutside,
    /// A scheduled discovery found a VM defined on no host of its group (deleted outside vmrm).
    VmRemovedOutside,
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
    /// An FFDC incident holds every expected node's bundle (seed 003).
    FfdcIncidentCompleted,
    /// An FFDC incident's capture deadline passed with nodes missing.
    FfdcIncidentPartial,
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
            | Self::HsdbMembershipChanged
            | Self::FfdcIncidentPartial
            | Self::VmRemovedOutside => Severity::Warning,
            Self::RestartStarted
            | Self::RestartCompleted
            | Self::RecoveryCompleted
            | Self::RecoveryResumed
            | Self::LpmStarted
            | Self::LpmCompleted
            | Self::VmDefinitionRecovered
            | Self::HostGroupMoved
            | Self::VmMovedOutside => Severity::Maintenance,
            Self::ViosNodeActive
            | Self::ViosHmRespDetected
            | Self::DiscoveryCompleted
            | Self::VmDiscovered
            | Self::VmPaused
            | Self::VmCreated
            | Self::VmDeleted
            | Self::HsdbNospaceCleared
            | Self::FfdcIncidentCompleted
            | Self::ConfigurationChanged => Severity::Informational,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display, EnumString)]
#[strum(ascii_case_insensitive)]
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

impl Severity {
    /// 0 for the most severe: an event is at least as severe as `other` when its rank is not
    /// higher.
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::Warning => 1,
            Self::Maintenance => 2,
            Self::Informational => 3,
        }
    }
}

/// The events operators acknowledged (table `event_ack`, one row): every event up to
/// `all_through` ("ack all"), and single ones after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AckRecord {
    pub all_through: u64,
    /// Sorted, each after `all_through`.
    pub also: Vec<u64>,
}

impl AckRecord {
    /// The one row's key.
    pub const KEY: &'static str = "acknowledged";
    /// The most single acknowledgements kept after `all_through`.
    pub const SINGLE_MAX: usize = 4096;

    pub fn covers(&self, sequence: u64) -> bool {
        sequence <= self.all_through || self.also.binary_search(&sequence).is_ok()
    }

    /// Acknowledges event `sequence` of a log whose newest is `newest`: whether it was not
    /// acknowledged before.
    pub fn acknowledge(&mut self, sequence: u64, newest: u64) -> crate::error::Result<bool> {
        use crate::error::VmrmError;
        if sequence == 0 || sequence > newest {
            return Err(VmrmError::not_found(format!("event {sequence} does not exist (the newest is {newest})")));
        }
        match self.also.binary_search(&sequence) {
            _ if sequence <= self.all_through => Ok(false),
            Ok(_) => Ok(false),
            Err(_) if self.also.len() >= Self::SINGLE_MAX => Err(VmrmError::precondition(format!(
                "{} events are acknowledged one by one already: acknowledge all of them",
                Self::SINGLE_MAX
            ))),
            Err(at) => {
                self.also.insert(at, sequence);
                Ok(true)
            }
        }
    }

    /// Acknowledges every event up to `newest`: how many were not acknowledged before.
    pub fn acknowledge_all(&mut self, newest: u64) -> u64 {
        if newest <= self.all_through {
            return 0;
        }
        let single = self.also.iter().filter(|s| **s <= newest).count() as u64;
        let fresh = newest - self.all_through - single;
        self.all_through = newest;
        self.also.retain(|s| *s > newest);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_or_all_of_them_are_acknowledged() {
        let mut acks = AckRecord::default();
        assert!(acks.acknowledge(3, 10).unwrap());
        assert!(!acks.acknowledge(3, 10).unwrap());
        assert!(acks.covers(3) && !acks.covers(4));
        assert!(matches!(acks.acknowledge(11, 10), Err(crate::error::VmrmError::NotFound(_))));
        assert!(acks.acknowledge(0, 10).is_err());
        assert_eq!(acks.acknowledge_all(10), 9);
        assert_eq!(acks, AckRecord { all_through: 10, also: vec![] });
        assert!(!acks.acknowledge(7, 12).unwrap());
        assert!(acks.acknowledge(12, 12).unwrap());
        assert_eq!(acks.acknowledge_all(11), 1);
        assert_eq!(acks.also, [12]);
        assert_eq!(acks.acknowledge_all(12), 0);
        assert_eq!(acks.acknowledge_all(5), 0, "never back");
    }

    #[test]
    fn single_acknowledgements_are_bounded() {
        let mut acks = AckRecord::default();
        for s in 1..=AckRecord::SINGLE_MAX as u64 {
            acks.acknowledge(s * 2, u64::MAX).unwrap();
        }
        let e = acks.acknowledge(3, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("acknowledge all"), "{e}");
        assert!(!acks.acknowledge(4, u64::MAX).unwrap());
    }

    #[test]
    fn the_most_severe_ranks_first() {
        assert!(Severity::Critical.rank() < Severity::Warning.rank());
        assert!(Severity::Maintenance.rank() < Severity::Informational.rank());
    }
}
