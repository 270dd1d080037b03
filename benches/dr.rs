//! `dr`: disaster recovery across two sites, with real processes on loopback (`fast` profile):
//! three hosts per site, 12 VMs at the home site (Austin) writing their logs — one write per VM
//! every 200 ms, 60 writes/s — replicated to the backup site's SAN (Dallas).
//!
//! * Replication lag at that write rate: the primary SAN's own count of writes the secondary
//!   lacks and the age of the oldest, sampled every 50 ms.
//! * RTO of a planned move of the 12 VMs (`move host_group … dr_type=planned`, there and back:
//!   each move is one sample), from the call to its answer — every VM running on its host's pair
//!   and writing again.
//! * RTO of an unplanned move after the home site is killed (its SAN, HMC and hosts; a fresh
//!   datacenter per round), from the call to the moment every VM's disk at Dallas takes writes
//!   again — the new primary waits one replication lease (2 s in this profile) first.
//!
//! `cargo bench --bench dr -- [--lag-seconds S] [--planned N] [--unplanned N] [--base-port P]`.
use anyhow::{Result, bail};
use clap::Parser;
use std::path::Path;
use std::time::{Duration, Instant};
use vmrm::domain::identity::disk_for_vm;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

#[derive(Parser)]
#[command(name = "dr", about = "Replication lag and the RTO of moves across sites")]
struct Args {
    /// How long the replication lag is sampled.
    #[arg(long, default_value_t = 10)]
    lag_seconds: u64,
    /// Planned moves to time (alternating Austin → Dallas and back).
    #[arg(long, default_value_t = 4)]
    planned: usize,
    /// Unplanned moves to time (each on a fresh datacenter).
    #[arg(long, default_value_t = 2)]
    unplanned: usize,
    /// The datacenter listens on BASE+1 … BASE+370.
    #[arg(long, default_value_t = 17000)]
    base_port: u16,
}

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
const HOSTS_PER_SITE: usize = 3;
const VMS_PER_HOST: usize = 4;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn started(base_port: u16, dir: &Path) -> Result<Datacenter> {
    let topology = Topology::two_sites(base_port, HOSTS_PER_SITE, VMS_PER_HOST, dir.to_path_buf());
    let dc = Datacenter::start(topology, Path::new(VMRMD)).await?;
    dc.setup().await?;
    Ok(dc)
}

fn vms() -> Vec<String> {
    (1..=HOSTS_PER_SITE).flat_map(|h| (1..=VMS_PER_HOST).map(move |v| format!("vm-{h}-{v}"))).collect()
}

fn move_to(site: &str, dr_type: pb::DrType) -> pb::MoveRequest {
    pb::MoveRequest {
        host_group: "HG1".into(),
        to: site.into(),
        dr_type: dr_type as i32,
        confirm: true,
        dr_test: false,
    }
}

/// The primary SAN's view of the group, as an administrator may ask it.
async fn group_status(dc: &Datacenter, site: usize) -> Result<pb::GroupStatus> {
    let mut san = pb::san_client::SanClient::new(dc.channel(&dc.topology.san_endpoint_of(site))?);
    Ok(san.query_group(pb::GroupRef { name: "HG1".into() }).await?.into_inner())
}

/// Lag samples (writes, ms) at the primary of `site` for `seconds`.
async fn sample_lag(dc: &Datacenter, site: usize, seconds: u64) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut writes, mut ms) = (Vec::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        let s = group_status(dc, site).await?;
        writes.push(s.lag_writes as f64);
        ms.push(s.lag_ms as f64);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((writes, ms))
}

/// The newest accepted write of `disk` at `site`'s SAN (its time, ms since the Unix epoch).
async fn last_write(dc: &Datacenter, site: usize, disk: &str) -> Result<i64> {
    let mut san = pb::san_client::SanClient::new(dc.channel(&dc.topology.san_endpoint_of(site))?);
    let ops = san.record(pb::RecordRequest { disk: disk.into() }).await?.into_inner().operations;
    Ok(ops.iter().filter(|op| op.kind == "WRITE").map(|op| op.last_at_ms).max().unwrap_or(0))
}

/// Waits until every VM's disk at `site` took a write after `since_ms`; when that was (ms).
async fn writing_since(dc: &Datacenter, site: usize, since_ms: i64) -> Result<i64> {
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut latest = 0;
    for vm in vms() {
        loop {
            let at = last_write(dc, site, &disk_for_vm(&vm)).await?;
            if at > since_ms {
                latest = latest.max(at);
                break;
            }
            if Instant::now() > give_up {
                bail!("{vm} does not write at site {site}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(latest)
}

async fn planned(dc: &Datacenter, rounds: usize) -> Result<Vec<f64>> {
    let mut admin = dc.admin()?;
    let mut times = Vec::new();
    for round in 0..rounds {
        let (to, site) = if round % 2 == 0 { ("Dallas", 1) } else { ("Austin", 0) };
        let called = vmrm::now_ms();
        let reply = admin.move_host_group(move_to(to, pb::DrType::Planned)).await?;
        let summary = reply.steps.last().map(|s| s.text.clone()).unwrap_or_default();
        if !summary.starts_with("12 out of 12") {
            bail!("planned move to {to}: {summary}");
        }
        let writing = writing_since(dc, site, called).await?;
        times.push((writing - called) as f64);
        println!(
            "  planned move to {to}: {} ms (answered), {} ms to every VM writing",
            reply_ms(called),
            writing - called
        );
    }
    Ok(times)
}

fn reply_ms(called: i64) -> i64 {
    vmrm::now_ms() - called
}

async fn unplanned_round(base_port: u16) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut dc = started(base_port, dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for host in 1..=HOSTS_PER_SITE {
        dc.kill_host(&format!("host-{host}"));
    }
    dc.kill("hmc-1");
    dc.kill("san");
    let mut admin = dc.admin()?;
    let called = vmrm::now_ms();
    let reply = admin.move_host_group(move_to("Dallas", pb::DrType::Unplanned)).await?;
    let summary = reply.steps.last().map(|s| s.text.clone()).unwrap_or_default();
    if !summary.starts_with("12 out of 12") {
        bail!("unplanned move: {summary}");
    }
    let writing = writing_since(&dc, 1, called).await?;
    println!("  unplanned move: {} ms (answered), {} ms to every VM writing", reply_ms(called), writing - called);
    dc.stop();
    Ok((writing - called) as f64)
}

async fn run(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let dc = started(args.base_port, dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("replication lag, 12 VMs × 5 writes/s = 60 writes/s, sampled every 50 ms for {} s", args.lag_seconds);
    let (mut writes, mut ms) = sample_lag(&dc, 0, args.lag_seconds).await?;
    println!(
        "  lag (writes): median {:.0}, p95 {:.0}, max {:.0}; lag (ms): median {:.0}, p95 {:.0}, max {:.0}; {} samples",
        percentile(&mut writes, 0.5),
        percentile(&mut writes, 0.95),
        percentile(&mut writes, 1.0),
        percentile(&mut ms, 0.5),
        percentile(&mut ms, 0.95),
        percentile(&mut ms, 1.0),
        ms.len()
    );
    println!("planned moves of 12 VMs");
    let mut planned = planned(&dc, args.planned).await?;
    drop(dc);
    println!("unplanned moves of 12 VMs (home site killed)");
    let mut unplanned = Vec::new();
    for round in 0..args.unplanned {
        unplanned.push(unplanned_round(args.base_port + 500 * (round as u16 + 1)).await?);
    }
    let (p, u) = (percentile(&mut planned, 0.5), percentile(&mut unplanned, 0.5));
    println!("RTO median: planned {p:.0} ms, unplanned {u:.0} ms (ratio unplanned/planned {:.2})", u / p);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` appends `--bench` for harness-less benches.
    run(Args::parse_from(std::env::args().filter(|a| a != "--bench"))).await
}
