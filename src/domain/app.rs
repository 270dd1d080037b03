//! Application reporting as the HSDB holds it (seed 000 §2.3.3, the AR flow: dbell → PMSG_REQ →
//! PMSG_RSP → GMSG → Clear_DB). The VM agent rings a doorbell in its heartbeat, the host monitor
//! records it as a short message, the controller sees it in NeedsAttention, puts a command for
//! the VM (a `trans` row with its hsTag), polls until the VM's answer is there, gets it, and
//! acknowledges it, which clears the row. What it learnt is kept per application.
use crate::logic::app_engine::AppStatus;
use serde::{Deserialize, Serialize};

/// The command the controller puts after a doorbell: "send me all your applications" (seed:
/// `<Command code="0x2"/>`, the same as the resync after a controller restart).
pub const RESYNC_APPS_COMMAND: &str = r#"<Command code="0x2"/>"#;

/// A VM's pending doorbell (seed: NeedsAttention's `shortMsg`), bits OR-ed until acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortMsgRecord {
    pub vm: String,
    pub vm_uuid: String,
    pub host: String,
    pub dbell: u64,
}

/// One message exchange with a VM (seed: the HSDB `trans` table, keyed by hsTag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArTransRecord {
    pub hs_tag: u64,
    pub seq: u32,
    pub vm_uuid: String,
    pub request: String,
    /// The VM's answer (PMSG_RSP), once a host monitor received it.
    pub response: Option<String>,
}

/// What the controller last learnt about one application of one VM (`ksysmgr query app`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub vm: String,
    pub app: AppStatus,
}

impl AppRecord {
    pub fn key_of(vm: &str, app: &str) -> String {
        format!("{vm}/{app}")
    }
}

/// The VM's answer to [`RESYNC_APPS_COMMAND`]: its applications, or why it has none to give.
pub type AppsReply = std::result::Result<Vec<AppStatus>, String>;

pub fn encode_apps(reply: &AppsReply) -> String {
    serde_json::to_string(reply).unwrap_or_else(|e| format!("{{\"Err\":\"{e}\"}}"))
}

pub fn decode_apps(payload: &str) -> crate::error::Result<Vec<AppStatus>> {
    let reply: AppsReply = serde_json::from_str(payload)
        .map_err(|e| crate::error::VmrmError::invalid(format!("the VM's application report is not readable: {e}")))?;
    reply.map_err(|e| crate::error::VmrmError::precondition(format!("the VM did not report its applications: {e}")))
}
