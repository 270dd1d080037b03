//! SU clusters on a datacenter of real processes: two units of one host group form one; its
//! status follows the units' alive messages (NORMAL, ERROR when a unit is gone, INACTIVE when
//! deactivated) with the seed's events; live migration follows the status and stays inside the
//! cluster; a VM definition is recovered from a unit only after its alive messages stopped;
//! bad definitions of a cluster are refused and change nothing.
mod common;

use common::*;
use std::time::Duration;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

/// The change ksysmgr sends for `ACTION su_cluster NAME [hosts=…] [state=active|inactive]`.
fn change(action: pb::ChangeAction, name: &str, hosts: &[&str], state: &str) -> pb::SuClusterChange {
    pb::SuClusterChange {
        action: action as i32,
        name: name.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        active: (!state.is_empty()).then_some(state == "active"),
    }
}

async fn cluster(dc: &Datacenter, name: &str) -> pb::SuClusterView {
    let q = pb::QueryRequest { name: name.into(), ..Default::default() };
    dc.admin().unwrap().query_su_cluster(q).await.expect("the SU cluster").clusters.remove(0)
}

fn lpm(vm: &str, to: &str) -> pb::MigrateRequest {
    pb::MigrateRequest { scope: pb::Scope::Vm as i32, names: vec![vm.into()], to: to.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_su_cluster_follows_its_units_and_recovers_definitions_only_after_the_lease() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("su-cluster");
    let mut dc = start(Topology::uniform(25300, 3, 1, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();

    // Bad definitions: refused with the reason, nothing created.
    let refused = [
        (change(pb::ChangeAction::Add, "SUC", &["host-1"], ""), "exactly two server units"),
        (change(pb::ChangeAction::Add, "SUC", &["host-1", "host-1"], ""), "exactly two server units"),
        (change(pb::ChangeAction::Add, "SUC", &["host-1", "host-2", "host-3"], ""), "exactly two server units"),
        (change(pb::ChangeAction::Add, "SUC", &["host-1", "host-9"], ""), "host host-9 does not exist"),
        (change(pb::ChangeAction::Add, "", &["host-1", "host-2"], ""), "the SU cluster name is required"),
        (change(pb::ChangeAction::Add, "../SUC", &["host-1", "host-2"], ""), "not a valid SU cluster name"),
        (change(pb::ChangeAction::Add, "SUC", &["host-1", "host/2"], ""), "not a valid host name"),
        (change(pb::ChangeAction::Modify, "NOPE", &[], "inactive"), "SU cluster NOPE does not exist"),
    ];
    for (req, why) in refused {
        let e = admin.change_su_cluster(req).await.unwrap_err().to_string();
        assert!(e.contains(why), "`{why}` missing from: {e}");
    }
    assert!(admin.query_su_cluster(pb::QueryRequest::default()).await.unwrap().clusters.is_empty());

    admin.change_su_cluster(change(pb::ChangeAction::Add, "SUC", &["host-1", "host-2"], "")).await.expect("added");
    let e =
        admin.change_su_cluster(change(pb::ChangeAction::Add, "SUC2", &["host-2", "host-3"], "")).await.unwrap_err();
    assert!(e.to_string().contains("already belongs to SU cluster SUC"), "{e}");
    let e = admin.change_su_cluster(change(pb::ChangeAction::Modify, "SUC", &[], "")).await.unwrap_err();
    assert!(e.to_string().contains("modify su_cluster needs active"), "{e}");
    let view = cluster(&dc, "SUC").await;
    assert_eq!((view.status(), view.function.as_str()), (pb::SuClusterStatus::Normal, "Live migration"));
    assert!(
        view.units.iter().all(|u| u.network_heartbeat() == pb::UnitHeartbeat::Normal && u.last_alive_ms > 0),
        "{view:?}"
    );

    // Deactivated: INACTIVE, and no live migration (seed: "no live migration can be processed").
    admin.change_su_cluster(change(pb::ChangeAction::Modify, "SUC", &[], "inactive")).await.unwrap();
    assert_eq!(cluster(&dc, "SUC").await.status(), pb::SuClusterStatus::Inactive);
    let e = admin.migrate_all(lpm("vm-1-1", "host-2")).await.unwrap_err().to_string();
    assert!(e.contains("REASON: SU cluster host-2: INACTIVE"), "{e}");
    admin.change_su_cluster(change(pb::ChangeAction::Modify, "SUC", &[], "active")).await.unwrap();
    // A unit of the cluster migrates to its partner only.
    let e = admin.migrate_all(lpm("vm-1-1", "host-3")).await.unwrap_err().to_string();
    assert!(e.contains("REASON: SU cluster host-3: not in the SU cluster of host-1"), "{e}");
    admin.migrate_all(lpm("vm-1-1", "host-2")).await.expect("within the cluster");
    admin.migrate_all(lpm("vm-1-1", "host-1")).await.expect("and back");

    // While host-1 writes alive messages its definitions stay with it.
    admin.modify(modify("vm", "vm-1-1", &[("ha_monitor", "disable")])).await.unwrap();
    let e =
        admin.recover_vm_definition(pb::RecoverVmDefinitionRequest { vm: "vm-1-1".into(), host: String::new() }).await;
    assert!(e.unwrap_err().to_string().contains("wrote an alive message"), "the lease fences the recovery");
    let e =
        admin.recover_vm_definition(pb::RecoverVmDefinitionRequest { vm: "vm-3-1".into(), host: String::new() }).await;
    assert!(e.unwrap_err().to_string().contains("in no SU cluster"));

    // host-1's hypervisor dies (its VIOSs live on: no host failure): ERROR, with the events.
    dc.kill("host-1-su");
    let view = wait_until("SUC in ERROR", Duration::from_secs(10), || async {
        let view = cluster(&dc, "SUC").await;
        (view.status() == pb::SuClusterStatus::Error).then_some(view)
    })
    .await;
    assert_eq!(view.units[0].network_heartbeat(), pb::UnitHeartbeat::NotAccessible);
    let told = wait_until("the seed's events", Duration::from_secs(5), || async {
        let ev = events(&dc).await;
        let texts: Vec<String> = ev.iter().map(|e| e.message.clone()).collect();
        let state = "Cluster state of 'SUC' changed from 'NORMAL' to 'ERROR'".to_string();
        let unit = "Network heartbeat of unit 'host-1' changed from 'NORMAL' to 'NOT_ACCESSIBLE'".to_string();
        (texts.contains(&state) && texts.contains(&unit)).then_some(texts)
    })
    .await;
    assert!(told.iter().any(|t| t.contains("from 'NORMAL' to 'INACTIVE'")), "the deactivation was told too");
    let e = admin.migrate_all(lpm("vm-2-1", "host-1")).await.unwrap_err().to_string();
    assert!(e.contains("REASON: SU cluster host-1: ERROR"), "{e}");

    // Its lease expired: the definition of vm-1-1 is taken over by host-2, the VM runs there.
    let req = pb::RecoverVmDefinitionRequest { vm: "vm-1-1".into(), host: "host-3".into() };
    let e = admin.recover_vm_definition(req).await.unwrap_err().to_string();
    assert!(e.contains("not in SU cluster SUC"), "{e}");
    let req = pb::RecoverVmDefinitionRequest { vm: "vm-1-1".into(), host: String::new() };
    let lines = admin.recover_vm_definition(req).await.expect("recovered").printed();
    assert!(lines[0].contains("Definition of VM vm-1-1 recovered from host host-1 on host host-2"), "{lines:#?}");
    let running = running_vms(&dc).await;
    assert_eq!(running.get("vm-1-1").map(Vec::as_slice), Some(&["host-2".to_string()][..]), "{running:?}");
    // The fence: from the recovery's preempt on, only host-2 writes (the VM went back and forth
    // before, so earlier writes alternate).
    let record = san_record(&dc, "vm-1-1-rootvg").await;
    let fenced = record.iter().rposition(|op| op.kind == "PREEMPT").expect("the recovery preempted");
    assert_eq!(record[fenced].owner, "host-2");
    assert!(record[fenced..].iter().filter(|op| op.kind == "WRITE").all(|op| op.owner == "host-2"), "{record:#?}");
    assert!(events(&dc).await.iter().any(|e| e.name == "VM_DEFINITION_RECOVERED" && e.subject == "vm-1-1"));

    // host-1 comes back: NORMAL again; its stale copy of vm-1-1 is not started (the disk moved).
    dc.restart("host-1-su").await.expect("host-1's hypervisor back");
    wait_until("SUC NORMAL again", Duration::from_secs(10), || async {
        (cluster(&dc, "SUC").await.status() == pb::SuClusterStatus::Normal).then_some(())
    })
    .await;
    let running = running_vms(&dc).await;
    assert_eq!(running.get("vm-1-1").map(Vec::as_slice), Some(&["host-2".to_string()][..]), "{running:?}");
    admin.change_su_cluster(change(pb::ChangeAction::Remove, "SUC", &[], "")).await.expect("removed");
    assert!(admin.query_su_cluster(pb::QueryRequest::default()).await.unwrap().clusters.is_empty());
}
