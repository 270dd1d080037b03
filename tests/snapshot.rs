//! Configuration snapshots on real processes: a snapshot of a configured cluster, written to a
//! file by `ksysmgr add snapshot filepath=…`, restored by `ksysmgr restore snapshot` onto a
//! fresh cluster, gives the same configuration and policies; a bad snapshot, or a cluster that
//! is not fresh, is refused and changes nothing. `remove ksyscluster` offers a snapshot, asks,
//! removes the configuration, and the backup it took brings it back.
mod common;

use common::*;
use vmrm::domain::snapshot::ConfigSnapshot;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

const BASE_PORT: u16 = 15000;

fn ksysmgr(dc: &Datacenter, args: &[&str]) -> std::process::Output {
    ksysmgr_as_admin(dc, args).output().expect("ksysmgr runs")
}

/// `ksysmgr` answering its questions with `answers` on stdin.
fn ksysmgr_answering(dc: &Datacenter, args: &[&str], answers: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = ksysmgr_as_admin(dc, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ksysmgr runs");
    child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What must be equal between two clusters' snapshots: all but their names and times.
fn configuration(content: &[u8]) -> ConfigSnapshot {
    let mut s = ConfigSnapshot::parse(content).expect("a snapshot");
    (s.name, s.taken_ms) = (String::new(), 0);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restored_on_a_fresh_cluster_gives_the_same_configuration() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("snapshot");
    let mut first = start(Topology::uniform(BASE_PORT, 3, 2, dir.path().join("first"))).await;
    for args in [
        "modify system notification_level=high dup_event_processing=no",
        "modify host_group HG1 restart_policy=advisory_mode",
        "modify host_group HG1 memory_capacity=60 cpu_capacity=70 priority=medium",
        "modify vm vm-1-1 priority=high blacklist_hosts=host-3",
        "modify vm vm-2-2 homehost=host-3 vm_failure_detection_speed=slow",
        "add collocation app vm=vm-1-2,vm-2-1",
        "add notify user=bot contact=http://127.0.0.1:9/hooks/vmrm",
        "unmanage vm vm-3-2",
    ] {
        ok(ksysmgr(&first, &args.split(' ').collect::<Vec<_>>()));
    }
    let out = ok(ksysmgr(&first, &["add", "snapshot", &format!("filepath={}", dir.path().display())]));
    let created = out.lines().next().unwrap().strip_prefix("Created: ").expect(&out).to_string();
    assert!(created.contains("_BASIC_") && created.ends_with(".json"), "{out}");
    assert!(out.contains("Successfully created a configuration snapshot: "), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&created).unwrap().permissions().mode() & 0o777, 0o600);
    let listed = ok(ksysmgr(&first, &["query", "snapshot"]));
    assert!(listed.contains("_BASIC_") && listed.contains("bytes"), "{listed}");
    let before = configuration(&std::fs::read(&created).unwrap());
    assert_eq!(before.vms.iter().find(|v| v.name == "vm-1-1").unwrap().blacklist_hosts, ["host-3"]);

    // Refused, changing nothing: a bad file, and restoring onto a cluster that is configured.
    let mut admin = first.admin().unwrap();
    let bad = pb::RestoreSnapshotRequest { content: b"{\"format\": 1}".to_vec(), name: String::new() };
    let err = admin.restore_snapshot(bad).await.unwrap_err();
    assert!(format!("{err:?}").starts_with("InvalidArgument") && err.to_string().contains("not a vmrm"), "{err}");
    let out = ksysmgr(&first, &["restore", "snapshot", &format!("filepath={created}")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a fresh cluster"), "{out:?}");
    let out = ksysmgr(&first, &["restore", "snapshot", "filepath=/nonexistent/s.json"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/s.json"));
    let again = admin.add_snapshot(pb::SnapshotRequest {}).await.unwrap();
    assert_eq!(configuration(&again.content), before, "the refusals changed nothing");
    first.stop();

    // A fresh cluster on the same machines (the same HMCs and hosts), nothing configured.
    let topology = Topology::uniform(BASE_PORT, 3, 2, dir.path().join("second"));
    let mut second = Datacenter::start(topology, vmrmd()).await.expect("the second datacenter starts");
    let out = ok(ksysmgr(&second, &["restore", "snapshot", &format!("filepath={created}")]));
    assert!(out.contains("managed VMs have been successfully discovered"), "{out}");
    assert!(out.trim_end().ends_with("has been restored"), "{out}");
    let after = second.admin().unwrap().add_snapshot(pb::SnapshotRequest {}).await.unwrap();
    assert_eq!(configuration(&after.content), before);

    // remove ksyscluster: a snapshot is offered first, then the removal is confirmed.
    let out = ksysmgr_answering(&second, &["remove", "ksyscluster", "vmrm_local"], "y\nn\n");
    let (stdout, stderr) = (ok(out.clone()), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(
        stderr.contains("WARNING: This action will remove all configuration")
            && stderr.contains("Do you wish to proceed? [y|n]"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Successfully created a configuration snapshot") && stdout.contains("was not removed"),
        "{stdout}"
    );
    let out = ksysmgr_answering(&second, &["remove", "ksyscluster", "vmrm_local"], "n\nmaybe\n");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not y or n"), "{out:?}");
    let mut admin = second.admin().unwrap();
    let unconfirmed = pb::RemoveClusterRequest { name: "vmrm_local".into(), confirm: false };
    let err = admin.remove_cluster(unconfirmed).await.unwrap_err();
    assert!(format!("{err:?}").starts_with("FailedPrecondition") && err.to_string().contains("confirm"), "{err}");
    let other = pb::RemoveClusterRequest { name: "other".into(), confirm: true };
    let err = admin.remove_cluster(other).await.unwrap_err();
    assert!(format!("{err:?}").starts_with("NotFound"), "{err}");
    let kept = admin.add_snapshot(pb::SnapshotRequest {}).await.unwrap();
    assert_eq!(configuration(&kept.content), before, "nothing was removed yet");

    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let out =
        ok(ksysmgr(&second, &["-y", "remove", "ksyscluster", "vmrm_local", &format!("filepath={}", backup.display())]));
    for line in [
        "Created: ",
        "This may take a few minutes to safely remove the ksyscluster",
        "Host_groups have been deleted",
        "Hosts have been deleted",
        "HMCs have been deleted",
        "Ksyscluster vmrm_local has been removed",
    ] {
        assert!(out.contains(line), "{line:?} missing: {out}");
    }
    assert!(admin.query_host(pb::QueryRequest::default()).await.map(|l| l.hosts).unwrap_or_default().is_empty());
    assert!(admin.query_cluster(pb::QueryRequest::default()).await.map(|l| l.clusters).unwrap_or_default().is_empty());
    // The backup it took brings everything back.
    let taken = out.lines().find_map(|l| l.strip_prefix("Created: ")).unwrap().to_string();
    let out = ok(ksysmgr(&second, &["restore", "snapshot", &format!("filepath={taken}")]));
    assert!(out.trim_end().ends_with("has been restored"), "{out}");
    let back = admin.add_snapshot(pb::SnapshotRequest {}).await.unwrap();
    assert_eq!(configuration(&back.content), before, "the removed cluster came back from its backup");

    // An HMC's password need not be on the command line: without password=, it is read from stdin.
    let ip = format!("ip={}", second.topology.hmc_endpoint(1));
    let none = ksysmgr_answering(&second, &["add", "hmc", "hmc-9", "login=hscroot", &ip], "");
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("no password"), "{none:?}");
    let piped = ok(ksysmgr_answering(&second, &["add", "hmc", "hmc-9", "login=hscroot", &ip], "s3cret\n"));
    assert!(piped.contains("hmc-9"), "{piped}");
    let snapshot = ConfigSnapshot::parse(&admin.add_snapshot(pb::SnapshotRequest {}).await.unwrap().content).unwrap();
    assert_eq!(snapshot.hmcs.iter().find(|h| h.name == "hmc-9").map(|h| h.password.as_str()), Some("s3cret"));
    second.stop();
}
