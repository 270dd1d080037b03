//! The Failure Detection Engine of one host group (seed 000 §2.3.2): it polls the health of the
//! whole group through **one** VIOS, in the cycle QuickQuery, QuickQuery, NeedsAttention, moving
//! to the next VIOS when the current one does not answer. Decisions come from the pure
//! [`HostFailureDetector`] (hosts) and [`VmWatch`] (VMs, their retries); this actor only feeds
//! them and carries out what they decide, through its [`FdeWorld`] — the controller's, or a
//! test's fake with tokio's clock paused.
//!
//! ```text
//! tick ─▶ QQ/QQ/NA via VIOS k ─▶ observe(now) ─▶ ViosDown/ViosUp → event
//!   ▲        (next VIOS on error)               └▶ HostFailed → sanity check both VIOSs
//!   └──────────── fde_poll ◀──────────────────────  answers → cancel │ silent → relocate host
//! ```
use crate::controller::detection::world::{FdeWorld, Polled, Relocation};
use crate::domain::*;
use crate::logic::app_engine::engine::NOTIFY_RESYNC;
use crate::logic::fde::{FdeDecision, HostFailureDetector, HostObservation};
use crate::logic::poll_cycle::{Failure, Poll, PollCycle};
use crate::logic::retries::{cleanup_retry, report_retry};
use crate::logic::vm_failure::VmAction;
use crate::logic::vm_watch::{VmSighting, VmWatch, WatchCommand};
use crate::pb;
use crate::profile::Timing;
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub struct FdeActor<W: FdeWorld> {
    world: W,
    timing: Timing,
    group: String,
    detector: HostFailureDetector,
    /// Managed VMs whose heartbeats are missing (or being acted on).
    watch: VmWatch,
    /// When to ask the group's VIOSs, and what.
    cycle: PollCycle,
    /// The group's `host_failure_detection_time`, as of the last poll.
    host_fdt: Duration,
    recovering: BTreeSet<String>,
    /// VIOS uuid → name, for events people read.
    vios_names: BTreeMap<String, String>,
    /// Hosts whose stale definitions are being removed.
    cleaning: BTreeSet<String>,
    /// Every host of the group was swept for stale definitions once (after a failover, the
    /// host may have come back while another controller was active).
    swept: bool,
    /// VMs (by uuid) whose application report is being fetched.
    reporting: BTreeSet<String>,
}

impl<W: FdeWorld> FdeActor<W> {
    pub fn new(world: W, group: String) -> Self {
        let timing = world.timing();
        Self {
            world,
            timing,
            group,
            detector: HostFailureDetector::default(),
            watch: VmWatch::new(timing.relocation_retry),
            cycle: PollCycle::default(),
            host_fdt: timing.host_failure_detection_time,
            recovering: BTreeSet::new(),
            vios_names: BTreeMap::new(),
            cleaning: BTreeSet::new(),
            swept: false,
            reporting: BTreeSet::new(),
        }
    }

    /// One request of the QQ, QQ, NA cycle, if the cycle makes one.
    fn poll(&mut self, poll: Option<Poll>, ctx: &mut Context<Self>) {
        let Some(Poll { start, needs_attention }) = poll else { return };
        let (world, group) = (self.world.clone(), self.group.clone());
        let poll = async move { world.poll(&group, start, needs_attention).await };
        ctx.spawn(poll.into_actor(self).map(|result, act, ctx| {
            match result {
                Ok(polled) => act.polled(polled, ctx),
                Err(e) => match act.cycle.failed() {
                    Failure::Again => tracing::debug!(group = %act.group, "FDE poll failed: {e}"),
                    Failure::First => tracing::warn!(
                        group = %act.group,
                        "FDE poll failed, no health decision until one answers: {e}"
                    ),
                },
            }
            let next = act.cycle.after_request();
            act.poll(next, ctx);
        }));
    }

    fn polled(&mut self, polled: Polled, ctx: &mut Context<Self>) {
        if self.cycle.answered(polled.vios_index) {
            tracing::info!(group = %self.group, "FDE polls answered again");
        }
        self.host_fdt = polled.host_fdt;
        self.vios_names = polled.vios_names;
        if !std::mem::replace(&mut self.swept, true) {
            for h in polled.observations.iter().filter(|h| h.vios.iter().any(|v| v.healthy)) {
                self.clean_host(h.host.clone(), 1, ctx);
            }
            self.resync_all_apps(polled.observations.iter().map(|h| h.host.clone()).collect(), ctx);
        }
        self.decide(polled.observations, ctx);
        if let Some(sightings) = polled.vms {
            self.check_vms(sightings, ctx);
        }
        for doorbell in polled.doorbells {
            self.report(doorbell, ctx);
        }
        self.arm_wake(ctx);
    }

    /// A detection time runs out before the next regular poll: poll right then, so detection
    /// is not late by up to a poll period (or a whole QQ, QQ, NA cycle for VMs).
    fn arm_wake(&mut self, ctx: &mut Context<Self>) {
        let host_deadline = self.detector.next_deadline(self.host_fdt);
        let earliest = host_deadline.into_iter().chain(self.watch.next_deadline()).min();
        let Some(due) = self.cycle.arm(earliest) else { return };
        let delay = Duration::from_millis(due.saturating_sub(crate::now_ms()).max(0) as u64);
        ctx.run_later(delay, move |act, ctx| {
            let poll = act.cycle.woke(due);
            act.poll(poll, ctx);
        });
    }

    fn decide(&mut self, observations: Vec<HostObservation>, ctx: &mut Context<Self>) {
        for decision in self.detector.observe(crate::now_ms(), self.host_fdt, &observations) {
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
                FdeDecision::HostFailed { host, silent } if self.recovering.insert(host.clone()) => {
                    crate::metrics::metrics().host_detection_seconds.observe(silent.as_secs_f64());
                    self.relocate(host, ctx)
                }
                FdeDecision::HostFailed { .. } => {}
            }
        }
    }

    /// The VM rule on one NeedsAttention reply; hosts under suspicion are the host rule's.
    fn check_vms(&mut self, sightings: Vec<VmSighting>, ctx: &mut Context<Self>) {
        let (detector, recovering) = (&self.detector, &self.recovering);
        let excluded = |host: &str| detector.suspects(host) || recovering.contains(host);
        let commands = self.watch.sighted(crate::now_ms(), sightings, excluded);
        self.carry_out(commands, ctx);
    }

    /// What the VM watch decided.
    fn carry_out(&mut self, commands: Vec<WatchCommand>, ctx: &mut Context<Self>) {
        for command in commands {
            match command {
                WatchCommand::Gather(s) => self.gather(s, ctx),
                WatchCommand::Act { vm, action, missed } => self.act(vm, action, missed, ctx),
                WatchCommand::NoAction { vm, reason, missed } => {
                    tracing::info!(vm = %vm, "missed heartbeats for {} ms: no action, {reason}", missed.as_millis())
                }
                WatchCommand::NoEvidence { vm, why } => {
                    tracing::warn!(vm = %vm, "no evidence on VM {vm} this time: {why}")
                }
                WatchCommand::RetryLater { vm, after, attempt } => self.retry_later(vm, after, attempt, ctx),
                WatchCommand::GiveUp { vm, failed } => {
                    let message = format!("relocation failed {failed} times; restart the VM by hand");
                    self.event(ctx, EventName::RestartFailed, vm, message)
                }
            }
        }
    }

    /// Evidence on one VM missing its heartbeats for VMFDT or more.
    fn gather(&mut self, s: VmSighting, ctx: &mut Context<Self>) {
        let world = self.world.clone();
        let vm = s.vm.clone();
        let gather = async move { world.gather_evidence(&vm).await.map_err(|e| e.to_string()) };
        ctx.spawn(gather.into_actor(self).map(move |evidence, act, ctx| {
            let commands = act.watch.evidence(s, evidence);
            act.carry_out(commands, ctx);
        }));
    }

    fn act(&mut self, vm: VmRecord, action: VmAction, missed: Duration, ctx: &mut Context<Self>) {
        let (world, group, name) = (self.world.clone(), self.group.clone(), vm.name.clone());
        let done = action.clone();
        let work = async move { world.act(&group, vm, action, missed).await };
        ctx.spawn(work.into_actor(self).map(move |outcome, act, ctx| {
            if let Err(e) = &outcome {
                tracing::error!(vm = %name, "VM recovery failed: {e}");
            }
            let commands = act.watch.acted(&name, &done, outcome.is_err());
            act.carry_out(commands, ctx);
        }));
    }

    /// A VM whose relocation failed is tried again after `after`, as attempt `attempt`.
    fn retry_later(&mut self, name: String, after: Duration, attempt: u32, ctx: &mut Context<Self>) {
        ctx.run_later(after, move |act, ctx| {
            let (world, group, vm) = (act.world.clone(), act.group.clone(), name.clone());
            let work = async move { world.relocate_again(&group, &vm, attempt).await };
            ctx.spawn(work.into_actor(act).map(move |outcome, act, ctx| {
                if let Err(e) = &outcome {
                    tracing::error!(vm = %name, "VM recovery failed again: {e}");
                }
                let commands = act.watch.retried(&name, attempt, outcome.is_err());
                act.carry_out(commands, ctx);
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
        let world = self.world.clone();
        let work = {
            let host = host.clone();
            async move { world.clean_host(&host).await }
        };
        ctx.spawn(work.into_actor(self).map(move |done, act, ctx| {
            act.cleaning.remove(&host);
            match done {
                Ok(0) => {}
                Ok(n) => tracing::info!(group = %act.group, "CEC {host} IS UP, READY FOR RELOCATION: {n} stale definition(s) removed"),
                Err(e) => match cleanup_retry(attempt) {
                    Some(wait) => {
                        tracing::debug!(host = %host, "source-side cleanup not possible yet: {e}");
                        ctx.run_later(wait, move |act, ctx| act.clean_host(host, attempt + 1, ctx));
                    }
                    None => tracing::warn!(group = %act.group, "Source Side Cleanup Failed for host {host}: {e}"),
                },
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
        let (world, group) = (self.world.clone(), self.group.clone());
        let work = {
            let doorbell = doorbell.clone();
            async move { world.report(&group, doorbell).await }
        };
        ctx.spawn(work.into_actor(self).map(move |done, act, ctx| {
            act.reporting.remove(&doorbell.vm_uuid);
            let Err(e) = done else { return };
            tracing::warn!(group = %act.group, vm = %doorbell.vm, "application report not taken (attempt {attempt}): {e}");
            if let Some(wait) = report_retry(attempt, act.timing.fde_poll) {
                let again = pb::ShortMsg { dbell: NOTIFY_RESYNC, ..doorbell };
                ctx.run_later(wait, move |act, ctx| act.report_attempt(again, attempt + 1, ctx));
            }
        }));
    }

    /// Seed: `resyncAPP` when KSYS starts — the same exchange as a doorbell 0x2 — for every
    /// managed VM of the group: a report lost in a failover is fetched again.
    fn resync_all_apps(&mut self, hosts: BTreeSet<String>, ctx: &mut Context<Self>) {
        let world = self.world.clone();
        let vms = async move { world.vms().await };
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
        let world = self.world.clone();
        let event = EventRecord::new(name, subject, message);
        ctx.spawn(async move { world.event(event).await }.into_actor(self).map(|_, _, _| ()));
    }

    fn relocate(&mut self, host: String, ctx: &mut Context<Self>) {
        let (world, group) = (self.world.clone(), self.group.clone());
        let work = {
            let host = host.clone();
            async move { world.relocate_host(&group, &host).await }
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

impl<W: FdeWorld> Actor for FdeActor<W> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.group, "Monitoring Enabled for HG {}", self.group);
        let first = self.cycle.tick(false);
        self.poll(first, ctx);
        ctx.run_interval(self.timing.fde_poll, |act, ctx| {
            let poll = act.cycle.tick(false);
            act.poll(poll, ctx);
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopFde;

impl<W: FdeWorld> Handler<StopFde> for FdeActor<W> {
    type Result = ();
    fn handle(&mut self, _: StopFde, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.group, "FDE stopped: this controller is no longer active");
        ctx.stop();
    }
}
