//! States with the seed's names: HMC LPAR states, KSYS VM states, `VM_status`, priority.
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

/// The HMC's runtime state of a partition (seed: `lssyscfg -r lpar -F state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "title_case")]
pub enum LparState {
    Running,
    NotActivated,
    OpenFirmware,
    ShuttingDown,
    Error,
    NotAvailable,
    #[strum(to_string = "Migrating - Running")]
    MigratingRunning,
    #[strum(to_string = "Migrating - Not Activated")]
    MigratingNotActivated,
    HardwareDiscovery,
}

impl LparState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A managed system's state as its HMC reports it (seed: `lssyscfg -r sys -F state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, IntoStaticStr)]
#[strum(serialize_all = "title_case", ascii_case_insensitive)]
pub enum HostState {
    Operating,
    PowerOff,
    PoweringOff,
    /// No HMC reaches it.
    NoConnection,
    Error,
    Initializing,
}

/// The controller's view of a VM (seed: `State:` in `ksysmgr query vm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum VmState {
    /// Changed since the last discovery.
    Init,
    /// Discovered.
    Ready,
    /// Discovered and verified: it can be restarted elsewhere.
    ReadyToMove,
    /// Its host failed and no host could take it; reported, not dropped.
    RestartFailed,
}

/// The per-VM operation lock (seed: `VM_status:`). Discovery skips a VM whose lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum VmStatus {
    NoOperationInProgress,
    RestartInProgress,
    /// A live migration (seed: LPM) runs.
    LpmInProgress,
}

/// Restart order after a host failure (seed: High, Medium, Low; default Medium).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default, Display, EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(ascii_case_insensitive, parse_err_ty = String, parse_err_fn = not_a_priority)]
pub enum Priority {
    High,
    #[default]
    Medium,
    Low,
}

fn not_a_priority(s: &str) -> String {
    format!("priority `{s}` is not one of high, medium, low")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_the_seed_names() {
        assert_eq!(LparState::NotActivated.to_string(), "Not Activated");
        assert_eq!(LparState::MigratingRunning.to_string(), "Migrating - Running");
        assert_eq!(VmState::ReadyToMove.to_string(), "READY_TO_MOVE");
        assert_eq!(HostState::NoConnection.to_string(), "No Connection");
        assert_eq!(HostState::PowerOff.to_string(), "Power Off");
        assert_eq!(VmStatus::LpmInProgress.to_string(), "LPM_IN_PROGRESS");
        assert_eq!(("LOW".parse(), Priority::High.to_string()), (Ok(Priority::Low), "High".to_string()));
        assert_eq!("urgent".parse::<Priority>(), Err("priority `urgent` is not one of high, medium, low".into()));
    }
}
