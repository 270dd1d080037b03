//! Register clients for the HSDB's consistency tests: every write and read goes through an
//! [`HsdbAccess`] (a member in this process, or a member process over gRPC), is timed on one
//! monotonic clock, and is recorded for the linearizability checker.
use rand::Rng;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vmrm::VmrmError;
use vmrm::hsdb::{Command, HsdbAccess, Table};
use vmrm::testing::lincheck::{self, Effect, Operation};

/// How long a client waits for one operation before calling its outcome unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Registers the clients share (few, so that operations really contend).
pub const KEYS: u64 = 4;

pub fn key(k: u64) -> String {
    format!("reg-{k}")
}

/// What the clients saw, on one clock.
pub struct History {
    clock: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Default for History {
    fn default() -> Self {
        Self { clock: Instant::now(), operations: Mutex::default() }
    }
}

impl History {
    pub fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    pub fn record(&self, op: Operation) {
        self.operations.lock().unwrap().push(op);
    }

    pub fn operations(&self) -> Vec<Operation> {
        self.operations.lock().unwrap().clone()
    }

    /// Writes `value` to `key`. `None`: refused by a member that is not (or no longer) the
    /// leader, so it certainly did not happen; a `None` completion time: the client gave up and
    /// the outcome is unknown.
    pub async fn write(&self, member: &impl HsdbAccess, key: &str, value: u64) -> Option<Operation> {
        let invoked_at = self.now();
        let command = register_put(key, value);
        let completed_at = match tokio::time::timeout(OP_TIMEOUT, member.write(command)).await {
            Ok(Ok(_)) => Some(self.now()),
            Ok(Err(VmrmError::NotLeader { .. })) => return None,
            _ => None,
        };
        Some(Operation { key: key.into(), effect: Effect::Write(value), invoked_at, completed_at })
    }

    /// A linearizable read; `None` if it failed (a failed read changes nothing).
    pub async fn read(&self, member: &impl HsdbAccess, key: &str) -> Option<Operation> {
        let invoked_at = self.now();
        let rows = tokio::time::timeout(OP_TIMEOUT, member.read(REGISTERS, Some(key))).await.ok()?.ok()?;
        Some(Operation {
            key: key.into(),
            effect: Effect::Read(rows.first().and_then(register_value)),
            invoked_at,
            completed_at: Some(self.now()),
        })
    }

    /// Reads every register once more (retrying until the cluster answers): after the faults,
    /// no acknowledged write may be missing.
    pub async fn read_every_key(&self, member: &impl HsdbAccess) {
        for k in 0..KEYS {
            let key = key(k);
            let read = super::wait_until("a final read", Duration::from_secs(20), || self.read(member, &key)).await;
            self.record(read);
        }
    }

    /// Asserts the history is big enough to mean something and linearizable.
    pub fn assert_linearizable(&self, min_acknowledged_writes: usize, min_reads: usize) {
        let history = self.operations();
        let is_write = |o: &&Operation| matches!(o.effect, Effect::Write(_));
        let acknowledged = history.iter().filter(is_write).filter(|o| o.completed_at.is_some()).count();
        let unknown = history.iter().filter(|o| o.completed_at.is_none()).count();
        let reads = history.len() - acknowledged - unknown;
        eprintln!("history: {acknowledged} acknowledged writes, {unknown} unknown outcomes, {reads} reads");
        assert!(acknowledged >= min_acknowledged_writes, "too few writes succeeded to judge anything: {acknowledged}");
        assert!(reads >= min_reads, "too few reads succeeded to judge anything: {reads}");
        if let Err(violation) = lincheck::check(&history) {
            panic!("HSDB history is not linearizable:\n{violation}");
        }
    }
}

/// One client: random writes of unique values and reads until `until`, through whichever
/// member `pick` chooses for each operation.
pub async fn run_client<H: HsdbAccess>(history: &History, id: u64, until: Instant, pick: impl Fn(usize) -> H) {
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let (k, write, choice) = {
            let mut rng = rand::rng();
            (rng.random_range(0..KEYS), rng.random_bool(0.5), rng.random_range(0..usize::MAX))
        };
        let member = pick(choice);
        let op = match write {
            true => history.write(&member, &key(k), id * 1_000_000 + n).await,
            false => history.read(&member, &key(k)).await,
        };
        match op {
            Some(op) => history.record(op),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The table of the registers: the HSDB stores only its tables' records, so a register is a
/// server unit's alive row whose time is the register's value.
pub const REGISTERS: Table = Table::SuAlive;

/// The write of `value` to register `key`.
pub fn register_put(key: &str, value: u64) -> Command {
    let row = vmrm::domain::SuAliveRecord { host: key.into(), incarnation: "register".into(), at_ms: value as i64 };
    Command::Put { table: REGISTERS, key: key.into(), value: serde_json::to_value(row).unwrap() }
}

/// The value a register's row holds.
pub fn register_value(row: &vmrm::hsdb::client::Row) -> Option<u64> {
    row.value["at_ms"].as_u64()
}
