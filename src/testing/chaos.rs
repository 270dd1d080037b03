//! The chaos suite's judgement, as pure functions over what it read from the cluster: the SAN's
//! record, the server units' inventories, VM placements before and after a fault, and the
//! recovery times per fault kind. The driver (`examples/chaos.rs`) injects faults into the
//! container cluster; these decide whether an invariant (SPEC §5) was broken, and the unit tests
//! show they do catch a broken one.
use crate::pb::SanOperation;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Replays one disk's SAN record: an accepted write from a key that does not hold the
/// reservation at that point means two hosts wrote the VM's disk — the VM ran twice.
pub fn san_violations(disk: &str, record: &[SanOperation]) -> Vec<String> {
    let mut holder = None;
    let mut out = Vec::new();
    for op in record.iter().filter(|op| op.disk == disk) {
        match op.kind.as_str() {
            "RESERVE" | "PREEMPT" => holder = Some(op.key),
            "WRITE" if holder != Some(op.key) => out.push(format!(
                "disk {disk}: write #{} from key {:#x} ({}) while key {} held the reservation",
                op.sequence,
                op.key,
                op.owner,
                holder.map_or("none".into(), |k| format!("{k:#x}"))
            )),
            _ => {}
        }
    }
    out
}

/// VM → the hosts whose hypervisor runs it.
pub type Running = BTreeMap<String, Vec<String>>;

/// Every VM of `managed` runs on exactly one host; the problems, in words.
pub fn exactly_once(managed: &[String], running: &Running) -> Vec<String> {
    managed
        .iter()
        .filter_map(|vm| match running.get(vm).map(Vec::as_slice) {
            Some([_]) => None,
            None | Some([]) => Some(format!("VM {vm} runs nowhere")),
            Some(hosts) => Some(format!("VM {vm} runs on {} hosts at once: {}", hosts.len(), hosts.join(", "))),
        })
        .collect()
}

/// VMs whose host changed between two placements (for faults that must move nothing).
pub fn moved(before: &Running, after: &Running) -> Vec<String> {
    before
        .iter()
        .filter(|(vm, hosts)| after.get(*vm) != Some(hosts))
        .map(|(vm, hosts)| {
            let now = after.get(vm).map_or("nowhere".to_string(), |h| h.join(", "));
            format!("VM {vm} moved from {} to {now}", hosts.join(", "))
        })
        .collect()
}

/// One fault kind's results.
#[derive(Debug, Default, Clone)]
pub struct KindResult {
    pub rounds: usize,
    /// Recovery times (ms) of the rounds that recovered.
    pub recoveries: Vec<u64>,
    pub violations: Vec<String>,
}

/// The per-kind table the suite prints (markdown).
pub fn table(results: &BTreeMap<String, KindResult>) -> String {
    let mut out = String::from(
        "| fault | rounds | recoveries | median recovery (ms) | worst (ms) | violations |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (kind, r) in results {
        let mut times = r.recoveries.clone();
        times.sort_unstable();
        let median = times.get(times.len().saturating_sub(1) / 2).map_or("-".into(), u64::to_string);
        let worst = times.last().map_or("-".into(), u64::to_string);
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {median} | {worst} | {} |",
            r.rounds,
            r.recoveries.len(),
            r.violations.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(sequence: u64, kind: &str, key: u64) -> SanOperation {
        SanOperation {
            sequence,
            disk: "d".into(),
            kind: kind.into(),
            key,
            owner: format!("host-{key}"),
            ..Default::default()
        }
    }

    #[test]
    fn a_fenced_handover_is_clean() {
        let record = [
            op(1, "RESERVE", 1),
            op(2, "WRITE", 1),
            op(3, "PREEMPT", 2),
            op(4, "WRITE_REJECTED", 1),
            op(5, "WRITE", 2),
            op(6, "PREEMPT", 1),
            op(7, "WRITE", 1),
        ];
        assert!(san_violations("d", &record).is_empty());
    }

    #[test]
    fn a_double_owner_is_caught() {
        let record =
            [op(1, "RESERVE", 1), op(2, "WRITE", 1), op(3, "PREEMPT", 2), op(4, "WRITE", 2), op(5, "WRITE", 1)];
        let v = san_violations("d", &record);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("write #5 from key 0x1") && v[0].contains("key 0x2 held"), "{}", v[0]);
        assert_eq!(san_violations("d", &[op(1, "WRITE", 3)]).len(), 1, "a write before any reservation");
    }

    #[test]
    fn running_twice_or_nowhere_is_caught() {
        let running: Running =
            [("a".to_string(), vec!["h1".to_string()]), ("b".to_string(), vec!["h1".to_string(), "h2".to_string()])]
                .into();
        let v = exactly_once(&["a".into(), "b".into(), "c".into()], &running);
        assert_eq!(v, ["VM b runs on 2 hosts at once: h1, h2", "VM c runs nowhere"]);
    }

    #[test]
    fn a_move_is_caught() {
        let before: Running = [("a".to_string(), vec!["h1".to_string()])].into();
        let after: Running = [("a".to_string(), vec!["h2".to_string()])].into();
        assert_eq!(moved(&before, &after), ["VM a moved from h1 to h2"]);
        assert!(moved(&before, &before).is_empty());
    }

    #[test]
    fn the_table_has_a_line_per_kind_with_median_and_worst() {
        let mut results = BTreeMap::new();
        results.insert(
            "host kill".to_string(),
            KindResult { rounds: 3, recoveries: vec![300, 100, 200], violations: vec![] },
        );
        results.insert(
            "vios kill".to_string(),
            KindResult { rounds: 2, recoveries: vec![], violations: vec!["x".into()] },
        );
        let t = table(&results);
        assert!(t.contains("| host kill | 3 | 3 | 200 | 300 | 0 |"), "{t}");
        assert!(t.contains("| vios kill | 2 | 0 | - | - | 1 |"), "{t}");
    }
}
