//! The FDE's watch over a host group's VMs between NeedsAttention replies: events in, commands
//! out. The FDE actor feeds it what a reply showed ([`VmWatch::sighted`]), the evidence it
//! gathered ([`VmWatch::evidence`]) and how an action ended ([`VmWatch::acted`],
//! [`VmWatch::retried`]); it answers with what to do next ([`WatchCommand`]). The rule itself is
//! [`crate::logic::vm_failure`]'s; this is the bookkeeping around it that used to live in the
//! actor: each VM's HBoffset, its event raised once per episode, one check or action at a time,
//! and a failed relocation tried again later and later.
//!
//! ```text
//!  sighted ─ healthy ──────────────▶ forgotten (unless an action still runs)
//!          ─ below VMFDT ──────────▶ watched, deadline noted (the FDE polls right then)
//!          ─ VMFDT or more, idle ──▶ Gather ─▶ evidence ─▶ decide ─┬ no action ─▶ NoAction (logged on change)
//!                                                                ├ raise ─────▶ Act (once per episode)
//!                                                                └ relocate ──▶ Act ─▶ acted ─ failed ─▶ RetryLater
//!  retried ─ failed ─▶ RetryLater (1×, 2×, 4× … the first wait) … ─▶ GiveUp after the last attempt
//! ```
use crate::domain::{VmRecord, VmStatus};
use crate::logic::vm_failure::{self, Evidence, FirstLook, NoActionReason, VmAction, VmRule, first_look};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A managed VM as one NeedsAttention reply showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSighting {
    pub vm: VmRecord,
    /// The reply's missedHb; `None` when at least one host monitor receives its heartbeats.
    pub missed: Option<Duration>,
    pub rule: VmRule,
}

/// What the FDE actor is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchCommand {
    /// Ask the HMC about the VM's partition and ping the VM; answer with [`VmWatch::evidence`].
    Gather(VmSighting),
    /// Carry out a decision's event or relocation; answer with [`VmWatch::acted`].
    Act { vm: VmRecord, action: VmAction, missed: Duration },
    /// The decision is to do nothing (told only when the reason changed).
    NoAction { vm: String, reason: NoActionReason, missed: Duration },
    /// No evidence this time (the HMC did not answer); the next reply tries again.
    NoEvidence { vm: String, why: String },
    /// Relocate the VM again after `after`, as attempt `attempt`; answer with [`VmWatch::retried`].
    RetryLater { vm: String, after: Duration, attempt: u32 },
    /// Every attempt failed: the admin restarts the VM by hand (RESTART_FAILED).
    GiveUp { vm: String, failed: u32 },
}

/// What the watch remembers of one VM between replies.
#[derive(Debug, Default, Clone, PartialEq)]
struct WatchedVm {
    /// Seed: raised each time the VM is found Not Activated, so a VM just relocated is not
    /// relocated again at once; back to 0 when heartbeats resume.
    hb_offset: Duration,
    /// The event of this episode is raised once, not on every reply.
    raised: bool,
    /// The last no-action reason told, to tell changes only.
    last_reason: Option<NoActionReason>,
    /// Evidence is being gathered, an action or a retry runs: replies leave the VM alone.
    busy: bool,
}

/// The VM half of one host group's FDE.
#[derive(Debug, Clone)]
pub struct VmWatch {
    vms: BTreeMap<String, WatchedVm>,
    /// When the first VM below its VMFDT reaches it (ms since the epoch).
    next_deadline: Option<i64>,
    /// The wait after a VM's first failed relocation (doubling after each further one).
    first_retry: Duration,
}

impl VmWatch {
    pub fn new(first_retry: Duration) -> Self {
        Self { vms: BTreeMap::new(), next_deadline: None, first_retry }
    }

    /// When a VM below its VMFDT as of the last reply reaches it: the FDE polls then.
    pub fn next_deadline(&self) -> Option<i64> {
        self.next_deadline
    }

    /// The VMs of one NeedsAttention reply at `now_ms`. VMs on hosts `excluded` says are the
    /// host rule's (suspected or being recovered) are left out.
    pub fn sighted(
        &mut self,
        now_ms: i64,
        sightings: Vec<VmSighting>,
        excluded: impl Fn(&str) -> bool,
    ) -> Vec<WatchCommand> {
        self.next_deadline = None;
        let mut seen = BTreeSet::new();
        let mut commands = Vec::new();
        for s in sightings {
            let name = s.vm.name.clone();
            seen.insert(name.clone());
            if excluded(&s.vm.host) {
                continue;
            }
            match first_look(&s.rule, s.missed) {
                FirstLook::Healthy => {
                    if !self.vms.get(&name).is_some_and(|w| w.busy) {
                        self.vms.remove(&name);
                    }
                }
                FirstLook::BelowThreshold => {
                    let left = s.rule.vmfdt.saturating_sub(s.missed.unwrap_or_default());
                    let due = now_ms + left.as_millis() as i64 + 1;
                    self.next_deadline = Some(self.next_deadline.map_or(due, |d| d.min(due)));
                    self.vms.entry(name).or_default();
                }
                FirstLook::GatherEvidence => {
                    let watched = self.vms.entry(name).or_default();
                    if watched.busy || s.vm.vm_status != VmStatus::NoOperationInProgress {
                        continue;
                    }
                    watched.busy = true;
                    commands.push(WatchCommand::Gather(s));
                }
            }
        }
        self.vms.retain(|name, w| w.busy || seen.contains(name));
        commands
    }

    /// The evidence gathered for a [`WatchCommand::Gather`] (or why there is none).
    pub fn evidence(&mut self, s: VmSighting, evidence: Result<Evidence, String>) -> Vec<WatchCommand> {
        let name = s.vm.name.clone();
        let Some(watched) = self.vms.get_mut(&name) else {
            return Vec::new();
        };
        watched.busy = false;
        let evidence = match evidence {
            Ok(e) => e,
            Err(why) => return vec![WatchCommand::NoEvidence { vm: name, why }],
        };
        let missed = s.missed.unwrap_or_default();
        let decision = vm_failure::decide(&s.rule, missed, watched.hb_offset, &evidence);
        watched.hb_offset = decision.hb_offset;
        match decision.action {
            VmAction::NoAction(reason) if watched.last_reason.as_ref() == Some(&reason) => Vec::new(),
            VmAction::NoAction(reason) => {
                watched.last_reason = Some(reason.clone());
                vec![WatchCommand::NoAction { vm: name, reason, missed }]
            }
            VmAction::Raise(_) if watched.raised => Vec::new(),
            action => {
                match action {
                    VmAction::Raise(_) => watched.raised = true,
                    _ => watched.busy = true,
                }
                vec![WatchCommand::Act { vm: s.vm, action, missed }]
            }
        }
    }

    /// An [`WatchCommand::Act`] ended; `failed` when it did not do what it should.
    pub fn acted(&mut self, vm: &str, action: &VmAction, failed: bool) -> Vec<WatchCommand> {
        self.idle(vm);
        match (action, failed) {
            (VmAction::Relocate, true) => self.relocation_failed(vm, 1),
            _ => Vec::new(),
        }
    }

    /// A [`WatchCommand::RetryLater`]'s attempt ended.
    pub fn retried(&mut self, vm: &str, attempt: u32, failed: bool) -> Vec<WatchCommand> {
        self.idle(vm);
        match failed {
            true => self.relocation_failed(vm, attempt),
            false => Vec::new(),
        }
    }

    fn idle(&mut self, vm: &str) {
        if let Some(w) = self.vms.get_mut(vm) {
            w.busy = false;
        }
    }

    /// The VM's relocation failed `failed` times so far: later, or never again. Meanwhile the
    /// replies leave the VM be.
    fn relocation_failed(&mut self, vm: &str, failed: u32) -> Vec<WatchCommand> {
        let vm = vm.to_string();
        match vm_failure::relocation_retry(failed, self.first_retry) {
            None => vec![WatchCommand::GiveUp { vm, failed }],
            Some(after) => {
                self.vms.entry(vm.clone()).or_default().busy = true;
                vec![WatchCommand::RetryLater { vm, after, attempt: failed + 1 }]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventName, LparState};
    use crate::logic::vm_failure::{LparFacts, RELOCATION_ATTEMPTS};

    const S: fn(u64) -> Duration = Duration::from_secs;
    const RETRY: Duration = Duration::from_secs(120);

    fn rule() -> VmRule {
        VmRule { vmfdt: S(190), lpm_hang_after: S(86_400) }
    }

    fn vm(name: &str, host: &str) -> VmRecord {
        VmRecord { vm_status: VmStatus::NoOperationInProgress, ..VmRecord::at_rest(name, host) }
    }

    fn sighting(name: &str, missed: Option<u64>) -> VmSighting {
        VmSighting { vm: vm(name, "host-1"), missed: missed.map(S), rule: rule() }
    }

    fn none(_: &str) -> bool {
        false
    }

    fn running() -> Evidence {
        Evidence::Silent(LparFacts::bare(LparState::Running))
    }

    fn silent(state: LparState) -> Evidence {
        Evidence::Silent(LparFacts::bare(state))
    }

    /// A watch that has sent `name` to gather evidence at `missed` seconds.
    fn gathering(name: &str, missed: u64) -> (VmWatch, VmSighting) {
        let mut w = VmWatch::new(RETRY);
        let s = sighting(name, Some(missed));
        assert_eq!(w.sighted(0, vec![s.clone()], none), vec![WatchCommand::Gather(s.clone())]);
        (w, s)
    }

    #[test]
    fn healthy_vms_are_forgotten_and_below_threshold_ones_set_the_next_deadline() {
        let mut w = VmWatch::new(RETRY);
        let out = w.sighted(1_000, vec![sighting("a", None), sighting("b", Some(150)), sighting("c", Some(100))], none);
        assert!(out.is_empty());
        // b reaches VMFDT in 40 s, c in 90 s: the earliest, plus a millisecond to be past it.
        assert_eq!(w.next_deadline(), Some(1_000 + 40_000 + 1));
        assert!(!w.vms.contains_key("a") && w.vms.contains_key("b") && w.vms.contains_key("c"));
        // Heartbeats back: forgotten, and no deadline any more.
        assert!(w.sighted(2_000, vec![sighting("b", None), sighting("c", None)], none).is_empty());
        assert_eq!(w.next_deadline(), None);
        assert!(w.vms.is_empty());
    }

    #[test]
    fn vms_the_reply_no_longer_shows_are_forgotten() {
        let mut w = VmWatch::new(RETRY);
        w.sighted(0, vec![sighting("a", Some(10))], none);
        w.sighted(0, vec![], none);
        assert!(w.vms.is_empty());
    }

    #[test]
    fn vms_on_an_excluded_host_are_the_host_rules() {
        let mut w = VmWatch::new(RETRY);
        let out = w.sighted(0, vec![sighting("a", Some(500))], |h| h == "host-1");
        assert!(out.is_empty());
        assert!(!w.vms.contains_key("a"));
    }

    #[test]
    fn past_vmfdt_evidence_is_gathered_once_at_a_time_and_not_for_a_vm_under_an_operation() {
        let (mut w, s) = gathering("a", 200);
        // A second reply while the evidence is being gathered: nothing new.
        assert!(w.sighted(0, vec![s.clone()], none).is_empty());
        let mut locked = sighting("b", Some(500));
        locked.vm.vm_status = VmStatus::RestartInProgress;
        assert!(w.sighted(0, vec![s, locked], none).is_empty());
        assert!(w.vms.contains_key("b"), "watched, but left to its operation");
    }

    #[test]
    fn a_busy_vm_survives_a_healthy_reply() {
        let (mut w, _) = gathering("a", 200);
        w.sighted(0, vec![sighting("a", None)], none);
        assert!(w.vms["a"].busy);
    }

    #[test]
    fn no_evidence_frees_the_vm_for_the_next_reply() {
        let (mut w, s) = gathering("a", 200);
        let out = w.evidence(s.clone(), Err("HMC down".into()));
        assert_eq!(out, vec![WatchCommand::NoEvidence { vm: "a".into(), why: "HMC down".into() }]);
        assert_eq!(w.sighted(0, vec![s.clone()], none), vec![WatchCommand::Gather(s)]);
    }

    #[test]
    fn evidence_for_a_vm_no_longer_watched_is_dropped() {
        let mut w = VmWatch::new(RETRY);
        assert!(w.evidence(sighting("a", Some(500)), Ok(running())).is_empty());
    }

    #[test]
    fn a_no_action_reason_is_told_when_it_changes_only() {
        let (mut w, s) = gathering("a", 200);
        let told = w.evidence(s.clone(), Ok(Evidence::Pingable));
        assert_eq!(
            told,
            vec![WatchCommand::NoAction { vm: "a".into(), reason: NoActionReason::Pingable, missed: S(200) }]
        );
        w.sighted(0, vec![s.clone()], none);
        assert!(w.evidence(s.clone(), Ok(Evidence::Pingable)).is_empty(), "same reason again");
        w.sighted(0, vec![s.clone()], none);
        let changed = w.evidence(s, Ok(silent(LparState::NotActivated)));
        assert!(matches!(&changed[..], [WatchCommand::NoAction { reason: NoActionReason::NotActivatedNotYet, .. }]));
    }

    #[test]
    fn not_activated_keeps_the_missed_time_as_hb_offset_until_heartbeats_resume() {
        let (mut w, s) = gathering("a", 200);
        w.evidence(s, Ok(silent(LparState::NotActivated)));
        assert_eq!(w.vms["a"].hb_offset, S(200));
        // Found running at 300 s: 300 − 200 is not over VMFDT, so no relocation yet.
        let later = sighting("a", Some(300));
        w.sighted(0, vec![later.clone()], none);
        let out = w.evidence(later, Ok(running()));
        assert!(matches!(&out[..], [WatchCommand::NoAction { reason: NoActionReason::RunningNotYet, .. }]));
        w.sighted(0, vec![sighting("a", None)], none);
        assert!(!w.vms.contains_key("a"), "healthy again: the offset is gone with it");
    }

    #[test]
    fn an_event_is_raised_once_per_episode() {
        let (mut w, s) = gathering("a", 400);
        let raise = VmAction::Raise(EventName::VmNonrespDetected);
        let out = w.evidence(s.clone(), Ok(silent(LparState::Error)));
        assert_eq!(out, vec![WatchCommand::Act { vm: s.vm.clone(), action: raise.clone(), missed: S(400) }]);
        assert!(!w.vms["a"].busy, "an event does not hold the VM");
        assert!(w.acted("a", &raise, false).is_empty());
        w.sighted(0, vec![s.clone()], none);
        assert!(w.evidence(s, Ok(silent(LparState::Error))).is_empty());
    }

    #[test]
    fn a_relocation_holds_the_vm_until_it_ends() {
        let (mut w, s) = gathering("a", 400);
        let out = w.evidence(s.clone(), Ok(running()));
        assert_eq!(out, vec![WatchCommand::Act { vm: s.vm.clone(), action: VmAction::Relocate, missed: S(400) }]);
        assert!(w.sighted(0, vec![s.clone()], none).is_empty(), "the relocation runs");
        assert!(w.acted("a", &VmAction::Relocate, false).is_empty());
        assert_eq!(w.sighted(0, vec![s.clone()], none), vec![WatchCommand::Gather(s)]);
    }

    #[test]
    fn a_failed_event_is_not_retried() {
        let (mut w, _) = gathering("a", 400);
        assert!(w.acted("a", &VmAction::Raise(EventName::VmNonrespDetected), true).is_empty());
    }

    #[test]
    fn a_failed_relocation_is_tried_again_later_and_later_then_given_up() {
        let (mut w, s) = gathering("a", 400);
        w.evidence(s.clone(), Ok(running()));
        let first = w.acted("a", &VmAction::Relocate, true);
        assert_eq!(first, vec![WatchCommand::RetryLater { vm: "a".into(), after: RETRY, attempt: 2 }]);
        assert!(w.sighted(0, vec![s], none).is_empty(), "the VM waits for its retry");
        let mut waits = vec![RETRY];
        for attempt in 2..RELOCATION_ATTEMPTS {
            match &w.retried("a", attempt, true)[..] {
                [WatchCommand::RetryLater { after, attempt: next, .. }] => {
                    assert_eq!(*next, attempt + 1);
                    waits.push(*after);
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(waits, [RETRY, RETRY * 2, RETRY * 4, RETRY * 8]);
        let last = w.retried("a", RELOCATION_ATTEMPTS, true);
        assert_eq!(last, vec![WatchCommand::GiveUp { vm: "a".into(), failed: RELOCATION_ATTEMPTS }]);
        assert!(!w.vms["a"].busy, "after giving up the replies judge the VM again");
    }

    #[test]
    fn a_retry_that_works_ends_the_retries() {
        let (mut w, s) = gathering("a", 400);
        w.evidence(s, Ok(running()));
        w.acted("a", &VmAction::Relocate, true);
        assert!(w.retried("a", 2, false).is_empty());
        assert!(!w.vms["a"].busy);
    }
}
