//! A linearizability checker for histories of register operations.
//!
//! The HSDB promises that every acknowledged write is durable and that a linearizable read
//! sees the latest acknowledged write. Tests that kill, pause and partition members record what
//! their clients saw — each operation's invocation and completion time and its outcome — and
//! this module decides whether some order of those operations, consistent with real time,
//! explains every observed result on a single-copy register.
//!
//! Keys are independent registers, so each key is checked on its own (linearizability is
//! compositional). Per key it runs the Wing–Gong search with Lowe's memoization: walk the
//! history in time order, tentatively linearize a pending operation whose effect matches the
//! register, backtrack when a completion is reached that nothing could explain, and remember
//! (linearized set, register value) pairs already explored.
//!
//! A write whose outcome is unknown (the client timed out) may have taken effect at any time
//! after its invocation, or never: it is treated as never completing. A failed read has no
//! effect and is left out of the history by the caller. Written values must be unique per key.
use std::collections::{BTreeMap, HashSet};

/// What one operation did to a register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Wrote this value.
    Write(u64),
    /// Read this value (`None`: the key did not exist).
    Read(Option<u64>),
}

/// One client operation as the client observed it. Times come from one monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub key: String,
    pub effect: Effect,
    pub invoked_at: u64,
    /// `None`: the outcome is unknown (only meaningful for writes).
    pub completed_at: Option<u64>,
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// The operations of that key, in invocation order.
    pub operations: Vec<Operation>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "key {} has no linearization of its {} operations:", self.key, self.operations.len())?;
        for op in &self.operations {
            let done = op.completed_at.map_or("unknown".to_string(), |t| t.to_string());
            writeln!(f, "  {:?} invoked {} completed {done}", op.effect, op.invoked_at)?;
        }
        Ok(())
    }
}

/// Checks every key of `history`; returns the first key that has no linearization.
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| o.invoked_at);
        if !linearizable(&without_unobserved_unknown_writes(&ops)) {
            return Err(Violation { key: key.to_string(), operations: ops });
        }
    }
    Ok(())
}

/// Drops writes of unknown outcome whose value no read returned. Values are unique, so such a
/// write can always be taken as never having happened: no read depends on it, and counting it
/// could only ever make a read disagree. Clients that time out during an outage leave many of
/// these; pruning them keeps the search small.
fn without_unobserved_unknown_writes(ops: &[Operation]) -> Vec<Operation> {
    let observed: HashSet<u64> = ops
        .iter()
        .filter_map(|o| match o.effect {
            Effect::Read(Some(v)) => Some(v),
            _ => None,
        })
        .collect();
    ops.iter()
        .filter(|o| o.completed_at.is_some() || !matches!(o.effect, Effect::Write(v) if !observed.contains(&v)))
        .cloned()
        .collect()
}

/// A call or return event in the doubly linked list the search walks.
#[derive(Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// The history of one key as a linked list of events; index 0 is the head sentinel.
struct Events {
    nodes: Vec<Node>,
    /// For each operation, the index of its return node.
    return_of: Vec<usize>,
}

const NIL: usize = usize::MAX;

impl Events {
    fn new(ops: &[Operation]) -> Self {
        // Calls sort before returns at the same instant: touching operations count as
        // concurrent, which never reports a false violation.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked_at, false, i));
            events.push((op.completed_at.unwrap_or(u64::MAX), true, i));
        }
        events.sort();
        let mut nodes = vec![Node { op: NIL, is_call: false, prev: NIL, next: NIL }];
        let mut return_of = vec![0; ops.len()];
        for (time_order, (_, is_return, op)) in events.into_iter().enumerate() {
            let idx = time_order + 1;
            nodes.push(Node { op, is_call: !is_return, prev: idx - 1, next: NIL });
            nodes[idx - 1].next = idx;
            if is_return {
                return_of[op] = idx;
            }
        }
        Self { nodes, return_of }
    }

    fn unlink(&mut self, idx: usize) {
        let Node { prev, next, .. } = self.nodes[idx];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, idx: usize) {
        let Node { prev, next, .. } = self.nodes[idx];
        self.nodes[prev].next = idx;
        if next != NIL {
            self.nodes[next].prev = idx;
        }
    }

    /// Removes an operation's call and return from the list (it has been linearized).
    fn lift(&mut self, call: usize) {
        let ret = self.return_of[self.nodes[call].op];
        self.unlink(call);
        self.unlink(ret);
    }

    /// Puts them back, in the reverse order of `lift`.
    fn unlift(&mut self, call: usize) {
        let ret = self.return_of[self.nodes[call].op];
        self.relink(ret);
        self.relink(call);
    }
}

/// The register's answer to `effect` from `state`: the new state, or `None` if impossible.
fn step(state: Option<u64>, effect: &Effect) -> Option<Option<u64>> {
    match effect {
        Effect::Write(v) => Some(Some(*v)),
        Effect::Read(seen) => (*seen == state).then_some(state),
    }
}

fn linearizable(ops: &[Operation]) -> bool {
    let mut events = Events::new(ops);
    let mut linearized = vec![false; ops.len()];
    let mut seen: HashSet<(Vec<bool>, Option<u64>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut state: Option<u64> = None;
    let mut entry = events.nodes[0].next;
    // Done when every operation is linearized (unknown-outcome writes last, if at all: a
    // write can always be linearized after everything else).
    while events.nodes[0].next != NIL {
        let node = events.nodes[entry];
        if node.is_call {
            let op = node.op;
            if let Some(next_state) = step(state, &ops[op].effect) {
                linearized[op] = true;
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    events.lift(entry);
                    entry = events.nodes[0].next;
                    continue;
                }
                linearized[op] = false;
            }
            entry = node.next;
        } else {
            // A completion nothing linearized before it: undo the last choice.
            let Some((call, previous)) = stack.pop() else { return false };
            state = previous;
            linearized[events.nodes[call].op] = false;
            events.unlift(call);
            entry = events.nodes[call].next;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, effect: Effect, invoked_at: u64, completed_at: Option<u64>) -> Operation {
        Operation { key: key.into(), effect, invoked_at, completed_at }
    }
    use Effect::{Read, Write};

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op("a", Read(None), 0, Some(1)),
            op("a", Write(1), 2, Some(3)),
            op("a", Read(Some(1)), 4, Some(5)),
            op("a", Write(2), 6, Some(7)),
            op("a", Read(Some(2)), 8, Some(9)),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught() {
        // What a read served from a partitioned member's local copy looks like: the write of 2
        // was acknowledged before the read began, yet the read returned the old value 1.
        let h = vec![op("a", Write(1), 0, Some(1)), op("a", Write(2), 2, Some(3)), op("a", Read(Some(1)), 4, Some(5))];
        let violation = check(&h).expect_err("a stale read must be caught");
        assert_eq!(violation.key, "a");
        assert!(violation.to_string().contains("Read(Some(1))"), "{violation}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let h = vec![op("a", Write(7), 0, Some(1)), op("a", Read(None), 2, Some(3))];
        assert!(check(&h).is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The reads overlap the write: one sees the old value, the later one the new value.
        let h = vec![
            op("a", Write(1), 0, Some(1)),
            op("a", Write(2), 2, Some(10)),
            op("a", Read(Some(2)), 3, Some(4)),
            op("a", Read(Some(2)), 5, Some(6)),
        ];
        assert_eq!(check(&h), Ok(()));
        // But once a read saw the new value, a later read cannot see the old one again.
        let h = vec![
            op("a", Write(1), 0, Some(1)),
            op("a", Write(2), 2, Some(10)),
            op("a", Read(Some(2)), 3, Some(4)),
            op("a", Read(Some(1)), 5, Some(6)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_write_with_unknown_outcome_may_or_may_not_have_happened() {
        let happened = vec![op("a", Write(1), 0, None), op("a", Read(Some(1)), 5, Some(6))];
        assert_eq!(check(&happened), Ok(()));
        let did_not = vec![op("a", Write(1), 0, None), op("a", Read(None), 5, Some(6))];
        assert_eq!(check(&did_not), Ok(()));
        // …but it cannot take effect before it was invoked.
        let too_early = vec![op("a", Read(Some(1)), 0, Some(1)), op("a", Write(1), 2, None)];
        assert!(check(&too_early).is_err());
    }

    #[test]
    fn many_unknown_writes_during_an_outage_check_quickly() {
        // 300 timed-out writes while the cluster was down, one of which did land.
        let mut h = vec![op("a", Write(1), 0, Some(1))];
        h.extend((0..300).map(|i| op("a", Write(100 + i), 2 + i, None)));
        h.push(op("a", Read(Some(150)), 1_000, Some(1_001)));
        assert_eq!(check(&h), Ok(()));
        h.push(op("a", Read(Some(1)), 1_002, Some(1_003)));
        assert!(check(&h).is_err(), "once 150 was read, the older 1 cannot come back");
    }

    #[test]
    fn keys_are_checked_independently() {
        let h = vec![
            op("a", Write(1), 0, Some(1)),
            op("b", Write(1), 0, Some(1)),
            op("b", Read(Some(1)), 2, Some(3)),
            op("a", Read(Some(2)), 2, Some(3)),
        ];
        assert_eq!(check(&h).expect_err("a read a value never written to a").key, "a");
    }

    #[test]
    fn a_long_concurrent_history_checks_quickly() {
        // 4 clients, 400 operations on one key, every write read back by its own client.
        let mut h = Vec::new();
        let mut t = 0;
        for round in 0..100u64 {
            for client in 0..4u64 {
                let v = round * 4 + client + 1;
                h.push(op("a", Write(v), t + client, Some(t + 10 + client)));
            }
            h.push(op("a", Read(Some(round * 4 + 4)), t + 20, Some(t + 21)));
            t += 30;
        }
        assert_eq!(check(&h), Ok(()));
    }
}
