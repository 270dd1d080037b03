//! Recovery tasks as stored in the HSDB. A task is written before the first VM moves and holds
//! the plan; each VM's progress is on its own row ([`RestartProgress`], written under the VM's
//! lock). A controller that becomes active resumes every unfinished task from those rows, so a
//! failover in the middle of a recovery neither loses a VM nor restarts one twice.
use super::state::Priority;
use serde::{Deserialize, Serialize};
use strum::Display;

/// Why VMs are being restarted; it decides whether the source is expected to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "snake_case")]
pub enum RestartCause {
    #[strum(to_string = "host failure")]
    HostFailure,
    /// The FDE's VM rule: this VM failed, its host did not.
    #[strum(to_string = "VM failure")]
    VmFailure,
    /// `ksysmgr restart vm` or a move back home.
    #[strum(to_string = "admin request")]
    Admin,
    /// A critical application stayed in FAILURE through its VM's restarts on the same host.
    #[strum(to_string = "critical application failure")]
    AppFailure,
    /// `ksysmgr move host_group … to=SITE`: each VM restarts on its host's pair at the other site.
    #[strum(to_string = "move to another site")]
    SiteMove,
}

/// One VM of a task's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRestart {
    pub vm: String,
    pub priority: Priority,
    pub source: String,
    pub target: String,
    /// The size it restarts with (flexible capacity applied).
    pub cpu: u32,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryTaskRecord {
    pub id: String,
    pub host_group: String,
    pub cause: RestartCause,
    /// The failed host or VM, or the VM an admin named.
    pub subject: String,
    pub created_ms: i64,
    /// In restart order.
    pub plan: Vec<PlannedRestart>,
    /// VMs the mapper could not place, with the reason.
    pub unplaced: Vec<(String, String)>,
    pub finished: bool,
    /// Set when finished: how many of the plan run on their target.
    pub restarted: u32,
}

impl RecoveryTaskRecord {
    /// All the VMs the task is about.
    pub fn total(&self) -> usize {
        self.plan.len() + self.unplaced.len()
    }
}

/// How far one VM's restart got (seed: the steps of "Restart in progress").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RestartPhase {
    /// The lock is taken; HA monitoring stops and the source is shut down next.
    Locked,
    /// The SAN reservation belongs to the target: the source can no longer write.
    Fenced,
    /// Running on the target.
    Completed,
    Failed,
}

impl RestartPhase {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// The VM row's part of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartProgress {
    pub task: String,
    pub target: String,
    pub phase: RestartPhase,
}
