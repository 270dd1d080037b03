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
use super::core::ControllerCore;
use super::lines::Lines;
use super::recovery::RestartCause;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::logic::fde::{
    FdeDecision, HostFailureDetector, HostObservation, ViosEvidence, ViosObservation, vios_is_healthy,
};
use crate::pb::{self, vios_client::ViosClient};
use crate::transport::deadline;
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub struct FdeActor {
    core: ControllerCore,
    group: String,
    detector: HostFailureDetector,
    scan: u64,
    polling_vios: usize,
    in_flight: bool,
    recovering: BTreeSet<String>,
    /// VIOS uuid → name, for events people read.
    vios_names: BTreeMap<String, String>,
}

impl FdeActor {
    pub fn new(core: ControllerCore, group: String) -> Self {
        Self {
            core,
            group,
            detector: HostFailureDetector::default(),
            scan: 0,
            polling_vios: 0,
            in_flight: false,
            recovering: BTreeSet::new(),
            vios_names: BTreeMap::new(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        self.scan += 1;
        let needs_attention = self.scan.is_multiple_of(3);
        let poll = poll_group(self.core.clone(), self.group.clone(), self.polling_vios, needs_attention);
        ctx.spawn(poll.into_actor(self).map(|result, act, ctx| {
            act.in_flight = false;
            match result {
                Ok(polled) => {
                    act.polling_vios = polled.vios_index;
                    act.vios_names = polled.vios_names;
                    act.decide(polled.observations, ctx);
                }
                Err(e) => tracing::debug!(group = %act.group, "FDE poll failed: {e}"),
            }
        }));
    }

    fn decide(&mut self, observations: Vec<HostObservation>, ctx: &mut Context<Self>) {
        let fdt = self.core.timing.host_failure_detection_time.as_millis() as u64;
        for decision in self.detector.observe(crate::now_ms(), fdt, &observations) {
            match decision {
                FdeDecision::ViosDown { host, vios } => self.event(
                    ctx,
                    EventName::ViosNodeFailure,
                    self.vios_name(&vios),
                    format!("VIOS of host {host} is DOWN"),
                ),
                FdeDecision::ViosUp { host, vios } => self.event(
                    ctx,
                    EventName::ViosNodeActive,
                    self.vios_name(&vios),
                    format!("VIOS of host {host} is UP"),
                ),
                FdeDecision::HostFailed { host } if self.recovering.insert(host.clone()) => self.relocate(host, ctx),
                FdeDecision::HostFailed { .. } => {}
            }
        }
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
                Err(e) => {
                    tracing::error!(group = %act.group, host = %host, "host relocation failed: {e}")
                }
            }
        }));
    }
}

impl Actor for FdeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.group, "Monitoring Enabled for HG {}", self.group);
        self.tick(ctx);
        ctx.run_interval(self.core.timing.fde_poll, |act, ctx| act.tick(ctx));
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

struct Polled {
    vios_index: usize,
    observations: Vec<HostObservation>,
    vios_names: BTreeMap<String, String>,
}

/// One FDE request through the first VIOS of the group that answers, starting at `start`.
async fn poll_group(core: ControllerCore, group: String, start: usize, needs_attention: bool) -> Result<Polled> {
    let (group, _) = core.host_group(&group).await?;
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
        let statuses = match needs_attention {
            true => client.needs_attention(req).await.map(|r| r.into_inner().vios),
            false => client.quick_query(req).await.map(|r| r.into_inner().hosts),
        };
        if let Ok(statuses) = statuses {
            let mut observations = Vec::with_capacity(statuses.len());
            for s in statuses {
                let mut vios = Vec::with_capacity(s.vios.len());
                for v in s.vios {
                    let evidence = evidence(&core, &vioses, &v).await;
                    let healthy = vios_is_healthy(&evidence);
                    vios.push(ViosObservation { uuid: v.uuid, up: evidence.caa_up, healthy });
                }
                observations.push(HostObservation { host: s.host, vios });
            }
            let vios_names = vioses.iter().map(|v| (v.uuid.clone(), v.name.clone())).collect();
            return Ok(Polled { vios_index: index, observations, vios_names });
        }
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
        (false, Some(v)) => Some(core.pingable(&v.endpoint).await),
        (false, None) => Some(false),
    };
    ViosEvidence { caa_up, reason: stat.reason, pingable, lpar_state: None }
}

enum Relocation {
    Cancelled,
    Done,
}

/// Final sanity check of the host's VIOSs, then the restart of every managed VM of the host.
async fn relocate_host(core: ControllerCore, group: String, host: String) -> Result<Relocation> {
    let vioses: Vec<ViosRecord> =
        core.hsdb.list::<ViosRecord>().await?.into_iter().filter(|v| v.host == host).collect();
    for v in &vioses {
        if core.vios_answers(&v.endpoint).await {
            tracing::warn!(host = %host, vios = %v.name, "sanity check: VIOS answers directly; host relocation cancelled");
            return Ok(Relocation::Cancelled);
        }
    }
    core.hsdb
        .append_event(&EventRecord::new(EventName::HostFailureDetected, &host, "both VIOSs of the host are unhealthy"))
        .await?;
    let (group, _) = core.host_group(&group).await?;
    let vms: Vec<VmRecord> =
        core.hsdb.list::<VmRecord>().await?.into_iter().filter(|v| v.host == host && v.managed).collect();
    let out = Lines::default();
    out.push(format!("Restart in progress for Host_group {}", group.name));
    core.restart_vms(&group, vms, None, RestartCause::HostFailure, &out).await?;
    Ok(Relocation::Done)
}
