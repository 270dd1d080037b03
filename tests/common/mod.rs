//! Shared helpers of the multi-process integration tests: a datacenter of real `vmrmd`
//! processes per test (its own port range and temp dir), and `wait_until` instead of sleeps.
#![allow(dead_code)]
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::transport::tls::{Principal, Role};
use vmrm::transport::{ChannelPool, Security};

pub mod members;
pub mod proxy;
pub mod registers;

/// Cluster tests share two cores: they run one at a time.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for the whole of a test that starts a cluster.
pub async fn one_cluster_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().await
}

pub fn vmrmd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vmrmd"))
}

/// Starts the topology's processes and configures the cluster (cluster, HMCs, hosts, host group, discovery).
pub async fn start(topology: Topology) -> Datacenter {
    let dc = Datacenter::start(topology, vmrmd()).await.expect("datacenter starts");
    let lines = dc.setup().await.expect("setup succeeds");
    let discovered = lines.iter().find(|l| l.contains("managed VMs have been successfully discovered"));
    assert!(discovered.is_some(), "discovery summary missing: {lines:#?}");
    // add ksyscluster … sync=yes says what it found, and starts nothing it does not start.
    let verified =
        format!("Ksyscluster has been verified: {} HSDB voters agreed on its record", dc.topology.controllers);
    assert!(lines.contains(&verified) && !lines.iter().any(|l| l.contains("Starting KSYS")), "{lines:#?}");
    dc
}

/// Polls `check` until it returns `Some`, or fails the test naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < give_up, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn vms(dc: &Datacenter) -> Vec<pb::VmView> {
    let mut admin = dc.admin().expect("admin client");
    admin.query_vm(pb::QueryRequest::default()).await.map(|l| l.vms).unwrap_or_default()
}

/// The SAN's own record for one disk.
pub async fn san_record(dc: &Datacenter, disk: &str) -> Vec<pb::SanOperation> {
    let channel = dc.channel(&dc.topology.san_endpoint()).unwrap();
    let req = pb::RecordRequest { disk: disk.to_string() };
    pb::san_client::SanClient::new(channel).record(req).await.expect("SAN record").into_inner().operations
}

/// The test harness as a node of every role, certified by the cluster's CA: for the calls only
/// nodes make (HSDB writes, Raft messages, SAN reservations) that tests make directly.
pub fn node_identity(dc: &Datacenter) -> Security {
    let mut who = Principal::anonymous();
    who.name = "harness".into();
    who.roles = [Role::Controller, Role::Hsdb, Role::Hmc, Role::ServerUnit, Role::Vios, Role::San].into();
    dc.issue(&who).expect("the harness's certificate")
}

/// Channels of the harness as a node (see [`node_identity`]).
pub fn node_pool(dc: &Datacenter, connect_timeout: Duration) -> ChannelPool {
    ChannelPool::new(connect_timeout, node_identity(dc))
}

pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("vmrm-{name}-")).tempdir().expect("temp dir")
}

/// Overwrites the head of a sled database file, as a failing disk might: sled then recovers
/// whatever prefix it can still read, which is nothing.
pub fn damage_sled_directory(dir: &Path) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).open(dir.join("db")).expect("sled db file");
    file.write_all(&[0xAB; 4096]).expect("overwrite");
    file.sync_all().expect("sync");
}

/// The `Modify` request ksysmgr builds from `modify CLASS [NAME] attribute=value …`.
pub fn modify(class: &str, name: &str, attrs: &[(&str, &str)]) -> pb::ModifyRequest {
    let mut words: Vec<String> = vec!["modify".into(), class.into()];
    words.extend((!name.is_empty()).then(|| name.to_string()));
    words.extend(attrs.iter().map(|(k, v)| format!("{k}={v}")));
    match vmrm::cli::parse(&words) {
        Ok(vmrm::cli::KsysCommand::Modify(req)) => req,
        other => panic!("{words:?} is not a modify: {other:?}"),
    }
}

pub async fn events(dc: &Datacenter) -> Vec<pb::EventView> {
    events_at(dc, dc.topology.controller_endpoints()).await
}

/// The event log through these controllers only (leave out one that is paused: a call to it
/// would wait for its deadline).
pub async fn events_at(dc: &Datacenter, endpoints: Vec<String>) -> Vec<pb::EventView> {
    let mut admin = vmrm::transport::AdminClient::new(endpoints, dc.security().clone()).expect("admin client");
    admin
        .query_event(pb::EventQuery { limit: Some(1000), ..Default::default() })
        .await
        .map(|l| l.events)
        .unwrap_or_default()
}

/// Ground truth from the hypervisors: VM → the hosts whose SU runs it.
pub async fn running_vms(dc: &Datacenter) -> std::collections::BTreeMap<String, Vec<String>> {
    vmrm::launcher::running_vms(&dc.topology, str::to_string, dc.security()).await
}

/// Checks a disk's SAN record: the accepted writes come from one host after another, never
/// back and forth — a VM restarted twice, or running on two hosts, would show a key twice —
/// and the guest's log on it has no gap and no repeat: every run of accepted writes starts at
/// the block after the last one, whichever copy of the VM wrote it.
pub fn assert_single_writer(disk: &str, record: &[pb::SanOperation]) {
    let mut runs: Vec<u64> = Vec::new();
    for op in record.iter().filter(|op| op.kind == "WRITE") {
        if runs.last() != Some(&op.key) {
            assert!(!runs.contains(&op.key), "{disk}: key {:#x} wrote again after another host: {record:#?}", op.key);
            runs.push(op.key);
        }
    }
    let Some(first) = record.iter().find(|op| op.kind == "WRITE") else { return };
    assert_eq!(first.first_block, 1, "{disk}: the log does not start at block 1: {record:#?}");
    let breaks = vmrm::testing::chaos::log_breaks(&first.disk, record);
    assert!(breaks.is_empty(), "{breaks:#?}\n{record:#?}");
}

/// What node `name` of `dc` serves at `GET /metrics` (its `metrics_listen`), as text.
pub async fn scrape(dc: &Datacenter, name: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = dc.topology.node_configs().into_iter().find(|c| c.name == name).expect("a node of the datacenter");
    let addr = config.metrics_listen.expect("the datacenter's nodes serve metrics");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("the metrics endpoint answers");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request sent");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("reply read");
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    body.to_string()
}

/// The value of sample `sample` (name and labels, as printed) in scraped `metrics`.
pub fn sample(metrics: &str, sample: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The active controller's node name, by the metrics: the one whose HSDB member is the DBN.
pub async fn active_controller(dc: &Datacenter) -> String {
    wait_until("a DBN in the metrics", Duration::from_secs(10), || async {
        for i in 1..=dc.topology.controllers {
            let name = format!("ctl-{i}");
            if sample(&scrape(dc, &name).await, "vmrm_hsdb_leader") == Some(1.0) {
                return Some(name);
            }
        }
        None
    })
    .await
}

/// `ksysmgr` as the datacenter's administrator, at its controllers, with `args`.
pub fn ksysmgr_as_admin(dc: &Datacenter, args: &[&str]) -> std::process::Command {
    let files = vmrm::transport::tls::TlsFiles::in_dir(&dc.topology.certs_dir(), vmrm::launcher::certs::ADMIN);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ksysmgr"));
    cmd.env("VMRM_CA", files.ca)
        .env("VMRM_CERT", files.cert)
        .env("VMRM_KEY", files.key)
        .arg("--endpoints")
        .arg(dc.topology.controller_endpoints().join(","))
        .args(args);
    cmd
}
