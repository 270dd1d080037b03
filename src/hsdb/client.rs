//! Two ways to reach the HSDB, one interface.
//!
//! * [`LocalHsdb`]: the controller's own member. It never forwards: a write on a member that is
//!   not the DBN fails with `NotLeader`, so a controller that lost leadership cannot change
//!   anything behind the new one's back.
//! * [`RemoteHsdb`]: for nodes outside the Raft group (VIOS host monitors). Any member accepts
//!   the call and forwards it to the DBN; the client moves to the next member when one is down.
use super::batcher::WriteBatcher;
use super::locks::{Acquire, LockRefusal};
use super::raft_node::{HsdbNode, leader_endpoint};
use super::read_barrier::ReadBarrier;
use super::state_machine::{decode_key, encode_key};
use super::tables::{Record, StoredRow, Table};
use super::types::{Command, CommandResult};
use crate::domain::{EventRecord, VmStatus};
use crate::error::{Result, VmrmError, did_not_run, unanswered};
use crate::pb::{HsdbRead, HsdbWrite, hsdb_client::HsdbClient};
use crate::transport::{ChannelPool, deadline, within};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A row as read: its key, version (log index of its last write) and JSON value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub version: u64,
    pub value: serde_json::Value,
}

/// Read and write access to the HSDB tables.
pub trait HsdbAccess: Send + Sync {
    fn write(&self, command: Command) -> impl Future<Output = Result<CommandResult>> + Send;
    /// Linearizable read of one row (`key`) or a whole table.
    fn read(&self, table: Table, key: Option<&str>) -> impl Future<Output = Result<Vec<Row>>> + Send;

    fn put<R: Record>(&self, record: &R) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let value = serde_json::to_value(record).map_err(VmrmError::internal)?;
            match self.write(Command::Put { table: R::TABLE, key: record.key(), value }).await? {
                CommandResult::Applied { version } => Ok(version),
                other => Err(unexpected(other)),
            }
        }
    }

    /// Compare-and-set: writes only if the row still has `expected_version` (0: absent).
    fn put_if_version<R: Record>(&self, record: &R, expected_version: u64) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let value = serde_json::to_value(record).map_err(VmrmError::internal)?;
            let cmd = Command::PutIfVersion { table: R::TABLE, key: record.key(), expected_version, value };
            cas_outcome(record, expected_version, self.write(cmd).await?)
        }
    }

    /// Compare-and-set made by the operation holding VM `vm`'s lock at `epoch`: refused once
    /// the lock has moved on.
    fn put_if_version_fenced<R: Record>(
        &self,
        (vm, epoch): (&str, u64),
        record: &R,
        expected_version: u64,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let value = serde_json::to_value(record).map_err(VmrmError::internal)?;
            let cas = Command::PutIfVersion { table: R::TABLE, key: record.key(), expected_version, value };
            let cmd = Command::Fenced { vm: vm.to_string(), epoch, command: Box::new(cas) };
            match self.write(cmd).await? {
                CommandResult::Refused(LockRefusal::Stale { current }) => {
                    Err(lock_moved(vm, epoch, format!("the lock is at epoch {current}")))
                }
                other => cas_outcome(record, expected_version, other),
            }
        }
    }

    /// Takes VM `vm`'s operation lock for `operation` on behalf of controller `holder`;
    /// returns the lock's new epoch.
    fn lock_vm(
        &self,
        vm: &str,
        operation: VmStatus,
        holder: u64,
        how: Acquire,
    ) -> impl Future<Output = Result<u64>> + Send {
        let cmd = Command::Lock { vm: vm.to_string(), operation, holder, at_ms: crate::now_ms(), how };
        async move {
            match self.write(cmd).await? {
                CommandResult::Locked { epoch } => Ok(epoch),
                CommandResult::Refused(LockRefusal::Held(lock)) => Err(VmrmError::precondition(format!(
                    "VM {vm} has another operation in progress ({}, lock epoch {}, taken by HSDB node {})",
                    lock.operation, lock.epoch, lock.holder
                ))),
                CommandResult::Refused(LockRefusal::Stale { current }) => Err(VmrmError::precondition(format!(
                    "the lock of VM {vm} is at epoch {current} now; it was not taken over"
                ))),
                other => Err(unexpected(other)),
            }
        }
    }

    /// Frees VM `vm`'s lock held at `epoch`.
    fn unlock_vm(&self, vm: &str, epoch: u64) -> impl Future<Output = Result<()>> + Send {
        let cmd = Command::Unlock { vm: vm.to_string(), epoch, at_ms: crate::now_ms() };
        async move {
            match self.write(cmd).await? {
                CommandResult::Applied { .. } => Ok(()),
                CommandResult::Refused(LockRefusal::Stale { current }) => {
                    Err(lock_moved(vm, epoch, format!("the lock is at epoch {current}")))
                }
                other => Err(unexpected(other)),
            }
        }
    }

    fn delete<R: Record>(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        let cmd = Command::Delete { table: R::TABLE, key: key.to_string() };
        async move { self.write(cmd).await.map(|_| ()) }
    }

    /// Appends `event` to the event log, and counts it in the node's metrics once written.
    fn append_event(&self, event: &EventRecord) -> impl Future<Output = Result<()>> + Send {
        let name = event.name;
        let appended = self.append(Table::Event, event);
        async move {
            appended.await?;
            crate::metrics::metrics().event(name);
            Ok(())
        }
    }

    /// Appends `record` to append-only table `table` (the event log, the audit trail).
    fn append<T: serde::Serialize + Sync>(&self, table: Table, record: &T) -> impl Future<Output = Result<()>> + Send {
        async move {
            let value = serde_json::to_value(record).map_err(VmrmError::internal)?;
            self.write(Command::Append { table, value }).await.map(|_| ())
        }
    }

    /// One record with its version, or `None`.
    fn get<R: Record>(&self, key: &str) -> impl Future<Output = Result<Option<(R, u64)>>> + Send {
        async move {
            let rows = self.read(R::TABLE, Some(key)).await?;
            rows.into_iter().next().map(decode::<R>).transpose()
        }
    }

    fn list<R: Record>(&self) -> impl Future<Output = Result<Vec<R>>> + Send {
        async move { Ok(self.list_versioned::<R>().await?.into_iter().map(|(r, _)| r).collect()) }
    }

    /// Every record of the table with its version (for compare-and-set updates). A row that
    /// does not decode (one stored before rows were checked) is logged and left out: one bad
    /// row must not hide the rest of its table from every controller.
    fn list_versioned<R: Record>(&self) -> impl Future<Output = Result<Vec<(R, u64)>>> + Send {
        async move {
            let rows = self.read(R::TABLE, None).await?.into_iter().map(decode::<R>);
            Ok(rows.filter_map(|row| row.inspect_err(|e| tracing::error!("{e}; left out")).ok()).collect())
        }
    }
}

/// The outcome of a (possibly fenced) compare-and-set of `record`.
fn cas_outcome<R: Record>(record: &R, expected_version: u64, result: CommandResult) -> Result<u64> {
    match result {
        CommandResult::Applied { version } => Ok(version),
        CommandResult::VersionMismatch { current } => Err(VmrmError::Aborted(format!(
            "{} {} changed meanwhile (version {current}, expected {expected_version}); nothing was written",
            R::TABLE,
            record.key()
        ))),
        other => Err(unexpected(other)),
    }
}

/// Runs a read-modify-write of one row (`attempt`) again when another writer changed the row
/// between its read and its compare-and-set, up to a few times with a growing pause: the
/// active controller's background jobs (status refreshes, scheduled discovery) write the same
/// rows as an administrator's change, and neither should fail for the other.
pub async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 5;
    let mut pause = std::time::Duration::from_millis(10);
    for _ in 1..ATTEMPTS {
        match attempt().await {
            Err(VmrmError::Aborted(why)) => tracing::debug!("{why}; reading it again"),
            outcome => return outcome,
        }
        tokio::time::sleep(pause).await;
        pause *= 4;
    }
    attempt().await
}

/// A write of the operation holding VM `vm`'s lock at `epoch` that was refused.
fn lock_moved(vm: &str, epoch: u64, why: String) -> VmrmError {
    VmrmError::precondition(format!(
        "the operation holding VM {vm}'s lock at epoch {epoch} was fenced out ({why}); nothing was written"
    ))
}

/// A command the state machine rejected is the caller's error, like one refused before it was
/// proposed.
fn refused_as_error(result: CommandResult) -> Result<CommandResult> {
    match result {
        CommandResult::Rejected(why) => Err(VmrmError::invalid(why)),
        result => Ok(result),
    }
}

fn unexpected(result: CommandResult) -> VmrmError {
    VmrmError::internal(format!("unexpected HSDB result {result:?}"))
}

fn decode<R: Record>(row: Row) -> Result<(R, u64)> {
    let record = serde_json::from_value(row.value)
        .map_err(|e| VmrmError::internal(format!("HSDB row {}/{} does not decode: {e}", R::TABLE, row.key)))?;
    Ok((record, row.version))
}

/// Reads rows straight from this member's tables.
pub fn read_local(db: &sled::Db, table: Table, key: Option<&str>) -> Result<Vec<Row>> {
    let tree = super::state_machine::table_tree(db, table).map_err(VmrmError::internal)?;
    let to_row = |k: &[u8], v: &[u8]| -> Result<Row> {
        let stored: StoredRow = serde_json::from_slice(v).map_err(VmrmError::internal)?;
        Ok(Row { key: decode_key(table, k), version: stored.version, value: stored.value })
    };
    match key {
        Some(key) => tree
            .get(encode_key(table, key))
            .map_err(VmrmError::internal)?
            .map(|v| to_row(&encode_key(table, key), &v))
            .into_iter()
            .collect(),
        None => tree
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(VmrmError::internal)?;
                to_row(&k, &v)
            })
            .collect(),
    }
}

#[derive(Clone)]
pub struct LocalHsdb {
    node: HsdbNode,
    batcher: WriteBatcher,
    /// Linearizable reads share their leadership rounds.
    reads: Arc<ReadBarrier>,
    /// Reads answer from this member's own tables, without confirming leadership: they may
    /// lag, so such a handle is for queries only and refuses writes.
    follower_reads: bool,
}

impl LocalHsdb {
    pub fn new(node: HsdbNode) -> Self {
        let batcher = WriteBatcher::start(node.raft.clone());
        Self { node, batcher, reads: Arc::default(), follower_reads: false }
    }

    /// A read-only handle whose reads are follower reads.
    pub fn follower_reads(&self) -> Self {
        Self { follower_reads: true, ..self.clone() }
    }

    pub fn node(&self) -> &HsdbNode {
        &self.node
    }

    fn not_leader(&self) -> VmrmError {
        VmrmError::NotLeader { leader: leader_endpoint(&self.node.raft) }
    }

    /// This member is the DBN, confirmed by a round that began after the call (shared with
    /// the reads waiting at the same time).
    async fn confirm_leadership(&self) -> Result<()> {
        let raft = &self.node.raft;
        self.reads.confirm(|| async { raft.ensure_linearizable().await.map(drop) }).await.map_err(|_| self.not_leader())
    }

    /// Up to `limit` rows of append-only `table` after sequence number `after`, oldest first —
    /// the tail a reader follows without reading the whole log.
    pub async fn appended_after(&self, table: Table, after: u64, limit: usize) -> Result<Vec<Row>> {
        if !table.is_append_only() {
            return Err(VmrmError::internal(format!("table {table} is not append-only")));
        }
        if !self.follower_reads {
            self.confirm_leadership().await?;
        }
        let tree = super::state_machine::table_tree(&self.node.db, table).map_err(VmrmError::internal)?;
        tree.range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(VmrmError::internal)?;
                let stored: StoredRow = serde_json::from_slice(&v).map_err(VmrmError::internal)?;
                Ok(Row { key: decode_key(table, &k), version: stored.version, value: stored.value })
            })
            .collect()
    }

    /// Up to `limit` events after sequence number `after`, oldest first, with their numbers.
    pub async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, EventRecord)>> {
        let rows = self.appended_after(Table::Event, after, limit).await?;
        rows.into_iter()
            .map(|row| {
                let sequence = row.key.parse().map_err(VmrmError::internal)?;
                Ok((sequence, serde_json::from_value(row.value).map_err(VmrmError::internal)?))
            })
            .collect()
    }

    /// The newest sequence number of append-only `table` (0 while it is empty).
    pub async fn newest_sequence(&self, table: Table) -> Result<u64> {
        if !self.follower_reads {
            self.confirm_leadership().await?;
        }
        let tree = super::state_machine::table_tree(&self.node.db, table).map_err(VmrmError::internal)?;
        let last = tree.last().map_err(VmrmError::internal)?;
        Ok(last.map_or(0, |(k, _)| decode_key(table, &k).parse().unwrap_or(0)))
    }
}

impl HsdbAccess for LocalHsdb {
    async fn write(&self, command: Command) -> Result<CommandResult> {
        if self.follower_reads {
            return Err(VmrmError::precondition("a follower-read view of the HSDB cannot write; nothing was written"));
        }
        let size = command.check().map_err(VmrmError::invalid)?;
        let alarms = self.node.space_alarms();
        if let Some((member, why)) = alarms.iter().next()
            && !super::space::allowed_under_alarm(&command)
        {
            return Err(VmrmError::ResourceExhausted(format!(
                "HSDB NOSPACE alarm on member {member}: {why}; only deletions, unlocks and events are taken until it clears"
            )));
        }
        refused_as_error(self.batcher.write(command, size).await?)
    }

    async fn read(&self, table: Table, key: Option<&str>) -> Result<Vec<Row>> {
        if !self.follower_reads {
            self.confirm_leadership().await?;
        }
        read_local(&self.node.db, table, key)
    }
}

/// Reaches the HSDB through any member; remembers the member that answered last.
#[derive(Clone)]
pub struct RemoteHsdb {
    endpoints: Arc<Vec<String>>,
    preferred: Arc<AtomicUsize>,
    pool: ChannelPool,
    timeout: Duration,
}

impl RemoteHsdb {
    pub fn new(endpoints: Vec<String>, pool: ChannelPool, timeout: Duration) -> Self {
        Self { endpoints: Arc::new(endpoints), preferred: Arc::default(), pool, timeout }
    }

    /// Tries the members in turn, starting with the one that answered last, as far as `retry`
    /// allows.
    async fn first_ok<T, F, Fut>(&self, retry: Retry, call: F) -> Result<T>
    where
        F: Fn(HsdbClient<tonic::transport::Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = VmrmError::unavailable("no HSDB endpoint configured");
        for i in 0..n {
            let idx = (start + i) % n;
            let client = HsdbClient::new(self.pool.get(&self.endpoints[idx])?);
            match within(self.timeout, call(client)).await {
                Ok(v) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(s) if did_not_run(&s) => {
                    last = VmrmError::unavailable(format!(
                        "HSDB member {} did not take the call: {}",
                        self.endpoints[idx],
                        s.message()
                    ));
                }
                Err(s) if unanswered(&s) => {
                    // It may have run: a write is not sent twice, but the next call starts at
                    // the next member, so a hung one costs one call, not every call.
                    self.preferred.store((idx + 1) % n, Ordering::Relaxed);
                    last = VmrmError::unavailable(format!(
                        "HSDB member {} did not answer: {}",
                        self.endpoints[idx],
                        s.message()
                    ));
                    if retry == Retry::Write {
                        return Err(last);
                    }
                }
                Err(s) => return Err(s.into()),
            }
        }
        Err(last)
    }
}

/// Which failures send a call on to the next member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Any member's answer will do: a member that does not answer is passed over.
    Read,
    /// Only a call that certainly did not run goes on to the next member: a write that may have
    /// been applied is never applied twice.
    Write,
}

impl HsdbAccess for RemoteHsdb {
    async fn write(&self, command: Command) -> Result<CommandResult> {
        let bytes = serde_json::to_vec(&command).map_err(VmrmError::internal)?;
        let timeout = self.timeout;
        let reply = self
            .first_ok(Retry::Write, |mut c| {
                let req = deadline(HsdbWrite { command: bytes.clone() }, timeout);
                async move { c.write(req).await }
            })
            .await?;
        refused_as_error(serde_json::from_slice(&reply.into_inner().response).map_err(VmrmError::internal)?)
    }

    async fn read(&self, table: Table, key: Option<&str>) -> Result<Vec<Row>> {
        let timeout = self.timeout;
        let request = HsdbRead { table: table.to_string(), key: key.unwrap_or_default().into(), follower_read: false };
        let reply = self
            .first_ok(Retry::Read, |mut c| {
                let req = deadline(request.clone(), timeout);
                async move { c.read(req).await }
            })
            .await?;
        reply
            .into_inner()
            .rows
            .into_iter()
            .map(|r| {
                let value = serde_json::from_slice(&r.value).map_err(VmrmError::internal)?;
                Ok(Row { key: r.key, version: r.version, value })
            })
            .collect()
    }
}
