//! The audit trail (seed 001: every operation leaves a "Start" entry, then "OK" or its
//! error; Proxmox's task log and vSphere's events carry the user the same way): who asked for
//! what, on which object, when, and how it ended — including what the gate refused. Appended to
//! the HSDB, so it survives a controller failover and every controller serves the same trail.
use serde::{Deserialize, Serialize};

/// How far one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
pub enum AuditStage {
    /// Accepted and about to run (written before anything changes).
    Start,
    /// Ran to its end.
    #[strum(serialize = "OK")]
    Ok,
    /// Ran and failed; the detail says why.
    Failed,
    /// Never ran: the caller was not allowed (or not known).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: i64,
    /// The caller's certificate name and roles (`admin (admin)`), or who the gate could not
    /// identify.
    pub principal: String,
    /// The call (`RestartVm`, or the full path of a refused call).
    pub action: String,
    /// What it was asked to act on: the request's fields (secrets left out).
    pub object: String,
    pub stage: AuditStage,
    /// The error of a failed or refused attempt.
    #[serde(default)]
    pub detail: String,
}

/// The longest `object` and `detail` kept (a request may be large; the trail stays readable).
pub const AUDIT_TEXT_MAX: usize = 512;

impl AuditRecord {
    pub fn new(principal: String, action: &str, object: &str, stage: AuditStage, detail: &str) -> Self {
        let cut = |s: &str| match s.len() <= AUDIT_TEXT_MAX {
            true => s.to_string(),
            false => format!("{}…", crate::error::prefix(s, AUDIT_TEXT_MAX)),
        };
        Self {
            at_ms: crate::now_ms(),
            principal,
            action: action.into(),
            object: cut(object),
            stage,
            detail: cut(detail),
        }
    }
}
