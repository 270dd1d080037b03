//! What a Quick discovery finds changed outside vmrm: the HMCs' inventory of a host group's
//! hosts against the VM records. A running partition nobody recorded was **found** (created
//! outside vmrm); a recorded VM running on another host of the group than its record says, with
//! no operation of vmrm in progress, was **moved** (an LPM run from the HMC); a recorded VM
//! defined on no host of the group was **gone** (deleted) — said only when every host answered,
//! since a host that does not answer may still hold it.
use crate::domain::{VmRecord, VmStatus};
use std::collections::BTreeSet;

/// A partition as one host's inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub running: bool,
}

/// One change found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Found { vm: String, host: String },
    Moved { vm: String, from: String, to: String },
    Gone { vm: String, host: String },
}

/// The changes of a group whose hosts' inventories are `inventories` (`None`: the host did not
/// answer), given every VM record of the cluster.
pub fn changes(records: &[VmRecord], inventories: &[(String, Option<Vec<Seen>>)]) -> Vec<Change> {
    let hosts: BTreeSet<&str> = inventories.iter().map(|(h, _)| h.as_str()).collect();
    let answered = |host: &str| inventories.iter().find(|(h, _)| h == host).and_then(|(_, inv)| inv.as_ref());
    let runs_on =
        |name: &str, host: &str| answered(host).is_some_and(|inv| inv.iter().any(|s| s.name == name && s.running));
    let idle = |vm: &VmRecord| vm.vm_status == VmStatus::NoOperationInProgress;
    let mut found = Vec::new();
    for (host, inv) in inventories {
        for seen in inv.iter().flatten().filter(|s| s.running) {
            match records.iter().find(|vm| vm.name == seen.name) {
                None => found.push(Change::Found { vm: seen.name.clone(), host: host.clone() }),
                Some(vm) if vm.host != *host && idle(vm) && hosts.contains(vm.host.as_str()) => {
                    if answered(&vm.host).is_some() && !runs_on(&vm.name, &vm.host) {
                        found.push(Change::Moved { vm: vm.name.clone(), from: vm.host.clone(), to: host.clone() });
                    }
                }
                Some(_) => {}
            }
        }
    }
    if inventories.iter().all(|(_, inv)| inv.is_some()) {
        let defined = |name: &str| inventories.iter().flat_map(|(_, inv)| inv.iter().flatten()).any(|s| s.name == name);
        for vm in records.iter().filter(|vm| hosts.contains(vm.host.as_str()) && idle(vm) && !defined(&vm.name)) {
            found.push(Change::Gone { vm: vm.name.clone(), host: vm.host.clone() });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, host: &str) -> VmRecord {
        VmRecord { vm_status: VmStatus::NoOperationInProgress, ..VmRecord::at_rest(name, host) }
    }

    fn running(names: &[&str]) -> Option<Vec<Seen>> {
        Some(names.iter().map(|n| Seen { name: n.to_string(), running: true }).collect())
    }

    #[test]
    fn found_moved_and_gone() {
        let records = [vm("vm-1", "h1"), vm("vm-2", "h1"), vm("vm-3", "h2"), vm("vm-4", "h2")];
        let inventories =
            [("h1".to_string(), running(&["vm-1", "vm-new"])), ("h2".to_string(), running(&["vm-2", "vm-4"]))];
        assert_eq!(
            changes(&records, &inventories),
            [
                Change::Found { vm: "vm-new".into(), host: "h1".into() },
                Change::Moved { vm: "vm-2".into(), from: "h1".into(), to: "h2".into() },
                Change::Gone { vm: "vm-3".into(), host: "h2".into() },
            ]
        );
    }

    #[test]
    fn nothing_is_concluded_from_a_host_that_did_not_answer_or_a_vm_in_an_operation() {
        let records = [vm("vm-1", "h1"), vm("vm-2", "h2")];
        let silent = [("h1".to_string(), None), ("h2".to_string(), running(&["vm-1"]))];
        assert_eq!(changes(&records, &silent), [], "vm-1 may still run on h1; vm-2 may be there too");
        let mut restarting = vm("vm-2", "h1");
        restarting.vm_status = VmStatus::RestartInProgress;
        let inventories = [("h1".to_string(), running(&[])), ("h2".to_string(), running(&["vm-2"]))];
        assert_eq!(changes(&[restarting], &inventories), []);
        let stopped = [("h1".to_string(), Some(vec![Seen { name: "vm-1".into(), running: false }]))];
        assert_eq!(changes(&records[..1], &stopped), [], "defined but stopped: not gone");
        let elsewhere = [("h1".to_string(), running(&["vm-9"]))];
        assert_eq!(changes(&[vm("vm-9", "other-group-host")], &elsewhere), [], "another group's VM");
    }
}
