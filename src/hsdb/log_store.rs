//! The Raft log on sled: tree `raft/log` (big-endian index → JSON entry) and tree `raft/meta`
//! (vote, last purged log id, committed). An appended entry is reported durable (openraft's
//! `LogFlushed` callback) only after a [`DiskSync`] flush (sled's flush completed by
//! `fdatasync`), and `save_vote` flushes before it returns: an acknowledged entry or vote
//! survives a power loss.
//!
//! `append` itself only writes the entries and queues the callback; one flusher task fsyncs
//! for everything queued so far and then completes those callbacks in order. Raft therefore
//! replicates an entry to the followers while the leader's own fsync is still running, and
//! entries appended during one fsync share the next.
//!
//! The newest entries are also kept decoded in memory ([`RecentEntries`]), so replicating an
//! entry to each follower reads no sled and parses no JSON.
//!
//! A member never restarts as leader: `read_vote` hands openraft its own vote as not yet
//! committed, so it wins a fresh election and commits a blank entry of the new term before it
//! serves anything. openraft 0.9 would otherwise resume leadership at once with the commit
//! index it last stored (not fsynced, so possibly behind what clients were told) and answer
//! "linearizable" reads from before its last acknowledged writes — the SIGKILL test caught it.
// openraft's own error types are large; they are returned as openraft defines them.
#![allow(clippy::result_large_err)]
use super::recent_entries::{RECENT_ENTRIES_MAX_BYTES, RecentEntries};
use super::types::TypeConfig;
use crate::disk_sync::DiskSync;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const VOTE: &[u8] = b"vote";
const LAST_PURGED: &[u8] = b"last_purged";
const COMMITTED: &[u8] = b"committed";

#[derive(Clone)]
pub struct SledLogStore {
    node_id: NodeId,
    disk: DiskSync,
    log: sled::Tree,
    meta: sled::Tree,
    flusher: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
    recent: Arc<Mutex<RecentEntries<Entry<TypeConfig>>>>,
}

fn read_io(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_io(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl SledLogStore {
    /// Opens member `node_id`'s log trees and starts the flusher task (call within a tokio
    /// runtime).
    pub fn open(disk: &DiskSync, node_id: NodeId) -> sled::Result<Self> {
        let log = disk.db().open_tree("raft/log")?;
        let meta = disk.db().open_tree("raft/meta")?;
        let (flusher, queue) = mpsc::unbounded_channel();
        tokio::spawn(flush_in_order(disk.clone(), queue));
        let recent = Arc::new(Mutex::new(RecentEntries::new(RECENT_ENTRIES_MAX_BYTES)));
        Ok(Self { node_id, disk: disk.clone(), log, meta, flusher, recent })
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> StorageResult<Option<T>> {
        match self.meta.get(key).map_err(read_io)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_io),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> StorageResult<()> {
        let bytes = serde_json::to_vec(value).map_err(write_io)?;
        self.meta.insert(key, bytes).map_err(write_io)?;
        Ok(())
    }

    fn last_entry_log_id(&self) -> StorageResult<Option<LogId<NodeId>>> {
        match self.log.last().map_err(read_io)? {
            Some((_, bytes)) => {
                let entry: Entry<TypeConfig> = serde_json::from_slice(&bytes).map_err(read_io)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    fn recent(&self) -> MutexGuard<'_, RecentEntries<Entry<TypeConfig>>> {
        // The cache holds no invariant a panicking holder could break halfway.
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

/// Completes queued append callbacks, oldest first, each only after an fsync that began after
/// its entries were written. Ends when the store is dropped.
async fn flush_in_order(disk: DiskSync, mut queue: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>) {
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while let Ok(next) = queue.try_recv() {
            waiting.push(next);
        }
        let flushed = disk.flush().await.map_err(|e| e.to_string());
        for callback in waiting {
            callback.log_io_completed(flushed.clone().map_err(std::io::Error::other));
        }
    }
}

/// The vote as a restarted member must see it: a leadership of its own is demoted to a mere
/// vote for itself in that term (still binding: it votes for nobody else in that term), so the
/// member stands for election instead of resuming as leader (see the module docs).
fn without_own_leadership(vote: Vote<NodeId>, node_id: NodeId) -> Vote<NodeId> {
    match vote.is_committed() && vote.leader_id().voted_for() == Some(node_id) {
        true => Vote::new(vote.leader_id().term, node_id),
        false => vote,
    }
}

fn range_bytes(range: &impl RangeBounds<u64>) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let conv = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (conv(range.start_bound()), conv(range.end_bound()))
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        if let Some(entries) = self.recent().get(&range) {
            return Ok(entries);
        }
        self.log
            .range(range_bytes(&range))
            .map(|item| {
                let (_, bytes) = item.map_err(read_io)?;
                serde_json::from_slice(&bytes).map_err(read_io)
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.put_meta(VOTE, vote)?;
        self.disk.flush().await.map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        let vote: Option<Vote<NodeId>> = self.get_meta(VOTE)?;
        Ok(vote.map(|v| without_own_leadership(v, self.node_id)))
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut appended = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(write_io)?;
            batch.insert(&entry.log_id.index.to_be_bytes(), bytes.as_slice());
            appended.push((entry, bytes.len()));
        }
        self.log.apply_batch(batch).map_err(write_io)?;
        let mut recent = self.recent();
        for (entry, size) in appended {
            recent.appended(entry.log_id.index, entry, size);
        }
        drop(recent);
        self.flusher.send(callback).map_err(|_| write_io(std::io::Error::other("the log flusher has stopped")))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.recent().truncated(log_id.index);
        let mut batch = sled::Batch::default();
        for item in self.log.range(log_id.index.to_be_bytes()..) {
            let (key, _) = item.map_err(write_io)?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(write_io)?;
        self.disk.flush().await.map_err(write_io)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.put_meta(LAST_PURGED, &log_id)?;
        self.recent().purged(log_id.index);
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=log_id.index.to_be_bytes()) {
            let (key, _) = item.map_err(write_io)?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(write_io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_leader_only_remembers_voting_for_itself() {
        let demoted = without_own_leadership(Vote::new_committed(7, 1), 1);
        assert_eq!(demoted, Vote::new(7, 1));
        assert!(!demoted.is_committed());
    }

    #[test]
    fn other_votes_are_kept_as_stored() {
        for vote in [Vote::new_committed(7, 2), Vote::new(7, 1), Vote::new(7, 2)] {
            assert_eq!(without_own_leadership(vote, 1), vote);
        }
    }
}
