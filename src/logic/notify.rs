//! What one contact is told next, and in which words. The outbox of a contact is the event log
//! after its cursor: each event is either sent, or passed over — below the system's
//! `notification_level`, or a repeat (with `dup_event_processing=yes`: the same event about the
//! same subject within [`DUP_WINDOW`] of one it was sent). The message of an event carries an id
//! made of the cluster, the event's sequence number and the contact, the same on every attempt
//! and on every controller, so a receiver can tell a repeat sent after a crash from a new one.
use crate::domain::{DeliveryRecord, EventRecord, NotificationSettings, Notified};
use crate::logic::retries::backoff;
use std::time::Duration;

/// Two events with the same name and subject this close are one (Masakari's
/// `duplicate_notification_detection_interval`).
pub const DUP_WINDOW: Duration = Duration::from_secs(180);
/// The most events a contact remembers to recognise repeats.
pub const RECENT_MAX: usize = 64;
/// The wait after a contact's first failed attempt; it doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// Whether an event goes to a contact, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    BelowLevel,
    Repeat,
}

/// What a contact does with `event`, given what it was sent lately.
pub fn verdict(settings: &NotificationSettings, delivery: &DeliveryRecord, event: &EventRecord) -> Verdict {
    let window = DUP_WINDOW.as_millis() as i64;
    let repeat = |n: &Notified| n.name == event.name && n.subject == event.subject && event.at_ms - n.at_ms < window;
    match (settings.level.includes(event.name), settings.dup_event_processing) {
        (false, _) => Verdict::BelowLevel,
        (true, true) if delivery.recent.iter().any(repeat) => Verdict::Repeat,
        (true, _) => Verdict::Send,
    }
}

/// `delivery` after event `sequence` was passed over.
pub fn passed(delivery: &mut DeliveryRecord, sequence: u64) {
    delivery.delivered_through = delivery.delivered_through.max(sequence);
}

/// `delivery` after event `sequence` was sent at `now_ms`: the cursor moves, the failures are
/// forgotten, and the event is remembered (those out of the window, and the oldest beyond
/// [`RECENT_MAX`], forgotten).
pub fn sent(delivery: &mut DeliveryRecord, sequence: u64, event: &EventRecord, now_ms: i64) {
    passed(delivery, sequence);
    delivery.delivered += 1;
    delivery.last_delivered_ms = Some(now_ms);
    delivery.attempts = 0;
    delivery.last_error = None;
    delivery.next_try_ms = 0;
    let window = DUP_WINDOW.as_millis() as i64;
    delivery.recent.retain(|n| event.at_ms - n.at_ms < window);
    delivery.recent.push(Notified { name: event.name, subject: event.subject.clone(), at_ms: event.at_ms });
    let extra = delivery.recent.len().saturating_sub(RECENT_MAX);
    delivery.recent.drain(..extra);
}

/// `delivery` after an attempt failed at `now_ms`: the next waits longer each time.
pub fn failed(delivery: &mut DeliveryRecord, why: &str, now_ms: i64) {
    delivery.attempts = delivery.attempts.saturating_add(1);
    delivery.last_error = Some(why.chars().take(300).collect());
    delivery.next_try_ms = now_ms + backoff(delivery.attempts, RETRY_FIRST, RETRY_MAX).as_millis() as i64;
}

/// Whether a contact may be tried at `now_ms`.
pub fn due(delivery: &DeliveryRecord, now_ms: i64) -> bool {
    now_ms >= delivery.next_try_ms
}

/// One notification, in the words every channel uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The same for every attempt at this event for this contact.
    pub id: String,
    pub title: String,
    pub body: String,
    pub json: serde_json::Value,
}

/// The notice of event `sequence` of cluster `cluster` for `contact`.
pub fn notice(cluster: &str, sequence: u64, event: &EventRecord, contact: &str) -> Notice {
    let contact_hash = xxhash_rust::xxh3::xxh3_64(contact.as_bytes());
    let id = format!("{cluster}.{sequence}.{contact_hash:016x}");
    let severity = event.name.severity();
    let at = crate::domain::millis::utc(event.at_ms);
    let title = format!("[vmrm {cluster}] {severity}: {} {}", event.name, event.subject);
    let body = format!(
        "Event:    {}\nSeverity: {severity}\nSubject:  {}\nTime:     {at}\nCluster:  {cluster}\nSequence: {sequence}\n\n{}\n",
        event.name, event.subject, event.message
    );
    let json = serde_json::json!({
        "id": id,
        "cluster": cluster,
        "sequence": sequence,
        "event": event.name.to_string(),
        "severity": severity.to_string(),
        "subject": event.subject,
        "message": event.message,
        "at_ms": event.at_ms,
    });
    Notice { id, title, body, json }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Contact, EventName, NotificationLevel};

    fn event(name: EventName, subject: &str, at_ms: i64) -> EventRecord {
        EventRecord { name, subject: subject.into(), message: "m".into(), at_ms }
    }

    fn fresh() -> DeliveryRecord {
        DeliveryRecord::fresh("ops", &Contact::parse("ops@example.com").unwrap(), 10)
    }

    #[test]
    fn below_the_level_is_passed_over() {
        let s = NotificationSettings::default();
        assert_eq!(verdict(&s, &fresh(), &event(EventName::DiscoveryCompleted, "HG1", 0)), Verdict::BelowLevel);
        assert_eq!(verdict(&s, &fresh(), &event(EventName::HostFailureDetected, "host-1", 0)), Verdict::Send);
        let off = NotificationSettings { level: NotificationLevel::Disable, ..s };
        assert_eq!(verdict(&off, &fresh(), &event(EventName::HostFailureDetected, "h", 0)), Verdict::BelowLevel);
    }

    #[test]
    fn a_repeat_within_the_window_is_passed_over_unless_duplicates_are_processed() {
        let s = NotificationSettings::default();
        let mut d = fresh();
        sent(&mut d, 11, &event(EventName::VmFailureDetected, "vm-1", 1_000), 1_000);
        assert_eq!((d.delivered_through, d.delivered), (11, 1));
        let again = event(EventName::VmFailureDetected, "vm-1", 1_000 + 179_999);
        assert_eq!(verdict(&s, &d, &again), Verdict::Repeat);
        assert_eq!(verdict(&s, &d, &event(EventName::VmFailureDetected, "vm-2", 2_000)), Verdict::Send);
        let later = event(EventName::VmFailureDetected, "vm-1", 1_000 + 180_000);
        assert_eq!(verdict(&s, &d, &later), Verdict::Send);
        let every = NotificationSettings { dup_event_processing: false, ..s };
        assert_eq!(verdict(&every, &d, &again), Verdict::Send);
    }

    #[test]
    fn what_is_remembered_is_bounded_by_the_window_and_a_count() {
        let mut d = fresh();
        for i in 0..100 {
            sent(&mut d, 11 + i, &event(EventName::VmFailureDetected, &format!("vm-{i}"), 1_000), 1_000);
        }
        assert_eq!(d.recent.len(), RECENT_MAX);
        assert_eq!(d.recent[0].subject, "vm-36");
        sent(&mut d, 200, &event(EventName::HostFailureDetected, "h", 1_000 + 180_000), 0);
        assert_eq!(d.recent.len(), 1);
        passed(&mut d, 150);
        assert_eq!(d.delivered_through, 200, "the cursor never goes back");
    }

    #[test]
    fn failures_back_off_and_a_success_clears_them() {
        let mut d = fresh();
        failed(&mut d, "relay down", 10_000);
        assert_eq!((d.attempts, d.next_try_ms), (1, 11_000));
        assert!(!due(&d, 10_999) && due(&d, 11_000));
        for _ in 0..20 {
            failed(&mut d, &"x".repeat(1000), 10_000);
        }
        assert_eq!(d.next_try_ms, 10_000 + 300_000);
        assert_eq!(d.last_error.as_ref().unwrap().len(), 300);
        sent(&mut d, 11, &event(EventName::HostFailureDetected, "h", 0), 20_000);
        assert_eq!((d.attempts, d.last_error.clone(), d.next_try_ms), (0, None, 0));
    }

    #[test]
    fn a_notice_has_one_id_per_event_and_contact() {
        let e = event(EventName::RecoveryCompleted, "HG1", 1_764_806_400_000);
        let a = notice("ITSO_HA", 42, &e, "ops@example.com");
        assert_eq!(a, notice("ITSO_HA", 42, &e, "ops@example.com"));
        assert_ne!(a.id, notice("ITSO_HA", 42, &e, "http://h/x").id);
        assert_ne!(a.id, notice("ITSO_HA", 43, &e, "ops@example.com").id);
        assert!(a.id.starts_with("ITSO_HA.42."), "{}", a.id);
        assert_eq!(a.title, "[vmrm ITSO_HA] Maintenance: RECOVERY_COMPLETED HG1");
        assert!(a.body.contains("2025-12-04 00:00:00.000 UTC") && a.body.ends_with("m\n"), "{}", a.body);
        assert_eq!(a.json["event"], "RECOVERY_COMPLETED");
        assert_eq!(a.json["sequence"], 42);
    }
}
