//! Per-VM operation locks (seed table `locked`), decided inside the state machine.
//!
//! Every restart or move of a VM runs under its lock. Taking the lock raises the lock's epoch,
//! which is never lowered, and every write the operation makes carries that epoch
//! ([`Command::Fenced`](super::Command::Fenced)): the state machine applies it only while the
//! epoch is still current. So an operation whose lock was taken over — by a controller that
//! resumed it after a failover — can no longer change anything, even if its controller never
//! noticed it was replaced. The decisions are pure functions over the stored lock row.
use crate::domain::VmStatus;
use serde::{Deserialize, Serialize};

/// One VM's lock row. Never deleted: a freed lock keeps its epoch, so epochs only grow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmLock {
    pub vm: String,
    /// Raised by every acquisition.
    pub epoch: u64,
    /// The operation holding the lock; `NoOperationInProgress` when it is free.
    pub operation: VmStatus,
    /// HSDB node id of the controller that took it (0 when free).
    pub holder: u64,
    /// When it was taken or freed (ms since the Unix epoch, from the proposing controller).
    pub since_ms: i64,
}

impl VmLock {
    pub fn is_held(&self) -> bool {
        self.operation != VmStatus::NoOperationInProgress
    }
}

/// The lock under which the HSDB issued fencing token `fence`: an epoch the VM's lock has
/// reached, while an operation holds the lock. A token below the current epoch passes (a
/// migration goes on under the epoch it started with after a new controller takes its lock
/// over); whoever keeps a highest-token rule (the SAN) then refuses it once a newer operation
/// has acted.
pub fn issued(lock: Option<&VmLock>, fence: u64) -> Result<&VmLock, String> {
    match lock {
        Some(lock) if lock.is_held() && (1..=lock.epoch).contains(&fence) => Ok(lock),
        Some(lock) if lock.is_held() => Err(format!("the VM's lock is at epoch {}", lock.epoch)),
        _ => Err("no operation holds the VM's lock".into()),
    }
}

/// Who may take a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acquire {
    /// Only a free lock (or one never taken).
    WhenFree,
    /// The lock as it stands at `epoch`, held or not: a controller resuming an operation that
    /// another one started takes it over, which fences the other one out.
    TakeOver { epoch: u64 },
}

/// Why the state machine refused a lock operation or a fenced write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockRefusal {
    /// Another operation holds the lock.
    Held(VmLock),
    /// The caller's epoch is not the lock's current one (or the lock is not held).
    Stale { current: u64 },
}

/// The lock row after `holder` takes `current` (None: never locked) for `operation`.
pub fn acquire(
    current: Option<&VmLock>,
    vm: &str,
    operation: VmStatus,
    holder: u64,
    at_ms: i64,
    how: Acquire,
) -> Result<VmLock, LockRefusal> {
    let epoch = current.map_or(0, |l| l.epoch);
    match (how, current) {
        (Acquire::WhenFree, Some(held)) if held.is_held() => return Err(LockRefusal::Held(held.clone())),
        (Acquire::TakeOver { epoch: expected }, _) if expected != epoch => {
            return Err(LockRefusal::Stale { current: epoch });
        }
        _ => {}
    }
    Ok(VmLock { vm: vm.to_string(), epoch: epoch + 1, operation, holder, since_ms: at_ms })
}

/// Admits a write made under the lock at `epoch`: the lock must be held at exactly that epoch.
pub fn check_fence(current: Option<&VmLock>, epoch: u64) -> Result<(), LockRefusal> {
    match current {
        Some(lock) if lock.is_held() && lock.epoch == epoch => Ok(()),
        _ => Err(LockRefusal::Stale { current: current.map_or(0, |l| l.epoch) }),
    }
}

/// The lock row after the holder at `epoch` frees it.
pub fn release(current: Option<&VmLock>, epoch: u64, at_ms: i64) -> Result<VmLock, LockRefusal> {
    match current {
        Some(lock) if check_fence(current, epoch).is_ok() => {
            Ok(VmLock { operation: VmStatus::NoOperationInProgress, holder: 0, since_ms: at_ms, ..lock.clone() })
        }
        _ => Err(LockRefusal::Stale { current: current.map_or(0, |l| l.epoch) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESTART: VmStatus = VmStatus::RestartInProgress;

    #[test]
    fn only_tokens_the_hsdb_issued_to_a_running_operation_pass() {
        let lock = |epoch, operation| VmLock { vm: "vm-1".into(), epoch, operation, holder: 1, since_ms: 0 };
        let held = lock(4, RESTART);
        assert_eq!(issued(Some(&held), 4), Ok(&held));
        assert_eq!(issued(Some(&held), 3), Ok(&held), "a migration taken over goes on under its first epoch");
        assert_eq!(issued(Some(&held), u64::MAX), Err("the VM's lock is at epoch 4".into()));
        assert!(issued(Some(&held), 0).is_err());
        let free = lock(4, VmStatus::NoOperationInProgress);
        assert_eq!(issued(Some(&free), 4), Err("no operation holds the VM's lock".into()));
        assert!(issued(None, 1).is_err());
    }

    fn held(epoch: u64) -> VmLock {
        VmLock { vm: "vm-1".into(), epoch, operation: RESTART, holder: 1, since_ms: 10 }
    }

    #[test]
    fn a_never_taken_lock_is_acquired_at_epoch_one() {
        let lock = acquire(None, "vm-1", RESTART, 2, 50, Acquire::WhenFree).unwrap();
        assert_eq!(lock, VmLock { vm: "vm-1".into(), epoch: 1, operation: RESTART, holder: 2, since_ms: 50 });
    }

    #[test]
    fn a_held_lock_is_refused_with_its_holder() {
        assert_eq!(acquire(Some(&held(4)), "vm-1", RESTART, 2, 50, Acquire::WhenFree), Err(LockRefusal::Held(held(4))));
    }

    #[test]
    fn a_freed_lock_is_acquired_at_the_next_epoch() {
        let freed = release(Some(&held(4)), 4, 20).unwrap();
        assert!(!freed.is_held());
        assert_eq!(freed.epoch, 4);
        assert_eq!(acquire(Some(&freed), "vm-1", RESTART, 2, 50, Acquire::WhenFree).unwrap().epoch, 5);
    }

    #[test]
    fn take_over_needs_the_current_epoch() {
        let taken = acquire(Some(&held(4)), "vm-1", RESTART, 2, 50, Acquire::TakeOver { epoch: 4 }).unwrap();
        assert_eq!((taken.epoch, taken.holder), (5, 2));
        assert_eq!(
            acquire(Some(&held(4)), "vm-1", RESTART, 2, 50, Acquire::TakeOver { epoch: 3 }),
            Err(LockRefusal::Stale { current: 4 })
        );
    }

    #[test]
    fn the_fence_admits_only_the_current_holder() {
        assert_eq!(check_fence(Some(&held(4)), 4), Ok(()));
        assert_eq!(check_fence(Some(&held(5)), 4), Err(LockRefusal::Stale { current: 5 }));
        let freed = release(Some(&held(4)), 4, 20).unwrap();
        assert_eq!(check_fence(Some(&freed), 4), Err(LockRefusal::Stale { current: 4 }));
        assert_eq!(check_fence(None, 1), Err(LockRefusal::Stale { current: 0 }));
    }

    #[test]
    fn only_the_holder_releases() {
        assert_eq!(release(Some(&held(5)), 4, 20), Err(LockRefusal::Stale { current: 5 }));
        assert_eq!(release(None, 1, 20), Err(LockRefusal::Stale { current: 0 }));
    }
}
