//! The configuration records every room looks up — the ksyscluster, host groups, hosts, VMs —
//! read from the HSDB with the error an operator should see when one is missing, and the
//! settings in force (detection levels, `ha_monitor` levels, priorities). A floor below the
//! rooms: they all read through it, it calls none of them.
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::logic::detection::Levels;
use crate::profile::Timing;
use std::collections::BTreeMap;

/// The configuration as the rooms read it: records and the settings in force.
#[derive(Clone)]
pub struct Records {
    hsdb: LocalHsdb,
    timing: Timing,
}

impl Records {
    pub fn new(hsdb: LocalHsdb, timing: Timing) -> Self {
        Self { hsdb, timing }
    }

    pub async fn cluster(&self) -> Result<ClusterRecord> {
        Ok(self.cluster_versioned().await?.0)
    }

    /// The ksyscluster with its version, for a compare-and-set.
    pub async fn cluster_versioned(&self) -> Result<(ClusterRecord, u64)> {
        self.hsdb.get::<ClusterRecord>("cluster").await?.ok_or_else(|| {
            VmrmError::precondition("no ksyscluster is defined: run `ksysmgr add ksyscluster NAME type=HA` first")
        })
    }

    pub async fn host_group(&self, name: &str) -> Result<(HostGroupRecord, u64)> {
        self.hsdb
            .get::<HostGroupRecord>(name)
            .await?
            .ok_or_else(|| VmrmError::not_found(format!("host_group {} does not exist", quote(name))))
    }

    pub async fn host(&self, name: &str) -> Result<HostRecord> {
        self.hsdb
            .get::<HostRecord>(name)
            .await?
            .map(|(h, _)| h)
            .ok_or_else(|| VmrmError::not_found(format!("host {} does not exist", quote(name))))
    }

    pub async fn vm(&self, name: &str) -> Result<(VmRecord, u64)> {
        self.hsdb.get::<VmRecord>(name).await?.ok_or_else(|| {
            VmrmError::not_found(format!("VM {} does not exist (run discovery first if it is new)", quote(name)))
        })
    }

    /// A managed VM with no operation in progress, and its host group.
    pub(in crate::controller) async fn restartable(&self, vm_name: &str) -> Result<(VmRecord, HostGroupRecord)> {
        let (vm, _) = self.vm(vm_name).await?;
        if !vm.managed {
            return Err(VmrmError::precondition(format!(
                "VM {vm_name} is not managed: run `ksysmgr manage vm {vm_name}` first"
            )));
        }
        if vm.vm_status != VmStatus::NoOperationInProgress {
            return Err(VmrmError::precondition(format!(
                "VM {vm_name} has another operation in progress ({})",
                vm.vm_status
            )));
        }
        let source = self.host(&vm.host).await?;
        let group_name = source.host_group.clone().ok_or_else(|| {
            VmrmError::precondition(format!("host {} of VM {vm_name} is in no host_group", source.name))
        })?;
        let (group, _) = self.host_group(&group_name).await?;
        Ok((vm, group))
    }

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

    /// The `ha_monitor` settings that decide whether failures on `host` are acted on.
    pub async fn ha_monitor_levels(&self, host: &str) -> Result<HaMonitorLevels> {
        let host = self.host(host).await?;
        let system = self.hsdb.get::<ClusterRecord>("cluster").await?.and_then(|(c, _)| c.ha_monitor);
        let host_group = match &host.host_group {
            Some(g) => self.hsdb.get::<HostGroupRecord>(g).await?.and_then(|(g, _)| g.ha_monitor),
            None => None,
        };
        Ok(HaMonitorLevels { system, host_group, host: host.ha_monitor })
    }

    /// Every VM's priority, by name.
    pub(in crate::controller) async fn priorities(&self) -> Result<BTreeMap<String, Priority>> {
        Ok(self.hsdb.list::<VmRecord>().await?.into_iter().map(|v| (v.name, v.priority)).collect())
    }
}
