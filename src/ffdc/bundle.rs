//! What one node captures for an incident (seed 003: "live system dumps and component
//! traces", taken at the moment of the failure): who it is, its view of the HSDB — for a
//! member its Raft state, the newest events and the operations in flight — its metrics (every
//! actor's gauges and counters), and the newest lines of its trace logs. Plain text: support
//! reads it without tools.
use super::trace_log::{TraceLog, logs};
use crate::domain::{EventRecord, FfdcIncidentRecord, RecoveryTaskRecord};
use crate::hsdb::locks::VmLock;
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::logic::ffdc::cap_bundle;
use std::fmt::Write as _;

/// Newest lines of each trace log a bundle carries.
const LOG_LINES: [(TraceLog, usize); 3] = [(TraceLog::Ksys, 600), (TraceLog::Fde, 200), (TraceLog::Krest, 200)];
/// Newest events a member's bundle lists.
const EVENTS: u64 = 50;

/// Who the capturing node is.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub node: String,
    pub roles: Vec<String>,
    pub incarnation: String,
}

/// The node's bundle for `incident`, cut to `cap` bytes; and whether it was cut.
pub async fn capture(
    facts: &NodeFacts,
    incident: &FfdcIncidentRecord,
    member: Option<&LocalHsdb>,
    cap: usize,
) -> (Vec<u8>, bool) {
    let mut text = String::new();
    let now = crate::now_ms();
    let _ = writeln!(text, "== vmrm FFDC bundle of node {} ==", facts.node);
    let _ = writeln!(text, "roles: {}", facts.roles.join(", "));
    let _ = writeln!(text, "incarnation: {} (pid {})", facts.incarnation, std::process::id());
    let _ = writeln!(text, "captured at: {}", crate::domain::millis::utc(now));
    let _ = writeln!(
        text,
        "incident: {} ({} of {}, detected by {} at {}){}",
        incident.id,
        incident.trigger,
        incident.subject,
        incident.origin,
        crate::domain::millis::utc(incident.detected_at_ms),
        match incident.detail.is_empty() {
            true => String::new(),
            false => format!(": {}", incident.detail),
        }
    );
    if let Some(member) = member {
        member_state(&mut text, member).await;
    }
    let _ = writeln!(text, "\n== metrics ==\n{}", crate::metrics::metrics().encode());
    for (log, lines) in LOG_LINES {
        let _ = writeln!(text, "== trace log {log} (newest {lines} lines) ==");
        for line in logs().lines(log, lines) {
            let _ = writeln!(text, "{line}");
        }
    }
    cap_bundle(text.into_bytes(), cap)
}

/// A member's Raft state, newest events and operations in flight, from its own copy (it
/// answers during an election too).
async fn member_state(text: &mut String, member: &LocalHsdb) {
    let node = member.node();
    let m = node.raft.metrics().borrow().clone();
    let _ = writeln!(text, "\n== HSDB member {} ==", node.node_id);
    let _ = writeln!(
        text,
        "state: {:?}, term {}, leader {:?}, last applied {:?}, snapshot {:?}",
        m.state, m.current_term, m.current_leader, m.last_applied, m.snapshot
    );
    let _ = writeln!(text, "membership: {:?}", m.membership_config.membership());
    let _ = writeln!(text, "NOSPACE alarms: {:?}", node.space_alarms());
    let reads = member.follower_reads();
    match reads.newest_sequence(crate::hsdb::Table::Event).await {
        Ok(newest) => {
            let _ = writeln!(text, "\n== newest events ==");
            for (seq, e) in reads.events_after(newest.saturating_sub(EVENTS), EVENTS as usize).await.unwrap_or_default()
            {
                let EventRecord { name, subject, message, at_ms } = e;
                let _ = writeln!(text, "{seq} {} {name} {subject}: {message}", crate::domain::millis::utc(at_ms));
            }
        }
        Err(e) => {
            let _ = writeln!(text, "events not read: {e}");
        }
    }
    let _ = writeln!(text, "\n== operations in flight ==");
    for task in reads.list::<RecoveryTaskRecord>().await.unwrap_or_default().iter().filter(|t| !t.finished) {
        let _ = writeln!(text, "recovery task {} ({} of {}): {} VMs", task.id, task.cause, task.subject, task.total());
    }
    for lock in reads.list::<VmLock>().await.unwrap_or_default().iter().filter(|l| l.holder != 0) {
        let _ = writeln!(
            text,
            "VM {} locked for {} at epoch {} by member {}",
            lock.vm, lock.operation, lock.epoch, lock.holder
        );
    }
}
