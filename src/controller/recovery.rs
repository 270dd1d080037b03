//! The restart sequence (seed 000 §5.4 Scenario C), one VM at a time, VMs of one priority in
//! parallel (bounded), priorities in order:
//!
//! ```text
//! lock (table `locked`, epoch+1) → stop HA monitoring → shut the source LPAR down via an HMC
//! (best effort) → FENCE: SAN reservation preempted to the target host → restart on the target
//! via an HMC job → start HA monitoring → record the new host, release the lock →
//! "Restart on Target host X has completed" → source cleanup (errors reported, not fatal)
//! … "N out of M VMs have been successfully restarted"
//! ```
//! The fence comes before the restart, always: if the SAN cannot be preempted the VM is not
//! started anywhere. The lock is the VM's row in the HSDB table `locked`: taking it raises its
//! epoch, and the VM row is written only under that epoch (fenced), through the local member
//! only, so a controller that lost the DBN role — or whose operation was taken over — cannot
//! change the VM behind the new holder's back.
use super::core::ControllerCore;
use super::lines::Lines;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::Acquire;
use crate::hsdb::{HsdbAccess, Record};
use crate::logic::placement::{VmDemand, place};
use crate::pb::{ActivateLpar, RemoveLpar, ShutdownLpar, submit_job_request::Job};
use futures::StreamExt;
use std::collections::BTreeMap;

/// How many VMs of one priority restart at once.
pub const MAX_PARALLEL_RESTARTS: usize = 4;

/// Why VMs are being restarted; it decides whether the source is expected to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    HostFailure,
    /// The FDE's VM rule: this VM failed, its host did not.
    VmFailure,
    Admin,
}

impl ControllerCore {
    /// Restarts `vms` (all from one host group) elsewhere: on `target` if given, else where the
    /// mapper places them. Returns the lines and how many restarted.
    pub async fn restart_vms(
        &self,
        group: &HostGroupRecord,
        vms: Vec<VmRecord>,
        target: Option<&str>,
        cause: RestartCause,
        out: &Lines,
    ) -> Result<usize> {
        let total = vms.len();
        let sources: Vec<&str> = vms.iter().map(|v| v.host.as_str()).collect();
        let mut capacity = self.capacities(group, &sources).await?;
        if let Some(t) = target {
            capacity.retain(|c| c.host == t);
        }
        let demands: Vec<VmDemand> = vms
            .iter()
            .map(|v| VmDemand { vm: v.name.clone(), cpu: v.cpu, memory_mb: v.memory_mb, priority: v.priority })
            .collect();
        let plan = place(&demands, &capacity);
        let by_name: BTreeMap<String, VmRecord> = vms.into_iter().map(|v| (v.name.clone(), v)).collect();
        for (vm, why) in &plan.unplaced {
            out.step(format!("ERROR: Restart has encountered an error for VM {vm}: {why}"));
            self.mark_restart_failed(vm, why).await;
        }
        let mut restarted = 0;
        for priority in [Priority::High, Priority::Medium, Priority::Low] {
            let wave: Vec<(VmRecord, String)> = plan
                .placed
                .iter()
                .filter_map(|(vm, host)| {
                    by_name.get(vm).filter(|v| v.priority == priority).map(|v| (v.clone(), host.clone()))
                })
                .collect();
            restarted += futures::stream::iter(wave)
                .map(|(vm, host)| self.restart_one(vm, host, cause, out))
                .buffer_unordered(MAX_PARALLEL_RESTARTS)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await;
        }
        out.push(format!("{restarted} out of {total} VMs have been successfully restarted"));
        Ok(restarted)
    }

    async fn mark_restart_failed(&self, vm: &str, why: &str) {
        if let Ok(Some((mut rec, version))) = self.hsdb.get::<VmRecord>(vm).await {
            rec.state = VmState::RestartFailed;
            let _ = self.hsdb.put_if_version(&rec, version).await;
        }
        let _ = self.hsdb.append_event(&EventRecord::new(EventName::RestartFailed, vm, why)).await;
    }

    /// Shows the lock taken at `epoch` on the VM row: RESTART_IN_PROGRESS with that epoch.
    /// Returns the row as written and its version.
    async fn show_lock(&self, name: &str, epoch: u64) -> Result<(VmRecord, u64)> {
        let (mut vm, version) = self.vm(name).await?;
        vm.vm_status = VmStatus::RestartInProgress;
        vm.epoch = epoch;
        let version = self.hsdb.put_if_version_fenced((name, epoch), &vm, version).await?;
        Ok((vm, version))
    }

    async fn restart_one(&self, vm: VmRecord, target: String, cause: RestartCause, out: &Lines) -> bool {
        let name = vm.name.clone();
        let mut epoch = None;
        match self.restart_locked(vm, &target, cause, out, &mut epoch).await {
            Ok(()) => true,
            Err(e) => {
                out.step(format!("ERROR: Restart has encountered an error for VM {name}: {e}"));
                if let Some(epoch) = epoch {
                    self.unlock_after_failure(&name, epoch).await;
                }
                self.mark_restart_failed(&name, &e.to_string()).await;
                false
            }
        }
    }

    /// Frees a failed restart's lock and clears RESTART_IN_PROGRESS from the VM row.
    async fn unlock_after_failure(&self, name: &str, epoch: u64) {
        if let Ok(Some((mut vm, version))) = self.hsdb.get::<VmRecord>(name).await {
            vm.vm_status = VmStatus::NoOperationInProgress;
            let _ = self.hsdb.put_if_version_fenced((name, epoch), &vm, version).await;
        }
        if let Err(e) = self.hsdb.unlock_vm(name, epoch).await {
            tracing::warn!(vm = %name, "lock not released after a failed restart: {e}");
        }
    }

    /// The restart under the VM's lock; `locked` receives the lock's epoch as soon as it is
    /// taken, so a failure after that releases it.
    async fn restart_locked(
        &self,
        vm: VmRecord,
        target: &str,
        cause: RestartCause,
        out: &Lines,
        locked: &mut Option<u64>,
    ) -> Result<()> {
        let holder = self.hsdb.node().node_id;
        let epoch = self.hsdb.lock_vm(&vm.name, VmStatus::RestartInProgress, holder, Acquire::WhenFree).await?;
        *locked = Some(epoch);
        let (mut vm, version) = self.show_lock(&vm.name, epoch).await?;
        let source = self.host(&vm.host).await?;
        let target_host = self.host(target).await?;
        let name = vm.name.clone();
        self.hsdb
            .append_event(&EventRecord::new(
                EventName::RestartStarted,
                &name,
                format!("from {} to {target}", source.name),
            ))
            .await?;
        out.step(format!("Stopping HA monitoring for VM {name}"));
        self.stop_ha_monitoring(&vm, &source.name).await?;
        out.step(format!("HA monitoring for VM {name} stopped"));
        out.step(format!("Shutdown has started for VM {name}"));
        let shutdown = Job::Shutdown(ShutdownLpar { host: source.name.clone(), lpar: name.clone(), immediate: true });
        match self.run_job(&source, shutdown).await {
            Ok(()) => out.step(format!("Shutdown has completed for VM {name}")),
            Err(e) if cause != RestartCause::Admin => {
                tracing::info!(vm = %name, "source shutdown not possible ({e}); the SAN fence protects the disk");
                out.step(format!("Shutdown has completed for VM {name}"));
            }
            Err(e) => {
                tracing::warn!(vm = %name, "source shutdown failed ({e}); the SAN fence protects the disk")
            }
        }
        self.preempt_disk(&target_host.san, &vm.disk, &target_host).await.map_err(|e| {
            VmrmError::unavailable(format!(
                "the SAN reservation of {} could not be preempted ({e}); not restarting",
                vm.disk
            ))
        })?;
        out.step(format!("Restart has started for VM {name}"));
        let definition = LparDefinition {
            name: name.clone(),
            uuid: vm.uuid.clone(),
            cpu: vm.cpu,
            memory_mb: vm.memory_mb,
            disk: vm.disk.clone(),
        };
        let activate = Job::Activate(ActivateLpar { host: target.to_string(), definition: Some(definition.into()) });
        self.run_job(&target_host, activate).await?;
        out.step(format!("Starting HA monitoring for VM {name}"));
        vm.host = target.to_string();
        vm.state = VmState::ReadyToMove;
        vm.vm_status = VmStatus::NoOperationInProgress;
        self.hsdb.put_if_version_fenced((&name, epoch), &vm, version).await?;
        self.hsdb.unlock_vm(&name, epoch).await?;
        out.step(format!("HA monitoring for VM {name} started"));
        out.step(format!("Restart on Target host {target} has completed for VM {name}"));
        self.hsdb
            .append_event(&EventRecord::new(EventName::RestartCompleted, &name, format!("running on {target}")))
            .await?;
        out.step(format!("Configuration cleanup started for VM {name}"));
        let cleanup = Job::Remove(RemoveLpar { host: source.name.clone(), lpar: name.clone() });
        if let Err(e) = self.run_job(&source, cleanup).await {
            tracing::info!(vm = %name, "source cleanup failed: {e}");
            out.step(format!("ERROR: Restart has encountered an error for VM {name} during Configuration Cleanup"));
        }
        // The source's monitors heard the shutdown (SHDN) meanwhile: their rows go too.
        self.stop_ha_monitoring(&vm, &source.name).await?;
        Ok(())
    }

    /// The source host's monitors stop reporting the VM: their missed-heartbeat rows go (they
    /// would otherwise show the VM as missing there for ever).
    async fn stop_ha_monitoring(&self, vm: &VmRecord, source: &str) -> Result<()> {
        let rows = self.hsdb.list::<VmHbMissedRecord>().await?;
        for row in rows.iter().filter(|r| r.vm_uuid == vm.uuid && r.host == source) {
            self.hsdb.delete::<VmHbMissedRecord>(&row.key()).await?;
        }
        Ok(())
    }

    /// `ksysmgr restart vm NAME [host=TARGET]`: checks everything first, then restarts.
    pub async fn admin_restart(&self, vm_name: &str, target: Option<&str>) -> Result<Vec<String>> {
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
        if let Some(t) = target {
            let t_host = self.host(t).await?;
            if t == vm.host {
                return Err(VmrmError::invalid(format!("VM {vm_name} already runs on host {t}; choose another host")));
            }
            if t_host.host_group.as_deref() != Some(group_name.as_str()) {
                return Err(VmrmError::precondition(format!(
                    "host {t} is not in host_group {group_name} of VM {vm_name}"
                )));
            }
            let capacity = self.capacities(&group, &[vm.host.as_str()]).await?;
            let demand = VmDemand { vm: vm.name.clone(), cpu: vm.cpu, memory_mb: vm.memory_mb, priority: vm.priority };
            let fits = capacity
                .iter()
                .filter(|c| c.host == t)
                .any(|c| c.free_cpu >= vm.cpu && c.free_memory_mb >= vm.memory_mb);
            if !fits {
                let free = capacity.iter().find(|c| c.host == t);
                return Err(VmrmError::precondition(match free {
                    Some(c) => format!(
                        "host {t} does not have enough free capacity for VM {vm_name}: it needs {} CPU / {} MB, {} CPU / {} MB are free",
                        demand.cpu, demand.memory_mb, c.free_cpu, c.free_memory_mb
                    ),
                    None => format!("host {t} is not reachable through its HMCs"),
                }));
            }
        }
        let out = Lines::default();
        out.push(format!("Restart in progress for VM {vm_name}"));
        let restarted = self.restart_vms(&group, vec![vm], target, RestartCause::Admin, &out).await?;
        let lines = out.take();
        match restarted {
            1 => Ok(lines),
            _ => Err(VmrmError::precondition(lines.join("\n"))),
        }
    }
}
