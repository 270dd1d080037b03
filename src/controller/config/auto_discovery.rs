//! Discovery the active controller runs by itself ([`crate::logic::discovery_schedule`]): each
//! discovered host group's Quick discovery every `quick_discovery_interval` — the HMCs'
//! inventory against the records ([`crate::logic::discovery_diff`]): a VM created, moved or
//! deleted outside vmrm is recorded so, with an event — and its Deep discovery (the same, then
//! the full discovery and verification) daily at `auto_discovery_time`.
use crate::controller::config::Config;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::hsdb::client::retry_on_conflict;
use crate::logic::discovery_diff::{Change, Seen, changes};
use crate::logic::discovery_schedule::{DiscoveryKind, due};
use crate::pb;

impl Config {
    /// Runs the discoveries that are due.
    pub async fn auto_discover(&self) -> Result<()> {
        let Some((cluster, _)) = self.hsdb.get::<ClusterRecord>("cluster").await? else { return Ok(()) };
        let now = crate::now_ms();
        for group in self.hsdb.list::<HostGroupRecord>().await?.into_iter().filter(|g| g.discovered) {
            match due(&cluster.discovery, group.last_deep_ms, group.last_quick_ms, now) {
                None => {}
                Some(kind) => {
                    tracing::info!(host_group = %group.name, "scheduled {kind:?} discovery");
                    let found = self.quick_discovery(&group.name).await?;
                    match kind {
                        DiscoveryKind::Deep => drop(self.discover(&group.name, true).await?),
                        DiscoveryKind::Quick => self.quick_discovered(&group.name, found).await?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Compares the group's hosts' inventories with the records and records what changed
    /// outside vmrm, each change with its event: how many changed.
    async fn quick_discovery(&self, group_name: &str) -> Result<usize> {
        let (group, _) = self.records.host_group(group_name).await?;
        let mut inventories = Vec::new();
        let mut lpars: Vec<(String, pb::Lpar)> = Vec::new();
        for host_name in &group.hosts {
            let host = self.records.host(host_name).await?;
            let seen = match self.hmc.host_inventory(&host).await {
                Ok(inv) if inv.state() == pb::HostState::Operating => {
                    // A DR test copy is no production VM.
                    let seen = inv.lpars.iter().filter_map(|l| {
                        let def = l.definition.as_ref().filter(|d| !d.isolated)?;
                        Some(Seen { name: def.name.clone(), running: l.state() == pb::LparState::Running })
                    });
                    let seen = seen.collect();
                    lpars.extend(inv.lpars.into_iter().map(|l| (host_name.clone(), l)));
                    Some(seen)
                }
                _ => None,
            };
            inventories.push((host_name.clone(), seen));
        }
        let found = changes(&self.hsdb.list::<VmRecord>().await?, &inventories);
        for change in &found {
            let event = match change {
                Change::Found { vm, host } => {
                    let lpar =
                        lpars.iter().find(|(h, l)| h == host && l.definition.as_ref().is_some_and(|d| &d.name == vm));
                    let Some(def) = lpar.and_then(|(_, l)| l.definition.clone()) else { continue };
                    let seen = LparDefinition::try_from(def)?;
                    self.hsdb.put_if_version(&VmRecord::discovered(&seen, host), 0).await?;
                    let message =
                        format!("VM {vm} runs on host {host} and was not managed: it is now (created outside vmrm)");
                    EventRecord::new(EventName::VmDiscovered, vm, message)
                }
                Change::Moved { vm, from, to } => {
                    let (mut record, version) = self.records.vm(vm).await?;
                    record.host = to.clone();
                    self.hsdb.put_if_version(&record, version).await?;
                    EventRecord::new(
                        EventName::VmMovedOutside,
                        vm,
                        format!("VM {vm} moved from host {from} to {to} outside vmrm"),
                    )
                }
                Change::Gone { vm, host } => {
                    self.hsdb.delete::<VmRecord>(vm).await?;
                    let message = format!(
                        "VM {vm} (host {host}) is defined on no host of host_group {group_name}: deleted outside vmrm, no longer managed"
                    );
                    EventRecord::new(EventName::VmRemovedOutside, vm, message)
                }
            };
            self.hsdb.append_event(&event).await?;
        }
        Ok(found.len())
    }

    /// Notes a Quick discovery of the group (`changed` VMs), with its event.
    async fn quick_discovered(&self, group_name: &str, changed: usize) -> Result<()> {
        retry_on_conflict(|| async {
            let (mut group, version) = self.records.host_group(group_name).await?;
            group.last_quick_ms = crate::now_ms();
            self.hsdb.put_if_version(&group, version).await
        })
        .await?;
        let message = format!("Quick discovery: {changed} VMs changed outside vmrm");
        self.hsdb.append_event(&EventRecord::new(EventName::DiscoveryCompleted, group_name, message)).await
    }
}
