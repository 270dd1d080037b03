//! The guest application server's table of watched processes (seed 002: cmappserver "provides
//! connections for up to 30 simultaneous processes"). Plain data: the server's shell launches
//! and reaps; this decides who is admitted and what a poll answers.
use crate::error::{Result, VmrmError};
use std::collections::BTreeMap;

/// Seed 002: up to 30 simultaneous processes.
pub const MAX_PROCESSES: usize = 30;
/// Ended processes remembered for a late poll; the oldest are forgotten first.
const ENDED_KEPT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Running {
        group: i32,
    },
    /// Its exit code, or 128 + the signal that killed it.
    Ended {
        exit_code: i32,
    },
}

#[derive(Debug, Default)]
pub struct ProcessTable {
    last_id: u64,
    processes: BTreeMap<u64, ProcessState>,
}

impl ProcessTable {
    fn running(&self) -> usize {
        self.processes.values().filter(|p| matches!(p, ProcessState::Running { .. })).count()
    }

    /// The id the next process gets, if one more may run.
    pub fn admit(&self) -> Result<u64> {
        match self.running() {
            n if n >= MAX_PROCESSES => Err(VmrmError::ResourceExhausted(format!(
                "the application server already watches {n} processes, the most it can: \
                 wait for one to end before launching another"
            ))),
            _ => Ok(self.last_id + 1),
        }
    }

    pub fn started(&mut self, id: u64, group: i32) {
        self.last_id = self.last_id.max(id);
        self.processes.insert(id, ProcessState::Running { group });
    }

    pub fn ended(&mut self, id: u64, exit_code: i32) {
        self.processes.insert(id, ProcessState::Ended { exit_code });
        let ended: Vec<u64> =
            self.processes.iter().filter(|(_, p)| matches!(p, ProcessState::Ended { .. })).map(|(id, _)| *id).collect();
        for old in ended.iter().take(ended.len().saturating_sub(ENDED_KEPT)) {
            self.processes.remove(old);
        }
    }

    pub fn status(&self, id: u64) -> Result<ProcessState> {
        self.processes
            .get(&id)
            .copied()
            .ok_or_else(|| VmrmError::not_found(format!("the application server knows no process {id}")))
    }

    /// The process groups still running (killed when the server stops).
    pub fn running_groups(&self) -> Vec<i32> {
        self.processes
            .values()
            .filter_map(|p| match p {
                ProcessState::Running { group } => Some(*group),
                ProcessState::Ended { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thirty_first_process_is_refused_until_one_ends() {
        let mut t = ProcessTable::default();
        for _ in 0..MAX_PROCESSES {
            let id = t.admit().expect("room left");
            t.started(id, id as i32 + 1000);
        }
        let refused = t.admit().unwrap_err();
        assert!(matches!(refused, VmrmError::ResourceExhausted(_)), "{refused:?}");
        assert!(refused.to_string().contains("already watches 30 processes"), "{refused}");
        t.ended(5, 0);
        assert_eq!(t.admit().unwrap(), MAX_PROCESSES as u64 + 1, "ids are never reused");
        assert_eq!(t.running_groups().len(), MAX_PROCESSES - 1);
    }

    #[test]
    fn a_poll_answers_running_ended_or_unknown() {
        let mut t = ProcessTable::default();
        t.started(1, 77);
        assert_eq!(t.status(1).unwrap(), ProcessState::Running { group: 77 });
        t.ended(1, 137);
        assert_eq!(t.status(1).unwrap(), ProcessState::Ended { exit_code: 137 });
        assert!(matches!(t.status(2), Err(VmrmError::NotFound(_))));
    }

    #[test]
    fn only_the_latest_ended_processes_are_remembered() {
        let mut t = ProcessTable::default();
        for id in 1..=(ENDED_KEPT as u64 + 10) {
            t.started(id, 1);
            t.ended(id, 0);
        }
        assert!(t.status(10).is_err(), "the oldest were forgotten");
        assert!(t.status(ENDED_KEPT as u64 + 10).is_ok());
    }
}
