//! A running partition and its VM agent. While it runs, the agent heartbeats to both host
//! monitors of its host, the OS answers ping on the VM's own address (a TCP listener: the FDE's
//! ping is a connection attempt), and the VM does I/O on its SAN disk with its host's
//! reservation key. A write the SAN rejects means the VM has been fenced: it crashes (stops all
//! activity) at once — the simulated equivalent of a VM losing its storage.
//!
//! Agent and OS fail separately ([`VmFault`]), because the FDE must tell them apart: a dead
//! agent in a live OS is not a VM failure, a hung OS is.
mod hypervisor;
mod report;
mod workload;

pub use hypervisor::SimulatedHypervisor;
use workload::{PauseVm, ResumeVm};

use crate::agents::vm_agent::ame::{AmeActor, AmeRequest, AppsChanged, ProcessGroups, StopAme};
use crate::agents::vm_agent::appserver::AppServer;
use crate::agents::vm_agent::guest::GuestDir;
use crate::agents::vm_agent::report::AppReport;
use crate::agents::vm_agent::socket::{self, AgentReply, AgentRequest, SocketFile, Wire};
use crate::config::ViosRef;
use crate::domain::LparDefinition;
use crate::error::{Result, VmrmError};
use crate::in_flight::InFlight;
use crate::logic::app_engine::VmmError;
use crate::pb::{VmHeartbeat, WriteRequest, host_monitor_client::HostMonitorClient, san_client::SanClient};
use crate::profile::Timing;
use crate::sim::guest_memory::SharedMemory;
use crate::sim::hypervisor::{PartitionStopped, VmFault};
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::collections::HashMap;

/// Stops the VM; `clean` sends the agent's shutdown notice (seed: SHDN) to the host monitors.
#[derive(Message)]
#[rtype(result = "()")]
struct StopVm {
    clean: bool,
}

/// Binds the address the VM's OS answers ping on, on the host's interface `ip`.
fn bind_network(ip: &str) -> Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(VmrmError::internal)?;
    listener.set_nonblocking(true).map_err(VmrmError::internal)?;
    let address = listener.local_addr().map_err(VmrmError::internal)?.to_string();
    Ok((listener, address))
}

/// What a VM gets from the host it runs on.
#[derive(Clone)]
pub struct VmHost {
    /// The host's name.
    pub name: String,
    pub san_key: u64,
    pub vios: Vec<ViosRef>,
    pub san: String,
    pub timing: Timing,
    pub pool: ChannelPool,
    /// Its server unit, told when the VM stops on its own.
    pub su: Recipient<PartitionStopped>,
    /// The root of the VMs' guest directories.
    pub guests: std::path::PathBuf,
}

struct VmActor {
    def: LparDefinition,
    host: VmHost,
    network: Option<std::net::TcpListener>,
    answering_ping: Option<SpawnHandle>,
    agent_running: bool,
    os_hung: bool,
    /// Host monitor endpoint → the incarnation it answered with last.
    hm_incarnations: HashMap<String, String>,
    sequence: u64,
    write: InFlight,
    clean_stop: bool,
    guest: GuestDir,
    /// The agent's Application Management Engine, while the agent runs.
    ame: Option<Addr<AmeActor>>,
    processes: ProcessGroups,
    socket: Option<SocketFile>,
    /// The agent's application reporting to the controller (doorbells, answers).
    report: AppReport,
    /// The VM's address (its network, the application server).
    ip: std::net::IpAddr,
    /// The guest application server, while the agent runs.
    appserver: Option<AppServer>,
    /// The guest's main memory, which its workload dirties and a migration copies.
    memory: SharedMemory,
    /// Stopped for a migration's switchover.
    paused: bool,
    last_step: std::time::Instant,
    workload_log: Option<std::fs::File>,
}

impl VmActor {
    pub fn new(def: LparDefinition, host: VmHost, network: std::net::TcpListener, memory: SharedMemory) -> Self {
        Self {
            memory,
            paused: false,
            last_step: std::time::Instant::now(),
            workload_log: None,
            answering_ping: None,
            agent_running: true,
            os_hung: false,
            hm_incarnations: HashMap::new(),
            sequence: 0,
            write: InFlight::default(),
            clean_stop: false,
            guest: GuestDir::of(&host.guests, &def.name),
            ame: None,
            processes: ProcessGroups::default(),
            socket: None,
            report: AppReport::default(),
            ip: network.local_addr().map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip()),
            appserver: None,
            network: Some(network),
            def,
            host,
        }
    }

    /// The VM's files and the socket `ksysvmmgr` reaches the agent through.
    fn open_guest(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        self.guest.create()?;
        std::fs::write(self.guest.uuid_path(), &self.def.uuid).map_err(VmrmError::internal)?;
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

    /// Starts the agent's engine and application server; `boot`: the VM has just started
    /// (apps are started as `rebootappstarttype` says).
    fn launch_agent(&mut self, boot: bool, ctx: &mut Context<Self>) {
        let notify = ctx.address().recipient();
        let ame = AmeActor::new(self.def.name.clone(), self.guest.clone(), self.processes.clone(), notify, boot);
        self.report = AppReport::default();
        self.ame = Some(ame.start());
        self.appserver = AppServer::start(&self.def.name, self.ip, &self.guest, self.processes.clone())
            .inspect_err(|e| tracing::warn!(vm = %self.def.name, "no application server: {e}"))
            .ok();
    }

    fn stop_agent(&mut self, clean: bool, ctx: &mut Context<Self>) {
        if clean && self.agent_running {
            self.heartbeat(true, 0, ctx);
        }
        self.agent_running = false;
        if let Some(ame) = self.ame.take() {
            ame.do_send(StopAme);
        }
        if let Some(server) = self.appserver.take() {
            server.kill_processes();
        }
    }

    fn start_agent(&mut self, ctx: &mut Context<Self>) {
        self.hm_incarnations.clear();
        self.agent_running = true;
        self.launch_agent(false, ctx);
    }

    fn reply(&self, apps: Vec<crate::logic::app_engine::AppStatus>) -> AgentReply {
        AgentReply { active: self.agent_running, pid: std::process::id(), apps }
    }

    fn heartbeat(&self, shutdown: bool, doorbell: u64, ctx: &mut Context<Self>) {
        for vios in &self.host.vios {
            let Ok(channel) = self.host.pool.get(&vios.endpoint) else {
                continue;
            };
            let msg = VmHeartbeat {
                vm: self.def.name.clone(),
                vm_uuid: self.def.uuid.clone(),
                sequence: self.sequence,
                shutdown,
                doorbell,
            };
            let req = deadline(msg, self.host.timing.vm_heartbeat);
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

    fn write_disk(&mut self, ctx: &mut Context<Self>) {
        let Ok(channel) = self.host.pool.get(&self.host.san) else {
            return;
        };
        if !self.write.start() {
            return;
        }
        let req = deadline(
            WriteRequest { disk: self.def.disk.clone(), key: self.host.san_key, block: self.sequence },
            self.host.timing.rpc_deadline,
        );
        let call = async move { SanClient::new(channel).write(req).await.map(|r| r.into_inner().accepted) };
        ctx.spawn(call.into_actor(self).map(|result, act, ctx| {
            act.write.end();
            if let Ok(false) = result {
                act.host.su.do_send(PartitionStopped {
                    name: act.def.name.clone(),
                    reason: format!(
                        "the SAN rejected a write to {}: this host's reservation was preempted",
                        act.def.disk
                    ),
                });
                ctx.stop();
            }
        }));
    }

    /// Accepts (and drops) every connection while the OS runs: that is its answer to ping.
    fn answer_ping(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.network.take() else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return tracing::warn!(vm = %self.def.name, "the VM's network did not start: {e}"),
        };
        let accept = async move { while listener.accept().await.is_ok() {} };
        self.answering_ping = Some(ctx.spawn(accept.into_actor(self)));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.os_hung || self.paused {
            return;
        }
        self.sequence += 1;
        if self.agent_running {
            let doorbell = self.report.doorbell();
            self.heartbeat(false, doorbell, ctx);
        }
        self.write_disk(ctx);
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(vm = %self.def.name, "VM started; agent heartbeating to {} host monitors", self.host.vios.len());
        self.answer_ping(ctx);
        if let Err(e) = self.open_guest(ctx) {
            tracing::warn!(vm = %self.def.name, "the VM's files are not reachable, no application monitoring: {e}");
        }
        self.launch_agent(true, ctx);
        self.start_workload(ctx);
        ctx.run_interval(self.host.timing.vm_heartbeat, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if self.clean_stop && self.agent_running && !self.os_hung {
            self.heartbeat(true, 0, ctx);
        }
        if let Some(ame) = self.ame.take() {
            ame.do_send(StopAme);
        }
        // Powered off: every process of the VM dies with it.
        self.processes.signal_all(libc::SIGKILL);
        self.appserver = None;
        self.socket = None;
        tracing::info!(vm = %self.def.name, clean = self.clean_stop, "VM stopped");
    }
}

impl Handler<StopVm> for VmActor {
    type Result = ();
    fn handle(&mut self, msg: StopVm, ctx: &mut Context<Self>) {
        self.clean_stop = msg.clean;
        ctx.stop();
    }
}

impl Handler<VmFault> for VmActor {
    type Result = Result<()>;
    fn handle(&mut self, fault: VmFault, ctx: &mut Context<Self>) -> Result<()> {
        let name = self.def.name.clone();
        if self.os_hung {
            return Err(VmrmError::precondition(format!("the OS of VM {name} is hung; only a restart helps")));
        }
        tracing::warn!(vm = %name, "fault injected: {fault:?}");
        match fault {
            VmFault::KillAgent => self.stop_agent(false, ctx),
            VmFault::StopAgent => self.stop_agent(true, ctx),
            VmFault::StartAgent => self.start_agent(ctx),
            VmFault::HangOs => {
                self.os_hung = true;
                // Its processes freeze with the OS; the server just stops answering.
                self.appserver = None;
                self.stop_agent(false, ctx);
                self.processes.signal_all(libc::SIGSTOP);
                if let Some(handle) = self.answering_ping.take() {
                    ctx.cancel_future(handle);
                }
            }
        }
        Ok(())
    }
}

/// A `ksysvmmgr` request through the VM's socket.
#[derive(Message)]
#[rtype(result = "Wire")]
struct SocketCall(AgentRequest);

impl Handler<SocketCall> for VmActor {
    type Result = ResponseActFuture<Self, Wire>;
    fn handle(&mut self, SocketCall(req): SocketCall, ctx: &mut Context<Self>) -> Self::Result {
        if self.os_hung {
            // A hung OS answers nothing; the caller times out.
            return Box::pin(actix::fut::wrap_future(futures::future::pending::<Wire>()));
        }
        let forward = match req {
            AgentRequest::StartVmm if self.agent_running => {
                return Box::pin(actix::fut::ready(Err(VmmError::daemon(
                    "0513-029 The ksys_vmm Subsystem is already active.",
                ))));
            }
            AgentRequest::StartVmm => {
                self.start_agent(ctx);
                AmeRequest::Status
            }
            AgentRequest::StopVmm if !self.agent_running => {
                return Box::pin(actix::fut::ready(Err(VmmError::daemon(
                    "0513-004 The Subsystem or Group, ksys_vmm, is currently inoperative.",
                ))));
            }
            AgentRequest::StopVmm => {
                self.stop_agent(true, ctx);
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

impl Handler<AppsChanged> for VmActor {
    type Result = ();
    fn handle(&mut self, AppsChanged(bits): AppsChanged, _: &mut Context<Self>) {
        self.report.ring(bits);
    }
}
