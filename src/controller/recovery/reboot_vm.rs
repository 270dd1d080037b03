//! A VM restarted on the host it runs on (seed: the first answer to a critical application in
//! FAILURE, "restart the VM on the same host"): lock → shut down cleanly through an HMC →
//! activate the same definition again → release. The disk stays with the same host, so there is
//! nothing to fence; the lock keeps the FDE and every other operation off the VM meanwhile.
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::hsdb::locks::Acquire;
use crate::pb::{ActivateLpar, ShutdownLpar, submit_job_request::Job};

impl Recovery {
    pub(in crate::controller) async fn restart_in_place(&self, name: &str, why: &str) -> Result<()> {
        let holder = self.hsdb.node().node_id;
        let epoch = self.hsdb.lock_vm(name, VmStatus::RestartInProgress, holder, Acquire::WhenFree).await?;
        let outcome = self.reboot_locked(name, epoch, why).await;
        if let Err(e) = &outcome {
            let _ = self.hsdb.append_event(&EventRecord::new(EventName::RestartFailed, name, e.to_string())).await;
        }
        if let Err(e) = self.hsdb.unlock_vm(name, epoch).await {
            tracing::warn!(vm = %name, "lock not released after a restart on the same host: {e}");
        }
        outcome
    }

    async fn reboot_locked(&self, name: &str, epoch: u64, why: &str) -> Result<()> {
        let (mut vm, version) = self.records.vm(name).await?;
        vm.vm_status = VmStatus::RestartInProgress;
        vm.epoch = epoch;
        let version = self.put_fenced(&vm, epoch, version).await?;
        let host = self.records.host(&vm.host).await?;
        let message = format!("on the same host {} ({why})", host.name);
        self.hsdb.append_event(&EventRecord::new(EventName::RestartStarted, name, message)).await?;
        tracing::warn!(vm = %name, "restarting VM {name} on the same host {}: {why}", host.name);
        let (lpar, fence) = (name.to_string(), epoch);
        let shutdown = ShutdownLpar { host: host.name.clone(), lpar, immediate: false, fence };
        self.hmc.run_job(&host, Job::Shutdown(shutdown)).await?;
        let definition = vm.definition(vm.cpu, vm.memory_mb, epoch);
        let activate = ActivateLpar { host: host.name.clone(), definition: Some(definition.into()) };
        self.hmc.run_job(&host, Job::Activate(activate)).await?;
        vm.vm_status = VmStatus::NoOperationInProgress;
        self.put_fenced(&vm, epoch, version).await?;
        let message = format!("restarted on the same host {}", host.name);
        self.hsdb.append_event(&EventRecord::new(EventName::RestartCompleted, name, message)).await
    }
}
