//! `ksysmgr modify system|host_group|vm … host_failure_detection_time= vm_failure_detection_speed=`
//! and `ksysmgr query system`. Values are checked (with the allowed range in the message)
//! before anything is written; the FDE reads them on every poll, so a change applies at once.
use super::core::ControllerCore;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::logic::detection::{Levels, host_fdt_range, parse_host_fdt, parse_speed, secs};
use crate::pb;
use std::collections::BTreeMap;

/// One requested change, parsed and checked.
#[derive(Debug, Clone, Copy, Default)]
struct Change {
    host_fdt_ms: Option<u64>,
    speed: Option<DetectionSpeed>,
}

impl Change {
    fn parse(core: &ControllerCore, host_fdt: &str, speed: &str) -> Result<Self> {
        let host_fdt_ms = match host_fdt.trim() {
            "" => None,
            v => Some(parse_host_fdt(v, &core.timing)?.as_millis() as u64),
        };
        let speed = match speed.trim() {
            "" => None,
            v => Some(parse_speed(v)?),
        };
        if host_fdt_ms.is_none() && speed.is_none() {
            return Err(VmrmError::invalid(
                "nothing to modify: give host_failure_detection_time=SECONDS and/or vm_failure_detection_speed=fast|normal|slow",
            ));
        }
        Ok(Self { host_fdt_ms, speed })
    }

    fn apply(self, to: &mut DetectionSettings) {
        to.host_failure_detection_time_ms = self.host_fdt_ms.or(to.host_failure_detection_time_ms);
        to.vm_failure_detection_speed = self.speed.or(to.vm_failure_detection_speed);
    }

    fn names(self) -> Vec<&'static str> {
        let fdt = self.host_fdt_ms.map(|_| "host_failure_detection_time");
        let speed = self.speed.map(|_| "vm_failure_detection_speed");
        fdt.into_iter().chain(speed).collect()
    }

    fn quoted(self) -> String {
        self.names().iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
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

    pub async fn modify_detection(&self, level: &str, name: &str, host_fdt: &str, speed: &str) -> Result<Vec<String>> {
        let change = Change::parse(self, host_fdt, speed)?;
        match level {
            "system" => {
                let (mut cluster, version) = self.cluster_versioned().await?;
                change.apply(&mut cluster.detection);
                self.hsdb.put_if_version(&cluster, version).await?;
                Ok(change.names().iter().map(|n| format!("KSYS {n} has been updated")).collect())
            }
            "host_group" => {
                let (mut group, version) = self.host_group(name).await?;
                change.apply(&mut group.detection);
                self.hsdb.put_if_version(&group, version).await?;
                Ok(vec![format!("For Host_group {name} attribute(s) {} was successfully modified.", change.quoted())])
            }
            "vm" => self.modify_vm_speed(name, change).await,
            other => {
                Err(VmrmError::invalid(format!("detection settings apply to system, host_group or vm, not {other}")))
            }
        }
    }

    async fn modify_vm_speed(&self, names: &str, change: Change) -> Result<Vec<String>> {
        if change.host_fdt_ms.is_some() {
            return Err(VmrmError::invalid(
                "host_failure_detection_time is set for the system or a host_group, not for a VM",
            ));
        }
        let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            return Err(VmrmError::invalid(
                "name the VMs to modify: modify vm VM1[,VM2...] vm_failure_detection_speed=...",
            ));
        }
        let mut vms = Vec::with_capacity(names.len());
        for name in &names {
            let (vm, version) = self.vm(name).await?;
            if vm.vm_status != VmStatus::NoOperationInProgress {
                return Err(VmrmError::precondition(format!(
                    "VM {name} has an operation in progress ({}); try again when it ends",
                    vm.vm_status
                )));
            }
            vms.push((vm, version));
        }
        let mut lines = Vec::with_capacity(vms.len());
        for (mut vm, version) in vms {
            vm.vm_failure_detection_speed = change.speed;
            self.hsdb.put_if_version(&vm, version).await?;
            lines.push(format!("For VM {} attribute(s) {} was successfully modified.", vm.name, change.quoted()));
        }
        Ok(lines)
    }

    pub async fn query_system(&self) -> Result<pb::SystemView> {
        let levels =
            Levels { timing: self.timing, system: self.system_detection().await?, host_group: Default::default() };
        let (min, max) = host_fdt_range(&self.timing);
        Ok(pb::SystemView {
            host_failure_detection_time_ms: levels.host_failure_detection_time().as_millis() as u32,
            vm_failure_detection_speed: levels.speed(None).to_string(),
            host_failure_detection_time_range: format!("{}-{} seconds", secs(min), secs(max)),
        })
    }
}
