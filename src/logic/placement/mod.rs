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
mod reasons;
mod units;

use crate::domain::{AffinityGroupRecord, FlexCapacity, Priority, RestartPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    host_index: HashMap<&'a str, usize>,
    /// Each host's place in name order: among equally good hosts the first name wins.
    rank: Vec<usize>,
    /// The hosts by what they have free — (memory, CPU, rank, index) — so the best fit is the
    /// first that fits from the VM's memory up, found without looking at every host.
    by_free: BTreeSet<(u64, u32, usize, usize)>,
}

impl<'a> Mapper<'a> {
    fn new(vms: &'a [VmDemand], hosts: &'a [HostCapacity], policies: Policies<'a>) -> Self {
        let mut by_name: Vec<usize> = (0..hosts.len()).collect();
        by_name.sort_by(|&a, &b| hosts[a].host.cmp(&hosts[b].host));
        let mut rank = vec![0; hosts.len()];
        for (r, &h) in by_name.iter().enumerate() {
            rank[h] = r;
        }
        let by_free = hosts.iter().enumerate().map(|(h, c)| (c.free_memory_mb, c.free_cpu, rank[h], h)).collect();
        Self {
            vms,
            hosts,
            policies,
            free: hosts.iter().map(|h| (h.free_cpu, h.free_memory_mb)).collect(),
            placed_at: vec![None; vms.len()],
            host_index: hosts.iter().enumerate().map(|(i, h)| (h.host.as_str(), i)).collect(),
            rank,
            by_free,
        }
    }

    /// Where a VM named `name` is or will be: a staying VM's host, or a placed VM's target.
    fn host_of(&self, name: &str, index: &BTreeMap<&str, usize>) -> Option<usize> {
        match index.get(name) {
            Some(&i) => self.placed_at[i],
            None => self.host_index.get(self.policies.staying.get(name)?.as_str()).copied(),
        }
    }

    /// How good `h` is for a demand: (memory left, CPU left, name rank), lower is better;
    /// `None` if it does not fit.
    fn fit(&self, h: usize, (cpu, mem): (u32, u64)) -> Option<(u64, u32, usize)> {
        let (free_cpu, free_mem) = self.free[h];
        (free_cpu >= cpu && free_mem >= mem).then(|| (free_mem - mem, free_cpu - cpu, self.rank[h]))
    }

    /// The best-fitting host for `unit` (least memory left, then least CPU, then name), or
    /// `None` — [`Mapper::why_not`] then says why.
    fn choose(&self, unit: &Unit, index: &BTreeMap<&str, usize>) -> Option<usize> {
        if unit.conflict.is_some() {
            return None;
        }
        let mut away = (0u32, 0u64);
        // (home host, what a member adds there beyond its away-from-home demand)
        let mut at_home: Vec<(usize, u32, u64)> = Vec::new();
        let mut excluded: Vec<usize> = Vec::new();
        for &i in &unit.members {
            let vm = &self.vms[i];
            let (cpu, mem) = self.policies.flex.scale(vm.priority, vm.cpu, vm.memory_mb);
            away = (away.0 + cpu, away.1 + mem);
            if let Some(&h) = self.host_index.get(vm.homehost.as_str()) {
                // Flexible capacity never grows a VM, except a 0-CPU one that gets its one CPU.
                at_home.push((h, vm.cpu.saturating_sub(cpu), vm.memory_mb - mem));
            }
            excluded.extend(vm.blacklist.iter().filter_map(|b| self.host_index.get(b.as_str()).copied()));
        }
        excluded.extend(unit.partners.iter().filter_map(|p| self.host_of(p, index)));
        let demand_at = |h: usize| {
            at_home.iter().filter(|(home, ..)| *home == h).fold(away, |(c, m), (_, ec, em)| (c + ec, m + em))
        };
        if let Some(pin) = &unit.pinned_with {
            let h = *self.host_index.get(self.policies.staying[pin].as_str())?;
            return (!excluded.contains(&h) && self.fit(h, demand_at(h)).is_some()).then_some(h);
        }
        // Home hosts ask for more than the others: each is judged with its own demand.
        let mut best: Option<((u64, u32, usize), usize)> = None;
        for &(h, ..) in &at_home {
            if let Some(score) = self.fit(h, demand_at(h)).filter(|_| !excluded.contains(&h)) {
                best = best.filter(|(b, _)| *b < score).or(Some((score, h)));
            }
        }
        let first_away = self
            .by_free
            .range((away.1, 0, 0, 0)..)
            .find(|&&(_, free_cpu, _, h)| {
                free_cpu >= away.0 && !excluded.contains(&h) && !at_home.iter().any(|(home, ..)| *home == h)
            })
            .map(|&(.., h)| h);
        if let Some(h) = first_away
            && let Some(score) = self.fit(h, away)
        {
            best = best.filter(|(b, _)| *b < score).or(Some((score, h)));
        }
        best.map(|(_, h)| h)
    }

    fn take(&mut self, unit: &Unit, h: usize) -> Vec<Placement> {
        let host = self.hosts[h].host.clone();
        let (free_cpu, free_mem) = self.free[h];
        self.by_free.remove(&(free_mem, free_cpu, self.rank[h], h));
        let placed = unit
            .members
            .iter()
            .map(|&i| {
                let vm = &self.vms[i];
                let (cpu, memory_mb) = demand_on(vm, &host, &self.policies.flex);
                self.free[h].0 -= cpu;
                self.free[h].1 -= memory_mb;
                self.placed_at[i] = Some(h);
                Placement { vm: vm.vm.clone(), host: host.clone(), cpu, memory_mb }
            })
            .collect();
        let (free_cpu, free_mem) = self.free[h];
        self.by_free.insert((free_mem, free_cpu, self.rank[h], h));
        placed
    }
}

pub fn place(vms: &[VmDemand], hosts: &[HostCapacity], policies: Policies) -> PlacementPlan {
    let index: BTreeMap<&str, usize> = vms.iter().enumerate().map(|(i, v)| (v.vm.as_str(), i)).collect();
    let mut units = units::build(vms, &index, policies.groups, policies.staying);
    units.sort_by(|a, b| a.placement_order(vms).cmp(&b.placement_order(vms)));
    let mut mapper = Mapper::new(vms, hosts, policies);
    let mut placed = Vec::with_capacity(vms.len());
    let mut unplaced = Vec::new();
    for unit in &units {
        match mapper.choose(unit, &index) {
            Some(h) => placed.extend(mapper.take(unit, h)),
            None => {
                let why = mapper.why_not(unit, &index);
                unplaced.extend(unit.members.iter().map(|&i| (vms[i].vm.clone(), why.clone())));
            }
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
