//! The reasons the mapper gives for a VM it could not place: the candidate hosts are narrowed
//! in the mapper's order (collocation pin, blacklist, anticollocation, capacity) and the first
//! step that leaves none names the cause.
use super::{Mapper, VmDemand, demand_on, units::Unit};
use std::collections::BTreeMap;

impl Mapper<'_> {
    /// What the members of a unit ask for together on `host`.
    fn unit_demand(&self, members: &[&VmDemand], host: &str) -> (u32, u64) {
        members.iter().fold((0, 0), |(c, m), vm| {
            let (dc, dm) = demand_on(vm, host, &self.policies.flex);
            (c + dc, m + dm)
        })
    }

    /// Why `unit` has no host, step by step in the mapper's order (runs only when
    /// [`Mapper::choose`] found none).
    pub(super) fn why_not(&self, unit: &Unit, index: &BTreeMap<&str, usize>) -> String {
        match self.first_refusal(unit, index) {
            Err(why) => why,
            Ok(()) => "no host fits it".into(),
        }
    }

    fn first_refusal(&self, unit: &Unit, index: &BTreeMap<&str, usize>) -> Result<(), String> {
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
            Some(_) => Ok(()),
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
}
