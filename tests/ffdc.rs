//! First-failure data capture across the cluster (seed 003), with real processes: three
//! controllers, a SAN, two HMCs and two hosts (a server unit and two VIOSs each). A trigger on
//! any node makes one incident holding every live node's bundle; nodes asked never ask others;
//! a node cut off from the HSDB hands its bundle to a peer, one that reaches nobody keeps it and
//! uploads it later; any node serves the same incidents and byte-identical archives.
mod common;

use common::proxy::Proxy;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

fn all_nodes(dc: &Datacenter) -> BTreeSet<String> {
    dc.topology.node_configs().into_iter().map(|c| c.name).collect()
}

async fn list(dc: &Datacenter, id: &str) -> pb::FfdcList {
    let mut admin = dc.admin().expect("admin client");
    admin.query_ffdc(pb::FfdcQuery { id: id.into() }).await.expect("query ffdc")
}

async fn incidents(dc: &Datacenter) -> Vec<pb::FfdcIncidentView> {
    list(dc, "").await.incidents
}

/// Waits for an incident `what` describes, then until it is settled; returns it with its
/// bundles.
async fn settled_incident(
    dc: &Datacenter,
    what: &str,
    matches: impl Fn(&pb::FfdcIncidentView) -> bool,
) -> pb::FfdcIncidentView {
    let found =
        wait_until(what, Duration::from_secs(60), || async { incidents(dc).await.into_iter().find(|i| matches(i)) })
            .await;
    settled(dc, &found.id).await
}

async fn settled(dc: &Datacenter, id: &str) -> pb::FfdcIncidentView {
    wait_until(&format!("incident {id} settled"), Duration::from_secs(60), || async {
        list(dc, id).await.incidents.into_iter().next().filter(|i| i.state != "OPEN")
    })
    .await
}

fn contributors(i: &pb::FfdcIncidentView) -> BTreeSet<String> {
    i.bundles.iter().map(|b| b.node.clone()).collect()
}

async fn ffdc_count(dc: &Datacenter, node: &str, what: &str) -> f64 {
    sample(&scrape(dc, node).await, &format!("vmrm_ffdc_total{{what=\"{what}\"}}")).unwrap_or(0.0)
}

async fn counts(dc: &Datacenter, what: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for node in all_nodes(dc) {
        out.insert(node.clone(), ffdc_count(dc, &node, what).await);
    }
    out
}

async fn every_node_registered(dc: &Datacenter) {
    let nodes = all_nodes(dc);
    wait_until("every node registered for FFDC", Duration::from_secs(30), || async {
        let registered: BTreeSet<String> =
            list(dc, "").await.nodes.into_iter().filter(|n| n.status == "registered").map(|n| n.node).collect();
        (registered == nodes).then_some(())
    })
    .await;
}

async fn set(dc: &Datacenter, change: pb::FfdcSettingsChange) {
    let mut admin = dc.admin().expect("admin client");
    admin.modify_ffdc(change).await.expect("modify ffdc");
    // The nodes read the settings once a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

fn ksysmgr(dc: &Datacenter, args: &[&str]) -> (bool, String, String) {
    let out = ksysmgr_as_admin(dc, args).output().expect("ksysmgr runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_incident_per_trigger_holds_every_live_nodes_bundle_and_every_node_serves_it_the_same() {
    let _one = one_cluster_at_a_time().await;
    let dir = temp_dir("ffdc");
    let mut dc = start(Topology::uniform(20000, 2, 1, dir.path().to_path_buf())).await;
    let nodes = all_nodes(&dc);
    every_node_registered(&dc).await;
    set(&dc, pb::FfdcSettingsChange { deadline_secs: Some(6), coalesce_secs: Some(30), ..Default::default() }).await;

    // T8, T1, T2: a cluster dump by hand; ksysmgr waits for it and says how it ended.
    let (ok, out, err) = ksysmgr(&dc, &["add", "ffdc", "detail=after setup"]);
    assert!(ok, "{out}{err}");
    let total = nodes.len();
    assert!(out.contains(&format!("COMPLETE: {total} of {total} nodes contributed")), "{out}");
    let manual = incidents(&dc).await.into_iter().find(|i| i.trigger == "manual").expect("the manual incident");
    let manual = list(&dc, &manual.id).await.incidents.remove(0);
    assert_eq!(contributors(&manual), nodes, "every node's bundle");
    assert!(manual.bundles.iter().all(|b| b.captured_by == b.node && b.bytes > 0 && !b.truncated));
    let origin = manual.origin.clone();
    assert!(origin.starts_with("ctl-"), "the active controller opened it: {origin}");

    // T3: a second dump; only its origin asks, once each other node; a repeated request
    // stores nothing twice.
    let sent_before = counts(&dc, "requests_sent").await;
    let received_before = counts(&dc, "requests_received").await;
    let second = dc.admin().unwrap().add_ffdc(pb::AddFfdcRequest { detail: "second".into() }).await.unwrap();
    let second = settled(&dc, &second.id).await;
    assert_eq!(second.state, "COMPLETE");
    let sent_after = counts(&dc, "requests_sent").await;
    let received_after = counts(&dc, "requests_received").await;
    let delta = |a: &std::collections::BTreeMap<String, f64>, b: &std::collections::BTreeMap<String, f64>| {
        a.iter().map(|(n, v)| (n.clone(), v - b[n])).filter(|(_, d)| *d != 0.0).collect::<Vec<_>>()
    };
    assert_eq!(
        delta(&sent_after, &sent_before),
        vec![(second.origin.clone(), (total - 1) as f64)],
        "only the origin asks"
    );
    let asked = delta(&received_after, &received_before);
    assert_eq!(asked.len(), total - 1, "each other node asked once: {asked:?}");
    assert!(asked.iter().all(|(n, d)| *d == 1.0 && *n != second.origin), "{asked:?}");
    let su = dc.topology.su_endpoint("host-1").unwrap();
    let mut capture = pb::ffdc_client::FfdcClient::new(node_pool(&dc, Duration::from_secs(2)).get(&su).unwrap());
    let incident_json = serde_json::json!({
        "id": second.id, "trigger": "manual", "subject": second.subject, "origin": second.origin,
        "opened_by": second.opened_by, "detail": "", "detected_at_ms": second.detected_at_ms,
        "deadline_ms": second.deadline_ms, "expected": second.expected, "state": "OPEN"
    });
    let again = pb::CaptureRequest { incident_id: second.id.clone(), incident: incident_json.to_string().into_bytes() };
    let outcome = capture.capture(again).await.expect("a repeated request is answered").into_inner().outcome;
    assert_eq!(outcome, "already stored");
    assert_eq!(list(&dc, &second.id).await.incidents[0].bundles.len(), total, "nothing stored twice");

    // T9: every node lists the same incidents and writes byte-identical archives.
    let from_admin: Vec<(String, String)> = incidents(&dc).await.into_iter().map(|i| (i.id, i.state)).collect();
    let (_, reference, sha) = dc.admin().unwrap().snap_ffdc(&manual.id).await.expect("snap ffdc");
    for config in dc.topology.node_configs() {
        let admin = dc.admin().unwrap();
        let mut node = admin.ffdc_at(&config.listen).unwrap();
        let listed = node.list(pb::FfdcQuery::default()).await.expect("list").into_inner();
        assert_eq!(listed.node, config.name);
        let seen: Vec<(String, String)> = listed.incidents.into_iter().map(|i| (i.id, i.state)).collect();
        assert_eq!(seen, from_admin, "{} lists the same incidents, oldest first", config.name);
        let stream = node.snap(pb::FfdcSnapRequest { id: manual.id.clone() }).await.expect("snap").into_inner();
        let (name, bytes, node_sha) = vmrm::transport::admin_client::archive_of(stream).await.expect("archive");
        assert_eq!((bytes == reference, node_sha.as_str()), (true, sha.as_str()), "{} archive", config.name);
        assert_eq!(name, format!("vmrm_ffdc_{}.tar.gz", manual.id));
    }
    let path = dir.path().join("snap.tar.gz");
    let (ok, out, err) =
        ksysmgr(&dc, &["snap", "ffdc", &manual.id, &format!("filepath={}", path.display()), "node=host-2-vios-b"]);
    assert!(ok && out.contains(&sha), "{out}{err}");
    assert_eq!(std::fs::read(&path).unwrap(), reference);

    // Bad input: clear errors, nothing changes.
    let (ok, _, err) = ksysmgr(&dc, &["query", "ffdc", "20990101-000000.000-manual-nobody"]);
    assert!(!ok && err.contains("no FFDC incident"), "{err}");
    let (ok, _, err) = ksysmgr(&dc, &["snap", "ffdc", "../etc", "filepath=/tmp/x"]);
    assert!(!ok && err.contains("is not an FFDC incident id"), "{err}");
    let (ok, _, err) = ksysmgr(&dc, &["modify", "ffdc", "quota=0"]);
    assert!(!ok && err.contains("quota=0 is out of range"), "{err}");
    let (ok, _, err) = ksysmgr(&dc, &["modify", "ffdc", "triggers=flood"]);
    assert!(!ok && err.contains("unknown FFDC trigger"), "{err}");
    assert_eq!(list(&dc, "").await.settings.unwrap().quota_mib, 32, "the refused changes changed nothing");
    let (ok, _, err) = ksysmgr(&dc, &["trace", "log=nosuch"]);
    assert!(!ok && err.contains("unknown trace log"), "{err}");
    let forged = pb::DelegateRequest { node: "ctl-1".into(), ..Default::default() };
    let err = capture.delegate(forged).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let oversized = pb::DelegateRequest {
        node: "harness".into(),
        incident: incident_json.to_string().into_bytes(),
        bundle: vec![b'x'; 300 << 10],
        ..Default::default()
    };
    let err = capture.delegate(oversized).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // ksysmgr trace: the active controller's user log has the dumps asked; another node's log.
    let (ok, out, err) = ksysmgr(&dc, &["trace", "log=user"]);
    assert!(ok && out.contains("AddFfdc"), "{out}{err}");
    let (ok, out, err) = ksysmgr(&dc, &["trace", "log=ksys", "node=host-1-su", "lines=5"]);
    assert!(ok && !out.is_empty() && out.lines().count() <= 5, "{out}{err}");

    // T11: the SAN away for a while: every guest I/O fails, over and over, on both hosts —
    // one incident.
    dc.pause("san");
    tokio::time::sleep(Duration::from_secs(5)).await;
    dc.resume("san");
    let storm = settled_incident(&dc, "a storage loss incident", |i| i.trigger == "storage_loss").await;
    assert_eq!(incidents(&dc).await.iter().filter(|i| i.trigger == "storage_loss").count(), 1, "one incident");
    let mut coalesced = 0.0;
    for host in ["host-1-su", "host-2-su"] {
        coalesced += ffdc_count(&dc, host, "coalesced").await;
    }
    assert!(coalesced >= 5.0, "the storm's other failures were coalesced: {coalesced}");
    assert!(storm.origin.ends_with("-su"), "{storm:?}");

    // T4: a node that leaves, comes back, and fails.
    dc.terminate("host-2-vios-b");
    let removed = settled_incident(&dc, "NODE_REMOVED", |i| i.trigger == "node_removed").await;
    assert_eq!(removed.subject, "host-2-vios-b");
    assert!(!removed.expected.contains(&removed.subject), "a node that left is not expected");
    dc.restart("host-2-vios-b").await.unwrap();
    let added =
        settled_incident(&dc, "NODE_ADDED", |i| i.trigger == "node_added" && i.subject == "host-2-vios-b").await;
    assert_eq!((added.subject.as_str(), added.state.as_str()), ("host-2-vios-b", "COMPLETE"));
    dc.kill("host-2-vios-b");
    let failed =
        settled_incident(&dc, "NODE_FAILED", |i| i.trigger == "node_failed" && i.subject == "host-2-vios-b").await;
    assert_eq!(failed.subject, "host-2-vios-b");
    assert!(failed.origin.starts_with("ctl-"), "a surviving node originates it: {failed:?}");
    assert_eq!((failed.state.as_str(), failed.missing.clone()), ("PARTIAL", vec!["host-2-vios-b".to_string()]));
    let events = events(&dc).await;
    assert!(events.iter().any(|e| e.name == "FFDC_INCIDENT_PARTIAL" && e.subject == failed.id), "{events:#?}");
    dc.restart("host-2-vios-b").await.unwrap();

    // T7: the DBN killed as the nodes capture: the incident completes, nothing lost or doubled
    // (its deadline leaves time for the election and the nodes' retries).
    set(&dc, pb::FfdcSettingsChange { deadline_secs: Some(30), ..Default::default() }).await;
    let dbn = active_controller(&dc).await;
    let dump = dc.admin().unwrap().add_ffdc(pb::AddFfdcRequest { detail: "DBN killed".into() }).await.unwrap();
    dc.kill(&dbn);
    tokio::time::sleep(Duration::from_secs(1)).await;
    dc.restart(&dbn).await.unwrap();
    let dump = settled(&dc, &dump.id).await;
    assert_eq!((dump.state.as_str(), contributors(&dump)), ("COMPLETE", nodes.clone()), "{dump:?}");
    assert_eq!(dump.bundles.len(), nodes.len(), "one bundle per node");
    let changed = settled_incident(&dc, "DBN_CHANGED", |i| i.trigger == "dbn_changed").await;
    assert_ne!(changed.origin, dbn, "the new DBN opened it");

    // T10: a quota under what is stored evicts the oldest settled incidents, never an open one.
    loop {
        let stored: u64 = incidents(&dc).await.iter().map(|i| i.bytes).sum();
        if stored > 3 << 19 {
            break;
        }
        let more = dc.admin().unwrap().add_ffdc(pb::AddFfdcRequest { detail: "more".into() }).await.unwrap();
        settled(&dc, &more.id).await;
    }
    let newest = incidents(&dc).await.pop().expect("incidents");
    set(&dc, pb::FfdcSettingsChange { quota_mib: Some(1), ..Default::default() }).await;
    let kept = wait_until("the quota kept", Duration::from_secs(20), || async {
        let all = incidents(&dc).await;
        let bytes: u64 = all.iter().filter(|i| i.state != "OPEN").map(|i| i.bytes).sum();
        (bytes <= 1 << 20).then_some(all)
    })
    .await;
    assert!(!kept.iter().any(|i| i.id == manual.id), "the oldest went first");
    assert!(kept.iter().any(|i| i.id == newest.id), "the newest stays");
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_from_the_hsdb_hands_its_bundle_to_a_peer_and_one_that_reaches_nobody_keeps_it() {
    let _one = one_cluster_at_a_time().await;
    let dir = temp_dir("ffdc-cut");
    // A small HSDB quota, so the HSDB's use is a few percent of it (the incidents' bytes kept
    // far under it by the FFDC quota).
    let topology = Topology { hsdb_quota_bytes: 8 << 20, ..Topology::uniform(20500, 2, 1, dir.path().to_path_buf()) };
    let mut dc = start(topology).await;
    every_node_registered(&dc).await;
    let quick = pb::FfdcSettingsChange {
        deadline_secs: Some(8),
        coalesce_secs: Some(5),
        quota_mib: Some(1),
        ..Default::default()
    };
    set(&dc, quick).await;

    // T6: the HSDB's use against a threshold above it opens nothing; crossing one opens one
    // incident, and staying above opens no other.
    let dbn = active_controller(&dc).await;
    let used = sample(&scrape(&dc, &dbn).await, "vmrm_hsdb_size_bytes").expect("the HSDB's size");
    let pct = (used * 100.0 / f64::from(8u32 << 20)).floor() as u32;
    assert!((2..=70).contains(&pct), "the HSDB uses {pct} % of its quota ({used} bytes)");
    set(
        &dc,
        pb::FfdcSettingsChange { hsdb_threshold_pct: Some(pct + 20), hysteresis_pct: Some(1), ..Default::default() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let thresholds =
        || async { incidents(&dc).await.into_iter().filter(|i| i.trigger == "resource_threshold").count() };
    assert_eq!(thresholds().await, 0, "under the threshold: none");
    set(&dc, pb::FfdcSettingsChange { hsdb_threshold_pct: Some(pct), ..Default::default() }).await;
    let crossed = settled_incident(&dc, "a resource threshold", |i| i.trigger == "resource_threshold").await;
    assert_eq!(crossed.subject, "hsdb");
    assert!(crossed.detail.contains(&format!("(threshold {pct} %)")), "{}", crossed.detail);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(thresholds().await, 1, "staying above opens no other incident");

    // T5: host-1-vios-a reaches the HSDB only through proxies the test cuts; its peers stay
    // reachable.
    let mut proxies = Vec::new();
    for endpoint in dc.topology.controller_endpoints() {
        proxies.push(Proxy::start(endpoint).await);
    }
    let via: Vec<String> = proxies.iter().map(|p| p.addr.clone()).collect();
    let cut_node = "host-1-vios-a";
    dc.restart_with(cut_node, |cfg| cfg.hsdb_endpoints = via.clone()).await.unwrap();
    let back = settled_incident(&dc, "its NODE_ADDED", |i| i.trigger == "node_added" && i.subject == cut_node).await;
    assert_eq!(back.state, "COMPLETE");
    for p in &proxies {
        p.cut().await;
    }
    let lost = settled_incident(&dc, "an HSDB loss", |i| i.trigger == "hsdb_loss" && i.origin == cut_node).await;
    let handed = lost.bundles.iter().find(|b| b.node == cut_node).expect("the cut node's bundle");
    assert_ne!(handed.captured_by, cut_node, "a peer stored it for it");
    assert_eq!(lost.opened_by, handed.captured_by, "the peer opened the incident for it");
    assert_eq!((lost.state.as_str(), contributors(&lost)), ("COMPLETE", all_nodes(&dc)), "{lost:?}");
    for p in &proxies {
        p.heal();
    }

    // A node that reaches nobody able to store (the HSDB gone for all): it keeps its bundle on
    // its disk, and uploads it once the HSDB is back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let controllers: Vec<String> = (1..=3).map(|i| format!("ctl-{i}")).collect();
    for c in &controllers {
        dc.kill(c);
    }
    let staging = dir.path().join("host-2-su").join("ffdc").join("staging");
    wait_until("host-2-su keeps its bundle", Duration::from_secs(30), || async {
        std::fs::read_dir(&staging).ok().and_then(|mut d| d.next()).map(drop)
    })
    .await;
    for c in &controllers {
        dc.restart(c).await.unwrap();
    }
    let outage = settled_incident(&dc, "the outage's HSDB loss", |i| i.trigger == "hsdb_loss" && i.id != lost.id).await;
    let kept = outage.bundles.iter().find(|b| b.node == "host-2-su").expect("host-2-su's kept bundle uploaded");
    assert_eq!(kept.captured_by, "host-2-su");
    assert!(kept.captured_at_ms < outage.bundles.iter().map(|b| b.captured_at_ms).max().unwrap_or_default());
    assert_eq!(incidents(&dc).await.iter().filter(|i| i.id == outage.id).count(), 1);
    wait_until("the kept bundles uploaded", Duration::from_secs(20), || async {
        std::fs::read_dir(&staging).map(|mut d| d.next().is_none()).unwrap_or(true).then_some(())
    })
    .await;
    dc.stop();
}
