//! One VM's restart (seed 000 §5.4 Scenario C), from wherever it stopped:
//!
//! ```text
//! lock (table `locked`, epoch+1; or take over an orphan) → stop HA monitoring → shut the
//! source LPAR down via an HMC (best effort) → FENCE: SAN reservation preempted to the target
//! with the lock's epoch as fencing token → restart on the target via an HMC job (unless it
//! already runs there) → start HA monitoring → record the new host, release the lock →
//! "Restart on Target host X has completed" → source cleanup (errors reported, not fatal)
//! ```
//! Every step is recorded on the VM row ([`RestartProgress`]) under the lock's epoch, through
//! the local member only: an operation that was taken over can no longer write there, and the
//! SAN refuses its older fencing token, so the controller that wakes up after a pause changes
//! nothing. The fence comes before the restart, always.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::Recovery;
use crate::controller::recovery::task::Run;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::{Acquire, VmLock};
use crate::hsdb::{HsdbAccess, Record};
use crate::pb;
use crate::pb::{ActivateLpar, RemoveLpar, ShutdownLpar, submit_job_request::Job};

/// Where a VM's restart starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Fresh,
    /// The task's own progress on the VM row.
    From(RestartPhase),
}

impl Recovery {
    /// One VM of `task`; true when it runs on its target.
    pub(in crate::controller) async fn restart_planned(
        &self,
        task: &RecoveryTaskRecord,
        step: PlannedRestart,
        run: Run,
        out: &Lines,
    ) -> bool {
        let start = match self.start_of(task, &step).await {
            Ok(Ok(start)) => start,
            Ok(Err(done)) => return done,
            Err(e) => {
                out.step(say::restart_error(&step.vm, &e));
                return false;
            }
        };
        let mut epoch = None;
        match self.restart_locked(task, &step, start, run, out, &mut epoch).await {
            Ok(()) => true,
            Err(e) => {
                out.step(say::restart_error(&step.vm, &e));
                if let Some(epoch) = epoch {
                    self.fail_locked(&task.id, &step, epoch, &e.to_string()).await;
                }
                false
            }
        }
    }

    /// Where to start, or (as `Err`) the outcome when there is nothing left to do.
    async fn start_of(&self, task: &RecoveryTaskRecord, step: &PlannedRestart) -> Result<Result<Start, bool>> {
        let (vm, _) = self.records.vm(&step.vm).await?;
        match &vm.restart {
            Some(p) if p.task == task.id && p.phase.is_final() => Ok(Err(p.phase == RestartPhase::Completed)),
            Some(p) if p.task == task.id => Ok(Ok(Start::From(p.phase))),
            _ if vm.host != step.source => {
                tracing::info!(vm = %vm.name, "moved to host {} meanwhile; task {} leaves it there", vm.host, task.id);
                Ok(Err(false))
            }
            _ => Ok(Ok(Start::Fresh)),
        }
    }

    /// How to take the lock: a resumed task takes over its own VMs' locks and orphans (held by
    /// another controller, or by this one before it became active); anything else waits.
    async fn acquire(&self, vm: &str, start: Start, run: Run) -> Result<Acquire> {
        let Run::Resumed { active_since_ms } = run else { return Ok(Acquire::WhenFree) };
        let me = self.hsdb.node().node_id;
        let how = match self.hsdb.get::<VmLock>(vm).await? {
            Some((lock, _)) if lock.is_held() => {
                let orphan = lock.holder != me || lock.since_ms < active_since_ms;
                match start == Start::Fresh && !orphan {
                    true => Acquire::WhenFree,
                    false => Acquire::TakeOver { epoch: lock.epoch },
                }
            }
            _ => Acquire::WhenFree,
        };
        Ok(how)
    }

    /// Writes the VM row under the lock at `epoch`; returns the new version.
    pub(in crate::controller) async fn put_fenced(&self, vm: &VmRecord, epoch: u64, version: u64) -> Result<u64> {
        self.hsdb.put_if_version_fenced((vm.name.as_str(), epoch), vm, version).await
    }

    async fn restart_locked(
        &self,
        task: &RecoveryTaskRecord,
        step: &PlannedRestart,
        start: Start,
        run: Run,
        out: &Lines,
        locked: &mut Option<u64>,
    ) -> Result<()> {
        let name = step.vm.clone();
        let how = self.acquire(&name, start, run).await?;
        let holder = self.hsdb.node().node_id;
        let epoch = self.hsdb.lock_vm(&name, VmStatus::RestartInProgress, holder, how).await?;
        *locked = Some(epoch);
        let (mut vm, version) = self.records.vm(&name).await?;
        let phase = match start {
            Start::Fresh => RestartPhase::Locked,
            Start::From(phase) => phase,
        };
        vm.vm_status = VmStatus::RestartInProgress;
        vm.epoch = epoch;
        vm.restart = Some(RestartProgress { task: task.id.clone(), target: step.target.clone(), phase });
        let mut version = self.put_fenced(&vm, epoch, version).await?;
        let source = self.records.host(&step.source).await?;
        let target = self.records.host(&step.target).await?;
        if start == Start::Fresh {
            let message = format!("from {} to {} ({})", source.name, target.name, task.cause);
            self.hsdb.append_event(&EventRecord::new(EventName::RestartStarted, &name, message)).await?;
        }
        // A move to another site shut its VMs down before the replication was handed over
        // (planned), or lost them with their site (unplanned): it speaks the seed's move lines.
        let site_move = (task.cause == RestartCause::SiteMove).then(|| target.site.clone().unwrap_or_default());
        if phase == RestartPhase::Locked {
            match &site_move {
                None => {
                    out.step(say::ha_monitoring_stopping(&name));
                    self.stop_ha_monitoring(&vm, &source.name).await?;
                    out.step(say::ha_monitoring_stopped(&name));
                    self.shut_source_down(&name, &source, epoch, out).await;
                }
                Some(_) => self.stop_ha_monitoring(&vm, &source.name).await?,
            }
        }
        self.san.preempt_disk(&target.san, &vm.disk, &target, epoch).await.map_err(|e| {
            VmrmError::unavailable(format!(
                "the SAN reservation of {} could not be preempted ({e}); not restarting",
                vm.disk
            ))
        })?;
        if phase == RestartPhase::Locked {
            vm.restart = Some(RestartProgress {
                task: task.id.clone(),
                target: step.target.clone(),
                phase: RestartPhase::Fenced,
            });
            version = self.put_fenced(&vm, epoch, version).await?;
        }
        if !self.runs_on(&target, &name).await {
            out.step(match &site_move {
                None => say::restart_started(&name),
                Some(site) => say::move_restart_started(site, &name),
            });
            let definition = vm.definition(step.cpu, step.memory_mb, epoch);
            let activate =
                Job::Activate(ActivateLpar { host: target.name.clone(), definition: Some(definition.into()) });
            self.hmc.run_job(&target, activate).await?;
        }
        if site_move.is_none() {
            out.step(say::ha_monitoring_starting(&name));
        }
        vm.host = target.name.clone();
        vm.state = VmState::ReadyToMove;
        vm.vm_status = VmStatus::NoOperationInProgress;
        // The phase stays `Fenced` until the source is cleaned: a controller that takes over
        // before then resumes from here (the VM already runs on the target) and finishes the
        // cleanup and the unlock, instead of counting the VM done under a lock nobody frees.
        let version = self.put_fenced(&vm, epoch, version).await?;
        let cleanup = match &site_move {
            None => {
                out.step(say::ha_monitoring_started(&name));
                out.step(say::restart_completed(&name, &target.name));
                say::configuration_cleanup_started(&name)
            }
            Some(site) => {
                out.step(say::move_restart_completed(site, &name));
                out.step(say::move_vm_completed(&name));
                say::move_cleanup_started(&task.host_group, &name)
            }
        };
        // The source's leftovers go while the lock is still held, under its epoch: a controller
        // that wakes up late can never remove what a successor has placed there since.
        let cleaned = self.clean_source(&vm, &source, epoch, (cleanup, out)).await;
        vm.restart = Some(RestartProgress {
            task: task.id.clone(),
            target: step.target.clone(),
            phase: RestartPhase::Completed,
        });
        self.put_fenced(&vm, epoch, version).await?;
        self.hsdb.unlock_vm(&name, epoch).await?;
        *locked = None;
        let running = format!("running on {}", target.name);
        self.hsdb.append_event(&EventRecord::new(EventName::RestartCompleted, &name, running)).await?;
        if source.name != target.name {
            let abnormal = task.cause != RestartCause::Admin;
            self.monjvs.vm_monjvs(&name, crate::controller::monjv::VmMonjvEvent::Restarted { abnormal }).await;
        }
        cleaned
    }

    /// Shuts the VM down on its source through an HMC. Best effort: after a host failure the
    /// source does not answer, and the SAN fence that comes next keeps the source's copy off the
    /// disk anyway (the cleanup removes its definition afterwards).
    async fn shut_source_down(&self, name: &str, source: &HostRecord, epoch: u64, out: &Lines) {
        out.step(say::shutdown_started(name));
        let (host, lpar) = (source.name.clone(), name.to_string());
        let shutdown = Job::Shutdown(ShutdownLpar { host, lpar, immediate: true, fence: epoch });
        match self.hmc.run_job(source, shutdown).await {
            Ok(()) => out.step(say::shutdown_completed(name)),
            Err(e) => {
                tracing::info!(vm = %name, "source shutdown failed: {e}");
                out.step(say::shutdown_failed(name, &source.name, e));
            }
        }
    }

    /// The VM already runs on `host` (a resumed task whose activation went through).
    pub(in crate::controller) async fn runs_on(&self, host: &HostRecord, vm: &str) -> bool {
        let Ok(inv) = self.hmc.host_inventory(host).await else { return false };
        inv.lpars
            .iter()
            .any(|l| l.state() == pb::LparState::Running && l.definition.as_ref().is_some_and(|d| d.name == vm))
    }

    /// Removes the definition left on the source, under the restart's `epoch`; errors are
    /// reported, not fatal.
    async fn clean_source(
        &self,
        vm: &VmRecord,
        source: &HostRecord,
        epoch: u64,
        (heading, out): (pb::Step, &Lines),
    ) -> Result<()> {
        out.step(heading);
        let cleanup = Job::Remove(RemoveLpar { host: source.name.clone(), lpar: vm.name.clone(), fence: epoch });
        if let Err(e) = self.hmc.run_job(source, cleanup).await {
            tracing::info!(vm = %vm.name, "source cleanup failed: {e}");
            out.step(say::configuration_cleanup_error(&vm.name, e));
        }
        // The source's monitors heard the shutdown (SHDN) meanwhile: their rows go too.
        self.stop_ha_monitoring(vm, &source.name).await
    }

    /// A failed restart under the lock at `epoch`: RESTART_FAILED on the row, lock released.
    async fn fail_locked(&self, task: &str, step: &PlannedRestart, epoch: u64, why: &str) {
        if let Ok(Some((mut vm, version))) = self.hsdb.get::<VmRecord>(&step.vm).await {
            vm.state = VmState::RestartFailed;
            vm.vm_status = VmStatus::NoOperationInProgress;
            vm.restart = Some(RestartProgress {
                task: task.to_string(),
                target: step.target.clone(),
                phase: RestartPhase::Failed,
            });
            if self.put_fenced(&vm, epoch, version).await.is_err() {
                return; // taken over: the new holder decides
            }
        }
        if let Err(e) = self.hsdb.unlock_vm(&step.vm, epoch).await {
            tracing::warn!(vm = %step.vm, "lock not released after a failed restart: {e}");
        }
        let _ = self.hsdb.append_event(&EventRecord::new(EventName::RestartFailed, &step.vm, why)).await;
    }

    /// The source host's monitors stop reporting the VM: their missed-heartbeat rows go (they
    /// would otherwise show the VM as missing there for ever).
    pub(in crate::controller) async fn stop_ha_monitoring(&self, vm: &VmRecord, source: &str) -> Result<()> {
        let rows = self.hsdb.list::<VmHbMissedRecord>().await?;
        for row in rows.iter().filter(|r| r.vm_uuid == vm.uuid && r.host == source) {
            self.hsdb.delete::<VmHbMissedRecord>(&row.key()).await?;
        }
        Ok(())
    }
}
