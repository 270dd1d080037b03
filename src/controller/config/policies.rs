//! `ksysmgr modify system|host_group|host|vm NAME attr=value …` (seed 000 §3, outputs from its
//! examples), `manage|unmanage vm`. Every attribute is parsed and checked, and every named
//! object read, before the first write: a bad value or an unknown name changes nothing.
use crate::controller::config::Config;
use crate::controller::detection::settings::DetectionChange;
use crate::domain::policy::{add_names, parse_on_off};
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::logic::policy::{check_affinity, parse_capacity};
use crate::profile::Timing;
use std::collections::{BTreeMap, BTreeSet};

/// The attributes each level takes, in the order outputs name them.
const SYSTEM: &[&str] = &["host_failure_detection_time", "vm_failure_detection_speed", "ha_monitor"];
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
const VM: &[&str] = &["vm_failure_detection_speed", "ha_monitor", "priority", "blacklist_hosts", "policy", "homehost"];

/// The attributes `modify CLASS` takes (None: not a class that can be modified).
pub fn attributes_of(class: &str) -> Option<&'static [&'static str]> {
    match class {
        "system" => Some(SYSTEM),
        "host_group" => Some(HOST_GROUP),
        "host" => Some(HOST),
        "vm" => Some(VM),
        _ => None,
    }
}

/// Every change one `modify` asks for, parsed.
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
    /// The attribute names given, in output order.
    names: Vec<&'static str>,
}

impl Changes {
    fn parse(timing: &Timing, class: &str, attrs: &BTreeMap<String, String>) -> Result<Self> {
        let allowed = attributes_of(class).ok_or_else(|| {
            VmrmError::invalid(format!("modify applies to system, host_group, host or vm, not {class}"))
        })?;
        if attrs.is_empty() {
            return Err(VmrmError::invalid(format!("nothing to modify: give one of {}", allowed.join("=, ") + "=")));
        }
        for key in attrs.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(VmrmError::invalid(format!(
                    "unknown attribute `{key}` for {class} (allowed: {})",
                    allowed.join(", ")
                )));
            }
        }
        if let Some(key) = attrs.iter().find_map(|(k, v)| v.trim().is_empty().then_some(k)) {
            return Err(VmrmError::invalid(format!("{key}= needs a value")));
        }
        let get = |k: &str| attrs.get(k).map(|v| v.trim());
        let invalid = VmrmError::invalid;
        let mut c = Changes {
            detection: DetectionChange::parse(
                timing,
                get("host_failure_detection_time"),
                get("vm_failure_detection_speed"),
            )?,
            ha_monitor: get("ha_monitor").map(|v| parse_on_off("ha_monitor", v)).transpose().map_err(invalid)?,
            restart_policy: get("restart_policy").map(str::parse).transpose().map_err(invalid)?,
            memory_capacity: get("memory_capacity")
                .map(|v| parse_capacity("memory_capacity", v))
                .transpose()
                .map_err(invalid)?,
            cpu_capacity: get("cpu_capacity")
                .map(|v| parse_capacity("cpu_capacity", v))
                .transpose()
                .map_err(invalid)?,
            priority: get("priority").map(str::parse).transpose().map_err(invalid)?,
            homehost: get("homehost").map(String::from),
            ..Default::default()
        };
        if let Some(hosts) = get("blacklist_hosts") {
            let add = match get("policy").unwrap_or("add").to_ascii_lowercase().as_str() {
                "add" => true,
                "delete" => false,
                other => return Err(invalid(format!("policy={other}: use add or delete"))),
            };
            let hosts: Vec<String> =
                hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect();
            c.blacklist = Some((hosts, add));
        } else if get("policy").is_some() {
            return Err(VmrmError::invalid("policy=add|delete goes with blacklist_hosts="));
        }
        let capacity = c.memory_capacity.is_some() || c.cpu_capacity.is_some();
        if class == "host_group" && capacity != c.priority.is_some() {
            return Err(VmrmError::invalid(
                "flexible capacity is set per priority: give memory_capacity= and/or cpu_capacity= with priority=low|medium|high",
            ));
        }
        c.names = allowed.iter().copied().filter(|k| *k != "policy" && get(k).is_some()).collect();
        Ok(c)
    }

    fn quoted(&self) -> String {
        self.names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    }
}

impl Config {
    pub async fn modify(&self, class: &str, name: &str, attrs: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let changes = Changes::parse(&self.timing, class, attrs)?;
        match class {
            "system" => {
                if !name.trim().is_empty() {
                    return Err(VmrmError::invalid(format!("modify system takes no name (got `{name}`)")));
                }
                let (mut cluster, version) = self.records.cluster_versioned().await?;
                changes.detection.apply(&mut cluster.detection);
                cluster.ha_monitor = changes.ha_monitor.or(cluster.ha_monitor);
                self.hsdb.put_if_version(&cluster, version).await?;
                Ok(changes.names.iter().map(|n| format!("KSYS {n} has been updated")).collect())
            }
            "host_group" => {
                let (mut group, version) = self.records.host_group(name).await?;
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
                Ok(vec![format!("For Host_group {name} attribute(s) {} was successfully modified.", changes.quoted())])
            }
            "host" => {
                let (mut host, version) = self
                    .hsdb
                    .get::<HostRecord>(name)
                    .await?
                    .ok_or_else(|| VmrmError::not_found(format!("host {} is not added", quote(name))))?;
                host.ha_monitor = changes.ha_monitor.or(host.ha_monitor);
                self.hsdb.put_if_version(&host, version).await?;
                Ok(vec![format!("For Host {name} attribute(s) {} was successfully modified.", changes.quoted())])
            }
            _ => self.modify_vms(name, &changes).await,
        }
    }

    /// Reads every named VM (refusing unknown ones and VMs with an operation in progress).
    async fn named_vms(&self, names: &str) -> Result<Vec<(VmRecord, u64)>> {
        let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            return Err(VmrmError::invalid("name the VMs: VM1[,VM2...]"));
        }
        let mut vms = Vec::with_capacity(names.len());
        for name in names {
            let (vm, version) = self.records.vm(name).await?;
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

    async fn modify_vms(&self, names: &str, c: &Changes) -> Result<Vec<String>> {
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
                    warnings.push(format!("WARNING: No backup host will be left for this VM {}.", vm.name));
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
            lines.push(format!("For VM {} attribute(s) {} was successfully modified.", vm.name, c.quoted()));
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
    pub async fn manage(&self, names: &str, manage: bool) -> Result<Vec<String>> {
        let vms = self.named_vms(names).await?;
        let word = if manage { "managed" } else { "unmanaged" };
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
            lines.push(format!("VM {} was successfully {word}. Please run discovery to apply changes", vm.name));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileName;

    fn parse(class: &str, attrs: &[(&str, &str)]) -> Result<Changes> {
        let attrs = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Changes::parse(&Timing::of(ProfileName::Seed), class, &attrs)
    }

    #[test]
    fn an_empty_value_is_refused_and_names_its_attribute() {
        for (class, key) in [("system", "host_failure_detection_time"), ("vm", "vm_failure_detection_speed")] {
            let err = parse(class, &[(key, " ")]).unwrap_err();
            assert!(matches!(err, VmrmError::InvalidArgument(_)), "{err:?}");
            assert!(err.to_string().contains(&format!("{key}= needs a value")), "{err}");
        }
    }

    #[test]
    fn a_detection_change_is_parsed_within_the_seeds_range() {
        let changes =
            parse("host_group", &[("host_failure_detection_time", "120"), ("vm_failure_detection_speed", "slow")]);
        let changes = changes.unwrap();
        assert_eq!(changes.detection.host_fdt, Some(std::time::Duration::from_secs(120)));
        assert_eq!(changes.detection.speed, Some(DetectionSpeed::Slow));
        let err = parse("system", &[("host_failure_detection_time", "30")]).unwrap_err();
        assert!(err.to_string().contains("90-600 seconds"), "{err}");
    }
}
