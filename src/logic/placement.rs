//! Where the VMs of a failed host go. The walking skeleton's mapper: VMs in priority order
//! (High, Medium, Low, then by name for a stable plan), each on the host with the least memory
//! left after placing it among those with enough free CPU and memory (best fit). A VM that fits
//! nowhere is reported with the reason, never dropped.
use crate::domain::Priority;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub host: String,
    pub free_cpu: u32,
    pub free_memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDemand {
    pub vm: String,
    pub cpu: u32,
    pub memory_mb: u64,
    pub priority: Priority,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementPlan {
    /// (VM, target host), in restart order.
    pub placed: Vec<(String, String)>,
    /// (VM, why it could not be placed).
    pub unplaced: Vec<(String, String)>,
}

pub fn place(vms: &[VmDemand], hosts: &[HostCapacity]) -> PlacementPlan {
    let mut free: BTreeMap<&str, (u32, u64)> =
        hosts.iter().map(|h| (h.host.as_str(), (h.free_cpu, h.free_memory_mb))).collect();
    let mut order: Vec<&VmDemand> = vms.iter().collect();
    order.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.vm.cmp(&b.vm)));
    let mut plan = PlacementPlan::default();
    for vm in order {
        let best = free
            .iter()
            .filter(|(_, (cpu, mem))| *cpu >= vm.cpu && *mem >= vm.memory_mb)
            .min_by_key(|(host, (_, mem))| (*mem - vm.memory_mb, **host))
            .map(|(host, _)| *host);
        match best {
            Some(host) => {
                let slot = free.get_mut(host).expect("chosen host is in the map");
                slot.0 -= vm.cpu;
                slot.1 -= vm.memory_mb;
                plan.placed.push((vm.vm.clone(), host.to_string()));
            }
            None if hosts.is_empty() => {
                plan.unplaced.push((vm.vm.clone(), "no other host of its host group is available".into()))
            }
            None => plan.unplaced.push((
                vm.vm.clone(),
                format!(
                    "no available host has {} CPU and {} MB free (largest free: {})",
                    vm.cpu,
                    vm.memory_mb,
                    free.iter().map(|(h, (c, m))| format!("{h} {c} CPU/{m} MB")).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, cpu: u32, mem: u64, priority: Priority) -> VmDemand {
        VmDemand { vm: name.into(), cpu, memory_mb: mem, priority }
    }

    fn host(name: &str, cpu: u32, mem: u64) -> HostCapacity {
        HostCapacity { host: name.into(), free_cpu: cpu, free_memory_mb: mem }
    }

    #[test]
    fn high_priority_first_then_best_fit() {
        let plan = place(
            &[vm("b", 1, 1024, Priority::Medium), vm("a", 1, 1024, Priority::High)],
            &[host("big", 8, 8192), host("small", 2, 2048)],
        );
        assert_eq!(plan.placed, vec![("a".into(), "small".into()), ("b".into(), "small".into())]);
        assert!(plan.unplaced.is_empty());
    }

    #[test]
    fn capacity_is_never_exceeded_and_the_rest_is_reported() {
        let plan = place(
            &[vm("a", 2, 2048, Priority::Medium), vm("b", 2, 2048, Priority::Medium), vm("c", 2, 2048, Priority::Low)],
            &[host("h", 4, 4096)],
        );
        assert_eq!(plan.placed.len(), 2);
        assert_eq!(plan.unplaced.len(), 1);
        assert_eq!(plan.unplaced[0].0, "c");
        assert!(plan.unplaced[0].1.contains("2 CPU and 2048 MB"), "{}", plan.unplaced[0].1);
    }

    #[test]
    fn no_host_at_all_is_reported() {
        let plan = place(&[vm("a", 1, 1, Priority::High)], &[]);
        assert!(plan.unplaced[0].1.contains("no other host"));
    }

    #[test]
    fn planning_twice_gives_the_same_plan() {
        let vms = [vm("a", 1, 512, Priority::Low), vm("b", 2, 1024, Priority::High), vm("c", 1, 512, Priority::Medium)];
        let hosts = [host("x", 4, 4096), host("y", 4, 2048)];
        assert_eq!(place(&vms, &hosts), place(&vms, &hosts));
    }
}
