//! The admin's restarts: `ksysmgr restart vm NAME [host=TARGET]`, and the restart half of
//! `restore` (a VM running reduced goes home by restart: [`crate::controller::migration::evacuation`]).
//! Everything is checked first — the mapper's own rules decide whether an explicit target may
//! take the VM (blacklist, anticollocation, capacity) — then the restart runs as a recovery task
//! like any other.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::{Result, VmrmError};

/// A restart an admin asked for that completed.
#[derive(Debug, Clone)]
pub struct Restarted {
    pub vm: String,
    pub source: String,
    pub target: String,
    /// The lock's epoch it ran under: the fencing token the SAN requires from now on.
    pub epoch: u64,
    /// The recovery task it ran as.
    pub task: String,
    /// What the restart did, step by step.
    pub steps: Vec<crate::pb::Step>,
}

impl Recovery {
    /// A known host of the VM's group other than its own.
    pub(in crate::controller) async fn other_host_of_group(
        &self,
        vm: &VmRecord,
        group: &HostGroupRecord,
        target: &str,
    ) -> Result<HostRecord> {
        let t_host = self.records.host(target).await?;
        if target == vm.host {
            return Err(VmrmError::invalid(format!(
                "VM {} already runs on host {target}; choose another host",
                vm.name
            )));
        }
        if t_host.host_group.as_deref() != Some(group.name.as_str()) {
            return Err(VmrmError::precondition(format!(
                "host {target} is not in host_group {} of VM {}",
                group.name, vm.name
            )));
        }
        Ok(t_host)
    }

    /// Refuses a target the VM cannot go to, with the reason.
    pub(in crate::controller) async fn check_target(
        &self,
        vm: &VmRecord,
        group: &HostGroupRecord,
        target: &str,
    ) -> Result<()> {
        self.other_host_of_group(vm, group, target).await?;
        if vm.blacklist_hosts.iter().any(|h| h == target) {
            return Err(VmrmError::precondition(format!(
                "host {target} is in the blacklist_hosts of VM {}; remove it with `ksysmgr modify vm {} blacklist_hosts={target} policy=delete` first",
                vm.name, vm.name
            )));
        }
        let inputs = self.mapper_inputs(group, &[vm.host.as_str()]).await?;
        if !inputs.hosts.iter().any(|c| c.host == target) {
            return Err(VmrmError::precondition(format!("host {target} is not reachable through its HMCs")));
        }
        let plan = inputs.only(target).plan(std::slice::from_ref(vm));
        match plan.unplaced.first() {
            None => Ok(()),
            Some((_, why)) => Err(VmrmError::precondition(format!("VM {} cannot go to host {target}: {why}", vm.name))),
        }
    }

    /// Restarts one VM as one task; where it went, or the lines as the error when it failed.
    pub(in crate::controller) async fn restart_one_vm(
        &self,
        vm: VmRecord,
        group: &HostGroupRecord,
        target: Option<&str>,
        heading: crate::pb::Step,
    ) -> Result<Restarted> {
        let out = Lines::default();
        out.push(heading);
        let (name, source) = (vm.name.clone(), vm.host.clone());
        let task = self.recover(group, vec![vm], target, RestartCause::Admin, &name, &out).await?;
        let steps = out.take();
        if task.restarted != 1 {
            return Err(VmrmError::precondition(crate::pb::steps::printed(&steps).join("\n")));
        }
        let (now, _) = self.records.vm(&name).await?;
        Ok(Restarted { vm: name, source, target: now.host, epoch: now.epoch, task: task.id, steps })
    }

    /// `ksysmgr restart vm NAME [host=TARGET]`.
    pub async fn admin_restart(&self, vm_name: &str, target: Option<&str>) -> Result<Restarted> {
        let (vm, group) = self.records.restartable(vm_name).await?;
        if let Some(t) = target {
            self.check_target(&vm, &group, t).await?;
        }
        self.restart_one_vm(vm, &group, target, say::vm_restart_in_progress(vm_name)).await
    }
}
