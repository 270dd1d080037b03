//! Records → the admin API's query replies (field names follow the seed's `ksysmgr query`).
use crate::controller::gateway::{HmcGateway, SanGateway};
use crate::controller::records::Records;
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::hsdb::LocalHsdb;
use crate::logic::detection::{Levels, host_fdt_range};
use crate::logic::event_page::EventKinds;
use crate::logic::event_page::EventPage;
use crate::logic::health::{VmMonitorState, vios_health, vm_monitor_state};
use crate::pb;
use crate::pb::states::WireEnum;
use crate::profile::Timing;
use std::collections::BTreeMap;

/// Keeps the records named `name` (all when empty); an unknown name is an error.
fn select<R>(kind: &str, name: &str, records: Vec<R>, name_of: impl Fn(&R) -> &str) -> Result<Vec<R>> {
    if name.is_empty() {
        return Ok(records);
    }
    let found: Vec<R> = records.into_iter().filter(|r| name_of(r) == name).collect();
    match found.is_empty() {
        true => Err(VmrmError::not_found(format!("{kind} {} does not exist", quote(name)))),
        false => Ok(found),
    }
}

/// What the queries read: the records, the HMCs' live view, the timing in force.
#[derive(Clone)]
pub struct Views {
    hsdb: LocalHsdb,
    timing: Timing,
    hmc: HmcGateway,
    san: SanGateway,
    records: Records,
}

impl Views {
    pub fn new(hsdb: LocalHsdb, timing: Timing, (hmc, san): (HmcGateway, SanGateway), records: Records) -> Self {
        Self { hsdb, timing, hmc, san, records }
    }

    /// A host group's replication, as its record and both SANs tell it.
    async fn replication(&self, group: &str) -> Result<Option<pb::ReplicationView>> {
        let Some((record, _)) = self.hsdb.get::<ConsistencyGroupRecord>(group).await? else { return Ok(None) };
        let endpoint = |name: String| async move {
            let agent = self.hsdb.get::<StorageAgentRecord>(&name).await?;
            agent.map(|(a, _)| a.endpoint).ok_or_else(|| VmrmError::not_found(format!("storage_agent {name} is gone")))
        };
        let mut view = pb::ReplicationView {
            generation: record.generation,
            primary_san: record.primary_san.clone(),
            secondary_san: record.secondary_san.clone(),
            moving: record.moving.clone().unwrap_or_default(),
            dr_test_site: record.dr_test.as_ref().map(|t| t.site.clone()).unwrap_or_default(),
            dr_test_started_ms: record.dr_test.as_ref().map_or(0, |t| t.started_ms),
            dr_test_copies: record
                .dr_test
                .iter()
                .flat_map(|t| t.copies.iter().map(|(c, h)| format!("{c} on {h}")))
                .collect(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        match self.san.query_group(&endpoint(record.primary_san.clone()).await?, group).await {
            Ok(p) => {
                (view.lag_writes, view.lag_ms, view.writable) = (p.lag_writes, p.lag_ms, p.writable);
                view.lost_writes = view.lost_writes.max(p.lost_writes);
            }
            Err(e) => errors.push(format!("{}: {e}", record.primary_san)),
        }
        match self.san.query_group(&endpoint(record.secondary_san.clone()).await?, group).await {
            Ok(s) => {
                view.consistent_at_ms = s.consistent_at_ms;
                view.lost_writes = view.lost_writes.max(s.lost_writes);
            }
            Err(e) => errors.push(format!("{}: {e}", record.secondary_san)),
        }
        view.error = errors.join("; ");
        Ok(Some(view))
    }

    pub async fn query_cluster(&self) -> Result<Vec<pb::ClusterView>> {
        let cluster = self.records.cluster().await?;
        Ok(vec![pb::ClusterView {
            name: cluster.name,
            r#type: cluster.cluster_type,
            ksysnodes: cluster.ksysnodes,
            active_controller: self.hsdb.node().leader_endpoint().unwrap_or_default(),
        }])
    }

    pub async fn query_hmc(&self, name: &str) -> Result<Vec<pb::HmcView>> {
        let hmcs = select("HMC", name, self.hsdb.list::<HmcRecord>().await?, |h| &h.name)?;
        let mut out = Vec::new();
        for hmc in hmcs {
            let (error, managed_hosts) = match self.hmc.inventory(&hmc, "").await {
                Ok(inv) => {
                    (None, inv.hosts.into_iter().map(|h| pb::ManagedHost { name: h.name, uuid: h.uuid }).collect())
                }
                Err(e) => (Some(e.to_string()), Vec::new()),
            };
            out.push(pb::HmcView {
                name: hmc.name,
                ip: hmc.ip,
                login: hmc.login,
                managed_hosts,
                connected: error.is_none(),
                error,
            });
        }
        Ok(out)
    }

    pub async fn query_host(&self, name: &str) -> Result<Vec<pb::HostView>> {
        let hosts = select("host", name, self.hsdb.list::<HostRecord>().await?, |h| &h.name)?;
        let vms = self.hsdb.list::<VmRecord>().await?;
        let speeds = self.group_speeds().await?;
        let groups = self.group_ha_monitor().await?;
        let mut out = Vec::new();
        for h in hosts {
            let group_ha = h.host_group.as_ref().and_then(|g| groups.get(g)).copied().flatten();
            let state = match self.hmc.host_inventory(&h).await {
                Ok(inv) => inv.state(),
                Err(_) => HostState::NoConnection.into(),
            };
            let (cpu_used, memory_used_mb) =
                vms.iter().filter(|v| v.host == h.name).fold((0, 0), |(c, m), v| (c + v.cpu, m + v.memory_mb));
            out.push(pb::HostView {
                name: h.name,
                uuid: h.uuid,
                vios: h.vios,
                hmcs: h.hmcs,
                ha_monitor: h.ha_monitor.or(group_ha).unwrap_or(true),
                vm_failure_detection_speed: h
                    .host_group
                    .as_ref()
                    .and_then(|g| speeds.get(g))
                    .copied()
                    .unwrap_or_default()
                    .into(),
                host_group: h.host_group,
                state: state.into(),
                cpu_total: h.cpu_total,
                memory_total_mb: h.memory_total_mb,
                cpu_used,
                memory_used_mb,
            });
        }
        Ok(out)
    }

    pub async fn query_host_group(&self, name: &str) -> Result<Vec<pb::HostGroupView>> {
        let groups = select("host_group", name, self.hsdb.list::<HostGroupRecord>().await?, |g| &g.name)?;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let levels = self.records.detection_levels(&g).await?;
            let replication = self.replication(&g.name).await?;
            out.push(pb::HostGroupView {
                site: g.site.clone().unwrap_or_default(),
                replication,
                repo_disk: g.repo_disk.clone(),
                ha_disk: g.ha_disk.clone(),
                name: g.name,
                hosts: g.hosts,
                ha_monitor: g.ha_monitor.unwrap_or(true),
                restart_policy: g.restart_policy.into(),
                vm_failure_detection_speed: levels.speed(None).into(),
                host_failure_detection_time_ms: levels.host_failure_detection_time().as_millis() as u32,
                discovered: g.discovered,
                memory_capacity: percents(&g.capacity.memory),
                cpu_capacity: percents(&g.capacity.cpu),
            });
        }
        Ok(out)
    }

    pub async fn query_vios(&self, name: &str) -> Result<Vec<pb::ViosView>> {
        let vioses = select("VIOS", name, self.hsdb.list::<ViosRecord>().await?, |v| &v.name)?;
        let health: BTreeMap<String, HmHealthRecord> =
            self.hsdb.list::<HmHealthRecord>().await?.into_iter().map(|h| (h.vios_uuid.clone(), h)).collect();
        let now = crate::now_ms();
        let down_after = self.timing.vios_down_after;
        Ok(vioses
            .into_iter()
            .map(|v| {
                let row = health.get(&v.uuid);
                let h = vios_health(&v.uuid, row, now, down_after);
                pb::ViosView {
                    name: v.name,
                    uuid: v.uuid,
                    host: v.host,
                    version: v.version,
                    managed: true,
                    endpoint: v.endpoint,
                    healthy: h.up,
                    hm_incarnation: row.map(|r| r.incarnation.clone()).unwrap_or_default(),
                }
            })
            .collect())
    }

    pub async fn query_vm(&self, name: &str) -> Result<Vec<pb::VmView>> {
        let vms = select("VM", name, self.hsdb.list::<VmRecord>().await?, |v| &v.name)?;
        let speeds = self.group_speeds().await?;
        let host_records = self.hsdb.list::<HostRecord>().await?;
        let group_of: BTreeMap<String, String> =
            host_records.iter().filter_map(|h| Some((h.name.clone(), h.host_group.clone()?))).collect();
        let groups = self.group_ha_monitor().await?;
        let host_ha: BTreeMap<String, HaMonitor> = host_records
            .into_iter()
            .map(|h| (h.name, h.ha_monitor.or(h.host_group.and_then(|g| groups.get(&g).copied().flatten()))))
            .collect();
        let mut vios_uuids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in self.hsdb.list::<ViosRecord>().await? {
            vios_uuids.entry(v.host).or_default().push(v.uuid);
        }
        let missed_rows = self.hsdb.list::<VmHbMissedRecord>().await?;
        let now = crate::now_ms();
        let mut lpar_states: BTreeMap<(String, String), LparState> = BTreeMap::new();
        let hosts: std::collections::BTreeSet<&str> = vms.iter().map(|v| v.host.as_str()).collect();
        for host in hosts {
            let Ok(record) = self.records.host(host).await else {
                continue;
            };
            // A host its HMCs cannot reach shows its partitions as the HMC would: Not Available.
            if let Ok(inv) = self.hmc.host_inventory(&record).await
                && inv.state() == pb::HostState::Operating
            {
                for l in inv.lpars {
                    if let (Some(d), Ok(state)) = (l.definition, LparState::from_wire("state", l.state)) {
                        lpar_states.insert((host.to_string(), d.name), state);
                    }
                }
            }
        }
        Ok(vms
            .into_iter()
            .map(|v| {
                let no_vios = Vec::new();
                let monitors = vios_uuids.get(&v.host).unwrap_or(&no_vios);
                let (ha_monitor_state, missed_hb_ms) = match vm_monitor_state(&v.uuid, monitors, &missed_rows, now) {
                    VmMonitorState::Started => (pb::HaMonitorState::Started, 0),
                    VmMonitorState::Suspended => (pb::HaMonitorState::Suspended, 0),
                    VmMonitorState::Missing(ms) => (pb::HaMonitorState::Missing, ms),
                };
                let speed = v
                    .vm_failure_detection_speed
                    .or_else(|| group_of.get(&v.host).and_then(|g| speeds.get(g)).copied())
                    .unwrap_or_default();
                let vm_ha = v.ha_monitor.or(host_ha.get(&v.host).copied().flatten()).unwrap_or(true);
                pb::VmView {
                    lpar_state: lpar_states
                        .remove(&(v.host.clone(), v.name.clone()))
                        .unwrap_or(LparState::NotAvailable)
                        .into(),
                    name: v.name,
                    uuid: v.uuid,
                    state: v.state.into(),
                    host: v.host,
                    priority: v.priority.into(),
                    vm_failure_detection_speed: speed.into(),
                    ha_monitor: vm_ha,
                    blacklist_hosts: v.blacklist_hosts,
                    restart: v.restart.map(|r| pb::LastRestart {
                        task: r.task,
                        target: r.target,
                        phase: r.phase.into(),
                    }),
                    homehost: v.homehost,
                    vm_status: v.vm_status.into(),
                    managed: v.managed,
                    cpu: v.cpu,
                    memory_mb: v.memory_mb,
                    epoch: v.epoch,
                    ha_monitor_state: ha_monitor_state as i32,
                    missed_hb_ms,
                    vm_restart_count: v.vm_restart_count,
                    dr_identities: v
                        .site_identities
                        .iter()
                        .map(|(site, i)| format!("{site}: {} {}/{} via {}", i.hostname, i.ip, i.netmask, i.gateway))
                        .collect(),
                }
            })
            .collect())
    }

    /// Each host group's own `ha_monitor` setting.
    async fn group_ha_monitor(&self) -> Result<BTreeMap<String, HaMonitor>> {
        Ok(self.hsdb.list::<HostGroupRecord>().await?.into_iter().map(|g| (g.name, g.ha_monitor)).collect())
    }

    /// Each host group's `vm_failure_detection_speed` in force (its own, or the system's).
    async fn group_speeds(&self) -> Result<BTreeMap<String, DetectionSpeed>> {
        let levels = self.records.detection_levels_by_group().await?;
        Ok(levels.into_iter().map(|(name, l)| (name, l.speed(None))).collect())
    }

    /// The applications the agents reported, of one VM (`name`) or of all.
    pub async fn query_app(&self, vm: &str) -> Result<Vec<pb::AppView>> {
        if !vm.is_empty() && self.hsdb.get::<VmRecord>(vm).await?.is_none() {
            return Err(VmrmError::NotFound(format!("VM {vm} is not known; see ksysmgr query vm")));
        }
        let rows = self.hsdb.list::<AppRecord>().await?;
        Ok(rows
            .into_iter()
            .filter(|r| vm.is_empty() || r.vm == vm)
            .map(|r| pb::AppView {
                name: r.app.name,
                status: r.app.state.color().into(),
                app_id: r.app.uuid,
                vm: r.vm,
                critical: r.app.critical,
                max_restart: r.app.max_restart,
                monitoring: r.app.monitored,
                state: r.app.state.into(),
                restarts: r.app.restarts,
            })
            .collect())
    }

    /// Every record of append-only table `table`, with its sequence number.
    async fn appended<R: serde::de::DeserializeOwned>(&self, table: crate::hsdb::Table) -> Result<Vec<(u64, R)>> {
        let rows = self.hsdb.read(table, None).await?;
        rows.into_iter()
            .map(|row| {
                let r: R = serde_json::from_value(row.value).map_err(VmrmError::internal)?;
                Ok((row.key.parse().map_err(VmrmError::internal)?, r))
            })
            .collect()
    }

    /// One page of the audit trail.
    pub async fn query_audit(&self, page: &EventPage) -> Result<pb::AuditList> {
        let records = self.appended::<crate::domain::AuditRecord>(crate::hsdb::Table::Audit).await?;
        let (records, older_before) = page.select(records);
        let entries = records
            .into_iter()
            .map(|(sequence, a)| pb::AuditView {
                sequence,
                at_ms: a.at_ms,
                principal: a.principal,
                action: a.action,
                object: a.object,
                stage: a.stage.to_string(),
                detail: a.detail,
            })
            .collect();
        Ok(pb::AuditList { entries, older_before })
    }

    /// One page of the events `page` asks for.
    pub async fn query_event(&self, page: &EventPage, kinds: EventKinds) -> Result<pb::EventList> {
        let acks = self.acknowledged().await?;
        let mut events = self.appended::<EventRecord>(crate::hsdb::Table::Event).await?;
        events.retain(|(sequence, e)| kinds.keeps(*sequence, e, &acks));
        let (events, older_before) = page.select(events);
        let events = events.into_iter().map(|(sequence, e)| event_view(sequence, e, &acks)).collect();
        Ok(pb::EventList { events, older_before })
    }

    /// The events acknowledged so far.
    pub async fn acknowledged(&self) -> Result<AckRecord> {
        Ok(self.hsdb.get::<AckRecord>(AckRecord::KEY).await?.map(|(a, _)| a).unwrap_or_default())
    }

    pub async fn query_system(&self) -> Result<pb::SystemView> {
        let cluster = self.hsdb.get::<ClusterRecord>("cluster").await?.map(|(c, _)| c);
        let system = cluster.as_ref().map(|c| c.detection).unwrap_or_default();
        let levels = Levels { timing: self.timing, system, host_group: Default::default() };
        let (min, max) = host_fdt_range(&self.timing);
        let notification = cluster.as_ref().map(|c| c.notification.clone()).unwrap_or_default();
        let discovery = cluster.as_ref().map(|c| c.discovery).unwrap_or_default();
        Ok(pb::SystemView {
            notification_level: notification.level.into(),
            dup_event_processing: notification.dup_event_processing,
            smtp_relay: notification.smtp_relay.clone().unwrap_or_default(),
            smtp_sender: notification.sender().to_string(),
            auto_discovery_time: crate::logic::discovery_schedule::time_of_day(discovery.auto_discovery_time_min),
            quick_discovery_interval_ms: discovery.quick_every_ms,
            host_failure_detection_time_ms: levels.host_failure_detection_time().as_millis() as u32,
            vm_failure_detection_speed: levels.speed(None).into(),
            host_failure_detection_time_min_ms: min.as_millis() as u32,
            host_failure_detection_time_max_ms: max.as_millis() as u32,
            ha_monitor: cluster.and_then(|c| c.ha_monitor).unwrap_or(false),
        })
    }
}

/// Flexible capacity as the view lists it: high, medium, low.
fn percents(p: &PriorityPercent) -> Vec<u32> {
    [p.high, p.medium, p.low].into_iter().map(u32::from).collect()
}

/// Event `sequence` as the API shows it.
pub fn event_view(sequence: u64, e: EventRecord, acks: &AckRecord) -> pb::EventView {
    pb::EventView {
        sequence,
        name: e.name.to_string(),
        severity: e.name.severity().into(),
        subject: e.subject,
        message: e.message,
        at_ms: e.at_ms,
        acknowledged: acks.covers(sequence),
    }
}
