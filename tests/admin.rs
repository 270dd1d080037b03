//! The admin API and `ksysmgr` on real processes: controller failover keeps the same endpoints
//! working, and bad input gets a clear error and changes nothing.
mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use vmrm::config::VmConfig;
use vmrm::error::VmrmError;
use vmrm::launcher::certs::ADMIN;
use vmrm::launcher::{Datacenter, HostSpec, Topology};
use vmrm::pb;
use vmrm::transport::tls::TlsFiles;

/// `ksysmgr` as the datacenter's administrator.
fn ksysmgr(dc: &Datacenter, endpoints: &[String], args: &[&str]) -> std::process::Output {
    let files = TlsFiles::in_dir(&dc.topology.certs_dir(), ADMIN);
    Command::new(env!("CARGO_BIN_EXE_ksysmgr"))
        .env("VMRM_CA", files.ca)
        .env("VMRM_CERT", files.cert)
        .env("VMRM_KEY", files.key)
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .args(args)
        .output()
        .expect("ksysmgr runs")
}

/// Killing the DBN's process makes another controller active; `query vm` and `restart vm`
/// work through the very same endpoint list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_controller_keeps_the_admin_api_working() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("failover");
    let mut dc = start(Topology::uniform(23000, 2, 2, dir.path().to_path_buf())).await;
    let endpoints = dc.topology.controller_endpoints();
    let mut admin = dc.admin().unwrap();
    let active = admin.query_cluster(pb::QueryRequest::default()).await.unwrap().clusters[0].active_controller.clone();
    let index = endpoints.iter().position(|e| *e == active).expect("the active controller is one of the endpoints");
    dc.kill(&format!("ctl-{}", index + 1));

    let out = ksysmgr(&dc, &endpoints, &["query", "vm"]);
    assert!(out.status.success(), "query vm after failover: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("vm-1-1") && text.contains("Running"), "{text}");

    // The source does not stop: the reply says so, and the fence lets the restart go on.
    dc.inject_fault("host-1", "", "fail-next-shutdown").await.expect("unit fault");
    // -o json is the typed reply: where the VM went and under which fencing epoch.
    let out = ksysmgr(&dc, &endpoints, &["-o", "json", "restart", "vm", "vm-1-1", "host=host-2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "restart vm after failover: {}{}", text, String::from_utf8_lossy(&out.stderr));
    let reply: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        (&reply["vm"], &reply["source"], &reply["target"]),
        (&"vm-1-1".into(), &"host-1".into(), &"host-2".into())
    );
    assert!(reply["epoch"].as_u64().is_some_and(|e| e >= 1), "{reply}");
    // Its steps: codes and the objects they name, with the seed's line beside each.
    let steps = reply["steps"].as_array().unwrap();
    let step = |code: &str| steps.iter().find(|s| s["code"] == code).unwrap_or_else(|| panic!("{code}: {text}"));
    let done = step("RESTART_COMPLETED");
    assert_eq!(
        (&done["subject"], &done["target"], done["nested"].as_bool()),
        (&"vm-1-1".into(), &"host-2".into(), Some(true))
    );
    assert_eq!(done["text"], "Restart on Target host host-2 has completed for VM vm-1-1");
    let summary = step("RESTART_SUMMARY");
    assert_eq!((&summary["count"], &summary["total"]), (&1.into(), &1.into()), "{text}");
    assert_eq!(summary["text"], "1 out of 1 VMs have been successfully restarted");
    let failed = step("SHUTDOWN_FAILED");
    assert_eq!((&failed["subject"], &failed["target"]), (&"vm-1-1".into(), &"host-1".into()), "{text}");
    assert!(failed["text"].as_str().unwrap().ends_with("the SAN fence keeps it off its disk"), "{text}");
    assert!(!steps.iter().any(|s| s["code"] == "SHUTDOWN_COMPLETED"), "{text}");

    // The killed controller comes back from its data directory and catches up; then the
    // second active controller dies too, and the admin API still answers.
    let killed = format!("ctl-{}", index + 1);
    dc.restart(&killed).await.expect("the killed controller restarts from disk");
    let alive = (0..endpoints.len()).find(|i| *i != index).unwrap();
    let applied = common::members::status(&endpoints[alive], dc.security()).await.map(|s| s.last_applied).unwrap_or(0);
    wait_until("the restarted controller caught up with the log", Duration::from_secs(20), || async {
        let s = common::members::status(&endpoints[index], dc.security()).await?;
        (s.leader_id != 0 && s.last_applied >= applied).then_some(())
    })
    .await;
    let second = admin.query_cluster(pb::QueryRequest::default()).await.unwrap().clusters[0].active_controller.clone();
    let second_index = endpoints.iter().position(|e| *e == second).unwrap();
    dc.kill(&format!("ctl-{}", second_index + 1));
    let out = ksysmgr(&dc, &endpoints, &["query", "vm", "vm-1-1"]);
    assert!(out.status.success(), "query after the second failover: {}", String::from_utf8_lossy(&out.stderr));

    let now_active =
        admin.query_cluster(pb::QueryRequest::default()).await.unwrap().clusters[0].active_controller.clone();
    assert_ne!(now_active, second);
    wait_until("vm-1-1 shown Running on host-2", Duration::from_secs(10), || async {
        let vm = dc
            .admin()
            .ok()?
            .query_vm(pb::QueryRequest { name: "vm-1-1".into(), ..Default::default() })
            .await
            .ok()?
            .vms
            .pop()?;
        (vm.host == "host-2" && vm.lpar_state() == pb::LparState::Running).then_some(())
    })
    .await;
    dc.stop();
}

fn assert_code(result: Result<impl std::fmt::Debug, VmrmError>, code: &str, text: &str) {
    let err = result.expect_err("bad input must be refused");
    let kind = format!("{err:?}");
    assert!(kind.starts_with(code), "expected {code}, got {kind}");
    assert!(err.to_string().contains(text), "message `{err}` lacks `{text}`");
}

/// Unknown names, a full target host and a bad HMC address are refused, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_input_gets_clear_errors_and_changes_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("bad-input");
    let mut topology = Topology::uniform(24000, 2, 2, dir.path().to_path_buf());
    let vm = |name: &str| VmConfig { name: name.into(), cpu: 2, memory_mb: 4096, permanent_index: None };
    topology.hosts[1] = HostSpec {
        name: "host-2".into(),
        cpu: 4,
        memory_mb: 8192,
        vms: vec![vm("vm-2-1"), vm("vm-2-2")],
        max_definitions: 100,
        site: 0,
    };
    let mut dc = start(topology).await;
    let mut admin = dc.admin().unwrap();
    let before = vms(&dc).await;

    let restart = |vm: &str, host: &str| pb::RestartVmRequest { vm: vm.into(), host: host.into() };
    assert_code(admin.restart_vm(restart("nosuch", "")).await, "NotFound", "VM nosuch does not exist");
    assert_code(admin.restart_vm(restart("vm-1-1", "host-9")).await, "NotFound", "host host-9 does not exist");
    assert_code(
        admin.restart_vm(restart("vm-1-1", "host-2")).await,
        "FailedPrecondition",
        "not have enough free capacity",
    );
    assert_code(admin.restart_vm(restart("vm-1-1", "host-1")).await, "InvalidArgument", "already runs on host host-1");
    assert_code(
        admin.query_vm(pb::QueryRequest { name: "nosuch".into(), ..Default::default() }).await,
        "NotFound",
        "VM nosuch",
    );
    assert_code(
        admin.add_host(pb::AddHostRequest { name: "host-9".into() }).await,
        "NotFound",
        "not managed by any added HMC",
    );
    let bad_hmc = pb::AddHmcRequest {
        name: "h3".into(),
        login: "a".into(),
        password: "b".into(),
        ip: "10.0.0.1:port".into(),
        site: String::new(),
    };
    assert_code(admin.add_hmc(bad_hmc).await, "InvalidArgument", "is not an IP address or host name");
    let dup_group = pb::AddHostGroupRequest { name: "HG2".into(), hosts: vec!["host-1".into()], ..Default::default() };
    assert_code(admin.add_host_group(dup_group).await, "FailedPrecondition", "already belongs to host_group");
    let lpm = |vm: &str, to: &str| pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vmrm::cli::settings::list(vm),
        to: to.into(),
        ..Default::default()
    };
    let full = admin.migrate_all(lpm("vm-1-1", "host-2")).await;
    assert_code(
        full,
        "FailedPrecondition",
        "VMS2404 LIVE MIGRATION OF VM (1,vm-1-1) REJECTED BY THE TARGET SU 'host-2'",
    );
    let full = admin.migrate_all(lpm("vm-1-1", "host-2")).await.unwrap_err().to_string();
    assert!(full.contains("REASON: Memory host-2: 4096 MB needed, 0 MB free on the target"), "{full}");
    assert!(full.ends_with("VMS2461 LIVE MIGRATION OF VM (1,vm-1-1) TO TARGET SU 'host-2' NOT POSSIBLE"), "{full}");
    assert_code(
        admin.migrate_all(lpm("vm-1-1", "")).await,
        "FailedPrecondition",
        "no host of host_group HG1 can take VM vm-1-1",
    );
    assert_code(admin.migrate_all(lpm("vm-1-1", "host-1")).await, "InvalidArgument", "already runs on host host-1");
    assert_code(admin.migrate_all(lpm("vm-1-1", "host-9")).await, "NotFound", "host-9");
    assert_code(admin.migrate_all(lpm("nosuch", "host-2")).await, "NotFound", "VM nosuch");
    assert_code(admin.migrate_all(lpm("", "host-2")).await, "InvalidArgument", "name the VMs");
    let mut forced = lpm("vm-1-1", "host-2");
    forced.limits = Some(pb::MigrationLimits { policy: 7, ..Default::default() });
    assert_code(admin.migrate_all(forced).await, "InvalidArgument", "not abort or force");
    let cancel = pb::MigrateRequest { action: pb::MigrateAction::Cancel as i32, ..lpm("vm-1-1", "") };
    assert_code(admin.migrate_all(cancel).await, "FailedPrecondition", "no live migration running");
    let evacuate_self = pb::MigrateRequest { scope: pb::Scope::Host as i32, ..lpm("host-1", "host-1") };
    assert_code(admin.migrate_all(evacuate_self).await, "InvalidArgument", "cannot be evacuated to itself");

    // Empty values, long names, bad disks and pages: refused at the edge, with a short reason.
    let out = ksysmgr(&dc, &dc.topology.controller_endpoints(), &["modify", "system", "vm_failure_detection_speed="]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a value"), "{out:?}");
    let long = "v".repeat(20_000);
    let long_vm = pb::QueryRequest { name: long.clone(), ..Default::default() };
    assert_code(admin.query_vm(long_vm).await, "InvalidArgument", "(20000 bytes)");
    assert_code(admin.restart_vm(restart(&long, "")).await, "InvalidArgument", "(20000 bytes)");
    let disks = |repo: &str, ha: &str| pb::AddHostGroupRequest {
        name: "HG2".into(),
        hosts: vec!["host-2".into()],
        repo_disk: Some(repo.into()),
        ha_disk: Some(ha.into()),
    };
    assert_code(admin.add_host_group(disks("../etc", "AAA=")).await, "InvalidArgument", "must be a ViodiskID");
    assert_code(admin.add_host_group(disks("AAA=", "AAA=")).await, "InvalidArgument", "two different disks");
    let events = |name: &str, limit| pb::EventQuery { name: name.into(), limit, ..Default::default() };
    assert_code(admin.query_event(events("", Some(0))).await, "InvalidArgument", "limit=0 is out of range");
    assert_code(admin.query_event(events(&long, None)).await, "InvalidArgument", "(20000 bytes)");

    // Detection settings: out of range, unknown names, the wrong level — refused, nothing changes.
    let detection = |level: &str, name: &str, fdt: &str, speed: &str| {
        let attrs = [("host_failure_detection_time", fdt), ("vm_failure_detection_speed", speed)];
        let given: Vec<(&str, &str)> = attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        modify(level, name, &given)
    };
    let system = || async { dc.admin().unwrap().query_system(pb::QueryRequest::default()).await.unwrap() };
    let defaults = system().await;
    assert_eq!(
        (defaults.host_failure_detection_time_ms, defaults.vm_failure_detection_speed()),
        (1500, pb::DetectionSpeed::Normal)
    );
    assert_code(admin.modify(detection("system", "", "0.5", "")).await, "InvalidArgument", "use 1.5-10 seconds");
    assert_code(admin.modify(detection("system", "", "11", "fast")).await, "InvalidArgument", "out of range");
    let quick = pb::ModifyRequest {
        settings: Some(pb::Settings { vm_failure_detection_speed: 9, ..Default::default() }),
        ..detection("host_group", "HG1", "", "fast")
    };
    assert_code(admin.modify(quick).await, "InvalidArgument", "9 is not one of DETECTION_SPEED_FAST");
    assert_code(admin.modify(detection("host_group", "HG9", "2", "")).await, "NotFound", "HG9");
    assert_code(admin.modify(detection("vm", "vm-1-1,nosuch", "", "slow")).await, "NotFound", "VM nosuch");
    assert_code(
        admin.modify(detection("vm", "vm-1-1", "2", "")).await,
        "InvalidArgument",
        "`host_failure_detection_time` is not a setting of vm",
    );
    assert_code(
        admin.modify(detection("host", "host-1", "2", "")).await,
        "InvalidArgument",
        "`host_failure_detection_time` is not a setting of host",
    );
    assert_eq!(system().await, defaults, "a refused modify changed the system settings");
    let speeds = |v: &[pb::VmView]| v.iter().map(|v| v.vm_failure_detection_speed()).collect::<Vec<_>>();
    assert!(speeds(&vms(&dc).await).iter().all(|s| *s == pb::DetectionSpeed::Normal), "a refused modify changed a VM");

    // Accepted at each level; the most specific wins.
    let lines = admin.modify(detection("system", "", "3", "slow")).await.unwrap().printed();
    assert_eq!(
        lines,
        ["KSYS host_failure_detection_time has been updated", "KSYS vm_failure_detection_speed has been updated"]
    );
    let lines = admin.modify(detection("host_group", "HG1", "2.5", "")).await.unwrap().printed();
    assert_eq!(lines, ["For Host_group HG1 attribute(s) 'host_failure_detection_time' was successfully modified."]);
    admin.modify(detection("vm", "vm-1-1", "", "fast")).await.unwrap();
    let group = &admin.query_host_group(pb::QueryRequest::default()).await.unwrap().host_groups[0];
    assert_eq!(
        (group.host_failure_detection_time_ms, group.vm_failure_detection_speed()),
        (2500, pb::DetectionSpeed::Slow)
    );
    let disk_id = |kind: &str| Some(vmrm::domain::identity::uuid_for(kind, "HG1").replace('-', ""));
    assert_eq!((&group.repo_disk, &group.ha_disk), (&disk_id("repo_disk"), &disk_id("ha_disk")), "the disks are kept");
    let out = ksysmgr(&dc, &dc.topology.controller_endpoints(), &["query", "host_group"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Repo_disk:           {}", disk_id("repo_disk").unwrap())), "{text}");
    // The seed's own syntax (Example 3-53) and its VM filter.
    let endpoints = dc.topology.controller_endpoints();
    let args = ["modify", "host_group", "HG1", "options", "memory_capacity=60", "priority=medium"];
    let out = ksysmgr(&dc, &endpoints, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let group = &admin.query_host_group(pb::QueryRequest::default()).await.unwrap().host_groups[0];
    assert_eq!(group.memory_capacity, [100, 60, 100]);
    let args = ["modify", "host_group", "HG1", "options", "memory_capacity=100", "priority=medium"];
    assert!(ksysmgr(&dc, &endpoints, &args).status.success(), "back to 100 %");
    let out = ksysmgr(&dc, &endpoints, &["query", "vm", "state=unmanage"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("vm-1-1"), "every VM is managed: {text}");
    let text = String::from_utf8_lossy(&ksysmgr(&dc, &endpoints, &["query", "vm", "state=manage"]).stdout).to_string();
    assert!(text.contains("Managed VMs:") && text.contains("vm-1-1"), "{text}");
    let now = vms(&dc).await;
    let speed_of = |name: &str| now.iter().find(|v| v.name == name).unwrap().vm_failure_detection_speed();
    assert_eq!((speed_of("vm-1-1"), speed_of("vm-1-2")), (pb::DetectionSpeed::Fast, pb::DetectionSpeed::Slow));
    let out = ksysmgr(&dc, &dc.topology.controller_endpoints(), &["query", "system"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("host_failure_detection_time: 3 seconds (1.5-10 seconds)"), "{text}");
    let out =
        ksysmgr(&dc, &dc.topology.controller_endpoints(), &["modify", "system", "host_failure_detection_time=99"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("use 1.5-10 seconds"), "{out:?}");

    refused_policies(&mut admin).await;
    refused_at_every_rpc(&mut admin).await;

    let after = vms(&dc).await;
    let summary = |v: &[pb::VmView]| {
        v.iter()
            .map(|v| (v.name.clone(), v.host.clone(), v.epoch, v.priority, v.blacklist_hosts.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&before), summary(&after), "a refused command changed the VMs");
    let groups = admin.query_host_group(pb::QueryRequest::default()).await.unwrap().host_groups;
    assert_eq!(groups.len(), 1, "a refused add host_group left a group behind");
    dc.stop();
}

/// Names that are paths, empty or oversized, unknown enum numbers and ids out of range, at every
/// admin RPC that takes them: `InvalidArgument` with the reason, before anything is looked up.
async fn refused_at_every_rpc(admin: &mut vmrm::transport::AdminClient) {
    let invalid = |result: Result<String, VmrmError>, what: &str, why: &str| {
        let err = result.expect_err(what);
        assert!(matches!(err, VmrmError::InvalidArgument(_)), "{what}: {err:?}");
        assert!(err.to_string().contains(why), "{what}: `{err}` lacks `{why}`");
    };
    let long = "n".repeat(65);
    for bad in ["../vm-1-1", "/tmp/x", "a/b", "..", "", long.as_str()] {
        let why = match bad {
            "" => "name is required",
            _ => "is not a valid",
        };
        let q = || pb::QueryRequest { name: bad.into(), ..Default::default() };
        let text = |r: Result<pb::CommandReply, VmrmError>| r.map(|r| r.printed().join("\n"));
        let debug = |r: Result<_, VmrmError>| r.map(|v: Box<dyn std::fmt::Debug>| format!("{v:?}"));
        invalid(
            text(admin.add_cluster(pb::AddClusterRequest { name: bad.into(), ..Default::default() }).await),
            "AddCluster",
            why,
        );
        let hmc = pb::AddHmcRequest {
            name: bad.into(),
            login: "a".into(),
            password: "b".into(),
            ip: "127.0.0.1".into(),
            site: String::new(),
        };
        invalid(text(admin.add_hmc(hmc).await), "AddHmc", why);
        invalid(text(admin.add_host(pb::AddHostRequest { name: bad.into() }).await), "AddHost", why);
        let group = pb::AddHostGroupRequest { name: "HG3".into(), hosts: vec![bad.into()], ..Default::default() };
        invalid(text(admin.add_host_group(group).await), "AddHostGroup", why);
        invalid(
            text(admin.discover(pb::DiscoverRequest { host_group: bad.into(), verify: false }).await),
            "Discover",
            why,
        );
        invalid(text(admin.verify(pb::VerifyRequest { host_group: bad.into() }).await), "Verify", why);
        invalid(
            text(admin.cleanup(pb::CleanupRequest { host_group: bad.into(), dr_test: false }).await),
            "Cleanup",
            why,
        );
        let restart = pb::RestartVmRequest { vm: bad.into(), host: String::new() };
        invalid(debug(admin.restart_vm(restart).await.map(|r| Box::new(r) as _)), "RestartVm", why);
        let restart = pb::RestartVmRequest { vm: "vm-1-2".into(), host: format!("{bad}x/") };
        invalid(debug(admin.restart_vm(restart).await.map(|r| Box::new(r) as _)), "RestartVm to", "is not a valid");
        let lpm = pb::MigrateRequest { scope: pb::Scope::Vm as i32, names: vec![bad.into()], ..Default::default() };
        invalid(debug(admin.migrate_all(lpm).await.map(|r| Box::new(r) as _)), "Migrate", why);
        let modify = pb::ModifyRequest { names: vec![bad.into()], ..modify("vm", "vm-1-2", &[("priority", "low")]) };
        invalid(text(admin.modify(modify).await), "Modify", why);
        invalid(text(admin.manage(pb::ManageRequest { vms: vec![bad.into()], manage: false }).await), "Manage", why);
        let restore = pb::RestoreRequest { scope: pb::Scope::Host as i32, name: bad.into() };
        invalid(text(admin.restore(restore).await), "Restore", why);
        let affinity = pb::AffinityRequest {
            action: pb::ChangeAction::Add as i32,
            kind: pb::AffinityKind::Workgroup as i32,
            name: bad.into(),
            vms: vec!["vm-1-2".into()],
            remove_vms: false,
        };
        invalid(text(admin.change_affinity(affinity).await), "ChangeAffinity", why);
        let su =
            pb::SuClusterChange { action: pb::ChangeAction::Remove as i32, name: bad.into(), ..Default::default() };
        invalid(text(admin.change_su_cluster(su).await), "ChangeSuCluster", why);
        let recover = pb::RecoverVmDefinitionRequest { vm: bad.into(), host: String::new() };
        invalid(text(admin.recover_vm_definition(recover).await), "RecoverVmDefinition", why);
        if bad.is_empty() {
            continue; // an empty query name asks for every object
        }
        invalid(debug(admin.query_cluster(q()).await.map(|r| Box::new(r) as _)), "QueryCluster", why);
        invalid(debug(admin.query_system(q()).await.map(|r| Box::new(r) as _)), "QuerySystem", "takes no name");
        invalid(debug(admin.query_hsdb(q()).await.map(|r| Box::new(r) as _)), "QueryHsdb", "takes no name");
        invalid(debug(admin.query_hmc(q()).await.map(|r| Box::new(r) as _)), "QueryHmc", why);
        invalid(debug(admin.query_host(q()).await.map(|r| Box::new(r) as _)), "QueryHost", why);
        invalid(debug(admin.query_host_group(q()).await.map(|r| Box::new(r) as _)), "QueryHostGroup", why);
        invalid(debug(admin.query_vios(q()).await.map(|r| Box::new(r) as _)), "QueryVios", why);
        invalid(debug(admin.query_vm(q()).await.map(|r| Box::new(r) as _)), "QueryVm", why);
        invalid(debug(admin.query_app(q()).await.map(|r| Box::new(r) as _)), "QueryApp", why);
        invalid(debug(admin.query_su_cluster(q()).await.map(|r| Box::new(r) as _)), "QuerySuCluster", why);
        let events = pb::EventQuery { name: bad.into(), ..Default::default() };
        invalid(debug(admin.query_event(events).await.map(|r| Box::new(r) as _)), "QueryEvent", why);
        let groups = pb::AffinityQuery { kind: 0, name: bad.into() };
        invalid(debug(admin.query_affinity(groups).await.map(|r| Box::new(r) as _)), "QueryAffinity", why);
        let jv = pb::MonjvChange { action: pb::ChangeAction::Remove as i32, name: bad.into(), ..Default::default() };
        invalid(text(admin.change_monjv(jv).await), "ChangeMonjv", "not a MONJV name");
        let jv = pb::MonjvQuery { name: bad.into(), password: String::new() };
        invalid(debug(admin.query_monjv(jv).await.map(|r| Box::new(r) as _)), "QueryMonjv", "not a MONJV name");
        let watch = pb::MonjvWatch { name: bad.into(), from: 1, to: 3, timeout_ms: 10, ..Default::default() };
        invalid(debug(admin.watch_monjv(watch).await.map(|r| Box::new(r) as _)), "WatchMonjv", "not a MONJV name");
    }
    // Enum numbers nobody defined, and ids and values out of range.
    let cluster = pb::AddClusterRequest { name: "C2".into(), r#type: 9, ..Default::default() };
    invalid(admin.add_cluster(cluster).await.map(|r| r.printed().join("")), "AddCluster type", "9 is not one of");
    let lpm = pb::MigrateRequest { scope: 5, names: vec!["vm-1-2".into()], ..Default::default() };
    invalid(admin.migrate_all(lpm).await.map(|r| format!("{r:?}")), "Migrate scope", "scope 5");
    let restore = pb::RestoreRequest { scope: 0, name: "vm-1-2".into() };
    invalid(admin.restore(restore).await.map(|r| r.printed().join("")), "Restore scope", "scope 0");
    let su = pb::SuClusterChange { action: 8, name: "S".into(), ..Default::default() };
    invalid(admin.change_su_cluster(su).await.map(|r| r.printed().join("")), "ChangeSuCluster action", "action 8");
    let jv = pb::MonjvChange { action: 0, name: "JV.X".into(), ..Default::default() };
    invalid(admin.change_monjv(jv).await.map(|r| r.printed().join("")), "ChangeMonjv action", "action 0");
    let groups = pb::AffinityQuery { kind: 12, name: String::new() };
    invalid(admin.query_affinity(groups).await.map(|r| format!("{r:?}")), "QueryAffinity kind", "12 is not one of");
    let role = pb::ModifyHsdbNodeRequest { node_id: 2, role: 4 };
    invalid(admin.modify_hsdb_node(role).await.map(|r| r.printed().join("")), "ModifyHsdbNode role", "role 4");
    let zero = pb::RemoveHsdbNodeRequest { node_id: 0 };
    invalid(admin.remove_hsdb_node(zero).await.map(|r| r.printed().join("")), "RemoveHsdbNode 0", "positive number");
    let level = pb::ModifyRequest { level: 6, ..modify("vm", "vm-1-2", &[("priority", "low")]) };
    invalid(admin.modify(level).await.map(|r| r.printed().join("")), "Modify level", "level 6");
    let slow = pb::ModifyRequest {
        settings: Some(pb::Settings { host_failure_detection_time_ms: Some(u32::MAX), ..Default::default() }),
        ..modify("system", "", &[("ha_monitor", "enable")])
    };
    invalid(admin.modify(slow).await.map(|r| r.printed().join("")), "Modify time", "out of range");
}

/// Policies: unknown names, bad values, a VM in two collocation groups, contradictory groups,
/// a blacklisted restart target — each refused with the reason; only the one group that was
/// accepted exists afterwards and the host group keeps its settings.
async fn refused_policies(admin: &mut vmrm::transport::AdminClient) {
    let group = |kind: pb::AffinityKind, name: &str, vms: &[&str]| pb::AffinityRequest {
        action: pb::ChangeAction::Add as i32,
        kind: kind as i32,
        name: name.into(),
        vms: vms.iter().map(|s| s.to_string()).collect(),
        remove_vms: false,
    };
    let typed = |settings: pb::Settings| pb::ModifyRequest {
        settings: Some(settings),
        ..modify("vm", "vm-1-1", &[("priority", "low")])
    };
    assert_code(admin.modify(modify("vm", "nosuch", &[("priority", "high")])).await, "NotFound", "VM nosuch");
    let urgent = typed(pb::Settings { priority: 9, ..Default::default() });
    assert_code(admin.modify(urgent).await, "InvalidArgument", "PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW");
    assert_code(
        admin.modify(modify("vm", "vm-1-1", &[("blacklist_hosts", "host-9")])).await,
        "NotFound",
        "host host-9",
    );
    assert_code(admin.modify(modify("host_group", "HG9", &[("restart_policy", "auto")])).await, "NotFound", "HG9");
    let in_group = |settings: pb::Settings| pb::ModifyRequest {
        settings: Some(settings),
        ..modify("host_group", "HG1", &[("priority", "low")])
    };
    let sometimes = in_group(pb::Settings { restart_policy: 5, ..Default::default() });
    assert_code(admin.modify(sometimes).await, "InvalidArgument", "RESTART_POLICY_AUTO, RESTART_POLICY_ADVISORY_MODE");
    let too_much = in_group(pb::Settings { memory_capacity: Some(150), priority: 3, ..Default::default() });
    assert_code(admin.modify(too_much).await, "InvalidArgument", "1-100");
    assert_code(
        admin.modify(modify("host_group", "HG1", &[("cpu_capacity", "50")])).await,
        "InvalidArgument",
        "per priority",
    );
    let nothing = pb::ModifyRequest { settings: None, ..modify("host", "host-1", &[("ha_monitor", "enable")]) };
    assert_code(admin.modify(nothing).await, "InvalidArgument", "settings are required");

    admin
        .change_affinity(group(pb::AffinityKind::Collocation, "c1", &["vm-1-1", "vm-1-2"]))
        .await
        .expect("a valid group");
    assert_code(
        admin.change_affinity(group(pb::AffinityKind::Collocation, "c2", &["vm-1-1", "vm-2-1"])).await,
        "FailedPrecondition",
        "already in collocation group c1",
    );
    assert_code(
        admin.change_affinity(group(pb::AffinityKind::Anticollocation, "a1", &["vm-1-2", "vm-1-1"])).await,
        "FailedPrecondition",
        "conflicting policies",
    );
    assert_code(
        admin.change_affinity(group(pb::AffinityKind::Workgroup, "w1", &["vm-1-1", "nosuch"])).await,
        "NotFound",
        "VM nosuch",
    );
    assert_code(
        admin.change_affinity(group(pb::AffinityKind::Collocation, "c1", &["vm-2-1", "vm-2-2"])).await,
        "AlreadyExists",
        "c1",
    );
    assert_code(
        admin.modify(modify("vm", "vm-1-1", &[("priority", "high")])).await,
        "FailedPrecondition",
        "same priority",
    );
    let affinity = pb::AffinityRequest { kind: 9, ..group(pb::AffinityKind::Collocation, "z", &["vm-1-1"]) };
    assert_code(
        admin.change_affinity(affinity).await,
        "InvalidArgument",
        "AFFINITY_KIND_COLLOCATION, AFFINITY_KIND_ANTICOLLOCATION, AFFINITY_KIND_WORKGROUP",
    );
    let delete = pb::AffinityRequest {
        action: pb::ChangeAction::Remove as i32,
        kind: pb::AffinityKind::Collocation as i32,
        name: "nosuch".into(),
        ..Default::default()
    };
    assert_code(admin.change_affinity(delete).await, "NotFound", "collocation group nosuch does not exist");

    let restart = pb::RestartVmRequest { vm: "vm-2-1".into(), host: "host-1".into() };
    let lines = admin.modify(modify("vm", "vm-2-1", &[("blacklist_hosts", "host-1")])).await.unwrap().printed();
    assert_eq!(lines[0], "WARNING: No backup host will be left for this VM vm-2-1.", "{lines:?}");
    assert_code(admin.restart_vm(restart).await, "FailedPrecondition", "blacklist_hosts of VM vm-2-1");
    admin.modify(modify("vm", "vm-2-1", &[("blacklist_hosts", "host-1"), ("policy", "delete")])).await.unwrap();

    let groups = admin.query_affinity(pb::AffinityQuery::default()).await.unwrap().groups;
    assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["c1"]);
    let hg = &admin.query_host_group(pb::QueryRequest::default()).await.unwrap().host_groups[0];
    assert_eq!(
        (hg.restart_policy(), hg.memory_capacity.as_slice(), hg.cpu_capacity.as_slice()),
        (pb::RestartPolicy::Auto, &[100, 100, 100][..], &[100, 100, 100][..])
    );
    admin
        .change_affinity(pb::AffinityRequest {
            action: pb::ChangeAction::Remove as i32,
            kind: pb::AffinityKind::Collocation as i32,
            name: "c1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn plain_ksysmgr(endpoints: &[String], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksysmgr"));
    cmd.args(["--insecure", "--endpoints", &endpoints.join(",")]).args(args).output().expect("ksysmgr runs")
}

/// `ksysmgr` exits non-zero with a message for bad syntax and for endpoints nobody answers.
#[test]
fn ksysmgr_reports_usage_errors_and_unreachable_controllers() {
    let nobody = vec!["127.0.0.1:9".to_string()];
    let out = plain_ksysmgr(&nobody, &["frobnicate", "vm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown action `frobnicate`"));

    let started = std::time::Instant::now();
    let out = plain_ksysmgr(&nobody, &["query", "vm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach an active controller at 127.0.0.1:9"));
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A malformed config file stops `vmrmd` with the file and the problem named.
#[test]
fn vmrmd_refuses_a_malformed_config() {
    let dir = temp_dir("bad-config");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp/x\"\n[san]\ncolour = 1\n")
        .unwrap();
    let out = Command::new(vmrmd()).arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("malformed config file") && err.contains("colour"), "{err}");
}
