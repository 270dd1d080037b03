//! Disaster recovery across two sites, with real processes: a SAN, an HMC and two hosts per
//! site, three controllers. The VMs' workloads write their logs (record N in block N) at the
//! home site; the home SAN replicates them to the backup SAN. A planned move and the move back
//! keep every log whole across the sites; an unplanned move after the home site is killed
//! starts from the backup's consistent point, reports the writes it lost, and the home site,
//! back, can write nothing.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use vmrm::domain::identity::disk_for_vm;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::testing::chaos::log_breaks;

/// One SAN's record for one disk.
async fn record_at(dc: &Datacenter, site: usize, disk: &str) -> Vec<pb::SanOperation> {
    let channel = node_pool(dc, Duration::from_secs(1)).get(&dc.topology.san_endpoint_of(site)).unwrap();
    let req = pb::RecordRequest { disk: disk.to_string() };
    pb::san_client::SanClient::new(channel).record(req).await.expect("SAN record").into_inner().operations
}

async fn replication(dc: &Datacenter) -> pb::ReplicationView {
    let mut admin = dc.admin().unwrap();
    let q = pb::QueryRequest { name: "HG1".into(), follower_read: false };
    let groups = admin.query_host_group(q).await.expect("query host_group").host_groups;
    groups[0].replication.clone().expect("HG1 is replicated")
}

/// Waits until the backup site holds everything the home site wrote.
async fn caught_up(dc: &Datacenter) -> pb::ReplicationView {
    wait_until("the replication to catch up", Duration::from_secs(20), || async {
        let r = replication(dc).await;
        (r.error.is_empty() && r.lag_writes == 0 && r.consistent_at_ms > 0 && r.writable).then_some(r)
    })
    .await
}

fn move_to(site: &str, dr_type: pb::DrType) -> pb::MoveRequest {
    pb::MoveRequest {
        host_group: "HG1".into(),
        to: site.into(),
        dr_type: dr_type as i32,
        confirm: true,
        dr_test: false,
    }
}

/// Where each VM runs, checked to be exactly one host of `hosts`.
async fn placed_on(dc: &Datacenter, vms: &[String], hosts: &[&str]) -> BTreeMap<String, String> {
    wait_until(&format!("every VM running once on {hosts:?}"), Duration::from_secs(20), || async {
        let running = running_vms(dc).await;
        let placed: BTreeMap<String, String> = vms
            .iter()
            .filter_map(|vm| match running.get(vm).map(Vec::as_slice) {
                Some([host]) if hosts.contains(&host.as_str()) => Some((vm.clone(), host.clone())),
                _ => None,
            })
            .collect();
        (placed.len() == vms.len()).then_some(placed)
    })
    .await
}

/// The newest block a disk's log holds at one SAN (written or replicated).
fn head(record: &[pb::SanOperation]) -> u64 {
    let written = record.iter().filter(|op| matches!(op.kind.as_str(), "WRITE" | "REPLICA" | "RESYNC"));
    written.map(|op| op.last_block).next_back().unwrap_or(0)
}

/// Waits until every VM's disk at `site` holds more than `blocks` blocks.
async fn writing_past(dc: &Datacenter, site: usize, vms: &[String], blocks: &BTreeMap<String, u64>) {
    for vm in vms {
        let disk = disk_for_vm(vm);
        wait_until(&format!("{vm} writing at site {site}"), Duration::from_secs(20), || async {
            (head(&record_at(dc, site, &disk).await) > blocks[vm] + 3).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_planned_move_and_back_keeps_every_log_whole_and_bad_moves_change_nothing() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("dr-planned");
    let dc = start(Topology::two_sites(19000, 2, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    let vms: Vec<String> = ["vm-1-1", "vm-1-2", "vm-2-1", "vm-2-2"].map(String::from).to_vec();
    let home = placed_on(&dc, &vms, &["host-1", "host-2"]).await;
    let r = caught_up(&dc).await;
    assert_eq!((r.primary_san.as_str(), r.secondary_san.as_str(), r.generation), ("san", "san-2", 1), "{r:?}");
    let metrics = scrape(&dc, "san").await;
    assert_eq!(sample(&metrics, "vmrm_replication_writable_primary{group=\"HG1\"}"), Some(1.0), "{metrics}");
    assert!(sample(&metrics, "vmrm_replication_lag_writes{group=\"HG1\"}").is_some(), "{metrics}");
    let sites = admin.query_site(pb::QueryRequest::default()).await.unwrap().sites;
    let austin = sites.iter().find(|s| s.name == "Austin").expect("site Austin");
    assert_eq!(
        (austin.hosts.as_slice(), austin.active_host_groups.as_slice()),
        (&["host-1".to_string(), "host-2".into()][..], &["HG1".to_string()][..])
    );

    // Bad moves: refused with the reason, and nothing moves.
    let refused = [
        (move_to("Boston", pb::DrType::Planned), tonic::Code::NotFound, "site Boston is not added"),
        (move_to("Austin", pb::DrType::Planned), tonic::Code::FailedPrecondition, "runs at site Austin already"),
        (
            pb::MoveRequest { confirm: false, ..move_to("Dallas", pb::DrType::Planned) },
            tonic::Code::InvalidArgument,
            "confirm",
        ),
        (
            pb::MoveRequest { host_group: "HG9".into(), ..move_to("Dallas", pb::DrType::Planned) },
            tonic::Code::NotFound,
            "HG9",
        ),
        (
            pb::MoveRequest { to: "../x".into(), ..move_to("Dallas", pb::DrType::Planned) },
            tonic::Code::InvalidArgument,
            "not a valid site name",
        ),
    ];
    for (req, code, text) in refused {
        let err = admin.move_host_group(req.clone()).await.expect_err("refused");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), code, "{req:?}: {status:?}");
        assert!(status.message().contains(text), "{req:?}: {}", status.message());
    }
    assert_eq!(placed_on(&dc, &vms, &["host-1", "host-2"]).await, home, "a refused move moved nothing");
    assert_eq!(replication(&dc).await.generation, 1);

    // A DR test: copies at Dallas from a point-in-time copy, production untouched.
    dr_test(&dc, &vms, &home).await;

    // Only the group's peer SAN may ship to a replica, only a controller set a SAN's part, and a
    // batch is checked before anything is applied.
    let mut replica = pb::san_client::SanClient::new(
        node_pool(&dc, Duration::from_secs(1)).get(&dc.topology.san_endpoint_of(1)).unwrap(),
    );
    let forged = pb::ReplicatedWrite {
        sequence: 1_000_000,
        disk: disk_for_vm("vm-1-1"),
        block: 1,
        writer: "host-9#00000001".into(),
        at_ms: 0,
    };
    let batch = pb::ReplicationBatch {
        group: "HG1".into(),
        generation: 1,
        writes: vec![forged.clone()],
        written: 1_000_000,
        ..Default::default()
    };
    let err = replica.replicate(batch.clone()).await.expect_err("the harness is no peer of HG1");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let flood = pb::ReplicationBatch { writes: vec![forged; 513], ..batch };
    assert_eq!(replica.replicate(flood).await.expect_err("too big").code(), tonic::Code::InvalidArgument);
    let mut as_admin = pb::san_client::SanClient::new(dc.channel(&dc.topology.san_endpoint_of(1)).unwrap());
    let takeover = pb::ConsistencyGroup {
        name: "HG1".into(),
        generation: 9,
        role: pb::ReplicationRole::Primary as i32,
        ..Default::default()
    };
    assert_eq!(
        as_admin.configure_group(takeover).await.expect_err("admins do not set roles").code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(replication(&dc).await.generation, 1, "nothing changed");

    // vm-1-1 takes another network identity at Dallas (the seed's vmr_dr_ip_conf); bad ones
    // are refused.
    let identity = |ip: &str, site: &str| pb::DrIdentityChange {
        action: pb::ChangeAction::Add as i32,
        vm: "vm-1-1".into(),
        site: site.into(),
        hostname: "vm11-dallas".into(),
        ip: ip.into(),
        netmask: "255.255.255.0".into(),
        gateway: "10.2.0.1".into(),
    };
    for (req, code) in [
        (identity("10.2.0.300", "Dallas"), tonic::Code::InvalidArgument),
        (identity("10.2.0.11", "Boston"), tonic::Code::NotFound),
    ] {
        let err = tonic::Status::from(admin.change_dr_identity(req).await.expect_err("refused"));
        assert_eq!(err.code(), code, "{err:?}");
    }
    let lines =
        admin.change_dr_identity(identity("10.2.0.11", "Dallas")).await.expect("an identity at Dallas").printed();
    assert!(lines[0].contains("on the 2 hosts of site Dallas"), "{lines:#?}");
    let applied = dir.path().join("guests/vm-1-1/etc/vmr_dr_ip.conf");
    assert!(!applied.exists(), "nothing applied at home");

    // The planned move, and a second move while it runs.
    let mover = admin.clone();
    let moving = tokio::spawn(async move {
        let mut mover = mover;
        mover.move_host_group(move_to("Dallas", pb::DrType::Planned)).await
    });
    wait_until("the move under way", Duration::from_secs(10), || async {
        (replication(&dc).await.moving == "Dallas").then_some(())
    })
    .await;
    let second = admin.move_host_group(move_to("Dallas", pb::DrType::Planned)).await.expect_err("one move at a time");
    assert!(tonic::Status::from(second).message().contains("under way"));
    let lines = moving.await.unwrap().expect("the planned move").printed();
    for expected in [
        "Host_group move started for HG1 to Dallas",
        "        Shutdown on HG1 Host_group has completed for VM vm-1-1",
        "        Restart on Dallas Host_group has completed for VM vm-2-2",
        "        Move has completed for VM vm-1-2",
        "        Configuration cleanup started on HG1 Host_group for VM vm-2-1",
        "        Done rediscovering configuration for VM vm-1-1 on Dallas",
        "Host_group move completed for Host_group HG1 to Dallas",
        "4 out of 4 VMs have been successfully moved for HG1 to Dallas",
    ] {
        assert!(lines.iter().any(|l| l == expected), "missing `{expected}`: {lines:#?}");
    }
    let pairs = BTreeMap::from([("host-1", "host-3"), ("host-2", "host-4")]);
    let dallas = placed_on(&dc, &vms, &["host-3", "host-4"]).await;
    for (vm, host) in &home {
        assert_eq!(dallas[vm], pairs[host.as_str()], "{vm} restarted on its host's pair");
    }
    let r = caught_up(&dc).await;
    assert_eq!((r.primary_san.as_str(), r.generation), ("san-2", 2), "the replication runs the other way: {r:?}");
    let conf = std::fs::read_to_string(&applied).expect("vm-1-1 took its Dallas identity at boot");
    assert!(conf.contains("HOSTNAME=vm11-dallas") && conf.contains("IPADDR=10.2.0.11"), "{conf}");
    let at_dallas: BTreeMap<String, u64> = futures::future::join_all(
        vms.iter().map(|vm| async { (vm.clone(), head(&record_at(&dc, 1, &disk_for_vm(vm)).await)) }),
    )
    .await
    .into_iter()
    .collect();
    writing_past(&dc, 1, &vms, &at_dallas).await;

    // And back home.
    let lines = admin.move_host_group(move_to("Austin", pb::DrType::Planned)).await.expect("the move back").printed();
    assert!(lines.iter().any(|l| l == "4 out of 4 VMs have been successfully moved for HG1 to Austin"), "{lines:#?}");
    assert_eq!(placed_on(&dc, &vms, &["host-1", "host-2"]).await, home, "every VM back on its own host");
    assert!(!applied.exists(), "at home vm-1-1 has its own identity again");
    let at_austin: BTreeMap<String, u64> = futures::future::join_all(
        vms.iter().map(|vm| async { (vm.clone(), head(&record_at(&dc, 0, &disk_for_vm(vm)).await)) }),
    )
    .await
    .into_iter()
    .collect();
    writing_past(&dc, 0, &vms, &at_austin).await;
    caught_up(&dc).await;

    // Every log, at both sites, from its first block to now: no gap, no repeat.
    for vm in &vms {
        let disk = disk_for_vm(vm);
        for site in [0, 1] {
            let record = record_at(&dc, site, &disk).await;
            let breaks = log_breaks(&disk, &record);
            assert!(breaks.is_empty(), "site {site}: {breaks:#?}\n{record:#?}");
        }
        let home_record = record_at(&dc, 0, &disk).await;
        let first = home_record.iter().find(|op| op.kind == "WRITE").expect("written at home");
        assert_eq!(first.first_block, 1, "{vm}: the log starts at block 1");
        let writers: Vec<&str> =
            home_record.iter().filter(|op| op.kind != "RESERVE").map(|op| op.kind.as_str()).collect();
        assert!(writers.contains(&"REPLICA"), "{vm}: Dallas's writes came back to Austin: {home_record:#?}");
    }
}

/// Starts a DR test at Dallas, checks it leaves production alone, and cleans it up.
async fn dr_test(dc: &Datacenter, vms: &[String], home: &BTreeMap<String, String>) {
    let mut admin = dc.admin().unwrap();
    let test = pb::MoveRequest { dr_test: true, confirm: false, ..move_to("Dallas", pb::DrType::Planned) };
    let lines = admin.move_host_group(test.clone()).await.expect("the DR test starts").printed();
    assert!(lines.iter().any(|l| l == "4 out of 4 VMs of HG1 run as DR test copies at Dallas"), "{lines:#?}");
    let copies: Vec<String> = vms.iter().map(|vm| format!("{vm}.drtest")).collect();
    let pairs = BTreeMap::from([("host-1", "host-3"), ("host-2", "host-4")]);
    let tested = placed_on(dc, &copies, &["host-3", "host-4"]).await;
    for vm in vms {
        assert_eq!(tested[&format!("{vm}.drtest")], pairs[home[vm].as_str()], "{vm}'s copy on its host's pair");
    }
    let r = replication(dc).await;
    assert_eq!(r.dr_test_site, "Dallas", "{r:?}");
    let again = admin.move_host_group(test).await.expect_err("one DR test at a time");
    assert!(tonic::Status::from(again).message().contains("runs at Dallas already"));
    let moving =
        admin.move_host_group(move_to("Dallas", pb::DrType::Planned)).await.expect_err("no move during a test");
    assert!(tonic::Status::from(moving).message().contains("end it first"));
    // The copies write their own disks from the copy's point on; production goes on writing at
    // home, and its replica at Dallas keeps receiving it.
    let mut replica_at: BTreeMap<String, u64> = BTreeMap::new();
    for vm in vms {
        replica_at.insert(vm.clone(), head(&record_at(dc, 1, &disk_for_vm(vm)).await));
        let test_disk = disk_for_vm(&format!("{vm}.drtest"));
        wait_until(&format!("{vm}'s test copy writing"), Duration::from_secs(20), || async {
            let record = record_at(dc, 1, &test_disk).await;
            record.iter().any(|op| op.kind == "WRITE").then_some(())
        })
        .await;
        let record = record_at(dc, 1, &test_disk).await;
        assert!(log_breaks(&test_disk, &record).is_empty(), "the copy's log goes on from the copy: {record:#?}");
    }
    writing_past(dc, 1, vms, &replica_at).await;
    assert_eq!(placed_on(dc, vms, &["host-1", "host-2"]).await, *home, "production stays where it runs");

    let mut cleanup = pb::CleanupRequest { host_group: "HG1".into(), dr_test: true };
    let lines = admin.cleanup(cleanup.clone()).await.expect("the DR test ends").printed();
    assert!(lines.iter().any(|l| l.starts_with("DR test of Host_group HG1 has been cleaned up")), "{lines:#?}");
    let running = running_vms(dc).await;
    assert!(copies.iter().all(|c| !running.contains_key(c)), "no test copy runs: {running:?}");
    assert!(replication(dc).await.dr_test_site.is_empty());
    for copy in &copies {
        let record = record_at(dc, 1, &disk_for_vm(copy)).await;
        assert_eq!(record.last().map(|op| op.kind.as_str()), Some("DISCARD"), "{record:#?}");
    }
    cleanup.dr_test = true;
    let none = admin.cleanup(cleanup).await.expect_err("no test runs any more");
    assert!(tonic::Status::from(none).message().contains("no DR test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unplanned_move_starts_from_the_consistent_point_and_the_lost_site_never_writes_again() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("dr-unplanned");
    let mut dc = start(Topology::two_sites(19500, 2, 2, dir.path().to_path_buf())).await;
    let admin = dc.admin().unwrap();
    let vms: Vec<String> = ["vm-1-1", "vm-1-2", "vm-2-1", "vm-2-2"].map(String::from).to_vec();
    placed_on(&dc, &vms, &["host-1", "host-2"]).await;
    caught_up(&dc).await;

    // The replication link stalls (the backup SAN freezes) while the home site writes on, then
    // the home site is lost: its SAN, its HMC and its hosts.
    dc.pause("san-2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for host in ["host-1", "host-2"] {
        dc.kill_host(host);
    }
    dc.kill("hmc-1");
    dc.kill("san");
    dc.resume("san-2");
    let lines = wait_until("the unplanned move", Duration::from_secs(60), || async {
        // The FDE may still be deciding about the lost hosts: the move waits for it.
        admin.clone().move_host_group(move_to("Dallas", pb::DrType::Unplanned)).await.ok().map(|r| r.printed())
    })
    .await;
    assert!(lines.iter().any(|l| l == "4 out of 4 VMs have been successfully moved for HG1 to Dallas"), "{lines:#?}");
    let point = lines.iter().find(|l| l.contains("starts from its consistent point")).expect("the consistent point");
    let reported: u64 =
        point.split(": ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).expect(point);
    placed_on(&dc, &vms, &["host-3", "host-4"]).await;

    // Where each log was at Dallas when it took over, and where the lost site had it.
    let mut promoted = BTreeMap::new();
    for vm in &vms {
        let record = record_at(&dc, 1, &disk_for_vm(vm)).await;
        let before_takeover = record.iter().take_while(|op| op.kind != "WRITE" && op.kind != "PREEMPT");
        promoted.insert(vm.clone(), head(&before_takeover.cloned().collect::<Vec<_>>()));
        let breaks = log_breaks(&disk_for_vm(vm), &record);
        assert!(breaks.is_empty(), "Dallas continues each log from its consistent point: {breaks:#?}");
    }
    writing_past(&dc, 1, &vms, &promoted).await;

    // The home site returns: its hosts' boot lists try their stale copies, which its SAN does
    // not let take their disks, and nothing lands.
    let returned_at = vmrm::now_ms();
    dc.restart("san").await.expect("the home SAN restarts");
    dc.restart("hmc-1").await.expect("the home HMC restarts");
    for host in ["host-1", "host-2"] {
        for node in Topology::host_nodes(host) {
            dc.restart(&node).await.expect("the home host restarts");
        }
    }
    let mut lost = 0;
    for vm in &vms {
        let record = record_at(&dc, 0, &disk_for_vm(vm)).await;
        let written: Vec<_> = record.iter().filter(|op| op.kind == "WRITE").cloned().collect();
        lost += head(&written).saturating_sub(promoted[vm]);
    }
    let r = wait_until("the lost site's SAN to learn it was taken over", Duration::from_secs(20), || async {
        let r = replication(&dc).await;
        (r.error.is_empty() && r.lost_writes == lost && r.lag_writes == 0).then_some(r)
    })
    .await;
    assert!(lost > 0, "the stalled link left writes behind at the lost site");
    assert!(reported <= lost, "the move reported {reported} writes missing, {lost} were lost: {r:?}");
    eprintln!("lost {lost} writes; the move reported {reported} known missing; {r:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for vm in &vms {
        let record = record_at(&dc, 0, &disk_for_vm(vm)).await;
        let late = record.iter().filter(|op| op.kind == "WRITE" && op.last_at_ms >= returned_at).collect::<Vec<_>>();
        assert!(late.is_empty(), "{vm}: the lost site wrote after it returned: {late:#?}");
        // Its hosts' boot lists could not even take the disks back: no stale copy started.
        let taken = record.iter().filter(|op| op.kind == "RESERVE" && op.at_ms >= returned_at).collect::<Vec<_>>();
        assert!(taken.is_empty(), "{vm}: a returning host reserved its disk again: {taken:#?}");
    }
    placed_on(&dc, &vms, &["host-3", "host-4"]).await;

    // `cleanup` removes what the returned site's boot lists restarted.
    let mut admin = dc.admin().unwrap();
    let lines = admin.cleanup(pb::CleanupRequest { host_group: "HG1".into(), dr_test: false }).await.unwrap().printed();
    assert!(lines.iter().any(|l| l.contains("host-1")), "{lines:#?}");
    for host in ["host-1", "host-2"] {
        let su = dc.topology.su_endpoint(host).unwrap();
        let inv = vmrm::launcher::datacenter::su_inventory(&su, Duration::from_secs(2), dc.security()).await.unwrap();
        let left: Vec<_> = inv.lpars.iter().filter_map(|l| l.definition.as_ref().map(|d| d.name.clone())).collect();
        assert!(left.is_empty(), "{host} keeps stale definitions: {left:?}");
    }

    // A host group that is not replicated has no DR test.
    let group = pb::AddHostGroupRequest { name: "HG2".into(), hosts: vec!["host-1".into()], ..Default::default() };
    admin.add_host_group(group).await.expect("HG2 at Austin");
    let test = pb::MoveRequest { host_group: "HG2".into(), dr_test: true, ..move_to("Dallas", pb::DrType::Planned) };
    let err = tonic::Status::from(admin.move_host_group(test).await.expect_err("HG2 is not replicated"));
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("not replicated"), "{}", err.message());
    dc.stop();
}
