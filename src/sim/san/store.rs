//! What the SAN keeps on its disk, in sled: each disk's reservation (key and owner), the highest
//! fencing token it has seen, its newest written block, its record of operations, and its part
//! in each consistency group with the journal of writes its secondary has not applied yet
//! (DR replication, [`super::replication`]). A SAN restart forgets nothing: the
//! VMs' writes go on being accepted, and a host coming back with a stale boot list still finds
//! the disk reserved by the host that runs the VM now. A reservation change or an accepted write
//! is on the disk (fdatasync, shared by the changes made meanwhile) before it is answered.
use super::replication::{Group, Journaled};
use crate::disk_sync::DiskSync;
use crate::error::{Result, VmrmError};
use crate::pb::SanOperation;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// A disk's persistent reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub key: u64,
    pub owner: String,
}

/// Everything the SAN knows at start.
#[derive(Default)]
pub struct Loaded {
    pub holders: HashMap<String, Holder>,
    pub fences: HashMap<String, u64>,
    /// Each disk's newest record row (accepted writes fold into it).
    pub last_ops: HashMap<String, SanOperation>,
    pub last_sequence: u64,
    pub records: u64,
    /// Each disk's newest written block and the copy that wrote it.
    pub heads: HashMap<String, (u64, String)>,
    pub groups: Vec<Group>,
}

#[derive(Clone)]
pub struct SanStore {
    disk: DiskSync,
    holders: sled::Tree,
    fences: sled::Tree,
    /// Sequence number (big-endian) → operation (protobuf).
    record: sled::Tree,
    /// Disk → its newest written block (big-endian) and the writer's stamp.
    heads: sled::Tree,
    /// Consistency group name → this SAN's part in it (JSON).
    groups: sled::Tree,
    /// Group name, 0, sequence (big-endian) → a write its secondary has not applied (protobuf).
    journal: sled::Tree,
}

/// The journal key of `group`'s write `sequence` (group names hold no NUL).
fn journal_key(group: &str, sequence: u64) -> Vec<u8> {
    let mut key = group.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn io(e: impl std::fmt::Display) -> VmrmError {
    VmrmError::unavailable(format!("the SAN's store failed: {e}"))
}

impl SanStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new().path(dir).open().map_err(|e| {
            VmrmError::precondition(format!("the SAN's store {} cannot be opened ({e})", dir.display()))
        })?;
        let disk = DiskSync::new(&db, dir).map_err(io)?;
        Ok(Self {
            holders: db.open_tree("holders").map_err(io)?,
            fences: db.open_tree("fences").map_err(io)?,
            record: db.open_tree("record").map_err(io)?,
            heads: db.open_tree("heads").map_err(io)?,
            groups: db.open_tree("groups").map_err(io)?,
            journal: db.open_tree("journal").map_err(io)?,
            disk,
        })
    }

    pub fn load(&self) -> Result<Loaded> {
        let mut loaded = Loaded::default();
        for item in self.holders.iter() {
            let (disk, holder) = item.map_err(io)?;
            let holder: Holder = serde_json::from_slice(&holder).map_err(io)?;
            loaded.holders.insert(String::from_utf8_lossy(&disk).into_owned(), holder);
        }
        for item in self.fences.iter() {
            let (disk, fence) = item.map_err(io)?;
            let fence = fence.as_ref().try_into().map(u64::from_be_bytes).map_err(io)?;
            loaded.fences.insert(String::from_utf8_lossy(&disk).into_owned(), fence);
        }
        for item in self.record.iter() {
            let (_, op) = item.map_err(io)?;
            let op = SanOperation::decode(op.as_ref()).map_err(io)?;
            loaded.last_sequence = loaded.last_sequence.max(op.sequence);
            loaded.records += 1;
            loaded.last_ops.insert(op.disk.clone(), op);
        }
        for item in self.heads.iter() {
            let (disk, head) = item.map_err(io)?;
            let (block, writer) = head.split_at_checked(8).ok_or_else(|| io("a disk's head is cut short"))?;
            let block = u64::from_be_bytes(block.try_into().map_err(io)?);
            let head = (block, String::from_utf8_lossy(writer).into_owned());
            loaded.heads.insert(String::from_utf8_lossy(&disk).into_owned(), head);
        }
        for item in self.groups.iter() {
            let (_, group) = item.map_err(io)?;
            let mut group: Group = serde_json::from_slice(&group).map_err(io)?;
            // The row is rewritten at each answer of the peer; the writes since are journaled.
            let range = journal_key(&group.name, 0)..=journal_key(&group.name, u64::MAX);
            if let Some(item) = self.journal.range(range).next_back() {
                let newest = Journaled::decode(item.map_err(io)?.1.as_ref()).map_err(io)?;
                group.sequence = group.sequence.max(newest.sequence);
            }
            loaded.groups.push(group);
        }
        Ok(loaded)
    }

    pub fn put_group(&self, group: &Group) -> Result<()> {
        self.groups.insert(group.name.as_bytes(), serde_json::to_vec(group).map_err(io)?).map_err(io)?;
        Ok(())
    }

    pub fn journal_append(&self, group: &str, write: &Journaled) -> Result<()> {
        self.journal.insert(journal_key(group, write.sequence), write.encode_to_vec()).map_err(io)?;
        Ok(())
    }

    /// Up to `limit` of `group`'s journaled writes after sequence `after`, oldest first.
    pub fn journal_after(&self, group: &str, after: u64, limit: u64) -> Result<Vec<Journaled>> {
        let range = journal_key(group, after.saturating_add(1))..journal_key(group, u64::MAX);
        let rows = self.journal.range(range).take(limit as usize);
        rows.map(|item| Journaled::decode(item.map_err(io)?.1.as_ref()).map_err(io)).collect()
    }

    /// Drops `group`'s journaled writes up to sequence `upto` (all of them: `u64::MAX`).
    pub fn journal_trim(&self, group: &str, upto: u64) -> Result<()> {
        for item in self.journal.range(journal_key(group, 0)..=journal_key(group, upto)).keys() {
            self.journal.remove(item.map_err(io)?).map_err(io)?;
        }
        Ok(())
    }

    /// A disk's newest written block (on the disk at the next [`Self::flush`]).
    pub fn set_head(&self, disk: &str, block: u64, writer: &str) -> Result<()> {
        let mut value = block.to_be_bytes().to_vec();
        value.extend_from_slice(writer.as_bytes());
        self.heads.insert(disk, value).map_err(io)?;
        Ok(())
    }

    /// Forgets a disk's reservation, fence and head.
    pub fn forget(&self, disk: &str) -> Result<()> {
        for tree in [&self.holders, &self.fences, &self.heads] {
            tree.remove(disk).map_err(io)?;
        }
        Ok(())
    }

    pub fn set_holder(&self, disk: &str, holder: &Holder) -> Result<()> {
        self.holders.insert(disk, serde_json::to_vec(holder).map_err(io)?).map_err(io)?;
        Ok(())
    }

    pub fn set_fence(&self, disk: &str, fence: u64) -> Result<()> {
        self.fences.insert(disk, &fence.to_be_bytes()).map_err(io)?;
        Ok(())
    }

    /// Writes (or rewrites, when a write folds into it) one record row.
    pub fn put_op(&self, op: &SanOperation) -> Result<()> {
        self.record.insert(op.sequence.to_be_bytes(), op.encode_to_vec()).map_err(io)?;
        Ok(())
    }

    /// Drops the oldest record row (the record is bounded).
    pub fn drop_oldest_op(&self) -> Result<()> {
        self.record.pop_min().map_err(io)?;
        Ok(())
    }

    /// The record, oldest first, of one disk or (`""`) every disk.
    pub fn ops(&self, disk: &str) -> Result<Vec<SanOperation>> {
        let mut out = Vec::new();
        for item in self.record.iter() {
            let (_, op) = item.map_err(io)?;
            let op = SanOperation::decode(op.as_ref()).map_err(io)?;
            if disk.is_empty() || op.disk == disk {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// Returns once every change made so far is on the disk.
    pub async fn flush(&self) -> Result<()> {
        self.disk.flush().await.map_err(io)
    }
}
