//! `ksysmgr move host_group HG to=SITE [dr_type=planned|unplanned]` (seed 000 §2.4, §6.5): an
//! administrator's decision, confirmed, never automatic.
//!
//! ```text
//! planned:   shut every VM down cleanly (under its lock) → the source's SAN has shipped all it
//!            accepted → the source becomes secondary (generation+1) and drains → the target's
//!            SAN holds exactly as much → it becomes primary → the host group's hosts become
//!            their pairs → each VM restarts on its host's pair (a recovery task: fenced, under
//!            a new lock epoch, resumed by another controller if this one fails) → the source's
//!            definitions are removed → rediscovery at the target
//! unplanned: the target's SAN starts from its consistent point (reported, with the writes the
//!            lost site said it had), accepting writes only once the old primary's lease has
//!            lapsed; the old SAN is told it is secondary now, or learns it from its peer or
//!            the HSDB when it returns, and takes a full copy — its hosts can never write again
//! ```
//! Before the replication is handed over, a failure starts the VMs again where they were; after
//! it, the move is left marked under way, and the same move run again finishes it.
use super::Dr;
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::task::Run;
use crate::domain::names::{HostGroupName, SiteName};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::hsdb::client::retry_on_conflict;
use crate::hsdb::locks::Acquire;
use crate::pb::{self, ActivateLpar, ShutdownLpar, submit_job_request::Job};
use std::collections::BTreeMap;

/// How far a move got: before the replication was handed over, everything can go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Start,
    Reversed,
}

impl Dr {
    pub async fn move_host_group(
        &self,
        group: &HostGroupName,
        to: &SiteName,
        unplanned: bool,
        confirm: bool,
    ) -> Result<Vec<pb::Step>> {
        let (name, to) = (group.as_str(), to.as_str());
        if !confirm {
            return Err(VmrmError::invalid(
                "a move across sites is an administrator's decision: confirm it (ksysmgr asks, or takes -y; over gRPC confirm=true)",
            ));
        }
        let (group, sides) = self.replicated(name, to, "a move").await?;
        let resumed = match sides.record.moving.as_deref() {
            Some(target) if target == to && !self.moving.lock().expect("moves").contains(name) => true,
            Some(target) => {
                return Err(VmrmError::precondition(format!("a move of host_group {name} to {target} is under way")));
            }
            None if group.site.as_deref() == Some(to) => {
                return Err(VmrmError::precondition(format!("host_group {name} runs at site {to} already")));
            }
            None => false,
        };
        if let Some(test) = &sides.record.dr_test {
            return Err(VmrmError::precondition(format!(
                "a DR test of host_group {name} runs at {}: end it first (`ksysmgr cleanup host_group {name} dr_test=yes`)",
                test.site
            )));
        }
        if !resumed {
            self.check_quiet(&group).await?;
        }
        if !self.moving.lock().expect("moves").insert(name.to_string()) {
            return Err(VmrmError::precondition(format!("a move of host_group {name} is under way")));
        }
        let out = Lines::default();
        let outcome = self.moved(group, to, unplanned, resumed, &out).await;
        self.moving.lock().expect("moves").remove(name);
        match outcome {
            Ok(()) => Ok(out.take()),
            Err((reached, e)) => {
                out.push(say::move_failed(name, &e));
                if reached == Reached::Start {
                    self.set_moving(name, None).await?;
                }
                let lines = crate::pb::steps::printed(&out.take()).join("\n");
                Err(VmrmError::precondition(lines))
            }
        }
    }

    /// No VM of the group is locked by another operation, and no recovery of it is unfinished.
    async fn check_quiet(&self, group: &HostGroupRecord) -> Result<()> {
        if let Some(busy) = self.group_vms(group).await?.iter().find(|v| v.vm_status != VmStatus::NoOperationInProgress)
        {
            return Err(VmrmError::precondition(format!(
                "VM {} of host_group {} is in an operation ({:?}); move it when it is done",
                busy.name, group.name, busy.vm_status
            )));
        }
        let tasks = self.hsdb.list::<RecoveryTaskRecord>().await?;
        if let Some(task) = tasks.iter().find(|t| !t.finished && t.host_group == group.name) {
            return Err(VmrmError::precondition(format!(
                "recovery task {} of host_group {} is unfinished",
                task.id, group.name
            )));
        }
        Ok(())
    }

    async fn set_moving(&self, group: &str, to: Option<&str>) -> Result<()> {
        self.change_record(group, |r| r.moving = to.map(str::to_string)).await
    }

    async fn moved(
        &self,
        group: HostGroupRecord,
        to: &str,
        unplanned: bool,
        resumed: bool,
        out: &Lines,
    ) -> std::result::Result<(), (Reached, VmrmError)> {
        let name = group.name.clone();
        let at_start = |e| (Reached::Start, e);
        let after = |e| (Reached::Reversed, e);
        self.set_moving(&name, Some(to)).await.map_err(at_start)?;
        out.push(say::move_started(&name, to));
        let vms = self.group_vms(&group).await.map_err(at_start)?;
        // A move run again after its hosts were swapped: its recovery task is resumed by the
        // active controller like any other; what is left is the rediscovery.
        let (moved, total) = match group.site.as_deref() == Some(to) {
            true => (vms.len(), vms.len()),
            false => {
                let pairs: BTreeMap<String, String> =
                    self.pairs(&group).await.map_err(at_start)?.into_iter().map(|(h, p)| (h.name, p)).collect();
                let sides = self.sides(&name).await.map_err(at_start)?;
                if sides.is_none_or(|s| s.record.primary_site != to) {
                    if !unplanned && !resumed {
                        self.shut_down(&group, &vms, out).await.map_err(at_start)?;
                    }
                    let reversed = match unplanned {
                        false => self.hand_over(&name, out).await,
                        true => self.take_over(&name, out).await,
                    };
                    if let Err(e) = reversed {
                        if !unplanned {
                            self.start_again(&vms, out).await;
                        }
                        return Err(at_start(e));
                    }
                }
                self.swap_hosts(&name, to, &pairs).await.map_err(after)?;
                self.restart_at(&group, to, &vms, &pairs, out).await.map_err(after)?
            }
        };
        for vm in &vms {
            out.step(say::move_rediscovering(&vm.name, to));
        }
        self.config.discover(&name, false).await.map_err(after)?;
        for vm in &vms {
            out.step(say::move_rediscovered(&vm.name, to));
        }
        self.set_moving(&name, None).await.map_err(after)?;
        out.push(say::move_completed(&name, to));
        let summary = say::move_summary(moved, total, &name, to);
        let message = summary.text.clone();
        out.push(summary);
        let event = EventRecord::new(EventName::HostGroupMoved, &name, message);
        self.hsdb.append_event(&event).await.map_err(after)?;
        Ok(())
    }

    /// Shuts each VM down cleanly through an HMC, under its lock; the first failure stops the
    /// move (and starts again those already down).
    async fn shut_down(&self, group: &HostGroupRecord, vms: &[VmRecord], out: &Lines) -> Result<()> {
        let holder = self.hsdb.node().node_id;
        for (i, vm) in vms.iter().enumerate() {
            out.step(say::move_shutdown_started(&group.name, &vm.name));
            let done = async {
                let epoch = self.hsdb.lock_vm(&vm.name, VmStatus::RestartInProgress, holder, Acquire::WhenFree).await?;
                let host = self.records.host(&vm.host).await?;
                let job = Job::Shutdown(ShutdownLpar {
                    host: host.name.clone(),
                    lpar: vm.name.clone(),
                    immediate: false,
                    fence: epoch,
                });
                let shut = self.hmc.run_job(&host, job).await;
                self.hsdb.unlock_vm(&vm.name, epoch).await?;
                shut
            };
            if let Err(e) = done.await {
                self.start_again(&vms[..i], out).await;
                return Err(VmrmError::unavailable(format!("VM {} did not shut down: {e}", vm.name)));
            }
            out.step(say::move_shutdown_completed(&group.name, &vm.name));
        }
        Ok(())
    }

    /// A move that failed before the replication was handed over: the VMs it shut down start
    /// again on their own hosts (their disks' reservations never moved).
    async fn start_again(&self, vms: &[VmRecord], out: &Lines) {
        let holder = self.hsdb.node().node_id;
        for vm in vms {
            let started = async {
                let epoch = self.hsdb.lock_vm(&vm.name, VmStatus::RestartInProgress, holder, Acquire::WhenFree).await?;
                let host = self.records.host(&vm.host).await?;
                let definition = vm.definition(vm.cpu, vm.memory_mb, epoch);
                let job = Job::Activate(ActivateLpar { host: host.name.clone(), definition: Some(definition.into()) });
                let run = self.hmc.run_job(&host, job).await;
                self.hsdb.unlock_vm(&vm.name, epoch).await?;
                run
            };
            match started.await {
                Ok(()) => out.step(say::restart_completed(&vm.name, &vm.host)),
                Err(e) => out.step(say::restart_error(&vm.name, &e)),
            }
        }
    }

    /// Planned: the source ships everything, becomes secondary and drains; the target takes
    /// over from exactly there.
    async fn hand_over(&self, group: &str, out: &Lines) -> Result<()> {
        let sides = self.sides(group).await?.ok_or_else(|| VmrmError::not_found("the replication record is gone"))?;
        let (a, b) = (&sides.primary, &sides.secondary);
        self.wait_for(&a.endpoint, group, "final synchronization", |s| s.lag_writes == 0 && !s.needs_full).await?;
        let generation = sides.record.generation + 1;
        let part = |role: pb::ReplicationRole, peer: &StorageAgentRecord| pb::ConsistencyGroup {
            name: group.to_string(),
            generation,
            role: role as i32,
            peer: peer.endpoint.clone(),
            peer_name: peer.name.clone(),
            disks: Vec::new(),
            ..Default::default()
        };
        let mut demote = part(pb::ReplicationRole::Secondary, b);
        demote.disks = self.disks_of(group).await?;
        let last = self.san.configure_group(&a.endpoint, demote.clone()).await?.sequence;
        self.wait_for(&b.endpoint, group, "the last writes at the target", |s| s.sequence >= last).await?;
        self.record_reversal(&sides, 0).await?;
        let mut promote = part(pb::ReplicationRole::Primary, a);
        promote.disks = demote.disks;
        self.san.configure_group(&b.endpoint, promote).await?;
        out.step(say::replication_reversed(group, &b.name, generation));
        Ok(())
    }

    /// Unplanned: the target starts from its consistent point; the lost site is told it is
    /// secondary now if it can be reached.
    async fn take_over(&self, group: &str, out: &Lines) -> Result<()> {
        let sides = self.sides(group).await?.ok_or_else(|| VmrmError::not_found("the replication record is gone"))?;
        let (a, b) = (&sides.primary, &sides.secondary);
        let copy = self.san.query_group(&b.endpoint, group).await.map_err(|e| {
            VmrmError::unavailable(format!("the target site's SAN {} cannot be asked for its copy: {e}", b.name))
        })?;
        let point = copy.sequence;
        let generation = sides.record.generation + 1;
        self.record_reversal(&sides, point).await?;
        let disks = self.disks_of(group).await?;
        let promote = pb::ConsistencyGroup {
            name: group.to_string(),
            generation,
            role: pb::ReplicationRole::Primary as i32,
            peer: a.endpoint.clone(),
            peer_name: a.name.clone(),
            disks: disks.clone(),
            peer_lost: true,
            consistent_point: 0,
        };
        self.san.configure_group(&b.endpoint, promote).await?;
        let demote = pb::ConsistencyGroup {
            name: group.to_string(),
            generation,
            role: pb::ReplicationRole::Secondary as i32,
            peer: b.endpoint.clone(),
            peer_name: b.name.clone(),
            disks,
            peer_lost: false,
            consistent_point: point,
        };
        if let Err(e) = self.san.configure_group(&a.endpoint, demote).await {
            tracing::warn!(
                group,
                "the lost site's SAN {} was not told it is secondary now ({e}); it learns it when it returns",
                a.name
            );
        }
        let before = crate::now_ms() - copy.consistent_at_ms;
        let missing = copy.primary_sequence.saturating_sub(point);
        out.step(say::consistent_point(group, copy.consistent_at_ms, before, missing));
        out.step(say::replication_reversed(group, &b.name, generation));
        Ok(())
    }

    /// The disks of the group's consistency group: its managed VMs'.
    async fn disks_of(&self, group: &str) -> Result<Vec<String>> {
        let (record, _) = self.records.host_group(group).await?;
        Ok(self.group_vms(&record).await?.into_iter().map(|v| v.disk).collect())
    }

    /// The record names the target's SAN primary, one generation up: what both SANs confirm
    /// their roles against.
    async fn record_reversal(&self, sides: &super::storage_sync::Sides, point: u64) -> Result<()> {
        let mut record = sides.record.clone();
        record.generation += 1;
        (record.primary_site, record.secondary_site) = (record.secondary_site, record.primary_site);
        (record.primary_san, record.secondary_san) = (record.secondary_san, record.primary_san);
        record.consistent_point = point;
        self.hsdb.put_if_version(&record, sides.version).await.map(drop)
    }

    /// The host group runs at `to` from now on: its hosts are their pairs.
    async fn swap_hosts(&self, group: &str, to: &str, pairs: &BTreeMap<String, String>) -> Result<()> {
        let (mut record, version) = self.records.host_group(group).await?;
        if record.site.as_deref() == Some(to) {
            return Ok(());
        }
        for (host, pair) in pairs {
            for (name, member) in [(host, None), (pair, Some(group.to_string()))] {
                retry_on_conflict(|| async {
                    let (mut h, v) = self
                        .hsdb
                        .get::<HostRecord>(name)
                        .await?
                        .ok_or_else(|| VmrmError::not_found(format!("host {name} is gone")))?;
                    h.host_group = member.clone();
                    self.hsdb.put_if_version(&h, v).await.map(drop)
                })
                .await?;
            }
        }
        record.hosts = record.hosts.iter().map(|h| pairs.get(h).cloned().unwrap_or_else(|| h.clone())).collect();
        record.site = Some(to.to_string());
        self.hsdb.put_if_version(&record, version).await.map(drop)
    }

    /// Each VM restarts on its host's pair, as one recovery task.
    async fn restart_at(
        &self,
        group: &HostGroupRecord,
        to: &str,
        vms: &[VmRecord],
        pairs: &BTreeMap<String, String>,
        out: &Lines,
    ) -> Result<(usize, usize)> {
        let now = crate::now_ms();
        let plan = vms
            .iter()
            .filter_map(|vm| {
                let target = pairs.get(&vm.host)?.clone();
                Some(PlannedRestart {
                    vm: vm.name.clone(),
                    priority: vm.priority,
                    source: vm.host.clone(),
                    target,
                    cpu: vm.cpu,
                    memory_mb: vm.memory_mb,
                })
            })
            .collect();
        let task = RecoveryTaskRecord {
            id: format!("{now}-{}-to-{to}", group.name),
            host_group: group.name.clone(),
            cause: RestartCause::SiteMove,
            subject: group.name.clone(),
            created_ms: now,
            plan,
            unplaced: Vec::new(),
            finished: false,
            restarted: 0,
        };
        self.hsdb.put_if_version(&task, 0).await?;
        let task = self.recovery.run_task(task, Run::First, out).await?;
        Ok((task.restarted as usize, vms.len()))
    }
}
