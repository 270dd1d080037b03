//! A live migration whose controller went away (killed, or paused and replaced): the migration
//! itself goes on between the two server units under its HMC job, but its VM stays locked
//! `LPM_IN_PROGRESS` with nobody to finish it. The controller that becomes active takes every
//! such orphan over — a new epoch on the VM's lock fences the old controller out — follows the
//! HMC job to its end if it is known, and finishes the operation as the first controller would
//! have: the VM's record says the host the hypervisors show it running on, the lock is free.
use crate::controller::migration::Migration;
use crate::controller::migration::lpm::LpmOut;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::hsdb::locks::{Acquire, VmLock};

impl Migration {
    /// Takes over the migrations left by another controller (or by this one before it became
    /// active at `active_since_ms`); each is finished in the background.
    pub async fn resume_migrations(&self, active_since_ms: i64) -> Result<usize> {
        let me = self.hsdb.node().node_id;
        let orphans: Vec<VmLock> = self
            .hsdb
            .list::<VmLock>()
            .await?
            .into_iter()
            .filter(|l| l.operation == VmStatus::LpmInProgress && (l.holder != me || l.since_ms < active_since_ms))
            .collect();
        for lock in &orphans {
            let epoch = self
                .hsdb
                .lock_vm(&lock.vm, VmStatus::LpmInProgress, me, Acquire::TakeOver { epoch: lock.epoch })
                .await?;
            let message = format!("live migration of VM {} taken over by controller {me}", lock.vm);
            tracing::warn!("{message}");
            self.hsdb.append_event(&EventRecord::new(EventName::RecoveryResumed, &lock.vm, message)).await?;
            let (core, name) = (self.clone(), lock.vm.clone());
            tokio::spawn(async move {
                if let Err(e) = core.finish_orphan_lpm(&name, epoch).await {
                    tracing::warn!(vm = %name, "a migration taken over could not be finished: {e}");
                }
            });
        }
        Ok(orphans.len())
    }

    async fn finish_orphan_lpm(&self, name: &str, epoch: u64) -> Result<()> {
        let (vm, _) = self.records.vm(name).await?;
        let source = self.records.host(&vm.host).await?;
        let out = LpmOut::default();
        let (target, outcome) = match &vm.lpm {
            Some(job) => {
                let hmc = self.hsdb.get::<HmcRecord>(&job.hmc).await?.map(|(h, _)| h);
                let outcome = match hmc {
                    Some(hmc) => self.follow_lpm(&hmc, job.job_id, name, &out).await,
                    None => Err(crate::VmrmError::not_found(format!("HMC {} is gone", job.hmc))),
                };
                (self.records.host(&job.target).await?, outcome)
            }
            // Locked, but the job was never recorded: whichever host runs it now is where it is.
            None => {
                let group = source.host_group.clone().unwrap_or_default();
                let (group, _) = self.records.host_group(&group).await?;
                let mut runs_on = source.clone();
                for h in &group.hosts {
                    let host = self.records.host(h).await?;
                    if host.name != source.name && self.recovery.runs_on(&host, name).await {
                        runs_on = host;
                    }
                }
                (runs_on, Err(crate::VmrmError::unavailable("no migration job was recorded")))
            }
        };
        let finished = self.finish_lpm(name, &source, &target, epoch, outcome, &out).await;
        tracing::info!(vm = %name, "migration taken over and finished: {finished:?}");
        Ok(())
    }
}
