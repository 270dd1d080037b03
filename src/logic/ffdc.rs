//! The decisions of first-failure data capture (seed 003), over plain data: which incident a
//! trigger opens or joins (storm control), who is expected to contribute, when an incident is
//! settled COMPLETE or PARTIAL, when a resource crosses its threshold (with hysteresis), which
//! incidents the quota evicts, how a bundle is cut to its cap, and which registered nodes
//! failed, came or left.
use crate::domain::{FfdcIncidentRecord, FfdcNodeRecord, FfdcTrigger, IncidentState};
use std::collections::{BTreeMap, BTreeSet};

/// The longest subject an incident id carries.
const SUBJECT_IN_ID: usize = 48;

/// The ids a trigger on a subject may open or join: incidents that coalesce are named after
/// the start of their window, so every node detecting the same thing in one window names the
/// same incident and only the first write of it succeeds; the previous window's incident is
/// joined too while it is younger than the window (a storm that straddles two windows still
/// opens one incident).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub id: String,
    pub previous: Option<String>,
}

pub fn opening(trigger: FfdcTrigger, subject: &str, now_ms: i64, window_ms: i64) -> Opening {
    if !trigger.coalesces() || window_ms <= 0 {
        return Opening { id: incident_id(now_ms, trigger, subject), previous: None };
    }
    let start = now_ms - now_ms.rem_euclid(window_ms);
    Opening {
        id: incident_id(start, trigger, subject),
        previous: Some(incident_id(start - window_ms, trigger, subject)),
    }
}

/// Whether a trigger at `now_ms` joins `previous` (the incident of the window before).
pub fn joins_previous(previous: &FfdcIncidentRecord, now_ms: i64, window_ms: i64) -> bool {
    now_ms - previous.detected_at_ms < window_ms
}

/// `YYYYMMDD-HHMMSS.mmm-<trigger>-<subject>`: sorts by time, names what happened.
pub fn incident_id(at_ms: i64, trigger: FfdcTrigger, subject: &str) -> String {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    let subject: String = subject
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .take(SUBJECT_IN_ID)
        .collect();
    format!("{}-{trigger}-{subject}", at.format("%Y%m%d-%H%M%S%.3f"))
}

/// The nodes an incident expects: those registered that neither left nor were found failed.
pub fn expected(nodes: &[FfdcNodeRecord]) -> Vec<String> {
    nodes.iter().filter(|n| n.expected()).map(|n| n.node.clone()).collect()
}

/// How an incident changes now that `contributed` nodes stored their bundles: COMPLETE once
/// every expected node did (a PARTIAL one too, when the late ones arrived), PARTIAL with the
/// missing nodes once its deadline passed; `None` while it stays as it is.
pub fn settle(
    incident: &FfdcIncidentRecord,
    contributed: &BTreeSet<String>,
    now_ms: i64,
) -> Option<(IncidentState, Vec<String>)> {
    let missing: Vec<String> = incident.expected.iter().filter(|n| !contributed.contains(*n)).cloned().collect();
    let next = match (incident.state, missing.is_empty()) {
        (IncidentState::Complete, _) => return None,
        (_, true) => IncidentState::Complete,
        (IncidentState::Open, false) if now_ms < incident.deadline_ms => return None,
        (_, false) => IncidentState::Partial,
    };
    (next != incident.state || missing != incident.missing).then_some((next, missing))
}

/// Whether the DBN relays an open incident: halfway to its deadline, nodes still missing.
pub fn relay_due(incident: &FfdcIncidentRecord, contributed: &BTreeSet<String>, now_ms: i64) -> bool {
    let halfway = incident.detected_at_ms + (incident.deadline_ms - incident.detected_at_ms) / 2;
    incident.state == IncidentState::Open
        && now_ms >= halfway
        && incident.expected.iter().any(|n| !contributed.contains(n))
}

/// Whether the periodic collection is due: `period_ms` after the newest periodic incident
/// (the incidents are the record, so a new DBN does not collect again), and never when 0.
pub fn periodic_due(incidents: &[FfdcIncidentRecord], now_ms: i64, period_ms: i64) -> bool {
    let newest = incidents.iter().filter(|i| i.trigger == FfdcTrigger::Periodic).map(|i| i.detected_at_ms).max();
    period_ms > 0 && newest.is_none_or(|at| now_ms - at >= period_ms)
}

/// A resource's threshold with hysteresis (seed 003 FIG. 8): it fires when use reaches the
/// threshold, then not again until use fell `hysteresis` points under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    armed: bool,
}

impl Default for Threshold {
    fn default() -> Self {
        Self { armed: true }
    }
}

impl Threshold {
    /// Whether use `pct` crosses the threshold now.
    pub fn observe(&mut self, pct: f64, threshold: u8, hysteresis: u8) -> bool {
        let (threshold, rearm) = (f64::from(threshold), f64::from(threshold) - f64::from(hysteresis));
        match self.armed {
            true if pct >= threshold => {
                self.armed = false;
                true
            }
            false if pct < rearm => {
                self.armed = true;
                false
            }
            _ => false,
        }
    }
}

/// The incidents to evict so that all of them hold at most `quota` bytes: the oldest first
/// (`incidents` is in the order they were detected), never an open one.
pub fn evictions(incidents: &[(String, IncidentState, u64)], quota: u64) -> Vec<String> {
    let mut total: u64 = incidents.iter().map(|(_, _, b)| b).sum();
    let mut evicted = Vec::new();
    for (id, state, bytes) in incidents {
        if total <= quota {
            break;
        }
        if *state != IncidentState::Open {
            total -= bytes;
            evicted.push(id.clone());
        }
    }
    evicted
}

/// `bundle` cut to `cap` bytes, ending with a marker saying so; and whether it was cut.
pub fn cap_bundle(mut bundle: Vec<u8>, cap: usize) -> (Vec<u8>, bool) {
    if bundle.len() <= cap {
        return (bundle, false);
    }
    let marker = format!("\n[FFDC: bundle truncated at {} of {} bytes]\n", cap, bundle.len());
    bundle.truncate(cap.saturating_sub(marker.len()));
    bundle.extend_from_slice(marker.as_bytes());
    (bundle, true)
}

/// What the active controller learns of a registered node from one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// It missed `misses_to_fail` probes in a row.
    Failed,
    /// It answers again after it was found failed.
    Back,
}

/// Missed probes per registered node: a node is failed after `misses_to_fail` in a row.
#[derive(Debug, Default)]
pub struct Liveness {
    misses: BTreeMap<String, u32>,
    failed: BTreeSet<String>,
}

impl Liveness {
    pub fn probe(&mut self, node: &str, answered: bool, misses_to_fail: u32) -> Option<Probed> {
        if answered {
            self.misses.remove(node);
            return self.failed.remove(node).then_some(Probed::Back);
        }
        let misses = self.misses.entry(node.to_string()).or_default();
        *misses += 1;
        (*misses >= misses_to_fail && self.failed.insert(node.to_string())).then_some(Probed::Failed)
    }

    /// Forgets nodes no longer registered.
    pub fn retain(&mut self, registered: &BTreeSet<String>) {
        self.misses.retain(|n, _| registered.contains(n));
        self.failed.retain(|n| registered.contains(n));
    }
}

/// What a registration says of a node since the last look: the changes that open
/// NODE_ADDED or NODE_REMOVED incidents. `seen` holds each node's incarnation and whether it
/// had left; the first look (`seen` empty at activation) only learns.
pub fn membership_changes(
    seen: &BTreeMap<String, (String, bool)>,
    now: &[FfdcNodeRecord],
    first_look: bool,
) -> Vec<(FfdcTrigger, String)> {
    if first_look {
        return Vec::new();
    }
    now.iter()
        .filter_map(|n| {
            let before = seen.get(&n.node);
            match (before, n.left) {
                (Some((_, false)), true) => Some(FfdcTrigger::NodeRemoved),
                (None, false) => Some(FfdcTrigger::NodeAdded),
                (Some((incarnation, left)), false) if *left || *incarnation != n.incarnation => {
                    Some(FfdcTrigger::NodeAdded)
                }
                _ => None,
            }
            .map(|t| (t, n.node.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(expected: &[&str], state: IncidentState, deadline_ms: i64) -> FfdcIncidentRecord {
        FfdcIncidentRecord {
            id: "i".into(),
            trigger: FfdcTrigger::Manual,
            subject: "cluster".into(),
            origin: "ctl-1".into(),
            opened_by: "ctl-1".into(),
            detail: String::new(),
            detected_at_ms: 0,
            deadline_ms,
            expected: expected.iter().map(|s| s.to_string()).collect(),
            state,
            missing: Vec::new(),
            bytes: 0,
        }
    }

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_storm_on_one_subject_names_one_incident_per_window_and_joins_the_previous_one() {
        let w = 60_000;
        let a = opening(FfdcTrigger::HsdbLoss, "host-1-vios1", 1_000, w);
        let b = opening(FfdcTrigger::HsdbLoss, "host-1-vios1", 59_999, w);
        assert_eq!(a, b);
        assert_eq!(a.id, "19700101-000000.000-hsdb_loss-host-1-vios1");
        let c = opening(FfdcTrigger::HsdbLoss, "host-1-vios1", 60_500, w);
        assert_eq!(c.previous.as_deref(), Some(a.id.as_str()));
        let mut first = incident(&[], IncidentState::Open, 0);
        first.detected_at_ms = 59_000;
        assert!(joins_previous(&first, 60_500, w), "the storm straddles two windows: one incident");
        assert!(!joins_previous(&first, 119_000, w));
        assert_ne!(opening(FfdcTrigger::HsdbLoss, "host-2-vios1", 1_000, w).id, a.id);
        let manual = opening(FfdcTrigger::Manual, "ctl-1", 1_234, w);
        assert_eq!((manual.id.as_str(), manual.previous), ("19700101-000001.234-manual-ctl-1", None));
        assert_eq!(incident_id(0, FfdcTrigger::IoFailure, "a/../b c"), "19700101-000000.000-io_failure-a_.._b_c");
    }

    #[test]
    fn an_incident_completes_when_every_expected_node_contributed_or_turns_partial_at_its_deadline() {
        let open = incident(&["a", "b", "c"], IncidentState::Open, 100);
        assert_eq!(settle(&open, &set(&["a", "b"]), 99), None, "still open before the deadline");
        assert_eq!(settle(&open, &set(&["a", "b", "c"]), 50), Some((IncidentState::Complete, vec![])));
        assert_eq!(settle(&open, &set(&["a"]), 100), Some((IncidentState::Partial, vec!["b".into(), "c".into()])));
        let mut partial = incident(&["a", "b", "c"], IncidentState::Partial, 100);
        partial.missing = vec!["b".into(), "c".into()];
        assert_eq!(settle(&partial, &set(&["a"]), 500), None, "nothing new");
        assert_eq!(settle(&partial, &set(&["a", "c"]), 500), Some((IncidentState::Partial, vec!["b".into()])));
        assert_eq!(settle(&partial, &set(&["a", "b", "c"]), 500), Some((IncidentState::Complete, vec![])));
        let complete = incident(&["a"], IncidentState::Complete, 100);
        assert_eq!(settle(&complete, &set(&[]), 500), None);
    }

    #[test]
    fn an_open_incident_missing_nodes_is_relayed_from_halfway_to_its_deadline() {
        let mut open = incident(&["a", "b"], IncidentState::Open, 100);
        open.detected_at_ms = 0;
        assert!(!relay_due(&open, &set(&["a"]), 49));
        assert!(relay_due(&open, &set(&["a"]), 50));
        assert!(!relay_due(&open, &set(&["a", "b"]), 60), "nobody missing");
        let settled = incident(&["a", "b"], IncidentState::Partial, 100);
        assert!(!relay_due(&settled, &set(&["a"]), 200));
    }

    #[test]
    fn the_periodic_collection_is_due_a_period_after_the_newest_one() {
        let mut periodic = incident(&[], IncidentState::Complete, 0);
        periodic.trigger = FfdcTrigger::Periodic;
        periodic.detected_at_ms = 1_000;
        assert!(periodic_due(&[], 5, 60_000), "none yet");
        assert!(!periodic_due(&[], 5, 0), "off");
        assert!(!periodic_due(&[periodic.clone()], 60_999, 60_000));
        assert!(periodic_due(&[periodic.clone()], 61_000, 60_000));
        let manual = incident(&[], IncidentState::Complete, 0);
        assert!(periodic_due(&[manual], 61_000, 60_000), "only periodic incidents count");
    }

    #[test]
    fn a_threshold_fires_once_and_rearms_only_under_its_hysteresis() {
        let mut t = Threshold::default();
        assert!(!t.observe(74.0, 75, 5));
        assert!(t.observe(80.0, 75, 5), "80 % over a 75 % threshold");
        assert!(!t.observe(90.0, 75, 5), "staying above opens nothing new");
        assert!(!t.observe(72.0, 75, 5), "under the threshold but not under the hysteresis");
        assert!(!t.observe(76.0, 75, 5), "not rearmed yet");
        assert!(!t.observe(69.9, 75, 5), "rearmed");
        assert!(t.observe(75.0, 75, 5), "crossing again fires again");
    }

    #[test]
    fn the_quota_evicts_the_oldest_settled_incidents_never_an_open_one() {
        let i = |id: &str, state, bytes| (id.to_string(), state, bytes);
        let all = [
            i("1", IncidentState::Open, 50),
            i("2", IncidentState::Partial, 30),
            i("3", IncidentState::Complete, 30),
            i("4", IncidentState::Complete, 30),
        ];
        assert_eq!(evictions(&all, 140), Vec::<String>::new());
        assert_eq!(evictions(&all, 110), vec!["2".to_string()], "the open one is older but stays");
        assert_eq!(evictions(&all, 80), vec!["2".to_string(), "3".into()]);
        assert_eq!(evictions(&all, 0), vec!["2".to_string(), "3".into(), "4".into()], "never the open one");
    }

    #[test]
    fn an_oversized_bundle_is_cut_with_a_marker_not_refused() {
        assert_eq!(cap_bundle(b"small".to_vec(), 100), (b"small".to_vec(), false));
        let (cut, truncated) = cap_bundle(vec![b'x'; 1000], 200);
        assert!(truncated);
        assert_eq!(cut.len(), 200);
        assert!(String::from_utf8(cut).unwrap().ends_with("[FFDC: bundle truncated at 200 of 1000 bytes]\n"));
    }

    #[test]
    fn a_node_fails_after_its_misses_in_a_row_and_comes_back_once() {
        let mut l = Liveness::default();
        assert_eq!(l.probe("a", false, 3), None);
        assert_eq!(l.probe("a", false, 3), None);
        assert_eq!(l.probe("a", true, 3), None, "an answer resets the count");
        for _ in 0..2 {
            assert_eq!(l.probe("a", false, 3), None);
        }
        assert_eq!(l.probe("a", false, 3), Some(Probed::Failed));
        assert_eq!(l.probe("a", false, 3), None, "failed once");
        assert_eq!(l.probe("a", true, 3), Some(Probed::Back));
        assert_eq!(l.probe("a", true, 3), None);
        l.probe("b", false, 1);
        l.retain(&set(&["a"]));
        assert_eq!(l.probe("b", true, 1), None, "forgotten");
    }

    #[test]
    fn registrations_open_node_added_and_node_removed_but_not_at_the_first_look() {
        let reg = |node: &str, incarnation: &str, left| FfdcNodeRecord {
            node: node.into(),
            endpoint: String::new(),
            roles: vec![],
            incarnation: incarnation.into(),
            registered_at_ms: 0,
            left,
            failed_at_ms: None,
        };
        let seen: BTreeMap<String, (String, bool)> =
            [("a".to_string(), ("1".to_string(), false)), ("b".to_string(), ("1".to_string(), true))].into();
        let now = [reg("a", "1", false), reg("b", "2", false), reg("c", "1", false)];
        assert_eq!(membership_changes(&seen, &now, true), vec![]);
        assert_eq!(
            membership_changes(&seen, &now, false),
            vec![(FfdcTrigger::NodeAdded, "b".into()), (FfdcTrigger::NodeAdded, "c".into())]
        );
        let restarted = [reg("a", "2", false)];
        assert_eq!(membership_changes(&seen, &restarted, false), vec![(FfdcTrigger::NodeAdded, "a".into())]);
        let gone = [reg("a", "1", true)];
        assert_eq!(membership_changes(&seen, &gone, false), vec![(FfdcTrigger::NodeRemoved, "a".into())]);
        let mut failed = reg("a", "1", false);
        failed.failed_at_ms = Some(5);
        assert_eq!(expected(&[failed, reg("b", "1", true), reg("c", "1", false)]), vec!["c".to_string()]);
    }
}
