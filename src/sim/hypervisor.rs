//! The boundary between a server unit and the partitions it runs. The unit owns what the
//! platform owns — the LPAR table and its states, capacity, the SAN reservation taken before a
//! partition starts, the migration protocol with other units — and reaches the guests only
//! through [`Hypervisor`]: define, activate, shut down, remove, what a guest is doing, its
//! memory image for a live migration out and in, and the operator's drills. A guest's disk I/O
//! goes to the SAN with the host's reservation key; when the SAN refuses it (the host was
//! fenced) or the guest stops on its own, the backend tells the unit with [`PartitionStopped`],
//! the guest's console line.
//!
//! The simulated partitions ([`crate::sim::vm::SimulatedHypervisor`]) are the first backend; a
//! backend of real virtual machines plugs in here without touching the unit's table, the
//! controller or the agents.
use crate::domain::LparDefinition;
use crate::error::{Result, VmrmError};
use crate::sim::guest_memory::SharedMemory;
use crate::sim::workload::WorkloadSettings;
use actix::Message;
use futures::future::BoxFuture;
use std::str::FromStr;
use strum::{EnumString, VariantNames};

/// How a partition is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its OS shuts down: the agent tells its host monitors (seed: SHDN).
    Clean,
    /// Power off: everything in it stops where it is.
    PowerOff,
}

/// What a defined partition's guest is doing, as the hypervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    /// Not running (never started, shut down, or stopped on its own).
    Off,
    Running,
    /// Running but its OS hangs (VM2000 shows it in WAIT).
    Hung,
}

/// A guest stopped on its own — fenced off its disk, or crashed — told to its unit.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PartitionStopped {
    pub name: String,
    pub reason: String,
}

/// What can go wrong inside a running guest (`vmrmd fault`, the chaos suite, tests).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames)]
#[rtype(result = "Result<()>")]
#[strum(serialize_all = "kebab-case")]
pub enum VmFault {
    /// The agent dies without a word; the OS still answers ping.
    KillAgent,
    /// The agent stops cleanly and tells its host monitors (seed: `SHDN:DAEMON`).
    StopAgent,
    /// The agent starts again and handshakes anew.
    StartAgent,
    /// The OS hangs: no heartbeats, no ping, no disk I/O. The HMC still shows it Running.
    HangOs,
}

/// The drill named `name`, or an error listing every name of `what`'s drills.
pub fn parse_fault<F: FromStr + VariantNames>(name: &str, what: &str) -> Result<F> {
    name.parse()
        .map_err(|_| VmrmError::invalid(format!("unknown fault {name:?} of {what}: use {}", F::VARIANTS.join(", "))))
}

/// A server unit's partitions. Calls name a partition the unit defined first; the unit has
/// already checked capacity, state and the disk's reservation. Answers that take time come as
/// futures the unit awaits outside its own state.
pub trait Hypervisor: Send {
    /// Knows the partition `def` (powered off).
    fn define(&mut self, def: &LparDefinition);
    /// Forgets the partition, powering it off first if it still runs.
    fn remove(&mut self, name: &str);
    /// Powers the partition on — a fresh boot, or a guest that arrived by [`Self::receive`]
    /// resumes — and answers the address its OS answers ping on.
    fn activate(&mut self, name: &str) -> Result<String>;
    fn shut_down(&mut self, name: &str, how: Stop);
    /// What the guest is doing (the unit's inventory shows it).
    fn guest_state(&self, name: &str) -> GuestState;
    /// Stops the guest where it is (a migration's switchover); answered once it is stopped.
    fn pause(&mut self, name: &str) -> BoxFuture<'static, Result<()>>;
    /// Lets a paused guest run on (a migration rolled back).
    fn resume(&mut self, name: &str) -> BoxFuture<'static, Result<()>>;
    /// Migration out: the running guest's memory, which pre-copy reads while it dirties it.
    fn memory_image(&self, name: &str) -> Result<SharedMemory>;
    /// Migration in: `bytes` of memory for a guest arriving in the defined partition `name`.
    fn receive(&mut self, name: &str, bytes: u64) -> Result<SharedMemory>;
    /// A drill inside the running guest.
    fn inject(&mut self, name: &str, fault: VmFault) -> BoxFuture<'static, Result<()>>;
    /// The running guest's workload (how much memory it keeps and dirties).
    fn set_workload(&mut self, name: &str, settings: WorkloadSettings) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::su::UnitFault;

    #[test]
    fn drills_parse_by_their_names_and_an_unknown_one_lists_them_all() {
        assert_eq!(parse_fault::<VmFault>("hang-os", "a VM").unwrap(), VmFault::HangOs);
        assert_eq!(parse_fault::<UnitFault>("fail-next-resume", "a unit").unwrap(), UnitFault::FailNextResume);
        assert_eq!(parse_fault::<UnitFault>("panic", "a unit").unwrap(), UnitFault::Panic);
        let err = parse_fault::<VmFault>("HangOs", "a VM").unwrap_err().to_string();
        assert!(err.contains("kill-agent, stop-agent, start-agent, hang-os"), "{err}");
        let err = parse_fault::<UnitFault>("reboot", "a server unit").unwrap_err().to_string();
        assert!(err.contains("configuration-update-start") && err.contains("panic"), "{err}");
    }
}
