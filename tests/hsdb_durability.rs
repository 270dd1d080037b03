//! The HSDB as real member processes (the three controllers of a datacenter with no hosts):
//! acknowledged writes survive SIGKILL of every member at once, histories stay linearizable
//! while members are killed and paused, and a damaged data directory is refused with a clear
//! message instead of being silently reset.
mod common;

use common::registers::{History, run_client};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vmrm::hsdb::{HsdbAccess, RemoteHsdb};
use vmrm::launcher::{Datacenter, Topology};

/// Three controller/HSDB members and nothing else.
async fn members(base_port: u16, dir: &std::path::Path) -> Datacenter {
    let mut topology = Topology::uniform(base_port, 0, 0, dir.to_path_buf());
    topology.hmcs = 0;
    Datacenter::start(topology, common::vmrmd()).await.expect("members start")
}

/// A client of one member process (it forwards to the DBN when it is not the DBN).
fn member(dc: &Datacenter, i: usize) -> RemoteHsdb {
    let endpoint = dc.topology.controller_endpoints()[i].clone();
    RemoteHsdb::new(vec![endpoint], common::node_pool(dc, Duration::from_millis(300)), Duration::from_secs(1))
}

/// The name of the member that is DBN, as the members themselves report it.
async fn leader(dc: &Datacenter) -> String {
    format!("ctl-{}", common::members::dbn_status(dc).await.node_id)
}

/// A client of whichever member answers.
fn any_member(dc: &Datacenter) -> RemoteHsdb {
    let pool = common::node_pool(dc, Duration::from_millis(300));
    RemoteHsdb::new(dc.topology.controller_endpoints(), pool, Duration::from_secs(1))
}

fn start_clients(dc: &Datacenter, history: &Arc<History>, until: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    let clients: Vec<RemoteHsdb> = (0..3).map(|i| member(dc, i)).collect();
    (1..=4)
        .map(|id| {
            let (clients, history) = (clients.clone(), history.clone());
            tokio::spawn(async move { run_client(&history, id, until, |choice| clients[choice % 3].clone()).await })
        })
        .collect()
}

/// Waits for the clients, reads every register once more and checks the whole history.
async fn judge(
    dc: &Datacenter,
    history: &History,
    clients: Vec<tokio::task::JoinHandle<()>>,
    writes: usize,
    reads: usize,
) {
    for c in clients {
        c.await.expect("client task");
    }
    history.read_every_key(&any_member(dc)).await;
    history.assert_linearizable(writes, reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_every_member_mid_write() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-sigkill");
    let mut dc = members(25000, dir.path()).await;
    leader(&dc).await;
    let history = Arc::new(History::default());
    let clients = start_clients(&dc, &history, Instant::now() + Duration::from_secs(3));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    for name in ["ctl-1", "ctl-2", "ctl-3"] {
        dc.kill(name);
    }
    for name in ["ctl-1", "ctl-2", "ctl-3"] {
        dc.restart(name).await.expect("member restarts from its data directory");
    }
    leader(&dc).await;
    judge(&dc, &history, clients, 20, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_members_are_killed_and_paused() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-nemesis");
    let mut dc = members(25100, dir.path()).await;
    leader(&dc).await;
    let history = Arc::new(History::default());
    let step = Duration::from_millis(1500);
    let clients = start_clients(&dc, &history, Instant::now() + step * 8);

    for round in 0..4 {
        let dbn = leader(&dc).await;
        let follower = ["ctl-1", "ctl-2", "ctl-3"].into_iter().find(|n| *n != dbn).expect("a follower").to_string();
        let victim = if round % 2 == 0 { dbn } else { follower };
        let paused = round >= 2;
        match paused {
            true => dc.pause(&victim),
            false => dc.kill(&victim),
        }
        tokio::time::sleep(step).await;
        match paused {
            true => dc.resume(&victim),
            false => dc.restart(&victim).await.expect("member restarts"),
        }
        tokio::time::sleep(step).await;
    }
    judge(&dc, &history, clients, 40, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_directory_is_refused_with_a_clear_message() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-corrupt");
    let mut dc = members(25200, dir.path()).await;
    leader(&dc).await;
    let history = History::default();
    for v in 1..=20 {
        let op = history.write(&member(&dc, 0), "reg-0", v).await.expect("a write");
        assert!(op.completed_at.is_some(), "write {v} acknowledged");
    }
    dc.kill("ctl-2");
    let data = dir.path().join("ctl-2").join("hsdb");
    common::damage_sled_directory(&data);
    let err = dc.restart("ctl-2").await.expect_err("a damaged member must refuse to start");
    let log = dc.log_tail("ctl-2", 5);
    assert!(log.contains("refusing to start"), "the refusal must say why: {err}\n{log}");
    assert!(log.contains(&data.display().to_string()), "the refusal must name the directory: {log}");
}

/// An acknowledged write is on the disk, not only in the page cache: while a member leads, every
/// write acknowledged one after another costs at least one `fdatasync` of sled's log file
/// (sled's own flush is `sync_file_range`, which a power loss can undo). Counted with strace
/// attached to the DBN's process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_was_synced_to_the_disk() {
    const WRITES: usize = 20;
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-fsync");
    let dc = members(25300, dir.path()).await;
    let dbn = leader(&dc).await;
    let pid = dc.pid(&dbn).expect("the DBN runs");
    let trace = dir.path().join("strace.out");
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", "trace=fdatasync,fsync", "-o"])
        .arg(&trace)
        .args(["-p", &pid.to_string()])
        .spawn()
        .expect("strace runs (Debian package strace; .ci/run installs it)");
    // strace writes nothing until it has attached; a sync of the idle member proves it is on.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let history = History::default();
    let dbn_index = dbn.trim_start_matches("ctl-").parse::<usize>().unwrap() - 1;
    for v in 1..=WRITES as u64 {
        let op = history.write(&member(&dc, dbn_index), "reg-0", v).await.expect("a write");
        assert!(op.completed_at.is_some(), "write {v} acknowledged");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(strace.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    strace.wait().expect("strace detaches");
    let calls = std::fs::read_to_string(&trace).expect("strace's output");
    let log_syncs = calls.lines().filter(|l| l.contains("fdatasync(") && l.contains("/hsdb/db>")).count();
    assert!(log_syncs >= WRITES, "{WRITES} acknowledged writes, {log_syncs} fdatasync of the log file:\n{calls}");
}

/// etcd's NOSPACE, here: a member at its quota raises the alarm — its HSDB service turns
/// NOT_SERVING, writes are refused with RESOURCE_EXHAUSTED while deletions still pass, and the
/// active controller raises an HSDB_NOSPACE event — instead of writing on until a sled write
/// fails inside Raft and stops the member with nothing said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_at_its_quota_raises_the_nospace_alarm() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-nospace");
    let mut topology = Topology::uniform(25700, 0, 0, dir.path().to_path_buf());
    topology.hmcs = 0;
    topology.hsdb_quota_bytes = 16 << 20;
    let dc = Datacenter::start(topology, common::vmrmd()).await.expect("members start");
    leader(&dc).await;
    let hsdb = any_member(&dc);
    let big = |i: u64| {
        let row =
            vmrm::domain::SuAliveRecord { host: format!("big-{i}"), incarnation: "x".repeat(400 << 10), at_ms: 0 };
        vmrm::hsdb::Command::Put {
            table: vmrm::hsdb::Table::SuAlive,
            key: row.host.clone(),
            value: serde_json::to_value(row).unwrap(),
        }
    };
    let mut refused = None;
    for i in 0..120 {
        match hsdb.write(big(i)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the quota is reached within 120 writes of 400 KiB");
    assert!(
        matches!(refused, vmrm::error::VmrmError::ResourceExhausted(ref m) if m.contains("NOSPACE alarm")),
        "{refused}"
    );
    hsdb.write(vmrm::hsdb::Command::Delete { table: vmrm::hsdb::Table::SuAlive, key: "big-0".into() })
        .await
        .expect("a deletion frees space and is taken");
    let dbn = dc.topology.controller_endpoints()
        [leader(&dc).await.trim_start_matches("ctl-").parse::<usize>().unwrap() - 1]
        .clone();
    let channel = dc.channel(&dbn).unwrap();
    let check = tonic_health::pb::HealthCheckRequest { service: "vmrm.v1.Hsdb".into() };
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    common::wait_until("the DBN's HSDB service NOT_SERVING", Duration::from_secs(5), || {
        let (mut health, check) = (health.clone(), check.clone());
        async move {
            let status = health.check(check).await.ok()?.into_inner().status;
            (status == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32).then_some(())
        }
    })
    .await;
    common::wait_until("an HSDB_NOSPACE event", Duration::from_secs(5), || async {
        common::events(&dc).await.into_iter().find(|e| e.name == "HSDB_NOSPACE")
    })
    .await;
}
