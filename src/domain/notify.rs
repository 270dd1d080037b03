//! Notification contacts (seed 000 §3.8: `ksysmgr add notify user=NAME contact=ADDRESS`) and
//! how far each has been told. A contact is an e-mail address — SMS and pagers are reached as
//! mail too (`5551234567@carrier`) — or a webhook URL. Every contact keeps its own cursor in the
//! event log, stored in the HSDB with the last events it was told of, so a controller that
//! takes over goes on where the last one stopped, neither skipping nor repeating.
use super::event::{EventName, Severity};
use crate::error::{Result, VmrmError, quote};
use serde::{Deserialize, Serialize};
use std::fmt;
use strum::{Display, EnumString};

/// The longest contact (an e-mail address is at most 254 bytes; a webhook URL gets more).
pub const CONTACT_MAX: usize = 512;
/// The most contacts one user has.
pub const CONTACTS_PER_USER: usize = 8;
/// The most users with contacts.
pub const USERS_MAX: usize = 64;

/// Which events reach the contacts (seed: `notification_level`, default `low`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
#[strum(parse_err_ty = String, parse_err_fn = not_a_level)]
pub enum NotificationLevel {
    /// No notifications at all.
    Disable,
    /// Failures, advice, and the recoveries and migrations run about them.
    #[default]
    Low,
    /// Also the components that came back.
    Medium,
    /// Every event.
    High,
}

fn not_a_level(s: &str) -> String {
    format!("notification_level `{s}` is not one of disable, low, medium, high")
}

impl NotificationLevel {
    /// Whether an event named `name` reaches the contacts at this level.
    pub fn includes(self, name: EventName) -> bool {
        let came_back =
            matches!(name, EventName::ViosNodeActive | EventName::ViosHmRespDetected | EventName::HsdbNospaceCleared);
        match (self, name.severity()) {
            (Self::Disable, _) => false,
            (Self::High, _) => true,
            (_, Severity::Critical | Severity::Warning | Severity::Maintenance) => true,
            (Self::Medium, Severity::Informational) => came_back,
            (Self::Low, Severity::Informational) => false,
        }
    }
}

/// The system's notification settings (`modify system …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    #[serde(default)]
    pub level: NotificationLevel,
    /// Seed default `yes`: a repeat of an event within the duplicate window is not notified.
    #[serde(default = "yes")]
    pub dup_event_processing: bool,
    /// `HOST:PORT` of the relay e-mails go through.
    #[serde(default)]
    pub smtp_relay: Option<String>,
    /// The sender of the e-mails (absent: [`DEFAULT_SENDER`]).
    #[serde(default)]
    pub smtp_sender: Option<String>,
}

/// The sender of notification e-mails when none is set.
pub const DEFAULT_SENDER: &str = "vmrm@localhost";

fn yes() -> bool {
    true
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self { level: NotificationLevel::default(), dup_event_processing: true, smtp_relay: None, smtp_sender: None }
    }
}

impl NotificationSettings {
    pub fn sender(&self) -> &str {
        self.smtp_sender.as_deref().unwrap_or(DEFAULT_SENDER)
    }
}

/// How a contact is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
#[strum(serialize_all = "snake_case")]
pub enum ContactKind {
    Email,
    /// An e-mail address whose mailbox is a phone number: a carrier's mail-to-SMS gateway.
    Sms,
    Webhook,
}

/// A contact, checked: an e-mail address or an `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Contact(String);

impl Contact {
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |why: &str| VmrmError::invalid(format!("contact `{}` {why}", quote(raw)));
        if raw.is_empty() {
            return Err(VmrmError::invalid("a contact is required: an e-mail address or an http(s) URL"));
        }
        if raw.len() > CONTACT_MAX || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(&format!("is not a contact: at most {CONTACT_MAX} bytes, no spaces")));
        }
        if raw.starts_with("http://") || raw.starts_with("https://") {
            let uri: http::Uri = raw.parse().map_err(|e| bad(&format!("is not a URL: {e}")))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(bad("is not a webhook URL: it names no host"));
            }
            return Ok(Self(raw.to_string()));
        }
        if raw.contains("://") {
            return Err(bad("is not a webhook URL: use http:// or https://"));
        }
        raw.parse::<lettre::Address>()
            .map_err(|e| bad(&format!("is not an e-mail address ({e}) nor an http(s) URL")))?;
        Ok(Self(raw.to_string()))
    }

    pub fn kind(&self) -> ContactKind {
        match self.0.split_once('@') {
            _ if self.0.starts_with("http") && self.0.contains("://") => ContactKind::Webhook,
            Some((mailbox, _)) if mailbox.len() >= 7 && mailbox.chars().all(|c| c.is_ascii_digit()) => ContactKind::Sms,
            _ => ContactKind::Email,
        }
    }

    pub fn is_mail(&self) -> bool {
        self.kind() != ContactKind::Webhook
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's contacts (table `notify`, one row per user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyRecord {
    pub user: String,
    pub contacts: Vec<String>,
}

/// An event a contact was told of, kept to recognise its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    pub name: EventName,
    pub subject: String,
    pub at_ms: i64,
}

/// How far one contact has been told (table `delivery`, one row per contact): the outbox is the
/// event log after `delivered_through`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub user: String,
    pub contact: String,
    /// The newest event sequence number it was sent, or passed over (below the level, a repeat).
    pub delivered_through: u64,
    /// Notifications sent.
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub last_delivered_ms: Option<i64>,
    /// Failed attempts in a row, the last one's reason, and when the next may start.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub next_try_ms: i64,
    /// The events sent within the duplicate window, oldest first.
    #[serde(default)]
    pub recent: Vec<Notified>,
}

impl DeliveryRecord {
    /// A new contact: told of nothing before `through` (the newest event when it was added).
    pub fn fresh(user: &str, contact: &Contact, through: u64) -> Self {
        Self {
            user: user.to_string(),
            contact: contact.to_string(),
            delivered_through: through,
            delivered: 0,
            last_delivered_ms: None,
            attempts: 0,
            last_error: None,
            next_try_ms: 0,
            recent: Vec::new(),
        }
    }

    pub fn key_of(user: &str, contact: &str) -> String {
        format!("{user} {contact}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_mail_addresses_or_http_urls() {
        for (raw, kind) in [
            ("ops@example.com", ContactKind::Email),
            ("5551234567@txt.example.net", ContactKind::Sms),
            ("pager-7@pager.example.org", ContactKind::Email),
            ("http://127.0.0.1:9000/hook", ContactKind::Webhook),
            ("https://hooks.example.com/services/T0/B1?token=x", ContactKind::Webhook),
        ] {
            assert_eq!(Contact::parse(raw).unwrap().kind(), kind, "{raw}");
        }
        for (raw, why) in [
            ("", "is required"),
            ("ops", "not an e-mail address"),
            ("ops@", "not an e-mail address"),
            ("a b@example.com", "no spaces"),
            ("ftp://example.com/x", "use http:// or https://"),
            ("http://", "not a URL"),
            ("http:///path", "not a URL"),
        ] {
            let e = Contact::parse(raw).unwrap_err();
            assert!(matches!(e, VmrmError::InvalidArgument(_)) && e.to_string().contains(why), "{raw}: {e}");
        }
        let long = format!("{}@example.com", "a".repeat(600));
        assert!(Contact::parse(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn each_level_takes_the_one_below_and_more() {
        use EventName::*;
        let low = NotificationLevel::Low;
        for e in [HostFailureDetected, RestartAdvised, RecoveryCompleted, LpmAborted, RestartCompleted] {
            assert!(low.includes(e), "{e}");
        }
        assert!(!low.includes(ViosNodeActive) && !low.includes(DiscoveryCompleted));
        assert!(NotificationLevel::Medium.includes(ViosNodeActive));
        assert!(!NotificationLevel::Medium.includes(ConfigurationChanged));
        assert!(NotificationLevel::High.includes(ConfigurationChanged));
        assert!(!NotificationLevel::Disable.includes(HostFailureDetected));
        assert_eq!(NotificationLevel::default(), low);
        assert!("loud".parse::<NotificationLevel>().unwrap_err().contains("disable, low, medium, high"));
    }

    #[test]
    fn stored_settings_default_to_the_seeds() {
        let s: NotificationSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, NotificationSettings::default());
        assert!(s.dup_event_processing);
        assert_eq!(s.sender(), DEFAULT_SENDER);
    }
}
