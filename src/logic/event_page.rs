//! `ksysmgr query event` and `query audit`: the records that match a name (an event's name or
//! its subject; an audit record's principal or action), one page at a time, newest last — so a
//! long-running cluster's log never has to fit in one reply, and an operator asks for the VM,
//! the kind of event or the person they care about — and, for events, how severe they are and
//! whether anyone acknowledged them yet.
use crate::domain::{AckRecord, AuditRecord, EventRecord, Severity};
use crate::error::{Result, VmrmError, quote};

/// Events a page holds when the request does not say.
pub const DEFAULT_PAGE: usize = 100;
/// The most events one page holds.
pub const MAX_PAGE: usize = 1000;
/// The longest name a query matches on (names of VMs, hosts and events are shorter).
const MAX_NAME: usize = 64;

/// Which events, checked: a name of at most [`MAX_NAME`] bytes, a page of 1 to [`MAX_PAGE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    name: Option<String>,
    before: Option<u64>,
    limit: usize,
}

impl EventPage {
    pub fn new(name: &str, before: Option<u64>, limit: Option<u32>) -> Result<Self> {
        let name = name.trim();
        if name.len() > MAX_NAME || name.chars().any(|c| c.is_control()) {
            return Err(VmrmError::invalid(format!(
                "`{}` is not the name of an event or of what it is about",
                quote(name)
            )));
        }
        let limit = match limit.map(|l| l as usize) {
            None => DEFAULT_PAGE,
            Some(l @ 1..=MAX_PAGE) => l,
            Some(l) => return Err(VmrmError::invalid(format!("limit={l} is out of range: use 1-{MAX_PAGE}"))),
        };
        Ok(Self { name: (!name.is_empty()).then(|| name.to_string()), before, limit })
    }

    /// Whether record `sequence` is one this page is about (its name; older than `before`).
    pub fn admits<R: Named>(&self, sequence: u64, record: &R) -> bool {
        self.name.as_deref().is_none_or(|n| record.named(n)) && self.before.is_none_or(|b| sequence < b)
    }

    /// The page out of `records` (in sequence order), and the `before` of the next older page
    /// when older records match too.
    pub fn select<R: Named>(&self, records: Vec<(u64, R)>) -> (Vec<(u64, R)>, Option<u64>) {
        let mut matching: Vec<(u64, R)> = records.into_iter().filter(|(s, r)| self.admits(*s, r)).collect();
        let older = matching.len().saturating_sub(self.limit);
        let page = matching.split_off(older);
        let older_before = (older > 0).then(|| page.first().map(|(s, _)| *s)).flatten();
        (page, older_before)
    }
}

/// Which events by kind: at least as severe as `severity`; only those nobody acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventKinds {
    pub severity: Option<Severity>,
    pub unacknowledged: bool,
}

impl EventKinds {
    pub fn keeps(&self, sequence: u64, event: &EventRecord, acks: &AckRecord) -> bool {
        self.severity.is_none_or(|s| event.name.severity().rank() <= s.rank())
            && !(self.unacknowledged && acks.covers(sequence))
    }
}

/// A record a page can be asked for by name.
pub trait Named {
    fn named(&self, name: &str) -> bool;
}

impl Named for EventRecord {
    fn named(&self, name: &str) -> bool {
        self.subject == name || self.name.to_string() == name
    }
}

impl Named for AuditRecord {
    /// Its principal's certificate name (`bob` of `bob (operator)`), or its action.
    fn named(&self, name: &str) -> bool {
        self.principal.split(" (").next() == Some(name) || self.action == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventName;

    fn events() -> Vec<(u64, EventRecord)> {
        (1..=10)
            .map(|s| {
                let (name, subject) = match s % 2 {
                    0 => (EventName::VmFailureDetected, "vm-1"),
                    _ => (EventName::ViosNodeFailure, "host-1-vios-a"),
                };
                (s, EventRecord { name, subject: subject.into(), message: String::new(), at_ms: 0 })
            })
            .collect()
    }

    fn sequences(page: &[(u64, EventRecord)]) -> Vec<u64> {
        page.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn everything_fits_one_default_page() {
        let (page, older) = EventPage::new("", None, None).unwrap().select(events());
        assert_eq!(sequences(&page), (1..=10).collect::<Vec<_>>());
        assert_eq!(older, None);
    }

    #[test]
    fn a_name_matches_the_subject_or_the_event_name() {
        let (page, _) = EventPage::new("vm-1", None, None).unwrap().select(events());
        assert_eq!(sequences(&page), [2, 4, 6, 8, 10]);
        let (page, _) = EventPage::new("VIOS_NODE_FAILURE", None, None).unwrap().select(events());
        assert_eq!(sequences(&page), [1, 3, 5, 7, 9]);
        let (page, older) = EventPage::new("vm-9", None, None).unwrap().select(events());
        assert!(page.is_empty() && older.is_none());
    }

    #[test]
    fn pages_go_back_from_the_newest_until_none_is_older() {
        let first = EventPage::new("vm-1", None, Some(2)).unwrap();
        let (page, older) = first.select(events());
        assert_eq!((sequences(&page), older), (vec![8, 10], Some(8)));
        let (page, older) = EventPage::new("vm-1", older, Some(2)).unwrap().select(events());
        assert_eq!((sequences(&page), older), (vec![4, 6], Some(4)));
        let (page, older) = EventPage::new("vm-1", older, Some(2)).unwrap().select(events());
        assert_eq!((sequences(&page), older), (vec![2], None));
    }

    #[test]
    fn kinds_keep_the_severe_and_the_unacknowledged() {
        let acks = AckRecord { all_through: 4, also: vec![7] };
        let warning = EventKinds { severity: Some(Severity::Warning), unacknowledged: false };
        let kept: Vec<u64> =
            events().into_iter().filter(|(s, e)| warning.keeps(*s, e, &acks)).map(|(s, _)| s).collect();
        assert_eq!(kept, (1..=10).collect::<Vec<_>>(), "critical and warning events");
        let critical = EventKinds { severity: Some(Severity::Critical), unacknowledged: true };
        let kept: Vec<u64> =
            events().into_iter().filter(|(s, e)| critical.keeps(*s, e, &acks)).map(|(s, _)| s).collect();
        assert_eq!(kept, [6, 8, 10]);
        assert!(EventKinds::default().keeps(1, &events()[0].1, &acks));
    }

    #[test]
    fn bad_pages_and_names_are_refused() {
        for limit in [0, 1001, u32::MAX] {
            let err = EventPage::new("", None, Some(limit)).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
        let err = EventPage::new(&"x".repeat(10_000), None, None).unwrap_err().to_string();
        assert!(err.len() < 200 && err.contains("10000 bytes"), "{err}");
        assert!(EventPage::new("vm\n1", None, None).is_err());
    }
}
