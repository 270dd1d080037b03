//! The host-failure half of the FDE's decision (seed 000 §2.2.6, notes seed000-B §5.2):
//! a host fails only when **both** its VIOSs are unhealthy, continuously, for
//! `host_failure_detection_time`. A VIOS that comes back before that resets the clock (flap
//! damping). A single VIOS going down or up is an event, never a relocation.
//!
//! ```text
//!  healthy ──all VIOSs down──▶ suspected(since) ──now-since ≥ FDT──▶ failed (once)
//!     ▲                              │                                  │
//!     └──────── any VIOS up ─────────┴──────────────────────────────────┘
//! ```
//! The controller still runs the seed's final direct sanity check on a `HostFailed` decision
//! and cancels the relocation (calling [`HostFailureDetector::cancel`]) if a VIOS answers.
use std::collections::{BTreeMap, BTreeSet};

/// What one FDE poll saw of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostObservation {
    pub host: String,
    /// (VIOS uuid, up) for each VIOS of the host.
    pub vios: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdeDecision {
    /// A VIOS went down (seed event `VIOS_NODE_FAILURE`).
    ViosDown { host: String, vios: String },
    /// A VIOS came back (seed event `VIOS_NODE_ACTIVE`).
    ViosUp { host: String, vios: String },
    /// Both VIOSs unhealthy for the detection time: relocate the host's managed VMs.
    HostFailed { host: String },
}

#[derive(Debug, Default, Clone)]
pub struct HostFailureDetector {
    down_vios: BTreeSet<String>,
    unhealthy_since: BTreeMap<String, i64>,
    declared: BTreeSet<String>,
}

impl HostFailureDetector {
    pub fn observe(&mut self, now_ms: i64, detection_time_ms: u64, hosts: &[HostObservation]) -> Vec<FdeDecision> {
        let mut out = Vec::new();
        for h in hosts {
            for (vios, up) in &h.vios {
                let was_down = self.down_vios.contains(vios);
                match (*up, was_down) {
                    (false, false) => {
                        self.down_vios.insert(vios.clone());
                        out.push(FdeDecision::ViosDown { host: h.host.clone(), vios: vios.clone() });
                    }
                    (true, true) => {
                        self.down_vios.remove(vios);
                        out.push(FdeDecision::ViosUp { host: h.host.clone(), vios: vios.clone() });
                    }
                    _ => {}
                }
            }
            let all_down = !h.vios.is_empty() && h.vios.iter().all(|(_, up)| !up);
            if !all_down {
                self.unhealthy_since.remove(&h.host);
                self.declared.remove(&h.host);
                continue;
            }
            let since = *self.unhealthy_since.entry(h.host.clone()).or_insert(now_ms);
            let elapsed = now_ms.saturating_sub(since).max(0) as u64;
            if elapsed >= detection_time_ms && self.declared.insert(h.host.clone()) {
                out.push(FdeDecision::HostFailed { host: h.host.clone() });
            }
        }
        out
    }

    /// The final sanity check found a VIOS alive: forget the suspicion and start over.
    pub fn cancel(&mut self, host: &str) {
        self.unhealthy_since.remove(host);
        self.declared.remove(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDT: u64 = 1_500;

    fn obs(a: bool, b: bool) -> Vec<HostObservation> {
        vec![HostObservation { host: "h1".into(), vios: vec![("a".into(), a), ("b".into(), b)] }]
    }

    fn failed(d: &[FdeDecision]) -> bool {
        d.iter().any(|x| matches!(x, FdeDecision::HostFailed { .. }))
    }

    #[test]
    fn one_vios_down_is_an_event_never_a_host_failure() {
        let mut fde = HostFailureDetector::default();
        let d = fde.observe(0, FDT, &obs(false, true));
        assert_eq!(d, vec![FdeDecision::ViosDown { host: "h1".into(), vios: "a".into() }]);
        assert!(!failed(&fde.observe(10_000, FDT, &obs(false, true))));
    }

    #[test]
    fn both_vios_down_fail_the_host_after_the_detection_time_exactly_once() {
        let mut fde = HostFailureDetector::default();
        assert!(!failed(&fde.observe(0, FDT, &obs(false, false))));
        assert!(!failed(&fde.observe(1_499, FDT, &obs(false, false))));
        assert_eq!(fde.observe(1_500, FDT, &obs(false, false)), vec![FdeDecision::HostFailed { host: "h1".into() }]);
        assert!(fde.observe(3_000, FDT, &obs(false, false)).is_empty());
    }

    #[test]
    fn a_vios_back_before_the_detection_time_resets_the_clock() {
        let mut fde = HostFailureDetector::default();
        fde.observe(0, FDT, &obs(false, false));
        let d = fde.observe(1_000, FDT, &obs(true, false));
        assert_eq!(d, vec![FdeDecision::ViosUp { host: "h1".into(), vios: "a".into() }]);
        fde.observe(1_200, FDT, &obs(false, false));
        assert!(!failed(&fde.observe(2_600, FDT, &obs(false, false))));
        assert!(failed(&fde.observe(2_700, FDT, &obs(false, false))));
    }

    #[test]
    fn cancel_after_sanity_check_starts_over() {
        let mut fde = HostFailureDetector::default();
        fde.observe(0, FDT, &obs(false, false));
        assert!(failed(&fde.observe(1_500, FDT, &obs(false, false))));
        fde.cancel("h1");
        assert!(!failed(&fde.observe(1_600, FDT, &obs(false, false))));
        assert!(failed(&fde.observe(3_100, FDT, &obs(false, false))));
    }

    #[test]
    fn a_returned_host_can_fail_again() {
        let mut fde = HostFailureDetector::default();
        fde.observe(0, FDT, &obs(false, false));
        assert!(failed(&fde.observe(2_000, FDT, &obs(false, false))));
        fde.observe(3_000, FDT, &obs(true, true));
        fde.observe(4_000, FDT, &obs(false, false));
        assert!(failed(&fde.observe(5_500, FDT, &obs(false, false))));
    }
}
