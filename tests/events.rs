//! The operator's live view on real processes: `WatchEvents` follows the event log (filtered,
//! in order, going on at the new active controller after a failover), events are acknowledged
//! one by one or all at once, and `ksysmgr query system status monitor=yes` shows the seed's
//! monitor — host groups in Ready state, then each restart's lines as they happen — until it is
//! stopped, across a controller failover too.
mod common;

use common::*;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;
use vmrm::launcher::certs::{MONITOR, OPERATOR};
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::transport::AdminClient;

fn ksysmgr(dc: &Datacenter, args: &[&str]) -> Command {
    ksysmgr_as_admin(dc, args)
}

/// `ksysmgr query system status monitor=yes`, its lines collected as they come.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(dc: &Datacenter) -> Self {
        let mut child = ksysmgr(dc, &["query", "system", "status", "monitor=yes"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ksysmgr runs");
        let (lines, out) = (Arc::new(Mutex::new(Vec::new())), child.stdout.take().unwrap());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, vmrm::VmrmError>) -> Code {
    tonic::Status::from(result.expect_err("refused")).code()
}

/// Reads `stream` until the events seen satisfy `until`, or fails after `timeout`.
async fn read_until(
    stream: &mut (impl futures::Stream<Item = vmrm::error::Result<pb::EventView>> + Unpin),
    seen: &mut Vec<pb::EventView>,
    until: impl Fn(&[pb::EventView]) -> bool,
    timeout: Duration,
) {
    use futures::StreamExt;
    let give_up = tokio::time::Instant::now() + timeout;
    while !until(seen) {
        let next = tokio::time::timeout_at(give_up, stream.next()).await;
        match next.unwrap_or_else(|_| panic!("the awaited event did not come; seen {seen:#?}")) {
            Some(Ok(event)) => seen.push(event),
            other => panic!("the event stream ended: {other:?}; seen {seen:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_acknowledgements_and_the_live_status_follow_a_recovery() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("events");
    let mut dc = start(Topology::uniform(14000, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();

    // The status without monitoring: the host group, nothing in progress; then it ends.
    let out = ksysmgr(&dc, &["query", "system", "status"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Host_group HG1 is currently in Ready state\n");

    let monitor = Monitor::start(&dc);
    wait_until("the monitor's header", Duration::from_secs(10), || async {
        let lines = monitor.lines();
        (lines.len() >= 2).then_some(())
    })
    .await;
    assert_eq!(
        monitor.lines(),
        ["Host_group HG1 is currently in Ready state", "Press Ctrl-C to quit monitoring for activity"]
    );
    let maintenance = pb::Severity::Maintenance as i32;
    let start_after = events(&dc).await.last().map_or(0, |e| e.sequence);
    let watch = pb::EventWatch { severity: maintenance, after: Some(start_after), ..Default::default() };
    let mut watcher = dc.admin().unwrap();
    let mut stream = std::pin::pin!(watcher.follow_events(watch));
    let bad = pb::EventWatch { name: "/etc/passwd".into(), ..Default::default() };
    assert_eq!(code(admin.watch_events(bad).await), Code::InvalidArgument);

    // A host fails: the stream shows the failure and the summary, nothing informational, in order.
    dc.kill_host("host-1");
    let mut seen = Vec::new();
    let summary = |seen: &[pb::EventView]| seen.iter().any(|e| e.name == "RECOVERY_COMPLETED");
    read_until(&mut stream, &mut seen, summary, Duration::from_secs(40)).await;
    assert!(seen.iter().any(|e| e.name == "HOST_FAILURE_DETECTED" && e.subject == "host-1"), "{seen:#?}");
    assert!(seen.iter().all(|e| e.severity != pb::Severity::Informational as i32), "{seen:#?}");
    assert!(seen.windows(2).all(|w| w[0].sequence < w[1].sequence), "{seen:#?}");
    let moved = wait_until("the monitor showing both restarts", Duration::from_secs(20), || async {
        let lines = monitor.lines();
        let done: Vec<String> = lines
            .iter()
            .filter(|l| l.starts_with("        Restart on Target host ") && l.contains("has completed for VM vm-1-"))
            .cloned()
            .collect();
        (done.len() == 2).then_some(done)
    })
    .await;
    assert!(monitor.count("Restart in progress for Host_group HG1") >= 1, "{:#?}", monitor.lines());
    let lines = monitor.lines();
    let heading = lines.iter().position(|l| l == "Restart in progress for Host_group HG1").unwrap();
    assert!(lines.iter().position(|l| *l == moved[0]).unwrap() > heading, "{lines:#?}");

    // The active controller dies: the monitor shows the new one's status and goes on; the
    // event stream goes on at the new one after the last event it gave: none lost, none twice.
    let active = active_controller(&dc).await;
    dc.kill(&active);
    wait_until("the monitor at the new active controller", Duration::from_secs(20), || async {
        (monitor.count("Host_group HG1 is currently in Ready state") >= 2).then_some(())
    })
    .await;
    let restart = pb::RestartVmRequest { vm: "vm-1-1".into(), host: String::new() };
    admin.restart_vm(restart).await.expect("a restart by hand");
    let twice = |seen: &[pb::EventView]| {
        seen.iter().filter(|e| e.name == "RESTART_COMPLETED" && e.subject == "vm-1-1").count() == 2
    };
    read_until(&mut stream, &mut seen, twice, Duration::from_secs(30)).await;
    let all = events(&dc).await;
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| e.sequence > start_after && e.sequence <= seen.last().unwrap().sequence)
        .filter(|e| e.severity != pb::Severity::Informational as i32)
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seen.iter().map(|e| e.sequence).collect::<Vec<_>>(), expected, "none lost, none twice");
    // The monitor shows the restart by hand — unless it was itself reconnecting to another
    // controller then (lines while it is away are not kept; it shows that controller's status).
    let shown = tokio::time::timeout(Duration::from_secs(20), async {
        while monitor.lines().iter().filter(|l| l.contains("has completed for VM vm-1-1")).count() < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reconnected = || monitor.count("Host_group HG1 is currently in Ready state") > 2;
    assert!(shown.await.is_ok() || reconnected(), "the restart by hand not shown: {:#?}", monitor.lines());

    // Acknowledgements: one event, then all of them; by an operator too, never by a monitor.
    let failure = all.iter().find(|e| e.name == "HOST_FAILURE_DETECTED").unwrap().sequence;
    let lines = admin.ack_event(pb::AckRequest { sequence: failure, all: false }).await.unwrap().printed();
    assert_eq!(lines, [format!("Event {failure} has been acknowledged")]);
    assert_eq!(code(admin.ack_event(pb::AckRequest { sequence: failure, all: false }).await), Code::AlreadyExists);
    assert_eq!(code(admin.ack_event(pb::AckRequest { sequence: 999_999, all: false }).await), Code::NotFound);
    assert_eq!(code(admin.ack_event(pb::AckRequest { sequence: 3, all: true }).await), Code::InvalidArgument);
    let critical = pb::EventQuery { severity: pb::Severity::Critical as i32, ..Default::default() };
    let unacknowledged = pb::EventQuery { unacknowledged: true, ..critical.clone() };
    let listed = admin.query_event(critical.clone()).await.unwrap().events;
    assert!(listed.iter().any(|e| e.sequence == failure && e.acknowledged), "{listed:#?}");
    assert!(listed.iter().all(|e| e.severity == pb::Severity::Critical as i32));
    let open = admin.query_event(unacknowledged.clone()).await.unwrap().events;
    assert!(!open.iter().any(|e| e.sequence == failure), "{open:#?}");
    let mut monitor_role = AdminClient::new(dc.topology.controller_endpoints(), dc.security_of(MONITOR).unwrap())
        .expect("a monitor's client");
    assert_eq!(code(monitor_role.ack_event(pb::AckRequest { sequence: 0, all: true }).await), Code::PermissionDenied);
    monitor_role.watch_events(pb::EventWatch::default()).await.expect("a monitor watches");
    let mut operator = AdminClient::new(dc.topology.controller_endpoints(), dc.security_of(OPERATOR).unwrap())
        .expect("an operator's client");
    // Events may still come (the recovery's last ones): "all" is every event up to the newest
    // when the acknowledgement was written.
    let newest_before = events(&dc).await.last().unwrap().sequence;
    let lines = operator.ack_event(pb::AckRequest { sequence: 0, all: true }).await.unwrap().printed();
    let newest_after = events(&dc).await.last().unwrap().sequence;
    let upto: u64 = lines[0]
        .strip_suffix(')')
        .and_then(|l| l.rsplit_once("every event up to "))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(lines[0].contains("events have been acknowledged"), "{lines:?}");
    assert!((newest_before..=newest_after).contains(&upto), "{upto} not in {newest_before}..={newest_after}");
    assert!(admin.query_event(unacknowledged).await.unwrap().events.is_empty());
    let out = ksysmgr(&dc, &["query", "event", "severity=critical"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains("HOST_FAILURE_DETECTED") && l.contains(" *   host-1")), "{text}");

    // Streams are bounded: with every place of the active controller taken (the monitor and the
    // second watch hold one each), one more is refused.
    let endpoint = admin.current().to_string();
    let raw = pb::admin_client::AdminClient::new(
        vmrm::transport::channel::lazy_channel(&endpoint, Duration::from_secs(1), dc.security()).unwrap(),
    );
    let max = vmrm::controller::api::admin::MAX_STREAMS;
    let mut open = Vec::new();
    let refused = loop {
        match raw.clone().watch_status(pb::StatusWatch { monitor: true }).await {
            Ok(stream) if open.len() < max => open.push(stream),
            Ok(_) => panic!("more than {max} streams open"),
            Err(refused) => break refused,
        }
    };
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!((max - 3..=max - 2).contains(&open.len()), "{} opened", open.len());
    drop((open, stream));
    dc.stop();
}
