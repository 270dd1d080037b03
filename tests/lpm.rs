//! Live migration on a datacenter of real processes: a VM whose workload dirties its memory
//! moves with its bytes and its counter intact, inside the maximum downtime; a rejection names
//! every reason at once; an abort at any phase (resources refused on the target, resume failed,
//! admin cancel, network cut, target killed, pre-copy not converging) leaves the VM running on
//! its source with nothing left on the target; a host is evacuated and moved back home with one
//! command each.
mod common;

use common::*;
use std::time::Duration;
use vmrm::config::VmConfig;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

fn lpm(vm: &str, to: &str, limits: pb::MigrationLimits) -> pb::MigrateRequest {
    pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vec![vm.into()],
        to: to.into(),
        limits: Some(limits),
        ..Default::default()
    }
}

fn limits(max_downtime_ms: u32, bandwidth_mb_s: u32, policy: &str) -> pb::MigrationLimits {
    let policy = match policy {
        "force" => pb::ConvergencePolicy::Force,
        _ => pb::ConvergencePolicy::Abort,
    };
    pb::MigrationLimits { max_downtime_ms, bandwidth_mb_s, policy: policy as i32, max_rounds: 0 }
}

async fn monjv(admin: &mut vmrm::transport::AdminClient, name: &str, password: &str) -> pb::MonjvView {
    let q = pb::MonjvQuery { name: name.into(), password: password.into() };
    admin.query_monjv(q).await.expect("the MONJV").monjvs.remove(0)
}

/// Every console line of a migration's replies, in order.
fn console(replies: &[pb::MigrateReply]) -> Vec<String> {
    replies.iter().flat_map(|r| r.printed().into_iter().map(|l| l.trim().to_string())).collect()
}

fn last_progress(replies: &[pb::MigrateReply]) -> pb::MigrationProgress {
    replies.iter().rev().find_map(|r| r.progress.clone()).expect("a migration reports progress")
}

async fn su_lpars(dc: &Datacenter, host: &str) -> Vec<pb::Lpar> {
    let su = dc.topology.su_endpoint(host).expect("host");
    vmrm::launcher::su_inventory(&su, Duration::from_secs(2), dc.security()).await.map(|i| i.lpars).unwrap_or_default()
}

fn names(lpars: &[pb::Lpar]) -> Vec<String> {
    lpars.iter().filter_map(|l| l.definition.as_ref().map(|d| d.name.clone())).collect()
}

/// The workload's counter log of `vm`: (counter, host) per line.
fn workload_log(dc: &Datacenter, vm: &str) -> Vec<(u64, String)> {
    let path = dc.topology.guests_dir().join(vm).join("var/ksys/log/workload.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(' ').and_then(|(n, h)| Some((n.parse().ok()?, h.to_string())))).collect()
}

/// Waits until the workload of `vm` has counted a few steps on `host`.
async fn counted_on(dc: &Datacenter, vm: &str, host: &str) {
    wait_until(&format!("{vm} counting on {host}"), Duration::from_secs(10), || async {
        (workload_log(dc, vm).iter().filter(|(_, h)| h == host).count() >= 10).then_some(())
    })
    .await;
}

/// The counter went up by exactly one every step, and the hosts that counted, in order.
fn assert_counted_once(log: &[(u64, String)]) -> Vec<String> {
    assert!(log.len() > 10, "the workload logged {} steps", log.len());
    for w in log.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "a gap or a repeat in the counter: {:?} then {:?}", w[0], w[1]);
    }
    let mut hosts: Vec<String> = Vec::new();
    for (_, h) in log {
        if hosts.last() != Some(h) {
            hosts.push(h.clone());
        }
    }
    hosts
}

/// The VM runs on `host` only, the controller says so, with no operation in progress.
async fn assert_runs_on(dc: &Datacenter, vm: &str, host: &str) {
    let running = running_vms(dc).await;
    assert_eq!(running.get(vm).map(Vec::as_slice), Some(&[host.to_string()][..]), "{running:?}");
    let view = vms(dc).await.into_iter().find(|v| v.name == vm).expect("the VM");
    assert_eq!((view.host.as_str(), view.vm_status()), (host, pb::VmStatus::NoOperationInProgress));
}

/// Nothing of `vm` is left on `host`: no definition, no reserved memory.
async fn assert_nothing_left(dc: &Datacenter, host: &str, vm: &str) {
    let left = wait_until(&format!("{host} to hold nothing of {vm}"), Duration::from_secs(10), || async {
        let lpars = su_lpars(dc, host).await;
        (!names(&lpars).contains(&vm.to_string())).then_some(lpars)
    })
    .await;
    assert!(left.iter().all(|l| l.migration.is_none()), "{left:#?}");
}

/// A migrating VM keeps its memory byte for byte and its workload's count without a gap or a
/// repeat, pauses no longer than allowed, takes its disk's reservation along and stays watched
/// on the target; with `force` a migration that cannot converge still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirtying_vm_migrates_with_its_memory_and_counter_intact() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm");
    let dc = start(Topology::uniform(25000, 3, 1, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    dc.set_workload("host-1", "vm-1-1", 64, 10_000, true).await.expect("workload");
    let add = pb::MonjvChange {
        action: pb::ChangeAction::Add as i32,
        name: "JV.VM11".into(),
        vm: "vm-1-1".into(),
        password: "pw".into(),
        ..Default::default()
    };
    admin.change_monjv(add).await.expect("a MONJV for vm-1-1");
    let jv = monjv(&mut admin, "JV.VM11", "pw").await;
    assert_eq!((&jv.bytes[0..3], &jv.bytes[70..76], jv.monitoring), (&b"$R "[..], &b"vm-1-1"[..], true));
    let watch = pb::MonjvWatch { name: "JV.VM11".into(), password: "pw".into(), from: 87, to: 94, timeout_ms: 30_000 };
    let mut watcher = dc.admin().unwrap();
    let watched = tokio::spawn(async move { watcher.watch_monjv(watch).await });
    // The watch compares with the bytes as its call arrives (nothing to observe that it did);
    // meanwhile the workload logs its first values.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut req = lpm("vm-1-1", "host-2", limits(100, 0, ""));
    req.monjv = "MONJV.LM.VM11".into();
    let replies = admin.migrate_all(req).await.expect("migrated");
    let done = last_progress(&replies);
    assert_eq!(done.phase(), pb::MigrationPhase::Completed);
    assert_ne!(done.source_checksum, 0);
    assert_eq!(done.target_checksum, done.source_checksum, "the target's memory at resume is the source's at pause");
    assert!(done.downtime_us <= 100_000, "paused {} µs, allowed 100 ms", done.downtime_us);
    assert!(!done.forced);
    assert!(done.sent_bytes >= 64 << 20, "every resident page went: {} bytes", done.sent_bytes);
    let lines = console(&replies);
    let at = |prefix: &str| {
        lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {lines:#?}"))
    };
    assert!(
        at("LPM has started for vm-1-1")
            < at("host-1: VMS2450 LIVE MIGRATION OF VM (1,vm-1-1) TO TARGET SU 'host-2' STARTED")
    );
    assert!(at("host-1: VMS2450") < at("host-2: VMS2430") && at("host-2: VMS2430") < at("host-2: VMS3050"));
    assert!(at("host-2: VMS4005") < at("host-1: VMS2452") && at("host-1: VMS2452") < at("host-2: VMS2432"));
    assert!(at("host-2: VMS2432") < at("host-2: VMS2431") && at("host-1: VMS4024") < at("host-1: VMS2451"));
    assert_eq!(lines.last().map(String::as_str), Some("1 out of 1 VMs have been successfully performed LPM"));
    assert_runs_on(&dc, "vm-1-1", "host-2").await;
    counted_on(&dc, "vm-1-1", "host-2").await;
    assert_eq!(assert_counted_once(&workload_log(&dc, "vm-1-1")), ["host-1", "host-2"]);
    // The active controller's metrics: one completed migration, with its pause.
    let metrics = scrape(&dc, &active_controller(&dc).await).await;
    assert_eq!(sample(&metrics, "vmrm_lpm_pause_seconds_count"), Some(1.0), "{metrics}");
    let paused = sample(&metrics, "vmrm_lpm_pause_seconds_sum").expect("a pause");
    assert!(
        (paused - done.downtime_us as f64 / 1e6).abs() < 1e-6,
        "{paused} s, the migration said {} µs",
        done.downtime_us
    );
    assert_eq!(sample(&metrics, "vmrm_events_total{event=\"LPM_COMPLETED\"}"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "vmrm_service_serving{service=\"vmrm.v1.Admin\"}"), Some(1.0), "{metrics}");

    // The VM's MONJV saw MIGR-OUT (the watch woke up), and is kept, terminated, on the source.
    let woke = watched.await.unwrap().expect("the watch saw bytes 87-94 change");
    assert_eq!(&woke.bytes[86..94], b"MIGR-OUT");
    let jv = monjv(&mut admin, "JV.VM11", "pw").await;
    assert_eq!((&jv.bytes[0..3], &jv.bytes[86..94], jv.monitoring), (&b"$T "[..], &b"MIGR-OUT"[..], false));
    assert_eq!(monjv(&mut admin, "MONJV.LM.VM11", "").await.bytes[0..3], *b"$T ");
    let wrong = admin.query_monjv(pb::MonjvQuery { name: "JV.VM11".into(), password: "guess".into() }).await;
    assert!(wrong.unwrap_err().to_string().contains("password is missing or wrong"));

    // The VM writes once a heartbeat period: wait for its first write on host-2.
    let record = wait_until("the VM to write on host-2", Duration::from_secs(10), || async {
        let record = san_record(&dc, "vm-1-1-rootvg").await;
        let preempt = record.iter().rposition(|op| op.kind == "PREEMPT")?;
        record[preempt..].iter().any(|op| op.kind == "WRITE" && op.owner == "host-2").then_some(record)
    })
    .await;
    assert_single_writer("vm-1-1-rootvg", &record);
    let preempt = record.iter().rposition(|op| op.kind == "PREEMPT").expect("the reservation moved");
    assert_eq!(record[preempt].owner, "host-2");
    assert!(record[preempt..].iter().all(|op| op.kind != "WRITE_REJECTED"), "the source was paused: {record:#?}");

    let ev = events(&dc).await;
    let seq = |name: &str| {
        ev.iter().position(|e| e.name == name && e.subject == "vm-1-1").unwrap_or_else(|| panic!("{name}"))
    };
    assert!(seq("LPM_STARTED") < seq("VM_PAUSED") && seq("VM_PAUSED") < seq("VM_DELETED"));
    assert!(seq("VM_CREATED") < seq("LPM_COMPLETED"));
    assert!(ev.iter().any(|e| e.message == "VM 'vm-1-1' on Server Unit 'host-2' created"));

    // HA monitoring goes on on host-2: heartbeats arrive there, nothing is detected as failed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let view = vms(&dc).await.into_iter().find(|v| v.name == "vm-1-1").unwrap();
    assert_eq!((view.host.as_str(), view.ha_monitor_state()), ("host-2", pb::HaMonitorState::Started), "{view:?}");
    assert!(
        !events(&dc).await.iter().any(|e| e.name == "VM_FAILURE_DETECTED"),
        "the migrated VM is not taken for failed"
    );

    // Dirtying (40 MB/s) outpaces copying (10 MB/s): `force` completes anyway, with a longer pause.
    dc.set_workload("host-2", "vm-1-1", 16, 40_000, true).await.expect("workload");
    let forced = pb::MigrationLimits { max_rounds: 3, ..limits(10, 10, "force") };
    let req = pb::MigrateRequest { monjv: "MONJV.LM.FORCED".into(), ..lpm("vm-1-1", "host-3", forced) };
    let replies = admin.migrate_all(req).await.expect("forced through");
    assert_eq!(monjv(&mut admin, "MONJV.LM.FORCED", "").await.bytes[0..3], *b"$TW", "terminated with warnings");
    let done = last_progress(&replies);
    assert!(done.forced, "{done:?}");
    assert_eq!(done.target_checksum, done.source_checksum);
    assert_runs_on(&dc, "vm-1-1", "host-3").await;
    counted_on(&dc, "vm-1-1", "host-3").await;
    assert_eq!(assert_counted_once(&workload_log(&dc, "vm-1-1")), ["host-1", "host-2", "host-3"]);
}

/// A rejection names every conflict at once and changes nothing; an abort at each phase rolls
/// back: the VM keeps running (and counting) on its source, the target holds nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_and_aborts_leave_the_vm_running_on_its_source() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm-abort");
    let mut topology = Topology::uniform(25100, 3, 1, dir.path().to_path_buf());
    topology.hosts[1].max_definitions = 2;
    // Permanent VM indexes (VM2000's VM-INDEX=n): vm-1-1's 1 is free on host-2, where vm-2-1
    // has 2, but vm-3-1 holds it on host-3.
    topology.hosts[0].vms[0].permanent_index = Some(1);
    topology.hosts[1].vms[0].permanent_index = Some(2);
    let mut dc = start(topology).await;
    let mut admin = dc.admin().unwrap();
    dc.set_workload("host-1", "vm-1-1", 64, 2_000, true).await.expect("workload");

    // A stale definition of vm-1-1 on host-2 (its disk is held by host-1, so it stays Not
    // Activated), a configuration change and a shutdown in progress there: four reasons. (Made
    // after the FDE's first sweep, which would clean a stale definition up.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let def = su_lpars(&dc, "host-1").await.into_iter().find_map(|l| l.definition).expect("vm-1-1");
    let host2 =
        common::node_pool(&dc, Duration::from_secs(2)).get(&dc.topology.su_endpoint("host-2").unwrap()).unwrap();
    let mut su2 = pb::server_unit_client::ServerUnitClient::new(host2);
    assert!(su2.activate(def.clone()).await.is_err(), "the disk is reserved by host-1");
    for fault in ["configuration-update-start", "shutdown-start"] {
        dc.inject_fault("host-2", "", fault).await.expect(fault);
    }
    let req = pb::MigrateRequest { monjv: "MONJV.LM.REJ".into(), ..lpm("vm-1-1", "host-2", limits(0, 0, "")) };
    let rejected = admin.migrate_all(req).await.unwrap_err().to_string();
    assert_eq!(monjv(&mut admin, "MONJV.LM.REJ", "").await.bytes[0..3], *b"$AF");
    for reason in [
        "VMS2404 LIVE MIGRATION OF VM (1,vm-1-1) REJECTED BY THE TARGET SU 'host-2'.",
        "REASON: Server unit host-2: dynamic I/O configuration change in progress",
        "REASON: Server unit host-2: hypervisor shutdown in progress",
        "REASON: VM name vm-1-1: already in use",
        "REASON: VM definitions host-2: maximum number of VM definitions (2) reached",
        "VMS2461 LIVE MIGRATION OF VM (1,vm-1-1) TO TARGET SU 'host-2' NOT POSSIBLE",
    ] {
        assert!(rejected.contains(reason), "`{reason}` missing from: {rejected}");
    }
    let validate =
        pb::MigrateRequest { action: pb::MigrateAction::Validate as i32, ..lpm("vm-1-1", "host-2", limits(0, 0, "")) };
    assert!(admin.migrate_all(validate).await.unwrap_err().to_string().contains("VMS2461"));
    assert!(!events(&dc).await.iter().any(|e| e.name == "LPM_STARTED"), "a rejection starts nothing");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    for fault in ["configuration-update-end", "shutdown-end"] {
        dc.inject_fault("host-2", "", fault).await.expect(fault);
    }
    let _ = su2.remove(pb::LparRef { name: "vm-1-1".into(), immediate: true, fence: 0 }).await;
    let validate =
        pb::MigrateRequest { action: pb::MigrateAction::Validate as i32, ..lpm("vm-1-1", "host-2", limits(0, 0, "")) };
    let possible = console(&admin.migrate_all(validate).await.expect("possible now"));
    assert_eq!(possible, ["VMS2460 LIVE MIGRATION OF VM (1,vm-1-1) TO TARGET SU 'host-2' POSSIBLE"]);
    let validate =
        pb::MigrateRequest { action: pb::MigrateAction::Validate as i32, ..lpm("vm-1-1", "host-3", limits(0, 0, "")) };
    let taken = admin.migrate_all(validate).await.unwrap_err().to_string();
    assert!(taken.contains("REASON: VM index 1: already in use") && taken.contains("VMS2461"), "{taken}");
    let ids: Vec<(String, u32)> =
        su_lpars(&dc, "host-2").await.into_iter().map(|l| (l.definition.unwrap().name, l.lpar_id)).collect();
    assert_eq!(ids, [("vm-2-1".to_string(), 2)], "vm-2-1 has its permanent index");

    // Setup: the target cannot assign the resources.
    dc.inject_fault("host-2", "", "refuse-next-inbound").await.unwrap();
    let req = pb::MigrateRequest { monjv: "MONJV.LM.AE".into(), ..lpm("vm-1-1", "host-2", limits(0, 0, "")) };
    let e = admin.migrate_all(req).await.unwrap_err().to_string();
    assert_eq!(monjv(&mut admin, "MONJV.LM.AE", "").await.bytes[0..3], *b"$AE");
    assert!(e.contains("could not assign the resources") && e.contains("the VM was not moved from host host-1"), "{e}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;

    // Switchover: the target cannot resume the VM; the source takes the disk back and runs on.
    dc.inject_fault("host-2", "", "fail-next-resume").await.unwrap();
    let e = admin.migrate_all(lpm("vm-1-1", "host-2", limits(0, 0, ""))).await.unwrap_err().to_string();
    assert!(e.contains("could not be resumed"), "{e}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;
    let record = san_record(&dc, "vm-1-1-rootvg").await;
    let last_preempt = record.iter().rposition(|op| op.kind == "PREEMPT").expect("taken back");
    assert_eq!(record[last_preempt].owner, "host-1", "{record:#?}");

    // Pre-copy does not converge (40 MB/s dirtied, 10 MB/s copied) under `abort`: VMS2425.
    dc.set_workload("host-1", "vm-1-1", 16, 40_000, true).await.unwrap();
    let mut slow = limits(10, 10, "abort");
    slow.max_rounds = 3;
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", slow));
    let e = migration.await.unwrap().unwrap_err().to_string();
    assert!(e.contains("3 rounds") && e.contains("still dirty"), "{e}");
    let mut lines = Vec::new();
    while let Ok(reply) = updates.try_recv() {
        lines.extend(reply.printed());
    }
    let not_in_time = "host-1: VMS2425 CHANGING MEMORY PAGES CANNOT BE TRANSFERRED IN TIME. LIVE MIGRATION OF VM (1,vm-1-1) TO TARGET SU 'host-2' ABORTED";
    assert!(lines.iter().any(|l| l.trim() == not_in_time), "{lines:#?}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;
    dc.set_workload("host-1", "vm-1-1", 128, 2_000, true).await.unwrap();

    // Admin cancel in the middle of pre-copy (128 MB at 10 MB/s); a second request meanwhile is refused.
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", limits(0, 10, "")));
    wait_for_precopy(&mut updates).await;
    let again = admin.migrate_all(lpm("vm-1-1", "host-3", limits(0, 0, ""))).await.unwrap_err().to_string();
    assert!(again.contains("another operation in progress (LPM_IN_PROGRESS)"), "{again}");
    let cancel = pb::MigrateRequest { action: pb::MigrateAction::Cancel as i32, ..lpm("vm-1-1", "", limits(0, 0, "")) };
    assert!(console(&admin.migrate_all(cancel).await.expect("cancel"))[0].contains("rolls back"));
    let e = migration.await.unwrap().unwrap_err().to_string();
    assert!(e.contains("cancelled by the administrator"), "{e}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;

    // The network to the target is cut in the middle of pre-copy (its SU frozen).
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", limits(0, 10, "")));
    wait_for_precopy(&mut updates).await;
    dc.pause("host-2-su");
    let e = migration.await.unwrap().unwrap_err().to_string();
    dc.resume("host-2-su");
    assert!(e.contains("interrupted") || e.contains("lost") || e.contains("did not answer"), "{e}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;

    // The target dies in the middle of pre-copy, and comes back empty.
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", limits(0, 10, "")));
    wait_for_precopy(&mut updates).await;
    dc.kill("host-2-su");
    let e = migration.await.unwrap().unwrap_err().to_string();
    assert!(e.contains("the VM was not moved from host host-1"), "{e}");
    assert_runs_on(&dc, "vm-1-1", "host-1").await;
    dc.restart("host-2-su").await.expect("host-2's hypervisor back");
    assert_nothing_left(&dc, "host-2", "vm-1-1").await;

    // Through all of it the workload counted on host-1 only, without a gap or a repeat.
    assert_eq!(assert_counted_once(&workload_log(&dc, "vm-1-1")), ["host-1"]);
    let aborted = events(&dc).await.iter().filter(|e| e.name == "LPM_ABORTED").count();
    assert_eq!(aborted, 6, "setup, resume, convergence, cancel, network, target");
}

type Updates = tokio::sync::mpsc::UnboundedReceiver<pb::MigrateReply>;

/// Runs a migration in the background; its replies as they come.
fn start_migration(
    dc: &Datacenter,
    req: pb::MigrateRequest,
) -> (tokio::task::JoinHandle<vmrm::error::Result<()>>, Updates) {
    let mut admin = dc.admin().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let run = tokio::spawn(async move {
        let mut stream = admin.migrate(req).await?;
        while let Some(reply) = stream.message().await? {
            let _ = tx.send(reply);
        }
        Ok(())
    });
    (run, rx)
}

async fn wait_for_precopy(updates: &mut Updates) {
    let precopy = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(reply) = updates.recv().await {
            if reply.progress.is_some_and(|p| p.phase() == pb::MigrationPhase::Precopy) {
                return;
            }
        }
        panic!("the migration ended before pre-copy");
    });
    precopy.await.expect("pre-copy within 20 s");
}

/// `lpm host` moves every managed VM of a host away, High priority first; `restore host`
/// brings them all back home by live migration — one command each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_evacuated_and_restored_with_one_command_each() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm-evacuate");
    let mut topology = Topology::uniform(25200, 3, 1, dir.path().to_path_buf());
    topology.hosts[0].vms = (1..=4)
        .map(|j| VmConfig { name: format!("vm-1-{j}"), cpu: 2, memory_mb: 4096, permanent_index: None })
        .collect();
    let dc = start(topology).await;
    let mut admin = dc.admin().unwrap();
    admin.modify(modify("vm", "vm-1-4", &[("priority", "high")])).await.unwrap();
    admin.modify(modify("vm", "vm-1-1", &[("priority", "low")])).await.unwrap();

    let evacuate =
        pb::MigrateRequest { scope: pb::Scope::Host as i32, names: vec!["host-1".into()], ..Default::default() };
    let lines = console(&admin.migrate_all(evacuate).await.expect("evacuated"));
    assert_eq!(lines.last().map(String::as_str), Some("4 out of 4 VMs have been successfully performed LPM"));
    let running = running_vms(&dc).await;
    for j in 1..=4 {
        let vm = format!("vm-1-{j}");
        let on = running.get(&vm).cloned().unwrap_or_default();
        assert!(on.len() == 1 && on[0] != "host-1", "{vm} runs on {on:?}");
        assert_runs_on(&dc, &vm, &on[0]).await;
    }
    assert!(names(&su_lpars(&dc, "host-1").await).iter().all(|n| !n.starts_with("vm-1-")), "host-1 is empty");
    let ev = events(&dc).await;
    let started = |vm: &str| ev.iter().position(|e| e.name == "LPM_STARTED" && e.subject == vm).expect(vm);
    assert!(started("vm-1-4") < started("vm-1-1"), "High before Low");

    let restored = admin
        .restore(pb::RestoreRequest { scope: pb::Scope::Host as i32, name: "host-1".into() })
        .await
        .expect("restored");
    assert!(restored.printed().iter().any(|l| l.contains("(LPM)")), "{:#?}", restored.printed());
    for j in 1..=4 {
        assert_runs_on(&dc, &format!("vm-1-{j}"), "host-1").await;
    }
    assert!(!events(&dc).await.iter().any(|e| e.name == "RESTART_STARTED"), "home by migration, without an outage");

    // Two lone migrations out of host-1 asked at the same moment: one runs, the pre-check
    // refuses the other (one outbound migration per unit), and afterwards host-1 is free again.
    for vm in ["vm-1-2", "vm-1-3"] {
        dc.set_workload("host-1", vm, 32, 100, false).await.expect("workload");
    }
    let mut other = dc.admin().unwrap();
    let (a, b) = tokio::join!(
        admin.migrate_all(lpm("vm-1-2", "host-2", limits(0, 20, ""))),
        other.migrate_all(lpm("vm-1-3", "host-3", limits(0, 20, "")))
    );
    let ((ran, ran_to), (refused, refused_to), why) = match (a, b) {
        (Ok(_), Err(e)) => (("vm-1-2", "host-2"), ("vm-1-3", "host-3"), e.to_string()),
        (Err(e), Ok(_)) => (("vm-1-3", "host-3"), ("vm-1-2", "host-2"), e.to_string()),
        (a, b) => panic!("exactly one of two migrations out of one host may run: {:?}", (a.is_ok(), b.is_ok())),
    };
    assert!(why.contains(&format!("live migration of VM {ran} from this unit is running")), "{why}");
    assert_runs_on(&dc, ran, ran_to).await;
    assert_runs_on(&dc, refused, "host-1").await;
    admin.migrate_all(lpm(refused, refused_to, limits(0, 0, ""))).await.expect("host-1 is free again");
    assert_runs_on(&dc, refused, refused_to).await;
}

/// Killing the active controller in the middle of a migration loses nothing: the migration
/// goes on between the server units, the controller that takes over finishes the operation
/// (the VM's record says where it runs, its lock is free) and the VM runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_survives_the_loss_of_its_controller() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm-failover");
    let mut dc = start(Topology::uniform(25400, 3, 1, dir.path().to_path_buf())).await;
    dc.set_workload("host-1", "vm-1-1", 128, 1_000, true).await.expect("workload");
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", limits(0, 20, "")));
    wait_for_precopy(&mut updates).await;
    let active = format!("ctl-{}", members::dbn_status(&dc).await.node_id);
    dc.kill(&active);
    assert!(migration.await.unwrap().is_err(), "the caller loses its controller");
    wait_until("the new controller to finish the migration", Duration::from_secs(60), || async {
        let view = vms(&dc).await.into_iter().find(|v| v.name == "vm-1-1")?;
        (view.host == "host-2" && view.vm_status() == pb::VmStatus::NoOperationInProgress).then_some(())
    })
    .await;
    assert_runs_on(&dc, "vm-1-1", "host-2").await;
    let ev = events(&dc).await;
    assert!(ev.iter().any(|e| e.name == "RECOVERY_RESUMED" && e.subject == "vm-1-1"), "taken over");
    assert!(ev.iter().any(|e| e.name == "LPM_COMPLETED" && e.subject == "vm-1-1"));
    counted_on(&dc, "vm-1-1", "host-2").await;
    assert_eq!(assert_counted_once(&workload_log(&dc, "vm-1-1")), ["host-1", "host-2"]);
}

/// The source host dies in the middle of a migration: the migration ends (the target keeps
/// nothing), the VM's lock is freed, and the host failure restarts the VM — fenced — like the
/// host's other VMs: every VM runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_host_that_dies_mid_migration_has_its_vms_restarted() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm-source-dies");
    let mut dc = start(Topology::uniform(25500, 3, 2, dir.path().to_path_buf())).await;
    dc.set_workload("host-1", "vm-1-1", 128, 1_000, false).await.expect("workload");
    let (migration, mut updates) = start_migration(&dc, lpm("vm-1-1", "host-2", limits(0, 20, "")));
    wait_for_precopy(&mut updates).await;
    dc.kill_host("host-1");
    let e = migration.await.unwrap().unwrap_err().to_string();
    assert!(e.contains("the VM was not moved from host host-1"), "{e}");
    let moved = wait_until("host-1's VMs restarted elsewhere", Duration::from_secs(30), || async {
        let running = running_vms(&dc).await;
        let ok =
            ["vm-1-1", "vm-1-2"].iter().all(|vm| running.get(*vm).is_some_and(|h| h.len() == 1 && h[0] != "host-1"));
        ok.then_some(running)
    })
    .await;
    assert!(moved.values().all(|hosts| hosts.len() == 1), "every VM once: {moved:?}");
    // The restart's record follows the hypervisors' truth a moment later.
    wait_until("vm-1-1's restart to finish", Duration::from_secs(10), || async {
        let view = vms(&dc).await.into_iter().find(|v| v.name == "vm-1-1")?;
        (view.vm_status() == pb::VmStatus::NoOperationInProgress).then_some(())
    })
    .await;
    // The half-copied arrival is gone from host-2 (vm-1-1 may run there now, restarted).
    wait_until("no arrival left on host-2", Duration::from_secs(10), || async {
        su_lpars(&dc, "host-2").await.iter().all(|l| l.migration.is_none()).then_some(())
    })
    .await;
}

/// The target's hand-framed lane is plain gRPC: the client tonic generates from the proto (its
/// own codec, its own chunking) drives it, and gets plain gRPC answers and errors back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_grpc_client_speaks_to_the_migration_lane() {
    use pb::migration_frame::Frame;
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("lpm-wire");
    let mut dc = start(Topology::uniform(25600, 2, 0, dir.path().to_path_buf())).await;
    let su2 = dc.topology.su_endpoint("host-2").unwrap();
    // The lane takes only a migration the controller set up: from host-1's unit (its
    // certificate), under a token a live migration's lock holds.
    let controller = vmrm::hsdb::RemoteHsdb::new(
        dc.topology.controller_endpoints(),
        common::node_pool(&dc, Duration::from_secs(2)),
        Duration::from_secs(5),
    );
    use vmrm::hsdb::HsdbAccess;
    let how = vmrm::hsdb::locks::Acquire::WhenFree;
    let fence = controller.lock_vm("vm-wire", vmrm::domain::VmStatus::LpmInProgress, 1, how).await.expect("a lock");
    let pool = vmrm::transport::ChannelPool::new(Duration::from_secs(2), dc.security_of("host-1-su").unwrap());
    let lane = || async {
        let channel = pool.get(&su2).unwrap();
        pb::migration_lane_client::MigrationLaneClient::new(channel)
    };
    let frame = |f: Frame| pb::MigrationFrame { frame: Some(f) };
    let definition = pb::LparDefinition {
        name: "vm-wire".into(),
        uuid: vmrm::domain::identity::uuid_for("vm", "vm-wire"),
        cpu: 1,
        memory_mb: 4,
        disk: vmrm::domain::identity::disk_for_vm("vm-wire"),
        permanent_index: None,
        fence: 0,
        isolated: false,
        identities: Vec::new(),
    };
    let setup = pb::MigrationSetup {
        definition: Some(definition),
        source_host: "host-1".into(),
        fence,
        memory_bytes: 4 << 20,
        lpar_id: 9,
    };
    // Anyone else, or another token, is turned away before anything is reserved.
    for (who, setup) in [
        (dc.security_of("host-2-su").unwrap(), setup.clone()),
        (dc.security_of("host-1-su").unwrap(), pb::MigrationSetup { fence: fence + 1, ..setup.clone() }),
        (dc.security_of("host-1-su").unwrap(), pb::MigrationSetup { source_host: "host-2".into(), ..setup.clone() }),
    ] {
        let channel = vmrm::transport::ChannelPool::new(Duration::from_secs(2), who).get(&su2).unwrap();
        let frames = futures::stream::iter([frame(Frame::Setup(setup))]);
        let reply = pb::migration_lane_client::MigrationLaneClient::new(channel).migrate_in(frames).await;
        let refused = match reply {
            Ok(acks) => acks.into_inner().message().await.expect_err("a setup from the wrong sender"),
            Err(status) => status,
        };
        assert!(
            matches!(refused.code(), tonic::Code::PermissionDenied | tonic::Code::FailedPrecondition),
            "{refused:?}"
        );
        assert!(!names(&su_lpars(&dc, "host-2").await).contains(&"vm-wire".to_string()), "nothing reserved");
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(frame(Frame::Setup(setup.clone()))).await.unwrap();
    let mut acks = lane().await.migrate_in(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let ack = acks.message().await.unwrap().expect("an answer");
    assert_eq!(ack.stage, "SETUP_DONE", "{ack:?}");
    assert!(names(&su_lpars(&dc, "host-2").await).contains(&"vm-wire".to_string()), "memory and definition reserved");
    let page = vmrm::sim::guest_memory::PAGE_SIZE;
    let pages = pb::MigrationPages { indexes: vec![0, 3], pages: vec![vec![1u8; page].into(), vec![2u8; page].into()] };
    tx.send(frame(Frame::Pages(pages))).await.unwrap();
    tx.send(frame(Frame::RoundEnd(1))).await.unwrap();
    let ack = acks.message().await.unwrap().expect("an answer");
    assert_eq!((ack.stage.as_str(), ack.received_bytes), ("ROUND_DONE", 2 * page as u64), "{ack:?}");
    // A page that does not fit the guest: a clear error, and nothing is left on the target.
    let outside = pb::MigrationPages { indexes: vec![4], pages: vec![vec![3u8; page].into()] };
    tx.send(frame(Frame::Pages(outside))).await.unwrap();
    let refused = acks.message().await.expect_err("a page outside the guest is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("does not fit a guest"), "{refused:?}");
    wait_until("the arrival dropped", Duration::from_secs(5), || async {
        (!names(&su_lpars(&dc, "host-2").await).contains(&"vm-wire".to_string())).then_some(())
    })
    .await;

    // A stream that does not start with its setup.
    let out_of_order = futures::stream::iter([frame(Frame::RoundEnd(1))]);
    let mut acks = lane().await.migrate_in(out_of_order).await.unwrap().into_inner();
    let refused = acks.message().await.expect_err("a round before the setup is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("starts with its setup"), "{refused:?}");
    dc.stop();
}
