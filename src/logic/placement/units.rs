//! Placement units: the moving VMs that must land together. Collocation groups that share a
//! moving VM are merged (union-find), so a unit is placed in one decision; a member that stays
//! where it is pins the unit to its host. Each unit also knows its anticollocation partners.
use super::VmDemand;
use crate::domain::{AffinityGroupRecord, AffinityKind, Priority};
use std::collections::{BTreeMap, BTreeSet};

pub(super) struct Unit {
    /// Indexes into the moving VMs, by name.
    pub members: Vec<usize>,
    /// A staying VM the unit must join (its host).
    pub pinned_with: Option<String>,
    /// VMs the unit must never share a host with.
    pub partners: BTreeSet<String>,
    /// Why the unit cannot be placed whatever the hosts (contradictory policies).
    pub conflict: Option<String>,
}

impl Unit {
    /// Units choose hosts in this order: priority, then collocated units, then anticollocated
    /// ones, then the rest; by name for a stable plan.
    pub fn placement_order<'a>(&self, vms: &'a [VmDemand]) -> (Priority, bool, bool, &'a str) {
        let first = &vms[self.members[0]];
        let priority = self.members.iter().map(|&i| vms[i].priority).min().unwrap_or(first.priority);
        (priority, self.members.len() == 1 && self.pinned_with.is_none(), self.partners.is_empty(), &first.vm)
    }
}

fn find(parent: &mut [usize], i: usize) -> usize {
    let mut root = i;
    while parent[root] != root {
        root = parent[root];
    }
    let mut i = i;
    while parent[i] != root {
        let next = parent[i];
        parent[i] = root;
        i = next;
    }
    root
}

pub(super) fn build(
    vms: &[VmDemand],
    index: &BTreeMap<&str, usize>,
    groups: &[AffinityGroupRecord],
    staying: &BTreeMap<String, String>,
) -> Vec<Unit> {
    let mut parent: Vec<usize> = (0..vms.len()).collect();
    let mut pins: BTreeMap<usize, String> = BTreeMap::new();
    let collocations = groups.iter().filter(|g| g.kind == AffinityKind::Collocation);
    for g in collocations.clone() {
        let moving: Vec<usize> = g.vms.iter().filter_map(|v| index.get(v.as_str()).copied()).collect();
        for pair in moving.windows(2) {
            let (a, b) = (find(&mut parent, pair[0]), find(&mut parent, pair[1]));
            parent[a] = b;
        }
    }
    for g in collocations {
        let Some(&first) = g.vms.iter().find_map(|v| index.get(v.as_str())) else { continue };
        if let Some(stay) = g.vms.iter().find(|v| staying.contains_key(*v)) {
            let root = find(&mut parent, first);
            pins.entry(root).or_insert_with(|| stay.clone());
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..vms.len() {
        let root = find(&mut parent, i);
        members.entry(root).or_default().push(i);
    }
    // Each VM's anticollocation groups, so a unit looks at its own groups only.
    let mut apart: BTreeMap<&str, Vec<&AffinityGroupRecord>> = BTreeMap::new();
    for g in groups.iter().filter(|g| g.kind == AffinityKind::Anticollocation) {
        for vm in &g.vms {
            apart.entry(vm.as_str()).or_default().push(g);
        }
    }
    members
        .into_iter()
        .map(|(root, mut members)| {
            members.sort_by(|&a, &b| vms[a].vm.cmp(&vms[b].vm));
            let names: BTreeSet<&str> = members.iter().map(|&i| vms[i].vm.as_str()).collect();
            let mut mine: Vec<&AffinityGroupRecord> =
                names.iter().flat_map(|n| apart.get(n).into_iter().flatten().copied()).collect();
            mine.sort_by(|a, b| a.name.cmp(&b.name));
            mine.dedup_by(|a, b| a.name == b.name);
            let mut partners = BTreeSet::new();
            let mut conflict = None;
            for g in mine {
                let inside: Vec<&String> = g.vms.iter().filter(|v| names.contains(v.as_str())).collect();
                if inside.len() > 1 {
                    conflict = Some(format!(
                        "conflicting policies: VMs {} must share a host (collocation) and never share one (anticollocation group {})",
                        inside.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                        g.name
                    ));
                }
                partners.extend(g.vms.iter().filter(|v| !names.contains(v.as_str())).cloned());
            }
            let pinned_with = pins.remove(&root);
            if let Some(pin) = &pinned_with
                && partners.contains(pin)
            {
                conflict = Some(format!(
                    "conflicting policies: VM {pin} is both a collocation and an anticollocation partner"
                ));
            }
            Unit { members, pinned_with, partners, conflict }
        })
        .collect()
}

/// VM → the workgroup it belongs to (the first one that names it).
pub(super) fn workgroup_of(groups: &[AffinityGroupRecord]) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    for g in groups.iter().filter(|g| g.kind == AffinityKind::Workgroup) {
        for vm in &g.vms {
            out.entry(vm.as_str()).or_insert(g.name.as_str());
        }
    }
    out
}
