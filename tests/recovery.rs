//! Host failure, end to end, on real processes: losing a whole server (its SU and both VIOS
//! processes) gets every managed VM of that host running on the other hosts, and the SAN's own
//! record shows the old owner fenced off before the VM started anywhere else.
mod common;

use common::*;
use std::time::Duration;
use vmrm::domain::identity::{disk_for_vm, san_key_for_host};
use vmrm::hsdb::locks::VmLock;
use vmrm::hsdb::{HsdbAccess, RemoteHsdb};
use vmrm::launcher::Topology;
use vmrm::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_whole_host_restarts_its_vms_elsewhere_fenced_first() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("host-failure");
    let mut dc = start(Topology::uniform(21000, 3, 2, dir.path().to_path_buf())).await;
    let victims = ["vm-1-1", "vm-1-2"];
    let active = active_controller(&dc).await;
    let before = scrape(&dc, &active).await;
    let detected = "vmrm_events_total{event=\"HOST_FAILURE_DETECTED\"}";
    let restarted = "vmrm_events_total{event=\"RESTART_COMPLETED\"}";
    assert_eq!(sample(&before, detected), None, "{before}");
    assert_eq!(sample(&before, "vmrm_recovery_seconds_count"), Some(0.0), "{before}");
    assert!(sample(&before, "vmrm_hsdb_term").is_some_and(|t| t >= 1.0), "{before}");
    assert!(before.contains(&format!("vmrm_node_info{{node=\"{active}\",roles=\"controller,hsdb\"}} 1")), "{before}");

    dc.kill_host("host-1");

    let moved = wait_until("host-1's VMs running on other hosts", Duration::from_secs(30), || async {
        let vms = vms(&dc).await;
        let moved: Vec<_> = vms
            .into_iter()
            .filter(|v| {
                victims.contains(&v.name.as_str()) && v.host != "host-1" && v.lpar_state() == pb::LparState::Running
            })
            .collect();
        (moved.len() == victims.len()).then_some(moved)
    })
    .await;

    let hsdb = RemoteHsdb::new(
        dc.topology.controller_endpoints(),
        common::node_pool(&dc, Duration::from_secs(1)),
        Duration::from_secs(2),
    );
    let old_key = san_key_for_host("host-1");
    for vm in moved {
        let new_key = san_key_for_host(&vm.host);
        // Running is reported as soon as the LPAR starts; its first disk write follows shortly.
        let record =
            wait_until(&format!("{}'s first write from {}", vm.name, vm.host), Duration::from_secs(10), || async {
                let record = san_record(&dc, &disk_for_vm(&vm.name)).await;
                record.iter().any(|op| op.kind == "WRITE" && op.key == new_key).then_some(record)
            })
            .await;
        let preempt = record
            .iter()
            .position(|op| op.kind == "PREEMPT" && op.key == new_key && op.previous_key == old_key)
            .unwrap_or_else(|| panic!("{}: no preemption of host-1's key in {record:#?}", vm.name));
        let first_new_write =
            record.iter().position(|op| op.kind == "WRITE" && op.key == new_key).expect("waited for it above");
        assert!(preempt < first_new_write, "{}: restarted before the fence: {record:#?}", vm.name);
        let old_writes_after = record[preempt..].iter().filter(|op| op.kind == "WRITE" && op.key == old_key).count();
        assert_eq!(old_writes_after, 0, "{}: the old owner wrote after the fence", vm.name);
        // The restart ran under the VM's lock (epoch 1, released right after the VM row was
        // updated); the VM row shows that epoch.
        let lock = wait_until(&format!("{}'s lock released", vm.name), Duration::from_secs(10), || async {
            hsdb.get::<VmLock>(&vm.name).await.ok().flatten().map(|(l, _)| l).filter(|l| !l.is_held())
        })
        .await;
        assert_eq!(lock.epoch, 1, "{}: {lock:?}", vm.name);
        assert_eq!(vm.epoch, lock.epoch, "{}", vm.name);
        assert_eq!(vm.vm_status(), pb::VmStatus::NoOperationInProgress, "{}", vm.name);
    }
    // The metrics moved with the recovery: the detection, each restart, the task's duration.
    let after = wait_until("the recovery in the metrics", Duration::from_secs(10), || async {
        let after = scrape(&dc, &active).await;
        (sample(&after, "vmrm_recovery_seconds_count") == Some(1.0)).then_some(after)
    })
    .await;
    assert_eq!(sample(&after, detected), Some(1.0), "{after}");
    assert_eq!(sample(&after, restarted), Some(victims.len() as f64), "{after}");
    assert!(sample(&after, "vmrm_recovery_seconds_sum").is_some_and(|s| s > 0.0 && s < 30.0), "{after}");
    // Declared after at least the detection time of silence (the fast profile's), not much more.
    let fdt = vmrm::profile::Timing::of(vmrm::profile::ProfileName::Fast).host_failure_detection_time.as_secs_f64();
    let silent = sample(&after, "vmrm_host_detection_seconds_sum").expect("a detection");
    assert!(silent >= fdt && silent < fdt + 5.0, "silent {silent} s, detection time {fdt} s");
    let others = vms(&dc).await;
    assert!(
        others.iter().filter(|v| !victims.contains(&v.name.as_str())).all(|v| v.lpar_state() == pb::LparState::Running)
    );
    dc.stop();
}

/// One VIOS lost is not a host failure: nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_vios_moves_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("one-vios");
    let mut dc = start(Topology::uniform(22000, 2, 2, dir.path().to_path_buf())).await;
    dc.kill("host-1-vios-a");
    wait_until("a VIOS_NODE_FAILURE event for the lost VIOS", Duration::from_secs(20), || async {
        let events = dc
            .admin()
            .ok()?
            .query_event(vmrm::pb::EventQuery { limit: Some(1000), ..Default::default() })
            .await
            .ok()?
            .events;
        events.iter().any(|e| e.name == "VIOS_NODE_FAILURE" && e.subject == "host-1-vios-a").then_some(())
    })
    .await;
    // Well past the fast profile's host failure detection time.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let vms = vms(&dc).await;
    for v in vms.iter().filter(|v| v.name.starts_with("vm-1-")) {
        assert_eq!(v.host, "host-1", "{} moved after a single VIOS failure", v.name);
        assert_eq!(v.epoch, 0, "{} was touched by a recovery", v.name);
    }
    dc.stop();
}

/// Both VIOSs of a host shut down on purpose through their hypervisor (the seed: a DOWN VIOS
/// whose partition is Not Activated after a shutdown with the CAA reason SHUTDOWN is healthy —
/// no failover for an administrative shutdown): they are reported down, their partitions show
/// Not Activated, and nothing moves. Losing both without a word (the test above) moves the
/// host's VMs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vioses_shut_down_on_purpose_move_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("vios-shutdown");
    let mut dc = start(Topology::uniform(31000, 2, 2, dir.path().to_path_buf())).await;
    let vioses = ["host-1-vios-a", "host-1-vios-b"];
    for vios in vioses {
        let partition = dc.inject_fault("host-1", vios, "shutdown").await.expect("the VIOS shuts down");
        assert_eq!(partition.state(), pb::LparState::NotActivated, "{vios}: {partition:?}");
    }
    let refused = dc.inject_fault("host-1", "host-1-vios-a", "hang-os").await.expect_err("not a VIOS drill");
    assert!(refused.to_string().contains("shutdown"), "{refused}");
    wait_until("VIOS_NODE_FAILURE events for both VIOSs", Duration::from_secs(20), || async {
        let events = events(&dc).await;
        vioses.iter().all(|v| events.iter().any(|e| e.name == "VIOS_NODE_FAILURE" && e.subject == *v)).then_some(())
    })
    .await;
    // Well past the fast profile's host failure detection time.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let events = events(&dc).await;
    assert!(
        !events.iter().any(|e| e.name == "HOST_FAILURE_DETECTED"),
        "a deliberate shutdown was taken for a failure: {events:#?}"
    );
    for v in vms(&dc).await.iter().filter(|v| v.name.starts_with("vm-1-")) {
        assert_eq!(v.host, "host-1", "{} moved after its VIOSs were shut down on purpose", v.name);
        assert_eq!(v.epoch, 0, "{} was touched by a recovery", v.name);
    }
    dc.stop();
}

/// The SAN keeps its reservations on its disk: restarted, it goes on accepting every VM's
/// writes from the host that runs it (before, every VM crashed on its first write after a SAN
/// restart), and a preempt with a fencing token nobody issued is refused and moves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_san_restart_forgets_no_reservation() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("san-restart");
    let mut dc = start(Topology::uniform(31100, 2, 2, dir.path().to_path_buf())).await;
    let before = running_vms(&dc).await;
    assert_eq!(before.len(), 4, "{before:?}");

    dc.kill("san");
    dc.restart("san").await.expect("the SAN restarts");
    let restarted_at = vmrm::now_ms();
    for (vm, hosts) in &before {
        let [host] = &hosts[..] else { panic!("{vm} runs on {hosts:?}") };
        let key = san_key_for_host(host);
        wait_until(&format!("{vm}'s writes from {host} after the restart"), Duration::from_secs(10), || async {
            let record = san_record(&dc, &disk_for_vm(vm)).await;
            record.iter().any(|op| op.kind == "WRITE" && op.key == key && op.last_at_ms > restarted_at).then_some(())
        })
        .await;
    }
    for vm in before.keys() {
        let record = san_record(&dc, &disk_for_vm(vm)).await;
        assert!(!record.iter().any(|op| op.kind == "WRITE_REJECTED"), "{vm}: a write was rejected: {record:#?}");
        assert_eq!(record.iter().filter(|op| op.kind == "RESERVE").count(), 1, "{vm}: reserved once: {record:#?}");
    }

    // The review's theft: the largest token, from nowhere.
    let channel = common::node_pool(&dc, Duration::from_secs(1)).get(&dc.topology.san_endpoint()).unwrap();
    let theft = pb::PreemptRequest { disk: disk_for_vm("vm-1-1"), key: 1, owner: "thief".into(), fence: u64::MAX };
    let err = pb::san_client::SanClient::new(channel).preempt(theft).await.expect_err("an unissued token");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("no operation holds the VM's lock"), "{}", err.message());
    assert_eq!(running_vms(&dc).await, before, "nothing moved, nothing crashed");
    let record = san_record(&dc, &disk_for_vm("vm-1-1")).await;
    assert!(!record.iter().any(|op| op.key == 1), "the refused preempt left no trace: {record:#?}");
    dc.stop();
}
