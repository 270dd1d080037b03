//! The VM agent inside a running guest (seed: `ksys_vmmd`): it heartbeats to both host monitors
//! of its host (seed: the HM identifier it hears back tells it when one restarted), runs the
//! Application Management Engine, serves `ksysvmmgr` on the guest's socket and the guest
//! application server, and answers the controller's application requests ([`reporting`]).
//!
//! It lives as long as the guest's OS runs; the daemon itself can be stopped (it says so:
//! `SHDN`), killed (silently) and started again inside it. The guest that hosts it — a
//! simulated partition today — tells it when its CPUs stop ([`GuestCpu`]), when its OS hangs
//! ([`Freeze`]) and when it powers off ([`PowerOff`]); nothing here knows what hosts it.
mod reporting;

use super::ame::{AmeActor, AmeRequest, AppsChanged, ProcessGroups, StopAme};
use super::appserver::AppServer;
use super::guest::GuestDir;
use super::report::AppReport;
use super::socket::{self, AgentReply, AgentRequest, SocketFile, Wire};
use crate::config::ViosRef;
use crate::domain::LparDefinition;
use crate::error::Result;
use crate::logic::app_engine::{AppStatus, VmmError};
use crate::pb::{VmHeartbeat, host_monitor_client::HostMonitorClient};
use crate::profile::Timing;
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the guest's CPUs run: not while its OS hangs or it is paused for a migration's
/// switchover. Shared by the guest and everything running in it.
#[derive(Debug, Clone)]
pub struct GuestCpu(Arc<AtomicBool>);

impl Default for GuestCpu {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl GuestCpu {
    pub fn runs(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set_running(&self, runs: bool) {
        self.0.store(runs, Ordering::Relaxed);
    }
}

/// Where the agent reaches its host monitors.
#[derive(Clone)]
pub struct AgentLinks {
    /// The VIOSs of the host the guest runs on, each with a host monitor.
    pub vios: Vec<ViosRef>,
    /// The serial of the host it runs on, as the hardware tells the guest (seed: the
    /// partition's `/proc/device-tree/system-id`).
    pub serial: String,
    pub timing: Timing,
    pub pool: ChannelPool,
}

/// What an operator (or a drill) does to the agent daemon.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum Daemon {
    /// It dies without a word.
    Kill,
    /// It stops cleanly and tells its host monitors (seed: `SHDN:DAEMON`).
    Stop,
    /// It starts again and handshakes anew.
    Start,
}

/// The guest's OS hangs: the agent and every process of the guest freeze where they are.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Freeze;

/// The guest powers off; `clean`: its OS shut down, so a running agent says so (seed: SHDN).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PowerOff {
    pub clean: bool,
}

pub struct VmAgent {
    def: LparDefinition,
    links: AgentLinks,
    cpu: GuestCpu,
    /// The daemon runs.
    running: bool,
    /// The guest's OS hangs: nothing here runs again.
    frozen: bool,
    clean_stop: bool,
    /// Host monitor endpoint → the incarnation it answered with last.
    hm_incarnations: HashMap<String, String>,
    sequence: u64,
    guest: GuestDir,
    /// The Application Management Engine, while the daemon runs.
    ame: Option<Addr<AmeActor>>,
    processes: ProcessGroups,
    socket: Option<SocketFile>,
    /// Application reporting to the controller (doorbells, answers).
    report: AppReport,
    /// The guest's address (the application server listens on it).
    ip: std::net::IpAddr,
    /// The guest application server, while the daemon runs.
    appserver: Option<AppServer>,
}

impl VmAgent {
    /// The agent of the guest `def`, whose files are under `guests`, reached at `ip`; refused
    /// for a name that is not a VM's (it names the guest's directory).
    pub fn new(
        def: LparDefinition,
        links: AgentLinks,
        guests: &std::path::Path,
        ip: std::net::IpAddr,
        cpu: GuestCpu,
    ) -> crate::error::Result<Self> {
        Ok(Self {
            guest: GuestDir::of(guests, &def.name)?,
            def,
            links,
            cpu,
            running: true,
            frozen: false,
            clean_stop: false,
            hm_incarnations: HashMap::new(),
            sequence: 0,
            ame: None,
            processes: ProcessGroups::default(),
            socket: None,
            report: AppReport::default(),
            ip,
            appserver: None,
        })
    }

    /// Takes on the identity the guest's map gives the host it boots on; on a host the map has
    /// no entry for, the guest's own configuration stands (a file applied elsewhere goes).
    fn apply_identity(&self) -> Result<()> {
        let path = self.guest.dr_ip_conf_path();
        match self.def.identities.iter().find(|g| g.serial == self.links.serial) {
            Some(entry) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(crate::error::VmrmError::internal)?;
                }
                std::fs::write(&path, entry.identity.config_file()).map_err(crate::error::VmrmError::internal)?;
                tracing::info!(vm = %self.def.name, serial = %self.links.serial, "network identity {} ({}) applied", entry.identity.hostname, entry.identity.ip);
            }
            None if path.exists() => {
                std::fs::remove_file(&path).map_err(crate::error::VmrmError::internal)?;
                tracing::info!(vm = %self.def.name, serial = %self.links.serial, "no network identity for this host: the guest's own stands");
            }
            None => {}
        }
        Ok(())
    }

    /// The guest's files and the socket `ksysvmmgr` reaches the agent through.
    fn open_guest(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        self.guest.create()?;
        std::fs::write(self.guest.uuid_path(), &self.def.uuid).map_err(crate::error::VmrmError::internal)?;
        let (listener, file) = socket::bind(&self.guest)?;
        self.socket = Some(file);
        let addr = ctx.address();
        let accept = async move {
            while let Ok((stream, _)) = listener.accept().await {
                let addr = addr.clone();
                actix::spawn(socket::serve_one(stream, move |req| async move {
                    addr.send(SocketCall(req)).await.unwrap_or_else(|_| Err(VmmError::daemon("the VM is stopping")))
                }));
            }
        };
        ctx.spawn(accept.into_actor(self));
        Ok(())
    }

    /// Starts the engine and the application server; `boot`: the guest has just started
    /// (apps are started as `rebootappstarttype` says).
    fn launch(&mut self, boot: bool, ctx: &mut Context<Self>) {
        let notify = ctx.address().recipient();
        let ame = AmeActor::new(self.def.name.clone(), self.guest.clone(), self.processes.clone(), notify, boot);
        self.report = AppReport::default();
        self.ame = Some(ame.start());
        let managers = self.links.pool.security().ca();
        self.appserver = AppServer::start(&self.def.name, self.ip, &self.guest, self.processes.clone(), managers)
            .inspect_err(|e| tracing::warn!(vm = %self.def.name, "no application server: {e}"))
            .ok();
    }

    fn stop_daemon(&mut self, clean: bool, ctx: &mut Context<Self>) {
        if clean && self.running {
            self.heartbeat(true, 0, ctx);
        }
        self.running = false;
        if let Some(ame) = self.ame.take() {
            ame.do_send(StopAme);
        }
        if let Some(server) = self.appserver.take() {
            server.kill_processes();
        }
    }

    fn start_daemon(&mut self, ctx: &mut Context<Self>) {
        self.hm_incarnations.clear();
        self.running = true;
        self.launch(false, ctx);
    }

    fn reply(&self, apps: Vec<AppStatus>) -> AgentReply {
        AgentReply { active: self.running, pid: std::process::id(), apps }
    }

    fn heartbeat(&self, shutdown: bool, doorbell: u64, ctx: &mut Context<Self>) {
        for vios in &self.links.vios {
            let Ok(channel) = self.links.pool.get(&vios.endpoint) else {
                continue;
            };
            let msg = VmHeartbeat {
                vm: self.def.name.clone(),
                vm_uuid: self.def.uuid.clone(),
                sequence: self.sequence,
                shutdown,
                doorbell,
            };
            let req = deadline(msg, self.links.timing.vm_heartbeat);
            let endpoint = vios.endpoint.clone();
            let call = async move { HostMonitorClient::new(channel).heartbeat(req).await };
            ctx.spawn(call.into_actor(self).map(move |reply, act, ctx| {
                if let Ok(reply) = reply {
                    act.heard_from(endpoint, reply.into_inner(), ctx);
                }
            }));
        }
    }

    /// Seed: an agent that sees a new HM identifier drops the session and handshakes again.
    fn note_incarnation(&mut self, endpoint: String, incarnation: String) {
        match self.hm_incarnations.insert(endpoint.clone(), incarnation.clone()) {
            Some(old) if old != incarnation => tracing::info!(
                vm = %self.def.name,
                "HostMonitor at {endpoint} restarted (incarnation {old} → {incarnation}): new handshake"
            ),
            _ => {}
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.frozen || !self.cpu.runs() {
            return;
        }
        self.sequence += 1;
        if self.running {
            let doorbell = self.report.doorbell();
            self.heartbeat(false, doorbell, ctx);
        }
    }
}

impl Actor for VmAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(vm = %self.def.name, "VM started; agent heartbeating to {} host monitors", self.links.vios.len());
        if let Err(e) = self.open_guest(ctx) {
            tracing::warn!(vm = %self.def.name, "the VM's files are not reachable, no application monitoring: {e}");
        }
        // The network identity comes before the applications (seed: `vmr_dr_ip_conf.service`
        // runs before network-pre.target).
        if let Err(e) = self.apply_identity() {
            tracing::warn!(vm = %self.def.name, "the network identity was not applied: {e}");
        }
        self.launch(true, ctx);
        ctx.run_interval(self.links.timing.vm_heartbeat, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if self.clean_stop && self.running && !self.frozen {
            self.heartbeat(true, 0, ctx);
        }
        if let Some(ame) = self.ame.take() {
            ame.do_send(StopAme);
        }
        // Powered off: every process of the guest dies with it.
        self.processes.signal_all(libc::SIGKILL);
        self.appserver = None;
        self.socket = None;
    }
}

impl Handler<Daemon> for VmAgent {
    type Result = ();
    fn handle(&mut self, daemon: Daemon, ctx: &mut Context<Self>) {
        match daemon {
            Daemon::Kill => self.stop_daemon(false, ctx),
            Daemon::Stop => self.stop_daemon(true, ctx),
            Daemon::Start => self.start_daemon(ctx),
        }
    }
}

impl Handler<Freeze> for VmAgent {
    type Result = ();
    fn handle(&mut self, _: Freeze, ctx: &mut Context<Self>) {
        self.frozen = true;
        // The processes freeze with the OS; the application server just stops answering.
        self.appserver = None;
        self.stop_daemon(false, ctx);
        self.processes.signal_all(libc::SIGSTOP);
    }
}

impl Handler<PowerOff> for VmAgent {
    type Result = ();
    fn handle(&mut self, msg: PowerOff, ctx: &mut Context<Self>) {
        self.clean_stop = msg.clean;
        ctx.stop();
    }
}

/// A `ksysvmmgr` request through the guest's socket.
#[derive(Message)]
#[rtype(result = "Wire")]
struct SocketCall(AgentRequest);

impl Handler<SocketCall> for VmAgent {
    type Result = ResponseActFuture<Self, Wire>;
    fn handle(&mut self, SocketCall(req): SocketCall, ctx: &mut Context<Self>) -> Self::Result {
        if self.frozen {
            // A hung OS answers nothing; the caller times out.
            return Box::pin(actix::fut::wrap_future(futures::future::pending::<Wire>()));
        }
        let forward = match req {
            AgentRequest::StartVmm if self.running => {
                return Box::pin(actix::fut::ready(Err(VmmError::daemon(
                    "0513-029 The ksys_vmm Subsystem is already active.",
                ))));
            }
            AgentRequest::StartVmm => {
                self.start_daemon(ctx);
                AmeRequest::Status
            }
            AgentRequest::StopVmm if !self.running => {
                return Box::pin(actix::fut::ready(Err(VmmError::daemon(
                    "0513-004 The Subsystem or Group, ksys_vmm, is currently inoperative.",
                ))));
            }
            AgentRequest::StopVmm => {
                self.stop_daemon(true, ctx);
                return Box::pin(actix::fut::ready(Ok(self.reply(Vec::new()))));
            }
            AgentRequest::Status => AmeRequest::Status,
            AgentRequest::Sync => AmeRequest::Sync,
            AgentRequest::StartApp(app) => AmeRequest::StartApp(app),
            AgentRequest::StopApp(app) => AmeRequest::StopApp(app),
        };
        let Some(ame) = self.ame.clone() else {
            return Box::pin(actix::fut::ready(match forward {
                AmeRequest::Status => Ok(self.reply(Vec::new())),
                _ => Err(VmmError::daemon("The ksys_vmm daemon is not running: start it with 'ksysvmmgr start vmm'.")),
            }));
        };
        let ask = async move { ame.send(forward).await.unwrap_or_else(|_| Err(VmmError::daemon("the agent stopped"))) };
        Box::pin(ask.into_actor(self).map(|apps, act, _| apps.map(|apps| act.reply(apps))))
    }
}

impl Handler<AppsChanged> for VmAgent {
    type Result = ();
    fn handle(&mut self, AppsChanged(bits): AppsChanged, _: &mut Context<Self>) {
        self.report.ring(bits);
    }
}
