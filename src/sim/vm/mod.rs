//! A running partition: a simulated OS hosting the product's VM agent
//! ([`crate::agents::vm_agent::agent::VmAgent`]). While it runs, the OS answers ping on the VM's
//! own address (a TCP listener: the FDE's ping is a connection attempt), runs its workload on
//! the guest's memory, and does I/O on its SAN disk with its host's reservation key. A write
//! the SAN rejects means the VM has been fenced: it crashes (stops all activity) at once — the
//! simulated equivalent of a VM losing its storage.
//!
//! Agent and OS fail separately ([`VmFault`]), because the FDE must tell them apart: a dead
//! agent in a live OS is not a VM failure, a hung OS is.
mod hypervisor;
mod workload;

pub use hypervisor::SimulatedHypervisor;
use workload::{PauseVm, ResumeVm};

use crate::agents::vm_agent::agent::{AgentLinks, Daemon, Freeze, GuestCpu, PowerOff, VmAgent};
use crate::config::ViosRef;
use crate::domain::LparDefinition;
use crate::domain::identity::copy_stamp;
use crate::error::{Result, VmrmError};
use crate::in_flight::InFlight;
use crate::pb::{HeadRequest, WriteRequest, san_client::SanClient};
use crate::profile::Timing;
use crate::sim::guest_memory::SharedMemory;
use crate::sim::hypervisor::{PartitionStopped, VmFault};
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;

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
    /// Told of each failed guest I/O that was not a fence (the node's FFDC triggers).
    pub io_failed: Option<IoFailed>,
}

/// Called with a failed I/O: whether the SAN could not be reached (the storage path), the disk,
/// and why.
pub type IoFailed = std::sync::Arc<dyn Fn(bool, &str, &str) + Send + Sync>;

struct VmActor {
    def: LparDefinition,
    host: VmHost,
    network: Option<std::net::TcpListener>,
    answering_ping: Option<SpawnHandle>,
    os_hung: bool,
    /// The newest block of the VM's disk log, once read from the SAN at boot: the next write
    /// goes to the block after it.
    head: Option<u64>,
    /// The stamp this copy puts on what it writes (its host and this activation).
    stamp: String,
    write: InFlight,
    clean_stop: bool,
    /// The agent, as long as the OS runs.
    agent: Option<Addr<VmAgent>>,
    /// Runs unless the OS hangs or the VM is paused for a migration's switchover.
    cpu: GuestCpu,
    /// The guest's main memory, which its workload dirties and a migration copies.
    memory: SharedMemory,
    last_step: std::time::Instant,
    workload_log: Option<std::fs::File>,
}

impl VmActor {
    fn new(def: LparDefinition, host: VmHost, network: std::net::TcpListener, memory: SharedMemory) -> Self {
        Self {
            memory,
            last_step: std::time::Instant::now(),
            workload_log: None,
            answering_ping: None,
            os_hung: false,
            head: None,
            stamp: copy_stamp(&host.name, rand::random()),
            write: InFlight::default(),
            clean_stop: false,
            agent: None,
            cpu: GuestCpu::default(),
            network: Some(network),
            def,
            host,
        }
    }

    /// Boots the agent inside the guest.
    fn start_agent(&mut self) {
        let ip = self
            .network
            .as_ref()
            .and_then(|n| n.local_addr().ok())
            .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip());
        let links = AgentLinks {
            vios: self.host.vios.clone(),
            serial: crate::domain::identity::uuid_for("host", &self.host.name),
            timing: self.host.timing,
            pool: self.host.pool.clone(),
        };
        match VmAgent::new(self.def.clone(), links, &self.host.guests, ip, self.cpu.clone()) {
            Ok(agent) => self.agent = Some(agent.start()),
            Err(e) => tracing::error!(vm = %self.def.name, "the VM agent did not start: {e}"),
        }
    }

    /// Writes the next block of the disk's log; until the VM knows where its log is (it just
    /// booted, here or after a move), it reads that first. A write that failed is retried with
    /// the same block, so the log has neither gaps nor repeats.
    fn write_disk(&mut self, ctx: &mut Context<Self>) {
        let Ok(channel) = self.host.pool.get(&self.host.san) else {
            return;
        };
        if !self.write.start() {
            return;
        }
        let (disk, key, timeout) = (self.def.disk.clone(), self.host.san_key, self.host.timing.rpc_deadline);
        let Some(head) = self.head else {
            let read = async move {
                SanClient::new(channel).head(deadline(HeadRequest { disk, key }, timeout)).await.map(|r| r.into_inner())
            };
            ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
                act.write.end();
                match result {
                    Ok(head) => act.head = Some(head.block),
                    Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                        act.fenced(format!("the SAN refused to read {}: {}", act.def.disk, e.message()), ctx)
                    }
                    Err(e) => act.io_failed(&e),
                }
            }));
            return;
        };
        let block = head + 1;
        let req = deadline(WriteRequest { disk, key, block, writer: self.stamp.clone() }, timeout);
        let call = async move { SanClient::new(channel).write(req).await.map(|r| r.into_inner().accepted) };
        ctx.spawn(call.into_actor(self).map(move |result, act, ctx| {
            act.write.end();
            match result {
                Ok(true) => act.head = Some(block),
                Ok(false) => act.fenced(
                    format!("the SAN rejected a write to {}: this host's reservation was preempted", act.def.disk),
                    ctx,
                ),
                Err(e) => act.io_failed(&e),
            }
        }));
    }

    /// A guest I/O failed (and will be retried): the host is told, unless the SAN only said the
    /// disk is not this host's to use (a fence, or a replica's copy).
    fn io_failed(&self, e: &tonic::Status) {
        use tonic::Code;
        let path_lost =
            matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown);
        if let Some(report) = &self.host.io_failed
            && e.code() != Code::FailedPrecondition
        {
            report(path_lost, &self.def.disk, e.message());
        }
    }

    /// The VM lost its storage: it stops at once, and its server unit is told why.
    fn fenced(&mut self, reason: String, ctx: &mut Context<Self>) {
        self.host.su.do_send(PartitionStopped { name: self.def.name.clone(), reason });
        ctx.stop();
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
        if !self.cpu.runs() {
            return;
        }
        self.write_disk(ctx);
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_agent();
        self.answer_ping(ctx);
        self.start_workload(ctx);
        ctx.run_interval(self.host.timing.vm_heartbeat, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(agent) = self.agent.take() {
            agent.do_send(PowerOff { clean: self.clean_stop });
        }
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
        let agent = self.agent.clone().ok_or_else(|| VmrmError::precondition(format!("VM {name} is stopping")))?;
        tracing::warn!(vm = %name, "fault injected: {fault:?}");
        match fault {
            VmFault::KillAgent => agent.do_send(Daemon::Kill),
            VmFault::StopAgent => agent.do_send(Daemon::Stop),
            VmFault::StartAgent => agent.do_send(Daemon::Start),
            VmFault::HangOs => {
                self.os_hung = true;
                self.cpu.set_running(false);
                agent.do_send(Freeze);
                if let Some(handle) = self.answering_ping.take() {
                    ctx.cancel_future(handle);
                }
            }
        }
        Ok(())
    }
}
