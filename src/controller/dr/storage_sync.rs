//! The storage state synchronization (seed 000 §2.4: before a move, and in `discover site`): a
//! host group's managed VMs' disks become one consistency group, replicated from the SAN of the
//! site the group runs at to the other site's. The controller writes the group's record first
//! (the record a primary SAN confirms its role against), sets the secondary's part, then the
//! primary's, and waits until the secondary holds a first full copy.
use super::Dr;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::pb;
use std::time::Duration;

/// How often the controller asks a SAN how far its replication is.
pub const POLL: Duration = Duration::from_millis(100);

/// Both sides of a host group's replication, as the records say.
pub struct Sides {
    pub record: ConsistencyGroupRecord,
    pub version: u64,
    pub primary: StorageAgentRecord,
    pub secondary: StorageAgentRecord,
}

impl Dr {
    /// The site that is not `site`.
    pub(super) async fn other_site(&self, site: &str) -> Result<SiteRecord> {
        let sites = self.hsdb.list::<SiteRecord>().await?;
        sites.into_iter().find(|s| s.name != site).ok_or_else(|| {
            VmrmError::precondition(format!(
                "site {site} has no other site to replicate to: run `ksysmgr add site` first"
            ))
        })
    }

    /// The managed VMs that run in `group` now.
    pub(super) async fn group_vms(&self, group: &HostGroupRecord) -> Result<Vec<VmRecord>> {
        let vms = self.hsdb.list::<VmRecord>().await?;
        Ok(vms.into_iter().filter(|v| v.managed && group.hosts.contains(&v.host)).collect())
    }

    /// Each host of the group with its pair at the other site.
    pub(super) async fn pairs(&self, group: &HostGroupRecord) -> Result<Vec<(HostRecord, String)>> {
        let mut out = Vec::new();
        for name in &group.hosts {
            let host = self.records.host(name).await?;
            let pair = host.pair.clone().ok_or_else(|| {
                VmrmError::precondition(format!(
                    "host {name} of host_group {} has no pair at the other site: run `ksysmgr pair host {name} pair=HOST` first",
                    group.name
                ))
            })?;
            out.push((host, pair));
        }
        Ok(out)
    }

    /// A host group's consistency group as recorded, with both SANs; `None` before its first
    /// synchronization.
    pub(super) async fn sides(&self, group: &str) -> Result<Option<Sides>> {
        let Some((record, version)) = self.hsdb.get::<ConsistencyGroupRecord>(group).await? else { return Ok(None) };
        let agent = |name: &str| {
            let name = name.to_string();
            async move {
                self.hsdb.get::<StorageAgentRecord>(&name).await?.map(|(a, _)| a).ok_or_else(|| {
                    VmrmError::not_found(format!(
                        "storage_agent {name} of host_group {group}'s replication is not added"
                    ))
                })
            }
        };
        let (primary, secondary) = (agent(&record.primary_san).await?, agent(&record.secondary_san).await?);
        Ok(Some(Sides { record, version, primary, secondary }))
    }

    /// What a move or a DR test of `group` to `site` starts from: a DR cluster, the site, the
    /// group and its replication (`what` names the command in the refusals).
    pub(super) async fn replicated(&self, group: &str, site: &str, what: &str) -> Result<(HostGroupRecord, Sides)> {
        self.config.dr_cluster(what).await?;
        self.config.site(site).await?;
        let (record, _) = self.records.host_group(group).await?;
        let sides = self.sides(group).await?.ok_or_else(|| {
            VmrmError::precondition(format!(
                "host_group {group} is not replicated to another site, which {what} starts from: run `ksysmgr discover site {}` first",
                record.site.as_deref().unwrap_or("SITE")
            ))
        })?;
        Ok((record, sides))
    }

    /// Changes `group`'s consistency group record by `change`, read again and redone when a
    /// concurrent write won.
    pub(super) async fn change_record(&self, group: &str, change: impl Fn(&mut ConsistencyGroupRecord)) -> Result<()> {
        crate::hsdb::client::retry_on_conflict(|| async {
            let (mut record, version) = self
                .hsdb
                .get::<ConsistencyGroupRecord>(group)
                .await?
                .ok_or_else(|| VmrmError::not_found(format!("host_group {group}'s replication record is gone")))?;
            change(&mut record);
            self.hsdb.put_if_version(&record, version).await.map(drop)
        })
        .await
    }

    /// Replicates `group` (running at its site) to the other site, and waits for the first copy.
    pub async fn synchronize(&self, group: &HostGroupRecord) -> Result<()> {
        let site = group.site.clone().ok_or_else(|| {
            VmrmError::precondition(format!("host_group {} is at no site (an HA cluster's)", group.name))
        })?;
        let other = self.other_site(&site).await?;
        self.pairs(group).await?;
        let disks: Vec<String> = self.group_vms(group).await?.into_iter().map(|v| v.disk).collect();
        let sides = match self.sides(&group.name).await? {
            Some(sides) if sides.record.moving.is_some() => {
                return Err(VmrmError::precondition(format!(
                    "host_group {} is being moved to {}",
                    group.name,
                    sides.record.moving.as_deref().unwrap_or_default()
                )));
            }
            Some(sides) if sides.record.primary_site != site => {
                return Err(VmrmError::precondition(format!(
                    "host_group {} runs at {site} but its replication's primary is at {}",
                    group.name, sides.record.primary_site
                )));
            }
            Some(sides) => sides,
            None => {
                let (primary, secondary) =
                    (self.config.storage_agent_of(&site).await?, self.config.storage_agent_of(&other.name).await?);
                let record = ConsistencyGroupRecord {
                    host_group: group.name.clone(),
                    generation: 1,
                    primary_site: site.clone(),
                    primary_san: primary.name.clone(),
                    secondary_site: other.name.clone(),
                    secondary_san: secondary.name.clone(),
                    consistent_point: 0,
                    moving: None,
                    dr_test: None,
                };
                let version = self.hsdb.put_if_version(&record, 0).await?;
                Sides { record, version, primary, secondary }
            }
        };
        let part = |role: pb::ReplicationRole, peer: &StorageAgentRecord| pb::ConsistencyGroup {
            name: group.name.clone(),
            generation: sides.record.generation,
            role: role as i32,
            peer: peer.endpoint.clone(),
            peer_name: peer.name.clone(),
            disks: disks.clone(),
            ..Default::default()
        };
        self.san
            .configure_group(&sides.secondary.endpoint, part(pb::ReplicationRole::Secondary, &sides.primary))
            .await?;
        self.san.configure_group(&sides.primary.endpoint, part(pb::ReplicationRole::Primary, &sides.secondary)).await?;
        self.wait_for(&sides.primary.endpoint, &group.name, "a first full copy at the secondary", |s| !s.needs_full)
            .await
            .map(drop)
    }

    /// Asks the SAN at `san` about `group` until `done` holds, within the synchronization's
    /// patience (twenty RPC deadlines).
    pub(super) async fn wait_for(
        &self,
        san: &str,
        group: &str,
        what: &str,
        done: impl Fn(&pb::GroupStatus) -> bool,
    ) -> Result<pb::GroupStatus> {
        let give_up = tokio::time::Instant::now() + self.timing.rpc_deadline * 20;
        loop {
            let last = self.san.query_group(san, group).await;
            match last {
                Ok(status) if done(&status) => return Ok(status),
                _ if tokio::time::Instant::now() >= give_up => {
                    let seen = last.map_or_else(|e| e.to_string(), |s| format!("{s:?}"));
                    return Err(VmrmError::unavailable(format!(
                        "host_group {group}: no {what} in time (the SAN at {san}: {seen})"
                    )));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}
