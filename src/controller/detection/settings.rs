//! Detection settings: the change to `host_failure_detection_time=` / `vm_failure_detection_speed=`
//! that `ksysmgr modify` ([`crate::controller::config::policies`]) checks (with the allowed range
//! in the message) before anything is written. The settings in force are read through
//! [`crate::controller::records::Records`] on every FDE poll, so a change applies at once.
use crate::domain::*;
use std::time::Duration;

/// A requested change of detection settings, checked.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::controller) struct DetectionChange {
    pub host_fdt: Option<Duration>,
    pub speed: Option<DetectionSpeed>,
}

impl DetectionChange {
    pub fn apply(self, to: &mut DetectionSettings) {
        to.host_failure_detection_time = self.host_fdt.or(to.host_failure_detection_time);
        to.vm_failure_detection_speed = self.speed.or(to.vm_failure_detection_speed);
    }
}
