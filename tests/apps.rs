//! Application monitoring inside a VM with real scripts: configured with the real `ksysvmmgr`
//! through the VM's socket, run by the VM agent as processes of a live datacenter.
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

/// Runs `program ARGS`: (exit code, stdout, stderr).
async fn run(program: &str, mut args: Vec<String>, line: &str) -> (i32, String, String) {
    args.extend(line.split_whitespace().map(String::from));
    let out = tokio::process::Command::new(program).args(args).output().await.expect("the command runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// `ksysvmmgr --vm VM …`.
async fn ksysvmmgr(guests: &Path, vm: &str, args: &str) -> (i32, String, String) {
    let target = vec!["--vm".into(), vm.into(), "--guests".into(), guests.display().to_string()];
    run(env!("CARGO_BIN_EXE_ksysvmmgr"), target, args).await
}

/// `ksysmgr --endpoints … ARGS` against the datacenter's controllers.
async fn run_ksysmgr(dc: &Datacenter, args: &str) -> (i32, String, String) {
    let files = vmrm::transport::tls::TlsFiles::in_dir(&dc.topology.certs_dir(), vmrm::launcher::certs::ADMIN);
    let path = |p: PathBuf| p.display().to_string();
    let endpoints = vec![
        "--endpoints".into(),
        dc.topology.controller_endpoints().join(","),
        "--ca".into(),
        path(files.ca),
        "--cert".into(),
        path(files.cert),
        "--key".into(),
        path(files.key),
    ];
    run(env!("CARGO_BIN_EXE_ksysmgr"), endpoints, args).await
}

async fn ok(guests: &Path, vm: &str, args: &str) -> String {
    let (code, out, err) = ksysvmmgr(guests, vm, args).await;
    assert_eq!(code, 0, "ksysvmmgr {args}: {out}{err}");
    out
}

/// The app's `status=` as `ksysvmmgr -a status q app NAME` prints it.
async fn status(guests: &Path, vm: &str, app: &str) -> String {
    let out = ok(guests, vm, &format!("-a status q app {app}")).await;
    out.lines().find_map(|l| l.trim().strip_prefix("status=")).unwrap_or_default().to_string()
}

async fn wait_status(guests: &Path, vm: &str, app: &str, expected: &str) {
    let what = format!("{app} {expected}");
    wait_until(&what, Duration::from_secs(30), || async { (status(guests, vm, app).await == expected).then_some(()) })
        .await;
}

/// An executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Monitor, start and stop scripts of `app`: it runs while `$KSYS_VMM_ROOT/<app>.up` exists
/// and fails while `<app>.fail` exists; start and stop log to `order.log` (the stop also
/// repairs it).
fn app_scripts(dir: &Path, app: &str) -> String {
    let mon = script(
        dir,
        &format!("{app}-mon"),
        &format!("test -f \"$KSYS_VMM_ROOT/{app}.up\" && ! test -f \"$KSYS_VMM_ROOT/{app}.fail\""),
    );
    let start = script(
        dir,
        &format!("{app}-start"),
        &format!("touch \"$KSYS_VMM_ROOT/{app}.up\"; echo \"start {app}\" >> \"$KSYS_VMM_ROOT/order.log\""),
    );
    let stop = script(
        dir,
        &format!("{app}-stop"),
        &format!(
            "rm -f \"$KSYS_VMM_ROOT/{app}.up\" \"$KSYS_VMM_ROOT/{app}.fail\"; echo \"stop {app}\" >> \"$KSYS_VMM_ROOT/order.log\""
        ),
    );
    format!(
        "monitor_script={} start_script={} stop_script={} monitor_period=2 monitor_timeout=1 monitor_failure_threshold=1",
        mon.display(),
        start.display(),
        stop.display()
    )
}

/// A datacenter of `hosts` hosts with one VM each; its guest directories and a scripts directory.
async fn cluster(name: &str, base_port: u16, hosts: usize) -> (tempfile::TempDir, Datacenter, PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let topology = Topology::uniform(base_port, hosts, 1, dir.path().to_path_buf());
    let guests = topology.guests_dir();
    let dc = start(topology).await;
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    (dir, dc, guests, scripts)
}

/// An app with monitor script `monitor` whose start and stop do nothing.
fn with_noop(monitor: &Path, noop: &Path, extra: &str) -> String {
    let noop = noop.display();
    format!("monitor_script={} start_script={noop} stop_script={noop} {extra}", monitor.display())
}

/// Claim: scripts run as processes of the VM with the seed's states — a failing app is
/// restarted locally until FAILURE, a monitor that hangs is killed at its timeout, a missing
/// script is ABNORMAL, a failing parent is restarted with its child stopped first and started
/// last, and the configuration survives an agent restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_with_the_seeds_states_timeouts_and_parent_child_order() {
    let _serial = one_cluster_at_a_time().await;
    let (_dir, mut dc, guests, scripts) = cluster("apps", 30000, 2).await;
    let vm = "vm-1-1";
    let root = guests.join(vm);

    // Already running when they are configured (their markers exist).
    for app in ["parent", "child"] {
        std::fs::write(root.join(format!("{app}.up")), "").unwrap();
        ok(&guests, vm, &format!("add app {app} {}", app_scripts(&scripts, app))).await;
    }
    let out = ok(&guests, vm, "-s add dependency dependency_list=parent,child dependency_type=parent_child").await;
    assert!(
        out.starts_with(
            "Adding dependency \"dependency_list=parent,child\" into configuration successfully performed."
        ),
        "{out}"
    );
    wait_status(&guests, vm, "parent", "NORMAL (GREEN)").await;
    wait_status(&guests, vm, "child", "NORMAL (GREEN)").await;

    // A failing parent: child stopped first, parent restarted, then the child.
    std::fs::write(root.join("parent.fail"), "").unwrap();
    wait_until("the parent_child restart", Duration::from_secs(30), || async {
        let log = std::fs::read_to_string(root.join("order.log")).unwrap_or_default();
        (log.lines().count() >= 4).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(root.join("order.log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["stop child", "stop parent", "start parent", "start child"]);
    wait_status(&guests, vm, "child", "NORMAL (GREEN)").await;
    let parent = ok(&guests, vm, "q app parent").await;
    assert!(parent.contains(" nooftimes_restarted=1\n"), "{parent}");

    // A monitor that hangs is killed (its process group) at its timeout.
    let hang = script(&scripts, "hang-mon", "echo $$ > \"$KSYS_VMM_ROOT/hang.pid\"; exec sleep 600");
    let noop = script(&scripts, "noop", "exit 0");
    let attrs = with_noop(&hang, &noop, "monitor_period=3 monitor_timeout=1 monitor_failure_threshold=5");
    ok(&guests, vm, &format!("-s add app hang {attrs}")).await;
    wait_status(&guests, vm, "hang", "FAILING (YELLOW)").await;
    let pid: i32 = std::fs::read_to_string(root.join("hang.pid")).unwrap().trim().parse().unwrap();
    wait_until("the hung monitor gone", Duration::from_secs(5), || async {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;

    // A missing script: ABNORMAL at once.
    let attrs = with_noop(Path::new("/nonexistent/mon"), &noop, "");
    ok(&guests, vm, &format!("-s add app ghost {attrs}")).await;
    wait_status(&guests, vm, "ghost", "ABNORMAL (RED)").await;

    // Always failing, one restart allowed: FAILURE.
    let fails = script(&scripts, "fails", "exit 1");
    let attrs =
        with_noop(&fails, &noop, "monitor_period=2 monitor_timeout=1 monitor_failure_threshold=1 max_restart=1");
    ok(&guests, vm, &format!("-s add app flaky {attrs}")).await;
    wait_status(&guests, vm, "flaky", "FAILURE (RED)").await;

    // The agent restarts: the configuration is still there and monitored again.
    assert_eq!(ok(&guests, vm, "stop vmm").await, "0513-044 The ksys_vmm Subsystem was requested to stop.\n");
    assert!(ok(&guests, vm, "status").await.contains("inoperative"));
    let started = ok(&guests, vm, "start vmm").await;
    assert!(started.starts_with("0513-059 The ksys_vmm Subsystem has been started."), "{started}");
    wait_status(&guests, vm, "parent", "NORMAL (GREEN)").await;
    assert_eq!(status(&guests, vm, "ghost").await, "ABNORMAL (RED)");
    dc.stop();
}

/// Claim: bad `ksysvmmgr` input gets the seed-style error and a non-zero exit code, and the
/// VM's configuration file is left exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ksysvmmgr_input_is_refused_and_changes_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let (_dir, mut dc, guests, scripts) = cluster("apps-bad", 30100, 1).await;
    let vm = "vm-1-1";
    for i in 1..=16 {
        ok(&guests, vm, &format!("add app app{i} {}", app_scripts(&scripts, &format!("app{i}")))).await;
    }
    let config = guests.join(vm).join("var/ksys/config/HAMonitoring.toml");
    let before = std::fs::read_to_string(&config).unwrap();
    let cases = [
        ("", "KSYSVMMGR-002(ERROR): <ACTION> parameter is mandatory."),
        ("launch app app1", "KSYSVMMGR-003(ERROR)"),
        ("add widget w1", "KSYSVMMGR-004(ERROR)"),
        ("add app", "KSYSVMMGR-005(ERROR)"),
        ("modify app app1 colour=red", "KSYSVMMGR-010(ERROR)"),
        ("modify app app1 max_restart=1000", "KSYSVMMGR-012(ERROR)"),
        (
            "modify app app1 monitor_period=2 monitor_timeout=2",
            "KSYSVMMGR-057(ERROR): monitor_period value must be greater",
        ),
        ("modify app nosuch critical=yes", "KSYSVMMGR-020(ERROR)"),
        ("modify period=9", "KSYSVMMGR-012(ERROR)"),
        ("add dependency dependency_list=app1 dependency_type=start_sequence", "KSYSVMMGR-030(ERROR)"),
        (
            "add app app17 monitor_script=/a start_script=/b stop_script=/c",
            "Maximum count of \"16\" applications reached.",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = ksysvmmgr(&guests, vm, args).await;
        assert_ne!(code, 0, "ksysvmmgr {args} succeeded: {out}");
        assert!(err.contains(expected), "ksysvmmgr {args}: {err}");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), before, "ksysvmmgr {args} changed the configuration");
    }
    let listed = ok(&guests, vm, "q app").await;
    assert_eq!(listed.matches("Application name=").count(), 16);
    dc.stop();
}

async fn query_app(dc: &Datacenter, vm: &str) -> Vec<pb::AppView> {
    let Ok(mut admin) = dc.admin() else { return Vec::new() };
    admin
        .query_app(pb::QueryRequest { name: vm.into(), ..Default::default() })
        .await
        .map(|l| l.apps)
        .unwrap_or_default()
}

async fn app_view(dc: &Datacenter, vm: &str, app: &str, status: pb::AppStatus) -> Option<pb::AppView> {
    query_app(dc, vm).await.into_iter().find(|a| a.name == app && a.status() == status)
}

fn restarts_in_place(events: &[pb::EventView], vm: &str) -> usize {
    events.iter().filter(|e| e.name == "RESTART_STARTED" && e.subject == vm && e.message.contains("same host")).count()
}

/// Claim: the controller learns a VM's applications through the host monitors (doorbell,
/// PUT/QUERY/GET/ACK) and shows them in `ksysmgr query app`; a non-critical app in FAILURE only
/// raises an event; a critical one that keeps failing makes the controller restart its VM on
/// the same host 3 times, then on another host, until the app is NORMAL again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_app_failure_restarts_its_vm_in_place_then_on_another_host() {
    let _serial = one_cluster_at_a_time().await;
    let (_dir, mut dc, guests, scripts) = cluster("apps-escalation", 30200, 2).await;
    let vm = "vm-1-1";
    let root = guests.join(vm);
    let noop = script(&scripts, "noop", "exit 0");
    let quick = "monitor_period=2 monitor_timeout=1 monitor_failure_threshold=1 max_restart=1";

    // Not critical, always failing: RED in query app and an event; the VM stays.
    let fails = script(&scripts, "fails", "exit 1");
    ok(&guests, vm, &format!("-s add app web {}", with_noop(&fails, &noop, quick))).await;
    let web = wait_until("web RED in ksysmgr query app", Duration::from_secs(40), || {
        app_view(&dc, vm, "web", pb::AppStatus::Red)
    })
    .await;
    assert_eq!((web.vm.as_str(), web.critical, web.max_restart, web.monitoring), (vm, false, 1, true));
    assert_eq!(web.state(), pb::AppState::Failure);
    let event = wait_until("PERMANENT_APP_FAILURE for web", Duration::from_secs(10), || async {
        events(&dc).await.into_iter().find(|e| e.name == "PERMANENT_APP_FAILURE" && e.message.contains("web"))
    })
    .await;
    assert!(event.message.contains("critical: no"), "{event:?}");
    let (code, out, _) = run_ksysmgr(&dc, &format!("query app {vm}")).await;
    assert_eq!(code, 0);
    assert!(out.contains(&format!("{:<33}web\n{:<33}RED\n", "Name:", "Status:")), "{out}");
    let (code, _, err) = run_ksysmgr(&dc, "modify app web critical=yes").await;
    assert_ne!(code, 0);
    assert!(err.contains("only in the VM, with ksysvmmgr"), "{err}");
    let (code, _, err) = run_ksysmgr(&dc, "query app no-such-vm").await;
    assert!(code != 0 && err.contains("VM no-such-vm is not known"), "{err}");
    ok(&guests, vm, "-s delete app web").await;
    wait_until("web gone from query app", Duration::from_secs(10), || async {
        query_app(&dc, vm).await.iter().all(|a| a.name != "web").then_some(())
    })
    .await;
    assert_eq!(restarts_in_place(&events(&dc).await, vm), 0, "a non-critical app never restarts its VM");
    assert_eq!(running_vms(&dc).await.get(vm).map(Vec::as_slice), Some(&["host-1".to_string()][..]));

    // Critical, broken for good (the marker is in the VM's own files, so it follows the VM).
    std::fs::write(root.join("db.broken"), "").unwrap();
    let mon = script(&scripts, "db-mon", "! test -f \"$KSYS_VMM_ROOT/db.broken\"");
    ok(&guests, vm, &format!("-s add app db critical=yes {}", with_noop(&mon, &noop, quick))).await;
    wait_until("vm-1-1 moved to host-2", Duration::from_secs(120), || async {
        running_vms(&dc).await.get(vm).filter(|hosts| hosts.as_slice() == ["host-2"]).map(drop)
    })
    .await;
    let all = events(&dc).await;
    let moved = all.iter().position(|e| e.name == "RESTART_STARTED" && e.message.contains("from host-1 to host-2"));
    let moved = moved.expect("a restart from host-1 to host-2");
    assert_eq!(restarts_in_place(&all[..moved], vm), 3, "three restarts on host-1 first: {all:#?}");
    assert!(all[moved].message.contains("critical application failure"), "{:?}", all[moved]);

    // Repaired: NORMAL again, and the count starts over.
    std::fs::remove_file(root.join("db.broken")).unwrap();
    wait_until("db GREEN", Duration::from_secs(60), || app_view(&dc, vm, "db", pb::AppStatus::Green)).await;
    let view = wait_until("VM_restart_count 0", Duration::from_secs(10), || async {
        vms(&dc).await.into_iter().find(|v| v.name == vm && v.vm_restart_count == 0)
    })
    .await;
    assert_eq!(view.vm_status(), pb::VmStatus::NoOperationInProgress);
    dc.stop();
}
