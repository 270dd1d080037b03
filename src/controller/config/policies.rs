//! `ksysmgr modify system|host_group|host|vm NAME attr=value …` (seed 000 §3, outputs from its
//! examples), `manage|unmanage vm`. The request arrives typed ([`Settings`]); every setting is
//! checked against what its level takes, and every named object read, before the first write: a
//! bad value or an unknown name changes nothing.
use crate::controller::config::Config;
use crate::controller::detection::settings::DetectionChange;
use crate::controller::messages as say;
use crate::controller::notify::smtp::Relay;
use crate::domain::names::{HostGroupName, HostName, VmName};
use crate::domain::policy::add_names;
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::hsdb::client::retry_on_conflict;
use crate::logic::detection::check_host_fdt;
use crate::logic::policy::check_affinity;
use crate::pb::{self, Settings, states::WireEnum};
use crate::profile::Timing;
use std::collections::BTreeSet;
use std::time::Duration;

/// The settings each level takes, in the order outputs name them.
const SYSTEM: &[&str] = &[
    "host_failure_detection_time",
    "vm_failure_detection_speed",
    "ha_monitor",
    "notification_level",
    "dup_event_processing",
    "smtp_relay",
    "smtp_sender",
    "auto_discovery_time",
    "quick_discovery_interval",
];
const HOST_GROUP: &[&str] = &[
    "host_failure_detection_time",
    "vm_failure_detection_speed",
    "ha_monitor",
    "restart_policy",
    "memory_capacity",
    "cpu_capacity",
    "priority",
];
const HOST: &[&str] = &["ha_monitor"];
const VM: &[&str] = &["vm_failure_detection_speed", "ha_monitor", "priority", "blacklist_hosts", "homehost"];

/// What a `modify` applies to, its objects' names checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModifyTarget {
    System,
    HostGroup(HostGroupName),
    Host(HostName),
    Vms(Vec<VmName>),
}

impl ModifyTarget {
    /// The target a request names: its level and the names that level takes.
    pub fn from_wire(level: i32, names: &[String]) -> Result<Self> {
        let one = |kind: &str| match names {
            [name] => Ok(name.as_str()),
            _ => Err(VmrmError::invalid(format!("modify {kind} names one {kind}, not {}", names.len()))),
        };
        match pb::ModifyLevel::try_from(level) {
            Ok(pb::ModifyLevel::System) if names.is_empty() => Ok(Self::System),
            Ok(pb::ModifyLevel::System) => Err(VmrmError::invalid("modify system takes no name")),
            Ok(pb::ModifyLevel::HostGroup) => Ok(Self::HostGroup(HostGroupName::parse(one("host_group")?)?)),
            Ok(pb::ModifyLevel::Host) => Ok(Self::Host(HostName::parse(one("host")?)?)),
            Ok(pb::ModifyLevel::Vm) if names.is_empty() => Err(VmrmError::invalid("modify vm needs the VMs' names")),
            Ok(pb::ModifyLevel::Vm) => Ok(Self::Vms(VmName::all(names)?)),
            _ => Err(VmrmError::invalid(format!("level {level} is not one of system, host_group, host, vm"))),
        }
    }

    /// The class as ksysmgr names it.
    pub fn class(&self) -> &'static str {
        match self {
            Self::System => "system",
            Self::HostGroup(_) => "host_group",
            Self::Host(_) => "host",
            Self::Vms(_) => "vm",
        }
    }

    fn allowed(&self) -> &'static [&'static str] {
        match self {
            Self::System => SYSTEM,
            Self::HostGroup(_) => HOST_GROUP,
            Self::Host(_) => HOST,
            Self::Vms(_) => VM,
        }
    }
}

/// Every change one `modify` asks for, checked.
#[derive(Debug, Default)]
struct Changes {
    detection: DetectionChange,
    ha_monitor: Option<bool>,
    restart_policy: Option<RestartPolicy>,
    memory_capacity: Option<u8>,
    cpu_capacity: Option<u8>,
    priority: Option<Priority>,
    /// Hosts to add to (true) or delete from (false) the blacklist.
    blacklist: Option<(Vec<String>, bool)>,
    homehost: Option<String>,
    notification_level: Option<NotificationLevel>,
    dup_event_processing: Option<bool>,
    /// A relay, or `None` to have none.
    smtp_relay: Option<Option<Relay>>,
    smtp_sender: Option<String>,
    auto_discovery_time_min: Option<u16>,
    quick_every_ms: Option<u64>,
    /// The settings given, in output order.
    names: Vec<&'static str>,
}

/// An enum setting: absent when the request leaves it UNSPECIFIED.
fn chosen<E: WireEnum>(field: &str, raw: i32) -> Result<Option<E>> {
    match raw {
        0 => Ok(None),
        raw => E::from_wire(field, raw).map(Some),
    }
}

/// `smtp_relay=HOST:PORT`, or `none`.
fn relay(raw: &str) -> Result<Option<Relay>> {
    match raw.eq_ignore_ascii_case("none") {
        true => Ok(None),
        false => Relay::parse(raw).map(Some),
    }
}

/// `auto_discovery_time=HH:MM` (UTC).
fn time_of_day(raw: &str) -> Result<u16> {
    crate::logic::discovery_schedule::parse_time_of_day(raw).ok_or_else(|| {
        VmrmError::invalid(format!("auto_discovery_time={} is not a time of day HH:MM (UTC)", quote(raw)))
    })
}

/// `quick_discovery_interval`: at most a day (0: none).
fn quick_every(ms: u64) -> Result<u64> {
    match ms <= 86_400_000 {
        true => Ok(ms),
        false => Err(VmrmError::invalid(format!("quick_discovery_interval of {ms} ms is over a day (1440 minutes)"))),
    }
}

/// `smtp_sender=ADDRESS`: an e-mail address.
fn sender(raw: &str) -> Result<String> {
    match raw.parse::<lettre::Address>() {
        Ok(_) if raw.len() <= 254 => Ok(raw.to_string()),
        _ => Err(VmrmError::invalid(format!("smtp_sender={} is not an e-mail address", quote(raw)))),
    }
}

fn capacity(field: &str, value: Option<u32>) -> Result<Option<u8>> {
    match value {
        None => Ok(None),
        Some(p @ 1..=100) => Ok(Some(p as u8)),
        Some(p) => Err(VmrmError::invalid(format!("{field}={p}: use a percentage 1-100"))),
    }
}

impl Changes {
    fn of(timing: &Timing, target: &ModifyTarget, s: &Settings) -> Result<Self> {
        let mut c = Changes {
            detection: DetectionChange {
                host_fdt: s
                    .host_failure_detection_time_ms
                    .map(|ms| check_host_fdt(Duration::from_millis(ms.into()), timing))
                    .transpose()?,
                speed: chosen("vm_failure_detection_speed", s.vm_failure_detection_speed)?,
            },
            ha_monitor: s.ha_monitor,
            restart_policy: chosen("restart_policy", s.restart_policy)?,
            memory_capacity: capacity("memory_capacity", s.memory_capacity)?,
            cpu_capacity: capacity("cpu_capacity", s.cpu_capacity)?,
            priority: chosen("priority", s.priority)?,
            homehost: s.homehost.as_deref().map(HostName::parse).transpose()?.map(String::from),
            notification_level: chosen("notification_level", s.notification_level)?,
            dup_event_processing: s.dup_event_processing,
            smtp_relay: s.smtp_relay.as_deref().map(relay).transpose()?,
            smtp_sender: s.smtp_sender.as_deref().map(sender).transpose()?,
            auto_discovery_time_min: s.auto_discovery_time.as_deref().map(time_of_day).transpose()?,
            quick_every_ms: s.quick_discovery_interval_ms.map(quick_every).transpose()?,
            ..Default::default()
        };
        if let Some(b) = &s.blacklist {
            if b.hosts.is_empty() {
                return Err(VmrmError::invalid("blacklist_hosts needs at least one host"));
            }
            c.blacklist = Some((crate::domain::names::strings(HostName::all(&b.hosts)?), !b.remove));
        }
        let given = [
            ("host_failure_detection_time", c.detection.host_fdt.is_some()),
            ("vm_failure_detection_speed", c.detection.speed.is_some()),
            ("ha_monitor", c.ha_monitor.is_some()),
            ("restart_policy", c.restart_policy.is_some()),
            ("memory_capacity", c.memory_capacity.is_some()),
            ("cpu_capacity", c.cpu_capacity.is_some()),
            ("priority", c.priority.is_some()),
            ("blacklist_hosts", c.blacklist.is_some()),
            ("homehost", c.homehost.is_some()),
            ("notification_level", c.notification_level.is_some()),
            ("dup_event_processing", c.dup_event_processing.is_some()),
            ("smtp_relay", c.smtp_relay.is_some()),
            ("smtp_sender", c.smtp_sender.is_some()),
            ("auto_discovery_time", c.auto_discovery_time_min.is_some()),
            ("quick_discovery_interval", c.quick_every_ms.is_some()),
        ];
        let (class, allowed) = (target.class(), target.allowed());
        if let Some((key, _)) = given.iter().find(|(key, set)| *set && !allowed.contains(key)) {
            return Err(VmrmError::invalid(format!(
                "`{key}` is not a setting of {class} (its settings: {})",
                allowed.join(", ")
            )));
        }
        c.names = allowed.iter().copied().filter(|k| given.iter().any(|(g, set)| g == k && *set)).collect();
        if c.names.is_empty() {
            return Err(VmrmError::invalid(format!("nothing to modify: give one of {}", allowed.join(", "))));
        }
        let capacity = c.memory_capacity.is_some() || c.cpu_capacity.is_some();
        if class == "host_group" && capacity != c.priority.is_some() {
            return Err(VmrmError::invalid(
                "flexible capacity is set per priority: give memory_capacity and/or cpu_capacity with priority low, medium or high",
            ));
        }
        Ok(c)
    }

    fn quoted(&self) -> String {
        self.names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    }
}

impl Config {
    pub async fn modify(&self, target: &ModifyTarget, settings: &Settings) -> Result<Vec<pb::Step>> {
        let changes = Changes::of(&self.timing, target, settings)?;
        match target {
            // One row each, read again if a background job wrote it meanwhile.
            ModifyTarget::System => {
                retry_on_conflict(|| async {
                    let (mut cluster, version) = self.records.cluster_versioned().await?;
                    changes.detection.apply(&mut cluster.detection);
                    cluster.ha_monitor = changes.ha_monitor.or(cluster.ha_monitor);
                    self.change_notification(&mut cluster.notification, &changes).await?;
                    let d = &mut cluster.discovery;
                    d.auto_discovery_time_min = changes.auto_discovery_time_min.unwrap_or(d.auto_discovery_time_min);
                    d.quick_every_ms = changes.quick_every_ms.unwrap_or(d.quick_every_ms);
                    self.hsdb.put_if_version(&cluster, version).await?;
                    Ok(changes.names.iter().map(|n| say::ksys_setting_updated(n)).collect())
                })
                .await
            }
            ModifyTarget::HostGroup(name) => {
                retry_on_conflict(|| async {
                    let (mut group, version) = self.records.host_group(name.as_str()).await?;
                    changes.detection.apply(&mut group.detection);
                    group.ha_monitor = changes.ha_monitor.or(group.ha_monitor);
                    group.restart_policy = changes.restart_policy.unwrap_or(group.restart_policy);
                    if let Some(p) = changes.priority {
                        if let Some(m) = changes.memory_capacity {
                            group.capacity.memory.set(p, m);
                        }
                        if let Some(c) = changes.cpu_capacity {
                            group.capacity.cpu.set(p, c);
                        }
                    }
                    self.hsdb.put_if_version(&group, version).await?;
                    Ok(vec![say::host_group_modified(name.as_str(), &changes.quoted())])
                })
                .await
            }
            ModifyTarget::Host(name) => {
                retry_on_conflict(|| async {
                    let (mut host, version) =
                        self.hsdb.get::<HostRecord>(name.as_str()).await?.ok_or_else(|| {
                            VmrmError::not_found(format!("host {} is not added", quote(name.as_str())))
                        })?;
                    host.ha_monitor = changes.ha_monitor.or(host.ha_monitor);
                    self.hsdb.put_if_version(&host, version).await?;
                    Ok(vec![say::host_modified(name.as_str(), &changes.quoted())])
                })
                .await
            }
            ModifyTarget::Vms(names) => self.modify_vms(names, &changes).await,
        }
    }

    /// The notification settings `c` asks for; a relay must answer, and none can be unset
    /// while a contact is an e-mail address.
    async fn change_notification(&self, n: &mut NotificationSettings, c: &Changes) -> Result<()> {
        match &c.smtp_relay {
            Some(Some(relay)) => relay.check().await?,
            Some(None) => {
                let contacts = self.hsdb.list::<NotifyRecord>().await?;
                let mail = contacts.iter().flat_map(|u| &u.contacts).find(|c| !c.contains("://"));
                if let Some(mail) = mail {
                    return Err(VmrmError::precondition(format!(
                        "contact {mail} is an e-mail address: delete the e-mail contacts before smtp_relay=none"
                    )));
                }
            }
            None => {}
        }
        n.level = c.notification_level.unwrap_or(n.level);
        n.dup_event_processing = c.dup_event_processing.unwrap_or(n.dup_event_processing);
        if let Some(relay) = &c.smtp_relay {
            n.smtp_relay = relay.as_ref().map(Relay::to_string);
        }
        n.smtp_sender = c.smtp_sender.clone().or(n.smtp_sender.take());
        Ok(())
    }

    /// Reads every named VM (refusing unknown ones and VMs with an operation in progress).
    async fn named_vms(&self, names: &[VmName]) -> Result<Vec<(VmRecord, u64)>> {
        if names.is_empty() {
            return Err(VmrmError::invalid("name the VMs"));
        }
        let mut vms = Vec::with_capacity(names.len());
        for name in names {
            let (vm, version) = self.records.vm(name.as_str()).await?;
            if vm.vm_status != VmStatus::NoOperationInProgress {
                return Err(VmrmError::precondition(format!(
                    "VM {name} has an operation in progress ({}); try again when it ends",
                    vm.vm_status
                )));
            }
            vms.push((vm, version));
        }
        Ok(vms)
    }

    async fn modify_vms(&self, names: &[VmName], c: &Changes) -> Result<Vec<pb::Step>> {
        let mut vms = self.named_vms(names).await?;
        for host in c.blacklist.iter().flat_map(|(h, _)| h).chain(&c.homehost) {
            self.records.host(host).await?;
        }
        let mut warnings = Vec::new();
        for (vm, _) in vms.iter_mut() {
            vm.vm_failure_detection_speed = c.detection.speed.or(vm.vm_failure_detection_speed);
            vm.ha_monitor = c.ha_monitor.or(vm.ha_monitor);
            vm.priority = c.priority.unwrap_or(vm.priority);
            if let Some(home) = &c.homehost {
                self.check_same_group(vm, home).await?;
                vm.homehost = home.clone();
            }
            if let Some((hosts, add)) = &c.blacklist {
                match add {
                    true => add_names(&mut vm.blacklist_hosts, hosts),
                    false => vm.blacklist_hosts.retain(|h| !hosts.contains(h)),
                }
                if *add && !self.has_backup_host(vm).await? {
                    warnings.push(say::no_backup_host(&vm.name));
                }
            }
        }
        if c.priority.is_some() {
            let mut priorities = self.records.priorities().await?;
            priorities.extend(vms.iter().map(|(vm, _)| (vm.name.clone(), vm.priority)));
            check_affinity(&self.hsdb.list::<AffinityGroupRecord>().await?, &priorities)
                .map_err(VmrmError::precondition)?;
        }
        let mut lines = warnings;
        for (vm, version) in vms {
            self.hsdb.put_if_version(&vm, version).await?;
            lines.push(say::vm_modified(&vm.name, &c.quoted()));
        }
        Ok(lines)
    }

    async fn check_same_group(&self, vm: &VmRecord, host: &str) -> Result<()> {
        let (now, there) = (self.records.host(&vm.host).await?, self.records.host(host).await?);
        match now.host_group.is_some() && now.host_group == there.host_group {
            true => Ok(()),
            false => Err(VmrmError::precondition(format!(
                "host {host} is not in the host_group of VM {} (host {})",
                vm.name, vm.host
            ))),
        }
    }

    /// Another host of the VM's host group is left for it to restart on.
    async fn has_backup_host(&self, vm: &VmRecord) -> Result<bool> {
        let host = self.records.host(&vm.host).await?;
        let Some(group) = host.host_group else { return Ok(false) };
        let (group, _) = self.records.host_group(&group).await?;
        Ok(group.hosts.iter().any(|h| h != &vm.host && !vm.blacklist_hosts.contains(h)))
    }

    /// `ksysmgr manage|unmanage vm NAME[,NAME…]`.
    pub async fn manage(&self, names: &[VmName], manage: bool) -> Result<Vec<pb::Step>> {
        let vms = self.named_vms(names).await?;
        let mut lines = Vec::with_capacity(vms.len());
        let unique: BTreeSet<&str> = vms.iter().map(|(v, _)| v.name.as_str()).collect();
        if unique.len() != vms.len() {
            return Err(VmrmError::invalid("a VM is named more than once"));
        }
        for (mut vm, version) in vms {
            vm.managed = manage;
            if !manage {
                vm.state = VmState::Init;
            }
            self.hsdb.put_if_version(&vm, version).await?;
            lines.push(say::vm_managed(&vm.name, manage));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileName;

    fn of(target: ModifyTarget, settings: Settings) -> Result<Changes> {
        Changes::of(&Timing::of(ProfileName::Seed), &target, &settings)
    }

    fn group() -> ModifyTarget {
        ModifyTarget::HostGroup(HostGroupName::parse("HG1").unwrap())
    }

    #[test]
    fn a_detection_change_is_checked_within_the_seeds_range() {
        let settings = Settings {
            host_failure_detection_time_ms: Some(120_000),
            vm_failure_detection_speed: pb::DetectionSpeed::Slow as i32,
            ..Default::default()
        };
        let changes = of(group(), settings).unwrap();
        assert_eq!(changes.detection.host_fdt, Some(Duration::from_secs(120)));
        assert_eq!(changes.detection.speed, Some(DetectionSpeed::Slow));
        assert_eq!(changes.quoted(), "'host_failure_detection_time', 'vm_failure_detection_speed'");
        let short = Settings { host_failure_detection_time_ms: Some(30_000), ..Default::default() };
        let err = of(ModifyTarget::System, short).unwrap_err();
        assert!(err.to_string().contains("90-600 seconds"), "{err}");
    }

    #[test]
    fn unknown_numbers_empty_names_and_settings_of_another_level_are_refused() {
        let speed = Settings { vm_failure_detection_speed: 9, ..Default::default() };
        assert!(of(ModifyTarget::System, speed).unwrap_err().to_string().contains("9 is not one of"));
        let homehost = Settings { homehost: Some(String::new()), ..Default::default() };
        let vms = ModifyTarget::Vms(vec![VmName::parse("vm-1").unwrap()]);
        assert!(matches!(of(vms.clone(), homehost), Err(VmrmError::InvalidArgument(_))));
        let policy = Settings { restart_policy: pb::RestartPolicy::AdvisoryMode as i32, ..Default::default() };
        assert!(of(vms, policy).unwrap_err().to_string().contains("not a setting of vm"));
        let e = of(ModifyTarget::System, Settings::default()).unwrap_err().to_string();
        assert!(e.contains("nothing to modify"), "{e}");
        let capacity =
            Settings { memory_capacity: Some(101), priority: pb::Priority::Low as i32, ..Default::default() };
        assert!(of(group(), capacity).unwrap_err().to_string().contains("1-100"));
        let alone = Settings { memory_capacity: Some(60), ..Default::default() };
        assert!(of(group(), alone).unwrap_err().to_string().contains("per priority"));
    }

    #[test]
    fn a_target_names_what_its_level_takes() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let level = |l: pb::ModifyLevel| l as i32;
        assert_eq!(ModifyTarget::from_wire(level(pb::ModifyLevel::System), &[]).unwrap(), ModifyTarget::System);
        assert!(ModifyTarget::from_wire(level(pb::ModifyLevel::System), &names(&["x"])).is_err());
        assert!(ModifyTarget::from_wire(level(pb::ModifyLevel::Host), &names(&["h1", "h2"])).is_err());
        assert!(ModifyTarget::from_wire(level(pb::ModifyLevel::Vm), &names(&["a", "../b"])).is_err());
        assert!(ModifyTarget::from_wire(0, &[]).unwrap_err().to_string().contains("level 0"));
        let vms = ModifyTarget::from_wire(level(pb::ModifyLevel::Vm), &names(&["a", "b"])).unwrap();
        assert_eq!(vms.class(), "vm");
    }
}
