//! `ksysmgr lpm vm NAME [to=HOST]` and the gRPC `Migrate` call: live partition mobility of one
//! VM (seed 000's LPM; seed 001's live migration), with its progress streamed.
//!
//! ```text
//! checks (managed, no operation in progress; target known, not its own host) → target named
//! or chosen by the mapper at full size → pre-check, every conflict at once (VMS2404 … VMS2461:
//! rejected, nothing changes) → lock (LPM_IN_PROGRESS, epoch+1) → HMC migration job on the
//! source host (the epoch is the SAN fencing token) → progress and console lines as the job
//! reports them → the VM's host is where it runs now → lock released
//! ```
//! The migration itself runs between the two server units (their `MigrationLane`); an abort at
//! any phase leaves the VM running on its source. Whatever the job says, the VM's record ends
//! with the host the hypervisors show it running on.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::migration::Migration;
use crate::controller::monjv::VmMonjvEvent;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::hsdb::locks::Acquire;
use crate::pb::{self, MigrateLpar, submit_job_request::Job};
use tokio::sync::mpsc::UnboundedSender;
use tonic::Status;

/// Where an operation's lines and progress go: collected for a one-shot reply, and streamed
/// to a `Migrate` caller when there is one (a caller that went away stops nothing).
#[derive(Clone, Default)]
pub struct LpmOut {
    pub lines: Lines,
    stream: Option<UnboundedSender<std::result::Result<pb::MigrateReply, Status>>>,
}

impl LpmOut {
    pub fn streaming(stream: UnboundedSender<std::result::Result<pb::MigrateReply, Status>>) -> Self {
        Self { lines: Lines::default(), stream: Some(stream) }
    }

    fn send(&self, reply: pb::MigrateReply) {
        if let Some(stream) = &self.stream {
            let _ = stream.send(Ok(reply));
        }
    }

    pub fn line(&self, vm: &str, step: pb::Step) {
        self.lines.push(step.clone());
        self.send(pb::MigrateReply { steps: vec![step], vm: vm.into(), progress: None });
    }

    /// A step under the operation's heading.
    pub fn step(&self, vm: &str, step: pb::Step) {
        self.line(vm, pb::Step { nested: true, ..step });
    }

    /// A job's progress, with the VM2000 messages its console brought (as steps).
    fn progress(&self, vm: &str, progress: pb::MigrationProgress, console: Vec<String>) {
        let steps: Vec<pb::Step> = console.iter().map(|c| pb::Step { nested: true, ..say::vm2000(vm, c) }).collect();
        for step in &steps {
            self.lines.push(step.clone());
        }
        self.send(pb::MigrateReply { steps, vm: vm.into(), progress: Some(progress) });
    }
}

/// One VM's migration as asked.
#[derive(Debug, Clone, Default)]
pub struct LpmOrder {
    pub vm: String,
    /// `None`: the controller picks the host.
    pub target: Option<String>,
    pub limits: pb::MigrationLimits,
    /// Migrations of one evacuation share it.
    pub operation: String,
    /// The migration's MONJV (empty: none) and its password.
    pub monjv: String,
    pub monjv_password: String,
}

impl Migration {
    /// The host `vm` goes to: the one named (known, not its own), or the mapper's choice.
    pub(in crate::controller) async fn lpm_target(
        &self,
        vm: &VmRecord,
        group: &HostGroupRecord,
        to: Option<&str>,
    ) -> Result<HostRecord> {
        if let Some(to) = to {
            let target = self.records.host(to).await?;
            if target.name == vm.host {
                return Err(VmrmError::invalid(format!(
                    "VM {} already runs on host {to}; choose another host",
                    vm.name
                )));
            }
            return Ok(target);
        }
        let (_, choice) = self
            .lpm_targets(std::slice::from_ref(vm), group, &vm.host)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| VmrmError::internal("the mapper answered nothing"))?;
        self.records.host(&choice?).await
    }

    /// `lpm vm NAME action=validate`: the pre-check only (`/CHECK-VM-MIGRATION`); no side effect.
    pub async fn validate_lpm(&self, name: &str, to: Option<&str>) -> Result<Vec<String>> {
        let (vm, group) = self.records.restartable(name).await?;
        let source = self.records.host(&vm.host).await?;
        let target = self.lpm_target(&vm, &group, to).await?;
        let claimed_by = self.outbound.holder(&source.name, "");
        let checked = self.lpm_precheck(&vm, &source, &target, &group, "", claimed_by).await?;
        match checked.conflicts.is_empty() {
            true => Ok(checked.verdict(&target.name)),
            false => Err(VmrmError::precondition(checked.verdict(&target.name).join("\n"))),
        }
    }

    /// Migrates one VM; Ok once it runs on its target. The migration's MONJV, if one is
    /// named, says `$S` at once, then `$AF` (rejected), `$R`, and `$T`, `$TW` or `$AE`.
    pub async fn migrate_one(&self, order: &LpmOrder, out: &LpmOut) -> Result<()> {
        let (vm, _) = self.records.vm(&order.vm).await?;
        self.monjvs.migration_monjv(&order.monjv, &order.monjv_password, &vm, "$S").await?;
        let mut started = false;
        let outcome = self.migrate_checked(order, out, &mut started).await;
        let status = match (&outcome, started) {
            (Ok(false), _) => "$T",
            (Ok(true), _) => "$TW",
            (Err(_), false) => "$AF",
            (Err(_), true) => "$AE",
        };
        if let Err(e) = self.monjvs.migration_monjv(&order.monjv, &order.monjv_password, &vm, status).await {
            tracing::warn!(vm = %vm.name, "MONJV {} not updated to {status}: {e}", order.monjv);
        }
        outcome.map(|_| ())
    }

    /// The checks, the lock and the job; Ok(forced) once the VM runs on its target (forced:
    /// with a pause longer than the maximum downtime). `started` once the lock is taken.
    async fn migrate_checked(&self, order: &LpmOrder, out: &LpmOut, started: &mut bool) -> Result<bool> {
        let (vm, group) = self.records.restartable(&order.vm).await?;
        let source = self.records.host(&vm.host).await?;
        let target = self.lpm_target(&vm, &group, order.target.as_deref()).await?;
        let claim = self.outbound.claim(&source.name, &order.operation, &vm.name);
        let claimed_by = claim.as_ref().err().cloned();
        let checked = self.lpm_precheck(&vm, &source, &target, &group, &order.operation, claimed_by).await?;
        if !checked.conflicts.is_empty() {
            return Err(VmrmError::precondition(checked.verdict(&target.name).join("\n")));
        }
        // Claimed: a refused claim is one of the conflicts. Held until the migration ended.
        let _claim = claim.ok();
        let holder = self.hsdb.node().node_id;
        let epoch = self.hsdb.lock_vm(&vm.name, VmStatus::LpmInProgress, holder, Acquire::WhenFree).await?;
        *started = true;
        out.step(&vm.name, say::lpm_started(&vm.name));
        self.monjvs.migration_monjv(&order.monjv, &order.monjv_password, &vm, "$R").await.ok();
        self.monjvs.vm_monjvs(&vm.name, VmMonjvEvent::MigrationStarted).await;
        let outcome = self.run_lpm(&vm.name, &source, &target, epoch, order, out).await;
        let forced = outcome.as_ref().is_ok_and(|p| p.forced);
        self.finish_lpm(&vm.name, &source, &target, epoch, outcome, out).await.map(|()| forced)
    }

    /// Under the lock: the record says LPM_IN_PROGRESS, the HMC job runs and is followed.
    async fn run_lpm(
        &self,
        name: &str,
        source: &HostRecord,
        target: &HostRecord,
        epoch: u64,
        order: &LpmOrder,
        out: &LpmOut,
    ) -> Result<pb::MigrationProgress> {
        let (mut vm, version) = self.records.vm(name).await?;
        vm.vm_status = VmStatus::LpmInProgress;
        vm.epoch = epoch;
        let version = self.recovery.put_fenced(&vm, epoch, version).await?;
        let message = format!("from {} to {}", source.name, target.name);
        self.hsdb.append_event(&EventRecord::new(EventName::LpmStarted, name, message)).await?;
        let job = Job::Migrate(MigrateLpar {
            host: source.name.clone(),
            lpar: name.to_string(),
            target_host: target.name.clone(),
            limits: Some(order.limits),
            fence: epoch,
            operation: order.operation.clone(),
        });
        let (hmc, job_id) = self.hmc.submit_job(source, job).await?;
        vm.lpm = Some(LpmJob { target: target.name.clone(), hmc: hmc.name.clone(), job_id });
        self.recovery.put_fenced(&vm, epoch, version).await?;
        self.follow_lpm(&hmc, job_id, name, out).await
    }

    /// Polls the migration job until it ends, passing its console lines and progress on.
    pub(in crate::controller) async fn follow_lpm(
        &self,
        hmc: &HmcRecord,
        job_id: u64,
        vm: &str,
        out: &LpmOut,
    ) -> Result<pb::MigrationProgress> {
        let (mut shown, mut last_ok) = (0, tokio::time::Instant::now());
        loop {
            tokio::time::sleep(self.timing.job_poll).await;
            let status = match self.hmc.job_status(hmc, job_id).await {
                Ok(s) => s,
                Err(e) if last_ok.elapsed() < self.timing.rpc_deadline * 4 => {
                    tracing::debug!(vm, "HMC {} job {job_id}: {e}", hmc.name);
                    continue;
                }
                Err(e) => {
                    return Err(VmrmError::unavailable(format!(
                        "HMC {} no longer answers for the migration: {e}",
                        hmc.name
                    )));
                }
            };
            last_ok = tokio::time::Instant::now();
            let progress = status.migration.clone().unwrap_or_default();
            let fresh: Vec<String> = status.console.iter().skip(shown).cloned().collect();
            shown = status.console.len();
            out.progress(vm, progress.clone(), fresh);
            if !matches!(status.state(), pb::JobState::Running | pb::JobState::NotStarted) {
                return match progress.phase() {
                    pb::MigrationPhase::Completed => Ok(progress),
                    _ if !progress.error.is_empty() => Err(VmrmError::precondition(progress.error)),
                    _ => Err(VmrmError::precondition(status.message)),
                };
            }
        }
    }

    /// Ends the operation: the record follows where the VM runs, the lock goes, the events.
    pub(in crate::controller) async fn finish_lpm(
        &self,
        name: &str,
        source: &HostRecord,
        target: &HostRecord,
        epoch: u64,
        outcome: Result<pb::MigrationProgress>,
        out: &LpmOut,
    ) -> Result<()> {
        let moved = outcome.is_ok() || self.recovery.runs_on(target, name).await;
        let (mut vm, version) = self.records.vm(name).await?;
        if moved {
            vm.host = target.name.clone();
            vm.vm_restart_count = 0;
        }
        vm.vm_status = VmStatus::NoOperationInProgress;
        vm.lpm = None;
        self.recovery.put_fenced(&vm, epoch, version).await?;
        self.hsdb.unlock_vm(name, epoch).await?;
        let event = if moved { VmMonjvEvent::Migrated } else { VmMonjvEvent::MigrationAborted };
        self.monjvs.vm_monjvs(name, event).await;
        if !moved {
            let why = outcome.err().map_or_else(String::new, |e| e.to_string());
            let message = format!("to {} aborted, the VM stays on {}: {why}", target.name, source.name);
            self.hsdb.append_event(&EventRecord::new(EventName::LpmAborted, name, message)).await?;
            return Err(VmrmError::precondition(format!(
                "LPM has failed for {name}: {why}; the VM was not moved from host {}",
                source.name
            )));
        }
        self.forget_on_source(&vm, &source.name).await?;
        let pause_us = outcome.as_ref().map_or(0, |p| p.downtime_us);
        crate::metrics::metrics().lpm_pause_seconds.observe(pause_us as f64 / 1e6);
        let pause = pause_us / 1000;
        for (event, host, what) in [
            (EventName::VmPaused, &source.name, "paused"),
            (EventName::VmCreated, &target.name, "created"),
            (EventName::VmDeleted, &source.name, "deleted"),
        ] {
            let message = format!("VM '{name}' on Server Unit '{host}' {what}");
            self.hsdb.append_event(&EventRecord::new(event, name, message)).await?;
        }
        let message = format!("running on {}, paused {pause} ms", target.name);
        self.hsdb.append_event(&EventRecord::new(EventName::LpmCompleted, name, message)).await?;
        out.step(name, say::lpm_completed(name, &target.name));
        Ok(())
    }

    /// The source's host monitors stop reporting the VM: their rows go now, and once more
    /// after they heard its copy there stop (its SHDN may land after the first delete).
    async fn forget_on_source(&self, vm: &VmRecord, source: &str) -> Result<()> {
        self.recovery.stop_ha_monitoring(vm, source).await?;
        let (recovery, vm, source) = (self.recovery.clone(), vm.clone(), source.to_string());
        let later = self.timing.vm_missing_after * 2;
        tokio::spawn(async move {
            tokio::time::sleep(later).await;
            if let Err(e) = recovery.stop_ha_monitoring(&vm, &source).await {
                tracing::debug!(vm = %vm.name, "rows of the source's monitors not removed: {e}");
            }
        });
        Ok(())
    }

    /// `lpm vm NAME action=cancel`: the running migration rolls back; the VM stays on its source.
    pub async fn cancel_lpm(&self, name: &str) -> Result<Vec<pb::Step>> {
        let (vm, _) = self.records.vm(name).await?;
        let Some(job) = vm.lpm.clone() else {
            return Err(VmrmError::precondition(format!("VM {name} has no live migration running")));
        };
        let (hmc, _) =
            self.hsdb.get::<HmcRecord>(&job.hmc).await?.ok_or_else(|| {
                VmrmError::not_found(format!("HMC {} of the migration is no longer configured", job.hmc))
            })?;
        self.hmc.cancel_job(&hmc, job.job_id).await?;
        Ok(vec![say::lpm_cancel_requested(name, &job.target, &vm.host)])
    }
}
