//! SU clusters (seed 001 §3, §5): `ksysmgr add|modify|remove|query su_cluster`, the status the
//! active controller keeps on each cluster (raising the seed's events when it changes), the
//! cluster's part in a live migration's pre-check, and `ksysmgr recover vm_definition`.
//!
//! The VM definitions the two units share are the VM rows of the HSDB (the seed's CRD): name,
//! uuid, size, disk and the unit that owns the definition (`host`). A definition moves to the
//! other unit with a live migration, or — when its unit is gone — with a recovery, which the
//! lease rule of [`su_cluster::may_recover`] allows only once that unit stopped writing alive
//! messages; the VM then starts on the recovering unit through the fenced restart sequence.
use crate::controller::messages as say;
use crate::controller::migration::Migration;
use crate::domain::names::{HostName, SuClusterName};
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::hsdb::client::retry_on_conflict;
use crate::logic::migration::precheck::ClusterState;
use crate::logic::su_cluster::{self, UnitFacts};
use crate::pb;
use std::time::Duration;

fn cluster_of<'a>(clusters: &'a [SuClusterRecord], host: &str) -> Option<&'a SuClusterRecord> {
    clusters.iter().find(|c| c.hosts.iter().any(|h| h == host))
}

/// A change of an SU cluster, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuClusterChange {
    /// Two server units sharing VM definitions.
    Add(Vec<HostName>),
    /// Active (live migration possible) or inactive.
    Activate(bool),
    Remove,
}

impl SuClusterChange {
    /// The SU cluster a request names and what it asks.
    pub fn from_wire(req: pb::SuClusterChange) -> Result<(SuClusterName, Self)> {
        let name = SuClusterName::parse(&req.name)?;
        let change = match (pb::ChangeAction::try_from(req.action), req.active) {
            (Ok(pb::ChangeAction::Add), None) => Self::Add(HostName::all(&req.hosts)?),
            (Ok(pb::ChangeAction::Modify), Some(active)) if req.hosts.is_empty() => Self::Activate(active),
            (Ok(pb::ChangeAction::Modify), None) => {
                return Err(VmrmError::invalid("modify su_cluster needs active (state=active|inactive)"));
            }
            (Ok(pb::ChangeAction::Remove), None) if req.hosts.is_empty() => Self::Remove,
            (Ok(action @ (pb::ChangeAction::Add | pb::ChangeAction::Modify | pb::ChangeAction::Remove)), _) => {
                return Err(VmrmError::invalid(format!(
                    "{}: add takes hosts, modify takes active, remove takes neither",
                    action.as_str_name()
                )));
            }
            _ => return Err(VmrmError::invalid(format!("action {} is not one of add, modify, remove", req.action))),
        };
        Ok((name, change))
    }
}

impl Migration {
    /// A unit's facts now: its last alive message and its VIOSs' host monitor heartbeats.
    async fn su_unit(&self, host: &str, alive: &[SuAliveRecord], monitors: &[HmHealthRecord]) -> UnitFacts {
        let now = crate::now_ms();
        let alive_age = alive
            .iter()
            .find(|a| a.host == host)
            .map(|a| Duration::from_millis(now.saturating_sub(a.at_ms).max(0) as u64));
        let vios = self.records.host(host).await.map_or(2, |h| h.vios.len());
        let down_after = self.timing.vios_down_after.as_millis() as i64;
        let healthy_vios =
            monitors.iter().filter(|m| m.host == host && now.saturating_sub(m.last_heartbeat_ms) <= down_after).count();
        UnitFacts { host: host.to_string(), alive_age, healthy_vios: healthy_vios.min(vios), vios }
    }

    /// The facts of every unit of `cluster`, in its order.
    async fn su_units(&self, cluster: &SuClusterRecord) -> Result<Vec<UnitFacts>> {
        let alive = self.hsdb.list::<SuAliveRecord>().await?;
        let monitors = self.hsdb.list::<HmHealthRecord>().await?;
        let mut units = Vec::new();
        for host in &cluster.hosts {
            units.push(self.su_unit(host, &alive, &monitors).await);
        }
        Ok(units)
    }

    /// `add|modify|remove su_cluster`.
    pub async fn change_su_cluster(&self, name: &SuClusterName, change: SuClusterChange) -> Result<Vec<pb::Step>> {
        let name = name.as_str();
        match change {
            SuClusterChange::Add(hosts) => self.add_su_cluster(name, &crate::domain::names::strings(hosts)).await,
            SuClusterChange::Activate(active) => {
                retry_on_conflict(|| async {
                    let (mut cluster, version) = self.su_cluster(name).await?;
                    cluster.active = active;
                    self.hsdb.put_if_version(&cluster, version).await
                })
                .await?;
                self.refresh_su_cluster(name).await?;
                let (cluster, _) = self.su_cluster(name).await?;
                Ok(vec![say::su_cluster_status(name, &cluster.status.to_string())])
            }
            SuClusterChange::Remove => {
                self.su_cluster(name).await?;
                self.hsdb.delete::<SuClusterRecord>(name).await?;
                Ok(vec![say::su_cluster_removed(name)])
            }
        }
    }

    async fn su_cluster(&self, name: &str) -> Result<(SuClusterRecord, u64)> {
        self.hsdb
            .get::<SuClusterRecord>(name)
            .await?
            .ok_or_else(|| VmrmError::not_found(format!("SU cluster {} does not exist", quote(name))))
    }

    /// Seed 001: exactly two units of one type (here: two hosts of one host group), each in at
    /// most one SU cluster.
    async fn add_su_cluster(&self, name: &str, hosts: &[String]) -> Result<Vec<pb::Step>> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect();
        if hosts.len() != 2 || hosts[0] == hosts[1] {
            return Err(VmrmError::invalid(format!(
                "an SU cluster has exactly two server units: hosts=HOST1,HOST2 ({} given)",
                hosts.len()
            )));
        }
        if self.hsdb.get::<SuClusterRecord>(name).await?.is_some() {
            return Err(VmrmError::AlreadyExists(format!("SU cluster {name} exists already")));
        }
        let mut groups = Vec::new();
        for h in &hosts {
            groups.push(self.records.host(h).await?.host_group);
        }
        if groups[0].is_none() || groups[0] != groups[1] {
            return Err(VmrmError::precondition(format!(
                "hosts {} and {} are not of one host_group: an SU cluster's units are of one type",
                hosts[0], hosts[1]
            )));
        }
        for other in self.hsdb.list::<SuClusterRecord>().await? {
            if let Some(h) = hosts.iter().find(|h| other.hosts.contains(h)) {
                return Err(VmrmError::precondition(format!(
                    "host {h} already belongs to SU cluster {}; a unit belongs to one SU cluster only",
                    other.name
                )));
            }
        }
        let cluster = SuClusterRecord {
            name: name.to_string(),
            hosts,
            active: true,
            status: SuClusterStatus::Normal,
            heartbeats: vec![UnitHeartbeat::Normal; 2],
        };
        self.hsdb.put_if_version(&cluster, 0).await?;
        self.refresh_su_cluster(name).await?;
        let (cluster, _) = self.su_cluster(name).await?;
        let status = cluster.status.to_string();
        Ok(vec![say::su_cluster_added(name, (&cluster.hosts[0], &cluster.hosts[1]), &status)])
    }

    /// Computes one cluster's status now; a change is stored and raises the seed's events (once:
    /// when another refresh or an administrator's change wrote the cluster meanwhile, it is
    /// computed again from what was written).
    pub async fn refresh_su_cluster(&self, name: &str) -> Result<SuClusterStatus> {
        retry_on_conflict(|| self.refresh_su_cluster_once(name)).await
    }

    async fn refresh_su_cluster_once(&self, name: &str) -> Result<SuClusterStatus> {
        let (mut cluster, version) = self.su_cluster(name).await?;
        let units = self.su_units(&cluster).await?;
        let lease = self.timing.su_alive_lease;
        let status = su_cluster::status(cluster.active, &units, lease);
        let heartbeats: Vec<UnitHeartbeat> = units.iter().map(|u| su_cluster::heartbeat(u, lease)).collect();
        let told =
            su_cluster::transitions(name, (cluster.status, &cluster.heartbeats), (status, &heartbeats), &cluster.hosts);
        if told.is_empty() {
            return Ok(status);
        }
        (cluster.status, cluster.heartbeats) = (status, heartbeats);
        self.hsdb.put_if_version(&cluster, version).await?;
        for message in told {
            let (event, subject) = match message.starts_with("Network heartbeat") {
                true => (EventName::UnitHeartbeatChanged, message.split('\'').nth(1).unwrap_or(name).to_string()),
                false => (EventName::ClusterStateChanged, name.to_string()),
            };
            self.hsdb.append_event(&EventRecord::new(event, subject, message)).await?;
        }
        Ok(status)
    }

    /// Every cluster, as the active controller's periodic check.
    pub async fn refresh_su_clusters(&self) -> Result<()> {
        for cluster in self.hsdb.list::<SuClusterRecord>().await? {
            self.refresh_su_cluster(&cluster.name).await?;
        }
        Ok(())
    }

    /// `query su_cluster [NAME]`, with each unit's heartbeat and alive message now.
    pub async fn query_su_cluster(&self, name: &str) -> Result<Vec<pb::SuClusterView>> {
        let clusters = match name {
            "" => self.hsdb.list::<SuClusterRecord>().await?,
            n => vec![self.su_cluster(n).await?.0],
        };
        let lease = self.timing.su_alive_lease;
        let mut out = Vec::new();
        for c in clusters {
            let units = self.su_units(&c).await?;
            let now = crate::now_ms();
            out.push(pb::SuClusterView {
                name: c.name.clone(),
                function: "Live migration".into(),
                status: su_cluster::status(c.active, &units, lease).into(),
                units: units
                    .iter()
                    .map(|u| pb::SuClusterUnit {
                        host: u.host.clone(),
                        network_heartbeat: su_cluster::heartbeat(u, lease).into(),
                        last_alive_ms: u.alive_age.map_or(0, |a| now - a.as_millis() as i64),
                        healthy_vios: u.healthy_vios as u32,
                        vios: u.vios as u32,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The SU cluster of `host`, if it is in one.
    async fn su_cluster_of(&self, host: &str) -> Result<Option<SuClusterRecord>> {
        Ok(cluster_of(&self.hsdb.list::<SuClusterRecord>().await?, host).cloned())
    }

    /// What the pre-check says of the cluster: hosts of one SU cluster migrate as its status
    /// allows; a host in an SU cluster migrates only to the other unit; hosts in none migrate
    /// within their host group.
    pub(in crate::controller) async fn lpm_cluster_state(
        &self,
        source: &HostRecord,
        target: &HostRecord,
        group: &HostGroupRecord,
    ) -> Result<ClusterState> {
        let clusters = self.hsdb.list::<SuClusterRecord>().await?;
        Ok(match (cluster_of(&clusters, &source.name), cluster_of(&clusters, &target.name)) {
            (None, None) if target.host_group.as_deref() == Some(group.name.as_str()) => ClusterState::Active,
            (Some(a), Some(b)) if a.name == b.name => {
                let units = self.su_units(a).await?;
                match su_cluster::status(a.active, &units, self.timing.su_alive_lease) {
                    SuClusterStatus::Inactive => ClusterState::Inactive,
                    SuClusterStatus::Error => ClusterState::Failed,
                    _ => ClusterState::Active,
                }
            }
            _ => ClusterState::NotShared,
        })
    }

    /// `recover vm_definition VM [host=LOCAL]`: the definition goes to the other unit of the
    /// VM's SU cluster, and the VM starts there — only once its unit's lease expired.
    pub async fn recover_vm_definition(&self, name: &str, local: &str) -> Result<Vec<pb::Step>> {
        let (vm, _) = self.records.restartable(name).await?;
        let cluster = self.su_cluster_of(&vm.host).await?.ok_or_else(|| {
            VmrmError::precondition(format!(
                "host {} of VM {name} is in no SU cluster; recover vm_definition works between the two units of one",
                vm.host
            ))
        })?;
        let other = cluster.hosts.iter().find(|h| **h != vm.host).cloned().unwrap_or_default();
        let local = match local {
            "" => other,
            l if l == vm.host => {
                return Err(VmrmError::invalid(format!("the definition of VM {name} is on host {l} already")));
            }
            l if l == other => other,
            l => {
                self.records.host(l).await?;
                return Err(VmrmError::precondition(format!(
                    "host {l} is not in SU cluster {} of host {}",
                    cluster.name, vm.host
                )));
            }
        };
        let units = self.su_units(&cluster).await?;
        let remote = units.iter().find(|u| u.host == vm.host).expect("a unit of its cluster");
        su_cluster::may_recover(remote, self.timing.su_alive_lease).map_err(VmrmError::precondition)?;
        let target = self.records.host(&local).await?;
        let inv = self.hmc.host_inventory(&target).await?;
        if inv.lpars.iter().any(|l| l.definition.as_ref().is_some_and(|d| d.name == name)) {
            return Err(VmrmError::precondition(format!("a VM named {name} is defined on host {local} already")));
        }
        if inv.lpars.len() >= inv.max_definitions as usize {
            return Err(VmrmError::precondition(format!(
                "host {local} has reached its maximum of {} VM definitions",
                inv.max_definitions
            )));
        }
        let group_name = target.host_group.clone().unwrap_or_default();
        let (group, _) = self.records.host_group(&group_name).await?;
        let message = format!("from host {} to host {local} (SU cluster {})", vm.host, cluster.name);
        self.hsdb.append_event(&EventRecord::new(EventName::VmDefinitionRecovered, name, message)).await?;
        let heading = say::vm_definition_recovered(name, &vm.host, &local);
        Ok(self.recovery.restart_one_vm(vm, &group, Some(&local), heading).await?.steps)
    }
}
