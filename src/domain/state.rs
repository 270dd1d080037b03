//! States with the seed's names: HMC LPAR states, KSYS VM states, `VM_status`, priority.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The HMC's runtime state of a partition (seed: `lssyscfg -r lpar -F state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LparState {
    Running,
    NotActivated,
    OpenFirmware,
    ShuttingDown,
    Error,
    NotAvailable,
    MigratingRunning,
    MigratingNotActivated,
    HardwareDiscovery,
}

impl LparState {
    const ALL: [Self; 9] = [
        Self::Running,
        Self::NotActivated,
        Self::OpenFirmware,
        Self::ShuttingDown,
        Self::Error,
        Self::NotAvailable,
        Self::MigratingRunning,
        Self::MigratingNotActivated,
        Self::HardwareDiscovery,
    ];

    /// The state an HMC reports, by its display name.
    pub fn from_hmc(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::NotActivated => "Not Activated",
            Self::OpenFirmware => "Open Firmware",
            Self::ShuttingDown => "Shutting Down",
            Self::Error => "Error",
            Self::NotAvailable => "Not Available",
            Self::MigratingRunning => "Migrating - Running",
            Self::MigratingNotActivated => "Migrating - Not Activated",
            Self::HardwareDiscovery => "Hardware Discovery",
        }
    }
}

impl fmt::Display for LparState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The controller's view of a VM (seed: `State:` in `ksysmgr query vm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Init => "INIT",
            Self::Ready => "READY",
            Self::ReadyToMove => "READY_TO_MOVE",
            Self::RestartFailed => "RESTART_FAILED",
        })
    }
}

/// The per-VM operation lock (seed: `VM_status:`). Discovery skips a VM whose lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VmStatus {
    NoOperationInProgress,
    RestartInProgress,
    /// A live migration (seed: LPM) runs.
    LpmInProgress,
}

impl fmt::Display for VmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoOperationInProgress => "NO_OPERATION_IN_PROGRESS",
            Self::RestartInProgress => "RESTART_IN_PROGRESS",
            Self::LpmInProgress => "LPM_IN_PROGRESS",
        })
    }
}

/// Restart order after a host failure (seed: High, Medium, Low; default Medium).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Medium,
    Low,
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::High => "High",
            Self::Medium => "Medium",
            Self::Low => "Low",
        })
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Ok(Self::High),
            "medium" => Ok(Self::Medium),
            "low" => Ok(Self::Low),
            _ => Err(format!("priority `{s}` is not one of high, medium, low")),
        }
    }
}
