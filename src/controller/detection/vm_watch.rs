//! The FDE's VM checks (seed 000 §2.3.2, notes seed000-C §4.5), their I/O half: the sightings
//! of a NeedsAttention reply, the evidence on a silent VM (the HMC's view of its partition, then
//! a ping of its address) and the action carried out — an event, or the relocation of that one
//! VM. The decisions and their bookkeeping are pure: [`crate::logic::vm_failure`] and
//! [`crate::logic::vm_watch`].
use crate::controller::gateway::{HmcGateway, Reach};
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::logic::detection::Levels;
use crate::logic::vm_failure::{Evidence, LparFacts, RELOCATION_ATTEMPTS, VmAction};
use crate::logic::vm_watch::VmSighting;
use crate::pb::{self, states::WireEnum};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the VM checks read and do: the HSDB, the HMC's view of a partition, a ping, the
/// settings in force, and the relocation of one VM.
#[derive(Clone)]
pub struct VmChecks {
    pub hsdb: LocalHsdb,
    pub hmc: HmcGateway,
    pub reach: Reach,
    pub records: Records,
    pub recovery: Recovery,
}

impl VmChecks {
    /// Every managed VM of the group's `hosts` with its missed heartbeats from a NeedsAttention
    /// reply (`missing`: VM uuid → missed ms, per host that reported it).
    pub async fn sightings(
        &self,
        hosts: &[String],
        missing: &BTreeMap<(String, String), u64>,
        levels: &Levels,
    ) -> Result<Vec<VmSighting>> {
        let vms = self.hsdb.list::<VmRecord>().await?;
        Ok(vms
            .into_iter()
            .filter(|v| v.managed && hosts.contains(&v.host))
            .map(|vm| {
                let missed = missing.get(&(vm.host.clone(), vm.uuid.clone())).map(|ms| Duration::from_millis(*ms));
                let rule = levels.vm_rule(vm.vm_failure_detection_speed);
                VmSighting { vm, missed, rule }
            })
            .collect())
    }

    /// The seed's evidence on a silent VM: the HMC's view of its partition (state, reference code,
    /// shutdown reason, and the address the VM answers on), then a ping of that address.
    pub async fn gather_evidence(&self, vm: &VmRecord) -> Result<Evidence> {
        let host = self.records.host(&vm.host).await?;
        let inventory = self.hmc.host_inventory(&host).await?;
        let lpar = inventory.lpars.iter().find(|l| l.definition.as_ref().is_some_and(|d| d.name == vm.name));
        if let Some(l) = lpar.filter(|l| !l.address.is_empty())
            && self.reach.pingable(&l.address).await
        {
            return Ok(Evidence::Pingable);
        }
        let facts = match lpar {
            _ if inventory.state() != pb::HostState::Operating => LparFacts::bare(LparState::NotAvailable),
            None => LparFacts::bare(LparState::NotActivated),
            Some(l) => LparFacts {
                state: LparState::from_wire("the HMC's LPAR state", l.state)?,
                reference_code: l.reference_code.clone(),
                boots_to_sms: false,
                shutdown_reason: Some(l.shutdown_reason.clone()).filter(|r| !r.is_empty()),
            },
        };
        Ok(Evidence::Silent(facts))
    }

    /// Carries out a decision's event or relocation.
    pub async fn act(&self, group: &str, vm: VmRecord, action: VmAction, missed: Duration) -> Result<()> {
        let name = vm.name.clone();
        match action {
            VmAction::NoAction(_) => Ok(()),
            VmAction::Raise(event) => {
                let message = format!("heartbeats missing for {} s", missed.as_secs());
                self.hsdb.append_event(&EventRecord::new(event, &name, message)).await
            }
            VmAction::Relocate if !self.records.ha_monitor_levels(&vm.host).await?.vm(vm.ha_monitor) => {
                tracing::warn!(vm = %name, "VM failure seen, but ha_monitor is disabled for it: no action");
                Ok(())
            }
            VmAction::Relocate => {
                let message = format!("heartbeats missing for {} ms; not pingable", missed.as_millis());
                self.hsdb.append_event(&EventRecord::new(EventName::VmFailureDetected, &name, message)).await?;
                tracing::warn!(vm = %name, "VM failure detected. Initiating recovery for VM {name}");
                self.relocate(group, vm).await
            }
        }
    }

    /// Another attempt at relocating a VM whose relocation failed, while it still runs nowhere:
    /// its record says RESTART_FAILED and no operation holds it (its heartbeats stopped with its
    /// HA monitoring, so they can no longer ask for it). Nothing when it needs no attempt any more.
    pub async fn relocate_again(&self, group: &str, name: &str, attempt: u32) -> Result<()> {
        let Some((vm, _)) = self.hsdb.get::<VmRecord>(name).await? else {
            return Ok(());
        };
        if !vm.managed || vm.state != VmState::RestartFailed || vm.vm_status != VmStatus::NoOperationInProgress {
            return Ok(());
        }
        tracing::warn!(vm = %name, "relocation of VM {name}, attempt {attempt} of {RELOCATION_ATTEMPTS}");
        self.relocate(group, vm).await
    }

    /// The restart of one failed VM on another host of its group.
    async fn relocate(&self, group: &str, vm: VmRecord) -> Result<()> {
        let name = vm.name.clone();
        let (group, _) = self.records.host_group(group).await?;
        let out = Lines::default();
        out.push(say::vm_restart_in_progress(&name));
        let task = self.recovery.recover(&group, vec![vm], None, RestartCause::VmFailure, &name, &out).await?;
        match task.restarted {
            1 => Ok(()),
            // advisory_mode: the admin was told; the VM stays until they act.
            _ if group.restart_policy == RestartPolicy::AdvisoryMode => Ok(()),
            _ => Err(VmrmError::unavailable(format!("VM {name} could not be restarted"))),
        }
    }
}
