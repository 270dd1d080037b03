//! Notifications end to end: a real SMTP server (aiosmtpd, started by the test) and a webhook
//! receiver get every event of a host failure once per contact — also when the active
//! controller is killed while a message is in flight — advisory mode's advice reaches them,
//! and bad contacts, addresses and relays are refused without changing anything.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmrm::error::VmrmError;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;

/// The SMTP server: a child process that records each message it accepts as a JSON line.
struct SmtpSink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpSink {
    /// Starts it; every DATA waits `delay` before it is accepted.
    fn start(dir: &Path, delay: Duration) -> Self {
        let port = free_port();
        let out = dir.join("mail.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, &port.to_string(), out.to_str().unwrap(), &delay.as_secs_f64().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (Debian: python3-aiosmtpd) runs the SMTP sink");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP sink did not start");
        Self { child, port, out }
    }

    /// The messages accepted so far.
    fn messages(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A webhook receiver: every POST's idempotency key and JSON body.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<(String, serde_json::Value)>>>);

impl Hooks {
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/vmrm", listener.local_addr().unwrap());
        let hooks = self.clone();
        let app = axum::Router::new().route(
            "/hooks/vmrm",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let hooks = hooks.clone();
                async move {
                    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    hooks.0.lock().unwrap().push((key, serde_json::from_str(&body).expect("a JSON body")));
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn received(&self) -> Vec<(String, serde_json::Value)> {
        self.0.lock().unwrap().clone()
    }
}

fn notify(user: &str, contact: &str) -> pb::NotifyRequest {
    pb::NotifyRequest { user: user.into(), contact: contact.into() }
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, VmrmError>, code: &str, text: &str) {
    let err = result.expect_err("bad input must be refused");
    assert!(format!("{err:?}").starts_with(code), "expected {code}, got {err:?}");
    assert!(err.to_string().contains(text), "message `{err}` lacks `{text}`");
}

/// How many times each contact got each notice id.
type IdCounts = BTreeMap<(String, String), usize>;
/// Every notice: its contact, its event's name, and its subject and text.
type Notices = Vec<(String, String, String)>;

/// What each contact was told.
fn told(sink: &SmtpSink, hooks: &Hooks) -> (IdCounts, Notices) {
    let mut counts = BTreeMap::new();
    let mut events = Vec::new();
    for m in sink.messages() {
        let to = m["to"][0].as_str().unwrap().to_string();
        let id = m["message_id"].as_str().unwrap().to_string();
        *counts.entry((to.clone(), id)).or_insert(0) += 1;
        let body = m["body"].as_str().unwrap();
        let line =
            |key: &str| body.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or_default().to_string();
        events.push((to, line("Event:"), format!("{} | {}", line("Subject:"), body)));
    }
    for (key, json) in hooks.received() {
        let hook = "webhook".to_string();
        *counts.entry((hook.clone(), key)).or_insert(0) += 1;
        let (event, subject, message) = (&json["event"], &json["subject"], &json["message"]);
        events.push((hook, event.as_str().unwrap().into(), format!("{} | {}", subject.as_str().unwrap(), message)));
    }
    (counts, events)
}

async fn newest_event(dc: &Datacenter) -> u64 {
    events(dc).await.last().map_or(0, |e| e.sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_failure_reaches_every_contact_once_across_a_controller_failover() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("notify");
    let sink = SmtpSink::start(dir.path(), Duration::from_millis(1500));
    let hooks = Hooks::default();
    let hook_url = hooks.serve().await;
    let mut dc = start(Topology::uniform(12000, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();

    // Bad input changes nothing.
    assert_code(
        admin.add_notify(notify("ops", "ops@example.test")).await,
        "FailedPrecondition",
        "no SMTP relay is set",
    );
    let closed = format!("127.0.0.1:{}", free_port());
    assert_code(
        admin.modify(modify("system", "", &[("smtp_relay", &closed)])).await,
        "FailedPrecondition",
        "does not answer",
    );
    assert_code(admin.modify(modify("system", "", &[("smtp_relay", "mail")])).await, "InvalidArgument", "HOST:PORT");
    let system = admin.query_system(pb::QueryRequest::default()).await.unwrap();
    assert_eq!((system.smtp_relay.as_str(), system.notification_level()), ("", pb::NotificationLevel::Low));
    let relay = format!("127.0.0.1:{}", sink.port);
    let lines = admin.modify(modify("system", "", &[("smtp_relay", &relay)])).await.unwrap().printed();
    assert_eq!(lines, ["KSYS smtp_relay has been updated"]);
    assert_code(admin.add_notify(notify("ops", "ops@")).await, "InvalidArgument", "not an e-mail address");
    assert_code(admin.add_notify(notify("ops", "ftp://x/y")).await, "InvalidArgument", "use http:// or https://");
    assert_code(admin.add_notify(notify("../ops", "ops@example.test")).await, "InvalidArgument", "user name");
    assert_code(admin.delete_notify(notify("nobody", "")).await, "NotFound", "user nobody has no contacts");

    let contacts = [("ops", "ops@example.test"), ("oncall", "5551234567@sms.example.test"), ("bot", &hook_url)];
    for (user, contact) in contacts {
        let lines = admin.add_notify(notify(user, contact)).await.unwrap().printed();
        assert_eq!(lines, ["successfully added user info"]);
    }
    assert_code(admin.add_notify(notify("ops", "ops@example.test")).await, "AlreadyExists", "already");
    assert_code(admin.delete_notify(notify("ops", "other@example.test")).await, "NotFound", "no contact");
    let listed = admin.query_notify(pb::QueryRequest::default()).await.unwrap().contacts;
    let kinds: Vec<(&str, &str)> = listed.iter().map(|c| (c.contact.as_str(), c.kind.as_str())).collect();
    assert_eq!(kinds.len(), 3, "{listed:?}");
    assert!(kinds.contains(&("5551234567@sms.example.test", "sms")) && kinds.contains(&(&hook_url, "webhook")));
    let start_seq = newest_event(&dc).await;
    assert!(listed.iter().all(|c| c.delivered_through <= start_seq && c.delivered == 0), "{listed:?}");

    // A host fails; once the webhook has heard of it (the e-mails, 1.5 s each at the relay,
    // are in flight then), the active controller is killed.
    dc.kill_host("host-1");
    wait_until("the webhook told of the failure", Duration::from_secs(30), || async {
        hooks.received().iter().any(|(_, json)| json["event"] == "HOST_FAILURE_DETECTED").then_some(())
    })
    .await;
    let active = active_controller(&dc).await;
    dc.kill(&active);

    // Every contact hears of the failure and of the recovery's summary.
    let everyone = ["ops@example.test", "5551234567@sms.example.test", "webhook"];
    let (counts, told_events) =
        wait_until("every contact told of the failure and the summary", Duration::from_secs(90), || async {
            let (counts, told_events) = told(&sink, &hooks);
            let has = |who: &str, event: &str| told_events.iter().any(|(to, e, _)| to == who && e == event);
            everyone
                .iter()
                .all(|who| has(who, "HOST_FAILURE_DETECTED") && has(who, "RECOVERY_COMPLETED"))
                .then_some((counts, told_events))
        })
        .await;
    let summary = told_events.iter().find(|(_, e, _)| e == "RECOVERY_COMPLETED").unwrap();
    assert!(summary.2.contains("out of") && summary.2.contains("successfully restarted"), "{summary:?}");
    let failure = told_events.iter().find(|(_, e, _)| e == "HOST_FAILURE_DETECTED").unwrap();
    assert!(failure.2.starts_with("host-1 |"), "{failure:?}");
    assert!(!told_events.iter().any(|(_, e, _)| e == "DISCOVERY_COMPLETED"), "below the level: {told_events:?}");

    // The outbox settles: every contact's cursor at the newest event, nothing told twice under
    // two ids, and only a notice in flight at the kill possibly twice under its one id.
    let newest = newest_event(&dc).await;
    wait_until("every contact through the newest event", Duration::from_secs(60), || async {
        let listed = dc.admin().ok()?.query_notify(pb::QueryRequest::default()).await.ok()?.contacts;
        listed.iter().all(|c| c.delivered_through >= newest && c.attempts == 0).then_some(())
    })
    .await;
    let (counts_after, told_after) = told(&sink, &hooks);
    assert!(counts_after.len() >= counts.len());
    let repeated: Vec<_> = counts_after.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.iter().all(|(_, n)| **n == 2) && repeated.len() <= everyone.len(), "{repeated:?}");
    for who in everyone {
        let mut seen = BTreeMap::new();
        for (_, event, text) in told_after.iter().filter(|(to, _, _)| to == who) {
            *seen.entry((event.clone(), text.clone())).or_insert(0) += 1;
        }
        let ids = counts_after.keys().filter(|(to, _)| to == who).count();
        assert_eq!(ids, seen.len(), "{who}: one id per event");
    }
    // The killed controller had begun, and another finished.
    let notified =
        |node: &str| std::fs::read_to_string(dc.log_path(node)).unwrap_or_default().matches("notified:").count();
    let by_others: usize = (1..=3).map(|i| format!("ctl-{i}")).filter(|n| *n != active).map(|n| notified(&n)).sum();
    assert!(notified(&active) > 0 && by_others > 0, "{} by {active}, {by_others} by the others", notified(&active));
    dc.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_mode_advice_reaches_the_contacts() {
    let _serial = one_cluster_at_a_time().await;
    let dir = temp_dir("notify-advisory");
    let hooks = Hooks::default();
    let hook_url = hooks.serve().await;
    let mut dc = start(Topology::uniform(13000, 3, 2, dir.path().to_path_buf())).await;
    let mut admin = dc.admin().unwrap();
    admin.modify(modify("host_group", "HG1", &[("restart_policy", "advisory_mode")])).await.unwrap();
    admin.add_notify(notify("bot", &hook_url)).await.unwrap();
    dc.kill_host("host-1");
    let advice = wait_until("the advice for both VMs of host-1", Duration::from_secs(60), || async {
        let advice: Vec<_> =
            hooks.received().into_iter().filter(|(_, json)| json["event"] == "RESTART_ADVISED").collect();
        (advice.len() == 2).then_some(advice)
    })
    .await;
    for (key, json) in &advice {
        assert!(json["message"].as_str().unwrap().contains("ksysmgr restart vm"), "{json}");
        assert_eq!(json["severity"], "Warning");
        assert_eq!(key, json["id"].as_str().unwrap());
    }
    let lines = admin.delete_notify(notify("bot", "")).await.unwrap().printed();
    assert_eq!(lines, ["successfully deleted user info"]);
    assert!(admin.query_notify(pb::QueryRequest::default()).await.unwrap().contacts.is_empty());
    dc.stop();
}
