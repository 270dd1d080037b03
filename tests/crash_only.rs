//! Crash-only nodes: a node whose actor panics does not linger half-dead — the process ends
//! with an error status and its log names the panic and the version.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;
use vmrm::transport::Security;

/// A lone server unit's node (no HSDB, no VIOS): enough to have an actor panic. It serves
/// plaintext, chosen explicitly (the insecure mode works as before).
fn lone_unit_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let config = format!(
        r#"name = "lone-su"
listen = "127.0.0.1:{port}"
data_dir = "{data}"
profile = "fast"
insecure = true

[su]
host = "host-1"
cpu = 4
memory_mb = 1024
san = "127.0.0.1:1"
guests = "{guests}"
max_definitions = 10
fault_drills = true

[[su.vios]]
name = "host-1-vios-a"
endpoint = "127.0.0.1:1"

[[su.vios]]
name = "host-1-vios-b"
endpoint = "127.0.0.1:1"
"#,
        data = dir.join("data").display(),
        guests = dir.join("guests").display(),
    );
    let path = dir.join("lone-su.toml");
    std::fs::write(&path, config).expect("config written");
    path
}

/// A panic in the server unit's actor aborts its node: exit status not success, the panic and
/// the version in its output.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_actor_panics_exits_non_zero() {
    let _one = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("crash-only");
    let port = 26900;
    let endpoint = format!("127.0.0.1:{port}");
    let mut node = Command::new(common::vmrmd())
        .arg("--config")
        .arg(lone_unit_config(dir.path(), port))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmrmd starts");
    common::wait_until("the node to serve", Duration::from_secs(30), || async {
        vmrm::launcher::serving(&endpoint, &Security::Plaintext).await.then_some(())
    })
    .await;

    let injected = vmrm::launcher::inject_fault(&endpoint, "", "panic", &Security::Plaintext).await;
    assert!(injected.is_err(), "a panicking unit cannot answer: {injected:?}");
    let status = common::wait_until("the node to exit", Duration::from_secs(20), || {
        let exited = node.try_wait().expect("wait on the node");
        async move { exited }
    })
    .await;
    assert!(!status.success(), "a node whose actor panicked must exit with an error: {status:?}");

    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut node.stderr.take().expect("stderr piped"), &mut stderr).expect("stderr read");
    let version = env!("CARGO_PKG_VERSION");
    assert!(stderr.contains(&format!("vmrmd {version} panicked, aborting")), "{stderr}");
    assert!(stderr.contains("unit fault injected on host host-1: panic"), "{stderr}");
}
