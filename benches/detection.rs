//! `detection`: how long the FDE takes, on the `fast` profile, from a failure to its
//! declaration, beside the configured detection times. A datacenter of real processes on
//! loopback; each round injects one failure and reads the time of the event that declares it.
//!
//! * host: SIGKILL a host's SU and both VIOSs → `HOST_FAILURE_DETECTED`. Configured:
//!   `host_failure_detection_time` (counted from the host's last sign of life).
//! * VM: hang one VM's OS (no heartbeats, no ping) → `VM_FAILURE_DETECTED`. Configured: the
//!   time a host monitor waits before it declares the heartbeat MISSING, plus VMFDT (seed: the
//!   missed count starts at MISSING).
//!
//! `cargo bench --bench detection -- [--rounds N] [--base-port P]`.
use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::Path;
use std::time::Duration;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::profile::{ProfileName, Timing};

#[derive(Parser)]
#[command(name = "detection", about = "Failure detection time against the configured detection time (fast profile)")]
struct Args {
    /// Failures of each kind to measure (at most 6 VM rounds: one per VM of hosts 1–3).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The datacenter listens on BASE+1 … BASE+350.
    #[arg(long, default_value_t = 28000)]
    base_port: u16,
}

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
/// The host the host rounds kill and bring back.
const VICTIM_HOST: &str = "host-4";

async fn events(dc: &Datacenter) -> Vec<pb::EventView> {
    let Ok(mut admin) = dc.admin() else {
        return Vec::new();
    };
    admin
        .query_event(pb::EventQuery { limit: Some(1000), ..Default::default() })
        .await
        .map(|l| l.events)
        .unwrap_or_default()
}

/// Waits for a new event `name` about `subject` (sequence above `after`); returns its time.
async fn declared(dc: &Datacenter, name: &str, subject: &str, after: u64) -> Result<i64> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < give_up {
        let found = events(dc).await.into_iter().find(|e| e.sequence > after && e.name == name && e.subject == subject);
        if let Some(e) = found {
            return Ok(e.at_ms);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("no {name} for {subject} within a minute")
}

async fn last_sequence(dc: &Datacenter) -> u64 {
    events(dc).await.iter().map(|e| e.sequence).max().unwrap_or(0)
}

async fn wait_vioses_up(dc: &Datacenter, host: &str) -> Result<()> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < give_up {
        let vioses = dc.admin()?.query_vios(pb::QueryRequest::default()).await.map(|l| l.vioses).unwrap_or_default();
        if vioses.iter().filter(|v| v.host == host).all(|v| v.healthy) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the VIOSs of {host} did not come back")
}

async fn host_round(dc: &mut Datacenter) -> Result<i64> {
    let after = last_sequence(dc).await;
    let killed_at = vmrm::now_ms();
    dc.kill_host(VICTIM_HOST);
    let at = declared(dc, "HOST_FAILURE_DETECTED", VICTIM_HOST, after).await?;
    for node in Topology::host_nodes(VICTIM_HOST) {
        dc.restart(&node).await?;
    }
    wait_vioses_up(dc, VICTIM_HOST).await?;
    // Let the FDE see the host healthy again before the next kill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(at - killed_at)
}

async fn vm_round(dc: &Datacenter, vm: &str) -> Result<i64> {
    let mut admin = dc.admin()?;
    let vms = admin.query_vm(pb::QueryRequest { name: vm.to_string(), ..Default::default() }).await?.vms;
    let host = vms.first().map(|v| v.host.clone()).with_context(|| format!("no VM {vm}"))?;
    let after = last_sequence(dc).await;
    let hung_at = vmrm::now_ms();
    dc.inject_fault(&host, vm, "hang-os").await?;
    let at = declared(dc, "VM_FAILURE_DETECTED", vm, after).await?;
    Ok(at - hung_at)
}

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn report(kind: &str, mut measured: Vec<i64>, configured: Duration) {
    let configured = configured.as_millis() as i64;
    let runs = measured.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    let m = median(&mut measured);
    let overhead = (m - configured) as f64 * 100.0 / configured as f64;
    println!(
        "| {kind} | {configured} | {m} | {} / {} | {overhead:+.1} % | {runs} |",
        measured[0],
        measured[measured.len() - 1]
    );
}

async fn run(args: Args) -> Result<()> {
    let timing = Timing::of(ProfileName::Fast);
    let vmfdt = timing.host_failure_detection_time + 2 * timing.vm_threshold;
    let dir = tempfile::Builder::new().prefix("vmrm-detection-").tempdir()?;
    let topology = Topology::uniform(args.base_port, 4, 2, dir.path().to_path_buf());
    let mut dc = Datacenter::start(topology, Path::new(VMRMD)).await?;
    dc.setup().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Hosts 1–3 hold 6 VMs; each VM round hangs a different one.
    let victims = ["vm-1-1", "vm-1-2", "vm-2-1", "vm-2-2", "vm-3-1", "vm-3-2"];
    let mut vm_times = Vec::new();
    for vm in victims.iter().take(args.rounds) {
        let t = vm_round(&dc, vm).await?;
        println!("VM round: {vm} declared failed {t} ms after its OS hung");
        vm_times.push(t);
    }
    let mut host_times = Vec::new();
    for round in 1..=args.rounds {
        let t = host_round(&mut dc).await?;
        println!("host round {round}: {VICTIM_HOST} declared failed {t} ms after it was killed");
        host_times.push(t);
    }
    dc.stop();

    println!("\nfast profile, median of {} rounds each:\n", args.rounds);
    println!("| failure | configured (ms) | measured median (ms) | min / max (ms) | overhead | runs (ms) |");
    println!("|---|---:|---:|---:|---:|---|");
    report("host killed → HOST_FAILURE_DETECTED", host_times, timing.host_failure_detection_time);
    report("VM OS hung → VM_FAILURE_DETECTED", vm_times, timing.vm_missing_after + vmfdt);
    println!(
        "\nconfigured: host = host_failure_detection_time {} ms; VM = HM MISSING after {} ms + VMFDT {} ms \
         (host time + 2 × VMthreshold {} ms, speed normal)",
        timing.host_failure_detection_time.as_millis(),
        timing.vm_missing_after.as_millis(),
        vmfdt.as_millis(),
        timing.vm_threshold.as_millis()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` appends `--bench` for harness-less benches.
    run(Args::parse_from(std::env::args().filter(|a| a != "--bench"))).await
}
