//! Hostile input against a running cluster, over real gRPC: every service and the config
//! files get malformed, oversized, out-of-range and forged input — poison rows, absurd Raft
//! terms, fencing tokens nobody issued, names that are paths. Each case asserts its specific
//! refusal; afterwards the cluster still recovers a killed host, every VM once, nothing lost.
mod common;

use common::*;
use std::time::Duration;
use tonic::Code;
use vmrm::domain::identity::{disk_for_vm, uuid_for};
use vmrm::hsdb::Command;
use vmrm::launcher::Topology;
use vmrm::pb;

/// The cases run so far, and those whose refusal was not the one expected.
#[derive(Default)]
struct Cases {
    run: Vec<String>,
    wrong: Vec<String>,
}

impl Cases {
    /// Checks that `result` is refused with `code` and a message holding `says`.
    fn refused<T: std::fmt::Debug>(&mut self, case: &str, result: Result<T, tonic::Status>, code: Code, says: &str) {
        self.run.push(case.to_string());
        match result {
            Ok(reply) => self.wrong.push(format!("{case}: accepted, answered {reply:?}")),
            Err(s) if s.code() != code || !s.message().contains(says) => {
                self.wrong.push(format!("{case}: {:?} `{}`, expected {code:?} saying `{says}`", s.code(), s.message()))
            }
            Err(_) => {}
        }
    }
}

fn channel(security: &vmrm::transport::Security, endpoint: &str) -> tonic::transport::Channel {
    vmrm::transport::channel::lazy_channel(endpoint, Duration::from_secs(1), security).expect("an endpoint")
}

fn definition(name: &str) -> pb::LparDefinition {
    pb::LparDefinition {
        name: name.into(),
        uuid: uuid_for("vm", name),
        cpu: 1,
        memory_mb: 64,
        disk: disk_for_vm(name),
        permanent_index: None,
        fence: 0,
        isolated: false,
        identities: Vec::new(),
    }
}

fn raft(json: serde_json::Value) -> pb::RaftPayload {
    pb::RaftPayload { data: json.to_string().into_bytes() }
}

fn command(c: &Command) -> pb::HsdbWrite {
    pb::HsdbWrite { command: serde_json::to_vec(c).unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_everywhere_and_harms_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("hostile");
    let mut dc = start(Topology::uniform(32100, 3, 2, dir.path().to_path_buf())).await;
    let node = node_identity(&dc);
    let mut cases = Cases::default();
    let ctl = dc.topology.controller_endpoints()[0].clone();
    let su = dc.topology.su_endpoint("host-2").expect("host-2");
    let vios = dc
        .topology
        .node_configs()
        .into_iter()
        .find(|n| n.name == "host-2-vios-a")
        .map(|n| n.endpoint().to_string())
        .expect("a VIOS");

    // ---- Admin ----
    let mut admin = pb::admin_client::AdminClient::new(channel(dc.security(), &ctl));
    let bad_vm = pb::RestartVmRequest { vm: "../vm-1-1".into(), host: String::new() };
    cases.refused(
        "admin: restart a path",
        admin.restart_vm(bad_vm).await,
        Code::InvalidArgument,
        "not a valid VM name",
    );
    let unknown = pb::RestartVmRequest { vm: "vm-9-9".into(), host: String::new() };
    cases.refused("admin: restart an unknown VM", admin.restart_vm(unknown).await, Code::NotFound, "vm-9-9");
    let long = pb::QueryRequest { name: "x".repeat(65), ..Default::default() };
    cases.refused("admin: a 65-byte name", admin.query_vm(long).await, Code::InvalidArgument, "not a valid VM name");
    let hmc = pb::AddHmcRequest {
        name: "hmc-x".into(),
        ip: "no where".into(),
        login: "a".into(),
        password: "b".into(),
        site: String::new(),
    };
    cases.refused("admin: an HMC at no address", admin.add_hmc(hmc).await, Code::InvalidArgument, "no where");
    let member = pb::AddHsdbNodeRequest { node_id: 0, endpoint: "127.0.0.1:1".into() };
    cases.refused("admin: HSDB member 0", admin.add_hsdb_node(member).await, Code::InvalidArgument, "");
    let mut modify = modify("host_group", "HG1", &[("restart_policy", "auto")]);
    modify.level = 99;
    cases.refused("admin: an unknown modify level", admin.modify(modify).await, Code::InvalidArgument, "");
    let query = pb::EventQuery { name: "/etc/passwd".into(), ..Default::default() };
    cases.refused("admin: an event filter that is a path", admin.query_event(query).await, Code::InvalidArgument, "");
    let watch = pb::MonjvWatch { name: "../m".into(), ..Default::default() };
    cases.refused("admin: a MONJV path", admin.watch_monjv(watch).await, Code::InvalidArgument, "");
    // Watches are bounded: with every place taken, one more is refused at once.
    let mut active = dc.admin().unwrap();
    let add = pb::MonjvChange {
        action: pb::ChangeAction::Add as i32,
        name: "JV.CAP".into(),
        vm: "vm-1-1".into(),
        password: "pw".into(),
        ..Default::default()
    };
    active.change_monjv(add).await.expect("a MONJV to watch");
    let watch = pb::MonjvWatch { name: "JV.CAP".into(), password: "pw".into(), from: 1, to: 3, timeout_ms: 60_000 };
    let case = "admin: one MONJV watch too many";
    let at = active.query_cluster(pb::QueryRequest::default()).await.unwrap().clusters[0].active_controller.clone();
    let watcher = pb::admin_client::AdminClient::new(channel(dc.security(), &at));
    let waiting: Vec<_> = (0..vmrm::controller::monjv::MAX_WATCHES)
        .map(|_| {
            let (mut watcher, watch) = (watcher.clone(), watch.clone());
            tokio::spawn(async move { watcher.watch_monjv(watch).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let one_more = tokio::time::timeout(Duration::from_secs(10), watcher.clone().watch_monjv(watch.clone()))
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("admitted: still waiting after 10 s")));
    // A watch that ended early (the burst once cost the DBN its leadership, and the watches
    // ended UNAVAILABLE) would have left its place to the one more: that is a failure too.
    let ended = waiting.iter().filter(|w| w.is_finished()).count();
    waiting.iter().for_each(|w| w.abort());
    match ended {
        0 => cases.refused(case, one_more, Code::ResourceExhausted, "watches are already waiting"),
        n => {
            cases.run.push(case.into());
            cases.wrong.push(format!("{case}: {n} of the watches at {at} ended early"));
        }
    }

    // ---- HSDB: the table API ----
    let mut hsdb = pb::hsdb_client::HsdbClient::new(channel(&node, &ctl));
    let poison = Command::Put { table: vmrm::hsdb::Table::Locked, key: "vm-1-1".into(), value: 42.into() };
    cases.refused("hsdb: a poison lock row", hsdb.write(command(&poison)).await, Code::InvalidArgument, "locked");
    let task = Command::Put { table: vmrm::hsdb::Table::RecoveryTask, key: "t".into(), value: "x".into() };
    cases.refused(
        "hsdb: a bad recovery task",
        hsdb.write(command(&task)).await,
        Code::InvalidArgument,
        "recovery_task",
    );
    let seq = Command::Put { table: vmrm::hsdb::Table::Event, key: u64::MAX.to_string(), value: 1.into() };
    cases.refused(
        "hsdb: an event at sequence u64::MAX",
        hsdb.write(command(&seq)).await,
        Code::InvalidArgument,
        "event",
    );
    let other = vmrm::domain::SuAliveRecord { host: "host-1".into(), incarnation: "i".into(), at_ms: 0 };
    let forged = Command::Put {
        table: vmrm::hsdb::Table::SuAlive,
        key: "host-2".into(),
        value: serde_json::to_value(other).unwrap(),
    };
    cases.refused(
        "hsdb: a row under another's key",
        hsdb.write(command(&forged)).await,
        Code::InvalidArgument,
        "host-1",
    );
    let batch = Command::Batch(vec![Command::Delete { table: vmrm::hsdb::Table::Vm, key: "x".into() }; 129]);
    cases.refused("hsdb: a batch of 129", hsdb.write(command(&batch)).await, Code::InvalidArgument, "128");
    let nested = Command::Batch(vec![Command::Batch(vec![])]);
    cases.refused("hsdb: a nested batch", hsdb.write(command(&nested)).await, Code::InvalidArgument, "batched");
    let garbage = pb::HsdbWrite { command: b"\xff\xfe".to_vec() };
    cases.refused("hsdb: a command that is not JSON", hsdb.write(garbage).await, Code::InvalidArgument, "malformed");
    let huge = pb::HsdbWrite { command: vec![b' '; 40 << 20] };
    cases.refused("hsdb: a 40 MiB message", hsdb.write(huge).await, Code::OutOfRange, "");
    let vios_cert = dc.security_of("host-2-vios-a").expect("a VIOS's certificate");
    let credentials = pb::HsdbRead { table: "hmc".into(), ..Default::default() };
    cases.refused(
        "hsdb: a VIOS reads the HMCs' credentials",
        pb::hsdb_client::HsdbClient::new(channel(&vios_cert, &ctl)).read(credentials).await,
        Code::PermissionDenied,
        "may not read table hmc",
    );
    let table = pb::HsdbRead { table: "../x".into(), ..Default::default() };
    cases.refused("hsdb: an unknown table", hsdb.read(table).await, Code::InvalidArgument, "unknown HSDB table");

    // ---- HSDB: Raft, on the members' peer port only ----
    let vote =
        serde_json::json!({"vote": {"leader_id": {"term": 1, "node_id": 9}, "committed": false}, "last_log_id": null});
    let on_api_port = pb::raft_peer_client::RaftPeerClient::new(channel(&node, &ctl)).vote(raft(vote)).await;
    cases.refused("raft: a vote on the shared port", on_api_port, Code::Unimplemented, "");
    let mut hsdb = pb::raft_peer_client::RaftPeerClient::new(channel(&node, &dc.topology.hsdb_members()[0].peer));
    let huge = pb::RaftPayload { data: vec![b' '; 40 << 20] };
    cases.refused("raft: a 40 MiB message", hsdb.append_entries(huge).await, Code::OutOfRange, "");
    let vote = serde_json::json!({"vote": {"leader_id": {"term": u64::MAX, "node_id": 9}, "committed": false}, "last_log_id": null});
    cases.refused("raft: a vote at term u64::MAX", hsdb.vote(raft(vote)).await, Code::InvalidArgument, "term");
    let append = serde_json::json!({
        "vote": {"leader_id": {"term": 3, "node_id": 1}, "committed": true},
        "prev_log_id": {"leader_id": {"term": 3, "node_id": 1}, "index": u64::MAX},
        "leader_commit": null, "entries": []
    });
    cases.refused(
        "raft: entries at index u64::MAX",
        hsdb.append_entries(raft(append)).await,
        Code::InvalidArgument,
        "log index",
    );
    let snapshot = serde_json::json!({
        "vote": {"leader_id": {"term": 3, "node_id": 1}, "committed": true},
        "meta": {"last_log_id": null, "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}}, "snapshot_id": "x"},
        "offset": 1u64 << 40, "data": [1], "done": false
    });
    cases.refused(
        "raft: a snapshot chunk at 1 TiB",
        hsdb.install_snapshot(raft(snapshot)).await,
        Code::InvalidArgument,
        "snapshot",
    );
    let pre_vote =
        serde_json::json!({"candidate": 9, "last_log": {"leader_id": {"term": u64::MAX, "node_id": 9}, "index": 1}});
    cases.refused(
        "raft: a pre-vote at term u64::MAX",
        hsdb.pre_vote(raft(pre_vote)).await,
        Code::InvalidArgument,
        "term",
    );
    cases.refused(
        "raft: a payload that is not JSON",
        hsdb.vote(pb::RaftPayload { data: b"{".to_vec() }).await,
        Code::InvalidArgument,
        "bad Raft payload",
    );

    // ---- SAN ----
    let mut san = pb::san_client::SanClient::new(channel(&node, &dc.topology.san_endpoint()));
    let theft = pb::PreemptRequest { disk: disk_for_vm("vm-1-1"), key: 7, owner: "thief".into(), fence: u64::MAX };
    cases.refused(
        "san: a preempt with a token nobody issued",
        san.preempt(theft).await,
        Code::FailedPrecondition,
        "fencing token",
    );
    let path = pb::PreemptRequest { disk: "../../etc/passwd".into(), key: 7, owner: "host-1".into(), fence: 1 };
    cases.refused("san: a disk that is a path", san.preempt(path).await, Code::InvalidArgument, "not a VM's disk");
    let zero = pb::ReserveRequest { disk: disk_for_vm("vm-x"), key: 0, owner: "host-1".into() };
    cases.refused("san: key zero", san.reserve(zero).await, Code::InvalidArgument, "zero");
    let owner = pb::ReserveRequest { disk: disk_for_vm("vm-x"), key: 3, owner: "/tmp/x".into() };
    cases.refused("san: an owner that is a path", san.reserve(owner).await, Code::InvalidArgument, "host name");
    let steal = pb::ReserveRequest { disk: disk_for_vm("vm-1-1"), key: 3, owner: "host-3".into() };
    cases.refused(
        "san: a reserve of a held disk",
        san.reserve(steal).await,
        Code::FailedPrecondition,
        "is reserved by",
    );
    let unstamped = pb::WriteRequest { disk: disk_for_vm("vm-1-1"), key: 3, block: 1, writer: "../x#1".into() };
    cases.refused("san: a write without a copy stamp", san.write(unstamped).await, Code::InvalidArgument, "copy stamp");
    let record = pb::RecordRequest { disk: "../x".into() };
    cases.refused("san: a record of a path", san.record(record).await, Code::InvalidArgument, "not a VM's disk");
    let peek = pb::HeadRequest { disk: disk_for_vm("vm-1-1"), key: 3 };
    cases.refused(
        "san: a log head read by a non-holder",
        san.head(peek).await,
        Code::FailedPrecondition,
        "cannot read it",
    );
    let path = pb::HeadRequest { disk: "/etc/passwd".into(), key: 3 };
    cases.refused("san: a log head of a path", san.head(path).await, Code::InvalidArgument, "not a VM's disk");

    // ---- Server unit ----
    let mut unit = pb::server_unit_client::ServerUnitClient::new(channel(&node, &su));
    cases.refused(
        "su: activate a path",
        unit.activate(definition("../vm-1-1")).await,
        Code::InvalidArgument,
        "not a valid VM name",
    );
    let other_disk = pb::LparDefinition { disk: disk_for_vm("vm-1-1"), ..definition("vm-evil") };
    cases.refused(
        "su: activate on another VM's disk",
        unit.activate(other_disk).await,
        Code::InvalidArgument,
        "its disk must be",
    );
    let memory = pb::LparDefinition { memory_mb: u64::MAX, ..definition("vm-big") };
    cases.refused("su: activate u64::MAX MB", unit.activate(memory).await, Code::InvalidArgument, "memory");
    let uuid = pb::LparDefinition { uuid: "not-a-uuid".into(), ..definition("vm-u") };
    cases.refused("su: activate with no uuid", unit.activate(uuid).await, Code::InvalidArgument, "uuid");
    let shut = pb::LparRef { name: "../vm-2-1".into(), immediate: true, fence: 0 };
    cases.refused("su: shut a path down", unit.shutdown(shut).await, Code::NotFound, "");
    let fault = pb::LparFault { name: "vm-2-1".into(), fault: "rm -rf".into() };
    let mut drills = pb::server_unit_client::ServerUnitClient::new(channel(dc.security(), &su));
    cases.refused("su: an unknown fault", drills.inject_fault(fault).await, Code::InvalidArgument, "");
    let out = pb::MigrateOutRequest { lpar: "vm-2-1".into(), target_host: "host-2".into(), ..Default::default() };
    cases.refused("su: migrate to itself", unit.migrate_out(out).await, Code::InvalidArgument, "");

    // ---- The migration lane ----
    let mut lane = pb::migration_lane_client::MigrationLaneClient::new(channel(&node, &su));
    let setup = pb::MigrationSetup {
        definition: Some(definition("../../x")),
        source_host: "host-1".into(),
        fence: 1,
        memory_bytes: 64 << 20,
        lpar_id: 1,
    };
    let frames = tokio_stream::iter([pb::MigrationFrame { frame: Some(pb::migration_frame::Frame::Setup(setup)) }]);
    let first = match lane.migrate_in(frames).await {
        Ok(reply) => reply.into_inner().message().await,
        Err(status) => Err(status),
    };
    cases.refused("lane: set up a path", first, Code::InvalidArgument, "not a valid VM name");

    // ---- HMC ----
    let mut hmc = pb::hmc_client::HmcClient::new(channel(&node, &dc.topology.hmc_endpoint(1)));
    let job = pb::SubmitJobRequest {
        job: Some(pb::submit_job_request::Job::Activate(pb::ActivateLpar {
            host: "host-2".into(),
            definition: Some(definition("/tmp/x")),
        })),
    };
    cases.refused("hmc: activate a path", hmc.submit_job(job).await, Code::InvalidArgument, "not a valid VM name");
    let empty = pb::SubmitJobRequest { job: None };
    cases.refused("hmc: a job of nothing", hmc.submit_job(empty).await, Code::InvalidArgument, "");
    cases.refused("hmc: an unknown job", hmc.get_job(pb::GetJobRequest { job_id: u64::MAX }).await, Code::NotFound, "");

    // ---- VIOS: host monitor and AR gateway ----
    let stranger = dc.security_of("host-1-su").expect("host-1's unit");
    let mut monitor = pb::host_monitor_client::HostMonitorClient::new(channel(&stranger, &vios));
    let beat = pb::VmHeartbeat { vm: "vm-2-1".into(), vm_uuid: uuid_for("vm", "vm-2-1"), ..Default::default() };
    cases.refused(
        "vios: another host's unit keeps a VM alive",
        monitor.heartbeat(beat).await,
        Code::PermissionDenied,
        "only that host's server unit",
    );
    let answer = pb::ArResponse { vm_uuid: uuid_for("vm", "vm-2-1"), hs_tag: 1, ..Default::default() };
    cases.refused(
        "vios: another host's unit answers a VM's message",
        monitor.put_response(answer).await,
        Code::PermissionDenied,
        "only that host's server unit",
    );
    let own = dc.security_of("host-2-su").expect("host-2's unit");
    let mut monitor = pb::host_monitor_client::HostMonitorClient::new(channel(&own, &vios));
    let beat = pb::VmHeartbeat { vm: "vm-2-1".into(), vm_uuid: "forged".into(), ..Default::default() };
    cases.refused("vios: a heartbeat with no uuid", monitor.heartbeat(beat).await, Code::InvalidArgument, "uuid");
    let beat = pb::VmHeartbeat { vm: "../vm-2-1".into(), vm_uuid: uuid_for("vm", "vm-2-1"), ..Default::default() };
    cases.refused(
        "vios: a heartbeat of a path",
        monitor.heartbeat(beat).await,
        Code::InvalidArgument,
        "not a valid VM name",
    );
    let mut gateway = pb::vios_client::ViosClient::new(channel(&node, &vios));
    let put = pb::PutMsgRequest { vm_uuid: "x".into(), hs_tag: 1, seq: 1, payload: "p".into() };
    cases.refused("vios: a message for no uuid", gateway.put_msg(put).await, Code::InvalidArgument, "uuid");
    cases.refused(
        "vios: an unknown exchange",
        gateway.get_msg(pb::MsgRef { hs_tag: u64::MAX }).await,
        Code::NotFound,
        "hsTag",
    );

    // ---- Config files ----
    for (case, config, says) in [
        ("config: a VM name that is a path", "[[su.vm]]\nname='../vm-2-1'\ncpu=1\nmemory_mb=64\n", "su.vm"),
        ("config: a SAN that is not an address", "", "su.san"),
        ("config: an unknown key", "bogus=1\n", "bogus"),
    ] {
        let san = if config.is_empty() { "san='no where'" } else { "san='127.0.0.1:2'" };
        let (prefix, body) = match config.starts_with("bogus") {
            true => (config, String::new()),
            false => ("", config.to_string()),
        };
        let text = format!(
            "name='h'\nlisten='127.0.0.1:1'\ninsecure=true\ndata_dir='{}'\n{prefix}hsdb_endpoints=['127.0.0.1:3']\n[su]\nhost='h'\ncpu=2\n\
             memory_mb=1024\n{san}\nvios=[{{name='a',endpoint='127.0.0.1:4'}},{{name='b',endpoint='127.0.0.1:5'}}]\n{body}",
            dir.path().join("bad").display()
        );
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(vmrmd()).arg("--config").arg(&path).output().expect("vmrmd runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        let result: Result<(), tonic::Status> = match out.status.success() {
            true => Ok(()),
            false => Err(tonic::Status::invalid_argument(stderr)),
        };
        cases.refused(case, result, Code::InvalidArgument, says);
    }

    assert!(
        cases.wrong.is_empty(),
        "{} of {} cases not refused as expected:\n{}",
        cases.wrong.len(),
        cases.run.len(),
        cases.wrong.join("\n")
    );
    assert!(cases.run.len() >= 40, "{} cases: {:#?}", cases.run.len(), cases.run);

    // After all of it: the cluster still recovers a killed host, every VM exactly once.
    let before = running_vms(&dc).await;
    assert_eq!(before.len(), 6, "{before:?}");
    dc.kill_host("host-1");
    wait_until("host-1's VMs running on other hosts", Duration::from_secs(30), || async {
        let now = running_vms(&dc).await;
        let ok = before.keys().all(|vm| now.get(vm).is_some_and(|hosts| hosts.len() == 1 && hosts[0] != "host-1"));
        ok.then_some(())
    })
    .await;
    for vm in before.keys() {
        assert_single_writer(vm, &san_record(&dc, &disk_for_vm(vm)).await);
    }
    dc.stop();
}
