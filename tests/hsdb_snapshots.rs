//! Log compaction and snapshot install on real member processes: with the log before the last
//! snapshot purged, a member that was down meanwhile, and a brand-new member, can only catch
//! up by receiving the snapshot; afterwards their own copies of the tables equal the DBN's.
mod common;

use common::members::{dbn_status, start_fourth_member, status};
use common::registers::{REGISTERS, register_put};
use std::time::Duration;
use vmrm::hsdb::client::Row;
use vmrm::hsdb::{HsdbAccess, RemoteHsdb};
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb::{self, HsdbRead, hsdb_client::HsdbClient};
use vmrm::transport::ChannelPool;

const BASE: u16 = 26100;
/// Small, so a few hundred writes compact the log several times.
const SNAPSHOT_EVERY: u64 = 100;
const WRITES: u64 = 600;
const KEYS: u64 = 40;

/// The `vm` table as the member at `endpoint` holds it (a follower read: its own copy).
async fn own_copy(endpoint: &str, pool: &ChannelPool) -> Option<Vec<(String, u64, Vec<u8>)>> {
    let mut client = HsdbClient::new(pool.get(endpoint).ok()?);
    let req = HsdbRead { table: REGISTERS.to_string(), key: String::new(), follower_read: true };
    let rows = client.read(req).await.ok()?.into_inner().rows;
    Some(rows.into_iter().map(|r| (r.key, r.version, r.value)).collect())
}

fn as_copy(rows: Vec<Row>) -> Vec<(String, u64, Vec<u8>)> {
    rows.into_iter().map(|r| (r.key, r.version, r.value.to_string().into_bytes())).collect()
}

/// Waits until the member at `endpoint` has applied the DBN's `last_applied` and holds exactly
/// `expected`.
async fn caught_up(pool: &ChannelPool, endpoint: &str, dbn_applied: u64, expected: &[(String, u64, Vec<u8>)]) {
    common::wait_until(&format!("{endpoint} to catch up to index {dbn_applied}"), Duration::from_secs(20), || async {
        let s = status(endpoint, pool.security()).await?;
        (s.last_applied >= dbn_applied).then_some(())
    })
    .await;
    assert_eq!(own_copy(endpoint, pool).await.expect("own copy"), expected, "{endpoint} holds what the DBN holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_new_members_catch_up_from_a_snapshot_after_compaction() {
    let _serial = common::one_cluster_at_a_time().await;
    let dir = common::temp_dir("hsdb-snapshots");
    let mut topology = Topology::uniform(BASE, 0, 0, dir.path().to_path_buf());
    topology.hmcs = 0;
    topology.hsdb_snapshot_every = SNAPSHOT_EVERY;
    let mut dc = Datacenter::start(topology, common::vmrmd()).await.expect("members start");
    let pool = common::node_pool(&dc, Duration::from_secs(1));
    let dbn = dbn_status(&dc).await;
    let victim = (1..=3).find(|id| *id != dbn.node_id).expect("a follower");
    let victim_name = format!("ctl-{victim}");
    let victim_endpoint = dc.topology.controller_endpoints()[victim as usize - 1].clone();
    let applied_before = status(&victim_endpoint, pool.security()).await.expect("the follower answers").last_applied;
    dc.kill(&victim_name);

    // One writer, one entry per write: enough entries for several snapshots and purges.
    let hsdb = RemoteHsdb::new(dc.topology.controller_endpoints(), pool.clone(), Duration::from_secs(2));
    for i in 0..WRITES {
        let put = register_put(&format!("row-{}", i % KEYS), i);
        hsdb.write(put).await.expect("a write with two of three members up");
    }
    let dbn = dbn_status(&dc).await;
    assert!(dbn.snapshot_index > 0, "the DBN took a snapshot: {dbn:?}");
    assert!(
        dbn.purged_index > applied_before,
        "the DBN purged the entries the stopped member lacks (purged {}, it had {applied_before})",
        dbn.purged_index
    );
    let expected = as_copy(hsdb.read(REGISTERS, None).await.expect("linearizable read"));
    assert_eq!(expected.len() as u64, KEYS);

    // The lagging member: only the snapshot can bring it back.
    dc.restart(&victim_name).await.expect("the member restarts");
    caught_up(&pool, &victim_endpoint, dbn.last_applied, &expected).await;

    // A new, empty member joins as a learner and is sent the snapshot too.
    let (_fourth, endpoint) = start_fourth_member(&dc, dir.path()).await;
    let mut admin = dc.admin().expect("admin client");
    admin.add_hsdb_node(pb::AddHsdbNodeRequest { node_id: 4, endpoint: endpoint.clone() }).await.expect("node 4 joins");
    caught_up(&pool, &endpoint, dbn.last_applied, &expected).await;
    let fourth = status(&endpoint, pool.security()).await.expect("node 4 answers");
    assert!(fourth.snapshot_index >= dbn.purged_index, "node 4 started from a snapshot: {fourth:?}");
}
