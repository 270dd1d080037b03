//! Detection settings: the change to `host_failure_detection_time=` / `vm_failure_detection_speed=`
//! that `ksysmgr modify` ([`crate::controller::config::policies`]) checks (with the allowed range
//! in the message) before anything is written. The settings in force are read through
//! [`crate::controller::records::Records`] on every FDE poll, so a change applies at once.
use crate::domain::*;
use crate::error::Result;
use crate::logic::detection::{parse_host_fdt, parse_speed};
use std::time::Duration;

/// A requested change of detection settings, parsed and checked.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::controller) struct DetectionChange {
    pub host_fdt: Option<Duration>,
    pub speed: Option<DetectionSpeed>,
}

impl DetectionChange {
    /// From the attribute values (`None`: not given).
    pub fn parse(timing: &crate::profile::Timing, host_fdt: Option<&str>, speed: Option<&str>) -> Result<Self> {
        Ok(Self {
            host_fdt: host_fdt.map(|v| parse_host_fdt(v, timing)).transpose()?,
            speed: speed.map(parse_speed).transpose()?,
        })
    }

    pub fn apply(self, to: &mut DetectionSettings) {
        to.host_failure_detection_time = self.host_fdt.or(to.host_failure_detection_time);
        to.vm_failure_detection_speed = self.speed.or(to.vm_failure_detection_speed);
    }
}
