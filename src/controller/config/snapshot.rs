//! `ksysmgr add snapshot`, `query snapshot`, `restore snapshot` (seed 000 §3.9). Taking one
//! reads the configuration and the policies of every level and keeps the document in the HSDB
//! (the newest [`KEPT`]); the client may write it to a file too. Restoring one onto a fresh
//! cluster goes the way an administrator would — HMCs, hosts and host groups added through the
//! same checks, each host group discovered — and then sets the policies of every level on what
//! discovery found; a VM of the snapshot that discovery did not find is named, not invented.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::domain::names::{ClusterName, HmcName, HostGroupName, HostName};
use crate::domain::snapshot::{
    ConfigSnapshot, FORMAT, HostGroupPolicies, HostPolicies, KEPT, SnapshotRecord, SystemPolicies, VmPolicies,
    snapshot_name,
};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, Table};
use crate::logic::detection::check_host_fdt;
use crate::logic::policy::check_affinity;
use crate::pb;

impl Config {
    /// The configuration as it is now, named and kept in the HSDB.
    pub async fn take_snapshot(&self) -> Result<(SnapshotRecord, Vec<pb::Step>)> {
        let cluster = self.records.cluster().await?;
        if cluster.cluster_type == "DR" {
            return Err(VmrmError::precondition(
                "snapshots hold an HA ksyscluster's configuration; a DR one's sites, storage agents and host pairs would be lost, so none is taken",
            ));
        }
        let taken_ms = crate::now_ms();
        let snapshot = ConfigSnapshot {
            format: FORMAT.into(),
            name: snapshot_name(&cluster.name, taken_ms),
            taken_ms,
            cluster: cluster.name.clone(),
            ksysnodes: cluster.ksysnodes.clone(),
            system: SystemPolicies {
                detection: cluster.detection,
                ha_monitor: cluster.ha_monitor,
                notification: cluster.notification.clone(),
                discovery: cluster.discovery,
            },
            hmcs: self.hsdb.list::<HmcRecord>().await?,
            hosts: (self.hsdb.list::<HostRecord>().await?.into_iter())
                .map(|h| HostPolicies { name: h.name, ha_monitor: h.ha_monitor })
                .collect(),
            host_groups: (self.hsdb.list::<HostGroupRecord>().await?.into_iter())
                .map(|g| HostGroupPolicies {
                    name: g.name,
                    hosts: g.hosts,
                    repo_disk: g.repo_disk,
                    ha_disk: g.ha_disk,
                    detection: g.detection,
                    restart_policy: g.restart_policy,
                    capacity: g.capacity,
                    ha_monitor: g.ha_monitor,
                })
                .collect(),
            vms: (self.hsdb.list::<VmRecord>().await?.into_iter())
                .map(|vm| VmPolicies {
                    name: vm.name,
                    managed: vm.managed,
                    priority: vm.priority,
                    homehost: vm.homehost,
                    blacklist_hosts: vm.blacklist_hosts,
                    ha_monitor: vm.ha_monitor,
                    vm_failure_detection_speed: vm.vm_failure_detection_speed,
                })
                .collect(),
            affinity: self.hsdb.list::<AffinityGroupRecord>().await?,
            contacts: self.hsdb.list::<NotifyRecord>().await?,
        };
        let content = serde_json::to_string_pretty(&snapshot).map_err(VmrmError::internal)?;
        let record = SnapshotRecord { name: snapshot.name.clone(), taken_ms, content };
        self.hsdb.put(&record).await?;
        let mut kept = self.hsdb.list::<SnapshotRecord>().await?;
        kept.sort_by_key(|s| std::cmp::Reverse(s.taken_ms));
        for old in kept.iter().skip(KEPT) {
            self.hsdb.delete::<SnapshotRecord>(&old.name).await?;
        }
        let lines = vec![say::snapshot_created(&record.name)];
        Ok((record, lines))
    }

    /// The snapshots kept, newest first; `name` picks one.
    pub async fn query_snapshot(&self, name: &str) -> Result<Vec<SnapshotRecord>> {
        let mut kept = self.hsdb.list::<SnapshotRecord>().await?;
        kept.sort_by_key(|s| std::cmp::Reverse(s.taken_ms));
        kept.retain(|s| name.is_empty() || s.name == name);
        if kept.is_empty() && !name.is_empty() {
            return Err(VmrmError::not_found(format!("snapshot {name} does not exist")));
        }
        Ok(kept)
    }

    /// A kept snapshot's document.
    pub async fn snapshot_content(&self, name: &str) -> Result<Vec<u8>> {
        let (record, _) = self
            .hsdb
            .get::<SnapshotRecord>(name)
            .await?
            .ok_or_else(|| VmrmError::not_found(format!("snapshot {name} does not exist")))?;
        Ok(record.content.into_bytes())
    }

    /// Restores `bytes` (a snapshot, checked whole first) onto this cluster, which must hold no
    /// HMC, host or host group yet.
    pub async fn restore_snapshot(&self, bytes: &[u8]) -> Result<Vec<pb::Step>> {
        let snapshot = ConfigSnapshot::parse(bytes)?;
        for fdt in std::iter::once(&snapshot.system.detection)
            .chain(snapshot.host_groups.iter().map(|g| &g.detection))
            .filter_map(|d| d.host_failure_detection_time)
        {
            check_host_fdt(fdt, &self.timing)?;
        }
        let priorities = snapshot.vms.iter().map(|v| (v.name.clone(), v.priority)).collect();
        check_affinity(&snapshot.affinity, &priorities).map_err(VmrmError::invalid)?;
        let (hmcs, hosts, groups) = (
            self.hsdb.list::<HmcRecord>().await?.len(),
            self.hsdb.list::<HostRecord>().await?.len(),
            self.hsdb.list::<HostGroupRecord>().await?.len(),
        );
        if hmcs + hosts + groups > 0 {
            return Err(VmrmError::precondition(format!(
                "restore snapshot needs a fresh cluster: this one has {hmcs} HMCs, {hosts} hosts and {groups} host groups"
            )));
        }
        let mut lines = Vec::new();
        if self.hsdb.get::<ClusterRecord>("cluster").await?.is_none() {
            let nodes = HostName::all(&snapshot.ksysnodes)?;
            lines.extend(self.add_cluster(&ClusterName::parse(&snapshot.cluster)?, false, nodes, false).await?);
        }
        for hmc in &snapshot.hmcs {
            lines.extend(self.add_hmc(&HmcName::parse(&hmc.name)?, (&hmc.login, &hmc.password), &hmc.ip, None).await?);
        }
        for host in &snapshot.hosts {
            lines.extend(self.add_host(&HostName::parse(&host.name)?).await?);
        }
        for group in &snapshot.host_groups {
            let (name, hosts) = (HostGroupName::parse(&group.name)?, HostName::all(&group.hosts)?);
            lines.extend(self.add_host_group(&name, hosts, group.repo_disk.clone(), group.ha_disk.clone()).await?);
            lines.extend(self.discover(name.as_str(), false).await?);
        }
        self.restore_policies(&snapshot, &mut lines).await?;
        lines.push(say::snapshot_restored(&snapshot.name));
        Ok(lines)
    }

    /// Every level's policies and the contacts, onto the records discovery made.
    async fn restore_policies(&self, s: &ConfigSnapshot, lines: &mut Vec<pb::Step>) -> Result<()> {
        let (mut cluster, version) = self.records.cluster_versioned().await?;
        cluster.detection = s.system.detection;
        cluster.ha_monitor = s.system.ha_monitor;
        cluster.notification = s.system.notification.clone();
        cluster.discovery = s.system.discovery;
        self.hsdb.put_if_version(&cluster, version).await?;
        for host in &s.hosts {
            let (mut record, version) = (self.hsdb.get::<HostRecord>(&host.name).await?)
                .ok_or_else(|| VmrmError::internal(format!("host {} vanished while it was restored", host.name)))?;
            record.ha_monitor = host.ha_monitor;
            self.hsdb.put_if_version(&record, version).await?;
        }
        for g in &s.host_groups {
            let (mut group, version) = self.records.host_group(&g.name).await?;
            (group.detection, group.restart_policy, group.capacity, group.ha_monitor) =
                (g.detection, g.restart_policy, g.capacity, g.ha_monitor);
            self.hsdb.put_if_version(&group, version).await?;
        }
        for p in &s.vms {
            let Some((mut vm, version)) = self.hsdb.get::<VmRecord>(&p.name).await? else {
                lines.push(say::snapshot_vm_missing(&p.name));
                continue;
            };
            vm.managed = p.managed;
            vm.priority = p.priority;
            vm.homehost = p.homehost.clone();
            vm.blacklist_hosts = p.blacklist_hosts.clone();
            vm.ha_monitor = p.ha_monitor;
            vm.vm_failure_detection_speed = p.vm_failure_detection_speed;
            self.hsdb.put_if_version(&vm, version).await?;
        }
        for group in &s.affinity {
            self.hsdb.put_if_version(group, 0).await?;
        }
        let through = self.hsdb.newest_sequence(Table::Event).await?;
        for user in &s.contacts {
            for contact in &user.contacts {
                let contact = Contact::parse(contact)?;
                self.hsdb.put(&DeliveryRecord::fresh(&user.user, &contact, through)).await?;
            }
            self.hsdb.put_if_version(user, 0).await?;
        }
        Ok(())
    }
}
