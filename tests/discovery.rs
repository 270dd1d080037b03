//! Scheduled discovery on real processes: with a Quick discovery every few seconds, a VM created
//! outside vmrm (activated through its host's hypervisor, as an HMC would) is found and managed,
//! and a VM deleted outside vmrm is taken out — each with its event — and the schedule's
//! settings are refused when out of range. (When a Deep discovery falls due is unit-tested: the
//! daily slot is a wall-clock time.)
mod common;

use common::*;
use std::time::Duration;
use vmrm::domain::identity::{disk_for_vm, uuid_for};
use vmrm::launcher::Topology;
use vmrm::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_discovery_picks_up_vms_created_and_deleted_outside_vmrm() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("auto-discovery");
    let dc = start(Topology::uniform(16000, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    let system = admin.query_system(pb::QueryRequest::default()).await.unwrap();
    assert_eq!((system.auto_discovery_time.as_str(), system.quick_discovery_interval_ms), ("00:00", 3_600_000));
    for (key, value, why) in
        [("auto_discovery_time", "25:00", "not a time of day"), ("quick_discovery_interval", "2000", "0-1440")]
    {
        let words = vec!["modify".to_string(), "system".into(), format!("{key}={value}")];
        let refused = match vmrm::cli::parse(&words) {
            Ok(vmrm::cli::KsysCommand::Modify(req)) => admin.modify(req).await.unwrap_err().to_string(),
            Err(e) => e,
            other => panic!("{other:?}"),
        };
        assert!(refused.contains(why), "{key}={value}: {refused}");
    }

    // Outside vmrm: a new partition started on host-2, and vm-3-2 shut down and removed.
    let hmc = node_pool(&dc, Duration::from_secs(1));
    let mut host2 =
        pb::server_unit_client::ServerUnitClient::new(hmc.get(&dc.topology.su_endpoint("host-2").unwrap()).unwrap());
    let new = pb::LparDefinition {
        name: "vm-new".into(),
        uuid: uuid_for("vm", "vm-new"),
        cpu: 1,
        memory_mb: 1024,
        disk: disk_for_vm("vm-new"),
        permanent_index: None,
        fence: 0,
        isolated: false,
        identities: Vec::new(),
    };
    host2.activate(new).await.expect("a partition started outside vmrm");
    let mut host3 =
        pb::server_unit_client::ServerUnitClient::new(hmc.get(&dc.topology.su_endpoint("host-3").unwrap()).unwrap());
    let gone = pb::LparRef { name: "vm-3-2".into(), immediate: true, fence: 0 };
    host3.shutdown(gone.clone()).await.expect("vm-3-2 shut down outside vmrm");
    host3.remove(gone).await.expect("vm-3-2 removed outside vmrm");
    assert!(vms(&dc).await.iter().all(|v| v.name != "vm-new"), "nothing notices before the discovery");

    admin.modify(modify("system", "", &[("quick_discovery_interval", "0.05")])).await.unwrap();
    let events = wait_until("the quick discovery's events", Duration::from_secs(30), || async {
        let events = events(&dc).await;
        let has = |name: &str, subject: &str| events.iter().any(|e| e.name == name && e.subject == subject);
        let quick =
            events.iter().any(|e| e.name == "DISCOVERY_COMPLETED" && e.message.starts_with("Quick discovery: 2 "));
        (has("VM_DISCOVERED", "vm-new") && has("VM_REMOVED_OUTSIDE", "vm-3-2") && quick).then_some(events)
    })
    .await;
    let first = |name: &str| events.iter().position(|e| e.name == name).unwrap();
    assert!(first("VM_DISCOVERED") < first("VM_REMOVED_OUTSIDE"), "{events:#?}");
    let vms = vms(&dc).await;
    let found = vms.iter().find(|v| v.name == "vm-new").expect("vm-new is recorded");
    assert_eq!((found.host.as_str(), found.managed), ("host-2", true));
    assert!(vms.iter().all(|v| v.name != "vm-3-2"), "vm-3-2 is no longer recorded");
    // Nothing else changed: the next quick discoveries find nothing more.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = common::events(&dc).await;
    let outside = |e: &&pb::EventView| e.name.starts_with("VM_DISCOVERED") || e.name.ends_with("_OUTSIDE");
    assert_eq!(later.iter().filter(outside).count(), 2, "{later:#?}");
}
