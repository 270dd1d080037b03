//! HA policies as stored (seed 000 §3): the host group's `restart_policy` and flexible capacity,
//! affinity groups of VMs, and the `ha_monitor` switch of every level. The relocation mapper
//! ([`crate::logic::placement`]) reads them; [`crate::logic::policy`] checks changes to them.
use super::state::Priority;
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

/// What happens after a failure is declared (seed: `restart_policy`, default `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
#[strum(parse_err_ty = String, parse_err_fn = not_a_restart_policy)]
pub enum RestartPolicy {
    /// The controller restarts the VMs itself and says so.
    #[default]
    Auto,
    /// The controller only says what it would do; the admin restarts by hand.
    #[strum(to_string = "advisory_mode", serialize = "advisory")]
    AdvisoryMode,
}

fn not_a_restart_policy(s: &str) -> String {
    format!("restart_policy `{s}` is not one of auto, advisory_mode")
}

/// When the active controller discovers by itself ([`crate::logic::discovery_schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverySchedule {
    /// Minutes after midnight (UTC) of the daily Deep discovery (seed default 00:00).
    #[serde(default)]
    pub auto_discovery_time_min: u16,
    /// Between two Quick discoveries; 0: none.
    #[serde(default = "hourly")]
    pub quick_every_ms: u64,
}

fn hourly() -> u64 {
    3_600_000
}

impl Default for DiscoverySchedule {
    fn default() -> Self {
        Self { auto_discovery_time_min: 0, quick_every_ms: hourly() }
    }
}

/// Percentages per priority (seed: `Memory_capacity` / `CPU_capacity`, "Priority Based
/// Settings", default 100 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityPercent {
    pub high: u8,
    pub medium: u8,
    pub low: u8,
}

impl Default for PriorityPercent {
    fn default() -> Self {
        Self { high: 100, medium: 100, low: 100 }
    }
}

impl PriorityPercent {
    pub fn of(&self, priority: Priority) -> u8 {
        match priority {
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }

    pub fn set(&mut self, priority: Priority, percent: u8) {
        match priority {
            Priority::High => self.high = percent,
            Priority::Medium => self.medium = percent,
            Priority::Low => self.low = percent,
        }
    }
}

/// Flexible capacity of a host group: what a VM of each priority gets when it is restarted away
/// from its home host (back home it gets 100 %). Never applied to live migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlexCapacity {
    pub memory: PriorityPercent,
    pub cpu: PriorityPercent,
}

impl FlexCapacity {
    /// The CPU and memory a VM of `priority` sized `cpu`/`memory_mb` gets away from home:
    /// rounded up, at least one CPU.
    pub fn scale(&self, priority: Priority, cpu: u32, memory_mb: u64) -> (u32, u64) {
        let cpu_pct = u64::from(self.cpu.of(priority));
        let mem_pct = u64::from(self.memory.of(priority));
        let cpu = (u64::from(cpu) * cpu_pct).div_ceil(100).max(1) as u32;
        (cpu, (memory_mb * mem_pct).div_ceil(100))
    }
}

/// The kinds of affinity group (seed §3.3).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Display, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
#[strum(parse_err_ty = String, parse_err_fn = not_an_affinity_kind)]
pub enum AffinityKind {
    /// Always on the same host after a relocation.
    Collocation,
    /// Never on the same host after a relocation.
    Anticollocation,
    /// Restarted together, one after the other, in their priority's turn.
    Workgroup,
}

fn not_an_affinity_kind(s: &str) -> String {
    format!("`{s}` is not one of collocation, anticollocation, workgroup")
}

impl AffinityKind {
    /// How outputs name it (seed: "Collocation group policy_1 was created", "Type: Collocation").
    pub fn title(self) -> &'static str {
        match self {
            Self::Collocation => "Collocation",
            Self::Anticollocation => "Anticollocation",
            Self::Workgroup => "Workgroup",
        }
    }
}

/// One affinity group; its name is unique across the kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffinityGroupRecord {
    pub name: String,
    pub kind: AffinityKind,
    pub vms: Vec<String>,
}

/// `ha_monitor=enable|disable` at one level; `None` inherits.
pub type HaMonitor = Option<bool>;

/// Where monitoring is switched on. The system switch is a global gate, default off (seed: "does
/// nothing until it is enabled"); below it the lowest level that says something wins, and the
/// host group, host and VM levels default to on (seed: they show `enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HaMonitorLevels {
    pub system: HaMonitor,
    pub host_group: HaMonitor,
    pub host: HaMonitor,
}

impl HaMonitorLevels {
    /// Host failures of this host are acted on.
    pub fn host(&self) -> bool {
        self.system.unwrap_or(false) && self.host.or(self.host_group).unwrap_or(true)
    }

    /// VM failures of a VM with setting `vm` on this host are acted on.
    pub fn vm(&self, vm: HaMonitor) -> bool {
        self.system.unwrap_or(false) && vm.or(self.host).or(self.host_group).unwrap_or(true)
    }
}

/// Appends the names of `items` that `list` does not hold yet, in order.
pub fn add_names(list: &mut Vec<String>, items: &[String]) {
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

pub fn on_off(enabled: bool) -> &'static str {
    if enabled { "enable" } else { "disable" }
}

/// Parses `enable|disable` (also yes/no, true/false).
pub fn parse_on_off(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "enable" | "enabled" | "yes" | "true" => Ok(true),
        "disable" | "disabled" | "no" | "false" => Ok(false),
        _ => Err(format!("{key}={value}: use enable or disable")),
    }
}

/// A flexible capacity value as ksysmgr takes it: a percentage 1-100; `none` and
/// `current_desired` keep 100 %.
pub fn parse_capacity(key: &str, value: &str) -> Result<u8, String> {
    match value.to_ascii_lowercase().as_str() {
        "none" | "current_desired" => Ok(100),
        "minimum" => Err(format!(
            "{key}=minimum is not supported: partitions here have no minimum profile; give a percentage 1-100"
        )),
        v => match v.parse::<u8>() {
            Ok(p) if (1..=100).contains(&p) => Ok(p),
            _ => Err(format!("{key}={value}: use a percentage 1-100, none or current_desired")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_values() {
        assert_eq!(parse_capacity("memory_capacity", "60"), Ok(60));
        assert_eq!(parse_capacity("memory_capacity", "none"), Ok(100));
        assert!(parse_capacity("cpu_capacity", "0").unwrap_err().contains("1-100"));
        assert!(parse_capacity("cpu_capacity", "101").is_err());
        assert!(parse_capacity("cpu_capacity", "minimum").unwrap_err().contains("not supported"));
    }

    #[test]
    fn flexible_capacity_rounds_up_and_keeps_one_cpu() {
        let mut flex = FlexCapacity::default();
        flex.cpu.set(Priority::Medium, 70);
        flex.memory.set(Priority::Medium, 80);
        assert_eq!(flex.scale(Priority::Medium, 4, 4096), (3, 3277));
        assert_eq!(flex.scale(Priority::Medium, 1, 1000), (1, 800));
        assert_eq!(flex.scale(Priority::High, 4, 4096), (4, 4096));
    }

    #[test]
    fn the_system_switch_gates_everything_and_the_lowest_level_wins_below_it() {
        let off = HaMonitorLevels::default();
        assert!(!off.host() && !off.vm(Some(true)));
        let on = HaMonitorLevels { system: Some(true), ..Default::default() };
        assert!(on.host() && on.vm(None));
        assert!(!on.vm(Some(false)));
        let group_off = HaMonitorLevels { host_group: Some(false), ..on };
        assert!(!group_off.host() && !group_off.vm(None));
        let host_back_on = HaMonitorLevels { host: Some(true), ..group_off };
        assert!(host_back_on.host() && host_back_on.vm(None) && !host_back_on.vm(Some(false)));
    }

    #[test]
    fn names_parse_as_the_seed_writes_them() {
        assert_eq!("advisory_mode".parse(), Ok(RestartPolicy::AdvisoryMode));
        assert_eq!("Auto".parse(), Ok(RestartPolicy::Auto));
        assert_eq!("advisory".parse(), Ok(RestartPolicy::AdvisoryMode));
        assert_eq!(RestartPolicy::AdvisoryMode.to_string(), "advisory_mode");
        assert!("sometimes".parse::<RestartPolicy>().unwrap_err().contains("auto, advisory_mode"));
        assert_eq!("Anticollocation".parse(), Ok(AffinityKind::Anticollocation));
        assert_eq!(AffinityKind::Workgroup.to_string(), "workgroup");
        assert_eq!(
            "pairs".parse::<AffinityKind>(),
            Err("`pairs` is not one of collocation, anticollocation, workgroup".into())
        );
        assert_eq!(parse_on_off("ha_monitor", "enable"), Ok(true));
        assert!(parse_on_off("ha_monitor", "maybe").unwrap_err().contains("enable or disable"));
    }
}
