//! Checks of policy changes, before anything is written: affinity groups (seed §3.3: "supported
//! if all VMs in an affinity group have the same priority"; a VM in one collocation group and one
//! workgroup at most; never collocated and anticollocated with the same VM) and the flexible
//! capacity values (seed: `1-100`, `none`, `current_desired`).
use crate::domain::{AffinityGroupRecord, AffinityKind, Priority};
use std::collections::BTreeMap;

/// Checks `groups` (the affinity groups as they would be after a change) against the VMs'
/// priorities; the first problem found, in words.
pub fn check_affinity(groups: &[AffinityGroupRecord], priorities: &BTreeMap<String, Priority>) -> Result<(), String> {
    let mut exclusive: BTreeMap<(AffinityKind, &str), &str> = BTreeMap::new();
    for g in groups {
        let minimum = if g.kind == AffinityKind::Workgroup { 1 } else { 2 };
        if g.vms.len() < minimum {
            return Err(format!("{} group {} needs at least {minimum} VMs", g.kind.title(), g.name));
        }
        let mut seen: Vec<&str> = Vec::new();
        for vm in &g.vms {
            if seen.contains(&vm.as_str()) {
                return Err(format!("{} group {} names VM {vm} twice", g.kind.title(), g.name));
            }
            seen.push(vm);
            if g.kind != AffinityKind::Anticollocation
                && let Some(other) = exclusive.insert((g.kind, vm.as_str()), g.name.as_str())
            {
                return Err(format!("VM {vm} is already in {} group {other}; a VM can be in one only", g.kind));
            }
        }
        let mut by_priority: BTreeMap<Priority, Vec<&str>> = BTreeMap::new();
        for vm in &g.vms {
            let priority = priorities.get(vm).copied().unwrap_or_default();
            by_priority.entry(priority).or_default().push(vm);
        }
        if by_priority.len() > 1 {
            let mix: Vec<String> = by_priority.iter().map(|(p, vms)| format!("{p}: {}", vms.join(", "))).collect();
            return Err(format!(
                "all VMs of {} group {} must have the same priority ({})",
                g.kind,
                g.name,
                mix.join("; ")
            ));
        }
    }
    for together in groups.iter().filter(|g| g.kind == AffinityKind::Collocation) {
        for apart in groups.iter().filter(|g| g.kind == AffinityKind::Anticollocation) {
            let both: Vec<&str> = together.vms.iter().filter(|v| apart.vms.contains(v)).map(String::as_str).collect();
            if both.len() > 1 {
                return Err(format!(
                    "conflicting policies: VMs {} would be in collocation group {} and anticollocation group {}",
                    both.join(", "),
                    together.name,
                    apart.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, kind: AffinityKind, vms: &[&str]) -> AffinityGroupRecord {
        AffinityGroupRecord { name: name.into(), kind, vms: vms.iter().map(|s| s.to_string()).collect() }
    }

    fn medium(vms: &[&str]) -> BTreeMap<String, Priority> {
        vms.iter().map(|v| (v.to_string(), Priority::Medium)).collect()
    }

    #[test]
    fn groups_of_one_priority_pass() {
        let groups = [
            group("c", AffinityKind::Collocation, &["a", "b"]),
            group("x", AffinityKind::Anticollocation, &["a", "d"]),
            group("y", AffinityKind::Anticollocation, &["a", "e"]),
            group("w", AffinityKind::Workgroup, &["a"]),
        ];
        assert_eq!(check_affinity(&groups, &medium(&["a", "b", "d", "e"])), Ok(()));
    }

    #[test]
    fn mixed_priorities_are_refused_with_the_mix() {
        let mut priorities = medium(&["a"]);
        priorities.insert("b".into(), Priority::High);
        let err = check_affinity(&[group("c", AffinityKind::Collocation, &["a", "b"])], &priorities).unwrap_err();
        assert!(err.contains("same priority") && err.contains("High: b") && err.contains("Medium: a"), "{err}");
    }

    #[test]
    fn a_vm_in_two_collocation_groups_is_refused() {
        let groups =
            [group("c1", AffinityKind::Collocation, &["a", "b"]), group("c2", AffinityKind::Collocation, &["a", "d"])];
        let err = check_affinity(&groups, &medium(&["a", "b", "d"])).unwrap_err();
        assert!(err.contains("already in collocation group c1"), "{err}");
    }

    #[test]
    fn collocated_and_anticollocated_at_once_is_a_conflict() {
        let groups = [
            group("c", AffinityKind::Collocation, &["a", "b"]),
            group("x", AffinityKind::Anticollocation, &["b", "a"]),
        ];
        assert!(check_affinity(&groups, &medium(&["a", "b"])).unwrap_err().contains("conflicting policies"));
    }

    #[test]
    fn too_few_or_repeated_members_are_refused() {
        assert!(
            check_affinity(&[group("c", AffinityKind::Collocation, &["a"])], &medium(&["a"]))
                .unwrap_err()
                .contains("at least 2")
        );
        let twice = [group("x", AffinityKind::Anticollocation, &["a", "a"])];
        assert!(check_affinity(&twice, &medium(&["a"])).unwrap_err().contains("twice"));
    }
}
