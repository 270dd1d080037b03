//! HSDB membership through the admin API (what `ksysmgr add|modify|remove hsdb_node` and
//! `query hsdb` call), and the HSDB's answers to bad input: each refusal is clear and changes
//! nothing.
mod common;

use common::registers::{REGISTERS, register_put, register_value};
use std::time::Duration;
use vmrm::error::VmrmError;
use vmrm::hsdb::locks::{Acquire, VmLock};
use vmrm::hsdb::{Command as HsdbCommand, HsdbAccess, RemoteHsdb, Table};
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

const BASE: u16 = 26000;

fn roles(view: &pb::HsdbView) -> Vec<(u64, pb::HsdbRole)> {
    view.members.iter().map(|m| (m.node_id, m.role())).collect()
}

fn three_voters() -> Vec<(u64, pb::HsdbRole)> {
    (1..=3).map(|i| (i, pb::HsdbRole::Voter)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joins_as_learner_becomes_voter_and_leaves() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-membership");
    let mut topology = Topology::uniform(BASE, 0, 0, dir.path().to_path_buf());
    topology.hmcs = 0;
    let dc = Datacenter::start(topology, common::vmrmd()).await.expect("members start");
    let mut admin = dc.admin().expect("admin client");
    let q = pb::QueryRequest::default();
    let view = common::wait_until("a DBN", Duration::from_secs(15), || {
        let mut admin = dc.admin().expect("admin client");
        async move { admin.query_hsdb(pb::QueryRequest::default()).await.ok().filter(|v| v.dbn > 0) }
    })
    .await;
    assert_eq!(roles(&view), three_voters());
    assert!(view.members.iter().any(|m| m.dbn && m.state() == pb::HsdbMemberState::Leader), "{view:?}");

    // Nothing answers at the address: refused, membership unchanged.
    let nobody = pb::AddHsdbNodeRequest { node_id: 4, endpoint: format!("127.0.0.1:{}", BASE + 9) };
    let err = admin.add_hsdb_node(nobody).await.expect_err("an unreachable member is refused");
    assert!(matches!(err, VmrmError::FailedPrecondition(ref m) if m.contains("no HSDB member answers")), "{err}");
    assert_eq!(roles(&admin.query_hsdb(q.clone()).await.unwrap()), three_voters());

    let (_fourth, endpoint) = common::members::start_fourth_member(&dc, dir.path()).await;
    let wrong_id = pb::AddHsdbNodeRequest { node_id: 5, endpoint: endpoint.clone() };
    let err = admin.add_hsdb_node(wrong_id).await.expect_err("the address must answer as the named node");
    assert!(err.to_string().contains("is node 4, not node 5"), "{err}");
    let bad = pb::AddHsdbNodeRequest { node_id: 4, endpoint: "not-an-address".into() };
    assert!(matches!(admin.add_hsdb_node(bad).await, Err(VmrmError::InvalidArgument(_))));
    assert!(matches!(
        admin.modify_hsdb_node(pb::ModifyHsdbNodeRequest { node_id: 4, role: pb::HsdbRole::Voter as i32 }).await,
        Err(VmrmError::NotFound(_))
    ));

    let lines = admin.add_hsdb_node(pb::AddHsdbNodeRequest { node_id: 4, endpoint: endpoint.clone() }).await.unwrap();
    assert!(lines.printed()[0].contains("added as a learner"), "{lines:?}");
    let view = admin.query_hsdb(q.clone()).await.unwrap();
    assert!(roles(&view).contains(&(4, pb::HsdbRole::Learner)), "{view:?}");
    // Its Raft is reached where its own config says, on a port of its own.
    let peer = format!("127.0.0.1:{}", dc.topology.peer_port(4));
    assert!(lines.printed()[0].contains(&format!("({endpoint} (peer {peer}))")), "{lines:?}");
    assert!(view.members.iter().any(|m| m.node_id == 4 && m.peer_endpoint == peer), "{view:?}");
    assert!(matches!(
        admin.add_hsdb_node(pb::AddHsdbNodeRequest { node_id: 4, endpoint: endpoint.clone() }).await,
        Err(VmrmError::AlreadyExists(_))
    ));
    assert!(matches!(
        admin.modify_hsdb_node(pb::ModifyHsdbNodeRequest { node_id: 4, role: 7 }).await,
        Err(VmrmError::InvalidArgument(_))
    ));

    admin.modify_hsdb_node(pb::ModifyHsdbNodeRequest { node_id: 4, role: pb::HsdbRole::Voter as i32 }).await.unwrap();
    let view = admin.query_hsdb(q.clone()).await.unwrap();
    assert!(roles(&view).contains(&(4, pb::HsdbRole::Voter)), "{view:?}");
    let fourth = view.members.iter().find(|m| m.node_id == 4).expect("node 4");
    common::wait_until("node 4 to catch up", Duration::from_secs(10), || {
        let mut admin = dc.admin().expect("admin client");
        let dbn_applied = view.last_applied;
        async move {
            let v = admin.query_hsdb(pb::QueryRequest::default()).await.ok()?;
            (v.members.iter().find(|m| m.node_id == 4)?.last_applied >= dbn_applied).then_some(())
        }
    })
    .await;
    assert_eq!(fourth.endpoint, endpoint);

    admin.remove_hsdb_node(pb::RemoveHsdbNodeRequest { node_id: 4 }).await.unwrap();
    assert_eq!(roles(&admin.query_hsdb(q.clone()).await.unwrap()), three_voters());
    assert!(matches!(
        admin.remove_hsdb_node(pb::RemoveHsdbNodeRequest { node_id: 9 }).await,
        Err(VmrmError::NotFound(_))
    ));

    // Bad writes: refused with the reason, nothing stored.
    let hsdb = RemoteHsdb::new(
        dc.topology.controller_endpoints(),
        common::node_pool(&dc, Duration::from_secs(1)),
        Duration::from_secs(2),
    );
    let huge = HsdbCommand::Put { table: Table::Vm, key: "big".into(), value: "x".repeat(2 << 20).into() };
    let err = hsdb.write(huge).await.expect_err("an oversized value is refused");
    assert!(matches!(err, VmrmError::InvalidArgument(ref m) if m.contains("over the limit")), "{err}");
    let empty_key = HsdbCommand::Put { table: Table::Vm, key: String::new(), value: 1.into() };
    assert!(matches!(hsdb.write(empty_key).await, Err(VmrmError::InvalidArgument(_))));
    assert!(hsdb.read(Table::Vm, Some("big")).await.unwrap().is_empty(), "nothing was written");

    let first = hsdb.write(register_put("lock", 1)).await.unwrap();
    let vmrm::hsdb::CommandResult::Applied { version } = first else { panic!("{first:?}") };
    let HsdbCommand::Put { table, key, value } = register_put("lock", 2) else { unreachable!() };
    let stale = HsdbCommand::PutIfVersion { table, key, expected_version: version - 1, value };
    assert_eq!(hsdb.write(stale).await.unwrap(), vmrm::hsdb::CommandResult::VersionMismatch { current: version });
    assert_eq!(
        register_value(&hsdb.read(REGISTERS, Some("lock")).await.unwrap()[0]),
        Some(1),
        "the stale CAS changed nothing"
    );

    // A write under a VM lock whose epoch has moved on is fenced out.
    let restart = vmrm::domain::VmStatus::RestartInProgress;
    let first_epoch = hsdb.lock_vm("vm-x", restart, 1, Acquire::WhenFree).await.unwrap();
    let err = hsdb.lock_vm("vm-x", restart, 2, Acquire::WhenFree).await.expect_err("a held lock is refused");
    assert!(err.to_string().contains("another operation in progress"), "{err}");
    let second_epoch = hsdb.lock_vm("vm-x", restart, 2, Acquire::TakeOver { epoch: first_epoch }).await.unwrap();
    assert_eq!(second_epoch, first_epoch + 1);
    let row = vmrm::domain::SuAliveRecord { host: "fenced".into(), incarnation: "1".into(), at_ms: 1 };
    let err = hsdb.put_if_version_fenced(("vm-x", first_epoch), &row, 0).await.expect_err("stale epoch");
    assert!(matches!(err, VmrmError::FailedPrecondition(ref m) if m.contains("fenced out")), "{err}");
    // The review's poison row: a lock whose value is a number. Refused, and locks still work.
    let poison = HsdbCommand::Put { table: Table::Locked, key: "vm-x".into(), value: 42.into() };
    let err = hsdb.write(poison).await.expect_err("a lock row is written only by locking");
    assert!(matches!(err, VmrmError::InvalidArgument(ref m) if m.contains("only by taking and freeing")), "{err}");
    let lock = VmLock { vm: "vm-x".into(), epoch: 99, operation: restart, holder: 1, since_ms: 0 };
    let (_, lock_version) = hsdb.get::<VmLock>("vm-x").await.unwrap().unwrap();
    let err = hsdb.put_if_version_fenced(("vm-x", second_epoch), &lock, lock_version).await.expect_err("no lock rows");
    assert!(matches!(err, VmrmError::InvalidArgument(_)), "{err}");
    let err = hsdb.unlock_vm("vm-x", first_epoch).await.expect_err("only the current holder unlocks");
    assert!(matches!(err, VmrmError::FailedPrecondition(_)), "{err}");
    let (held, _) = hsdb.get::<VmLock>("vm-x").await.unwrap().unwrap();
    assert_eq!((held.epoch, held.holder, held.operation), (second_epoch, 2, restart), "nothing changed");

    let mut raw = pb::hsdb_client::HsdbClient::new(
        common::node_pool(&dc, Duration::from_secs(1)).get(&dc.topology.controller_endpoints()[0]).unwrap(),
    );
    let err = raw
        .read(pb::HsdbRead { table: "widgets".into(), key: String::new(), follower_read: false })
        .await
        .expect_err("unknown table");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("unknown HSDB table `widgets`"), "{}", err.message());
    let err = raw.write(pb::HsdbWrite { command: b"{not json".to_vec() }).await.expect_err("garbage command");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // A follower read answers from the member's own copy, without the DBN.
    common::wait_until("ctl-1's own copy of the row", Duration::from_secs(5), || {
        let mut raw = raw.clone();
        async move {
            let req = pb::HsdbRead { table: REGISTERS.to_string(), key: "lock".into(), follower_read: true };
            let rows = raw.read(req).await.ok()?.into_inner().rows;
            (rows.len() == 1).then_some(())
        }
    })
    .await;

    // A query with follower_read is answered by a standby controller from its own copy; the
    // same query without it is left to the DBN.
    let dbn = admin.query_hsdb(q.clone()).await.unwrap().dbn;
    let standby = dc.topology.controller_endpoints()[if dbn == 1 { 1 } else { 0 }].clone();
    let channel = dc.channel(&standby).unwrap();
    let mut only_standby = pb::admin_client::AdminClient::new(channel);
    let follower = pb::QueryRequest { follower_read: true, ..Default::default() };
    let view = only_standby.query_hsdb(follower).await.expect("a standby answers a follower read").into_inner();
    assert_eq!(view.dbn, dbn);
    assert!(only_standby.query_hsdb(q.clone()).await.is_err(), "a linearizable query is left to the DBN");
}
