//! `discover host_group` and `verify host_group` (seed 000 §3.5, outputs from its examples).
//!
//! Discovery asks the HMCs for every host of the group, records the VIOSs and the VMs (a new VM
//! is managed by default, its first host is its home host), skips a VM whose operation lock is
//! held, and marks the group discovered, which starts its FDE. Verification checks that every
//! managed VM could be restarted on another host of the group.
use crate::controller::config::Config;
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::pb;

impl Config {
    pub async fn discover(&self, group_name: &str, verify: bool) -> Result<Vec<pb::Step>> {
        let (mut group, version) = self.records.host_group(group_name).await?;
        let out = Lines::default();
        out.push(say::discovery_started(group_name));
        let (mut discovered, mut managed, mut skipped) = (0, 0, 0);
        for host_name in &group.hosts {
            let host = self.records.host(host_name).await?;
            let inv = match self.hmc.host_inventory(&host).await {
                Ok(inv) => inv,
                Err(e) => {
                    out.step(say::host_not_queried(host_name, e));
                    continue;
                }
            };
            out.step(say::vios_preparing(host_name));
            for v in &inv.vios {
                let vios = ViosRecord {
                    name: v.name.clone(),
                    uuid: v.uuid.clone(),
                    host: host_name.clone(),
                    endpoint: v.endpoint.clone(),
                    version: v.version.clone(),
                };
                self.hsdb.put(&vios).await?;
            }
            out.step(say::vios_prepared(host_name));
            for lpar in &inv.lpars {
                match self.discover_lpar(&host, lpar, &out).await? {
                    LparOutcome::Discovered => {
                        discovered += 1;
                        managed += 1;
                    }
                    LparOutcome::Skipped => {
                        skipped += 1;
                        managed += 1;
                    }
                    LparOutcome::Ignored => {}
                }
            }
        }
        group.discovered = true;
        // A discovery, by hand or scheduled, is a deep one; a quick one is not due for a while.
        (group.last_deep_ms, group.last_quick_ms) = (crate::now_ms(), crate::now_ms());
        self.hsdb.put_if_version(&group, version).await?;
        out.push(say::discovery_finished(group_name));
        if skipped > 0 {
            out.push(say::vms_skipped(skipped));
        }
        out.push(say::vms_discovered(discovered, managed));
        self.hsdb
            .append_event(&EventRecord::new(
                EventName::DiscoveryCompleted,
                group_name,
                format!("{discovered} out of {managed} managed VMs discovered"),
            ))
            .await?;
        let mut lines = out.take();
        if verify {
            lines.extend(self.verify(group_name).await?);
        }
        Ok(lines)
    }

    async fn discover_lpar(&self, host: &HostRecord, lpar: &pb::Lpar, out: &Lines) -> Result<LparOutcome> {
        // A DR test copy is no production VM.
        let Some(def) = lpar.definition.as_ref().filter(|d| !d.isolated) else {
            return Ok(LparOutcome::Ignored);
        };
        let running = lpar.state() == pb::LparState::Running;
        let existing = self.hsdb.get::<VmRecord>(&def.name).await?;
        let (mut vm, version) = match existing {
            Some((vm, v)) => (vm, v),
            None if running => {
                let seen = LparDefinition::try_from(def.clone())?;
                (VmRecord::discovered(&seen, &host.name), 0)
            }
            // A definition that is not running and that the controller never saw: not ours to manage.
            None => return Ok(LparOutcome::Ignored),
        };
        // A stale definition left on a host the VM was moved away from: not this VM's home now.
        if vm.host != host.name && !running {
            return Ok(LparOutcome::Ignored);
        }
        if !vm.managed {
            return Ok(LparOutcome::Ignored);
        }
        if vm.vm_status != VmStatus::NoOperationInProgress {
            out.step(say::vm_discovery_skipped(&vm.name, &host.name));
            return Ok(LparOutcome::Skipped);
        }
        out.step(say::vm_discovery_started(&vm.name));
        vm.host = host.name.clone();
        if vm.state == VmState::Init || (vm.state == VmState::RestartFailed && running) {
            vm.state = VmState::Ready;
        }
        self.hsdb.put_if_version(&vm, version).await?;
        out.step(say::vm_discovered(&vm.name));
        Ok(LparOutcome::Discovered)
    }

    pub async fn verify(&self, group_name: &str) -> Result<Vec<pb::Step>> {
        let (group, _) = self.records.host_group(group_name).await?;
        let out = Lines::default();
        out.push(say::verification_started(group_name));
        let vms: Vec<(VmRecord, u64)> = self
            .hsdb
            .list_versioned::<VmRecord>()
            .await?
            .into_iter()
            .filter(|(vm, _)| vm.managed && group.hosts.contains(&vm.host))
            .collect();
        let mut unverified = Vec::new();
        let total = vms.len();
        // One inventory round for the whole group; each VM is then checked against the other hosts.
        let inputs = self.recovery.mapper_inputs(&group, &[]).await?;
        for (mut vm, version) in vms {
            out.step(say::vm_verification_started(&vm.name));
            let plan = inputs.plan_elsewhere(&vm);
            match plan.unplaced.first() {
                None => {
                    out.step(say::vm_verified(&vm.name));
                    if vm.state != VmState::ReadyToMove && vm.vm_status == VmStatus::NoOperationInProgress {
                        vm.state = VmState::ReadyToMove;
                        self.hsdb.put_if_version(&vm, version).await?;
                    }
                }
                Some((_, why)) => {
                    out.step(say::vm_verify_error(&vm.name, why));
                    unverified.push((vm.name.clone(), why.clone()));
                }
            }
        }
        out.push(say::verification_finished(group_name));
        out.push(say::vms_verified(total - unverified.len(), total));
        if !unverified.is_empty() {
            out.push(say::unverified_vms());
            for (name, _) in &unverified {
                out.step(say::unverified_vm(name));
            }
            for (name, why) in &unverified {
                out.push(say::vm_error_follows(name));
                out.push(say::vm_errors(name, why));
            }
            out.push(say::review_errors());
        }
        Ok(out.take())
    }
}

enum LparOutcome {
    Discovered,
    Skipped,
    Ignored,
}
