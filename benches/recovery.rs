//! `recovery`: how fast a failed host's VMs are back, and how fast the relocation mapper plans.
//!
//! * Recovery (fast profile, real processes on loopback): a host holding 50 managed VMs is
//!   killed in a 4-host group; measured from `HOST_FAILURE_DETECTED` to the last
//!   `RESTART_COMPLETED`. Beside it, in the same datacenter, one VM restarted alone by the admin
//!   (the serial cost of one restart): the ratio says how much the bounded parallel restarts gain.
//! * Placement (pure function): 20,000 VMs on 1,000 hosts with every policy in play
//!   (collocation and anticollocation pairs, blacklists, priorities, flexible capacity) beside
//!   the same VMs with no policies (plain best fit). Target: under 100 ms.
//!
//! `cargo bench --bench recovery -- [--rounds N] [--placement-rounds N] [--base-port P]`.
use anyhow::{Result, bail};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use vmrm::config::VmConfig;
use vmrm::domain::{AffinityGroupRecord, AffinityKind, FlexCapacity, Priority, PriorityPercent, RestartPolicy};
use vmrm::launcher::{Datacenter, HostSpec, Topology};
use vmrm::logic::placement::{HostCapacity, Policies, VmDemand, place};
use vmrm::pb;

#[derive(Parser)]
#[command(name = "recovery", about = "Host recovery time and relocation mapper time")]
struct Args {
    /// Host failures to measure (each on a fresh datacenter; 0: placement only).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Placement runs of each kind.
    #[arg(long, default_value_t = 7)]
    placement_rounds: usize,
    /// The datacenter listens on BASE+1 … BASE+350.
    #[arg(long, default_value_t = 28500)]
    base_port: u16,
}

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
const FAILED_HOST_VMS: usize = 50;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A small deterministic generator, so every run plans the same datacenter.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

struct Placement {
    vms: Vec<VmDemand>,
    hosts: Vec<HostCapacity>,
    groups: Vec<AffinityGroupRecord>,
}

fn placement_inputs() -> Placement {
    let mut rng = Lcg(42);
    let hosts: Vec<HostCapacity> = (0..1000)
        .map(|h| HostCapacity { host: format!("host-{h:04}"), free_cpu: 64, free_memory_mb: 256 * 1024 })
        .collect();
    let vms: Vec<VmDemand> = (0..20_000)
        .map(|i| {
            let blacklist = match i % 10 {
                0 => (0..3).map(|_| hosts[rng.next(1000) as usize].host.clone()).collect(),
                _ => Vec::new(),
            };
            VmDemand {
                vm: format!("vm-{i:05}"),
                cpu: 1 + rng.next(4) as u32,
                memory_mb: 1024 * (1 + rng.next(16)),
                // Pairs share a priority: affinity groups need it.
                priority: [Priority::High, Priority::Medium, Priority::Low][(i / 2) % 3],
                homehost: if i % 4 == 0 { hosts[rng.next(1000) as usize].host.clone() } else { "failed".into() },
                blacklist,
            }
        })
        .collect();
    let pair = |kind: AffinityKind, i: usize| AffinityGroupRecord {
        name: format!("{kind}-{i}"),
        kind,
        vms: vec![vms[i].vm.clone(), vms[i + 1].vm.clone()],
    };
    let mut groups: Vec<AffinityGroupRecord> = (0..1000).map(|k| pair(AffinityKind::Collocation, k * 20)).collect();
    groups.extend((0..1000).map(|k| pair(AffinityKind::Anticollocation, k * 20 + 10)));
    Placement { vms, hosts, groups }
}

/// Median milliseconds of `place` over `rounds` runs; also the plan of the last run.
fn time_placement(p: &Placement, with_policies: bool, rounds: usize) -> (f64, usize, usize) {
    let staying = BTreeMap::new();
    let flex = FlexCapacity {
        memory: PriorityPercent { high: 100, medium: 80, low: 60 },
        cpu: PriorityPercent { high: 100, medium: 80, low: 60 },
    };
    let plain: Vec<VmDemand> =
        p.vms.iter().map(|v| VmDemand { blacklist: Vec::new(), homehost: "failed".into(), ..v.clone() }).collect();
    let (vms, groups, flex) = match with_policies {
        true => (&p.vms, &p.groups[..], flex),
        false => (&plain, &[][..], FlexCapacity::default()),
    };
    let policies = Policies { groups, flex, restart_policy: RestartPolicy::Auto, staying: &staying };
    let mut times = Vec::new();
    let mut last = Default::default();
    for _ in 0..rounds {
        let started = Instant::now();
        last = place(vms, &p.hosts, policies);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    (median(&mut times), last.placed.len(), last.unplaced.len())
}

async fn events(dc: &Datacenter) -> Vec<pb::EventView> {
    let Ok(mut admin) = dc.admin() else { return Vec::new() };
    admin
        .query_event(pb::EventQuery { limit: Some(1000), ..Default::default() })
        .await
        .map(|l| l.events)
        .unwrap_or_default()
}

fn topology(base_port: u16, dir: &Path) -> Topology {
    let mut t = Topology::uniform(base_port, 4, 1, dir.to_path_buf());
    for host in &mut t.hosts {
        host.cpu = 32;
        host.memory_mb = 64 * 1024;
    }
    t.hosts[0] = HostSpec {
        name: "host-1".into(),
        cpu: 64,
        memory_mb: 64 * 1024,
        vms: (1..=FAILED_HOST_VMS)
            .map(|j| VmConfig { name: format!("vm-1-{j}"), cpu: 1, memory_mb: 1024, permanent_index: None })
            .collect(),
        max_definitions: 100,
        site: 0,
    };
    t
}

/// One fresh datacenter: a single-VM admin restart, then host-1 killed. Returns (single VM
/// restart ms, recovery ms from declaration to the last VM running).
async fn recovery_round(base_port: u16) -> Result<(f64, f64)> {
    let dir = tempfile::Builder::new().prefix("vmrm-recovery-").tempdir()?;
    let mut dc = Datacenter::start(topology(base_port, dir.path()), Path::new(VMRMD)).await?;
    dc.setup().await?;
    let mut admin = dc.admin()?;
    let started = Instant::now();
    admin.restart_vm(pb::RestartVmRequest { vm: "vm-2-1".into(), host: "host-3".into() }).await?;
    let single = started.elapsed().as_secs_f64() * 1000.0;

    dc.kill_host("host-1");
    let give_up = Instant::now() + Duration::from_secs(120);
    let (declared, last) = loop {
        let events = events(&dc).await;
        let declared = events.iter().find(|e| e.name == "HOST_FAILURE_DETECTED" && e.subject == "host-1");
        let summary = events.iter().find(|e| e.name == "RECOVERY_COMPLETED" && e.subject == "host-1");
        if let (Some(d), Some(s)) = (declared, summary) {
            if s.message != format!("{FAILED_HOST_VMS} out of {FAILED_HOST_VMS} VMs have been successfully restarted") {
                bail!("recovery incomplete: {}", s.message);
            }
            let last =
                events.iter().filter(|e| e.name == "RESTART_COMPLETED").map(|e| e.at_ms).max().unwrap_or(s.at_ms);
            break (d.at_ms, last);
        }
        if Instant::now() > give_up {
            bail!("host-1's VMs were not all restarted within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    dc.stop();
    Ok((single, (last - declared) as f64))
}

async fn run(args: Args) -> Result<()> {
    let inputs = placement_inputs();
    let (plain_ms, plain_placed, _) = time_placement(&inputs, false, args.placement_rounds);
    let (policy_ms, placed, unplaced) = time_placement(&inputs, true, args.placement_rounds);
    println!("placement of 20,000 VMs on 1,000 hosts, median of {} runs:\n", args.placement_rounds);
    println!("| mapper | median (ms) | placed | unplaced | ratio to plain |");
    println!("|---|---:|---:|---:|---:|");
    println!("| plain best fit (no policies) | {plain_ms:.1} | {plain_placed} | 0 | 1.00 |");
    println!("| all policies | {policy_ms:.1} | {placed} | {unplaced} | {:.2} |", policy_ms / plain_ms);
    println!("target: under 100 ms with all policies → {}\n", if policy_ms < 100.0 { "met" } else { "NOT met" });

    if args.rounds == 0 {
        return Ok(());
    }
    let mut singles = Vec::new();
    let mut recoveries = Vec::new();
    for round in 1..=args.rounds {
        let (single, recovery) = recovery_round(args.base_port).await?;
        println!("round {round}: one VM alone {single:.0} ms; {FAILED_HOST_VMS} VMs of a failed host {recovery:.0} ms");
        singles.push(single);
        recoveries.push(recovery);
    }
    let (single, recovery) = (median(&mut singles), median(&mut recoveries));
    println!("\nfast profile, median of {} rounds:\n", args.rounds);
    println!("| measure | median (ms) |");
    println!("|---|---:|");
    println!("| one VM restarted alone (admin restart) | {single:.0} |");
    println!("| {FAILED_HOST_VMS} VMs: HOST_FAILURE_DETECTED → last VM running | {recovery:.0} |");
    println!("| per VM in the host recovery | {:.0} |", recovery / FAILED_HOST_VMS as f64);
    println!(
        "| ratio: host recovery / ({FAILED_HOST_VMS} × one VM alone) | {:.2} |",
        recovery / (FAILED_HOST_VMS as f64 * single)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` appends `--bench` for harness-less benches.
    run(Args::parse_from(std::env::args().filter(|a| a != "--bench"))).await
}
