//! When the active controller discovers a host group by itself (seed: "auto-discovery runs every
//! 24 hours", at `auto_discovery_time`, midnight by default): a **Deep** discovery — the full
//! discovery and verification an administrator runs — once a day at that time (UTC), and a
//! **Quick** one — the HMCs' inventory compared with the records — every
//! `quick_discovery_interval` (an hour by default). A group discovered by hand counts as both,
//! so setting a cluster up does not start another at once; a controller that takes over reads
//! the last runs from the HSDB and does not repeat them.
use crate::domain::DiscoverySchedule;

const DAY_MS: i64 = 86_400_000;

/// Which discovery is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryKind {
    Quick,
    Deep,
}

/// The last scheduled Deep discovery time at or before `now_ms`.
fn last_deep_slot(schedule: &DiscoverySchedule, now_ms: i64) -> i64 {
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS + i64::from(schedule.auto_discovery_time_min) * 60_000;
    if today <= now_ms { today } else { today - DAY_MS }
}

/// The discovery due at `now_ms` for a group last discovered deep at `last_deep_ms` and quick at
/// `last_quick_ms` (0: never): Deep when a daily slot passed since the last Deep one, else Quick
/// when the interval passed since the last of either.
pub fn due(schedule: &DiscoverySchedule, last_deep_ms: i64, last_quick_ms: i64, now_ms: i64) -> Option<DiscoveryKind> {
    if last_deep_ms < last_deep_slot(schedule, now_ms) {
        return Some(DiscoveryKind::Deep);
    }
    let last = last_deep_ms.max(last_quick_ms);
    let every = i64::try_from(schedule.quick_every_ms).unwrap_or(i64::MAX);
    (every > 0 && now_ms.saturating_sub(last) >= every).then_some(DiscoveryKind::Quick)
}

/// `HH:MM` as minutes after midnight.
pub fn parse_time_of_day(raw: &str) -> Option<u16> {
    let (h, m) = raw.trim().split_once(':')?;
    let digits = |s: &str, most: usize| !s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Minutes after midnight as `HH:MM`.
pub fn time_of_day(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_806_400_000; // 2025-12-04 00:00 UTC
    const HOUR: i64 = 3_600_000;

    #[test]
    fn deep_once_a_day_at_its_time() {
        let at_two = DiscoverySchedule { auto_discovery_time_min: 120, ..Default::default() };
        // Discovered by hand at 01:00: nothing until 02:00 (quick after an hour), deep at 02:00.
        let manual = T0 + HOUR;
        assert_eq!(due(&at_two, manual, manual, T0 + HOUR + 1000), None);
        assert_eq!(due(&at_two, manual, manual, T0 + 2 * HOUR), Some(DiscoveryKind::Deep));
        // Deep ran at 02:00:05: quick an hour later, deep again the next day at 02:00.
        let deep = T0 + 2 * HOUR + 5000;
        assert_eq!(due(&at_two, deep, deep, T0 + 3 * HOUR), None);
        assert_eq!(due(&at_two, deep, deep, T0 + 3 * HOUR + 5000), Some(DiscoveryKind::Quick));
        assert_eq!(due(&at_two, deep, T0 + 25 * HOUR, T0 + 26 * HOUR), Some(DiscoveryKind::Deep));
        assert_eq!(due(&at_two, 0, 0, T0 + HOUR), Some(DiscoveryKind::Deep), "never: the last slot is yesterday's");
    }

    #[test]
    fn quick_by_its_interval_or_never() {
        let s = DiscoverySchedule { auto_discovery_time_min: 0, quick_every_ms: 5_000 };
        assert_eq!(due(&s, T0, T0 + 1000, T0 + 5999), None);
        assert_eq!(due(&s, T0, T0 + 1000, T0 + 6000), Some(DiscoveryKind::Quick));
        let off = DiscoverySchedule { quick_every_ms: 0, ..s };
        assert_eq!(due(&off, T0, T0, T0 + 10 * HOUR), None);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("00:00"), Some(0));
        assert_eq!(parse_time_of_day("23:59"), Some(1439));
        assert_eq!(parse_time_of_day("2:05"), Some(125));
        for bad in ["24:00", "12:60", "noon", "12", "-1:00", ""] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
        assert_eq!(time_of_day(125), "02:05");
        assert_eq!(DiscoverySchedule::default().quick_every_ms, 3_600_000);
    }
}
