//! The relocation mapper (seed 000 §3.5): where the VMs of a failed host (or one failed VM) go.
//!
//! In the seed's order: VMs by priority (High, Medium, Low) → collocation (a group's moving
//! members form one unit that goes to one host, the host of its members that stay if any) →
//! anticollocation (never a host where a partner runs or was just placed) → the VM's
//! `blacklist_hosts` → best fit on free CPU and memory, after flexible capacity (a VM restarted
//! away from its home host asks for its priority's percentage, at home for 100 %) → auto or
//! advisory. Every VM it cannot place is reported with the reason, never dropped. Within a
//! priority, constrained units choose first (collocation, then anticollocation), so the loose
//! ones fill what is left; the restart order keeps a workgroup's members together.
mod units;

use crate::domain::{AffinityGroupRecord, FlexCapacity, Priority, RestartPolicy};
use std::collections::BTreeMap;
use units::Unit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub host: String,
    pub free_cpu: u32,
    pub free_memory_mb: u64,
}

/// A VM to place, at its full (home) size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDemand {
    pub vm: String,
    pub cpu: u32,
    pub memory_mb: u64,
    pub priority: Priority,
    pub homehost: String,
    pub blacklist: Vec<String>,
}

/// The policies the mapper applies besides each VM's own.
#[derive(Debug, Clone, Copy)]
pub struct Policies<'a> {
    pub groups: &'a [AffinityGroupRecord],
    pub flex: FlexCapacity,
    pub restart_policy: RestartPolicy,
    /// Where the VMs that are not moving run now (VM → host), for affinity with them.
    pub staying: &'a BTreeMap<String, String>,
}

/// One VM's target, with the CPU and memory it restarts with (after flexible capacity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub vm: String,
    pub host: String,
    pub cpu: u32,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementPlan {
    /// In restart order: priority, then workgroup, then name.
    pub placed: Vec<Placement>,
    /// (VM, why it could not be placed).
    pub unplaced: Vec<(String, String)>,
    /// `restart_policy=advisory_mode`: the plan is only to be reported.
    pub advisory: bool,
}

/// The demand of `vm` on `host`: full at home, scaled by flexible capacity elsewhere.
fn demand_on(vm: &VmDemand, host: &str, flex: &FlexCapacity) -> (u32, u64) {
    match vm.homehost == host {
        true => (vm.cpu, vm.memory_mb),
        false => flex.scale(vm.priority, vm.cpu, vm.memory_mb),
    }
}

struct Mapper<'a> {
    vms: &'a [VmDemand],
    hosts: &'a [HostCapacity],
    policies: Policies<'a>,
    free: Vec<(u32, u64)>,
    /// Moving VM (index) → host index, once placed.
    placed_at: Vec<Option<usize>>,
}

impl Mapper<'_> {
    /// Where a VM named `name` is or will be: a staying VM's host, or a placed VM's target.
    fn host_of(&self, name: &str, index: &BTreeMap<&str, usize>) -> Option<usize> {
        match index.get(name) {
            Some(&i) => self.placed_at[i],
            None => {
                let host = self.policies.staying.get(name)?;
                self.hosts.iter().position(|h| &h.host == host)
            }
        }
    }

    /// What the members of a unit ask for together on `host`.
    fn unit_demand(&self, members: &[&VmDemand], host: &str) -> (u32, u64) {
        members.iter().fold((0, 0), |(c, m), vm| {
            let (dc, dm) = demand_on(vm, host, &self.policies.flex);
            (c + dc, m + dm)
        })
    }

    /// The host for `unit`, or why there is none.
    fn choose(&self, unit: &Unit, index: &BTreeMap<&str, usize>) -> Result<usize, String> {
        if let Some(conflict) = &unit.conflict {
            return Err(conflict.clone());
        }
        let members: Vec<&VmDemand> = unit.members.iter().map(|&i| &self.vms[i]).collect();
        let names = || members.iter().map(|m| m.vm.as_str()).collect::<Vec<_>>().join(", ");
        if self.hosts.is_empty() {
            return Err("no other host of its host group is available".into());
        }
        let mut candidates: Vec<usize> = (0..self.hosts.len()).collect();
        if let Some(pin) = &unit.pinned_with {
            let host = self.policies.staying[pin].clone();
            candidates.retain(|&h| self.hosts[h].host == host);
            if candidates.is_empty() {
                return Err(format!("it is collocated with VM {pin} on host {host}, which cannot take VMs now"));
            }
        }
        if members.iter().any(|m| !m.blacklist.is_empty()) {
            candidates.retain(|&h| !members.iter().any(|m| m.blacklist.contains(&self.hosts[h].host)));
            if candidates.is_empty() {
                return Err("every available host is in its blacklist_hosts".into());
            }
        }
        if !unit.partners.is_empty() {
            let taken: Vec<(usize, &str)> =
                unit.partners.iter().filter_map(|p| Some((self.host_of(p, index)?, p.as_str()))).collect();
            let before: Vec<usize> = candidates.clone();
            candidates.retain(|h| !taken.iter().any(|(t, _)| t == h));
            if candidates.is_empty() {
                let on: Vec<String> = before
                    .iter()
                    .filter_map(|h| taken.iter().find(|(t, _)| t == h))
                    .map(|(t, p)| format!("{p} on {}", self.hosts[*t].host))
                    .collect();
                return Err(format!(
                    "anticollocation leaves no host: its partners run on every candidate ({})",
                    on.join(", ")
                ));
            }
        }
        let fit = candidates
            .iter()
            .filter_map(|&h| {
                let host = &self.hosts[h].host;
                let (cpu, mem) = self.unit_demand(&members, host);
                let (free_cpu, free_mem) = self.free[h];
                (free_cpu >= cpu && free_mem >= mem).then(|| (free_mem - mem, free_cpu - cpu, host, h))
            })
            .min();
        match fit {
            Some((.., h)) => Ok(h),
            None => {
                let (cpu, mem) = members.iter().fold((0u32, 0u64), |(c, m), vm| {
                    let (dc, dm) = self.policies.flex.scale(vm.priority, vm.cpu, vm.memory_mb);
                    (c + dc, m + dm)
                });
                let what = match members.len() {
                    1 => String::new(),
                    _ => format!(" for the collocated VMs {}", names()),
                };
                if let [h] = candidates[..] {
                    let (cpu, mem) = self.unit_demand(&members, &self.hosts[h].host);
                    let (free_cpu, free_mem) = self.free[h];
                    return Err(format!(
                        "host {} does not have enough free capacity{what}: it needs {cpu} CPU / {mem} MB, {free_cpu} CPU / {free_mem} MB are free",
                        self.hosts[h].host
                    ));
                }
                let mut largest: Vec<usize> = candidates.clone();
                largest.sort_by_key(|&h| std::cmp::Reverse(self.free[h].1));
                let largest: Vec<String> = largest
                    .iter()
                    .take(3)
                    .map(|&h| format!("{} {} CPU/{} MB", self.hosts[h].host, self.free[h].0, self.free[h].1))
                    .collect();
                Err(format!(
                    "no available host has {cpu} CPU and {mem} MB free{what} (largest free: {})",
                    largest.join(", ")
                ))
            }
        }
    }

    fn take(&mut self, unit: &Unit, h: usize) -> Vec<Placement> {
        let host = self.hosts[h].host.clone();
        unit.members
            .iter()
            .map(|&i| {
                let vm = &self.vms[i];
                let (cpu, memory_mb) = demand_on(vm, &host, &self.policies.flex);
                self.free[h].0 -= cpu;
                self.free[h].1 -= memory_mb;
                self.placed_at[i] = Some(h);
                Placement { vm: vm.vm.clone(), host: host.clone(), cpu, memory_mb }
            })
            .collect()
    }
}

pub fn place(vms: &[VmDemand], hosts: &[HostCapacity], policies: Policies) -> PlacementPlan {
    let index: BTreeMap<&str, usize> = vms.iter().enumerate().map(|(i, v)| (v.vm.as_str(), i)).collect();
    let mut units = units::build(vms, &index, policies.groups, policies.staying);
    units.sort_by(|a, b| a.placement_order(vms).cmp(&b.placement_order(vms)));
    let mut mapper = Mapper {
        vms,
        hosts,
        policies,
        free: hosts.iter().map(|h| (h.free_cpu, h.free_memory_mb)).collect(),
        placed_at: vec![None; vms.len()],
    };
    let mut placed = Vec::with_capacity(vms.len());
    let mut unplaced = Vec::new();
    for unit in &units {
        match mapper.choose(unit, &index) {
            Ok(h) => placed.extend(mapper.take(unit, h)),
            Err(why) => unplaced.extend(unit.members.iter().map(|&i| (vms[i].vm.clone(), why.clone()))),
        }
    }
    let workgroup = units::workgroup_of(policies.groups);
    placed.sort_by_cached_key(|p| {
        let vm = &vms[index[p.vm.as_str()]];
        (vm.priority, workgroup.get(vm.vm.as_str()).copied().unwrap_or(""), vm.vm.clone())
    });
    unplaced.sort_by_cached_key(|(vm, _)| (vms[index[vm.as_str()]].priority, vm.clone()));
    PlacementPlan { placed, unplaced, advisory: policies.restart_policy == RestartPolicy::AdvisoryMode }
}

#[cfg(test)]
mod tests;
