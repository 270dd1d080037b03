//! The admin API's audit trail: every call that changes something writes "Start" (before it
//! runs: a call whose start cannot be recorded does not run) and then "OK" or "Failed" with the
//! error; calls the node's gate refused are recorded as "Refused" by [`record_refusals`]. Reads
//! are not recorded (seed 001 audits operations, not queries). A change of the configuration
//! or of the HSDB's membership also raises an event ([`change_event`]), as the seed's operators
//! are told of one.
use crate::domain::{AuditRecord, AuditStage, EventName, EventRecord};
use crate::error::{DID_NOT_RUN_METADATA, LEADER_METADATA, VmrmError};
use crate::hsdb::{HsdbAccess, RemoteHsdb, Table};
use crate::transport::gate::Refusal;
use crate::transport::tls::Principal;
use serde::Serialize;
use tonic::Status;

/// Request fields never written to the trail.
/// Left out of the trail: credentials, and a snapshot's document (it holds them, and is large).
const SECRETS: [&str; 3] = ["password", "login", "content"];

/// What a request asks to act on, as the trail shows it: the fields it sets, at any depth,
/// secrets left out.
pub fn object_of<R: Serialize>(req: &R) -> String {
    let mut value = serde_json::to_value(req).unwrap_or_default();
    prune(&mut value);
    value.to_string()
}

/// Drops secrets and every field left at its default (absent, empty, zero, an enum's UNSPECIFIED).
fn prune(value: &mut serde_json::Value) {
    if let Some(fields) = value.as_object_mut() {
        fields.values_mut().for_each(prune);
        fields.retain(|k, v| !SECRETS.contains(&k.as_str()) && !is_empty(v));
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty() || s == "UNSPECIFIED",
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Bool(b) => !b,
        serde_json::Value::Number(n) => n.as_u64() == Some(0),
        serde_json::Value::Object(o) => o.is_empty(),
    }
}

/// The event a successful `action` raises: configuration and membership changes.
pub fn change_event(action: &str) -> Option<EventName> {
    match action {
        "AddCluster" | "AddHmc" | "AddHost" | "AddHostGroup" | "Modify" | "Manage" | "ChangeAffinity"
        | "ChangeMonjv" | "ChangeSuCluster" | "AddNotify" | "DeleteNotify" | "RestoreSnapshot" | "ModifyFfdc" => {
            Some(EventName::ConfigurationChanged)
        }
        "AddHsdbNode" | "ModifyHsdbNode" | "RemoveHsdbNode" => Some(EventName::HsdbMembershipChanged),
        _ => None,
    }
}

/// One audited call: `action` by `who` on `object`.
pub struct Attempt<H: HsdbAccess> {
    pub hsdb: H,
    pub who: Principal,
    pub action: &'static str,
    pub object: String,
}

impl<H: HsdbAccess> Attempt<H> {
    fn record(&self, stage: AuditStage, detail: &str) -> AuditRecord {
        AuditRecord::new(self.who.to_string(), self.action, &self.object, stage, detail)
    }

    /// Writes "Start": the call may run only if this succeeds. When it does not, the call did
    /// not run: the caller may send it again (to the active controller, when this one lost
    /// that role in between).
    pub async fn start(&self) -> Result<(), Status> {
        tracing::info!("{} asked {} {}", self.who, self.action, self.object);
        let start = self.record(AuditStage::Start, "");
        self.hsdb.append(Table::Audit, &start).await.map_err(|e| {
            let leader = match &e {
                VmrmError::NotLeader { leader } => leader.clone(),
                _ => None,
            };
            let why = format!("the audit trail cannot record the call, so it did not run: {e}");
            let mut status = Status::from(VmrmError::unavailable(why));
            status.metadata_mut().insert(DID_NOT_RUN_METADATA, tonic::metadata::MetadataValue::from_static("1"));
            if let Some(addr) = leader.and_then(|l| l.parse().ok()) {
                status.metadata_mut().insert(LEADER_METADATA, addr);
            }
            status
        })
    }

    /// Writes how the call ended, and the event a change raises (a failure to write is
    /// logged: the call has already run).
    pub async fn end<T>(&self, result: &Result<T, Status>) {
        let end = match result {
            Ok(_) => self.record(AuditStage::Ok, ""),
            Err(status) => self.record(AuditStage::Failed, status.message()),
        };
        match result {
            Ok(_) => tracing::info!("{} {} {}: done", self.who, self.action, self.object),
            Err(status) => tracing::info!("{} {} {}: failed: {}", self.who, self.action, self.object, status.message()),
        }
        if let Err(e) = self.hsdb.append(Table::Audit, &end).await {
            tracing::warn!(action = self.action, "the end of an audited call was not recorded: {e}");
        }
        if let (Ok(_), Some(name)) = (result, change_event(self.action)) {
            let event = EventRecord::new(name, self.action, format!("by {}: {}", self.who, self.object));
            if let Err(e) = self.hsdb.append_event(&event).await {
                tracing::warn!(action = self.action, "the change's event was not recorded: {e}");
            }
        }
    }
}

/// Refused calls recorded per second at most: anyone who reaches the port can be refused, and
/// a flood of refusals must not fill the HSDB.
pub const REFUSALS_PER_SECOND: u32 = 20;

/// How many refusals the trail takes: [`REFUSALS_PER_SECOND`] per second, the rest counted
/// and said with the next one recorded.
#[derive(Debug, Default)]
pub struct RefusalBudget {
    second: Option<std::time::Instant>,
    used: u32,
    dropped: u64,
}

impl RefusalBudget {
    /// Whether a refusal at `now` is recorded: `Some(n)` with the number dropped before it.
    pub fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        if self.second.is_none_or(|s| now.duration_since(s) >= std::time::Duration::from_secs(1)) {
            (self.second, self.used) = (Some(now), 0);
        }
        match self.used < REFUSALS_PER_SECOND {
            true => {
                self.used += 1;
                Some(std::mem::take(&mut self.dropped))
            }
            false => {
                self.dropped += 1;
                None
            }
        }
    }
}

/// Writes the gate's refusals to the trail until the gate is gone.
pub async fn record_refusals(hsdb: RemoteHsdb, mut refusals: tokio::sync::mpsc::Receiver<Refusal>) {
    let mut budget = RefusalBudget::default();
    while let Some(r) = refusals.recv().await {
        let Some(dropped) = budget.admit(std::time::Instant::now()) else { continue };
        let action = r.path.rsplit('/').next().unwrap_or_default();
        let detail = match dropped {
            0 => r.why,
            n => format!("{} ({n} refused calls before this one were not recorded: too many)", r.why),
        };
        let record = AuditRecord::new(r.who, action, "", AuditStage::Refused, &detail);
        if let Err(e) = hsdb.append(Table::Audit, &record).await {
            tracing::debug!("a refused call was not recorded in the audit trail: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_shows_what_was_asked_but_no_secret() {
        let hmc = crate::pb::AddHmcRequest {
            name: "hmc-1".into(),
            login: "hscroot".into(),
            password: "abc123".into(),
            ip: "127.0.0.1:7101".into(),
            site: String::new(),
        };
        let object = object_of(&hmc);
        assert!(object.contains("hmc-1") && object.contains("127.0.0.1:7101"), "{object}");
        assert!(!object.contains("abc123") && !object.contains("hscroot"), "{object}");
        let restart = crate::pb::RestartVmRequest { vm: "vm-1-1".into(), ..Default::default() };
        assert_eq!(object_of(&restart), r#"{"vm":"vm-1-1"}"#);
        let settings = crate::pb::Settings { ha_monitor: Some(true), ..Default::default() };
        let modify = crate::pb::ModifyRequest {
            level: crate::pb::ModifyLevel::System as i32,
            names: Vec::new(),
            settings: Some(settings),
        };
        assert_eq!(object_of(&modify), r#"{"level":"SYSTEM","settings":{"ha_monitor":true}}"#);
    }

    #[test]
    fn a_flood_of_refusals_is_recorded_at_a_bounded_rate_and_counted() {
        let mut budget = RefusalBudget::default();
        let start = std::time::Instant::now();
        let recorded = (0..100).filter(|_| budget.admit(start).is_some()).count();
        assert_eq!(recorded, REFUSALS_PER_SECOND as usize);
        let later = start + std::time::Duration::from_millis(1001);
        assert_eq!(budget.admit(later), Some(100 - u64::from(REFUSALS_PER_SECOND)), "the next says how many went");
        assert_eq!(budget.admit(later), Some(0));
    }

    #[test]
    fn configuration_and_membership_changes_raise_events_and_operations_do_not() {
        assert_eq!(change_event("AddHost"), Some(EventName::ConfigurationChanged));
        assert_eq!(change_event("Modify"), Some(EventName::ConfigurationChanged));
        assert_eq!(change_event("RemoveHsdbNode"), Some(EventName::HsdbMembershipChanged));
        assert_eq!(change_event("RestoreSnapshot"), Some(EventName::ConfigurationChanged));
        for operation in ["RestartVm", "Migrate", "Discover", "Cleanup", "QueryVm", "AckEvent", "AddSnapshot"] {
            assert_eq!(change_event(operation), None, "{operation}");
        }
    }
}
