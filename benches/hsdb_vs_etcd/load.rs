//! The write load: `concurrency` client tasks, each with one request in flight, share a counter
//! of `writes` puts to the leader and record the latency of every acknowledged put. A failed put
//! is retried (and counted) rather than dropped, so both stores do the same work.
use crate::system::Member;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Deadline of one put under load.
const PUT_TIMEOUT: Duration = Duration::from_secs(5);
/// A put that fails this often in a row aborts the load.
const MAX_ATTEMPTS: u32 = 20;
const RETRY_PAUSE: Duration = Duration::from_millis(20);

pub struct LoadResult {
    pub elapsed: Duration,
    /// Latency of every put, from its first attempt to its acknowledgement, in µs, sorted.
    pub latencies_us: Vec<u64>,
    pub retries: u64,
}

struct Shared {
    writes: u64,
    keys: usize,
    next: AtomicU64,
    done: AtomicU64,
    retries: AtomicU64,
    started: Instant,
    label: &'static str,
}

pub async fn run<M: Member>(
    label: &'static str,
    leader: M,
    writes: u64,
    keys: usize,
    concurrency: usize,
) -> Result<LoadResult> {
    let shared = Arc::new(Shared {
        writes,
        keys,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        started: Instant::now(),
        label,
    });
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(client(leader.clone(), shared.clone()));
    }
    let mut latencies_us = Vec::with_capacity(writes as usize);
    while let Some(joined) = tasks.join_next().await {
        // Returning early drops `tasks`, which aborts the other clients.
        latencies_us.extend(joined.context("a load task panicked")??);
    }
    let elapsed = shared.started.elapsed();
    latencies_us.sort_unstable();
    Ok(LoadResult { elapsed, latencies_us, retries: shared.retries.load(Ordering::Relaxed) })
}

async fn client<M: Member>(leader: M, shared: Arc<Shared>) -> Result<Vec<u64>> {
    let step = (shared.writes / 10).max(1);
    let mut latencies = Vec::new();
    loop {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= shared.writes {
            return Ok(latencies);
        }
        let key = (n % shared.keys as u64) as usize;
        let start = Instant::now();
        let mut attempts = 0;
        while let Err(e) = leader.put(key, PUT_TIMEOUT).await {
            attempts += 1;
            shared.retries.fetch_add(1, Ordering::Relaxed);
            if attempts >= MAX_ATTEMPTS {
                return Err(anyhow!("{}: put #{n} failed {attempts} times, giving up: {e:#}", shared.label));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        latencies.push(start.elapsed().as_micros() as u64);
        let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done.is_multiple_of(step) {
            let secs = shared.started.elapsed().as_secs_f64();
            println!(
                "  {}: {done}/{} writes ({}%), {:.1} s, {:.0} ops/s so far",
                shared.label,
                shared.writes,
                done * 100 / shared.writes,
                secs,
                done as f64 / secs
            );
        }
    }
}
