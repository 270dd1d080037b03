//! Detection settings: the change to `host_failure_detection_time=` / `vm_failure_detection_speed=`
//! that `ksysmgr modify` ([`crate::controller::config::policies`]) checks (with the allowed range in the message)
//! before anything is written, the settings in force per host group, and `ksysmgr query system`.
//! The FDE reads them on every poll, so a change applies at once.
use crate::controller::core::ControllerCore;
use crate::domain::policy::on_off;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::logic::detection::{Levels, host_fdt_range, parse_host_fdt, parse_speed, secs};
use crate::pb;
use std::collections::BTreeMap;

/// A requested change of detection settings, parsed and checked.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::controller) struct DetectionChange {
    pub host_fdt_ms: Option<u64>,
    pub speed: Option<DetectionSpeed>,
}

impl DetectionChange {
    /// From the attribute values (`None`: not given).
    pub fn parse(timing: &crate::profile::Timing, host_fdt: Option<&str>, speed: Option<&str>) -> Result<Self> {
        Ok(Self {
            host_fdt_ms: host_fdt.map(|v| parse_host_fdt(v, timing).map(|d| d.as_millis() as u64)).transpose()?,
            speed: speed.map(parse_speed).transpose()?,
        })
    }

    pub fn apply(self, to: &mut DetectionSettings) {
        to.host_failure_detection_time_ms = self.host_fdt_ms.or(to.host_failure_detection_time_ms);
        to.vm_failure_detection_speed = self.speed.or(to.vm_failure_detection_speed);
    }
}

impl ControllerCore {
    /// The system level (defaults when no ksyscluster is defined yet).
    async fn system_detection(&self) -> Result<DetectionSettings> {
        Ok(self.hsdb.get::<ClusterRecord>("cluster").await?.map(|(c, _)| c.detection).unwrap_or_default())
    }

    /// The detection settings in force for a host group.
    pub async fn detection_levels(&self, group: &HostGroupRecord) -> Result<Levels> {
        Ok(Levels { timing: self.timing, system: self.system_detection().await?, host_group: group.detection })
    }

    /// The detection settings in force for each host group, by name (the system level read once).
    pub async fn detection_levels_by_group(&self) -> Result<BTreeMap<String, Levels>> {
        let system = self.system_detection().await?;
        let groups = self.hsdb.list::<HostGroupRecord>().await?;
        Ok(groups
            .into_iter()
            .map(|g| (g.name, Levels { timing: self.timing, system, host_group: g.detection }))
            .collect())
    }

    pub async fn query_system(&self) -> Result<pb::SystemView> {
        let cluster = self.hsdb.get::<ClusterRecord>("cluster").await?.map(|(c, _)| c);
        let system = cluster.as_ref().map(|c| c.detection).unwrap_or_default();
        let levels = Levels { timing: self.timing, system, host_group: Default::default() };
        let (min, max) = host_fdt_range(&self.timing);
        Ok(pb::SystemView {
            host_failure_detection_time_ms: levels.host_failure_detection_time().as_millis() as u32,
            vm_failure_detection_speed: levels.speed(None).to_string(),
            host_failure_detection_time_range: format!("{}-{} seconds", secs(min), secs(max)),
            ha_monitor: on_off(cluster.and_then(|c| c.ha_monitor).unwrap_or(false)).into(),
        })
    }
}
