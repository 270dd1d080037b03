//! The replicated tables on sled. `apply` executes commands in log order and records the last
//! applied log id and membership in the same sled transaction as the rows ([`applying`]), so a
//! restarted member resumes exactly where it stopped (openraft replays whatever the tables had
//! not yet seen, and nothing twice).
//!
//! A snapshot is the JSON of every table plus its metadata; installing one replaces the tables
//! atomically: its rows go into a new *generation* of table trees, which is on the disk before
//! one batch of the meta tree switches to it together with the last applied log id and the
//! membership; then the old generation is dropped. A crash at any point leaves either the
//! previous tables with their log id or the new ones with theirs — never tables half replaced
//! under a log id that no longer describes them (a generation left half built is dropped when
//! the member opens). The latest snapshot lives in a tree of its own: sled rewrites a whole leaf when it
//! consolidates, so a multi-megabyte snapshot next to `last_applied` (written with every entry)
//! would be copied out again and again.
// openraft's own error types are large; they are returned as openraft defines them.
#![allow(clippy::result_large_err)]
use super::applying::{self, ENTRIES_PER_TRANSACTION, LAST_APPLIED, MEMBERSHIP, sequence_key};
use super::member::Member;
use super::tables::{StoredRow, Table};
use super::types::{CommandResult, TypeConfig};
use crate::disk_sync::DiskSync;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use strum::VariantArray;

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const META_TREE: &str = "sm/meta";
/// Which generation of the table trees is current (absent: 0, the trees without a suffix).
const GENERATION: &[u8] = b"generation";
const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

#[derive(Clone)]
pub struct SledStateMachine {
    disk: DiskSync,
    db: sled::Db,
    meta: sled::Tree,
    snapshot: sled::Tree,
    /// Held while the tables change (apply, install) and while a snapshot reads them: openraft
    /// builds snapshots in a task of their own, concurrently with applies, and sled has no
    /// point-in-time view, so without it a snapshot could hold rows newer than its log id —
    /// which a member installing it would then apply a second time.
    tables_in_use: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    tables: BTreeMap<String, Vec<(Vec<u8>, StoredRow)>>,
}

fn sm_read(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&e).into()
}

fn sm_write(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

/// Encodes a table key: append-only tables sort by sequence number.
pub fn encode_key(table: Table, key: &str) -> Vec<u8> {
    match (table.is_append_only(), key.parse::<u64>()) {
        (true, Ok(i)) => i.to_be_bytes().to_vec(),
        _ => key.as_bytes().to_vec(),
    }
}

/// Decodes a stored key back to the string callers use.
pub fn decode_key(table: Table, key: &[u8]) -> String {
    if table.is_append_only() && key.len() == 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(key);
        return u64::from_be_bytes(b).to_string();
    }
    String::from_utf8_lossy(key).into_owned()
}

fn current_generation(meta: &sled::Tree) -> sled::Result<u64> {
    Ok(meta.get(GENERATION)?.and_then(|b| b.as_ref().try_into().ok()).map(u64::from_be_bytes).unwrap_or(0))
}

/// The name of `table`'s tree in generation `generation`.
fn generation_tree(table: Table, generation: u64) -> String {
    match generation {
        0 => table.tree_name(),
        g => format!("{}@{g}", table.tree_name()),
    }
}

/// `table`'s current tree in the member's database `db` (for reads outside the state machine).
pub fn table_tree(db: &sled::Db, table: Table) -> sled::Result<sled::Tree> {
    let generation = current_generation(&db.open_tree(META_TREE)?)?;
    db.open_tree(generation_tree(table, generation))
}

impl SledStateMachine {
    pub fn open(disk: &DiskSync) -> sled::Result<Self> {
        let db = disk.db().clone();
        let sm = Self {
            disk: disk.clone(),
            meta: db.open_tree(META_TREE)?,
            snapshot: db.open_tree("sm/snapshot")?,
            db,
            tables_in_use: Arc::default(),
        };
        sm.drop_generations_but(current_generation(&sm.meta)?)?;
        Ok(sm)
    }

    fn tree(&self, table: Table) -> StorageResult<sled::Tree> {
        table_tree(&self.db, table).map_err(sm_read)
    }

    /// Every table's current tree, in [`Table::VARIANTS`] order.
    fn tables(&self) -> StorageResult<Vec<sled::Tree>> {
        Table::VARIANTS.iter().map(|t| self.tree(*t)).collect()
    }

    /// Drops every table tree not of `generation`: the old tables after an install, or a
    /// generation an install left half built.
    fn drop_generations_but(&self, generation: u64) -> sled::Result<()> {
        let keep: Vec<String> = Table::VARIANTS.iter().map(|t| generation_tree(*t, generation)).collect();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if name.starts_with("table/") && !keep.contains(&name) {
                self.db.drop_tree(name.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Writes the snapshot's rows into the table trees of `generation`, which no one reads yet.
    fn stage(&self, generation: u64, body: &SnapshotBody) -> StorageResult<()> {
        for &table in Table::VARIANTS {
            let tree = self.db.open_tree(generation_tree(table, generation)).map_err(sm_write)?;
            tree.clear().map_err(sm_write)?;
            for (k, row) in body.tables.get(&table.to_string()).into_iter().flatten() {
                Self::put_row(&tree, k, row.version, row.value.clone())?;
            }
        }
        Ok(())
    }

    /// Makes `generation` the current tables, with the snapshot's log id, membership and the
    /// append-only tables' sequence numbers, in one atomic batch.
    fn switch(&self, generation: u64, meta: &SnapshotMeta<NodeId, Member>) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        batch.insert(GENERATION, &generation.to_be_bytes());
        for table in Table::VARIANTS.iter().filter(|t| t.is_append_only()) {
            let tree = self.db.open_tree(generation_tree(*table, generation)).map_err(sm_read)?;
            let last = tree.last().map_err(sm_read)?.and_then(|(k, _)| k.as_ref().try_into().ok());
            batch.insert(sequence_key(*table), &last.map_or(0, u64::from_be_bytes).to_be_bytes());
        }
        match &meta.last_log_id {
            Some(last) => batch.insert(LAST_APPLIED, serde_json::to_vec(last).map_err(sm_write)?),
            None => batch.remove(LAST_APPLIED),
        }
        batch.insert(MEMBERSHIP, serde_json::to_vec(&meta.last_membership).map_err(sm_write)?);
        self.meta.apply_batch(batch).map_err(sm_write)
    }

    fn get_meta<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> StorageResult<Option<T>> {
        match self.meta.get(key).map_err(sm_read)? {
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(sm_read),
            None => Ok(None),
        }
    }

    fn put_row(tree: &sled::Tree, key: &[u8], version: u64, value: serde_json::Value) -> StorageResult<()> {
        let bytes = serde_json::to_vec(&StoredRow { version, value }).map_err(sm_write)?;
        tree.insert(key, bytes).map_err(sm_write)?;
        Ok(())
    }

    fn current_snapshot(&self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(meta) = self.snapshot.get(SNAPSHOT_META).map_err(sm_read)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta<NodeId, Member> = serde_json::from_slice(&meta).map_err(sm_read)?;
        let data = self.snapshot.get(SNAPSHOT_DATA).map_err(sm_read)?.map(|d| d.to_vec()).unwrap_or_default();
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }

    /// Keeps the latest snapshot so a lagging member can be sent it after a restart too.
    fn store_snapshot(&self, meta: &SnapshotMeta<NodeId, Member>, data: &[u8]) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, serde_json::to_vec(meta).map_err(sm_write)?);
        batch.insert(SNAPSHOT_DATA, data);
        self.snapshot.apply_batch(batch).map_err(sm_write)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SledStateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let tables_in_use = self.tables_in_use.clone();
        let _reading = tables_in_use.lock().await;
        // Reading every table and encoding it is blocking work: off the async workers, which
        // carry the heartbeats.
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.snapshot_now()).await.map_err(sm_read)?
    }
}

impl SledStateMachine {
    /// A snapshot of the tables as they are (the caller keeps them from changing meanwhile).
    fn snapshot_now(&self) -> StorageResult<Snapshot<TypeConfig>> {
        let last_applied: Option<LogId<NodeId>> = self.get_meta(LAST_APPLIED)?;
        let last_membership: StoredMembership<NodeId, Member> = self.get_meta(MEMBERSHIP)?.unwrap_or_default();
        let mut tables = BTreeMap::new();
        for &table in Table::VARIANTS {
            let rows = self
                .tree(table)?
                .iter()
                .map(|item| {
                    let (k, v) = item.map_err(sm_read)?;
                    Ok((k.to_vec(), serde_json::from_slice(&v).map_err(sm_read)?))
                })
                .collect::<StorageResult<Vec<_>>>()?;
            tables.insert(table.to_string(), rows);
        }
        let data = serde_json::to_vec(&SnapshotBody { tables }).map_err(sm_read)?;
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, crate::now_ms()),
            None => format!("empty-{}", crate::now_ms()),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership, snapshot_id };
        self.store_snapshot(&meta, &data)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>)> {
        Ok((self.get_meta(LAST_APPLIED)?, self.get_meta(MEMBERSHIP)?.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandResult>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let tables_in_use = self.tables_in_use.clone();
        let _changing = tables_in_use.lock().await;
        let tables = self.tables()?;
        let mut results = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(ENTRIES_PER_TRANSACTION) {
            results.extend(applying::apply(&tables, &self.meta, chunk)?);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let tables_in_use = self.tables_in_use.clone();
        let _changing = tables_in_use.lock().await;
        let data = snapshot.into_inner();
        let next = current_generation(&self.meta).map_err(sm_read)? + 1;
        // Decoding and writing every row is blocking work: off the async workers.
        let sm = self.clone();
        let data = tokio::task::spawn_blocking(move || -> StorageResult<Vec<u8>> {
            let body: SnapshotBody = serde_json::from_slice(&data).map_err(sm_read)?;
            sm.stage(next, &body)?;
            Ok(data)
        })
        .await
        .map_err(sm_read)??;
        // The new tables are on the disk before anything points at them.
        self.disk.flush().await.map_err(sm_write)?;
        self.switch(next, meta)?;
        self.store_snapshot(meta, &data)?;
        self.disk.flush().await.map_err(sm_write)?;
        self.drop_generations_but(next).map_err(sm_write)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        self.current_snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VmStatus;
    use crate::hsdb::locks::{Acquire, LockRefusal};
    use crate::hsdb::types::Command;
    use openraft::EntryPayload;

    fn lock(how: Acquire) -> Command {
        Command::Lock { vm: "vm-1".into(), operation: VmStatus::RestartInProgress, holder: 1, at_ms: 5, how }
    }

    fn alive(host: &str, at_ms: i64) -> serde_json::Value {
        let row = crate::domain::SuAliveRecord { host: host.into(), incarnation: "i".into(), at_ms };
        serde_json::to_value(row).unwrap()
    }

    /// A write of host-1's alive row (at `at_ms`) under VM vm-1's lock at `epoch`.
    fn fenced_put(epoch: u64, at_ms: i64) -> Command {
        let put = Command::Put { table: Table::SuAlive, key: "host-1".into(), value: alive("host-1", at_ms) };
        Command::Fenced { vm: "vm-1".into(), epoch, command: Box::new(put) }
    }

    fn fenced_row(sm: &SledStateMachine) -> Option<serde_json::Value> {
        let bytes = sm.tree(Table::SuAlive).unwrap().get("host-1").unwrap()?;
        Some(serde_json::from_slice::<StoredRow>(&bytes).unwrap().value)
    }

    fn disk() -> (tempfile::TempDir, DiskSync) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let disk = DiskSync::new(&db, dir.path()).unwrap();
        (dir, disk)
    }

    fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(command),
        }
    }

    /// The review's poison entries, reaching the log as a leader of older code would have put
    /// them there: each is rejected, nothing changes, and the VM's lock still works after them.
    #[tokio::test]
    async fn poison_entries_are_rejected_not_fatal() {
        let (_dir, disk) = disk();
        let mut sm = SledStateMachine::open(&disk).unwrap();
        let poison = [
            Command::Put { table: Table::Locked, key: "vm-1".into(), value: 42.into() },
            Command::Put { table: Table::Event, key: u64::MAX.to_string(), value: serde_json::json!({}) },
            Command::Put { table: Table::RecoveryTask, key: "t".into(), value: "garbage".into() },
            Command::Delete { table: Table::Locked, key: "vm-1".into() },
        ];
        let packed = Command::Batch(poison.to_vec());
        let entries = poison.into_iter().chain([packed, lock(Acquire::WhenFree)]).zip(1..).map(|(c, i)| entry(i, c));
        let results = sm.apply(entries.collect::<Vec<_>>()).await.expect("apply never fails on user data");
        let [a, b, c, d, CommandResult::Batch(packed), locked] = &results[..] else { panic!("{results:?}") };
        for rejected in [a, b, c, d].into_iter().chain(packed) {
            assert!(matches!(rejected, CommandResult::Rejected(_)), "{rejected:?}");
        }
        assert_eq!(*locked, CommandResult::Locked { epoch: 1 });
        assert!(sm.tree(Table::Event).unwrap().is_empty() && sm.tree(Table::RecoveryTask).unwrap().is_empty());
    }

    fn put(index: u64, host: &str) -> Entry<TypeConfig> {
        entry(index, Command::Put { table: Table::SuAlive, key: host.into(), value: alive(host, 0) })
    }

    fn hosts(sm: &SledStateMachine) -> Vec<String> {
        let tree = sm.tree(Table::SuAlive).unwrap();
        tree.iter().keys().map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap()).collect()
    }

    /// M7: an install cut short (here: staged, never switched) leaves the previous tables whole
    /// under their own log id, and the half-built generation is gone when the member opens;
    /// a complete install replaces the tables and leaves one generation.
    #[tokio::test]
    async fn a_snapshot_install_cut_short_leaves_the_previous_tables_whole() {
        let (_dir, disk) = disk();
        let mut source = SledStateMachine::open(&disk).unwrap();
        source.apply(vec![put(1, "a"), put(2, "b")]).await.unwrap();
        let snapshot = source.build_snapshot().await.unwrap();
        let (_dir2, disk2) = self::disk();
        let mut member = SledStateMachine::open(&disk2).unwrap();
        member.apply(vec![put(1, "old")]).await.unwrap();
        let body: SnapshotBody = serde_json::from_slice(snapshot.snapshot.get_ref()).unwrap();
        member.stage(1, &body).unwrap();
        drop(member);
        let mut member = SledStateMachine::open(&disk2).unwrap();
        assert_eq!(hosts(&member), ["old"], "the previous tables, whole");
        assert_eq!(member.applied_state().await.unwrap().0.map(|l| l.index), Some(1));
        let tables = |db: &sled::Db| {
            let name = Table::SuAlive.tree_name();
            db.tree_names().into_iter().filter(|n| n.starts_with(name.as_bytes())).count()
        };
        assert_eq!(tables(disk2.db()), 1, "the half-built generation was dropped");
        member.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
        assert_eq!(hosts(&member), ["a", "b"]);
        assert_eq!(member.applied_state().await.unwrap().0.map(|l| l.index), Some(2));
        assert_eq!(tables(disk2.db()), 1, "one generation of the tables left");
        assert_eq!(read_local_keys(disk2.db()), ["a", "b"], "readers outside the state machine follow");
        member.apply(vec![put(3, "c")]).await.unwrap();
        assert_eq!(hosts(&SledStateMachine::open(&disk2).unwrap()), ["a", "b", "c"]);
    }

    fn read_local_keys(db: &sled::Db) -> Vec<String> {
        crate::hsdb::client::read_local(db, Table::SuAlive, None).unwrap().into_iter().map(|r| r.key).collect()
    }

    fn event() -> Command {
        let e = crate::domain::EventRecord::new(crate::domain::EventName::VmFailureDetected, "vm", "x");
        Command::Append { table: Table::Event, value: serde_json::to_value(e).unwrap() }
    }

    /// Applies `command` alone as entry `index`.
    fn run(sm: &SledStateMachine, index: u64, command: Command) -> StorageResult<CommandResult> {
        let mut results = applying::apply(&sm.tables()?, &sm.meta, &[entry(index, command)])?;
        Ok(results.remove(0))
    }

    fn last_applied(sm: &SledStateMachine) -> Option<u64> {
        sm.get_meta::<LogId<NodeId>>(LAST_APPLIED).unwrap().map(|l| l.index)
    }

    /// M7: an entry whose apply fails halfway (here: a stored row that no longer decodes, met
    /// by its second command) leaves nothing of itself behind — not its first command's row,
    /// not its events' sequence, not the last applied log id — so a replay applies it whole.
    #[tokio::test]
    async fn an_apply_that_fails_halfway_leaves_nothing_of_itself() {
        let (_dir, disk) = disk();
        let mut sm = SledStateMachine::open(&disk).unwrap();
        sm.apply(vec![put(1, "a")]).await.unwrap();
        sm.tree(Table::SuAlive).unwrap().insert("host-9", b"not a row".as_slice()).unwrap();
        let append = event();
        let check = Command::PutIfVersion {
            table: Table::SuAlive,
            key: "host-9".into(),
            expected_version: 0,
            value: alive("host-9", 1),
        };
        let entry_2 = entry(2, Command::Batch(vec![append.clone(), lock(Acquire::WhenFree), check]));
        assert!(sm.apply(vec![entry_2]).await.is_err(), "the undecodable row fails the apply");
        assert_eq!(last_applied(&sm), Some(1));
        assert!(sm.tree(Table::Event).unwrap().is_empty(), "no event of the failed entry");
        assert!(sm.tree(Table::Locked).unwrap().is_empty(), "no lock of the failed entry");
        // Applied again once the row is readable: whole, with the first sequence number and epoch.
        sm.tree(Table::SuAlive).unwrap().remove("host-9").unwrap();
        let entry_2 = entry(2, Command::Batch(vec![append.clone(), lock(Acquire::WhenFree)]));
        let results = sm.apply(vec![entry_2, entry(3, append)]).await.unwrap();
        let CommandResult::Batch(batch) = &results[0] else { panic!("{results:?}") };
        assert_eq!(batch[1], CommandResult::Locked { epoch: 1 });
        assert_eq!(last_applied(&sm), Some(3));
        let events: Vec<String> = crate::hsdb::client::read_local(disk.db(), Table::Event, None)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(events, ["1", "2"]);
    }

    /// An append-only table's numbering goes on from a snapshot's rows, after an install too.
    #[tokio::test]
    async fn sequence_numbers_continue_across_a_snapshot_install() {
        let (_dir, disk) = disk();
        let mut source = SledStateMachine::open(&disk).unwrap();
        source.apply(vec![entry(1, event()), entry(2, event())]).await.unwrap();
        let snapshot = source.build_snapshot().await.unwrap();
        let (_dir2, disk2) = self::disk();
        let mut member = SledStateMachine::open(&disk2).unwrap();
        member.apply(vec![entry(1, event())]).await.unwrap();
        member.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
        member.apply(vec![entry(3, event())]).await.unwrap();
        let keys: Vec<String> = crate::hsdb::client::read_local(disk2.db(), Table::Event, None)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["1", "2", "3"]);
    }

    /// A snapshot is built from tables nobody changes meanwhile: it waits for an apply in
    /// progress, and an apply waits for it.
    #[tokio::test]
    async fn a_snapshot_waits_while_the_tables_change() {
        let (_dir, disk) = disk();
        let mut sm = SledStateMachine::open(&disk).unwrap();
        sm.apply(vec![put(1, "a")]).await.unwrap();
        let changing = sm.tables_in_use.clone().lock_owned().await;
        let mut builder = sm.get_snapshot_builder().await;
        let building = tokio::spawn(async move { builder.build_snapshot().await.unwrap() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!building.is_finished(), "the snapshot waits for the tables");
        drop(changing);
        let snapshot = building.await.unwrap();
        assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(1));
    }

    #[test]
    fn writes_under_a_lock_apply_only_at_its_current_epoch() {
        let (_dir, disk) = disk();
        let sm = SledStateMachine::open(&disk).unwrap();
        assert_eq!(run(&sm, 1, lock(Acquire::WhenFree)).unwrap(), CommandResult::Locked { epoch: 1 });
        assert!(matches!(
            run(&sm, 2, lock(Acquire::WhenFree)).unwrap(),
            CommandResult::Refused(LockRefusal::Held(held)) if held.epoch == 1 && held.holder == 1
        ));
        assert_eq!(run(&sm, 3, fenced_put(1, 10)).unwrap(), CommandResult::Applied { version: 3 });
        // Another controller takes the operation over; the first one's writes are fenced out.
        assert_eq!(run(&sm, 4, lock(Acquire::TakeOver { epoch: 1 })).unwrap(), CommandResult::Locked { epoch: 2 });
        assert_eq!(run(&sm, 5, fenced_put(1, 11)).unwrap(), CommandResult::Refused(LockRefusal::Stale { current: 2 }));
        assert_eq!(fenced_row(&sm), Some(alive("host-1", 10)), "the fenced-out write changed nothing");
        let unlock = |epoch| Command::Unlock { vm: "vm-1".into(), epoch, at_ms: 6 };
        assert_eq!(run(&sm, 6, unlock(1)).unwrap(), CommandResult::Refused(LockRefusal::Stale { current: 2 }));
        assert_eq!(run(&sm, 7, unlock(2)).unwrap(), CommandResult::Applied { version: 7 });
        assert_eq!(run(&sm, 8, fenced_put(2, 12)).unwrap(), CommandResult::Refused(LockRefusal::Stale { current: 2 }));
        assert_eq!(run(&sm, 9, lock(Acquire::WhenFree)).unwrap(), CommandResult::Locked { epoch: 3 });
    }
}
