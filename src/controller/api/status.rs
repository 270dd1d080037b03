//! The live status (seed: `ksysmgr query system status [monitor=yes]`): each host group's state
//! and every recovery and migration in progress, from the HSDB — then, when monitoring, the
//! operations' lines as they happen, until the watcher hangs up or this controller stops being
//! the active one (the watcher then asks the new one, and gets its status first).
use crate::controller::ControllerCore;
use crate::controller::activity;
use crate::controller::messages as say;
use crate::domain::{HostGroupRecord, RecoveryTaskRecord, VmRecord, VmStatus};
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::pb::Step;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tonic::Status;

/// How often a monitoring stream checks that this controller is still the active one.
const STILL_ACTIVE_EVERY: Duration = Duration::from_secs(1);

/// The status lines: per host group (by name) its state, then its recovery in progress with the
/// VMs still restarting; then every live migration in progress.
pub fn status(groups: &[HostGroupRecord], tasks: &[RecoveryTaskRecord], vms: &[VmRecord]) -> Vec<Step> {
    let mut lines = Vec::new();
    let nested = |mut step: Step| {
        step.nested = true;
        step
    };
    for group in groups {
        if !group.discovered {
            lines.push(say::host_group_not_discovered(&group.name));
            continue;
        }
        lines.push(say::host_group_ready(&group.name));
        for task in tasks.iter().filter(|t| t.host_group == group.name && !t.finished) {
            lines.push(say::host_group_restart_in_progress(&group.name));
            let restarting = |vm: &&VmRecord| {
                vm.vm_status == VmStatus::RestartInProgress && task.plan.iter().any(|p| p.vm == vm.name)
            };
            lines.extend(vms.iter().filter(restarting).map(|vm| nested(say::vm_restart_in_progress(&vm.name))));
        }
    }
    let migrating = vms.iter().filter(|vm| vm.vm_status == VmStatus::LpmInProgress);
    lines.extend(migrating.map(|vm| say::lpm_in_progress(&vm.name, &vm.host)));
    lines
}

/// Streams the status, then (with `monitor`) the live lines, into `tx`.
pub async fn watch(
    core: ControllerCore,
    monitor: bool,
    permit: OwnedSemaphorePermit,
) -> Result<mpsc::Receiver<std::result::Result<Step, Status>>> {
    // Subscribed before the status is read, so no line between the two is lost.
    let feed = monitor.then(activity::watch);
    let (groups, tasks, vms) = (
        core.hsdb.list::<HostGroupRecord>().await?,
        core.hsdb.list::<RecoveryTaskRecord>().await?,
        core.hsdb.list::<VmRecord>().await?,
    );
    let lines = status(&groups, &tasks, &vms);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _permit = permit;
        for line in lines {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let Some(mut feed) = feed else { return };
        if tx.send(Ok(say::monitoring_activity())).await.is_err() {
            return;
        }
        let mut check = tokio::time::interval(STILL_ACTIVE_EVERY);
        loop {
            let line = tokio::select! {
                line = feed.recv() => match line {
                    Ok(step) => Ok(step),
                    Err(broadcast::error::RecvError::Lagged(n)) => Ok(say::lines_missed(n)),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = check.tick() => match core.ensure_active() {
                    Ok(()) => continue,
                    Err(e) => Err(Status::from(e)),
                },
                _ = tx.closed() => return,
            };
            let ended = line.is_err();
            if tx.send(line).await.is_err() || ended {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PlannedRestart, Priority, RestartCause};

    fn group(name: &str, discovered: bool) -> HostGroupRecord {
        serde_json::from_value(serde_json::json!({
            "name": name, "hosts": ["host-1", "host-2"], "discovered": discovered
        }))
        .unwrap()
    }

    fn vm(name: &str, vm_status: VmStatus) -> VmRecord {
        VmRecord { vm_status, ..VmRecord::at_rest(name, "host-1") }
    }

    fn task(group: &str, vms: &[&str], finished: bool) -> RecoveryTaskRecord {
        let plan = vms.iter().map(|v| PlannedRestart {
            vm: v.to_string(),
            priority: Priority::Medium,
            source: "host-1".into(),
            target: "host-2".into(),
            cpu: 1,
            memory_mb: 1024,
        });
        RecoveryTaskRecord {
            id: "t1".into(),
            host_group: group.into(),
            cause: RestartCause::HostFailure,
            subject: "host-1".into(),
            created_ms: 0,
            plan: plan.collect(),
            unplaced: vec![],
            finished,
            restarted: 0,
        }
    }

    fn printed(lines: &[Step]) -> Vec<String> {
        lines.iter().map(Step::printed).collect()
    }

    #[test]
    fn ready_groups_then_what_is_in_progress() {
        let vms = [
            vm("vm-1", VmStatus::RestartInProgress),
            vm("vm-2", VmStatus::NoOperationInProgress),
            vm("vm-3", VmStatus::LpmInProgress),
        ];
        let groups = [group("HG1", true), group("HG2", false)];
        let lines = status(&groups, &[task("HG1", &["vm-1", "vm-2"], false), task("HG2", &["x"], true)], &vms);
        assert_eq!(
            printed(&lines),
            [
                "Host_group HG1 is currently in Ready state",
                "Restart in progress for Host_group HG1",
                "        Restart in progress for VM vm-1",
                "Host_group HG2 is not discovered yet: run `ksysmgr discover host_group HG2`",
                "LPM in progress for VM vm-3 from host host-1",
            ]
        );
        let quiet = status(&groups[..1], &[task("HG1", &["vm-1"], true)], &[]);
        assert_eq!(printed(&quiet), ["Host_group HG1 is currently in Ready state"]);
    }
}
