//! Detection settings as stored at each level (seed: `ksysmgr modify system|host_group|vm`):
//! `None` inherits from the level above. [`crate::logic::detection`] resolves and checks them.
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strum::{Display, EnumString};

/// `vm_failure_detection_speed` (seed default `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum DetectionSpeed {
    Fast,
    #[default]
    Normal,
    Slow,
}

impl DetectionSpeed {
    /// How many VMthresholds the speed adds to the host failure detection time.
    pub fn thresholds(self) -> u32 {
        match self {
            Self::Fast => 1,
            Self::Normal => 2,
            Self::Slow => 3,
        }
    }
}

/// What the system or a host group sets; `None` inherits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionSettings {
    #[serde(rename = "host_failure_detection_time_ms", with = "super::millis::option", default)]
    pub host_failure_detection_time: Option<Duration>,
    pub vm_failure_detection_speed: Option<DetectionSpeed>,
}
