//! Recovery policies and exactly-once recovery, end to end on real processes: a host failure is
//! recovered as the policies say (priority order, collocation, anticollocation, blacklist),
//! advisory mode moves nothing until the admin restarts, and a recovery survives losing or
//! pausing the active controller in the middle — every VM ends running exactly once.
mod common;

use common::*;
use std::time::Duration;
use vmrm::config::VmConfig;
use vmrm::domain::identity::disk_for_vm;
use vmrm::launcher::{HostSpec, Topology};
use vmrm::pb;

fn affinity(kind: pb::AffinityKind, name: &str, vms: &[&str]) -> pb::AffinityRequest {
    pb::AffinityRequest {
        action: pb::ChangeAction::Add as i32,
        kind: kind as i32,
        name: name.into(),
        vms: vms.iter().map(|s| s.to_string()).collect(),
        remove_vms: false,
    }
}

/// The sequence number of the first event `name` about `subject`.
fn first(events: &[pb::EventView], name: &str, subject: &str) -> Option<u64> {
    events.iter().find(|e| e.name == name && e.subject == subject).map(|e| e.sequence)
}

/// Waits until every VM of `names` runs exactly once, on a host other than `dead`.
async fn all_running_elsewhere(dc: &vmrm::launcher::Datacenter, names: &[String], dead: &str) -> Vec<(String, String)> {
    wait_until("every VM running once on another host", Duration::from_secs(60), || async {
        let running = running_vms(dc).await;
        let placed: Vec<(String, String)> = names
            .iter()
            .filter_map(|n| match running.get(n).map(Vec::as_slice) {
                Some([host]) if host != dead => Some((n.clone(), host.clone())),
                _ => None,
            })
            .collect();
        (placed.len() == names.len()).then_some(placed)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_failure_is_recovered_as_the_policies_say() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("policies");
    let mut topology = Topology::uniform(29000, 4, 1, dir.path().to_path_buf());
    topology.hosts[0].vms = (1..=6)
        .map(|j| VmConfig { name: format!("vm-1-{j}"), cpu: 2, memory_mb: 4096, permanent_index: None })
        .collect();
    let mut dc = start(topology).await;
    let mut admin = dc.admin().unwrap();
    admin.modify(modify("vm", "vm-1-1", &[("priority", "high")])).await.unwrap();
    admin.modify(modify("vm", "vm-1-6", &[("priority", "low"), ("blacklist_hosts", "host-2,host-3")])).await.unwrap();
    let lines =
        admin.change_affinity(affinity(pb::AffinityKind::Collocation, "pair", &["vm-1-2", "vm-1-3"])).await.unwrap();
    assert_eq!(lines.printed(), ["Collocation group pair was created"]);
    assert_eq!((lines.steps[0].code(), lines.steps[0].subject.as_str()), (pb::StepCode::AffinityGroupCreated, "pair"));
    admin.change_affinity(affinity(pb::AffinityKind::Anticollocation, "apart", &["vm-1-4", "vm-1-5"])).await.unwrap();

    dc.kill_host("host-1");
    let names: Vec<String> = (1..=6).map(|j| format!("vm-1-{j}")).collect();
    let placed: std::collections::BTreeMap<String, String> =
        all_running_elsewhere(&dc, &names, "host-1").await.into_iter().collect();

    assert_eq!(placed["vm-1-2"], placed["vm-1-3"], "collocated VMs apart: {placed:?}");
    assert_ne!(placed["vm-1-4"], placed["vm-1-5"], "anticollocated VMs together: {placed:?}");
    assert_eq!(placed["vm-1-6"], "host-4", "a blacklisted host was used: {placed:?}");
    let events = wait_until("the recovery summary", Duration::from_secs(10), || async {
        let events = events(&dc).await;
        events.iter().any(|e| e.name == "RECOVERY_COMPLETED" && e.subject == "host-1").then_some(events)
    })
    .await;
    let summary = events.iter().find(|e| e.name == "RECOVERY_COMPLETED").unwrap();
    assert_eq!(summary.message, "6 out of 6 VMs have been successfully restarted");
    let high_done = first(&events, "RESTART_COMPLETED", "vm-1-1").expect("vm-1-1 restarted");
    for other in &names[1..] {
        let started = first(&events, "RESTART_STARTED", other).expect("restart started");
        assert!(high_done < started, "{other} started before the High priority VM completed: {events:#?}");
    }
    let low_started = first(&events, "RESTART_STARTED", "vm-1-6").unwrap();
    for medium in &names[1..5] {
        assert!(first(&events, "RESTART_COMPLETED", medium).unwrap() < low_started, "Low started before {medium}");
    }
    for name in &names {
        assert_single_writer(name, &san_record(&dc, &disk_for_vm(name)).await);
    }
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_mode_moves_nothing_until_the_admin_restarts() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("advisory");
    let mut dc = start(Topology::uniform(29100, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    let lines =
        admin.modify(modify("host_group", "HG1", &[("restart_policy", "advisory_mode")])).await.unwrap().printed();
    assert_eq!(lines, ["For Host_group HG1 attribute(s) 'restart_policy' was successfully modified."]);

    dc.kill_host("host-1");
    wait_until("advice for both VMs of host-1", Duration::from_secs(30), || async {
        let events = events(&dc).await;
        ["vm-1-1", "vm-1-2"].iter().all(|vm| first(&events, "RESTART_ADVISED", vm).is_some()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = running_vms(&dc).await;
    assert!(
        !running.contains_key("vm-1-1") && !running.contains_key("vm-1-2"),
        "advisory mode moved a VM: {running:?}"
    );
    let advice = events(&dc).await.into_iter().find(|e| e.name == "RESTART_ADVISED").unwrap();
    assert!(advice.message.contains("ksysmgr restart vm"), "{}", advice.message);

    let lines =
        admin.restart_vm(pb::RestartVmRequest { vm: "vm-1-1".into(), host: String::new() }).await.unwrap().printed();
    assert_eq!(lines.last().unwrap(), "1 out of 1 VMs have been successfully restarted", "{lines:#?}");
    let running = running_vms(&dc).await;
    assert_eq!(running.get("vm-1-1").map(Vec::len), Some(1), "{running:?}");
    assert!(!running.contains_key("vm-1-2"), "the other VM moved without being asked: {running:?}");
    dc.stop();
}

/// A host with 12 VMs fails and the recovery is under way: the event log shows the first start.
async fn twelve_vm_recovery_under_way(
    base_port: u16,
    dir: &std::path::Path,
) -> (vmrm::launcher::Datacenter, Vec<String>) {
    let mut topology = Topology::uniform(base_port, 3, 0, dir.to_path_buf());
    let names: Vec<String> = (1..=12).map(|j| format!("vm-1-{j}")).collect();
    topology.hosts[0] = HostSpec {
        name: "host-1".into(),
        cpu: 16,
        memory_mb: 32 * 1024,
        vms: names
            .iter()
            .map(|n| VmConfig { name: n.clone(), cpu: 1, memory_mb: 2048, permanent_index: None })
            .collect(),
        max_definitions: 100,
        site: 0,
    };
    let mut dc = start(topology).await;
    dc.kill_host("host-1");
    wait_until("the first restart of host-1's VMs", Duration::from_secs(30), || async {
        events(&dc).await.iter().any(|e| e.name == "RESTART_STARTED").then_some(())
    })
    .await;
    (dc, names)
}

/// Every VM runs exactly once, the task was resumed and finished, and the SAN shows one writer
/// after another for every disk.
async fn assert_recovered_exactly_once(dc: &vmrm::launcher::Datacenter, names: &[String], controllers: Vec<String>) {
    all_running_elsewhere(dc, names, "host-1").await;
    let events = wait_until("the resumed task's summary", Duration::from_secs(30), || async {
        let events = events_at(dc, controllers.clone()).await;
        events.iter().any(|e| e.name == "RECOVERY_COMPLETED").then_some(events)
    })
    .await;
    assert!(events.iter().any(|e| e.name == "RECOVERY_RESUMED"), "no controller resumed the task: {events:#?}");
    let summary = events.iter().find(|e| e.name == "RECOVERY_COMPLETED").unwrap();
    assert_eq!(summary.message, "12 out of 12 VMs have been successfully restarted");
    for name in names {
        let record = wait_until(&format!("{name} writing on its new host"), Duration::from_secs(10), || async {
            let record = san_record(dc, &disk_for_vm(name)).await;
            let owner = record.iter().rev().find(|op| op.kind == "PREEMPT").map(|op| op.key);
            record.iter().any(|op| op.kind == "WRITE" && Some(op.key) == owner).then_some(record)
        })
        .await;
        assert_single_writer(name, &record);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_controller_mid_recovery_restarts_every_vm_exactly_once() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("kill-mid-recovery");
    let (mut dc, names) = twelve_vm_recovery_under_way(29200, dir.path()).await;
    let active = format!("ctl-{}", members::dbn_status(&dc).await.node_id);
    dc.kill(&active);
    assert_recovered_exactly_once(&dc, &names, dc.topology.controller_endpoints()).await;
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_controller_that_wakes_up_after_a_takeover_changes_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("pause-mid-recovery");
    let (mut dc, names) = twelve_vm_recovery_under_way(29300, dir.path()).await;
    let paused = members::dbn_status(&dc).await.node_id;
    dc.pause(&format!("ctl-{paused}"));
    let mut others = dc.topology.controller_endpoints();
    others.remove(paused as usize - 1);
    assert_recovered_exactly_once(&dc, &names, others).await;
    let placed = running_vms(&dc).await;
    let preempts = |records: &[Vec<pb::SanOperation>]| -> usize {
        records.iter().flatten().filter(|op| op.kind == "PREEMPT").count()
    };
    let mut before = Vec::new();
    for name in &names {
        before.push(san_record(&dc, &disk_for_vm(name)).await);
    }

    dc.resume(&format!("ctl-{paused}"));
    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(running_vms(&dc).await, placed, "the woken controller moved a VM");
    let mut after = Vec::new();
    for name in &names {
        let record = san_record(&dc, &disk_for_vm(name)).await;
        assert_single_writer(name, &record);
        after.push(record);
    }
    assert_eq!(preempts(&after), preempts(&before), "the woken controller preempted a disk");
    assert_ne!(members::dbn_status(&dc).await.node_id, 0);
    dc.stop();
}

/// The definitions one host's hypervisor holds: VM → (state, CPU, memory).
async fn lpars_on(
    dc: &vmrm::launcher::Datacenter,
    host: &str,
) -> std::collections::BTreeMap<String, (pb::LparState, u32, u64)> {
    let endpoint = dc.topology.su_endpoint(host).expect("a host of the topology");
    let inv = vmrm::launcher::su_inventory(&endpoint, Duration::from_secs(2), dc.security()).await;
    let lpars = inv.map(|i| i.lpars).unwrap_or_default();
    lpars
        .into_iter()
        .filter_map(|l| {
            let state = l.state();
            l.definition.map(|d| (d.name, (state, d.cpu, d.memory_mb)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flexible_capacity_away_stale_definitions_cleaned_on_return_and_full_size_back_home() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("restore");
    let mut dc = start(Topology::uniform(29400, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    let capacity = [("memory_capacity", "50"), ("cpu_capacity", "50"), ("priority", "medium")];
    let lines = admin.modify(modify("host_group", "HG1", &capacity)).await.unwrap().printed();
    assert_eq!(
        lines,
        ["For Host_group HG1 attribute(s) 'memory_capacity', 'cpu_capacity', 'priority' was successfully modified."]
    );

    dc.kill_host("host-1");
    let names = ["vm-1-1".to_string(), "vm-1-2".to_string()];
    let placed = all_running_elsewhere(&dc, &names, "host-1").await;
    for (vm, host) in &placed {
        let (_, cpu, memory_mb) = lpars_on(&dc, host).await[vm];
        assert_eq!((cpu, memory_mb), (1, 2048), "{vm} on {host}: flexible capacity not applied away from home");
    }

    // The task ends after its cleanup attempts on the dead host; only then does host-1 return.
    wait_until("the recovery summary", Duration::from_secs(30), || async {
        events(&dc).await.iter().any(|e| e.name == "RECOVERY_COMPLETED").then_some(())
    })
    .await;
    for node in Topology::host_nodes("host-1") {
        dc.restart(&node).await.expect("host-1 back");
    }
    // Back from power-on, host-1 finds the disks reserved elsewhere; once its VIOSs are up the
    // FDE removes the stale definitions by itself (seed: CLEAN_LPARS).
    // (Its configuration defines both VMs, so they are there after every start.)
    let su = dc.topology.su_endpoint("host-1").expect("host-1's SU");
    wait_until("host-1's stale definitions removed", Duration::from_secs(20), || async {
        let inv = vmrm::launcher::su_inventory(&su, Duration::from_secs(2), dc.security()).await.ok()?;
        let left: Vec<_> = inv.lpars.iter().filter_map(|l| l.definition.as_ref().map(|d| d.name.clone())).collect();
        names.iter().all(|n| !left.contains(n)).then_some(())
    })
    .await;
    assert!(!running_vms(&dc).await.values().any(|hosts| hosts.len() > 1), "a VM runs twice");
    let lines = admin.cleanup(pb::CleanupRequest { host_group: "HG1".into(), dr_test: false }).await.unwrap().printed();
    assert_eq!(lines.last().map(String::as_str), Some("Cleanup has finished for HG1: 0 stale definition(s) removed"));

    let lines = wait_until("host-1 able to take its VMs back", Duration::from_secs(30), || async {
        let mut admin = dc.admin().unwrap();
        admin
            .restore(pb::RestoreRequest { scope: pb::Scope::Host as i32, name: "host-1".into() })
            .await
            .ok()
            .map(|r| r.printed())
    })
    .await;
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("1 out of 1 VMs have been successfully restarted")).count(),
        2,
        "{lines:#?}"
    );
    let home = lpars_on(&dc, "host-1").await;
    for n in &names {
        assert_eq!(home[n], (pb::LparState::Running, 2, 4096), "{n} is not back home at full size: {home:?}");
    }
    assert_eq!(running_vms(&dc).await.get("vm-1-1").map(Vec::len), Some(1));
    dc.stop();
}
