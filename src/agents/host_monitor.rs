//! A VIOS and its host monitor (HM).
//!
//! The HM receives VM heartbeats, declares a VM MISSING after `vm_missing_after` of silence and
//! writes only the **transitions** to the HSDB (a missed row on MISSING, its removal when
//! heartbeats resume) — never one row per heartbeat. It also heartbeats its own liveness into
//! the HSDB. Every start draws a new incarnation id, so a restarted HM is recognisable.
//!
//! The VIOS answers the FDE's QuickQuery / NeedsAttention for a whole host group from the HSDB
//! (the controller reads health *through* a VIOS, as in the seed).
use super::ar_gateway::ArGateway;
use crate::clock::Instant;
use crate::domain::{HmHealthRecord, ShortMsgRecord, VmHbMissedRecord, identity};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, Record, RemoteHsdb};
use crate::in_flight::InFlight;
use crate::logic::fde::REASON_NODE_SHUTDOWN;
use crate::logic::health::{VmMonitorState, vios_health, vm_monitor_state};
use crate::pb::{self, host_monitor_server::HostMonitor, vios_server::Vios as ViosRpc};
use crate::profile::Timing;
use crate::transport::gate::caller;
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The HM's view of one VM (seed: DETECTED and MISSING, plus SUSPENDED after a `SHDN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HmVmState {
    Detected,
    Missing,
    Suspended,
}

struct WatchedVm {
    name: String,
    last_seen: Instant,
    state: HmVmState,
    /// When it went MISSING or SUSPENDED.
    since_ms: i64,
    /// What the HSDB holds (`None` until the first write succeeds).
    recorded: Option<HmVmState>,
    write: InFlight,
    /// Failed writes of the current state in a row, and when the next may be tried.
    failures: u32,
    retry_at: Option<Instant>,
}

/// Most VMs one host monitor watches (a host runs far fewer); heartbeats of more are refused.
pub const MAX_WATCHED_VMS: usize = 4096;
/// A VM silent this long, whose MISSING row is written, is forgotten (it runs elsewhere or no
/// more); heard again, it is watched anew.
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
/// The longest wait between two attempts to write a VM's row.
const WRITE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// The HM of one VIOS; `H` is where it writes (the HSDB through any member, or a test's store).
pub struct HostMonitorActor<H: HsdbAccess + Clone + Unpin + 'static = RemoteHsdb> {
    vios: String,
    vios_uuid: String,
    host: String,
    incarnation: String,
    timing: Timing,
    hsdb: H,
    vms: HashMap<String, WatchedVm>,
    heartbeat: InFlight,
    /// A deliberate shutdown was asked: every row from now on says so, and these wait for the
    /// first one written.
    stopping: Option<Vec<tokio::sync::oneshot::Sender<std::result::Result<(), String>>>>,
    /// The shutdown row is written: the HM writes nothing more.
    stopped: bool,
}

impl<H: HsdbAccess + Clone + Unpin + 'static> HostMonitorActor<H> {
    pub fn new(vios: String, host: String, timing: Timing, hsdb: H) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self {
            vios_uuid: identity::uuid_for("vios", &vios),
            incarnation: format!("{}.{}.{}", now.as_secs(), now.subsec_nanos(), std::process::id()),
            vios,
            host,
            timing,
            hsdb,
            vms: HashMap::new(),
            heartbeat: InFlight::default(),
            stopping: None,
            stopped: false,
        }
    }

    /// Writes the HM's liveness row — the last one, marked `shut_down`, once a deliberate
    /// shutdown was asked. A heartbeat in flight when it is asked is followed by that row, so
    /// no older heartbeat can land after it.
    fn own_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || !self.heartbeat.start() {
            return;
        }
        let shut_down = self.stopping.is_some();
        let row = HmHealthRecord {
            vios: self.vios.clone(),
            vios_uuid: self.vios_uuid.clone(),
            host: self.host.clone(),
            incarnation: self.incarnation.clone(),
            last_heartbeat_ms: crate::now_ms(),
            shut_down,
        };
        let hsdb = self.hsdb.clone();
        ctx.spawn(async move { hsdb.put(&row).await }.into_actor(self).map(move |r, act, ctx| {
            act.heartbeat.end();
            match (shut_down, r) {
                (true, r) => {
                    let r = r.map(|_| ()).map_err(|e| e.to_string());
                    act.stopped = r.is_ok();
                    for waiter in act.stopping.take().unwrap_or_default() {
                        let _ = waiter.send(r.clone());
                    }
                }
                (false, _) if act.stopping.is_some() => act.own_heartbeat(ctx),
                (false, Err(e)) => tracing::debug!(vios = %act.vios, "HM heartbeat to HSDB failed: {e}"),
                (false, Ok(_)) => {}
            }
        }));
    }

    /// How often the VMs are checked (and the first wait before a failed write is tried again).
    fn check_every(&self) -> std::time::Duration {
        (self.timing.vm_heartbeat / 4).max(std::time::Duration::from_millis(20))
    }

    /// Marks silent VMs MISSING and writes every transition the HSDB does not yet hold; a
    /// write that failed is tried again later and later (up to [`WRITE_RETRY_MAX`]).
    fn check_vms(&mut self, ctx: &mut Context<Self>) {
        let now_ms = crate::now_ms();
        let now = Instant::now();
        self.vms.retain(|_, vm| !(vm.recorded == Some(vm.state) && vm.last_seen.elapsed() >= FORGET_AFTER));
        let mut writes = Vec::new();
        for (uuid, vm) in self.vms.iter_mut() {
            if vm.state == HmVmState::Detected && vm.last_seen.elapsed() >= self.timing.vm_missing_after {
                vm.state = HmVmState::Missing;
                vm.since_ms = now_ms;
                tracing::info!(vios = %self.vios, vm = %vm.name, "VM heartbeat MISSING");
            }
            if vm.recorded == Some(vm.state) || vm.retry_at.is_some_and(|at| now < at) || !vm.write.start() {
                continue;
            }
            let row = VmHbMissedRecord {
                vm: vm.name.clone(),
                vm_uuid: uuid.clone(),
                vios_uuid: self.vios_uuid.clone(),
                host: self.host.clone(),
                missed_since_ms: vm.since_ms,
                suspended: vm.state == HmVmState::Suspended,
            };
            writes.push((vm.state, row));
        }
        for (state, row) in writes {
            let hsdb = self.hsdb.clone();
            let uuid = row.vm_uuid.clone();
            let write = async move {
                match state {
                    HmVmState::Missing | HmVmState::Suspended => hsdb.put(&row).await.map(|_| ()),
                    HmVmState::Detected => hsdb.delete::<VmHbMissedRecord>(&row.key()).await,
                }
            };
            let first_retry = self.check_every();
            ctx.spawn(write.into_actor(self).map(move |r, act, _| {
                if let Some(vm) = act.vms.get_mut(&uuid) {
                    vm.write.end();
                    match r {
                        Ok(()) => {
                            vm.recorded = Some(state);
                            (vm.failures, vm.retry_at) = (0, None);
                        }
                        Err(e) => {
                            vm.failures += 1;
                            let wait = crate::logic::retries::backoff(vm.failures, first_retry, WRITE_RETRY_MAX);
                            vm.retry_at = Some(Instant::now() + wait);
                            tracing::debug!(vios = %act.vios, vm = %vm.name, "VM row not written ({e}); again in {wait:?}");
                        }
                    }
                }
            }));
        }
    }
}

impl<H: HsdbAccess + Clone + Unpin + 'static> Actor for HostMonitorActor<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(vios = %self.vios, incarnation = %self.incarnation, "host monitor started");
        self.own_heartbeat(ctx);
        ctx.run_interval(self.timing.hm_heartbeat, |act, ctx| act.own_heartbeat(ctx));
        ctx.run_interval(self.check_every(), |act, ctx| act.check_vms(ctx));
    }
}

#[derive(Message)]
#[rtype(result = "Result<String>")]
pub struct Heartbeat(pub pb::VmHeartbeat);

impl<H: HsdbAccess + Clone + Unpin + 'static> Handler<Heartbeat> for HostMonitorActor<H> {
    type Result = Result<String>;

    fn handle(&mut self, Heartbeat(hb): Heartbeat, _: &mut Context<Self>) -> Result<String> {
        if !self.vms.contains_key(&hb.vm_uuid) && self.vms.len() >= MAX_WATCHED_VMS {
            return Err(VmrmError::precondition(format!(
                "VIOS {} watches {MAX_WATCHED_VMS} VMs already; the heartbeat of {} was not taken",
                self.vios, hb.vm
            )));
        }
        let vm = self.vms.entry(hb.vm_uuid).or_insert_with(|| WatchedVm {
            name: hb.vm.clone(),
            last_seen: Instant::now(),
            state: HmVmState::Detected,
            since_ms: 0,
            recorded: None,
            write: InFlight::default(),
            failures: 0,
            retry_at: None,
        });
        vm.last_seen = Instant::now();
        if hb.shutdown {
            // A clean agent stop (seed: SHDN): the VM is SUSPENDED, not missing.
            vm.state = HmVmState::Suspended;
            vm.since_ms = crate::now_ms();
            tracing::info!(vios = %self.vios, vm = %vm.name, "VM agent stopped (SHDN): VM SUSPENDED");
        } else if vm.state != HmVmState::Detected {
            vm.state = HmVmState::Detected;
            tracing::info!(vios = %self.vios, vm = %vm.name, "VM heartbeat detected again");
        }
        // A VM first seen by this incarnation is written DETECTED once (its missed row, which a
        // previous incarnation may have left, is cleared); after that only transitions are.
        Ok(self.incarnation.clone())
    }
}

/// The VIOS is shut down on purpose: the HM writes its last row, marked `shut_down`, and
/// answers once it is written (an error: it was not, and the HM carries on as before).
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub struct ShutDown;

impl<H: HsdbAccess + Clone + Unpin + 'static> Handler<ShutDown> for HostMonitorActor<H> {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, _: ShutDown, ctx: &mut Context<Self>) -> Self::Result {
        if self.stopped {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stopping.get_or_insert_with(Vec::new).push(tx);
        tracing::warn!(vios = %self.vios, "VIOS shutdown asked: writing the host monitor's last row");
        self.own_heartbeat(ctx);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(VmrmError::unavailable(format!("the VIOS's shutdown was not recorded: {e}"))),
                Err(_) => Err(VmrmError::unavailable("the host monitor stopped")),
            }
        })
    }
}

#[derive(Message)]
#[rtype(result = "String")]
pub struct Incarnation;

impl<H: HsdbAccess + Clone + Unpin + 'static> Handler<Incarnation> for HostMonitorActor<H> {
    type Result = String;
    fn handle(&mut self, _: Incarnation, _: &mut Context<Self>) -> String {
        self.incarnation.clone()
    }
}

/// Answers QuickQuery and NeedsAttention from the HSDB for the hosts the FDE names.
async fn health_of(hsdb: &RemoteHsdb, query: &pb::HealthQuery, down_after: Duration) -> Result<Vec<pb::ViosStatus>> {
    let rows: BTreeMap<String, HmHealthRecord> =
        hsdb.list::<HmHealthRecord>().await?.into_iter().map(|r| (r.vios_uuid.clone(), r)).collect();
    let now = crate::now_ms();
    Ok(query
        .hosts
        .iter()
        .map(|h| pb::ViosStatus {
            host: h.host.clone(),
            vios: h
                .vios_uuids
                .iter()
                .map(|uuid| {
                    let v = vios_health(uuid, rows.get(uuid), now, down_after);
                    let ms = v.hm_response.map_or(u64::MAX, |age| age.as_millis() as u64);
                    pb::ViosStat {
                        uuid: v.vios_uuid,
                        up: v.up,
                        hm_responsive: v.hm_responsive,
                        hm_response_sec: ms / 1000,
                        has_data: false,
                        reason: if v.shut_down { REASON_NODE_SHUTDOWN } else { 0 },
                        hm_response_ms: ms,
                        hm_incarnation: v.hm_incarnation.unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect())
}

/// gRPC face of a VIOS node: the HM's heartbeat endpoint and the FDE's queries.
pub struct ViosService {
    pub monitor: Addr<HostMonitorActor>,
    pub ar: ArGateway,
    pub hsdb: RemoteHsdb,
    pub vios: String,
    /// The host this VIOS serves.
    pub host: String,
    pub timing: Timing,
    /// Told once a deliberate shutdown is recorded: the node stops.
    pub stop: std::sync::Arc<tokio::sync::Notify>,
}

impl ViosService {
    /// Only this host's server unit speaks for its VMs — the seed's hypervisor channel, which
    /// relays what the partitions it runs say. A unit of another host, though its role may
    /// call a host monitor, may not keep this host's VMs alive, ring their doorbells or answer
    /// their messages.
    fn ensure_own_host<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let who = caller(req)?;
        if who.unchecked || who.host.as_ref().is_some_and(|h| h.as_str() == self.host) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "{who} may not speak for host {}'s VMs: only that host's server unit relays them",
            self.host
        )))
    }
}

#[tonic::async_trait]
impl HostMonitor for ViosService {
    async fn heartbeat(&self, req: Request<pb::VmHeartbeat>) -> Result<Response<pb::HeartbeatAck>, Status> {
        self.ensure_own_host(&req)?;
        let hb = req.into_inner();
        crate::domain::names::VmName::parse(&hb.vm)?;
        if uuid::Uuid::parse_str(&hb.vm_uuid).is_err() {
            return Err(Status::invalid_argument("a heartbeat needs the VM's uuid"));
        }
        let doorbell_recorded = match hb.doorbell {
            0 => 0,
            bits => match self.ar.ring(&hb).await {
                Ok(()) => bits,
                Err(e) => {
                    tracing::debug!(vios = %self.vios, vm = %hb.vm, "doorbell not recorded this time: {e}");
                    0
                }
            },
        };
        let (requests, confirmed) = self.ar.deliver(&hb.vm_uuid);
        let hm_incarnation = self.monitor.send(Heartbeat(hb)).await.map_err(VmrmError::from)??;
        Ok(Response::new(pb::HeartbeatAck { hm_incarnation, requests, confirmed, doorbell_recorded }))
    }

    async fn put_response(&self, req: Request<pb::ArResponse>) -> Result<Response<pb::ArResponseAck>, Status> {
        self.ensure_own_host(&req)?;
        self.ar.respond(req.into_inner()).await?;
        Ok(Response::new(pb::ArResponseAck {}))
    }
}

#[tonic::async_trait]
impl ViosRpc for ViosService {
    async fn quick_query(&self, req: Request<pb::HealthQuery>) -> Result<Response<pb::QuickQueryReply>, Status> {
        let hosts = health_of(&self.hsdb, &req.into_inner(), self.timing.vios_down_after).await?;
        Ok(Response::new(pb::QuickQueryReply { hosts }))
    }

    async fn needs_attention(
        &self,
        req: Request<pb::HealthQuery>,
    ) -> Result<Response<pb::NeedsAttentionReply>, Status> {
        let query = req.into_inner();
        let vios = health_of(&self.hsdb, &query, self.timing.vios_down_after).await?;
        let missed = self.hsdb.list::<VmHbMissedRecord>().await?;
        let now = crate::now_ms();
        let mut by_host: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for row in &missed {
            by_host.entry(row.host.as_str()).or_default().insert(row.vm_uuid.as_str(), row.vm.as_str());
        }
        let vms = query
            .hosts
            .iter()
            .map(|h| pb::HostVms {
                host: h.host.clone(),
                vms: by_host
                    .get(h.host.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(|(uuid, name)| {
                        let (state, ms) = match vm_monitor_state(uuid, &h.vios_uuids, &missed, now) {
                            VmMonitorState::Started => return None,
                            VmMonitorState::Suspended => (pb::HaMonitorState::Suspended, 0),
                            VmMonitorState::Missing(ms) => (pb::HaMonitorState::Started, ms),
                        };
                        Some(pb::VmStat {
                            uuid: uuid.to_string(),
                            name: name.to_string(),
                            state: state as i32,
                            missed_hb: ms / 1000,
                            missed_hb_ms: ms,
                        })
                    })
                    .collect(),
            })
            .collect();
        let wanted: BTreeSet<&str> = query.hosts.iter().map(|h| h.host.as_str()).collect();
        let short_msgs = self
            .hsdb
            .list::<ShortMsgRecord>()
            .await?
            .into_iter()
            .filter(|m| wanted.contains(m.host.as_str()))
            .map(|m| pb::ShortMsg { host: m.host, vm_uuid: m.vm_uuid, vm: m.vm, dbell: m.dbell })
            .collect();
        Ok(Response::new(pb::NeedsAttentionReply { vios, vms, short_msgs }))
    }

    async fn sanity(&self, _: Request<pb::SanityRequest>) -> Result<Response<pb::SanityReply>, Status> {
        let hm_incarnation = self.monitor.send(Incarnation).await.map_err(VmrmError::from)?;
        Ok(Response::new(pb::SanityReply { vios: self.vios.clone(), hm_incarnation }))
    }

    async fn shutdown(&self, _: Request<pb::ViosShutdownRequest>) -> Result<Response<pb::ViosShutdownReply>, Status> {
        self.monitor.send(ShutDown).await.map_err(VmrmError::from)??;
        tracing::warn!(vios = %self.vios, "VIOS shut down on purpose: the node stops");
        self.stop.notify_one();
        Ok(Response::new(pb::ViosShutdownReply {}))
    }

    async fn put_msg(&self, req: Request<pb::PutMsgRequest>) -> Result<Response<pb::MsgReply>, Status> {
        self.ar.put(req.into_inner()).await?;
        Ok(Response::new(pb::MsgReply {}))
    }

    async fn query_msg(&self, req: Request<pb::MsgRef>) -> Result<Response<pb::QueryMsgReply>, Status> {
        let answered = self.ar.query(req.into_inner().hs_tag).await?;
        Ok(Response::new(pb::QueryMsgReply { answered }))
    }

    async fn get_msg(&self, req: Request<pb::MsgRef>) -> Result<Response<pb::GetMsgReply>, Status> {
        let payload = self.ar.get(req.into_inner().hs_tag).await?;
        Ok(Response::new(pb::GetMsgReply { payload }))
    }

    async fn ack_msg(&self, req: Request<pb::MsgRef>) -> Result<Response<pb::MsgReply>, Status> {
        self.ar.ack(req.into_inner().hs_tag).await?;
        Ok(Response::new(pb::MsgReply {}))
    }

    async fn acknowledge_doorbell(&self, req: Request<pb::DoorbellAck>) -> Result<Response<pb::MsgReply>, Status> {
        self.ar.acknowledge_doorbell(&req.into_inner()).await?;
        Ok(Response::new(pb::MsgReply {}))
    }
}
