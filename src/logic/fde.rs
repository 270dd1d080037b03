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
use crate::domain::LparState;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// CAA reason code of a node that was shut down (seed: `reason='0x00000040'`).
pub const REASON_NODE_SHUTDOWN: u32 = 0x40;

/// What the FDE knows of one VIOS: its CAA state and reason from the HSDB, and for a DOWN
/// VIOS the independent checks (seed §5.2): a direct ping, then the HMC's LPAR state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViosEvidence {
    pub caa_up: bool,
    pub reason: u32,
    /// `None`: not pinged (it is UP).
    pub pingable: Option<bool>,
    /// `None`: not asked, or the HMC did not know.
    pub lpar_state: Option<LparState>,
}

/// The seed's VIOS health rule: UP is healthy; a DOWN VIOS that answers ping is healthy; a DOWN
/// one that was shut down on purpose (Not Activated or Open Firmware with reason SHUTDOWN) is
/// healthy too — no failover for an administrative shutdown. Anything else is unhealthy.
pub fn vios_is_healthy(v: &ViosEvidence) -> bool {
    let shut_down_on_purpose = matches!(v.lpar_state, Some(LparState::NotActivated | LparState::OpenFirmware))
        && v.reason == REASON_NODE_SHUTDOWN;
    v.caa_up || v.pingable == Some(true) || shut_down_on_purpose
}

/// What one FDE poll saw of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostObservation {
    pub host: String,
    pub vios: Vec<ViosObservation>,
}

/// One VIOS as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViosObservation {
    pub uuid: String,
    /// CAA state UP: its transitions are the `VIOS_NODE_FAILURE` / `VIOS_NODE_ACTIVE` events.
    pub up: bool,
    /// The seed's health verdict ([`vios_is_healthy`]): what the host decision counts.
    pub healthy: bool,
    /// When its host monitor was last heard (its last heartbeat into the HSDB), if known.
    pub last_heard_ms: Option<i64>,
    /// The incarnation of its host monitor while that answers; `None` while unresponsive.
    pub hm_incarnation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdeDecision {
    /// A VIOS went down (seed event `VIOS_NODE_FAILURE`).
    ViosDown { host: String, vios: String },
    /// A VIOS came back (seed event `VIOS_NODE_ACTIVE`).
    ViosUp { host: String, vios: String },
    /// Both VIOSs unhealthy for the detection time: relocate the host's managed VMs. `silent`:
    /// how long the host had been silent when declared (the detection time plus whatever the
    /// polling added).
    HostFailed { host: String, silent: Duration },
    /// A host monitor answers again, or answers with a new incarnation: it restarted (seed
    /// event `VIOS_HM_RESP_DETECTED`). Never a reason to move anything.
    HmResponsive { host: String, vios: String, incarnation: String, previous: String },
}

/// What the detector remembers of one host monitor.
#[derive(Debug, Clone)]
struct HmSeen {
    incarnation: String,
    responsive: bool,
}

#[derive(Debug, Default, Clone)]
pub struct HostFailureDetector {
    down_vios: BTreeSet<String>,
    hms: BTreeMap<String, HmSeen>,
    /// Host → since when it has been unresponsive (its VIOSs' last sign of life).
    unhealthy_since: BTreeMap<String, i64>,
    declared: BTreeSet<String>,
}

impl HostFailureDetector {
    pub fn observe(&mut self, now_ms: i64, detection_time: Duration, hosts: &[HostObservation]) -> Vec<FdeDecision> {
        let mut out = Vec::new();
        for h in hosts {
            for ViosObservation { uuid: vios, up, .. } in &h.vios {
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
            for v in &h.vios {
                out.extend(self.observe_hm(&h.host, v));
            }
            let all_unhealthy = !h.vios.is_empty() && h.vios.iter().all(|v| !v.healthy);
            if !all_unhealthy {
                self.unhealthy_since.remove(&h.host);
                self.declared.remove(&h.host);
                continue;
            }
            // The host has been unresponsive since its VIOSs were last heard, not since this
            // poll noticed: the detection time counts from the last sign of life.
            let last_heard = h.vios.iter().filter_map(|v| v.last_heard_ms).max().unwrap_or(now_ms).min(now_ms);
            let since = *self.unhealthy_since.entry(h.host.clone()).or_insert(last_heard);
            let elapsed = Duration::from_millis(now_ms.saturating_sub(since).max(0) as u64);
            if elapsed >= detection_time && self.declared.insert(h.host.clone()) {
                out.push(FdeDecision::HostFailed { host: h.host.clone(), silent: elapsed });
            }
        }
        out
    }

    fn observe_hm(&mut self, host: &str, v: &ViosObservation) -> Option<FdeDecision> {
        let Some(incarnation) = &v.hm_incarnation else {
            if let Some(seen) = self.hms.get_mut(&v.uuid) {
                seen.responsive = false;
            }
            return None;
        };
        let seen = HmSeen { incarnation: incarnation.clone(), responsive: true };
        match self.hms.insert(v.uuid.clone(), seen) {
            Some(old) if !old.responsive || old.incarnation != *incarnation => Some(FdeDecision::HmResponsive {
                host: host.to_string(),
                vios: v.uuid.clone(),
                incarnation: incarnation.clone(),
                previous: old.incarnation,
            }),
            _ => None,
        }
    }

    /// The final sanity check found a VIOS alive: forget the suspicion and start over.
    pub fn cancel(&mut self, host: &str) {
        self.unhealthy_since.remove(host);
        self.declared.remove(host);
    }

    /// When the next suspected host's detection time runs out: the FDE polls then, not a
    /// poll period later.
    pub fn next_deadline(&self, detection_time: Duration) -> Option<i64> {
        let pending = self.unhealthy_since.iter().filter(|(host, _)| !self.declared.contains(*host));
        pending.map(|(_, since)| since.saturating_add(detection_time.as_millis() as i64)).min()
    }

    /// Hosts under suspicion or declared failed: the VM rule leaves their VMs to the host rule.
    pub fn suspects(&self, host: &str) -> bool {
        self.unhealthy_since.contains_key(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDT: Duration = Duration::from_millis(1_500);

    fn vios(uuid: &str, up: bool, healthy: bool) -> ViosObservation {
        let hm_incarnation = up.then(|| format!("{uuid}.1"));
        ViosObservation { uuid: uuid.into(), up, healthy, last_heard_ms: None, hm_incarnation }
    }

    fn obs(a: bool, b: bool) -> Vec<HostObservation> {
        vec![HostObservation { host: "h1".into(), vios: vec![vios("a", a, a), vios("b", b, b)] }]
    }

    fn failed(d: &[FdeDecision]) -> bool {
        d.iter().any(|x| matches!(x, FdeDecision::HostFailed { .. }))
    }

    fn down(pingable: bool, lpar_state: Option<LparState>, reason: u32) -> ViosEvidence {
        ViosEvidence { caa_up: false, reason, pingable: Some(pingable), lpar_state }
    }

    #[test]
    fn vios_health_follows_caa_then_ping_then_a_clean_shutdown() {
        assert!(vios_is_healthy(&ViosEvidence { caa_up: true, reason: 0, pingable: None, lpar_state: None }));
        assert!(vios_is_healthy(&down(true, None, REASON_NODE_SHUTDOWN)), "CAA down but pingable");
        for state in [LparState::NotActivated, LparState::OpenFirmware] {
            assert!(vios_is_healthy(&down(false, Some(state), REASON_NODE_SHUTDOWN)), "{state:?} after a shutdown");
            assert!(!vios_is_healthy(&down(false, Some(state), 0)), "{state:?} without a shutdown reason");
        }
        assert!(!vios_is_healthy(&down(false, Some(LparState::Running), REASON_NODE_SHUTDOWN)));
        assert!(!vios_is_healthy(&down(false, Some(LparState::Error), REASON_NODE_SHUTDOWN)));
        assert!(!vios_is_healthy(&down(false, None, REASON_NODE_SHUTDOWN)), "the HMC could not tell");
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
        let failed_after = |ms| vec![FdeDecision::HostFailed { host: "h1".into(), silent: Duration::from_millis(ms) }];
        assert_eq!(fde.observe(1_500, FDT, &obs(false, false)), failed_after(1_500));
        assert!(fde.observe(3_000, FDT, &obs(false, false)).is_empty());
        // A poll that comes late declares the host late, and says how late.
        let mut fde = HostFailureDetector::default();
        assert!(!failed(&fde.observe(0, FDT, &obs(false, false))));
        assert_eq!(fde.observe(1_730, FDT, &obs(false, false)), failed_after(1_730));
    }

    #[test]
    fn a_vios_back_before_the_detection_time_resets_the_clock() {
        let mut fde = HostFailureDetector::default();
        fde.observe(0, FDT, &obs(false, false));
        let d = fde.observe(1_000, FDT, &obs(true, false));
        assert_eq!(d[0], FdeDecision::ViosUp { host: "h1".into(), vios: "a".into() });
        fde.observe(1_200, FDT, &obs(false, false));
        assert!(!failed(&fde.observe(2_600, FDT, &obs(false, false))));
        assert!(failed(&fde.observe(2_700, FDT, &obs(false, false))));
    }

    #[test]
    fn a_down_but_healthy_vios_is_an_event_but_keeps_its_host() {
        let mut fde = HostFailureDetector::default();
        let hosts =
            vec![HostObservation { host: "h1".into(), vios: vec![vios("a", false, true), vios("b", false, false)] }];
        let d = fde.observe(0, FDT, &hosts);
        assert_eq!(d.len(), 2, "both CAA transitions are events: {d:?}");
        assert!(!failed(&fde.observe(10_000, FDT, &hosts)));
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

    #[test]
    fn the_detection_time_counts_from_the_last_sign_of_life() {
        let mut fde = HostFailureDetector::default();
        let silent =
            |uuid: &str, last_heard| ViosObservation { last_heard_ms: Some(last_heard), ..vios(uuid, false, false) };
        let hosts = |a, b| vec![HostObservation { host: "h1".into(), vios: vec![silent("a", a), silent("b", b)] }];
        // Noticed at 900, but the VIOSs were last heard at 100 and 200.
        assert!(!failed(&fde.observe(900, FDT, &hosts(100, 200))));
        assert_eq!(fde.next_deadline(FDT), Some(1_700));
        assert!(!failed(&fde.observe(1_699, FDT, &hosts(100, 200))));
        assert!(failed(&fde.observe(1_700, FDT, &hosts(100, 200))));
        assert_eq!(fde.next_deadline(FDT), None, "declared hosts have no deadline left");
        assert!(fde.suspects("h1"));
    }

    #[test]
    fn a_restarted_host_monitor_is_seen_by_its_new_incarnation() {
        let mut fde = HostFailureDetector::default();
        let hm = |incarnation: Option<&str>| {
            let v = ViosObservation { hm_incarnation: incarnation.map(str::to_string), ..vios("a", true, true) };
            vec![HostObservation { host: "h1".into(), vios: vec![v] }]
        };
        assert!(fde.observe(0, FDT, &hm(Some("1"))).is_empty(), "the first sighting is no event");
        assert!(fde.observe(100, FDT, &hm(Some("1"))).is_empty());
        let restarted = FdeDecision::HmResponsive {
            host: "h1".into(),
            vios: "a".into(),
            incarnation: "2".into(),
            previous: "1".into(),
        };
        assert_eq!(fde.observe(200, FDT, &hm(Some("2"))), vec![restarted.clone()], "restarted between two polls");
        assert!(fde.observe(300, FDT, &hm(None)).is_empty(), "unresponsive");
        let back = FdeDecision::HmResponsive {
            host: "h1".into(),
            vios: "a".into(),
            incarnation: "2".into(),
            previous: "2".into(),
        };
        assert_eq!(fde.observe(400, FDT, &hm(Some("2"))), vec![back], "responsive again, same incarnation");
        assert!(!failed(&fde.observe(10_000, FDT, &hm(Some("2")))));
    }
}
