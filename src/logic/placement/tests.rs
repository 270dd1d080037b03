use super::*;
use crate::domain::{AffinityKind, PriorityPercent};

fn vm(name: &str, cpu: u32, mem: u64, priority: Priority) -> VmDemand {
    VmDemand { vm: name.into(), cpu, memory_mb: mem, priority, homehost: "failed".into(), blacklist: vec![] }
}

fn host(name: &str, cpu: u32, mem: u64) -> HostCapacity {
    HostCapacity { host: name.into(), free_cpu: cpu, free_memory_mb: mem }
}

fn group(name: &str, kind: AffinityKind, vms: &[&str]) -> AffinityGroupRecord {
    AffinityGroupRecord { name: name.into(), kind, vms: vms.iter().map(|s| s.to_string()).collect() }
}

struct Case {
    groups: Vec<AffinityGroupRecord>,
    flex: FlexCapacity,
    restart_policy: RestartPolicy,
    staying: BTreeMap<String, String>,
}

impl Case {
    fn new() -> Self {
        Self {
            groups: vec![],
            flex: FlexCapacity::default(),
            restart_policy: RestartPolicy::Auto,
            staying: BTreeMap::new(),
        }
    }

    fn with(mut self, g: AffinityGroupRecord) -> Self {
        self.groups.push(g);
        self
    }

    fn staying(mut self, vm: &str, host: &str) -> Self {
        self.staying.insert(vm.into(), host.into());
        self
    }

    fn place(&self, vms: &[VmDemand], hosts: &[HostCapacity]) -> PlacementPlan {
        let policies = Policies {
            groups: &self.groups,
            flex: self.flex,
            restart_policy: self.restart_policy,
            staying: &self.staying,
        };
        place(vms, hosts, policies)
    }
}

fn targets(plan: &PlacementPlan) -> Vec<(&str, &str)> {
    plan.placed.iter().map(|p| (p.vm.as_str(), p.host.as_str())).collect()
}

#[test]
fn high_priority_first_then_best_fit() {
    let plan = Case::new().place(
        &[vm("b", 1, 1024, Priority::Medium), vm("a", 1, 1024, Priority::High)],
        &[host("big", 8, 8192), host("small", 2, 2048)],
    );
    assert_eq!(targets(&plan), vec![("a", "small"), ("b", "small")]);
    assert!(plan.unplaced.is_empty() && !plan.advisory);
}

#[test]
fn when_capacity_runs_out_the_lowest_priority_is_left_with_a_reason() {
    let plan = Case::new().place(
        &[vm("c", 2, 2048, Priority::High), vm("a", 2, 2048, Priority::Low), vm("b", 2, 2048, Priority::Medium)],
        &[host("h", 4, 4096)],
    );
    assert_eq!(targets(&plan), vec![("c", "h"), ("b", "h")]);
    assert_eq!(plan.unplaced.len(), 1);
    assert_eq!(plan.unplaced[0].0, "a");
    assert!(plan.unplaced[0].1.contains("needs 2 CPU / 2048 MB, 0 CPU / 0 MB are free"), "{}", plan.unplaced[0].1);
    let plan = Case::new().place(&[vm("a", 2, 2048, Priority::Low)], &[host("x", 1, 512), host("y", 1, 1024)]);
    assert!(plan.unplaced[0].1.contains("2 CPU and 2048 MB free (largest free: y 1 CPU/1024 MB, x"), "{plan:?}");
}

#[test]
fn no_host_at_all_is_reported() {
    let plan = Case::new().place(&[vm("a", 1, 1, Priority::High)], &[]);
    assert!(plan.unplaced[0].1.contains("no other host"));
}

#[test]
fn planning_twice_gives_the_same_plan() {
    let vms = [vm("a", 1, 512, Priority::Low), vm("b", 2, 1024, Priority::High), vm("c", 1, 512, Priority::Medium)];
    let hosts = [host("x", 4, 4096), host("y", 4, 2048)];
    assert_eq!(Case::new().place(&vms, &hosts), Case::new().place(&vms, &hosts));
}

#[test]
fn anticollocated_vms_of_one_host_cannot_share_the_only_other_host() {
    let case = Case::new().with(group("pha", AffinityKind::Anticollocation, &["n1", "n2"]));
    let plan =
        case.place(&[vm("n1", 1, 512, Priority::Medium), vm("n2", 1, 512, Priority::Medium)], &[host("h2", 8, 8192)]);
    assert_eq!(targets(&plan), vec![("n1", "h2")]);
    assert_eq!(plan.unplaced[0].0, "n2");
    assert!(plan.unplaced[0].1.contains("anticollocation") && plan.unplaced[0].1.contains("n1 on h2"), "{plan:?}");
}

#[test]
fn anticollocation_keeps_a_vm_away_from_a_partner_that_stays() {
    let case = Case::new().with(group("pha", AffinityKind::Anticollocation, &["n1", "n2"])).staying("n2", "tight");
    let plan = case.place(&[vm("n1", 1, 512, Priority::Medium)], &[host("tight", 1, 512), host("roomy", 8, 8192)]);
    assert_eq!(targets(&plan), vec![("n1", "roomy")]);
}

#[test]
fn collocated_vms_land_together_or_not_at_all() {
    let case = Case::new().with(group("app", AffinityKind::Collocation, &["web", "db"]));
    let vms = [vm("web", 2, 2048, Priority::Medium), vm("db", 2, 2048, Priority::Medium)];
    let plan = case.place(&vms, &[host("a", 2, 2048), host("b", 4, 4096)]);
    assert_eq!(targets(&plan), vec![("db", "b"), ("web", "b")]);

    let plan = case.place(&vms, &[host("a", 2, 2048), host("c", 3, 3072), host("d", 1, 1024)]);
    assert!(plan.placed.is_empty());
    assert_eq!(plan.unplaced.len(), 2);
    assert!(plan.unplaced[0].1.contains("4 CPU and 4096 MB") && plan.unplaced[0].1.contains("collocated"), "{plan:?}");
}

#[test]
fn collocation_follows_a_member_that_stays() {
    let case = Case::new().with(group("app", AffinityKind::Collocation, &["web", "db"])).staying("db", "b");
    let plan = case.place(&[vm("web", 1, 512, Priority::Medium)], &[host("a", 1, 512), host("b", 8, 8192)]);
    assert_eq!(targets(&plan), vec![("web", "b")]);
    let plan = case.place(&[vm("web", 1, 512, Priority::Medium)], &[host("a", 1, 512)]);
    assert!(plan.unplaced[0].1.contains("collocated with VM db on host b"), "{plan:?}");
}

#[test]
fn collocation_groups_sharing_a_vm_merge_into_one_unit() {
    let case = Case::new().with(group("g1", AffinityKind::Collocation, &["a", "b"])).with(group(
        "g2",
        AffinityKind::Collocation,
        &["b", "c"],
    ));
    let vms = [vm("a", 1, 512, Priority::Low), vm("b", 1, 512, Priority::Low), vm("c", 1, 512, Priority::Low)];
    let plan = case.place(&vms, &[host("x", 2, 4096), host("y", 3, 4096)]);
    assert!(plan.placed.iter().all(|p| p.host == "y"), "{plan:?}");
}

#[test]
fn a_blacklisted_host_is_never_chosen_and_a_last_one_leaves_a_reason() {
    let mut picky = vm("lic", 1, 512, Priority::Medium);
    picky.blacklist = vec!["cheap".into()];
    let plan = Case::new().place(std::slice::from_ref(&picky), &[host("cheap", 1, 512), host("dear", 8, 8192)]);
    assert_eq!(targets(&plan), vec![("lic", "dear")]);
    picky.blacklist.push("dear".into());
    let plan = Case::new().place(&[picky], &[host("cheap", 1, 512), host("dear", 8, 8192)]);
    assert!(plan.unplaced[0].1.contains("blacklist_hosts"), "{plan:?}");
}

#[test]
fn flexible_capacity_shrinks_a_vm_away_from_home_and_not_at_home() {
    let mut case = Case::new();
    case.flex.memory = PriorityPercent { high: 100, medium: 50, low: 50 };
    case.flex.cpu = PriorityPercent { high: 100, medium: 50, low: 50 };
    let plan = case.place(&[vm("m", 4, 4096, Priority::Medium)], &[host("small", 2, 2048)]);
    assert_eq!(plan.placed, vec![Placement { vm: "m".into(), host: "small".into(), cpu: 2, memory_mb: 2048 }]);

    let mut home = vm("m", 4, 4096, Priority::Medium);
    home.homehost = "small".into();
    let plan = case.place(&[home], &[host("small", 2, 2048)]);
    assert!(plan.unplaced[0].1.contains("needs 4 CPU / 4096 MB"), "at home it asks for 100 %: {plan:?}");

    let plan = case.place(&[vm("h", 4, 4096, Priority::High)], &[host("small", 2, 2048)]);
    assert!(!plan.unplaced.is_empty(), "high priority keeps 100 %");
}

#[test]
fn advisory_mode_plans_but_says_so() {
    let mut case = Case::new();
    case.restart_policy = RestartPolicy::AdvisoryMode;
    let plan = case.place(&[vm("a", 1, 512, Priority::Medium)], &[host("h", 2, 2048)]);
    assert!(plan.advisory);
    assert_eq!(targets(&plan), vec![("a", "h")]);
}

#[test]
fn a_workgroup_restarts_together_within_its_priority() {
    let case = Case::new().with(group("dev", AffinityKind::Workgroup, &["a", "c"]));
    let vms = [
        vm("a", 1, 1, Priority::Medium),
        vm("b", 1, 1, Priority::Medium),
        vm("c", 1, 1, Priority::Medium),
        vm("z", 1, 1, Priority::High),
    ];
    let plan = case.place(&vms, &[host("h", 8, 8192)]);
    let order: Vec<&str> = plan.placed.iter().map(|p| p.vm.as_str()).collect();
    assert_eq!(order, vec!["z", "b", "a", "c"]);
}

#[test]
fn contradictory_policies_are_reported_not_guessed() {
    let case = Case::new().with(group("together", AffinityKind::Collocation, &["a", "b"])).with(group(
        "apart",
        AffinityKind::Anticollocation,
        &["a", "b"],
    ));
    let plan = case.place(&[vm("a", 1, 1, Priority::Low), vm("b", 1, 1, Priority::Low)], &[host("h", 8, 8192)]);
    assert_eq!(plan.unplaced.len(), 2);
    assert!(plan.unplaced[0].1.contains("conflicting policies"), "{plan:?}");
}

#[test]
fn constrained_units_choose_before_loose_ones_of_the_same_priority() {
    // "a" alone would take the tight host by best fit and leave the pair nowhere to go.
    let case = Case::new().with(group("pair", AffinityKind::Collocation, &["p", "q"]));
    let vms = [vm("a", 1, 512, Priority::Medium), vm("p", 1, 512, Priority::Medium), vm("q", 1, 512, Priority::Medium)];
    let plan = case.place(&vms, &[host("tight", 2, 1024), host("loose", 1, 4096)]);
    assert!(plan.unplaced.is_empty(), "{plan:?}");
    assert_eq!(targets(&plan), vec![("a", "loose"), ("p", "tight"), ("q", "tight")]);
}

#[test]
fn priority_beats_anticollocation_for_the_last_slot() {
    let case = Case::new().with(group("apart", AffinityKind::Anticollocation, &["hi", "lo"]));
    let plan =
        case.place(&[vm("lo", 1, 512, Priority::Low), vm("hi", 1, 512, Priority::High)], &[host("only", 4, 4096)]);
    assert_eq!(targets(&plan), vec![("hi", "only")]);
    assert_eq!(plan.unplaced[0].0, "lo");
}

/// The fast mapper against a plain reference: VMs in (priority, name) order, each on the host
/// with the least memory, then CPU, left (then the first name) — on random datacenters.
#[test]
fn best_fit_matches_a_plain_reference_on_random_datacenters() {
    let mut seed = 7u64;
    let mut next = |below: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    for _ in 0..50 {
        let hosts: Vec<HostCapacity> =
            (0..20).map(|_| host(&format!("h{:02}", next(40)), 4 + next(8) as u32, 1024 * (4 + next(12)))).collect();
        let vms: Vec<VmDemand> = (0..120)
            .map(|i| {
                let priority = [Priority::High, Priority::Medium, Priority::Low][next(3) as usize];
                vm(&format!("v{i:03}"), 1 + next(3) as u32, 512 * (1 + next(6)), priority)
            })
            .collect();
        let mut free: Vec<(u32, u64)> = hosts.iter().map(|h| (h.free_cpu, h.free_memory_mb)).collect();
        let mut order: Vec<&VmDemand> = vms.iter().collect();
        order.sort_by(|a, b| (a.priority, &a.vm).cmp(&(b.priority, &b.vm)));
        let mut expected = Vec::new();
        for v in order {
            let best = (0..hosts.len())
                .filter(|&h| free[h].0 >= v.cpu && free[h].1 >= v.memory_mb)
                .min_by_key(|&h| (free[h].1 - v.memory_mb, free[h].0 - v.cpu, &hosts[h].host, h));
            if let Some(h) = best {
                free[h] = (free[h].0 - v.cpu, free[h].1 - v.memory_mb);
                expected.push((v.vm.clone(), hosts[h].host.clone()));
            }
        }
        let plan = Case::new().place(&vms, &hosts);
        let mut got: Vec<(String, String)> = plan.placed.iter().map(|p| (p.vm.clone(), p.host.clone())).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
    }
}
