//! Taking over after a controller failover: the controller that becomes active runs every
//! unfinished recovery task again, oldest first, before its FDEs start. Each VM continues from
//! its own row ([`super::restart_vm`]): finished ones are counted, half-done ones are taken over
//! (their locks move to a new epoch, which fences the old controller out), untouched ones start.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::Recovery;
use crate::controller::recovery::task::Run;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;

impl Recovery {
    /// Resumes every unfinished task; `active_since_ms` is when this controller became active.
    /// Returns how many tasks it resumed.
    pub async fn resume_recovery(&self, active_since_ms: i64) -> Result<usize> {
        // Tasks planned since are this controller's own, running now.
        let mut tasks: Vec<RecoveryTaskRecord> = self
            .hsdb
            .list::<RecoveryTaskRecord>()
            .await?
            .into_iter()
            .filter(|t| !t.finished && t.created_ms < active_since_ms)
            .collect();
        tasks.sort_by_key(|t| t.created_ms);
        let me = self.hsdb.node().node_id;
        for task in &tasks {
            let message = format!("recovery task {} ({}) resumed by controller {me}", task.id, task.cause);
            tracing::warn!("{message}");
            self.hsdb.append_event(&EventRecord::new(EventName::RecoveryResumed, &task.subject, message)).await?;
            let out = Lines::default();
            out.push(say::restart_resumed(&task.subject));
            self.run_task(task.clone(), Run::Resumed { active_since_ms }, &out).await?;
        }
        Ok(tasks.len())
    }
}
