//! How a VIOS answers the FDE from the HSDB's health rows (seed: `vioHsQuickQuery`,
//! `vioHsNeedsAttention`). A VIOS is UP while its host monitor's heartbeat row is fresh; a VM's
//! heartbeat counts as missed only when **both** host monitors of its host miss it, and the
//! larger age is reported (seed: "Missing HB from both vioses, max from :3").
use crate::domain::{HmHealthRecord, VmHbMissedRecord};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViosHealth {
    pub vios_uuid: String,
    pub up: bool,
    pub hm_responsive: bool,
    /// How long since the HM's last heartbeat row; `None` when it never wrote one.
    pub hm_response: Option<Duration>,
    /// The HM's incarnation while it is responsive.
    pub hm_incarnation: Option<String>,
    /// It was shut down on purpose (its last row says so): the CAA reason SHUTDOWN.
    pub shut_down: bool,
}

/// The health of one VIOS at `now_ms`, from its HM's heartbeat row. A VIOS shut down on purpose
/// is DOWN from its last row on, as CAA tells its peers of a clean node shutdown at once.
pub fn vios_health(vios_uuid: &str, row: Option<&HmHealthRecord>, now_ms: i64, down_after: Duration) -> ViosHealth {
    let age = row.map(|r| Duration::from_millis(now_ms.saturating_sub(r.last_heartbeat_ms).max(0) as u64));
    let shut_down = row.is_some_and(|r| r.shut_down);
    let fresh = age.is_some_and(|a| a < down_after) && !shut_down;
    let hm_incarnation = row.filter(|_| fresh).map(|r| r.incarnation.clone());
    ViosHealth {
        vios_uuid: vios_uuid.to_string(),
        up: fresh,
        hm_responsive: fresh,
        hm_response: age,
        hm_incarnation,
        shut_down,
    }
}

/// What the host monitors of a VM's host say of it together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmMonitorState {
    /// At least one HM receives its heartbeats (seed: `STARTED`).
    Started,
    /// Its agent stopped cleanly (seed: `SHDN`, `SUSPENDED`): no heartbeats expected, no action.
    Suspended,
    /// Every HM misses its heartbeats, for this many milliseconds (the oldest row counts).
    Missing(u64),
}

/// The VM as all of `vios_uuids` (its host's HMs) report it: missing only when **every** HM
/// misses it, suspended when an HM was told the agent stopped.
pub fn vm_monitor_state(
    vm_uuid: &str,
    vios_uuids: &[String],
    rows: &[VmHbMissedRecord],
    now_ms: i64,
) -> VmMonitorState {
    let mine: Vec<&VmHbMissedRecord> = rows.iter().filter(|r| r.vm_uuid == vm_uuid).collect();
    if mine.iter().any(|r| r.suspended && vios_uuids.contains(&r.vios_uuid)) {
        return VmMonitorState::Suspended;
    }
    let mut oldest: Option<i64> = None;
    for vios in vios_uuids {
        let Some(row) = mine.iter().find(|r| &r.vios_uuid == vios) else {
            return VmMonitorState::Started;
        };
        oldest = Some(oldest.map_or(row.missed_since_ms, |o| o.min(row.missed_since_ms)));
    }
    match oldest {
        Some(since) => VmMonitorState::Missing(now_ms.saturating_sub(since).max(0) as u64),
        None => VmMonitorState::Started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOWN_AFTER: Duration = Duration::from_millis(700);

    fn hm(last: i64) -> HmHealthRecord {
        HmHealthRecord {
            vios: "v".into(),
            vios_uuid: "v".into(),
            host: "h".into(),
            incarnation: "1".into(),
            last_heartbeat_ms: last,
            shut_down: false,
        }
    }

    fn missed(vios: &str, since: i64) -> VmHbMissedRecord {
        VmHbMissedRecord {
            vm: "vm".into(),
            vm_uuid: "vm".into(),
            vios_uuid: vios.into(),
            host: "h".into(),
            missed_since_ms: since,
            suspended: false,
        }
    }

    #[test]
    fn vios_is_up_while_its_hm_heartbeat_is_fresh() {
        assert!(vios_health("v", Some(&hm(1_000)), 1_500, DOWN_AFTER).up);
        let stale = vios_health("v", Some(&hm(1_000)), 1_700, DOWN_AFTER);
        assert!(!stale.up && !stale.hm_responsive);
        assert_eq!(stale.hm_response, Some(DOWN_AFTER));
    }

    #[test]
    fn a_vios_shut_down_on_purpose_is_down_at_once_with_its_reason() {
        let last = HmHealthRecord { shut_down: true, ..hm(1_000) };
        let h = vios_health("v", Some(&last), 1_100, DOWN_AFTER);
        assert!(!h.up && !h.hm_responsive && h.shut_down);
        assert_eq!(h.hm_incarnation, None);
        assert!(!vios_health("v", Some(&hm(1_000)), 1_100, DOWN_AFTER).shut_down);
    }

    #[test]
    fn vios_without_any_hm_row_is_down() {
        let h = vios_health("v", None, 1_000, DOWN_AFTER);
        assert!(!h.up);
        assert_eq!(h.hm_response, None);
    }

    #[test]
    fn vm_missed_only_when_both_hms_miss_it_and_the_older_miss_counts() {
        let vios = vec!["a".to_string(), "b".to_string()];
        let state = |rows: &[VmHbMissedRecord]| vm_monitor_state("vm", &vios, rows, 1_000);
        assert_eq!(state(&[missed("a", 100)]), VmMonitorState::Started);
        assert_eq!(state(&[missed("a", 100), missed("b", 400)]), VmMonitorState::Missing(900));
        assert_eq!(state(&[]), VmMonitorState::Started);
        assert_eq!(vm_monitor_state("vm", &[], &[], 1_000), VmMonitorState::Started);
    }

    #[test]
    fn a_clean_agent_stop_suspends_instead_of_missing() {
        let vios = vec!["a".to_string(), "b".to_string()];
        let suspended = |v: &str| VmHbMissedRecord { suspended: true, ..missed(v, 100) };
        let state = |rows: &[VmHbMissedRecord]| vm_monitor_state("vm", &vios, rows, 1_000);
        assert_eq!(state(&[suspended("a"), suspended("b")]), VmMonitorState::Suspended);
        assert_eq!(state(&[suspended("a"), missed("b", 100)]), VmMonitorState::Suspended, "one HM heard the SHDN");
        assert_eq!(state(&[suspended("c")]), VmMonitorState::Started, "another host's HM");
    }
}
