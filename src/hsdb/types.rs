//! The openraft type configuration and the HSDB's replicated commands.
use super::tables::Table;
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
    /// Appends to an append-only table; the key is the entry's log index.
    Append {
        table: Table,
        value: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied; `version` is the log index of the write.
    Applied { version: u64 },
    /// A `PutIfVersion` found another version; nothing changed.
    VersionMismatch { current: u64 },
}
