//! The web dashboard in a real browser: headless Chromium, driven through WebDriver by
//! `tests/fixtures/dashboard_browser.py`, logs in with the administrator's certificate files,
//! shows the topology, follows a host kill (the host's VMs red, then on their new hosts),
//! restarts a VM from the page; the monitor sees no action buttons and a forged action is
//! refused. Its screenshots are kept in `target/tmp/dashboard-screenshots/`.
mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vmrm::launcher::Topology;
use vmrm::launcher::topology::DASHBOARD_PORT_OFFSET;

const BASE_PORT: u16 = 18000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_a_host_failure_and_acts_for_its_user_only() {
    let _one = one_cluster_at_a_time().await;
    let dir = temp_dir("dashboard");
    let mut dc = start(Topology::uniform(BASE_PORT, 3, 2, dir.path().to_path_buf())).await;
    let active = active_controller(&dc).await;
    let i: u16 = active.trim_start_matches("ctl-").parse().unwrap();
    let url = format!("https://127.0.0.1:{}/", BASE_PORT + i - DASHBOARD_PORT_OFFSET);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let before = vms(&dc).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dashboard_browser.py");
    let certs = dc.topology.certs_dir();
    let mut browser = tokio::process::Command::new("/usr/bin/python3")
        .args([script, &url, certs.to_str().unwrap(), shots.to_str().unwrap(), "host-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with Debian's python3-selenium, chromium and chromium-driver drives the browser");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await.expect("the browser answers in time")
    };
    let ready = next(&mut lines).await.unwrap().unwrap_or_default();
    assert_eq!(ready, "ready", "the browser did not show the topology (screenshots in {})", shots.display());

    dc.kill_host("host-1");
    browser.stdin.take().unwrap().write_all(b"killed\n").await.unwrap();
    let last = next(&mut lines).await.unwrap().unwrap_or_default();
    let seen: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert!(seen.get("error").is_none(), "the browser failed (screenshots in {}): {seen:#}", shots.display());

    // Before a login only the page and the login are served; a bad login is refused.
    assert_eq!(seen["anonymous_topology"]["status"], 401, "{seen:#}");
    assert_eq!(seen["bad_challenge"]["status"], 401, "{seen:#}");
    assert!(seen["bad_challenge"]["error"].as_str().unwrap().contains("challenge"), "{seen:#}");
    assert!(seen["not_json"]["status"].as_u64().unwrap() / 100 == 4, "{seen:#}");

    // The killed host's VMs were red while they restarted, and are shown on their new hosts.
    let victims: Vec<&vmrm::pb::VmView> = before.iter().filter(|v| v.host == "host-1").collect();
    assert_eq!(victims.len(), 2);
    for vm in &victims {
        let colours = &seen["colours"][&vm.name];
        assert!(colours.as_array().unwrap().iter().any(|c| c == "state-restart"), "{}: {colours}", vm.name);
        let shown = seen["after"][&vm.name][0].as_str().unwrap();
        assert_ne!(shown, "host-1", "{} still shown on host-1", vm.name);
    }
    let now = vms(&dc).await;
    for vm in &victims {
        let running = now.iter().find(|v| v.name == vm.name).unwrap();
        assert_eq!(seen["after"][&vm.name][0].as_str().unwrap(), running.host, "the page shows where {} runs", vm.name);
    }

    // The restart from the page ran: the VM's lock moved on and it has a last restart.
    let target = seen["restarted"].as_str().unwrap();
    assert_eq!(seen["restart_failed"], false, "{seen:#}");
    let (was, is) = (before.iter().find(|v| v.name == target).unwrap(), now.iter().find(|v| v.name == target).unwrap());
    assert!(is.epoch > was.epoch && is.restart.is_some(), "{target} was not restarted: {is:?} ({seen:#})");
    assert_eq!(seen["headerless"]["status"], 403, "{seen:#}");

    // The monitor: no action buttons, and the API refuses the action anyway.
    assert_eq!(seen["monitor_buttons"], serde_json::json!([]), "{seen:#}");
    assert_eq!(seen["forged"]["status"], 403, "{seen:#}");
    assert_eq!(seen["forged"]["code"], "PermissionDenied", "{seen:#}");
    let status = browser.wait().await.unwrap();
    assert!(status.success(), "the browser script ended with {status}");
    assert!(shots.join("3-after-host-kill.png").exists());
}
