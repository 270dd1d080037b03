//! What the relocation mapper needs for one host group, gathered from the HSDB (policies, where
//! every other VM runs) and the HMCs (free capacity of the hosts that answer).
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::logic::placement::{HostCapacity, PlacementPlan, Policies, VmDemand, place};
use crate::pb;
use std::collections::BTreeMap;

pub struct MapperInputs {
    pub hosts: Vec<HostCapacity>,
    groups: Vec<AffinityGroupRecord>,
    staying: BTreeMap<String, String>,
    flex: FlexCapacity,
    restart_policy: RestartPolicy,
}

pub fn demand(vm: &VmRecord) -> VmDemand {
    VmDemand {
        vm: vm.name.clone(),
        cpu: vm.cpu,
        memory_mb: vm.memory_mb,
        priority: vm.priority,
        homehost: vm.homehost.clone(),
        blacklist: vm.blacklist_hosts.clone(),
    }
}

impl MapperInputs {
    /// The plan for `moving`; VMs of `moving` count as not staying anywhere.
    pub fn plan(&self, moving: &[VmRecord]) -> PlacementPlan {
        self.plan_on(&self.hosts, moving)
    }

    /// Where `vm` alone would go if its host failed (verification).
    pub fn plan_elsewhere(&self, vm: &VmRecord) -> PlacementPlan {
        let hosts: Vec<HostCapacity> = self.hosts.iter().filter(|c| c.host != vm.host).cloned().collect();
        self.plan_on(&hosts, std::slice::from_ref(vm))
    }

    fn plan_on(&self, hosts: &[HostCapacity], moving: &[VmRecord]) -> PlacementPlan {
        let demands: Vec<VmDemand> = moving.iter().map(demand).collect();
        let mut staying = self.staying.clone();
        for vm in moving {
            staying.remove(&vm.name);
        }
        let policies =
            Policies { groups: &self.groups, flex: self.flex, restart_policy: self.restart_policy, staying: &staying };
        place(&demands, hosts, policies)
    }

    /// At the VMs' full size and acting (live migration: flexible capacity and advisory mode
    /// are for restarts only).
    pub fn at_full_size(mut self) -> Self {
        self.flex = FlexCapacity::default();
        self.restart_policy = RestartPolicy::default();
        self
    }

    /// Only `host` as a candidate (an admin's explicit target).
    pub fn only(mut self, host: &str) -> Self {
        self.hosts.retain(|c| c.host == host);
        self
    }
}

impl Recovery {
    /// Free capacity of the hosts of a group that their HMCs can reach, except `exclude`.
    pub async fn capacities(&self, group: &HostGroupRecord, exclude: &[&str]) -> Result<Vec<HostCapacity>> {
        let mut out = Vec::new();
        for name in group.hosts.iter().filter(|h| !exclude.contains(&h.as_str())) {
            let host = self.records.host(name).await?;
            let Ok(inv) = self.hmc.host_inventory(&host).await else {
                continue;
            };
            if inv.state() != pb::HostState::Operating {
                continue;
            }
            let (cpu, mem) = inv
                .lpars
                .iter()
                .filter(|l| l.state() != pb::LparState::NotActivated)
                .filter_map(|l| l.definition.as_ref())
                .fold((0u32, 0u64), |(c, m), d| (c + d.cpu, m + d.memory_mb));
            out.push(HostCapacity {
                host: name.clone(),
                free_cpu: inv.cpu_total.saturating_sub(cpu),
                free_memory_mb: inv.memory_total_mb.saturating_sub(mem),
            });
        }
        Ok(out)
    }

    /// The mapper's view of `group`, with the hosts of `exclude` left out as candidates.
    pub async fn mapper_inputs(&self, group: &HostGroupRecord, exclude: &[&str]) -> Result<MapperInputs> {
        let hosts = self.capacities(group, exclude).await?;
        let staying = self
            .hsdb
            .list::<VmRecord>()
            .await?
            .into_iter()
            .filter(|vm| group.hosts.contains(&vm.host))
            .map(|vm| (vm.name, vm.host))
            .collect();
        Ok(MapperInputs {
            hosts,
            groups: self.hsdb.list::<AffinityGroupRecord>().await?,
            staying,
            flex: group.capacity,
            restart_policy: group.restart_policy,
        })
    }
}
