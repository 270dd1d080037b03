//! The live migration pre-check (seed 001 §4.2, §4.3, §4.8; `/CHECK-VM-MIGRATION`): every
//! condition is checked and **all** conflicts are reported at once, as SE Manager's table
//! "Conflicts and configuration changes" (`# | Resource | Resource name | Message`) does, so the
//! operator resolves them in one go. One conflict rejects the migration.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The guest's status (seed: RUNNING, INIT_ONLY, DOWN and DEFINED_ONLY migrate; WAIT does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    Running,
    InitOnly,
    Down,
    DefinedOnly,
    Wait,
}

/// How a device is used on the target server unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceUse {
    Free,
    Exclusive { vm: String },
}

#[derive(Debug, Clone)]
pub struct GuestFacts {
    pub name: String,
    pub index: u32,
    /// Created with a permanent VM index (else `VM-INDEX=*ANY`: any free index will do).
    pub permanent_index: bool,
    pub memory_mb: u64,
    pub devices: Vec<String>,
    pub state: GuestState,
}

/// What a server unit reports about itself for the check.
#[derive(Debug, Clone, Default)]
pub struct UnitFacts {
    pub name: String,
    pub powered_on: bool,
    pub free_memory_mb: u64,
    pub vm_names: BTreeSet<String>,
    pub vm_indexes: BTreeSet<u32>,
    pub definitions: usize,
    pub max_definitions: usize,
    /// Generated devices; a device missing here is not generated on this unit.
    pub devices: BTreeMap<String, DeviceUse>,
    /// A dynamic I/O configuration change runs (`/START-CONFIGURATION-UPDATE`).
    pub reconfiguring: bool,
    /// A hypervisor shutdown was started (`/SHUTDOWN-VM VM-ID=*VM2000`).
    pub shutting_down: bool,
    /// The VM of an outbound live migration already running from this unit.
    pub migrating_out: Option<String>,
}

/// The SU cluster of source and target, as far as the check cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    Active,
    /// Seed: "After deactivating the SU cluster no live migration can be processed."
    Inactive,
    /// Source and target are not in one SU cluster.
    NotShared,
    /// Their SU cluster is in ERROR: a unit does not answer, live migration is not possible.
    Failed,
}

/// One row of the conflicts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub resource: &'static str,
    pub name: String,
    pub message: String,
    /// The seed's VM2000 reason code, where it gives one (`VMS2437` for a device).
    pub reason: Option<&'static str>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.resource, self.name, self.message)
    }
}

fn conflict(resource: &'static str, name: impl Into<String>, message: impl Into<String>) -> Conflict {
    Conflict { resource, name: name.into(), message: message.into(), reason: None }
}

/// Every reason `guest` cannot move from `source` to `target`; empty when it can.
pub fn check(guest: &GuestFacts, source: &UnitFacts, target: &UnitFacts, cluster: ClusterState) -> Vec<Conflict> {
    let mut out = Vec::new();
    match cluster {
        ClusterState::Active => {}
        ClusterState::Inactive => {
            out.push(conflict("SU cluster", &target.name, "INACTIVE: no live migration can be processed"))
        }
        ClusterState::NotShared => {
            out.push(conflict("SU cluster", &target.name, format!("not in the SU cluster of {}", source.name)))
        }
        ClusterState::Failed => out.push(conflict(
            "SU cluster",
            &target.name,
            "ERROR: a unit does not answer, live migration is not possible",
        )),
    }
    if !target.powered_on {
        out.push(conflict("Server unit", &target.name, "not powered on"));
    }
    if guest.state == GuestState::Wait {
        out.push(conflict("VM state", &guest.name, "WAIT: only RUNNING, INIT_ONLY, DOWN or DEFINED_ONLY can migrate"));
    }
    if let Some(vm) = &source.migrating_out {
        out.push(conflict("Server unit", &source.name, format!("live migration of VM {vm} from this unit is running")));
    }
    for unit in [source, target] {
        if unit.reconfiguring {
            out.push(conflict("Server unit", &unit.name, "dynamic I/O configuration change in progress"));
        }
        if unit.shutting_down {
            out.push(conflict("Server unit", &unit.name, "hypervisor shutdown in progress"));
        }
    }
    if target.free_memory_mb < guest.memory_mb {
        let message = format!("{} MB needed, {} MB free on the target", guest.memory_mb, target.free_memory_mb);
        out.push(conflict("Memory", &target.name, message));
    }
    if target.vm_names.contains(&guest.name) {
        out.push(conflict("VM name", &guest.name, "already in use"));
    }
    if guest.permanent_index && target.vm_indexes.contains(&guest.index) {
        out.push(conflict("VM index", guest.index.to_string(), "already in use"));
    }
    if target.definitions >= target.max_definitions {
        let message = format!("maximum number of VM definitions ({}) reached", target.max_definitions);
        out.push(conflict("VM definitions", &target.name, message));
    }
    for device in &guest.devices {
        match target.devices.get(device) {
            None => out.push(conflict("Device", device, "not generated on the target")),
            Some(DeviceUse::Exclusive { vm }) if *vm != guest.name => out.push(Conflict {
                reason: Some("VMS2437"),
                ..conflict("Device", device, "already assigned in exclusive mode")
            }),
            Some(_) => {}
        }
    }
    out
}

/// The check's answer as VM2000 prints it: VMS2460 (possible), or VMS2404 with the reasons
/// that have a code, then VMS2461 (not possible).
pub fn verdict(guest: &GuestFacts, target: &str, conflicts: &[Conflict]) -> Vec<String> {
    let vm = format!("({},{})", guest.index, guest.name);
    if conflicts.is_empty() {
        return vec![format!("VMS2460 LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' POSSIBLE")];
    }
    let mut lines = vec![format!("VMS2404 LIVE MIGRATION OF VM {vm} REJECTED BY THE TARGET SU '{target}'.")];
    for c in conflicts {
        match c.reason {
            Some(code) => lines.push(format!("REASON: {code},{}", c.name)),
            None => lines.push(format!("REASON: {c}")),
        }
    }
    lines.push(format!("VMS2461 LIVE MIGRATION OF VM {vm} TO TARGET SU '{target}' NOT POSSIBLE"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> GuestFacts {
        GuestFacts {
            name: "VM12PROD".into(),
            index: 12,
            permanent_index: true,
            memory_mb: 2048,
            devices: vec!["4683".into(), "CC88".into()],
            state: GuestState::Running,
        }
    }

    fn unit(name: &str) -> UnitFacts {
        UnitFacts {
            name: name.into(),
            powered_on: true,
            free_memory_mb: 8192,
            max_definitions: 16,
            devices: [("4683".into(), DeviceUse::Free), ("CC88".into(), DeviceUse::Free)].into(),
            ..UnitFacts::default()
        }
    }

    #[test]
    fn a_clean_check_is_possible() {
        let c = check(&guest(), &unit("ABGSE701"), &unit("ABGSE501"), ClusterState::Active);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(
            verdict(&guest(), "ABGSE501", &c),
            ["VMS2460 LIVE MIGRATION OF VM (12,VM12PROD) TO TARGET SU 'ABGSE501' POSSIBLE"]
        );
    }

    #[test]
    fn every_conflict_is_reported_at_once() {
        let mut source = unit("ABGSE701");
        source.migrating_out = Some("VM13TEST".into());
        source.reconfiguring = true;
        let mut target = unit("ABGSE501");
        target.powered_on = false;
        target.shutting_down = true;
        target.free_memory_mb = 1024;
        target.vm_names.insert("VM12PROD".into());
        target.vm_indexes.insert(12);
        target.definitions = 16;
        target.devices.remove("CC88");
        target.devices.insert("4683".into(), DeviceUse::Exclusive { vm: "OTHER".into() });
        let mut g = guest();
        g.state = GuestState::Wait;
        let c = check(&g, &source, &target, ClusterState::Inactive);
        let rows: Vec<(&str, &str)> = c.iter().map(|c| (c.resource, c.name.as_str())).collect();
        assert_eq!(
            rows,
            [
                ("SU cluster", "ABGSE501"),
                ("Server unit", "ABGSE501"),
                ("VM state", "VM12PROD"),
                ("Server unit", "ABGSE701"),
                ("Server unit", "ABGSE701"),
                ("Server unit", "ABGSE501"),
                ("Memory", "ABGSE501"),
                ("VM name", "VM12PROD"),
                ("VM index", "12"),
                ("VM definitions", "ABGSE501"),
                ("Device", "4683"),
                ("Device", "CC88"),
            ]
        );
        let lines = verdict(&g, "ABGSE501", &c);
        assert_eq!(lines[0], "VMS2404 LIVE MIGRATION OF VM (12,VM12PROD) REJECTED BY THE TARGET SU 'ABGSE501'.");
        assert!(lines.contains(&"REASON: VMS2437,4683".to_string()), "{lines:#?}");
        assert!(lines.contains(&"REASON: Device CC88: not generated on the target".to_string()), "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            "VMS2461 LIVE MIGRATION OF VM (12,VM12PROD) TO TARGET SU 'ABGSE501' NOT POSSIBLE"
        );
    }

    #[test]
    fn an_any_index_and_a_device_held_by_the_guest_itself_are_no_conflict() {
        let mut g = guest();
        g.permanent_index = false;
        let mut target = unit("ABGSE501");
        target.vm_indexes.insert(12);
        target.devices.insert("CC88".into(), DeviceUse::Exclusive { vm: "VM12PROD".into() });
        assert!(check(&g, &unit("ABGSE701"), &target, ClusterState::Active).is_empty());
    }

    #[test]
    fn a_cluster_in_error_takes_no_migration() {
        let c = check(&guest(), &unit("A"), &unit("B"), ClusterState::Failed);
        assert_eq!(c.len(), 1);
        assert!(c[0].message.starts_with("ERROR"), "{c:?}");
    }

    #[test]
    fn source_and_target_outside_one_cluster_are_refused() {
        let c = check(&guest(), &unit("A"), &unit("B"), ClusterState::NotShared);
        assert_eq!(c, [conflict("SU cluster", "B", "not in the SU cluster of A")]);
    }
}
