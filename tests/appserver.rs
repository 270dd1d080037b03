//! The guest application server (seed 002's cmappserver role) and its host-side manager
//! (`cmappmgr`) on a live datacenter: commands launched in the VM over TLS, polled, their exit
//! codes returned; at most 30 at once; the manager relaunches its command in a new session when
//! the server restarts.
mod common;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;
use vmrm::agents::vm_agent::guest::GuestDir;
use vmrm::cli::appmgr::connect;
use vmrm::launcher::Topology;
use vmrm::pb::{LaunchRequest, PollRequest, ProcessStatus, app_server_client::AppServerClient};

fn launch(command: &[&str]) -> LaunchRequest {
    LaunchRequest { command: command.iter().map(|s| s.to_string()).collect() }
}

/// The process's status once it ended.
async fn ended(mut client: AppServerClient<Channel>, id: u64) -> Option<ProcessStatus> {
    Some(client.poll(PollRequest { id }).await.ok()?.into_inner()).filter(|s| !s.running)
}

fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Claim: the manager gets a command's exit code; the server watches 30 processes and refuses
/// the 31st with a clear error until one ends; bad requests are refused; only TLS with the VM's
/// own certificate gets in; when the agent restarts, the manager launches its command again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_application_server_launches_polls_and_limits_over_tls() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("appserver");
    let topology = Topology::uniform(30300, 1, 1, dir.path().to_path_buf());
    let guests = topology.guests_dir();
    let mut dc = start(topology).await;
    let vm = "vm-1-1";
    let guest = GuestDir::of(&guests, vm).expect("a VM name");
    let mut client = wait_until("the application server", Duration::from_secs(10), || async {
        connect(&guest, vm, Duration::from_secs(2), dc.security()).await.ok()
    })
    .await;

    // The manager: launch, poll, exit with the command's code.
    let admin = vmrm::transport::tls::TlsFiles::in_dir(&dc.topology.certs_dir(), vmrm::launcher::certs::ADMIN);
    let manager = || {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cmappmgr"));
        cmd.args(["--vm", vm, "--guests"]).arg(&guests).args(["--poll-ms", "100"]);
        cmd.arg("--ca").arg(&admin.ca).arg("--cert").arg(&admin.cert).arg("--key").arg(&admin.key);
        cmd
    };
    let out = manager().args(["--", "/bin/sh", "-c", "exit 7"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    let out = manager().output().await.unwrap();
    assert_ne!(out.status.code(), Some(0), "a manager without a command fails");

    // Bad requests change nothing.
    assert_eq!(client.launch(launch(&[])).await.unwrap_err().code(), Code::InvalidArgument);
    let missing = client.launch(launch(&["/nonexistent/app"])).await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("cannot run /nonexistent/app in VM vm-1-1"), "{}", missing.message());
    assert_eq!(client.poll(PollRequest { id: 9999 }).await.unwrap_err().code(), Code::NotFound);

    // 30 processes at once; the 31st is refused until one ends.
    let mut launched = Vec::new();
    for _ in 0..30 {
        launched.push(client.launch(launch(&["sleep", "60"])).await.expect("launched").into_inner());
    }
    let refused = client.launch(launch(&["sleep", "60"])).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("already watches 30 processes"), "{}", refused.message());
    let first = &launched[0];
    assert!(client.poll(PollRequest { id: first.id }).await.unwrap().into_inner().running);
    // The processes are the test's own; one that already ended is no error.
    let sigkill = |pid: u32| _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    sigkill(first.pid);
    let status =
        wait_until("the killed process reported", Duration::from_secs(10), || ended(client.clone(), first.id)).await;
    assert_eq!(status.exit_code, 128 + Signal::SIGKILL as i32);
    launched.push(client.launch(launch(&["sleep", "60"])).await.expect("room again after one ended").into_inner());
    for p in &launched {
        sigkill(p.pid);
    }
    for p in &launched {
        wait_until("every process ended", Duration::from_secs(10), || ended(client.clone(), p.id)).await;
    }

    // TLS only, and only with the VM's certificate.
    let endpoint = std::fs::read_to_string(guest.appserver_endpoint_path()).unwrap();
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}")).unwrap().connect().await;
    if let Ok(channel) = plain {
        assert!(AppServerClient::new(channel).launch(launch(&["true"])).await.is_err(), "plain text got in");
    }
    let stranger = rcgen::generate_simple_self_signed(vec![vm.to_string()]).unwrap().cert.pem();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(stranger))
        .domain_name(vm);
    let other =
        tonic::transport::Endpoint::from_shared(format!("https://{endpoint}")).unwrap().tls_config(tls).unwrap();
    assert!(other.connect().await.is_err(), "a server with another certificate was trusted");
    // Only a manager with an administrator's certificate of the cluster gets a command run.
    let monitor = dc.security_of(vmrm::launcher::certs::MONITOR).unwrap();
    let mut watcher = connect(&guest, vm, Duration::from_secs(2), &monitor).await.expect("a TLS session");
    let refused = watcher.launch(launch(&["true"])).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let nobody = connect(&guest, vm, Duration::from_secs(2), &vmrm::transport::Security::Plaintext).await;
    let refused = nobody.expect("a TLS session without a certificate").launch(launch(&["true"])).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // The agent restarts: its processes die with the old session; the manager launches again.
    let log = guest.root().join("mgr.pids");
    let mut watched = manager()
        .args(["--", "/bin/sh", "-c", "echo $$ >> \"$KSYS_VMM_ROOT/mgr.pids\"; exec sleep 600"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until("the command launched", Duration::from_secs(10), || async { (pids(&log).len() == 1).then_some(()) })
        .await;
    dc.inject_fault("host-1", vm, "stop-agent").await.expect("agent stopped");
    tokio::time::sleep(Duration::from_millis(500)).await;
    dc.inject_fault("host-1", vm, "start-agent").await.expect("agent started");
    wait_until("the command launched again", Duration::from_secs(20), || async {
        (pids(&log).len() == 2).then_some(())
    })
    .await;
    let first_pid = pids(&log)[0];
    assert!(!Path::new(&format!("/proc/{first_pid}")).exists(), "the old session's process still runs");
    assert!(watched.try_wait().unwrap().is_none(), "the manager kept watching");
    watched.kill().await.unwrap();
    dc.stop();
}
