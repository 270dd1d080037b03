//! The openraft type configuration and the HSDB's replicated commands.
use super::locks::{Acquire, LockRefusal};
use super::tables::Table;
use crate::domain::VmStatus;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = super::member::Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A change to the tables, applied in log order on every member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Put {
        table: Table,
        key: String,
        value: serde_json::Value,
    },
    /// Writes only if the row's version is `expected_version` (0: the row must not exist).
    PutIfVersion {
        table: Table,
        key: String,
        expected_version: u64,
        value: serde_json::Value,
    },
    Delete {
        table: Table,
        key: String,
    },
    /// Appends to an append-only table; the key is the table's next sequence number.
    Append {
        table: Table,
        value: serde_json::Value,
    },
    /// Takes VM `vm`'s operation lock (table `locked`) for `operation`, raising its epoch.
    Lock {
        vm: String,
        operation: VmStatus,
        holder: u64,
        at_ms: i64,
        how: Acquire,
    },
    /// Frees the lock held at `epoch`.
    Unlock {
        vm: String,
        epoch: u64,
        at_ms: i64,
    },
    /// Applies `command` only while VM `vm`'s lock is held at `epoch`.
    Fenced {
        vm: String,
        epoch: u64,
        command: Box<Command>,
    },
    /// Several commands from concurrent callers committed as one log entry (group commit: one
    /// fsync for all of them). Each is applied in order and gets its own result.
    Batch(Vec<Command>),
}

/// Largest value one row may hold; a bigger one is refused before it reaches the log.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest row key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest command one caller may submit, as encoded (etcd's request limit: 1.5 MiB).
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// Most commands in one caller's `Batch` (etcd's `--max-txn-ops`).
pub const MAX_BATCH_OPS: usize = 128;

impl Command {
    /// Refuses a command the HSDB must not store, returning the size of one it may: an
    /// oversized command, an empty or oversized key, an oversized value, a row that is not its
    /// table's record (see [`Table::check_row`]), a fenced lock or batch, a batch in a batch or
    /// one over [`MAX_BATCH_OPS`]. `apply` runs the same check, so an entry that reached the log
    /// some other way changes nothing instead of stopping the state machine.
    pub fn check(&self) -> Result<usize, String> {
        self.check_shape(false)?;
        let size = encoded_len(self);
        if size > MAX_REQUEST_BYTES {
            return Err(format!(
                "an HSDB command of {size} bytes exceeds the request limit of {MAX_REQUEST_BYTES} bytes (1.5 MiB); nothing was written"
            ));
        }
        Ok(size)
    }

    fn check_shape(&self, nested: bool) -> Result<(), String> {
        match self {
            Command::Put { table, key, value } | Command::PutIfVersion { table, key, value, .. } => {
                check_key(*table, key)?;
                check_value(*table, value)?;
                table.check_row(key, value)
            }
            Command::Delete { table, key } => {
                check_key(*table, key)?;
                table.check_delete()
            }
            Command::Append { table, value } => {
                check_value(*table, value)?;
                table.check_appended(value)
            }
            Command::Lock { vm, .. } | Command::Unlock { vm, .. } if !nested => check_key(Table::Locked, vm),
            Command::Fenced { vm, command, .. } if !nested => {
                check_key(Table::Locked, vm)?;
                command.check_shape(true)
            }
            Command::Batch(commands) if !nested => {
                if commands.len() > MAX_BATCH_OPS {
                    return Err(format!(
                        "an HSDB batch of {} commands exceeds the limit of {MAX_BATCH_OPS}; nothing was written",
                        commands.len()
                    ));
                }
                commands.iter().try_for_each(|c| c.check_shape(true))
            }
            _ => Err("a lock, a fenced write or a batch cannot be fenced or batched; nothing was written".into()),
        }
    }
}

fn check_key(table: Table, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("an HSDB key in table {table} must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("HSDB key of {} bytes exceeds the limit of {MAX_KEY_BYTES} bytes", key.len()));
    }
    Ok(())
}

fn check_value(table: Table, value: &serde_json::Value) -> Result<(), String> {
    let size = encoded_len(value);
    if size > MAX_VALUE_BYTES {
        return Err(format!(
            "HSDB value for table {table} is {size} bytes, over the limit of {MAX_VALUE_BYTES} bytes (1 MiB); nothing was written"
        ));
    }
    Ok(())
}

/// The JSON size of `value`, counted without building it.
fn encoded_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied; `version` is the log index of the write.
    Applied { version: u64 },
    /// A `PutIfVersion` found another version; nothing changed.
    VersionMismatch { current: u64 },
    /// A `Lock` succeeded: the lock is now held at `epoch`.
    Locked { epoch: u64 },
    /// A `Lock`, `Unlock` or `Fenced` was refused; nothing changed.
    Refused(LockRefusal),
    /// The results of a `Batch`, in order.
    Batch(Vec<CommandResult>),
    /// The command breaks the schema or a limit ([`Command::check`]); nothing changed.
    Rejected(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(key: &str) -> Command {
        Command::Delete { table: Table::Vm, key: key.into() }
    }

    #[test]
    fn batches_and_fences_hold_only_plain_writes_within_the_limits() {
        assert!(Command::Batch(vec![delete("a"); MAX_BATCH_OPS]).check().is_ok());
        let err = Command::Batch(vec![delete("a"); MAX_BATCH_OPS + 1]).check().unwrap_err();
        assert!(err.contains("exceeds the limit of 128"), "{err}");
        let nested = Command::Batch(vec![Command::Batch(vec![delete("a")])]);
        assert!(nested.check().unwrap_err().contains("cannot be fenced or batched"));
        let unlock = Command::Unlock { vm: "vm-1".into(), epoch: 1, at_ms: 0 };
        let fenced_lock = Command::Fenced { vm: "vm-1".into(), epoch: 1, command: Box::new(unlock) };
        assert!(fenced_lock.check().is_err());
        let event =
            crate::domain::EventRecord::new(crate::domain::EventName::VmFailureDetected, "vm", "x".repeat(800 << 10));
        let append = Command::Append { table: Table::Event, value: serde_json::to_value(event).unwrap() };
        assert!(append.check().is_ok());
        let err = Command::Batch(vec![append; 2]).check().unwrap_err();
        assert!(err.contains("exceeds the request limit"), "{err}");
    }
}
