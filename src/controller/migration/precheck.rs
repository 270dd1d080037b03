//! The facts of a live migration's pre-check, read from the hosts' inventories as their HMCs
//! report them, and the choice of a target when the administrator names none. The check itself
//! is the pure [`precheck::check`] (seed 001 §4.2: every conflict at once).
use crate::controller::migration::Migration;
use crate::domain::{HostGroupRecord, HostRecord, VmRecord};
use crate::error::{Result, VmrmError};
use crate::logic::migration::precheck::{self, Conflict, DeviceUse, GuestFacts, GuestState, UnitFacts};
use crate::pb;

/// A VM's facts as its host's inventory shows the partition.
pub fn guest_facts(vm: &VmRecord, source: &pb::HostInventory) -> GuestFacts {
    let lpar = source.lpars.iter().find(|l| l.definition.as_ref().is_some_and(|d| d.name == vm.name));
    let state = match lpar.map(|l| l.guest_state()) {
        Some(pb::GuestState::Running) => GuestState::Running,
        Some(pb::GuestState::Wait) => GuestState::Wait,
        Some(pb::GuestState::DefinedOnly) => GuestState::DefinedOnly,
        _ => GuestState::Down,
    };
    let definition = lpar.and_then(|l| l.definition.as_ref());
    let memory_mb = definition.map_or(vm.memory_mb, |d| d.memory_mb);
    GuestFacts {
        name: vm.name.clone(),
        index: lpar.map_or(0, |l| l.lpar_id),
        // A partition without a permanent VM index takes any free id on arrival (*ANY).
        permanent_index: definition.and_then(|d| d.permanent_index).is_some(),
        memory_mb,
        devices: vec![vm.disk.clone()],
        state,
    }
}

/// A unit's facts from its inventory; `san`: the SAN the VM's disk is on (a host on another
/// SAN does not have the VM's disk). `operation`: outbound migrations of this operation (an
/// evacuation) do not count as a second one.
pub fn unit_facts(inv: &pb::HostInventory, san: &str, disk: &str, operation: &str) -> UnitFacts {
    let present: Vec<&pb::LparDefinition> = inv.lpars.iter().filter_map(|l| l.definition.as_ref()).collect();
    let used: u64 = inv
        .lpars
        .iter()
        .filter(|l| l.state() != pb::LparState::NotActivated)
        .filter_map(|l| l.definition.as_ref())
        .map(|d| d.memory_mb)
        .sum();
    let migrating_out = match inv.outbound_operation.as_str() {
        "" => None,
        op if op == operation && !operation.is_empty() => None,
        _ => inv
            .lpars
            .iter()
            .find(|l| l.migration.as_ref().is_some_and(|m| m.outbound))
            .and_then(|l| l.definition.as_ref())
            .map(|d| d.name.clone()),
    };
    UnitFacts {
        name: inv.name.clone(),
        powered_on: inv.state() == pb::HostState::Operating,
        free_memory_mb: inv.memory_total_mb.saturating_sub(used),
        vm_names: present.iter().map(|d| d.name.clone()).collect(),
        vm_indexes: inv.lpars.iter().map(|l| l.lpar_id).collect(),
        definitions: present.len(),
        max_definitions: inv.max_definitions as usize,
        devices: if inv.san == san { [(disk.to_string(), DeviceUse::Free)].into() } else { Default::default() },
        reconfiguring: inv.reconfiguring,
        shutting_down: inv.shutting_down,
        migrating_out,
    }
}

/// A host whose HMCs cannot report it: not powered on as far as the check can tell.
fn unreachable(host: &HostRecord, state: pb::HostState) -> pb::HostInventory {
    pb::HostInventory { name: host.name.clone(), state: state as i32, ..Default::default() }
}

/// The outcome of a pre-check: the guest as checked, and every conflict.
pub struct Checked {
    pub guest: GuestFacts,
    pub conflicts: Vec<Conflict>,
}

impl Checked {
    /// VM2000's answer: VMS2460, or VMS2404 with the reasons and VMS2461.
    pub fn verdict(&self, target: &str) -> Vec<String> {
        precheck::verdict(&self.guest, target, &self.conflicts)
    }
}

impl Migration {
    /// Every reason `vm` cannot move from `source` to `target` now; `claimed_by`: the VM whose
    /// migration out of `source` this controller started meanwhile, if any.
    pub(in crate::controller) async fn lpm_precheck(
        &self,
        vm: &VmRecord,
        source: &HostRecord,
        target: &HostRecord,
        group: &HostGroupRecord,
        operation: &str,
        claimed_by: Option<String>,
    ) -> Result<Checked> {
        let source_inv = self.hmc.host_inventory(source).await.map_err(|e| {
            VmrmError::unavailable(format!(
                "the HMCs of host {} do not answer ({e}); VM {} stays",
                source.name, vm.name
            ))
        })?;
        let target_inv = match self.hmc.host_inventory(target).await {
            Ok(inv) => inv,
            Err(e) => {
                tracing::info!(host = %target.name, "pre-check: the target's HMCs do not answer: {e}");
                unreachable(target, pb::HostState::NoConnection)
            }
        };
        let guest = guest_facts(vm, &source_inv);
        let cluster = self.lpm_cluster_state(source, target, group).await?;
        let mut source_facts = unit_facts(&source_inv, &source.san, &vm.disk, operation);
        source_facts.migrating_out = source_facts.migrating_out.or(claimed_by);
        let target_facts = unit_facts(&target_inv, &source.san, &vm.disk, operation);
        let conflicts = precheck::check(&guest, &source_facts, &target_facts, cluster);
        Ok(Checked { guest, conflicts })
    }

    /// Where the controller would migrate each of `vms` (all from one host): the relocation
    /// mapper's choice among the other hosts of the group, at full size (flexible capacity is
    /// not applied to migration), honouring anticollocation, collocation and blacklists.
    pub(in crate::controller) async fn lpm_targets(
        &self,
        vms: &[VmRecord],
        group: &HostGroupRecord,
        from: &str,
    ) -> Result<Vec<(String, Result<String>)>> {
        let plan = self.recovery.mapper_inputs(group, &[from]).await?.at_full_size().plan(vms);
        let mut out: Vec<(String, Result<String>)> = plan.placed.into_iter().map(|p| (p.vm, Ok(p.host))).collect();
        for (vm, why) in plan.unplaced {
            out.push((
                vm.clone(),
                Err(VmrmError::precondition(format!("no host of host_group {} can take VM {vm}: {why}", group.name))),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lpar(name: &str, id: u32, state: pb::LparState, memory_mb: u64) -> pb::Lpar {
        pb::Lpar {
            definition: Some(pb::LparDefinition {
                name: name.into(),
                uuid: format!("uuid-{name}"),
                cpu: 2,
                memory_mb,
                disk: format!("{name}-rootvg"),
                permanent_index: None,
                fence: 0,
                isolated: false,
                identities: Vec::new(),
            }),
            state: state as i32,
            lpar_id: id,
            guest_state: pb::GuestState::Running as i32,
            ..Default::default()
        }
    }

    fn inventory() -> pb::HostInventory {
        pb::HostInventory {
            name: "host-2".into(),
            state: pb::HostState::Operating as i32,
            memory_total_mb: 16384,
            max_definitions: 3,
            san: "san:7201".into(),
            lpars: vec![
                lpar("vm-2-1", 1, pb::LparState::Running, 4096),
                lpar("stale", 2, pb::LparState::NotActivated, 8192),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_units_facts_count_what_runs_and_every_definition() {
        let facts = unit_facts(&inventory(), "san:7201", "vm-1-1-rootvg", "");
        assert_eq!(facts.free_memory_mb, 12288, "a definition that does not run holds no memory");
        assert_eq!(facts.definitions, 2);
        assert_eq!(facts.max_definitions, 3);
        assert!(facts.vm_names.contains("stale"));
        assert_eq!(facts.devices.get("vm-1-1-rootvg"), Some(&DeviceUse::Free), "same SAN: the disk is there");
        let other_san = unit_facts(&inventory(), "san-b:7201", "vm-1-1-rootvg", "");
        assert!(other_san.devices.is_empty(), "another SAN does not have the VM's disk");
    }

    #[test]
    fn an_outbound_migration_counts_unless_it_is_of_the_same_operation() {
        let mut inv = inventory();
        inv.outbound_operation = "evacuate-host-2".into();
        inv.lpars[0].migration = Some(pb::LparMigration { outbound: true, peer: "host-3".into() });
        assert_eq!(unit_facts(&inv, "s", "d", "").migrating_out.as_deref(), Some("vm-2-1"));
        assert_eq!(unit_facts(&inv, "s", "d", "evacuate-host-2").migrating_out, None);
    }

    #[test]
    fn a_guest_whose_os_hangs_is_in_wait() {
        let mut inv = inventory();
        inv.lpars[0].guest_state = pb::GuestState::Wait as i32;
        let vm = VmRecord::at_rest("vm-2-1", "host-2");
        let guest = guest_facts(&vm, &inv);
        assert_eq!((guest.state, guest.index, guest.memory_mb), (GuestState::Wait, 1, 4096));
    }
}
