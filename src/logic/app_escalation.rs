//! What the controller does with an application report (seed: `checkRebootOrRelocation`, the
//! escalation ladder of seed 000 §4.4). The agent restarts a failing app itself up to
//! `max_restart` times; an app that still fails is in FAILURE (RED). Then:
//!
//! * not critical: an event only — the administrator repairs it; the VM stays;
//! * critical: the VM is restarted on its own host, up to `VM_max_restart_count` (3) times;
//!   the next FAILURE moves it to another host by the policies, where the count starts over
//!   (seed: "ping-pong" between hosts until the app is NORMAL).
//!
//! Only a *new* FAILURE counts (the app was not in FAILURE in the previous report), so the same
//! report read twice never restarts a VM twice. The count goes back to 0 once every critical
//! app reports NORMAL.
use super::app_engine::{AppState, AppStatus};

/// Seed: `VM_max_restart_count: 3` (hard-coded there too).
pub const VM_MAX_RESTART_COUNT: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmAppAction {
    /// Seed: "No Action needed on LPAR".
    None,
    /// Restart the VM on the host it runs on.
    RestartInPlace,
    /// Restart the VM on another host of its group.
    Relocate,
}

/// An application that has just reached FAILURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedApp {
    pub name: String,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Each raises a PERMANENT_APP_FAILURE event.
    pub failed: Vec<FailedApp>,
    pub action: VmAppAction,
    /// The VM's `VM_restart_count` after this report.
    pub vm_restart_count: u32,
}

/// Decides on one report (`current`) against the last one recorded (`previous`).
pub fn escalate(previous: &[AppStatus], current: &[AppStatus], vm_restart_count: u32) -> Escalation {
    let was_failed = |name: &str| previous.iter().any(|p| p.name == name && p.state == AppState::Failure);
    let failed: Vec<FailedApp> = current
        .iter()
        .filter(|a| a.monitored && a.state == AppState::Failure && !was_failed(&a.name))
        .map(|a| FailedApp { name: a.name.clone(), critical: a.critical })
        .collect();
    let (action, count) = match failed.iter().any(|f| f.critical) {
        true if vm_restart_count < VM_MAX_RESTART_COUNT => (VmAppAction::RestartInPlace, vm_restart_count + 1),
        true => (VmAppAction::Relocate, 0),
        false => {
            let mut critical = current.iter().filter(|a| a.critical && a.monitored).peekable();
            let recovered = critical.peek().is_some() && critical.all(|a| a.state == AppState::Normal);
            (VmAppAction::None, if recovered { 0 } else { vm_restart_count })
        }
    };
    Escalation { failed, action, vm_restart_count: count }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::app_engine::ScriptResult;

    fn app(name: &str, state: AppState, critical: bool) -> AppStatus {
        AppStatus {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            state,
            result: ScriptResult::NotSet,
            running: false,
            monitored: true,
            critical,
            monitor_failures: 0,
            monitor_failure_threshold: 3,
            stop_failures: 0,
            stop_max_failures: 3,
            start_failures: 0,
            start_max_failures: 3,
            restarts: 0,
            max_restart: 3,
        }
    }

    #[test]
    fn a_healthy_report_needs_no_action() {
        let now = [app("db", AppState::Normal, true), app("web", AppState::Failing, false)];
        let e = escalate(&[], &now, 0);
        assert_eq!((e.action, e.failed.len(), e.vm_restart_count), (VmAppAction::None, 0, 0));
    }

    #[test]
    fn a_non_critical_failure_raises_an_event_only() {
        let e = escalate(&[app("web", AppState::Failing, false)], &[app("web", AppState::Failure, false)], 0);
        assert_eq!(e.failed, vec![FailedApp { name: "web".into(), critical: false }]);
        assert_eq!((e.action, e.vm_restart_count), (VmAppAction::None, 0));
    }

    #[test]
    fn a_critical_failure_restarts_the_vm_in_place_three_times_then_moves_it() {
        let before = [app("db", AppState::ToStart, true)];
        let now = [app("db", AppState::Failure, true)];
        let mut count = 0;
        for expected in 1..=VM_MAX_RESTART_COUNT {
            let e = escalate(&before, &now, count);
            assert_eq!((e.action, e.vm_restart_count), (VmAppAction::RestartInPlace, expected));
            count = e.vm_restart_count;
        }
        let e = escalate(&before, &now, count);
        assert_eq!((e.action, e.vm_restart_count), (VmAppAction::Relocate, 0), "the count starts over elsewhere");
    }

    #[test]
    fn the_same_failure_reported_again_is_not_acted_on_twice() {
        let failed = [app("db", AppState::Failure, true)];
        let e = escalate(&failed, &failed, 1);
        assert_eq!((e.action, e.failed.len(), e.vm_restart_count), (VmAppAction::None, 0, 1));
    }

    #[test]
    fn an_app_first_seen_in_failure_counts_as_new() {
        let e = escalate(&[], &[app("db", AppState::Failure, true)], 0);
        assert_eq!(e.action, VmAppAction::RestartInPlace);
    }

    #[test]
    fn an_unmonitored_app_is_never_escalated() {
        let mut db = app("db", AppState::Failure, true);
        db.monitored = false;
        assert_eq!(escalate(&[], &[db], 0).action, VmAppAction::None);
    }

    #[test]
    fn the_count_resets_when_every_critical_app_is_normal_again() {
        let now = [app("db", AppState::Normal, true), app("mq", AppState::Normal, true)];
        assert_eq!(escalate(&[], &now, 2).vm_restart_count, 0);
        let partly = [app("db", AppState::Normal, true), app("mq", AppState::ToStart, true)];
        assert_eq!(escalate(&[], &partly, 2).vm_restart_count, 2, "one critical app still on its way");
        let none = [app("web", AppState::Normal, false)];
        assert_eq!(escalate(&[], &none, 2).vm_restart_count, 2, "no critical app: nothing says it recovered");
    }
}
