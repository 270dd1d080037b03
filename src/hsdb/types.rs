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
        Node = openraft::BasicNode,
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

impl Command {
    /// Refuses a command the HSDB must not store: an empty or oversized key, an oversized value.
    pub fn check(&self) -> Result<(), String> {
        let (table, key, value) = match self {
            Command::Put { table, key, value } | Command::PutIfVersion { table, key, value, .. } => {
                (table, Some(key), Some(value))
            }
            Command::Delete { table, key } => (table, Some(key), None),
            Command::Append { table, value } => (table, None, Some(value)),
            Command::Lock { vm, .. } | Command::Unlock { vm, .. } => (&Table::Locked, Some(vm), None),
            Command::Fenced { vm, command, .. } => {
                Self::check_key(&Table::Locked, vm)?;
                return command.check();
            }
            Command::Batch(commands) => return commands.iter().try_for_each(Command::check),
        };
        if let Some(key) = key {
            Self::check_key(table, key)?;
        }
        if let Some(value) = value {
            let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_VALUE_BYTES {
                return Err(format!(
                    "HSDB value for table {table} is {size} bytes, over the limit of {MAX_VALUE_BYTES} bytes (1 MiB); nothing was written"
                ));
            }
        }
        Ok(())
    }

    fn check_key(table: &Table, key: &str) -> Result<(), String> {
        if key.is_empty() {
            return Err(format!("an HSDB key in table {table} must not be empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("HSDB key of {} bytes exceeds the limit of {MAX_KEY_BYTES} bytes", key.len()));
        }
        Ok(())
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
}
