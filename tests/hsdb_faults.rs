//! The HSDB under injected network faults, in one process: three members talking real gRPC on
//! loopback through a fault-injecting transport. Clients write and read registers while a
//! nemesis isolates the leader, drops and delays messages and partitions a follower; the
//! linearizability checker then judges everything the clients saw.
mod common;

use common::registers::{History, OP_TIMEOUT, REGISTERS, register_value, run_client};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::server::TcpIncoming;
use vmrm::config::HsdbConfig;
use vmrm::hsdb::client::read_local;
use vmrm::hsdb::network::GrpcRaftNetwork;
use vmrm::hsdb::peer_service::RaftPeerService;
use vmrm::hsdb::service::HsdbService;
use vmrm::hsdb::{HsdbNode, LocalHsdb, Member};
use vmrm::pb::hsdb_server::HsdbServer;
use vmrm::pb::raft_peer_server::RaftPeerServer;
use vmrm::testing::faulty_network::{FaultyNetwork, NetworkFaults};
use vmrm::testing::lincheck::{self, Effect, Operation};
use vmrm::transport::ChannelPool;

const IDS: [u64; 3] = [1, 2, 3];

/// Three in-process members sharing one set of injected faults.
struct Cluster {
    members: Vec<LocalHsdb>,
    faults: NetworkFaults,
}

impl Cluster {
    async fn start(dir: &Path) -> Self {
        let faults = NetworkFaults::default();
        let pool = ChannelPool::new(Duration::from_millis(500), vmrm::transport::Security::Plaintext);
        let mut listeners = Vec::new();
        let mut addresses = BTreeMap::new();
        for id in IDS {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addresses.insert(id, listener.local_addr().expect("address").to_string());
            listeners.push(listener);
        }
        let mut members = Vec::new();
        for (id, listener) in IDS.into_iter().zip(listeners) {
            let network = FaultyNetwork::new(id, GrpcRaftNetwork::new(pool.clone()), faults.clone());
            // One port per member here, serving both the tables and Raft.
            let everyone = addresses.iter().map(|(id, a)| (*id, Member::new(a, a))).collect();
            let config = HsdbConfig::new(id, addresses[&id].clone(), &everyone);
            let node =
                HsdbNode::start_with_network(&dir.join(id.to_string()), &config, network).await.expect("member starts");
            let local = LocalHsdb::new(node.clone());
            let service = HsdbService::new(local.clone(), pool.clone(), OP_TIMEOUT);
            let server = tonic::transport::Server::builder()
                .layer(vmrm::transport::gate::Gate::new(false))
                .add_service(HsdbServer::new(service))
                .add_service(RaftPeerServer::new(RaftPeerService::new(node)));
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(server.serve_with_incoming(incoming));
            members.push(local);
        }
        let cluster = Self { members, faults };
        cluster.leader().await;
        cluster
    }

    /// The member that currently believes it leads (waits for one).
    async fn leader(&self) -> LocalHsdb {
        common::wait_until("an HSDB leader", Duration::from_secs(10), || async { self.claimed_leader() }).await
    }

    fn claimed_leader(&self) -> Option<LocalHsdb> {
        self.members.iter().find(|m| m.node().is_leader()).cloned()
    }

    fn member(&self, id: u64) -> &LocalHsdb {
        &self.members[(id - 1) as usize]
    }

    fn term(&self) -> u64 {
        self.members.iter().map(|m| m.node().raft.metrics().borrow().current_term).max().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_under_partitions_drops_and_delays() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-faults");
    let cluster = Arc::new(Cluster::start(dir.path()).await);
    let first_term = cluster.term();
    let history = Arc::new(History::default());
    let step = Duration::from_millis(1200);
    let until = Instant::now() + step * 10;
    let clients: Vec<_> = (1..=4)
        .map(|id| {
            let (cluster, history) = (cluster.clone(), history.clone());
            tokio::spawn(async move {
                // Mostly the member that claims to lead (perhaps a cut-off one), sometimes any.
                let pick = |choice: usize| match cluster.claimed_leader() {
                    Some(leader) if !choice.is_multiple_of(4) => leader,
                    _ => cluster.members[choice % IDS.len()].clone(),
                };
                run_client(&history, id, until, pick).await
            })
        })
        .collect();

    let faults = &cluster.faults;
    for round in 0..10 {
        match round {
            0 | 8 => faults.isolate(cluster.leader().await.node().node_id, &IDS),
            2 => faults.drop_messages(30),
            4 => faults.delay_messages(Duration::from_millis(40)),
            6 => {
                let leader = cluster.leader().await.node().node_id;
                let follower = IDS.into_iter().find(|id| *id != leader).expect("a follower");
                faults.isolate(follower, &IDS);
            }
            _ => faults.heal(),
        }
        tokio::time::sleep(step).await;
    }
    faults.heal();
    for c in clients {
        c.await.expect("client task");
    }

    history.read_every_key(&cluster.leader().await).await;
    assert!(cluster.term() > first_term, "isolating the leader must have forced an election");
    history.assert_linearizable(40, 40);
}

/// The negative control: a read served from a member's local copy, skipping the leader's
/// quorum check, returns a stale value behind a partition — and the checker says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_skips_the_quorum_check_is_caught() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-stale");
    let cluster = Cluster::start(dir.path()).await;
    let history = History::default();
    let leader = cluster.leader().await;
    let follower_id = IDS.into_iter().find(|id| *id != leader.node().node_id).expect("a follower");
    let follower = cluster.member(follower_id);

    let mut ops = vec![history.write(&leader, "reg-0", 1).await.expect("the leader accepts a write")];
    common::wait_until("the follower to apply the first write", Duration::from_secs(5), || async {
        let rows = read_local(&follower.node().db, REGISTERS, Some("reg-0")).ok()?;
        (register_value(rows.first()?) == Some(1)).then_some(())
    })
    .await;
    cluster.faults.isolate(follower_id, &IDS);
    ops.extend(history.write(&leader, "reg-0", 2).await);
    assert!(ops.len() == 2 && ops.iter().all(|o| o.completed_at.is_some()), "both writes are acknowledged: {ops:?}");

    // The proper path refuses: the isolated member is not the leader.
    assert!(history.read(follower, "reg-0").await.is_none(), "a linearizable read on a cut-off follower must fail");
    // The broken path answers from the stale copy.
    let invoked_at = history.now();
    let stale = read_local(&follower.node().db, REGISTERS, Some("reg-0")).expect("local read");
    ops.push(Operation {
        key: "reg-0".into(),
        effect: Effect::Read(stale.first().and_then(register_value)),
        invoked_at,
        completed_at: Some(history.now()),
    });
    let violation = lincheck::check(&ops).expect_err("the stale read must be reported");
    assert_eq!(violation.key, "reg-0");
}
