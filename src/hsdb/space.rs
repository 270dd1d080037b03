//! The NOSPACE alarm (etcd's backend quota and alarm). Every second a member measures its
//! database (`used`) and the free space of its file system (`free`); at its quota, or with
//! less than [`MIN_FREE_BYTES`] left, it raises the alarm: its health turns NOT_SERVING, and
//! while it or any member leads with the alarm raised somewhere, the HSDB takes only what frees
//! space or must never be refused (deletions, unlocks, events). Without it a full disk made a
//! sled write fail inside Raft, which stopped the member with nothing said. The alarm clears
//! itself below 90 % of the quota with twice the minimum free (hysteresis: no flapping).
use super::types::Command;
use std::path::Path;

/// The default quota (etcd's default `--quota-backend-bytes`).
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;
/// Free space under which the alarm is raised.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// One measurement of a member's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes of the member's database.
    pub used: u64,
    /// Bytes left on its file system.
    pub free: u64,
}

/// The alarm after measuring `space`, given whether it was raised before.
pub fn alarm(raised: bool, space: Space, quota: u64) -> Option<String> {
    let (limit, min_free) = match raised {
        false => (quota, MIN_FREE_BYTES),
        true => (quota / 10 * 9, 2 * MIN_FREE_BYTES),
    };
    let mib = |b: u64| b >> 20;
    if space.used >= limit {
        return Some(format!("the database is {} MiB, its quota {} MiB", mib(space.used), mib(quota)));
    }
    if space.free < min_free {
        return Some(format!("{} MiB are left on its disk", mib(space.free)));
    }
    None
}

/// What the HSDB takes under the alarm: what frees space or must never be refused.
pub fn allowed_under_alarm(command: &Command) -> bool {
    match command {
        Command::Delete { .. } | Command::Unlock { .. } => true,
        Command::Append { table, .. } => table.is_append_only(),
        Command::Batch(commands) => commands.iter().all(allowed_under_alarm),
        _ => false,
    }
}

/// Measures the database `db` in directory `dir` (blocking: file system calls).
pub fn measure(db: &sled::Db, dir: &Path) -> std::io::Result<Space> {
    let used = db.size_on_disk().map_err(std::io::Error::other)?;
    let fs = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let free = (fs.blocks_available() as u64).saturating_mul(fs.fragment_size() as u64);
    Ok(Space { used, free })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsdb::tables::Table;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_alarm_rises_at_the_quota_or_a_full_disk_and_clears_well_below() {
        let space = |used, free| Space { used, free };
        assert_eq!(alarm(false, space(GIB, 10 * GIB), 2 * GIB), None);
        let full = alarm(false, space(2 * GIB, 10 * GIB), 2 * GIB).unwrap();
        assert_eq!(full, "the database is 2048 MiB, its quota 2048 MiB");
        assert!(alarm(true, space(2 * GIB - 1, 10 * GIB), 2 * GIB).is_some(), "just below the quota: still raised");
        assert_eq!(alarm(true, space(GIB, 10 * GIB), 2 * GIB), None, "well below: cleared");
        let disk = alarm(false, space(GIB, 10 << 20), 2 * GIB).unwrap();
        assert_eq!(disk, "10 MiB are left on its disk");
        assert!(alarm(true, space(GIB, 100 << 20), 2 * GIB).is_some(), "a little freed: still raised");
        assert_eq!(alarm(true, space(GIB, 200 << 20), 2 * GIB), None);
    }

    #[test]
    fn under_the_alarm_only_what_frees_space_or_must_not_fail_is_taken() {
        let delete = Command::Delete { table: Table::Vm, key: "vm-1".into() };
        let unlock = Command::Unlock { vm: "vm-1".into(), epoch: 1, at_ms: 0 };
        let event = Command::Append { table: Table::Event, value: serde_json::json!({}) };
        let put = Command::Put { table: Table::Vm, key: "vm-1".into(), value: serde_json::json!({}) };
        for ok in [&delete, &unlock, &event] {
            assert!(allowed_under_alarm(ok), "{ok:?}");
        }
        assert!(allowed_under_alarm(&Command::Batch(vec![delete.clone(), event])));
        assert!(!allowed_under_alarm(&put));
        assert!(!allowed_under_alarm(&Command::Batch(vec![delete, put])));
    }
}
