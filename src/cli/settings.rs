//! `ksysmgr modify`'s attributes — the seed's `key=value` words — into the typed settings the
//! admin API takes. Only their syntax is checked here (a number, a known word); which level
//! takes which setting, and the ranges in force, are the controller's to check.
use crate::domain::policy::{parse_capacity, parse_on_off};
use crate::domain::{DetectionSpeed, NotificationLevel, Priority, RestartPolicy};
use crate::pb;
use std::collections::BTreeMap;

/// Every attribute `modify` knows (the controller says which of them a level takes).
pub const KEYS: &[&str] = &[
    "host_failure_detection_time",
    "vm_failure_detection_speed",
    "ha_monitor",
    "restart_policy",
    "memory_capacity",
    "cpu_capacity",
    "priority",
    "blacklist_hosts",
    "policy",
    "homehost",
    "notification_level",
    "dup_event_processing",
    "smtp_relay",
    "smtp_sender",
    "auto_discovery_time",
    "quick_discovery_interval",
];

/// `a,b,c` as its non-empty items.
pub fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `host_failure_detection_time=SECONDS` (a fraction allowed) as whole milliseconds.
fn millis(key: &str, value: &str) -> Result<u32, String> {
    let bad = || format!("{key}={value} is not a number of seconds");
    let seconds: f64 = value.trim().parse().map_err(|_| bad())?;
    let ms = (seconds * 1000.0).round();
    match ms.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&ms) {
        true => Ok(ms as u32),
        false => Err(bad()),
    }
}

/// `quick_discovery_interval=MINUTES` (a fraction allowed; 0: none) as milliseconds.
fn minutes(value: &str) -> Result<u64, String> {
    let bad = || format!("quick_discovery_interval={value} is not a number of minutes (0-1440)");
    let minutes: f64 = value.trim().parse().map_err(|_| bad())?;
    match (0.0..=1440.0).contains(&minutes) {
        true => Ok((minutes * 60_000.0).round() as u64),
        false => Err(bad()),
    }
}

/// One of a setting's words, by its domain name.
fn word<T: std::str::FromStr>(key: &str, value: &str, words: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{key}={value}: use {words}"))
}

/// The settings `attrs` asks for.
pub fn settings(attrs: &BTreeMap<String, String>) -> Result<pb::Settings, String> {
    let get = |k: &str| attrs.get(k).map(|v| v.trim());
    let mut s = pb::Settings {
        host_failure_detection_time_ms: get("host_failure_detection_time")
            .map(|v| millis("host_failure_detection_time", v))
            .transpose()?,
        ha_monitor: get("ha_monitor").map(|v| parse_on_off("ha_monitor", v)).transpose()?,
        memory_capacity: get("memory_capacity")
            .map(|v| parse_capacity("memory_capacity", v))
            .transpose()?
            .map(u32::from),
        cpu_capacity: get("cpu_capacity").map(|v| parse_capacity("cpu_capacity", v)).transpose()?.map(u32::from),
        homehost: get("homehost").map(String::from),
        smtp_relay: get("smtp_relay").map(String::from),
        smtp_sender: get("smtp_sender").map(String::from),
        auto_discovery_time: get("auto_discovery_time").map(String::from),
        quick_discovery_interval_ms: get("quick_discovery_interval").map(minutes).transpose()?,
        ..Default::default()
    };
    if let Some(v) = get("notification_level") {
        let level: NotificationLevel = word("notification_level", v, "disable, low, medium or high")?;
        s.notification_level = level.into();
    }
    s.dup_event_processing = match get("dup_event_processing").map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => return Err(format!("dup_event_processing={other}: use yes or no")),
    };
    if let Some(v) = get("vm_failure_detection_speed") {
        let speed: DetectionSpeed = word("vm_failure_detection_speed", v, "fast, normal or slow")?;
        s.vm_failure_detection_speed = speed.into();
    }
    if let Some(v) = get("restart_policy") {
        let policy: RestartPolicy = word("restart_policy", v, "auto or advisory_mode")?;
        s.restart_policy = policy.into();
    }
    if let Some(v) = get("priority") {
        let priority: Priority = word("priority", v, "high, medium or low")?;
        s.priority = priority.into();
    }
    match (get("blacklist_hosts"), get("policy").map(str::to_ascii_lowercase).as_deref()) {
        (Some(hosts), policy @ (None | Some("add" | "delete"))) => {
            s.blacklist = Some(pb::Blacklist { hosts: list(hosts), remove: policy == Some("delete") })
        }
        (Some(_), Some(other)) => return Err(format!("policy={other}: use add or delete")),
        (None, Some(_)) => return Err("policy=add|delete goes with blacklist_hosts=".into()),
        (None, None) => {}
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(attrs: &[(&str, &str)]) -> Result<pb::Settings, String> {
        settings(&attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn the_seeds_words_become_typed_settings() {
        let s = of(&[("host_failure_detection_time", "1.5"), ("vm_failure_detection_speed", "SLOW")]).unwrap();
        assert_eq!(s.host_failure_detection_time_ms, Some(1500));
        assert_eq!(s.vm_failure_detection_speed(), pb::DetectionSpeed::Slow);
        let s = of(&[("memory_capacity", "none"), ("priority", "medium"), ("ha_monitor", "disable")]).unwrap();
        assert_eq!((s.memory_capacity, s.priority(), s.ha_monitor), (Some(100), pb::Priority::Medium, Some(false)));
        let s = of(&[("blacklist_hosts", "h1, h2"), ("policy", "delete")]).unwrap();
        assert_eq!(s.blacklist, Some(pb::Blacklist { hosts: vec!["h1".into(), "h2".into()], remove: true }));
        assert_eq!(
            of(&[("restart_policy", "advisory_mode")]).unwrap().restart_policy(),
            pb::RestartPolicy::AdvisoryMode
        );
        let s = of(&[("notification_level", "High"), ("dup_event_processing", "no"), ("smtp_relay", "mx:25")]).unwrap();
        assert_eq!(s.notification_level(), pb::NotificationLevel::High);
        assert_eq!((s.dup_event_processing, s.smtp_relay.as_deref()), (Some(false), Some("mx:25")));
        let s = of(&[("quick_discovery_interval", "0.05"), ("auto_discovery_time", "02:30")]).unwrap();
        assert_eq!((s.quick_discovery_interval_ms, s.auto_discovery_time.as_deref()), (Some(3000), Some("02:30")));
    }

    #[test]
    fn words_that_are_not_the_seeds_are_refused() {
        for (k, v, why) in [
            ("host_failure_detection_time", "ninety", "not a number of seconds"),
            ("host_failure_detection_time", "-5", "not a number of seconds"),
            ("vm_failure_detection_speed", "quick", "fast, normal or slow"),
            ("ha_monitor", "maybe", "enable or disable"),
            ("cpu_capacity", "0", "1-100"),
            ("priority", "urgent", "high, medium or low"),
            ("policy", "add", "goes with blacklist_hosts"),
            ("notification_level", "loud", "disable, low, medium or high"),
            ("dup_event_processing", "maybe", "yes or no"),
            ("quick_discovery_interval", "1441", "0-1440"),
            ("quick_discovery_interval", "-1", "0-1440"),
        ] {
            let e = of(&[(k, v)]).unwrap_err();
            assert!(e.contains(why), "{k}={v}: {e}");
        }
    }
}
