//! The admin's restarts: `ksysmgr restart vm NAME [host=TARGET]` and `restore vm|host NAME`
//! (move back home). Everything is checked first — the mapper's own rules decide whether an
//! explicit target may take the VM (blacklist, anticollocation, capacity) — then the restart
//! runs as a recovery task like any other.
use crate::controller::core::ControllerCore;
use crate::controller::lines::Lines;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;

impl ControllerCore {
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

    /// A known host of the VM's group other than its own.
    pub(in crate::controller) async fn other_host_of_group(
        &self,
        vm: &VmRecord,
        group: &HostGroupRecord,
        target: &str,
    ) -> Result<HostRecord> {
        let t_host = self.host(target).await?;
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
    async fn check_target(&self, vm: &VmRecord, group: &HostGroupRecord, target: &str) -> Result<()> {
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

    /// Restarts one VM as one task; its lines, or the lines as the error when it failed.
    pub(in crate::controller) async fn restart_one_vm(
        &self,
        vm: VmRecord,
        group: &HostGroupRecord,
        target: Option<&str>,
        heading: String,
    ) -> Result<Vec<String>> {
        let out = Lines::default();
        out.push(heading);
        let subject = vm.name.clone();
        let task = self.recover(group, vec![vm], target, RestartCause::Admin, &subject, &out).await?;
        let lines = out.take();
        match task.restarted {
            1 => Ok(lines),
            _ => Err(VmrmError::precondition(lines.join("\n"))),
        }
    }

    /// `ksysmgr restart vm NAME [host=TARGET]`.
    pub async fn admin_restart(&self, vm_name: &str, target: Option<&str>) -> Result<Vec<String>> {
        let (vm, group) = self.restartable(vm_name).await?;
        if let Some(t) = target {
            self.check_target(&vm, &group, t).await?;
        }
        self.restart_one_vm(vm, &group, target, format!("Restart in progress for VM {vm_name}")).await
    }

    /// `ksysmgr restore vm NAME` / `restore host NAME`: VMs away from home go back to their home
    /// host — by live migration when they run at full size, else by a restart, which gives
    /// them their full size again (flexible capacity applies only away).
    pub async fn restore(&self, class: &str, name: &str) -> Result<Vec<String>> {
        let names: Vec<String> = match class {
            "vm" => vec![name.to_string()],
            "host" => {
                self.host(name).await?;
                let vms = self.hsdb.list::<VmRecord>().await?;
                vms.into_iter().filter(|v| v.homehost == name && v.host != name && v.managed).map(|v| v.name).collect()
            }
            other => return Err(VmrmError::invalid(format!("restore applies to a vm or a host, not {other}"))),
        };
        let mut checked = Vec::new();
        for n in &names {
            let (vm, group) = self.restartable(n).await?;
            if vm.host == vm.homehost {
                if class == "vm" {
                    return Err(VmrmError::precondition(format!(
                        "VM {n} already runs on its home host {}",
                        vm.homehost
                    )));
                }
                continue;
            }
            let home = vm.homehost.clone();
            self.check_target(&vm, &group, &home).await?;
            checked.push((vm, group, home));
        }
        if checked.is_empty() {
            return Ok(vec![format!("All VMs of home host {name} already run there")]);
        }
        let mut lines = Vec::new();
        for (vm, group, home) in checked {
            // Running at full size: home by live migration, without an outage. Reduced by
            // flexible capacity: a restart gives it its full size back.
            if self.runs_at_full_size(&vm).await {
                lines.extend(self.restore_by_lpm(&vm).await?);
                continue;
            }
            let heading = format!("Restore in progress for VM {} to home host {home}", vm.name);
            lines.extend(self.restart_one_vm(vm, &group, Some(&home), heading).await?);
        }
        Ok(lines)
    }
}
