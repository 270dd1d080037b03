//! The chaos suite's judgement, as pure functions over what it read from the cluster: the SAN's
//! record, the server units' inventories, VM placements before and after a fault, and the
//! recovery times per fault kind. The driver (`examples/chaos/`) injects faults into the
//! container cluster; these decide whether an invariant (SPEC §5) was broken, and the unit tests
//! show they do catch a broken one.
use crate::pb::SanOperation;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Reads back what the copies of a VM wrote to its disk, in the SAN's order (every accepted
/// write carries the stamp of the copy that wrote it): once a newer copy has written, an older
/// copy writing again means two copies of the VM ran at once. This judges the data the VMs
/// wrote, not the SAN's acceptance rule — it also sees two copies on one host, which share
/// the host's reservation key.
pub fn double_runs(disk: &str, record: &[SanOperation]) -> Vec<String> {
    let mut retired = std::collections::BTreeSet::new();
    let mut current: Option<&str> = None;
    let mut out = Vec::new();
    for op in record.iter().filter(|op| op.disk == disk && op.kind == "WRITE") {
        if op.writer.is_empty() {
            out.push(format!("disk {disk}: write #{} carries no copy stamp", op.sequence));
            continue;
        }
        if current == Some(op.writer.as_str()) {
            continue;
        }
        if retired.contains(op.writer.as_str()) {
            out.push(format!(
                "disk {disk}: copy {} wrote again (write #{}) after copy {} had written: the VM ran twice",
                op.writer,
                op.sequence,
                current.unwrap_or("?")
            ));
        }
        retired.extend(current);
        current = Some(&op.writer);
    }
    out
}

/// Reads a VM's disk log back (its workload writes record N into block N): every run of
/// accepted writes must start at the block after the last one, whichever copy wrote it — a gap
/// is data lost, a repeat data written twice. The record may have lost its oldest rows (it is
/// bounded): the check starts at its first write. On a DR site's SAN the writes replicated from
/// the other site (REPLICA) continue the log too, and a full copy (RESYNC) sets where it ends.
pub fn log_breaks(disk: &str, record: &[SanOperation]) -> Vec<String> {
    let mut head: Option<u64> = None;
    let mut out = Vec::new();
    for op in record.iter().filter(|op| op.disk == disk) {
        match op.kind.as_str() {
            "RESYNC" => {
                head = Some(op.last_block);
                continue;
            }
            "WRITE" | "REPLICA" => {}
            _ => continue,
        }
        if let Some(head) = head
            && op.first_block != head + 1
        {
            let what = if op.first_block > head + 1 { "skips to" } else { "goes back to" };
            out.push(format!(
                "disk {disk}: the log {what} block {} after block {head} (write #{}, copy {}): data {}",
                op.first_block,
                op.sequence,
                op.writer,
                if op.first_block > head + 1 { "lost" } else { "written twice" }
            ));
        }
        head = Some(op.last_block);
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

    fn write(sequence: u64, writer: &str) -> SanOperation {
        SanOperation { sequence, disk: "d".into(), kind: "WRITE".into(), writer: writer.into(), ..Default::default() }
    }

    fn op(sequence: u64, kind: &str) -> SanOperation {
        SanOperation { sequence, disk: "d".into(), kind: kind.into(), ..Default::default() }
    }

    fn blocks(sequence: u64, writer: &str, first: u64, last: u64) -> SanOperation {
        SanOperation { first_block: first, last_block: last, ..write(sequence, writer) }
    }

    #[test]
    fn a_log_that_goes_on_across_copies_is_whole_and_a_gap_or_repeat_is_caught() {
        let whole = [blocks(7, "h1#1", 4, 9), op(8, "PREEMPT"), blocks(9, "h2#2", 10, 12)];
        assert!(log_breaks("d", &whole).is_empty());
        let gap = [blocks(1, "h1#1", 1, 9), blocks(2, "h2#2", 11, 12)];
        assert_eq!(
            log_breaks("d", &gap),
            ["disk d: the log skips to block 11 after block 9 (write #2, copy h2#2): data lost"]
        );
        let repeat = [blocks(1, "h1#1", 1, 9), blocks(2, "h2#2", 9, 12)];
        assert!(log_breaks("d", &repeat)[0].contains("goes back to block 9 after block 9"));
    }

    #[test]
    fn one_copy_after_another_is_clean() {
        let record = [
            write(1, "h1#00000001"),
            op(2, "PREEMPT"),
            op(3, "WRITE_REJECTED"),
            write(4, "h2#00000002"),
            write(5, "h1#00000003"),
            write(6, "h1#00000003"),
        ];
        assert!(double_runs("d", &record).is_empty());
        assert!(double_runs("other", &[write(1, "h1#00000001"), write(2, "h2#00000002")]).is_empty());
    }

    #[test]
    fn an_older_copy_writing_again_is_caught_even_on_one_host() {
        let v = double_runs("d", &[write(1, "h1#00000001"), write(2, "h2#00000002"), write(3, "h1#00000001")]);
        assert_eq!(
            v,
            ["disk d: copy h1#00000001 wrote again (write #3) after copy h2#00000002 had written: the VM ran twice"]
        );
        let same_host = [write(1, "h1#00000001"), write(2, "h1#00000002"), write(3, "h1#00000001")];
        assert_eq!(double_runs("d", &same_host).len(), 1, "two copies under one host's key");
        assert_eq!(double_runs("d", &[write(1, "")]), ["disk d: write #1 carries no copy stamp"]);
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
