//! Recovery tasks: the mapper's plan is recorded in the HSDB (table `recovery_task`) before the
//! first VM moves, then run priority by priority — High, Medium, Low — with up to
//! [`MAX_PARALLEL_RESTARTS`] VMs of one priority at once, each through the fenced sequence of
//! [`super::restart_vm`]. The task is marked finished with the seed's summary "N out of M VMs
//! have been successfully restarted". With `restart_policy=advisory_mode` nothing moves: the
//! plan is reported as events, and the admin restarts by hand.
//!
//! A controller that becomes active runs every unfinished task again ([`super::resume`]); each
//! VM continues from what its own row says, so nothing is lost and nothing runs twice.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use futures::StreamExt;

/// How many VMs of one priority restart at once.
pub const MAX_PARALLEL_RESTARTS: usize = 4;

/// Whether a task runs for the first time, or is taken over by a controller that became active
/// at `active_since_ms` (locks taken before that, or by another controller, are orphans).
#[derive(Debug, Clone, Copy)]
pub enum Run {
    First,
    Resumed { active_since_ms: i64 },
}

impl Recovery {
    /// Plans the restart of `vms` (all of one host group) with the group's policies — on
    /// `target` only, if given — records the task and runs it; in advisory mode (except for an
    /// admin's own request) it only reports the plan.
    pub async fn recover(
        &self,
        group: &HostGroupRecord,
        vms: Vec<VmRecord>,
        target: Option<&str>,
        cause: RestartCause,
        subject: &str,
        out: &Lines,
    ) -> Result<RecoveryTaskRecord> {
        let sources: Vec<&str> = vms.iter().map(|v| v.host.as_str()).collect();
        let mut inputs = self.mapper_inputs(group, &sources).await?;
        if let Some(t) = target {
            inputs = inputs.only(t);
        }
        let plan = inputs.plan(&vms);
        let now = crate::now_ms();
        let vm = |name: &str| vms.iter().find(|v| v.name == name).expect("the mapper places only given VMs");
        let mut task = RecoveryTaskRecord {
            id: format!("{now}-{subject}"),
            host_group: group.name.clone(),
            cause,
            subject: subject.to_string(),
            created_ms: now,
            plan: plan
                .placed
                .iter()
                .map(|p| PlannedRestart {
                    vm: p.vm.clone(),
                    priority: vm(&p.vm).priority,
                    source: vm(&p.vm).host.clone(),
                    target: p.host.clone(),
                    cpu: p.cpu,
                    memory_mb: p.memory_mb,
                })
                .collect(),
            unplaced: plan.unplaced,
            finished: false,
            restarted: 0,
        };
        for (vm, why) in &task.unplaced {
            out.step(say::restart_error(vm, why));
            self.mark_unplaced(vm, why).await;
        }
        if plan.advisory && cause != RestartCause::Admin {
            self.advise(&task, out).await?;
            task.finished = true;
            return Ok(task);
        }
        self.hsdb.put_if_version(&task, 0).await?;
        self.run_task(task, Run::First, out).await
    }

    /// Advisory mode: every planned restart becomes an event that tells the admin what to do.
    async fn advise(&self, task: &RecoveryTaskRecord, out: &Lines) -> Result<()> {
        for p in &task.plan {
            let advice = say::restart_advised(&p.vm, &p.target);
            let message = advice.text.clone();
            out.step(advice);
            self.hsdb.append_event(&EventRecord::new(EventName::RestartAdvised, &p.vm, message)).await?;
        }
        out.push(say::advisory_summary(&task.host_group, task.total()));
        Ok(())
    }

    /// A VM the mapper could not place: RESTART_FAILED with the reason (unless another
    /// operation holds it — that one decides its state).
    async fn mark_unplaced(&self, vm: &str, why: &str) {
        if let Ok(Some((mut rec, version))) = self.hsdb.get::<VmRecord>(vm).await
            && rec.vm_status == VmStatus::NoOperationInProgress
        {
            rec.state = VmState::RestartFailed;
            let _ = self.hsdb.put_if_version(&rec, version).await;
        }
        let _ = self.hsdb.append_event(&EventRecord::new(EventName::RestartFailed, vm, why)).await;
    }

    /// Runs the task's plan, priority by priority, then marks it finished.
    pub async fn run_task(&self, mut task: RecoveryTaskRecord, run: Run, out: &Lines) -> Result<RecoveryTaskRecord> {
        let mut restarted = 0;
        for priority in [Priority::High, Priority::Medium, Priority::Low] {
            let wave: Vec<PlannedRestart> = task.plan.iter().filter(|p| p.priority == priority).cloned().collect();
            restarted += futures::stream::iter(wave)
                .map(|step| self.restart_planned(&task, step, run, out))
                .buffer_unordered(MAX_PARALLEL_RESTARTS)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await;
        }
        let (_, version) = self.hsdb.get::<RecoveryTaskRecord>(&task.id).await?.unwrap_or((task.clone(), 0));
        task.finished = true;
        task.restarted = restarted as u32;
        self.hsdb.put_if_version(&task, version).await?;
        let summary = say::restart_summary(task.restarted as usize, task.total());
        let message = summary.text.clone();
        // A move to another site sums up in its own words.
        if task.cause != RestartCause::SiteMove {
            out.push(summary);
        }
        self.hsdb.append_event(&EventRecord::new(EventName::RecoveryCompleted, &task.subject, message)).await?;
        let took_ms = crate::now_ms().saturating_sub(task.created_ms).max(0);
        crate::metrics::metrics().recovery_seconds.observe(took_ms as f64 / 1000.0);
        Ok(task)
    }
}
