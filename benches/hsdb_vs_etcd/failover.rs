//! One leader failover: a light write load against the members that will survive, SIGKILL of
//! the leader, and the time from the kill to the first acknowledged write that was issued after
//! the leader was gone. The killed member is then restarted on its data dir and must catch up
//! before the next round, so every round starts from a healthy 3-member cluster.
use crate::cluster::Cluster;
use crate::system::{MEMBERS, Member, System, wait_caught_up, wait_for_leader};
use anyhow::{Context, Result, bail};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Client tasks of the light load.
const TASKS: usize = 4;
/// Per-write deadline of the light load: a write stuck on the dead leader is retried soon.
const WRITE_TIMEOUT: Duration = Duration::from_millis(300);
const RETRY_PAUSE: Duration = Duration::from_millis(5);
/// Acknowledged writes that show the light load is flowing before the kill.
const WARMUP_ACKS: u64 = 20;
const WAIT_LEADER: Duration = Duration::from_secs(30);
const WAIT_ACK: Duration = Duration::from_secs(30);
const WAIT_CATCH_UP: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(2);

/// What one round measured.
pub struct Round {
    pub killed: usize,
    pub failover: Duration,
    pub catch_up: Duration,
}

#[derive(Default)]
struct Probe {
    stop: AtomicBool,
    acked: AtomicU64,
    /// Writes issued after the kill that failed: none means the killed member did not lead.
    failed_after_kill: AtomicU64,
    /// When the killed leader was reaped; writes issued from then on count.
    dead_at: OnceLock<Instant>,
    first_ack: Mutex<Option<Instant>>,
}

impl Probe {
    fn acked(&self, issued: Instant) {
        let now = Instant::now();
        self.acked.fetch_add(1, Ordering::Relaxed);
        if self.dead_at.get().is_some_and(|dead| issued >= *dead) {
            let mut first = self.first_ack.lock().expect("probe lock");
            *first = Some(first.map_or(now, |f| f.min(now)));
        }
    }

    fn failed(&self, issued: Instant) {
        if self.dead_at.get().is_some_and(|dead| issued >= *dead) {
            self.failed_after_kill.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn first_ack(&self) -> Option<Instant> {
        *self.first_ack.lock().expect("probe lock")
    }
}

async fn writer<M: Member>(targets: Vec<M>, probe: Arc<Probe>, task: usize, keys: usize) {
    let mut n = task;
    while !probe.stop.load(Ordering::Relaxed) {
        let issued = Instant::now();
        match targets[n % targets.len()].put(n % keys, WRITE_TIMEOUT).await {
            Ok(()) => probe.acked(issued),
            Err(_) => {
                probe.failed(issued);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        n += TASKS;
    }
}

async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("{what} within {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

pub async fn round<S: System>(sys: &S, cluster: &mut Cluster, keys: usize) -> Result<Round> {
    let leader = wait_for_leader(sys, cluster, WAIT_LEADER).await?;
    let survivors = (0..MEMBERS).filter(|&i| i != leader).map(|i| sys.member(i)).collect::<Result<Vec<_>>>()?;
    let probe = Arc::new(Probe::default());
    let mut writers = JoinSet::new();
    for task in 0..TASKS {
        writers.spawn(writer(survivors.clone(), probe.clone(), task, keys));
    }
    let warmup = format!("the light load got fewer than {WARMUP_ACKS} writes acknowledged");
    wait_until(&warmup, WAIT_ACK, || probe.acked.load(Ordering::Relaxed) >= WARMUP_ACKS).await?;

    let killed_at = Instant::now();
    cluster.kill(leader)?;
    probe.dead_at.set(Instant::now()).expect("the leader is killed once per round");
    wait_until("no write was acknowledged after the leader was killed", WAIT_ACK, || probe.first_ack().is_some())
        .await
        .with_context(|| format!("{}: failover after killing {}", S::NAME, cluster.name(leader)))?;
    let failover = probe.first_ack().expect("checked above") - killed_at;
    if probe.failed_after_kill.load(Ordering::Relaxed) == 0 {
        bail!("{}: killing {} disturbed no write; it was not the leader", S::NAME, cluster.name(leader));
    }
    probe.stop.store(true, Ordering::Relaxed);
    while let Some(joined) = writers.join_next().await {
        joined.context("a light-load writer panicked")?;
    }

    let restarted_at = Instant::now();
    cluster.restart(leader)?;
    wait_caught_up(sys, cluster, leader, WAIT_CATCH_UP).await?;
    Ok(Round { killed: leader, failover, catch_up: restarted_at.elapsed() })
}
