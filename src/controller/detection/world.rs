//! What the FDE needs of the world, behind one trait so the actor can run in a test against a
//! small fake with tokio's clock paused: one health request of the group through its VIOSs, the
//! evidence on a silent VM, the actions (events, relocations, cleanups, application reports).
//! [`LiveGroup`] is the controller's implementation: the HSDB, the VIOSs, the HMCs, recovery.
use crate::controller::apps::Apps;
use crate::controller::core::ControllerCore;
use crate::controller::detection::vm_watch::VmChecks;
use crate::controller::gateway::Reach;
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::hsdb::LocalHsdb;
use crate::logic::fde::{HostObservation, ViosEvidence, ViosObservation, vios_is_healthy};
use crate::logic::vm_failure::{Evidence, VmAction};
use crate::logic::vm_watch::VmSighting;
use crate::pb::states::WireEnum;
use crate::pb::{self, vios_client::ViosClient};
use crate::profile::Timing;
use crate::transport::ChannelPool;
use crate::transport::deadline;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// One answered health request of the group.
#[derive(Debug, Clone)]
pub struct Polled {
    /// The VIOS that answered (the next request starts there).
    pub vios_index: usize,
    pub observations: Vec<HostObservation>,
    /// VIOS uuid → name, for events people read.
    pub vios_names: BTreeMap<String, String>,
    /// The group's managed VMs, after a NeedsAttention.
    pub vms: Option<Vec<VmSighting>>,
    /// Application doorbells (seed: shortMsg), after a NeedsAttention.
    pub doorbells: Vec<pb::ShortMsg>,
    /// The group's `host_failure_detection_time` in force.
    pub host_fdt: Duration,
}

/// How a host's relocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relocation {
    /// A VIOS answered the final sanity check: the host is not down.
    Cancelled,
    Done,
    /// Some planned restarts failed (the mapper's unplaced VMs do not count: retrying cannot
    /// place them).
    Incomplete,
}

/// The FDE's view of one host group and what it can do about it.
pub trait FdeWorld: Clone + Unpin + 'static {
    /// The timing in force (poll period, retries).
    fn timing(&self) -> Timing;
    /// One QuickQuery (or NeedsAttention) through the first VIOS that answers from `start` on.
    fn poll(&self, group: &str, start: usize, needs_attention: bool) -> impl Future<Output = Result<Polled>>;
    /// The HMC's view of a silent VM's partition, and a ping of the VM.
    fn gather_evidence(&self, vm: &VmRecord) -> impl Future<Output = Result<Evidence>>;
    /// Carries out a VM decision's event or relocation.
    fn act(&self, group: &str, vm: VmRecord, action: VmAction, missed: Duration) -> impl Future<Output = Result<()>>;
    /// Relocates a VM whose relocation failed, if it still needs it.
    fn relocate_again(&self, group: &str, vm: &str, attempt: u32) -> impl Future<Output = Result<()>>;
    /// The final sanity check of a host whose VIOSs are both unhealthy, then its VMs' restart.
    fn relocate_host(&self, group: &str, host: &str) -> impl Future<Output = Result<Relocation>>;
    /// Source-side cleanup of a host that came back: how many stale definitions went.
    fn clean_host(&self, host: &str) -> impl Future<Output = Result<usize>>;
    /// The application report a doorbell asks for.
    fn report(&self, group: &str, doorbell: pb::ShortMsg) -> impl Future<Output = Result<()>>;
    /// Every VM record (the managed ones of the group are asked for their reports).
    fn vms(&self) -> impl Future<Output = Result<Vec<VmRecord>>>;
    /// Records an event.
    fn event(&self, event: EventRecord) -> impl Future<Output = Result<()>>;
}

/// The controller's world: what the FDE's polls, checks and actions need, and nothing more.
#[derive(Clone)]
pub struct LiveGroup {
    hsdb: LocalHsdb,
    pool: ChannelPool,
    timing: Timing,
    reach: Reach,
    records: Records,
    recovery: Recovery,
    apps: Apps,
    vm_checks: VmChecks,
}

impl LiveGroup {
    pub fn new(core: &ControllerCore) -> Self {
        Self {
            hsdb: core.hsdb.clone(),
            pool: core.pool.clone(),
            timing: core.timing,
            reach: core.reach.clone(),
            records: core.records.clone(),
            recovery: core.recovery.clone(),
            apps: core.apps.clone(),
            vm_checks: VmChecks {
                hsdb: core.hsdb.clone(),
                hmc: core.hmc.clone(),
                reach: core.reach.clone(),
                records: core.records.clone(),
                recovery: core.recovery.clone(),
            },
        }
    }
}

impl FdeWorld for LiveGroup {
    fn timing(&self) -> Timing {
        self.timing
    }
    async fn poll(&self, group: &str, start: usize, needs_attention: bool) -> Result<Polled> {
        poll_group(self, group.to_string(), start, needs_attention).await
    }
    async fn gather_evidence(&self, vm: &VmRecord) -> Result<Evidence> {
        self.vm_checks.gather_evidence(vm).await
    }
    async fn act(&self, group: &str, vm: VmRecord, action: VmAction, missed: Duration) -> Result<()> {
        self.vm_checks.act(group, vm, action, missed).await
    }
    async fn relocate_again(&self, group: &str, vm: &str, attempt: u32) -> Result<()> {
        self.vm_checks.relocate_again(group, vm, attempt).await
    }
    async fn relocate_host(&self, group: &str, host: &str) -> Result<Relocation> {
        relocate_host(self, group, host).await
    }
    async fn clean_host(&self, host: &str) -> Result<usize> {
        self.recovery.clean_lpars(host, &Lines::default()).await
    }
    async fn report(&self, group: &str, doorbell: pb::ShortMsg) -> Result<()> {
        self.apps.resync_apps(group, &doorbell).await
    }
    async fn vms(&self) -> Result<Vec<VmRecord>> {
        self.hsdb.list::<VmRecord>().await
    }
    async fn event(&self, event: EventRecord) -> Result<()> {
        self.hsdb.append_event(&event).await
    }
}

/// One FDE request through the first VIOS of the group that answers, starting at `start`.
async fn poll_group(core: &LiveGroup, group: String, start: usize, needs_attention: bool) -> Result<Polled> {
    let (group, _) = core.records.host_group(&group).await?;
    let levels = core.records.detection_levels(&group).await?;
    let vioses: Vec<ViosRecord> =
        core.hsdb.list::<ViosRecord>().await?.into_iter().filter(|v| group.hosts.contains(&v.host)).collect();
    let mut by_host: BTreeMap<String, Vec<String>> = group.hosts.iter().map(|h| (h.clone(), Vec::new())).collect();
    for v in &vioses {
        by_host.entry(v.host.clone()).or_default().push(v.uuid.clone());
    }
    let query = pb::HealthQuery {
        hosts: by_host.into_iter().map(|(host, vios_uuids)| pb::HostVioses { host, vios_uuids }).collect(),
    };
    for i in 0..vioses.len() {
        let index = (start + i) % vioses.len();
        let Ok(channel) = core.pool.get(&vioses[index].endpoint) else {
            continue;
        };
        let mut client = ViosClient::new(channel);
        let req = deadline(query.clone(), core.timing.rpc_deadline);
        let reply = match needs_attention {
            true => {
                client.needs_attention(req).await.map(|r| r.into_inner()).map(|r| (r.vios, Some(r.vms), r.short_msgs))
            }
            false => client.quick_query(req).await.map(|r| (r.into_inner().hosts, None, Vec::new())),
        };
        let Ok((statuses, vm_statuses, doorbells)) = reply else {
            continue;
        };
        let now = crate::now_ms();
        let mut observations = Vec::with_capacity(statuses.len());
        for s in statuses {
            let mut vios = Vec::with_capacity(s.vios.len());
            for v in s.vios {
                let evidence = evidence(core, &vioses, &v).await;
                vios.push(ViosObservation {
                    healthy: vios_is_healthy(&evidence),
                    up: evidence.caa_up,
                    last_heard_ms: (v.hm_response_ms != u64::MAX).then(|| now - v.hm_response_ms as i64),
                    hm_incarnation: Some(v.hm_incarnation).filter(|i| !i.is_empty()),
                    uuid: v.uuid,
                });
            }
            observations.push(HostObservation { host: s.host, vios });
        }
        let vms = match vm_statuses {
            Some(statuses) => {
                let missing = statuses
                    .into_iter()
                    .flat_map(|h| {
                        // A SUSPENDED VM's agent stopped on purpose: nothing is missing.
                        let missing = h.vms.into_iter().filter(|v| v.state() != pb::HaMonitorState::Suspended);
                        missing.map(move |v| ((h.host.clone(), v.uuid), v.missed_hb_ms))
                    })
                    .collect();
                // The VM rule may wait for the next NeedsAttention; the hosts' health may not.
                match core.vm_checks.sightings(&group.hosts, &missing, &levels).await {
                    Ok(sightings) => Some(sightings),
                    Err(e) => {
                        tracing::warn!(group = %group.name, "VM heartbeats not judged this poll: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        let vios_names = vioses.iter().map(|v| (v.uuid.clone(), v.name.clone())).collect();
        let host_fdt = levels.host_failure_detection_time();
        return Ok(Polled { vios_index: index, observations, vios_names, vms, doorbells, host_fdt });
    }
    Err(VmrmError::unavailable(format!("no VIOS of host_group {} answered", group.name)))
}

/// The seed's evidence on one VIOS: its CAA state and reason from the reply and, when it is
/// DOWN, a direct ping, and when that fails too, its partition's state as its host's HMCs
/// report it (a VIOS shut down on purpose is Not Activated; `None` when no HMC could tell).
async fn evidence(core: &LiveGroup, vioses: &[ViosRecord], stat: &pb::ViosStat) -> ViosEvidence {
    let caa_up = stat.up;
    let record = vioses.iter().find(|v| v.uuid == stat.uuid);
    let pingable = match (caa_up, record) {
        (true, _) => None,
        (false, Some(v)) => Some(core.reach.pingable(&v.endpoint).await),
        (false, None) => Some(false),
    };
    let lpar_state = match (pingable, record) {
        (Some(false), Some(v)) => vios_partition_state(core, v).await,
        _ => None,
    };
    ViosEvidence { caa_up, reason: stat.reason, pingable, lpar_state }
}

/// The state the HMCs report for a VIOS's partition on its host.
async fn vios_partition_state(core: &LiveGroup, vios: &ViosRecord) -> Option<LparState> {
    let host = core.records.host(&vios.host).await.ok()?;
    let inventory = core.vm_checks.hmc.host_inventory(&host).await.ok()?;
    let partition = inventory.vios.iter().find(|v| v.uuid == vios.uuid)?;
    LparState::from_wire("the VIOS partition's state", partition.state).ok()
}

/// Final sanity check of the host's VIOSs, then the restart of every managed VM of the host.
async fn relocate_host(core: &LiveGroup, group: &str, host: &str) -> Result<Relocation> {
    let vioses: Vec<ViosRecord> =
        core.hsdb.list::<ViosRecord>().await?.into_iter().filter(|v| v.host == *host).collect();
    for v in &vioses {
        if core.reach.vios_answers(&v.endpoint).await {
            tracing::warn!(host = %host, vios = %v.name, "sanity check: VIOS answers directly; host relocation cancelled");
            return Ok(Relocation::Cancelled);
        }
    }
    if !core.records.ha_monitor_levels(host).await?.host() {
        tracing::warn!(host = %host, "both VIOSs unhealthy, but ha_monitor is disabled for this host: nothing is restarted");
        return Ok(Relocation::Done);
    }
    core.hsdb
        .append_event(&EventRecord::new(EventName::HostFailureDetected, host, "both VIOSs of the host are unhealthy"))
        .await?;
    let (group, _) = core.records.host_group(group).await?;
    let vms: Vec<VmRecord> =
        core.hsdb.list::<VmRecord>().await?.into_iter().filter(|v| v.host == *host && v.managed).collect();
    let out = Lines::default();
    out.push(say::host_group_restart_in_progress(&group.name));
    let task = core.recovery.recover(&group, vms, None, RestartCause::HostFailure, host, &out).await?;
    let advised = group.restart_policy == RestartPolicy::AdvisoryMode;
    match (task.restarted as usize) < task.plan.len() && !advised {
        true => Ok(Relocation::Incomplete),
        false => Ok(Relocation::Done),
    }
}
