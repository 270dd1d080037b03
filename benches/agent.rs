//! `agent`: what the VM agent's Application Management Engine costs while it supervises 16
//! applications with the seed's `period=1` (one round a second), each monitor a real script run
//! every 2 s (the shortest `monitor_period` above a 1 s `monitor_timeout`). Measured side by
//! side in one process: first the agent with no application (its baseline), then with 16.
//! Reports the agent process's own CPU (user + system, the scripts' processes excluded) per
//! minute, its median against the 1 %-of-a-core target, and its resident memory over the run.
//!
//! `cargo bench --bench agent -- [--minutes 10] [--baseline-minutes 1]`.
use actix::prelude::*;
use clap::Parser;
use std::path::Path;
use std::time::{Duration, Instant};
use vmrm::agents::vm_agent::ame::{AmeActor, AppsChanged, ProcessGroups};
use vmrm::agents::vm_agent::guest::GuestDir;
use vmrm::agents::vm_agent::report::AppReport;
use vmrm::logic::app_engine::HaMonitoring;

#[derive(Parser)]
#[command(name = "agent", about = "CPU and memory of the VM agent supervising 16 applications")]
struct Args {
    /// Minutes with 16 applications.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Minutes with none first (the baseline).
    #[arg(long, default_value_t = 1)]
    baseline_minutes: u64,
}

/// The target: under 1 % of one core.
const TARGET_CPU_PERCENT: f64 = 1.0;
const APPS: usize = 16;

/// The doorbell the agent rings after rounds with changes, kept as the VM actor keeps it.
#[derive(Default)]
struct Doorbell(AppReport);

impl Actor for Doorbell {
    type Context = Context<Self>;
}

impl Handler<AppsChanged> for Doorbell {
    type Result = ();
    fn handle(&mut self, AppsChanged(bits): AppsChanged, _: &mut Context<Self>) {
        self.0.ring(bits);
    }
}

/// This process's CPU time so far (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Resident memory now, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn configure(guest: &GuestDir, scripts: &Path, apps: usize) {
    use std::os::unix::fs::PermissionsExt;
    let ok = scripts.join("ok");
    std::fs::write(&ok, "#!/bin/sh\nexit 0\n").expect("script");
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ok = ok.display().to_string();
    let mut cfg = HaMonitoring::default();
    for i in 0..apps {
        let attrs: Vec<(String, String)> = [
            ("monitor_script", ok.as_str()),
            ("start_script", &ok),
            ("stop_script", &ok),
            ("monitor_period", "2"),
            ("monitor_timeout", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        cfg.add_app(&format!("app{i}"), format!("{i}"), &attrs).expect("app");
    }
    guest.save(&cfg).expect("configuration saved");
}

/// CPU % of one core used per minute over `minutes` minutes, and RSS (KiB) after each minute.
async fn measure(minutes: u64, label: &str) -> (Vec<f64>, Vec<u64>) {
    let (mut cpu, mut rss) = (Vec::new(), Vec::new());
    for m in 1..=minutes {
        let (t0, c0) = (Instant::now(), cpu_time());
        tokio::time::sleep(Duration::from_secs(60)).await;
        let percent = (cpu_time() - c0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
        cpu.push(percent);
        rss.push(rss_kib());
        println!("{label:<10} minute {m:>2}: CPU {percent:>6.3} % of a core, RSS {} KiB", rss_kib());
    }
    (cpu, rss)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    // `cargo bench` appends `--bench` for harness-less benches.
    let args = Args::parse_from(std::env::args().filter(|a| a != "--bench"));
    let dir = tempfile::tempdir().expect("temp dir");
    let guest = GuestDir::new(dir.path().join("guest"));
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts dir");
    guest.create().expect("guest dir");
    System::new().block_on(async move {
        let groups = ProcessGroups::default();
        let doorbell = Doorbell::default().start().recipient();
        let idle = AmeActor::new("bench".into(), guest.clone(), groups.clone(), doorbell.clone(), false).start();
        let (base_cpu, _) = measure(args.baseline_minutes, "0 apps").await;
        idle.do_send(vmrm::agents::vm_agent::ame::StopAme);

        configure(&guest, &scripts, APPS);
        let _busy = AmeActor::new("bench".into(), guest.clone(), groups.clone(), doorbell, false).start();
        let (cpu, rss) = measure(args.minutes, "16 apps").await;
        groups.signal_all(libc::SIGKILL);

        let (base, busy) = (median(&base_cpu), median(&cpu));
        let (first, last) = (rss.first().copied().unwrap_or(0), rss.last().copied().unwrap_or(0));
        println!("\nagent, {APPS} apps, period 1 s, monitors every 2 s, {} min:", args.minutes);
        println!(
            "  CPU median {busy:.3} % of a core (no apps: {base:.3} %), ratio to the 1 % target {:.2}",
            busy / TARGET_CPU_PERCENT
        );
        println!(
            "  RSS after minute 1: {first} KiB, at the end: {last} KiB (growth {} KiB)",
            last as i64 - first as i64
        );
        System::current().stop();
    });
}
