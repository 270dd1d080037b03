//! The VM half of the FDE's decision (seed 000 §2.3.2; notes seed000-B §5.3, seed000-C §4.5),
//! taken per managed VM on every NeedsAttention reply, after the host checks.
//!
//! ```text
//!  missedHb absent ─▶ healthy (HBoffset back to 0)
//!  missedHb < VMFDT ─▶ no action
//!  missedHb ≥ VMFDT ─▶ ping ─ answers ─▶ ignore the missed heartbeats
//!                          └ silent ──▶ HMC: LPAR state, reference code, boot mode
//!     Running            (missed − HBoffset) > VMFDT and the OS has started  ─▶ relocate
//!     Not Activated      HBoffset = missed; missed > 2·VMFDT and the last D200A200
//!                        entry has no word3 (no shutdown reason)              ─▶ relocate
//!     Open Firmware      missed > VMFDT and the profile does not boot to SMS  ─▶ relocate
//!     Migrating-Running  missed > 24 h                             ─▶ VM_LPM_HANG_DETECTED
//!     Not Available, Error, Shutting Down, Hardware Discovery,
//!     Migrating-Not Activated: missed > 2·VMFDT                    ─▶ VM_NONRESP_DETECTED
//! ```
//! VMFDT = `host_failure_detection_time` + k × VMthreshold, k = 1, 2, 3 for the VM's
//! `vm_failure_detection_speed` fast, normal, slow. The ping and HMC queries are I/O: the FDE
//! actor makes them and hands their answers to [`decide`].
pub use crate::domain::DetectionSpeed;
use crate::domain::{EventName, LparState};
use std::time::Duration;
use strum::Display;

/// VMFDT: how long both host monitors must miss a VM's heartbeats before the FDE looks closer.
pub fn vm_failure_detection_time(host_fdt: Duration, speed: DetectionSpeed, vm_threshold: Duration) -> Duration {
    host_fdt + vm_threshold * speed.thresholds()
}

/// How many times the FDE tries to relocate one failed VM before it leaves it to the admin
/// (vSphere HA's default: 5 restart attempts).
pub const RELOCATION_ATTEMPTS: u32 = 5;

/// How long to wait after the `failed`-th failed relocation of a VM before the next attempt:
/// `first`, then doubling; `None` once every attempt is spent.
pub fn relocation_retry(failed: u32, first: Duration) -> Option<Duration> {
    (1..RELOCATION_ATTEMPTS).contains(&failed).then(|| first * 2u32.pow(failed - 1))
}

/// Reference codes of a running partition whose operating system has started (AIX shows 0 or
/// nothing; Linux its distribution).
pub const OS_STARTED_REFCODES: [&str; 5] = ["", "0", "Linux ppc64", "Linux ppc64le", "SUSE Linux"];

/// What the HMC reports of the VM's partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LparFacts {
    pub state: LparState,
    pub reference_code: String,
    /// The partition profile boots to the SMS menu (someone stopped it there on purpose).
    pub boots_to_sms: bool,
    /// word3 of the most recent `D200A200` reference code, the shutdown reason; `None` when it
    /// is NULL or there is no such entry (the partition went down without a shutdown).
    pub shutdown_reason: Option<String>,
}

impl LparFacts {
    /// A partition in `state` with nothing more to tell: no reference code, no shutdown reason.
    pub fn bare(state: LparState) -> Self {
        Self { state, reference_code: String::new(), boots_to_sms: false, shutdown_reason: None }
    }
}

/// The evidence the FDE gathered for a VM whose heartbeats are missing for VMFDT or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The VM answers ping: its heartbeats are missing, the VM is not.
    Pingable,
    /// No ping answer; the HMC's view of the partition.
    Silent(LparFacts),
}

/// What to do about one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmAction {
    /// Restart the VM elsewhere (seed: "VM failure detected. Initiating recovery").
    Relocate,
    /// Raise an event, move nothing.
    Raise(EventName),
    /// Nothing to do, and why.
    NoAction(NoActionReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Display)]
pub enum NoActionReason {
    #[strum(to_string = "pingable, missed heartbeats ignored")]
    Pingable,
    /// Running, but (missed − HBoffset) is not yet over VMFDT or the OS has not started.
    #[strum(to_string = "running; missed heartbeats minus HBoffset not over VMFDT or OS not started")]
    RunningNotYet,
    /// Not Activated, within 2·VMFDT: it may be booting or was just relocated.
    #[strum(to_string = "not activated; waiting until twice VMFDT")]
    NotActivatedNotYet,
    /// Not Activated after a shutdown with a reason: intentional.
    #[strum(to_string = "shut down with a reason; no action")]
    ShutDownOnPurpose,
    /// Open Firmware because the profile boots to SMS, or not yet over VMFDT.
    #[strum(to_string = "in Open Firmware; boots to SMS or not over VMFDT")]
    OpenFirmwareNotYet,
    /// A state whose limit is not reached yet.
    #[strum(to_string = "limit for its LPAR state not reached")]
    Waiting,
}

/// The decision and the VM's HBoffset to keep for the next reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDecision {
    pub action: VmAction,
    pub hb_offset: Duration,
}

/// Limits of the VM rule (seed: VMFDT from the settings, LPM hang after 24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmRule {
    pub vmfdt: Duration,
    pub lpm_hang_after: Duration,
}

/// The first step, from the NeedsAttention reply alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstLook {
    /// Heartbeats arrive; the VM's HBoffset goes back to 0 (seed: [I] reset on resumption).
    Healthy,
    /// Missing for less than VMFDT: no action (seed: "Missed HB count N … is less than its VMFDT").
    BelowThreshold,
    /// Missing for VMFDT or more: ping the VM, then ask the HMC, then [`decide`].
    GatherEvidence,
}

/// `missed` is the reply's missedHb, `None` when the VM's heartbeats arrive.
pub fn first_look(rule: &VmRule, missed: Option<Duration>) -> FirstLook {
    match missed {
        None => FirstLook::Healthy,
        Some(m) if m < rule.vmfdt => FirstLook::BelowThreshold,
        Some(_) => FirstLook::GatherEvidence,
    }
}

/// The decision for a VM missing heartbeats for `missed` ≥ VMFDT, given the evidence.
pub fn decide(rule: &VmRule, missed: Duration, hb_offset: Duration, evidence: &Evidence) -> VmDecision {
    let keep = |action| VmDecision { action, hb_offset };
    let lpar = match evidence {
        Evidence::Pingable => return keep(VmAction::NoAction(NoActionReason::Pingable)),
        Evidence::Silent(lpar) => lpar,
    };
    let vmfdt = rule.vmfdt;
    match lpar.state {
        LparState::Running => {
            let os_started = OS_STARTED_REFCODES.contains(&lpar.reference_code.as_str());
            match missed.saturating_sub(hb_offset) > vmfdt && os_started {
                true => keep(VmAction::Relocate),
                false => keep(VmAction::NoAction(NoActionReason::RunningNotYet)),
            }
        }
        LparState::NotActivated => {
            let action = match (missed > vmfdt * 2, &lpar.shutdown_reason) {
                (false, _) => VmAction::NoAction(NoActionReason::NotActivatedNotYet),
                (true, None) => VmAction::Relocate,
                (true, Some(_)) => VmAction::NoAction(NoActionReason::ShutDownOnPurpose),
            };
            VmDecision { action, hb_offset: missed }
        }
        LparState::OpenFirmware => match missed > vmfdt && !lpar.boots_to_sms {
            true => keep(VmAction::Relocate),
            false => keep(VmAction::NoAction(NoActionReason::OpenFirmwareNotYet)),
        },
        LparState::MigratingRunning => match missed > rule.lpm_hang_after {
            true => keep(VmAction::Raise(EventName::VmLpmHangDetected)),
            false => keep(VmAction::NoAction(NoActionReason::Waiting)),
        },
        LparState::NotAvailable
        | LparState::Error
        | LparState::ShuttingDown
        | LparState::HardwareDiscovery
        | LparState::MigratingNotActivated => match missed > vmfdt * 2 {
            true => keep(VmAction::Raise(EventName::VmNonrespDetected)),
            false => keep(VmAction::NoAction(NoActionReason::Waiting)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// The seed's defaults: hostFDT 90 s, normal speed, VMthreshold 50 s → VMFDT 190 s.
    fn rule() -> VmRule {
        VmRule { vmfdt: vm_failure_detection_time(S(90), DetectionSpeed::Normal, S(50)), lpm_hang_after: S(86_400) }
    }

    fn silent(state: LparState, refcode: &str) -> Evidence {
        Evidence::Silent(LparFacts {
            state,
            reference_code: refcode.into(),
            boots_to_sms: false,
            shutdown_reason: None,
        })
    }

    fn action(missed: u64, offset: u64, evidence: Evidence) -> VmAction {
        decide(&rule(), S(missed), S(offset), &evidence).action
    }

    const fn no(reason: NoActionReason) -> VmAction {
        VmAction::NoAction(reason)
    }

    #[test]
    fn vmfdt_is_host_time_plus_k_thresholds() {
        let vmfdt = |fdt, speed| vm_failure_detection_time(S(fdt), speed, S(50));
        assert_eq!(vmfdt(90, DetectionSpeed::Normal), S(190));
        assert_eq!(vmfdt(90, DetectionSpeed::Fast), S(140));
        assert_eq!(vmfdt(90, DetectionSpeed::Slow), S(240));
        assert_eq!(vmfdt(600, DetectionSpeed::Slow), S(750));
        assert_eq!(DetectionSpeed::default(), DetectionSpeed::Normal);
    }

    #[test]
    fn the_reply_alone_settles_healthy_and_below_threshold_vms() {
        assert_eq!(first_look(&rule(), None), FirstLook::Healthy);
        assert_eq!(first_look(&rule(), Some(S(50))), FirstLook::BelowThreshold);
        assert_eq!(first_look(&rule(), Some(S(189))), FirstLook::BelowThreshold);
        assert_eq!(first_look(&rule(), Some(S(190))), FirstLook::GatherEvidence);
    }

    #[test]
    fn a_pingable_vm_is_never_relocated() {
        assert_eq!(action(232, 0, Evidence::Pingable), no(NoActionReason::Pingable));
        assert_eq!(action(100_000, 0, Evidence::Pingable), no(NoActionReason::Pingable));
    }

    #[test]
    fn running_relocates_past_vmfdt_plus_offset_once_the_os_has_started() {
        for refcode in OS_STARTED_REFCODES {
            assert_eq!(action(240, 0, silent(LparState::Running, refcode)), VmAction::Relocate, "{refcode:?}");
        }
        // Exactly VMFDT is not over it.
        assert_eq!(action(190, 0, silent(LparState::Running, "")), no(NoActionReason::RunningNotYet));
        // A VM seen Not Activated before carries an offset: a just-relocated VM waits.
        assert_eq!(action(240, 100, silent(LparState::Running, "")), no(NoActionReason::RunningNotYet));
        assert_eq!(action(300, 100, silent(LparState::Running, "")), VmAction::Relocate);
        // Firmware still booting: the OS has not started.
        assert_eq!(action(240, 0, silent(LparState::Running, "CA00E1F1")), no(NoActionReason::RunningNotYet));
    }

    #[test]
    fn not_activated_raises_the_offset_and_relocates_only_after_twice_vmfdt_without_a_shutdown_reason() {
        let d = decide(&rule(), S(200), S(0), &silent(LparState::NotActivated, ""));
        assert_eq!(d, VmDecision { action: no(NoActionReason::NotActivatedNotYet), hb_offset: S(200) });
        assert_eq!(action(380, 0, silent(LparState::NotActivated, "")), no(NoActionReason::NotActivatedNotYet));
        let d = decide(&rule(), S(381), S(200), &silent(LparState::NotActivated, ""));
        assert_eq!(d, VmDecision { action: VmAction::Relocate, hb_offset: S(381) });
        let on_purpose = Evidence::Silent(LparFacts {
            state: LparState::NotActivated,
            reference_code: "D200A200".into(),
            boots_to_sms: false,
            shutdown_reason: Some("00000001".into()),
        });
        assert_eq!(action(400, 0, on_purpose), no(NoActionReason::ShutDownOnPurpose));
    }

    #[test]
    fn open_firmware_relocates_unless_the_profile_boots_to_sms() {
        assert_eq!(action(191, 0, silent(LparState::OpenFirmware, "")), VmAction::Relocate);
        assert_eq!(action(190, 0, silent(LparState::OpenFirmware, "")), no(NoActionReason::OpenFirmwareNotYet));
        let sms = Evidence::Silent(LparFacts {
            state: LparState::OpenFirmware,
            reference_code: String::new(),
            boots_to_sms: true,
            shutdown_reason: None,
        });
        assert_eq!(action(500, 0, sms), no(NoActionReason::OpenFirmwareNotYet));
    }

    #[test]
    fn a_migration_hung_for_a_day_raises_an_event_and_moves_nothing() {
        let migrating = || silent(LparState::MigratingRunning, "");
        assert_eq!(action(86_400, 0, migrating()), no(NoActionReason::Waiting));
        assert_eq!(action(86_401, 0, migrating()), VmAction::Raise(EventName::VmLpmHangDetected));
    }

    #[test]
    fn unresponsive_states_raise_an_event_after_twice_vmfdt() {
        for state in [
            LparState::NotAvailable,
            LparState::Error,
            LparState::ShuttingDown,
            LparState::HardwareDiscovery,
            LparState::MigratingNotActivated,
        ] {
            assert_eq!(action(380, 0, silent(state, "")), no(NoActionReason::Waiting), "{state:?}");
            assert_eq!(action(381, 0, silent(state, "")), VmAction::Raise(EventName::VmNonrespDetected), "{state:?}");
        }
    }

    #[test]
    fn other_states_keep_the_offset() {
        let d = decide(&rule(), S(240), S(30), &silent(LparState::Running, ""));
        assert_eq!(d.hb_offset, S(30));
        assert_eq!(decide(&rule(), S(240), S(30), &Evidence::Pingable).hb_offset, S(30));
    }

    #[test]
    fn a_failed_relocation_is_tried_again_later_and_later_then_given_up() {
        let waits: Vec<_> = (1..=RELOCATION_ATTEMPTS).map(|n| relocation_retry(n, S(120))).collect();
        // vSphere HA's retries: +2, +6, +14, +30 min after the first attempt.
        assert_eq!(waits, [Some(S(120)), Some(S(240)), Some(S(480)), Some(S(960)), None]);
        assert_eq!(relocation_retry(0, S(120)), None, "nothing failed yet");
    }
}
