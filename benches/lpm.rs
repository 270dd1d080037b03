//! `lpm`: live migration throughput and pause, beside a plain loopback socket copy.
//!
//! * Baseline: 1 GiB written through one TCP connection on 127.0.0.1 between two threads and
//!   read away (the best the loopback does for one stream).
//! * Migration (fast profile, real processes on loopback): a 1 GiB VM whose memory is all
//!   written migrates between two hosts' server units over the HMC job and the SU-to-SU gRPC
//!   stream; throughput = bytes sent / the migration's time from its start to the target's
//!   "resumed" (the source's cleanup after that is not the guest's wait). Each migration runs
//!   right after a baseline copy and the ratio is taken per pair (the machine is shared: its
//!   speed moves from minute to minute). Target: at least 70 % of the baseline.
//! * Pause (downtime): the same VM migrated with its workload dirtying 0, 10 and 100 MB/s, a
//!   maximum downtime of 100 ms; the pause is measured on the source, from stopping the VM to
//!   the target's "resumed". Target: under 100 ms at 10 MB/s.
//!
//! `cargo bench --bench lpm -- [--rounds N] [--base-port P]`.
use anyhow::{Result, bail};
use clap::Parser;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;
use vmrm::config::VmConfig;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

#[derive(Parser)]
#[command(name = "lpm", about = "Live migration throughput and pause beside a loopback socket copy")]
struct Args {
    /// Runs of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The datacenter listens on BASE+1 … BASE+350.
    #[arg(long, default_value_t = 28900)]
    base_port: u16,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
const GIB: usize = 1 << 30;
const MAX_DOWNTIME_MS: u32 = 100;
const DIRTY_RATES_MB_S: [u64; 3] = [0, 10, 100];

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// 1 GiB through a loopback TCP connection; bytes per second.
fn loopback_copy() -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    });
    let mut stream = std::net::TcpStream::connect(addr)?;
    let chunk = vec![0xA5u8; 1 << 20];
    let started = Instant::now();
    for _ in 0..GIB / chunk.len() {
        stream.write_all(&chunk)?;
    }
    drop(stream);
    let read = reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let elapsed = started.elapsed().as_secs_f64();
    if read != GIB {
        bail!("the reader got {read} bytes of {GIB}");
    }
    Ok(GIB as f64 / elapsed)
}

/// Two hosts; host-1 runs one 1 GiB VM.
fn topology(base_port: u16, dir: &Path) -> Topology {
    let mut t = Topology::uniform(base_port, 2, 0, dir.to_path_buf());
    t.hosts[0].vms = vec![VmConfig { name: "vm-big".into(), cpu: 2, memory_mb: 1024, permanent_index: None }];
    t
}

/// One migration of `vm-big` from `from` to `to`; its final progress.
async fn migrate(dc: &Datacenter, to: &str) -> Result<pb::MigrationProgress> {
    let limits = pb::MigrationLimits { max_downtime_ms: MAX_DOWNTIME_MS, ..Default::default() };
    let req = pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vec!["vm-big".into()],
        to: to.into(),
        limits: Some(limits),
        ..Default::default()
    };
    let replies = dc.admin()?.migrate_all(req).await?;
    let done = replies.iter().rev().find_map(|r| r.progress.clone()).ok_or_else(|| anyhow::anyhow!("no progress"))?;
    if done.phase() != pb::MigrationPhase::Completed || done.source_checksum != done.target_checksum {
        bail!("migration to {to} did not complete intact: {done:?}");
    }
    Ok(done)
}

async fn run(args: Args) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("vmrm-lpm-bench-").tempdir()?;
    let mut dc = Datacenter::start(topology(args.base_port, dir.path()), Path::new(VMRMD)).await?;
    dc.setup().await?;
    let hosts = ["host-1", "host-2"];
    let mut at = 0;
    dc.set_workload(hosts[at], "vm-big", 1024, 0, false).await?;
    // Side by side: each migration right after a baseline copy, so both see the same machine.
    let (mut raw, mut throughput, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let copy = loopback_copy()?;
        let done = migrate(&dc, hosts[1 - at]).await?;
        at = 1 - at;
        let migration = done.sent_bytes as f64 / (done.resumed_after_ms as f64 / 1000.0);
        raw.push(copy);
        throughput.push(migration);
        ratios.push(migration / copy);
    }
    let mut pauses = Vec::new();
    for rate in DIRTY_RATES_MB_S {
        dc.set_workload(hosts[at], "vm-big", 1024, rate * 1000, false).await?;
        let mut ms = Vec::new();
        for _ in 0..args.rounds {
            let done = migrate(&dc, hosts[1 - at]).await?;
            at = 1 - at;
            ms.push(done.downtime_us as f64 / 1000.0);
        }
        pauses.push((rate, median(&mut ms), ms.iter().cloned().fold(0.0, f64::max)));
    }
    dc.stop();

    let (raw, mig) = (median(&mut raw), median(&mut throughput));
    let spread = format!(
        "{:.2}–{:.2}",
        ratios.iter().cloned().fold(f64::MAX, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max)
    );
    println!("1 GiB, {} runs each, medians", args.rounds);
    println!("  loopback TCP copy (baseline)   {:>8.0} MB/s", raw / 1e6);
    println!("  live migration of a 1 GiB VM   {:>8.0} MB/s", mig / 1e6);
    println!(
        "  ratio, each migration to the copy just before it: {:.2} median ({spread}; target >= 0.70)",
        median(&mut ratios)
    );
    println!("  pause, max_downtime {MAX_DOWNTIME_MS} ms:");
    for (rate, median, worst) in pauses {
        println!("    dirtying {rate:>3} MB/s          {median:>8.1} ms median, {worst:.1} ms worst");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(run(args))
}
