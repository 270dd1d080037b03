//! The Failure Detection Engine of one host group (seed 000 §2.3.2): it polls the health of the
//! whole group through **one** VIOS, in the cycle QuickQuery, QuickQuery, NeedsAttention, moving
//! to the next VIOS when the current one does not answer. Decisions come from the pure
//! [`HostFailureDetector`]; this actor only feeds it and carries out what it decides.
//!
//! ```text
//! tick ─▶ QQ/QQ/NA via VIOS k ─▶ observe(now) ─▶ ViosDown/ViosUp → event
//!   ▲        (next VIOS on error)               └▶ HostFailed → sanity check both VIOSs
//!   └──────────── fde_poll ◀──────────────────────  answers → cancel │ silent → relocate host
//! ```
use crate::controller::core::ControllerCore;
use crate::controller::detection::vm_watch::{self, VmSighting, WatchedVm};
use crate::controller::lines::Lines;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::logic::app_engine::engine::NOTIFY_RESYNC;
use crate::logic::fde::{
    FdeDecision, HostFailureDetector, HostObservation, ViosEvidence, ViosObservation, vios_is_healthy,
};
use crate::logic::vm_failure::{self, FirstLook, VmAction, first_look};
use crate::pb::{self, vios_client::ViosClient};
use crate::transport::deadline;
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub struct FdeActor {
    core: ControllerCore,
    group: String,
    detector: HostFailureDetector,
    /// Managed VMs whose heartbeats are missing (or being acted on), by name.
    vms: BTreeMap<String, WatchedVm>,
    scan: u64,
    polling_vios: usize,
    in_flight: bool,
    /// A NeedsAttention is wanted as soon as the request in flight ends.
    attention_due: bool,
    /// When the earliest extra poll is armed (ms since the epoch).
    wake_at: Option<i64>,
    /// When the first VM below its VMFDT reaches it.
    next_vm_deadline: Option<i64>,
    /// The group's `host_failure_detection_time`, as of the last poll.
    host_fdt: Duration,
    recovering: BTreeSet<String>,
    /// VIOS uuid → name, for events people read.
    vios_names: BTreeMap<String, String>,
    /// The last poll failed: the next failure is not worth another warning, a success is.
    poll_failing: bool,
    /// Hosts whose stale definitions are being removed.
    cleaning: BTreeSet<String>,
    /// Every host of the group was swept for stale definitions once (after a failover, the
    /// host may have come back while another controller was active).
    swept: bool,
    /// VMs (by uuid) whose application report is being fetched.
    reporting: BTreeSet<String>,
}

impl FdeActor {
    pub fn new(core: ControllerCore, group: String) -> Self {
        Self {
            host_fdt: core.timing.host_failure_detection_time,
            core,
            group,
            detector: HostFailureDetector::default(),
            vms: BTreeMap::new(),
            scan: 0,
            polling_vios: 0,
            in_flight: false,
            attention_due: false,
            wake_at: None,
            next_vm_deadline: None,
            recovering: BTreeSet::new(),
            vios_names: BTreeMap::new(),
            poll_failing: false,
            cleaning: BTreeSet::new(),
            swept: false,
            reporting: BTreeSet::new(),
        }
    }

    fn host_fdt_ms(&self) -> u64 {
        self.host_fdt.as_millis() as u64
    }

    /// One request of the QQ, QQ, NA cycle; `attention` asks for a NeedsAttention now.
    fn poll(&mut self, ctx: &mut Context<Self>, attention: bool) {
        if self.in_flight {
            self.attention_due |= attention;
            return;
        }
        self.in_flight = true;
        self.scan += 1;
        let needs_attention = attention || self.scan.is_multiple_of(3);
        let poll = poll_group(self.core.clone(), self.group.clone(), self.polling_vios, needs_attention);
        ctx.spawn(poll.into_actor(self).map(|result, act, ctx| {
            act.in_flight = false;
            match result {
                Ok(polled) => {
                    if std::mem::take(&mut act.poll_failing) {
                        tracing::info!(group = %act.group, "FDE polls answered again");
                    }
                    act.polling_vios = polled.vios_index;
                    act.host_fdt = polled.host_fdt;
                    act.vios_names = polled.vios_names;
                    if !std::mem::replace(&mut act.swept, true) {
                        for h in polled.observations.iter().filter(|h| h.vios.iter().any(|v| v.healthy)) {
                            act.clean_host(h.host.clone(), 1, ctx);
                        }
                        act.resync_all_apps(polled.observations.iter().map(|h| h.host.clone()).collect(), ctx);
                    }
                    act.decide(polled.observations, ctx);
                    if let Some(sightings) = polled.vms {
                        act.check_vms(sightings, ctx);
                    }
                    for doorbell in polled.doorbells {
                        act.report(doorbell, ctx);
                    }
                    act.arm_wake(ctx);
                }
                Err(e) if act.poll_failing => tracing::debug!(group = %act.group, "FDE poll failed: {e}"),
                Err(e) => {
                    act.poll_failing = true;
                    tracing::warn!(group = %act.group, "FDE poll failed, no health decision until one answers: {e}");
                }
            }
            if std::mem::take(&mut act.attention_due) {
                act.poll(ctx, true);
            }
        }));
    }

    /// A detection time runs out before the next regular poll: poll right then, so detection
    /// is not late by up to a poll period (or a whole QQ, QQ, NA cycle for VMs).
    fn arm_wake(&mut self, ctx: &mut Context<Self>) {
        let host_deadline = self.detector.next_deadline(self.host_fdt_ms());
        let Some(due) = host_deadline.into_iter().chain(self.next_vm_deadline).min() else {
            return;
        };
        if self.wake_at.is_some_and(|armed| armed <= due) {
            return;
        }
        self.wake_at = Some(due);
        let delay = Duration::from_millis(due.saturating_sub(crate::now_ms()).max(0) as u64);
        ctx.run_later(delay, move |act, ctx| {
            if act.wake_at == Some(due) {
                act.wake_at = None;
                act.poll(ctx, true);
            }
        });
    }

    fn decide(&mut self, observations: Vec<HostObservation>, ctx: &mut Context<Self>) {
        for decision in self.detector.observe(crate::now_ms(), self.host_fdt_ms(), &observations) {
            match decision {
                FdeDecision::ViosDown { host, vios } => self.event(
                    ctx,
                    EventName::ViosNodeFailure,
                    self.vios_name(&vios),
                    format!("VIOS of host {host} is DOWN"),
                ),
                FdeDecision::ViosUp { host, vios } => {
                    self.event(
                        ctx,
                        EventName::ViosNodeActive,
                        self.vios_name(&vios),
                        format!("VIOS of host {host} is UP"),
                    );
                    self.clean_host(host, 1, ctx);
                }
                FdeDecision::HmResponsive { host, vios, incarnation, previous } => {
                    let message = match incarnation == previous {
                        true => format!("host monitor of a VIOS of host {host} responds again"),
                        false => format!(
                            "host monitor of a VIOS of host {host} restarted: incarnation {previous} → {incarnation}"
                        ),
                    };
                    self.event(ctx, EventName::ViosHmRespDetected, self.vios_name(&vios), message)
                }
                FdeDecision::HostFailed { host } if self.recovering.insert(host.clone()) => self.relocate(host, ctx),
                FdeDecision::HostFailed { .. } => {}
            }
        }
    }

    /// The VM rule on one NeedsAttention reply; hosts under suspicion are the host rule's.
    fn check_vms(&mut self, sightings: Vec<VmSighting>, ctx: &mut Context<Self>) {
        let now = crate::now_ms();
        self.next_vm_deadline = None;
        let mut seen = BTreeSet::new();
        for s in sightings {
            let name = s.vm.name.clone();
            seen.insert(name.clone());
            if self.detector.suspects(&s.vm.host) || self.recovering.contains(&s.vm.host) {
                continue;
            }
            match first_look(&s.rule, s.missed) {
                FirstLook::Healthy => {
                    if !self.vms.get(&name).is_some_and(|w| w.busy) {
                        self.vms.remove(&name);
                    }
                }
                FirstLook::BelowThreshold => {
                    let left = s.rule.vmfdt.saturating_sub(s.missed.unwrap_or_default());
                    let due = now + left.as_millis() as i64 + 1;
                    self.next_vm_deadline = Some(self.next_vm_deadline.map_or(due, |d| d.min(due)));
                    self.vms.entry(name).or_default();
                }
                FirstLook::GatherEvidence => {
                    let watched = self.vms.entry(name).or_default();
                    if watched.busy || s.vm.vm_status != VmStatus::NoOperationInProgress {
                        continue;
                    }
                    watched.busy = true;
                    self.examine(s, ctx);
                }
            }
        }
        self.vms.retain(|name, w| w.busy || seen.contains(name));
    }

    /// Evidence, decision, action for one VM missing its heartbeats for VMFDT or more.
    fn examine(&mut self, s: VmSighting, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        let vm = s.vm.clone();
        let gather = async move { vm_watch::gather_evidence(&core, &vm).await };
        ctx.spawn(gather.into_actor(self).map(move |evidence, act, ctx| {
            let name = s.vm.name.clone();
            let Some(watched) = act.vms.get_mut(&name) else {
                return;
            };
            watched.busy = false;
            let evidence = match evidence {
                Ok(e) => e,
                Err(e) => return tracing::warn!(vm = %name, "no evidence on VM {name} this time: {e}"),
            };
            let missed = s.missed.unwrap_or_default();
            let decision = vm_failure::decide(&s.rule, missed, watched.hb_offset, &evidence);
            watched.hb_offset = decision.hb_offset;
            match &decision.action {
                VmAction::NoAction(reason) => {
                    if watched.last_reason.as_ref() != Some(reason) {
                        tracing::info!(vm = %name, "missed heartbeats for {} ms: no action, {reason}", missed.as_millis());
                        watched.last_reason = Some(reason.clone());
                    }
                    return;
                }
                VmAction::Raise(_) if watched.raised => return,
                VmAction::Raise(_) => watched.raised = true,
                VmAction::Relocate => watched.busy = true,
            }
            let relocating = decision.action == VmAction::Relocate;
            let work = vm_watch::act(act.core.clone(), act.group.clone(), s.vm, decision.action, missed);
            ctx.spawn(work.into_actor(act).map(move |outcome, act, ctx| {
                if let Some(w) = act.vms.get_mut(&name) {
                    w.busy = false;
                }
                if let Err(e) = outcome {
                    tracing::error!(vm = %name, "VM recovery failed: {e}");
                    if relocating {
                        act.retry_relocation(name, 1, ctx);
                    }
                }
            }));
        }));
    }

    /// A VM whose relocation failed (`failed` times so far) is tried again later, and later
    /// each time, until it runs or every attempt is spent; meanwhile the VM rule leaves it be.
    fn retry_relocation(&mut self, name: String, failed: u32, ctx: &mut Context<Self>) {
        let Some(wait) = vm_failure::relocation_retry(failed, self.core.timing.relocation_retry) else {
            let message = format!("relocation failed {failed} times; restart the VM by hand");
            return self.event(ctx, EventName::RestartFailed, name, message);
        };
        self.vms.entry(name.clone()).or_default().busy = true;
        ctx.run_later(wait, move |act, ctx| {
            let work = vm_watch::relocate_again(act.core.clone(), act.group.clone(), name.clone(), failed + 1);
            ctx.spawn(work.into_actor(act).map(move |outcome, act, ctx| {
                if let Some(w) = act.vms.get_mut(&name) {
                    w.busy = false;
                }
                if let Err(e) = outcome {
                    tracing::error!(vm = %name, "VM recovery failed again: {e}");
                    act.retry_relocation(name, failed + 1, ctx);
                }
            }));
        });
    }

    /// The seed's `CLEAN_LPARS` for a host whose VIOS is back ("CEC IS UP, READY FOR
    /// RELOCATION"), retried while the host does not answer yet: its VIOSs may come up before
    /// its hypervisor does.
    fn clean_host(&mut self, host: String, attempt: u32, ctx: &mut Context<Self>) {
        if !self.cleaning.insert(host.clone()) {
            return;
        }
        let core = self.core.clone();
        let work = {
            let host = host.clone();
            async move { core.clean_lpars(&host, &Lines::default()).await }
        };
        ctx.spawn(work.into_actor(self).map(move |done, act, ctx| {
            act.cleaning.remove(&host);
            match done {
                Ok(0) => {}
                Ok(n) => tracing::info!(group = %act.group, "CEC {host} IS UP, READY FOR RELOCATION: {n} stale definition(s) removed"),
                Err(e) if attempt < CLEANUP_ATTEMPTS => {
                    tracing::debug!(host = %host, "source-side cleanup not possible yet: {e}");
                    ctx.run_later(CLEANUP_RETRY, move |act, ctx| act.clean_host(host, attempt + 1, ctx));
                }
                Err(e) => tracing::warn!(group = %act.group, "Source Side Cleanup Failed for host {host}: {e}"),
            }
        }));
    }

    /// Seed: "SHORTMSG TASK ADDED: LPAR <vm>: <uuid>, dbell 28"; the task runs on its own and
    /// a doorbell rung meanwhile is seen by a later NeedsAttention.
    /// A report that failed is asked again (as a resync) a few times: the agent rings again
    /// only after its next change.
    fn report(&mut self, doorbell: pb::ShortMsg, ctx: &mut Context<Self>) {
        self.report_attempt(doorbell, 1, ctx);
    }

    fn report_attempt(&mut self, doorbell: pb::ShortMsg, attempt: u32, ctx: &mut Context<Self>) {
        if self.recovering.contains(&doorbell.host) || !self.reporting.insert(doorbell.vm_uuid.clone()) {
            return;
        }
        tracing::info!(group = %self.group, "SHORTMSG TASK ADDED: LPAR {}: {}, dbell {:x}", doorbell.vm, doorbell.vm_uuid, doorbell.dbell);
        let (core, group) = (self.core.clone(), self.group.clone());
        let work = {
            let doorbell = doorbell.clone();
            async move { core.resync_apps(&group, &doorbell).await }
        };
        ctx.spawn(work.into_actor(self).map(move |done, act, ctx| {
            act.reporting.remove(&doorbell.vm_uuid);
            let Err(e) = done else { return };
            tracing::warn!(group = %act.group, vm = %doorbell.vm, "application report not taken (attempt {attempt}): {e}");
            if attempt < REPORT_ATTEMPTS {
                let again = pb::ShortMsg { dbell: NOTIFY_RESYNC, ..doorbell };
                ctx.run_later(act.core.timing.fde_poll * 5, move |act, ctx| act.report_attempt(again, attempt + 1, ctx));
            }
        }));
    }

    /// Seed: `resyncAPP` when KSYS starts — the same exchange as a doorbell 0x2 — for every
    /// managed VM of the group: a report lost in a failover is fetched again.
    fn resync_all_apps(&mut self, hosts: BTreeSet<String>, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        let vms = async move { core.hsdb.list::<VmRecord>().await };
        ctx.spawn(vms.into_actor(self).map(move |vms, act, ctx| {
            for vm in vms.into_iter().flatten().filter(|v| v.managed && hosts.contains(&v.host)) {
                let resync = pb::ShortMsg { host: vm.host, vm_uuid: vm.uuid, vm: vm.name, dbell: NOTIFY_RESYNC };
                act.report(resync, ctx);
            }
        }));
    }

    fn vios_name(&self, uuid: &str) -> String {
        self.vios_names.get(uuid).cloned().unwrap_or_else(|| uuid.to_string())
    }

    fn event(&self, ctx: &mut Context<Self>, name: EventName, subject: String, message: String) {
        tracing::warn!(group = %self.group, "{name}: {subject}: {message}");
        let core = self.core.clone();
        ctx.spawn(
            async move { core.hsdb.append_event(&EventRecord::new(name, subject, message)).await }
                .into_actor(self)
                .map(|_, _, _| ()),
        );
    }

    fn relocate(&mut self, host: String, ctx: &mut Context<Self>) {
        let (core, group) = (self.core.clone(), self.group.clone());
        let work = {
            let host = host.clone();
            async move { relocate_host(core, group, host).await }
        };
        ctx.spawn(work.into_actor(self).map(move |outcome, act, _| {
            act.recovering.remove(&host);
            match outcome {
                Ok(Relocation::Cancelled) => act.detector.cancel(&host),
                Ok(Relocation::Done) => {}
                // Not every VM got back: the host is judged again, and what is still on it is
                // restarted by the next relocation (a failed attempt must not be the last one).
                Ok(Relocation::Incomplete) => act.detector.cancel(&host),
                Err(e) => {
                    tracing::error!(group = %act.group, host = %host, "host relocation failed, retrying: {e}");
                    act.detector.cancel(&host);
                }
            }
        }));
    }
}

impl Actor for FdeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.group, "Monitoring Enabled for HG {}", self.group);
        self.poll(ctx, false);
        ctx.run_interval(self.core.timing.fde_poll, |act, ctx| act.poll(ctx, false));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopFde;

impl Handler<StopFde> for FdeActor {
    type Result = ();
    fn handle(&mut self, _: StopFde, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.group, "FDE stopped: this controller is no longer active");
        ctx.stop();
    }
}

/// How often an application report that failed is taken before the next doorbell.
const REPORT_ATTEMPTS: u32 = 3;

/// How often, and how far apart, a host that came back is tried for its source-side cleanup.
const CLEANUP_ATTEMPTS: u32 = 30;
const CLEANUP_RETRY: Duration = Duration::from_secs(1);

/// The NeedsAttention state of a VM whose agent stopped cleanly (seed: `SHDN`).
const VM_SUSPENDED: &str = "SUSPENDED";

struct Polled {
    vios_index: usize,
    observations: Vec<HostObservation>,
    vios_names: BTreeMap<String, String>,
    /// The group's managed VMs, after a NeedsAttention.
    vms: Option<Vec<VmSighting>>,
    /// Application doorbells (seed: shortMsg), after a NeedsAttention.
    doorbells: Vec<pb::ShortMsg>,
    host_fdt: Duration,
}

/// One FDE request through the first VIOS of the group that answers, starting at `start`.
async fn poll_group(core: ControllerCore, group: String, start: usize, needs_attention: bool) -> Result<Polled> {
    let (group, _) = core.host_group(&group).await?;
    let levels = core.detection_levels(&group).await?;
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
                let evidence = evidence(&core, &vioses, &v).await;
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
                        let missing = h.vms.into_iter().filter(|v| v.state != VM_SUSPENDED);
                        missing.map(move |v| ((h.host.clone(), v.uuid), v.missed_hb_ms))
                    })
                    .collect();
                // The VM rule may wait for the next NeedsAttention; the hosts' health may not.
                match vm_watch::sightings(&core, &group.hosts, &missing, &levels).await {
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

/// The seed's evidence on one VIOS: its CAA state from the reply and, when it is DOWN, a
/// direct ping. (The HMC's LPAR state of a VIOS is not asked: the simulated HMC does not
/// report VIOS partitions, so a DOWN VIOS that does not answer ping counts as unhealthy.)
async fn evidence(core: &ControllerCore, vioses: &[ViosRecord], stat: &pb::ViosStat) -> ViosEvidence {
    let caa_up = stat.state == "UP";
    let pingable = match (caa_up, vioses.iter().find(|v| v.uuid == stat.uuid)) {
        (true, _) => None,
        (false, Some(v)) => Some(core.reach.pingable(&v.endpoint).await),
        (false, None) => Some(false),
    };
    ViosEvidence { caa_up, reason: stat.reason, pingable, lpar_state: None }
}

enum Relocation {
    Cancelled,
    Done,
    /// Some planned restarts failed (the mapper's unplaced VMs do not count: retrying cannot
    /// place them).
    Incomplete,
}

/// Final sanity check of the host's VIOSs, then the restart of every managed VM of the host.
async fn relocate_host(core: ControllerCore, group: String, host: String) -> Result<Relocation> {
    let vioses: Vec<ViosRecord> =
        core.hsdb.list::<ViosRecord>().await?.into_iter().filter(|v| v.host == host).collect();
    for v in &vioses {
        if core.reach.vios_answers(&v.endpoint).await {
            tracing::warn!(host = %host, vios = %v.name, "sanity check: VIOS answers directly; host relocation cancelled");
            return Ok(Relocation::Cancelled);
        }
    }
    if !core.ha_monitor_levels(&host).await?.host() {
        tracing::warn!(host = %host, "both VIOSs unhealthy, but ha_monitor is disabled for this host: nothing is restarted");
        return Ok(Relocation::Done);
    }
    core.hsdb
        .append_event(&EventRecord::new(EventName::HostFailureDetected, &host, "both VIOSs of the host are unhealthy"))
        .await?;
    let (group, _) = core.host_group(&group).await?;
    let vms: Vec<VmRecord> =
        core.hsdb.list::<VmRecord>().await?.into_iter().filter(|v| v.host == host && v.managed).collect();
    let out = Lines::default();
    out.push(format!("Restart in progress for Host_group {}", group.name));
    let task = core.recover(&group, vms, None, RestartCause::HostFailure, &host, &out).await?;
    let advised = group.restart_policy == RestartPolicy::AdvisoryMode;
    match (task.restarted as usize) < task.plan.len() && !advised {
        true => Ok(Relocation::Incomplete),
        false => Ok(Relocation::Done),
    }
}
