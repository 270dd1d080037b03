//! The replicated tables on sled. `apply` executes commands in log order and records the last
//! applied log id and membership in the same sled database, so a restarted member resumes
//! where it stopped (openraft replays whatever the tables had not yet seen).
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
use super::locks::{self, VmLock};
use super::tables::{StoredRow, Table};
use super::types::{Command, CommandResult, TypeConfig};
use crate::disk_sync::DiskSync;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use strum::VariantArray;

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const META_TREE: &str = "sm/meta";
const LAST_APPLIED: &[u8] = b"last_applied";
/// Which generation of the table trees is current (absent: 0, the trees without a suffix).
const GENERATION: &[u8] = b"generation";
const MEMBERSHIP: &[u8] = b"membership";
const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

#[derive(Clone)]
pub struct SledStateMachine {
    disk: DiskSync,
    db: sled::Db,
    meta: sled::Tree,
    snapshot: sled::Tree,
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

/// Rows an append-only table keeps (the event log): older ones are dropped as new ones arrive,
/// so the tables stay bounded under a sustained stream of events.
pub const APPEND_RETENTION: u64 = 50_000;

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
        let sm =
            Self { disk: disk.clone(), meta: db.open_tree(META_TREE)?, snapshot: db.open_tree("sm/snapshot")?, db };
        sm.drop_generations_but(current_generation(&sm.meta)?)?;
        Ok(sm)
    }

    fn tree(&self, table: Table) -> StorageResult<sled::Tree> {
        table_tree(&self.db, table).map_err(sm_read)
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

    /// Makes `generation` the current tables, with the snapshot's log id and membership, in
    /// one atomic batch.
    fn switch(&self, generation: u64, meta: &SnapshotMeta<NodeId, BasicNode>) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        batch.insert(GENERATION, &generation.to_be_bytes());
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

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> StorageResult<()> {
        let b = serde_json::to_vec(value).map_err(sm_write)?;
        self.meta.insert(key, b).map_err(sm_write)?;
        Ok(())
    }

    fn row_version(tree: &sled::Tree, key: &[u8]) -> StorageResult<u64> {
        Ok(match tree.get(key).map_err(sm_read)? {
            Some(b) => serde_json::from_slice::<StoredRow>(&b).map_err(sm_read)?.version,
            None => 0,
        })
    }

    fn put_row(tree: &sled::Tree, key: &[u8], version: u64, value: serde_json::Value) -> StorageResult<()> {
        let bytes = serde_json::to_vec(&StoredRow { version, value }).map_err(sm_write)?;
        tree.insert(key, bytes).map_err(sm_write)?;
        Ok(())
    }

    fn execute(&self, index: u64, command: Command) -> StorageResult<CommandResult> {
        let applied = CommandResult::Applied { version: index };
        match command {
            Command::Put { table, key, value } => {
                Self::put_row(&self.tree(table)?, &encode_key(table, &key), index, value)?;
            }
            Command::PutIfVersion { table, key, expected_version, value } => {
                let tree = self.tree(table)?;
                let key = encode_key(table, &key);
                let current = Self::row_version(&tree, &key)?;
                if current != expected_version {
                    return Ok(CommandResult::VersionMismatch { current });
                }
                Self::put_row(&tree, &key, index, value)?;
            }
            Command::Delete { table, key } => {
                self.tree(table)?.remove(encode_key(table, &key)).map_err(sm_write)?;
            }
            Command::Append { table, value } => {
                let tree = self.tree(table)?;
                let Some(sequence) = Self::last_sequence(&tree)?.checked_add(1).filter(|s| *s < u64::MAX) else {
                    return Ok(CommandResult::Rejected(format!("table {table} has run out of sequence numbers")));
                };
                Self::put_row(&tree, &sequence.to_be_bytes(), index, value)?;
                if let Some(expired) = sequence.checked_sub(APPEND_RETENTION) {
                    tree.remove(expired.to_be_bytes()).map_err(sm_write)?;
                }
            }
            Command::Lock { vm, operation, holder, at_ms, how } => {
                let current = match self.vm_lock(&vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                return match locks::acquire(current.as_ref(), &vm, operation, holder, at_ms, how) {
                    Ok(lock) => {
                        self.put_lock(index, &lock)?;
                        Ok(CommandResult::Locked { epoch: lock.epoch })
                    }
                    Err(refusal) => Ok(CommandResult::Refused(refusal)),
                };
            }
            Command::Unlock { vm, epoch, at_ms } => {
                let current = match self.vm_lock(&vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                match locks::release(current.as_ref(), epoch, at_ms) {
                    Ok(lock) => self.put_lock(index, &lock)?,
                    Err(refusal) => return Ok(CommandResult::Refused(refusal)),
                }
            }
            Command::Fenced { vm, epoch, command } => {
                let current = match self.vm_lock(&vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                return match locks::check_fence(current.as_ref(), epoch) {
                    Ok(()) => self.execute(index, *command),
                    Err(refusal) => Ok(CommandResult::Refused(refusal)),
                };
            }
            Command::Batch(commands) => {
                let results = commands.into_iter().map(|c| self.execute(index, c)).collect::<StorageResult<_>>()?;
                return Ok(CommandResult::Batch(results));
            }
        }
        Ok(applied)
    }

    /// VM `vm`'s lock; a lock row that does not decode (written before rows were checked)
    /// rejects the command instead of failing the state machine.
    fn vm_lock(&self, vm: &str) -> StorageResult<Result<Option<VmLock>, CommandResult>> {
        let Some(b) = self.tree(Table::Locked)?.get(vm).map_err(sm_read)? else { return Ok(Ok(None)) };
        let row: StoredRow = serde_json::from_slice(&b).map_err(sm_read)?;
        Ok(serde_json::from_value(row.value)
            .map(Some)
            .map_err(|e| CommandResult::Rejected(format!("the lock row of VM {vm} does not decode: {e}"))))
    }

    /// Applies one command as a caller submitted it: checked first, like before proposing.
    fn apply_checked(&self, index: u64, command: Command) -> StorageResult<CommandResult> {
        match command.check() {
            Ok(_) => self.execute(index, command),
            Err(why) => Ok(CommandResult::Rejected(why)),
        }
    }

    fn put_lock(&self, index: u64, lock: &VmLock) -> StorageResult<()> {
        let value = serde_json::to_value(lock).map_err(sm_write)?;
        Self::put_row(&self.tree(Table::Locked)?, lock.vm.as_bytes(), index, value)
    }

    /// The highest sequence number of an append-only table (0 when empty). Derived from the
    /// rows themselves, so a member that installed a snapshot continues the same numbering.
    fn last_sequence(tree: &sled::Tree) -> StorageResult<u64> {
        Ok(match tree.last().map_err(sm_read)? {
            Some((key, _)) => key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or_default(),
            None => 0,
        })
    }

    fn current_snapshot(&self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(meta) = self.snapshot.get(SNAPSHOT_META).map_err(sm_read)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta<NodeId, BasicNode> = serde_json::from_slice(&meta).map_err(sm_read)?;
        let data = self.snapshot.get(SNAPSHOT_DATA).map_err(sm_read)?.map(|d| d.to_vec()).unwrap_or_default();
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }

    /// Keeps the latest snapshot so a lagging member can be sent it after a restart too.
    fn store_snapshot(&self, meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, serde_json::to_vec(meta).map_err(sm_write)?);
        batch.insert(SNAPSHOT_DATA, data);
        self.snapshot.apply_batch(batch).map_err(sm_write)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SledStateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let last_applied: Option<LogId<NodeId>> = self.get_meta(LAST_APPLIED)?;
        let last_membership: StoredMembership<NodeId, BasicNode> = self.get_meta(MEMBERSHIP)?.unwrap_or_default();
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

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.get_meta(LAST_APPLIED)?, self.get_meta(MEMBERSHIP)?.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandResult>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let result = match entry.payload {
                EntryPayload::Blank => CommandResult::Applied { version: index },
                // A batch of the write path packs many callers' commands: each is checked alone.
                EntryPayload::Normal(Command::Batch(commands)) => CommandResult::Batch(
                    commands.into_iter().map(|c| self.apply_checked(index, c)).collect::<StorageResult<_>>()?,
                ),
                EntryPayload::Normal(command) => self.apply_checked(index, command)?,
                EntryPayload::Membership(m) => {
                    self.put_meta(MEMBERSHIP, &StoredMembership::new(Some(entry.log_id), m))?;
                    CommandResult::Applied { version: index }
                }
            };
            self.put_meta(LAST_APPLIED, &entry.log_id)?;
            results.push(result);
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
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let body: SnapshotBody = serde_json::from_slice(&data).map_err(sm_read)?;
        let next = current_generation(&self.meta).map_err(sm_read)? + 1;
        self.stage(next, &body)?;
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

    fn lock(how: Acquire) -> Command {
        Command::Lock { vm: "vm-1".into(), operation: VmStatus::RestartInProgress, holder: 1, at_ms: 5, how }
    }

    fn fenced_put(epoch: u64, value: u64) -> Command {
        let put = Command::Put { table: Table::Vm, key: "vm-1".into(), value: value.into() };
        Command::Fenced { vm: "vm-1".into(), epoch, command: Box::new(put) }
    }

    fn vm_row(sm: &SledStateMachine) -> Option<serde_json::Value> {
        let bytes = sm.tree(Table::Vm).unwrap().get("vm-1").unwrap()?;
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
        let row = crate::domain::SuAliveRecord { host: host.into(), incarnation: "i".into(), at_ms: 0 };
        entry(
            index,
            Command::Put { table: Table::SuAlive, key: host.into(), value: serde_json::to_value(row).unwrap() },
        )
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

    #[test]
    fn writes_under_a_lock_apply_only_at_its_current_epoch() {
        let (_dir, disk) = disk();
        let sm = SledStateMachine::open(&disk).unwrap();
        assert_eq!(sm.execute(1, lock(Acquire::WhenFree)).unwrap(), CommandResult::Locked { epoch: 1 });
        assert!(matches!(
            sm.execute(2, lock(Acquire::WhenFree)).unwrap(),
            CommandResult::Refused(LockRefusal::Held(held)) if held.epoch == 1 && held.holder == 1
        ));
        assert_eq!(sm.execute(3, fenced_put(1, 10)).unwrap(), CommandResult::Applied { version: 3 });
        // Another controller takes the operation over; the first one's writes are fenced out.
        assert_eq!(sm.execute(4, lock(Acquire::TakeOver { epoch: 1 })).unwrap(), CommandResult::Locked { epoch: 2 });
        assert_eq!(
            sm.execute(5, fenced_put(1, 11)).unwrap(),
            CommandResult::Refused(LockRefusal::Stale { current: 2 })
        );
        assert_eq!(vm_row(&sm), Some(10.into()), "the fenced-out write changed nothing");
        let unlock = |epoch| Command::Unlock { vm: "vm-1".into(), epoch, at_ms: 6 };
        assert_eq!(sm.execute(6, unlock(1)).unwrap(), CommandResult::Refused(LockRefusal::Stale { current: 2 }));
        assert_eq!(sm.execute(7, unlock(2)).unwrap(), CommandResult::Applied { version: 7 });
        assert_eq!(
            sm.execute(8, fenced_put(2, 12)).unwrap(),
            CommandResult::Refused(LockRefusal::Stale { current: 2 })
        );
        assert_eq!(sm.execute(9, lock(Acquire::WhenFree)).unwrap(), CommandResult::Locked { epoch: 3 });
    }
}
