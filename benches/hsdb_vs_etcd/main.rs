//! `hsdb_vs_etcd`: a 3-node HSDB and a 3-node etcd on loopback, side by side in one run, with
//! the same write load, footprint probes and leader failovers, ending in a comparison table.
//! Both keep fsync on. Run it with `bench/hsdb-vs-etcd.sh [ARGS]` (installs etcd when missing)
//! or `cargo bench --bench hsdb_vs_etcd -- [ARGS]`; `--help` lists the parameters.
mod cluster;
mod etcd;
mod failover;
mod hsdb;
mod load;
mod report;
mod system;

use anyhow::{Context, Result, bail};
use clap::Parser;
use clap::builder::RangedU64ValueParser;
use cluster::{Cluster, ensure_ports_free};
use report::{Outcome, ms, percentile_ms};
use std::path::PathBuf;
use std::time::Duration;
use system::System;
use tokio::signal::unix::{SignalKind, signal};

/// Time a fresh cluster gets to elect a leader.
const WAIT_FORMED: Duration = Duration::from_secs(60);
/// Pause between the load and the footprint probes, so background flushes land on disk.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(name = "hsdb_vs_etcd", about = "Compare a 3-node HSDB with a 3-node etcd on loopback")]
struct Args {
    /// Puts in the load phase.
    #[arg(long, default_value_t = 1_000_000, value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    writes: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 128, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    value_size: usize,
    /// Distinct keys the puts cycle through.
    #[arg(long, default_value_t = 10_000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    keys: usize,
    /// Client tasks, each with one put in flight, all sent to the leader.
    #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Leader kill / restart rounds after the load.
    #[arg(long, default_value_t = 5)]
    failovers: usize,
    /// HSDB listens on BASE+1..=BASE+3, etcd clients on BASE+379..=BASE+381, etcd peers on BASE+480..=BASE+482.
    #[arg(long, default_value_t = 27000, value_parser = RangedU64ValueParser::<u16>::new().range(1024..=65000))]
    base_port: u16,
    /// The etcd binary (a name is looked up on PATH).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
}

fn find_etcd(etcd: PathBuf) -> Result<PathBuf> {
    let found = if etcd.components().count() > 1 {
        etcd.is_file().then_some(etcd.clone())
    } else {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(&etcd)).find(|p| p.is_file()))
    };
    found.with_context(|| {
        format!(
            "{} not found; run bench/hsdb-vs-etcd.sh (installs Debian's etcd-server) or pass --etcd",
            etcd.display()
        )
    })
}

/// The process's own command line, quoted where needed.
fn command_line() -> String {
    let quote = |a: String| if a.is_empty() || a.contains(char::is_whitespace) { format!("'{a}'") } else { a };
    std::env::args().map(quote).collect::<Vec<_>>().join(" ")
}

async fn measure<S: System>(sys: S, args: &Args) -> Result<Outcome> {
    println!("\n== {}: {}", S::NAME, sys.describe());
    ensure_ports_free(&sys.ports())?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("hsdb-vs-etcd-{}-", S::NAME.to_lowercase()))
        .tempdir()
        .context("cannot create a temp dir")?;
    println!("  data dirs, configs and logs in {}", dir.path().display());
    let specs = sys.node_specs(dir.path())?;
    let mut cluster = Cluster::start(specs, dir)?;
    let leader = system::wait_for_leader(&sys, &mut cluster, WAIT_FORMED)
        .await
        .with_context(|| format!("the {} cluster did not form", S::NAME))?;
    println!(
        "  leader {}; {} puts of {} B over {} keys, {} clients",
        cluster.name(leader),
        args.writes,
        args.value_size,
        args.keys,
        args.concurrency
    );

    let load = load::run(S::NAME, sys.member(leader)?, args.writes, args.keys, args.concurrency).await?;
    let throughput = args.writes as f64 / load.elapsed.as_secs_f64();
    let (p50_ms, p99_ms) = (percentile_ms(&load.latencies_us, 50.0), percentile_ms(&load.latencies_us, 99.0));
    println!(
        "  load: {throughput:.0} ops/s in {:.1} s, p50 {p50_ms:.2} ms, p99 {p99_ms:.2} ms, {} retried puts",
        load.elapsed.as_secs_f64(),
        load.retries
    );

    tokio::time::sleep(SETTLE).await;
    let (disk_mib, rss_mib) = (cluster.disk_mib()?, cluster.rss_mib()?);
    println!("  after load: disk {disk_mib:.1} MiB, RSS {rss_mib:.1} MiB (3 nodes)");

    let mut failovers_ms = Vec::with_capacity(args.failovers);
    for r in 1..=args.failovers {
        let round = failover::round(&sys, &mut cluster, args.keys).await?;
        println!(
            "  failover {r}/{}: killed {} (leader), first write acknowledged {:.0} ms later; restarted, caught up in {:.1} s",
            args.failovers,
            cluster.name(round.killed),
            ms(round.failover),
            round.catch_up.as_secs_f64()
        );
        failovers_ms.push(ms(round.failover));
    }
    failovers_ms.sort_by(f64::total_cmp);
    drop(cluster);
    Ok(Outcome { throughput, p50_ms, p99_ms, retries: load.retries, disk_mib, rss_mib, failovers_ms })
}

async fn run(args: Args) -> Result<()> {
    let etcd_binary = find_etcd(args.etcd.clone())?;
    println!("command line: {}", command_line());
    println!(
        "writes {}, value size {} B, keys {}, concurrency {}, failovers {}, base port {}; fsync on for both",
        args.writes, args.value_size, args.keys, args.concurrency, args.failovers, args.base_port
    );
    let hsdb = measure(hsdb::Hsdb::new(args.base_port, args.keys, args.value_size)?, &args).await?;
    let etcd = measure(etcd::Etcd::new(etcd_binary, args.base_port, args.keys, args.value_size), &args).await?;
    report::print_table(&hsdb, &etcd);
    println!("command line: {}", command_line());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` appends `--bench` for harness-less benches.
    let args = Args::parse_from(std::env::args().filter(|a| a != "--bench"));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // On a signal the run is dropped, and with it the cluster guard that kills the servers.
    tokio::select! {
        result = run(args) => result,
        _ = interrupt.recv() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}
