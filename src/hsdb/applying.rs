//! Applying committed log entries to the tables. Each apply is one sled transaction over every
//! table tree and the state machine's meta tree, so an entry's rows and the last applied log id
//! reach the disk together: sled recovers a transaction whole or not at all. A member that
//! crashes in the middle of an apply finds the tables as they were before it, under the log id
//! that describes them, and openraft replays the entries. That matters because a lock, an
//! unlock and an append are not idempotent: replayed over half of their own effects they would
//! raise an epoch twice or number one event twice.
//!
//! A transaction cannot iterate a tree, so an append-only table's last sequence number is a
//! counter in the meta tree (set from the rows when a snapshot is installed).
// openraft's own error types are large; they are returned as openraft defines them.
#![allow(clippy::result_large_err)]
use super::locks::{self, VmLock};
use super::member::Member;
use super::state_machine::encode_key;
use super::tables::{StoredRow, Table};
use super::types::{Command, CommandResult, TypeConfig};
use openraft::{Entry, EntryPayload, StorageError, StorageIOError, StoredMembership};
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use strum::VariantArray;

type NodeId = u64;

pub const LAST_APPLIED: &[u8] = b"last_applied";
pub const MEMBERSHIP: &[u8] = b"membership";
/// Rows an append-only table keeps (the event log): older ones are dropped as new ones arrive,
/// so the tables stay bounded under a sustained stream of events.
pub const APPEND_RETENTION: u64 = 50_000;
/// Entries applied in one transaction (a member catching up applies many at once; a
/// transaction holds its writes in memory until it commits).
pub const ENTRIES_PER_TRANSACTION: usize = 256;

/// What went wrong inside a transaction: the storage error it aborts with.
type Abort = ConflictableTransactionError<StorageError<NodeId>>;
type TxResult<T> = Result<T, Abort>;

fn read_error(e: impl std::error::Error + 'static) -> Abort {
    ConflictableTransactionError::Abort(StorageIOError::read_state_machine(&e).into())
}

fn write_error(e: impl std::error::Error + 'static) -> Abort {
    ConflictableTransactionError::Abort(StorageIOError::write_state_machine(&e).into())
}

/// The meta key of an append-only table's last sequence number.
pub fn sequence_key(table: Table) -> Vec<u8> {
    format!("sequence/{table}").into_bytes()
}

/// Applies `entries` in one transaction over `tables` (one tree per [`Table::VARIANTS`], in
/// that order) and `meta`: every row they write and the last applied log id, or nothing.
pub fn apply(
    tables: &[Tree],
    meta: &Tree,
    entries: &[Entry<TypeConfig>],
) -> Result<Vec<CommandResult>, StorageError<NodeId>> {
    let trees: Vec<Tree> = tables.iter().chain([meta]).cloned().collect();
    trees
        .as_slice()
        .transaction(|view| {
            let applying = Applying { view };
            entries.iter().map(|e| applying.entry(e)).collect()
        })
        .map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageIOError::write_state_machine(&e).into(),
        })
}

/// One transaction's view of the tables (in [`Table::VARIANTS`] order) and, last, the meta tree.
struct Applying<'a> {
    view: &'a [TransactionalTree],
}

impl Applying<'_> {
    fn table(&self, table: Table) -> &TransactionalTree {
        let i = Table::VARIANTS.iter().position(|t| *t == table).expect("every table is a variant");
        &self.view[i]
    }

    fn meta(&self) -> &TransactionalTree {
        &self.view[self.view.len() - 1]
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> TxResult<()> {
        self.meta().insert(key, serde_json::to_vec(value).map_err(write_error)?)?;
        Ok(())
    }

    fn entry(&self, entry: &Entry<TypeConfig>) -> TxResult<CommandResult> {
        let index = entry.log_id.index;
        let result = match &entry.payload {
            EntryPayload::Blank => CommandResult::Applied { version: index },
            // A batch of the write path packs many callers' commands: each is checked alone.
            EntryPayload::Normal(Command::Batch(commands)) => {
                CommandResult::Batch(commands.iter().map(|c| self.checked(index, c)).collect::<TxResult<_>>()?)
            }
            EntryPayload::Normal(command) => self.checked(index, command)?,
            EntryPayload::Membership(m) => {
                let membership: StoredMembership<NodeId, Member> = StoredMembership::new(Some(entry.log_id), m.clone());
                self.put_meta(MEMBERSHIP, &membership)?;
                CommandResult::Applied { version: index }
            }
        };
        self.put_meta(LAST_APPLIED, &entry.log_id)?;
        Ok(result)
    }

    /// Applies one command as a caller submitted it: checked first, like before proposing, so
    /// an entry that reached the log some other way changes nothing instead of failing.
    fn checked(&self, index: u64, command: &Command) -> TxResult<CommandResult> {
        match command.check() {
            Ok(_) => self.execute(index, command),
            Err(why) => Ok(CommandResult::Rejected(why)),
        }
    }

    fn row_version(tree: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
        Ok(match tree.get(key)? {
            Some(b) => serde_json::from_slice::<StoredRow>(&b).map_err(read_error)?.version,
            None => 0,
        })
    }

    fn put_row(tree: &TransactionalTree, key: &[u8], version: u64, value: &serde_json::Value) -> TxResult<()> {
        #[derive(Serialize)]
        struct Row<'v> {
            version: u64,
            value: &'v serde_json::Value,
        }
        tree.insert(key, serde_json::to_vec(&Row { version, value }).map_err(write_error)?)?;
        Ok(())
    }

    fn execute(&self, index: u64, command: &Command) -> TxResult<CommandResult> {
        let applied = CommandResult::Applied { version: index };
        match command {
            Command::Put { table, key, value } => {
                Self::put_row(self.table(*table), &encode_key(*table, key), index, value)?;
            }
            Command::PutIfVersion { table, key, expected_version, value } => {
                let tree = self.table(*table);
                let key = encode_key(*table, key);
                let current = Self::row_version(tree, &key)?;
                if current != *expected_version {
                    return Ok(CommandResult::VersionMismatch { current });
                }
                Self::put_row(tree, &key, index, value)?;
            }
            Command::Delete { table, key } => {
                self.table(*table).remove(encode_key(*table, key))?;
            }
            Command::Append { table, value } => {
                let last = self.last_sequence(*table)?;
                let Some(sequence) = last.checked_add(1).filter(|s| *s < u64::MAX) else {
                    return Ok(CommandResult::Rejected(format!("table {table} has run out of sequence numbers")));
                };
                let tree = self.table(*table);
                Self::put_row(tree, sequence.to_be_bytes().as_slice(), index, value)?;
                self.meta().insert(sequence_key(*table), sequence.to_be_bytes().as_slice())?;
                if let Some(expired) = sequence.checked_sub(APPEND_RETENTION) {
                    tree.remove(expired.to_be_bytes().as_slice())?;
                }
            }
            Command::Lock { vm, operation, holder, at_ms, how } => {
                let current = match self.vm_lock(vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                return match locks::acquire(current.as_ref(), vm, *operation, *holder, *at_ms, *how) {
                    Ok(lock) => {
                        self.put_lock(index, &lock)?;
                        Ok(CommandResult::Locked { epoch: lock.epoch })
                    }
                    Err(refusal) => Ok(CommandResult::Refused(refusal)),
                };
            }
            Command::Unlock { vm, epoch, at_ms } => {
                let current = match self.vm_lock(vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                match locks::release(current.as_ref(), *epoch, *at_ms) {
                    Ok(lock) => self.put_lock(index, &lock)?,
                    Err(refusal) => return Ok(CommandResult::Refused(refusal)),
                }
            }
            Command::Fenced { vm, epoch, command } => {
                let current = match self.vm_lock(vm)? {
                    Ok(current) => current,
                    Err(rejected) => return Ok(rejected),
                };
                return match locks::check_fence(current.as_ref(), *epoch) {
                    Ok(()) => self.execute(index, command),
                    Err(refusal) => Ok(CommandResult::Refused(refusal)),
                };
            }
            Command::Batch(commands) => {
                let results = commands.iter().map(|c| self.execute(index, c)).collect::<TxResult<_>>()?;
                return Ok(CommandResult::Batch(results));
            }
        }
        Ok(applied)
    }

    /// The highest sequence number given out in an append-only table (0: none yet).
    fn last_sequence(&self, table: Table) -> TxResult<u64> {
        Ok(self.meta().get(sequence_key(table))?.and_then(|b| b.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// VM `vm`'s lock; a lock row that does not decode (written before rows were checked)
    /// rejects the command instead of failing the state machine.
    fn vm_lock(&self, vm: &str) -> TxResult<Result<Option<VmLock>, CommandResult>> {
        let Some(b) = self.table(Table::Locked).get(vm)? else { return Ok(Ok(None)) };
        let row: StoredRow = serde_json::from_slice(&b).map_err(read_error)?;
        Ok(serde_json::from_value(row.value)
            .map(Some)
            .map_err(|e| CommandResult::Rejected(format!("the lock row of VM {vm} does not decode: {e}"))))
    }

    fn put_lock(&self, index: u64, lock: &VmLock) -> TxResult<()> {
        let value = serde_json::to_value(lock).map_err(write_error)?;
        Self::put_row(self.table(Table::Locked), lock.vm.as_bytes(), index, &value)
    }
}
