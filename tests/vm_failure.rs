//! The FDE's VM rule and host monitor restarts, end to end on real processes: a VM whose OS
//! hangs is relocated alone after its VMFDT; a VM whose agent died but which still answers
//! ping stays where it is; a restarted host monitor is recognised by its new incarnation and
//! moves nothing.
mod common;

use common::*;
use std::time::{Duration, Instant};
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::profile::{ProfileName, Timing};

/// VMFDT of the fast profile: host detection time + k × VMthreshold (k = 2 for normal, 3 for slow).
fn vmfdt(k: u32) -> Duration {
    let t = Timing::of(ProfileName::Fast);
    t.host_failure_detection_time + k * t.vm_threshold
}

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

async fn hm_incarnation(dc: &Datacenter, vios: &str) -> String {
    let vioses = dc.admin().unwrap().query_vios(pb::QueryRequest::default()).await.unwrap().vioses;
    vioses.into_iter().find(|v| v.name == vios).map(|v| v.hm_incarnation).unwrap_or_default()
}

async fn monitor_state(dc: &Datacenter, vm: &str) -> pb::VmView {
    vms(dc).await.into_iter().find(|v| v.name == vm).expect("the VM is listed")
}

fn untouched(vms: &[pb::VmView], except: &str) {
    for v in vms.iter().filter(|v| v.name != except) {
        assert_eq!(v.epoch, 0, "{} was touched by a recovery: {v:?}", v.name);
        assert_eq!(v.lpar_state(), pb::LparState::Running, "{v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_vm_alone_is_relocated_after_its_vmfdt() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("vm-hang");
    let mut dc = start(Topology::uniform(27000, 3, 2, dir.path().to_path_buf())).await;
    // The VM's own setting reaches the FDE: slow → VMFDT = host time + 3 × VMthreshold.
    let slow = modify("vm", "vm-1-1", &[("vm_failure_detection_speed", "slow")]);
    dc.admin().unwrap().modify(slow).await.expect("speed set");

    let hung_at = Instant::now();
    let lpar = dc.inject_fault("host-1", "vm-1-1", "hang-os").await.expect("fault injected");
    assert_eq!(lpar.state(), pb::LparState::Running, "a hung OS still shows Running on the HMC");

    wait_until("VM_FAILURE_DETECTED for vm-1-1", Duration::from_secs(30), || async {
        events(&dc).await.into_iter().find(|e| e.name == "VM_FAILURE_DETECTED" && e.subject == "vm-1-1")
    })
    .await;
    let detected_after = hung_at.elapsed();
    assert!(detected_after >= vmfdt(3), "declared after {detected_after:?}, before VMFDT {:?}", vmfdt(3));

    let moved = wait_until("vm-1-1 running on another host", Duration::from_secs(20), || async {
        vms(&dc)
            .await
            .into_iter()
            .find(|v| v.name == "vm-1-1" && v.host != "host-1" && v.lpar_state() == pb::LparState::Running)
    })
    .await;
    assert_eq!(moved.epoch, 1, "{moved:?}");
    let all = vms(&dc).await;
    untouched(&all, "vm-1-1");
    assert!(all.iter().any(|v| v.name == "vm-1-2" && v.host == "host-1"), "its neighbour stays: {all:?}");
    let events = events(&dc).await;
    assert!(!events.iter().any(|e| e.name == "HOST_FAILURE_DETECTED"), "{events:#?}");
    assert_eq!(events.iter().filter(|e| e.name == "VM_FAILURE_DETECTED").count(), 1, "{events:#?}");

    // The VM's own events, a page at a time, newest last.
    let mut admin = dc.admin().unwrap();
    let of_vm = |before| pb::EventQuery { name: "vm-1-1".into(), before, limit: Some(1), ..Default::default() };
    let newest = admin.query_event(of_vm(None)).await.unwrap();
    let all_of_vm: Vec<u64> = events.iter().filter(|e| e.subject == "vm-1-1").map(|e| e.sequence).collect();
    assert!(all_of_vm.len() >= 2, "{events:#?}");
    assert_eq!(newest.events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [*all_of_vm.last().unwrap()]);
    assert_eq!(newest.older_before, Some(*all_of_vm.last().unwrap()));
    let older = admin.query_event(of_vm(newest.older_before)).await.unwrap();
    assert_eq!(older.events[0].sequence, all_of_vm[all_of_vm.len() - 2]);
    let by_name = pb::EventQuery { name: "VM_FAILURE_DETECTED".into(), ..Default::default() };
    let detected = admin.query_event(by_name).await.unwrap();
    assert_eq!(detected.events.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(), ["vm-1-1"]);
    assert_eq!(detected.older_before, None);
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_whose_agent_died_but_answers_ping_stays() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("vm-agent");
    let mut dc = start(Topology::uniform(27100, 2, 2, dir.path().to_path_buf())).await;

    dc.inject_fault("host-1", "vm-1-1", "kill-agent").await.expect("fault injected");
    let controllers = ["ctl-1", "ctl-2", "ctl-3"];
    wait_until("the FDE finding vm-1-1 pingable", Duration::from_secs(30), || async {
        controllers.iter().any(|c| dc.log_tail(c, 400).contains("no action, pingable")).then_some(())
    })
    .await;
    // Several NeedsAttention replies later it is still not relocated.
    tokio::time::sleep(Duration::from_secs(3)).await;
    untouched(&vms(&dc).await, "");
    let seen = events(&dc).await;
    assert!(!seen.iter().any(|e| e.name == "VM_FAILURE_DETECTED"), "{seen:#?}");

    let view = monitor_state(&dc, "vm-1-1").await;
    assert_eq!(view.ha_monitor_state(), pb::HaMonitorState::Missing, "{view:?}");
    assert!(view.missed_hb_ms >= vmfdt(2).as_millis() as u64, "{view:?}");

    // The agent comes back: heartbeats resume, and nothing was ever moved.
    dc.inject_fault("host-1", "vm-1-1", "start-agent").await.expect("agent restarted");
    wait_until("vm-1-1 STARTED again", Duration::from_secs(10), || async {
        (monitor_state(&dc, "vm-1-1").await.ha_monitor_state() == pb::HaMonitorState::Started).then_some(())
    })
    .await;
    untouched(&vms(&dc).await, "");

    // A clean agent stop (SHDN) suspends monitoring: no heartbeats, and still no relocation.
    dc.inject_fault("host-1", "vm-1-1", "stop-agent").await.expect("agent stopped");
    wait_until("vm-1-1 SUSPENDED", Duration::from_secs(10), || async {
        (monitor_state(&dc, "vm-1-1").await.ha_monitor_state() == pb::HaMonitorState::Suspended).then_some(())
    })
    .await;
    tokio::time::sleep(vmfdt(2) + Duration::from_secs(1)).await;
    assert_eq!(monitor_state(&dc, "vm-1-1").await.ha_monitor_state(), pb::HaMonitorState::Suspended);
    untouched(&vms(&dc).await, "");
    let events = events(&dc).await;
    assert!(!events.iter().any(|e| e.name == "VM_FAILURE_DETECTED"), "{events:#?}");
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_monitor_is_a_new_incarnation_and_moves_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("hm-restart");
    let mut dc = start(Topology::uniform(27200, 2, 2, dir.path().to_path_buf())).await;
    let before = wait_until("host-1-vios-a's HM incarnation", Duration::from_secs(10), || async {
        Some(hm_incarnation(&dc, "host-1-vios-a").await).filter(|i| !i.is_empty())
    })
    .await;
    // The FDE starts right after discovery; let it see the first incarnation.
    tokio::time::sleep(Duration::from_secs(1)).await;

    dc.restart("host-1-vios-a").await.expect("VIOS restarts");

    let event = wait_until("VIOS_HM_RESP_DETECTED for host-1-vios-a", Duration::from_secs(20), || async {
        events(&dc).await.into_iter().find(|e| e.name == "VIOS_HM_RESP_DETECTED" && e.subject == "host-1-vios-a")
    })
    .await;
    assert!(event.message.contains("restarted"), "{event:?}");
    let after = hm_incarnation(&dc, "host-1-vios-a").await;
    assert!(!after.is_empty() && after != before, "incarnation {before} → {after}");
    assert!(event.message.contains(&after), "{event:?}");
    // Well past VMFDT: the other host monitor kept receiving every VM's heartbeats.
    tokio::time::sleep(vmfdt(2) + Duration::from_secs(1)).await;
    untouched(&vms(&dc).await, "");
    let events = events(&dc).await;
    assert!(!events.iter().any(|e| e.name.ends_with("FAILURE_DETECTED")), "{events:#?}");
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_relocation_is_tried_again_until_the_vm_runs() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("vm-retry");
    let mut dc = start(Topology::uniform(27300, 3, 1, dir.path().to_path_buf())).await;
    // Wherever the mapper places it first, the activation fails there; the source copy has been
    // shut down by then, so the VM runs nowhere until the next attempt.
    for host in ["host-2", "host-3"] {
        dc.inject_fault(host, "", "fail-next-activate").await.expect("unit fault injected");
    }
    dc.inject_fault("host-1", "vm-1-1", "hang-os").await.expect("fault injected");

    let failed = wait_until("RESTART_FAILED for vm-1-1", Duration::from_secs(30), || async {
        events(&dc).await.into_iter().find(|e| e.name == "RESTART_FAILED" && e.subject == "vm-1-1")
    })
    .await;
    assert!(failed.message.contains("refused to start partition vm-1-1"), "{failed:?}");
    let moved = wait_until("vm-1-1 running on another host", Duration::from_secs(20), || async {
        vms(&dc)
            .await
            .into_iter()
            .find(|v| v.name == "vm-1-1" && v.host != "host-1" && v.lpar_state() == pb::LparState::Running)
    })
    .await;
    assert_eq!(moved.epoch, 2, "the second attempt moved it: {moved:?}");
    assert_eq!(moved.state(), pb::VmState::ReadyToMove, "{moved:?}");
    let events = events(&dc).await;
    assert_eq!(events.iter().filter(|e| e.name == "VM_FAILURE_DETECTED").count(), 1, "{events:#?}");
    assert_eq!(events.iter().filter(|e| e.name == "RESTART_FAILED").count(), 1, "{events:#?}");
    untouched(&vms(&dc).await, "vm-1-1");
    dc.stop();
}
