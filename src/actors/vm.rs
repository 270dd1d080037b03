//! A running partition and its VM agent. While it runs it heartbeats to both host monitors of
//! its host and does I/O on its SAN disk with its host's reservation key. A write the SAN
//! rejects means the VM has been fenced: it crashes (stops all activity) at once — the
//! simulated equivalent of a VM losing its storage.
use crate::config::ViosRef;
use crate::domain::LparDefinition;
use crate::pb::{VmHeartbeat, WriteRequest, host_monitor_client::HostMonitorClient, san_client::SanClient};
use crate::profile::Timing;
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;

/// Told to the server unit when a VM stops on its own (fenced off its disk).
#[derive(Message)]
#[rtype(result = "()")]
pub struct VmCrashed {
    pub name: String,
    pub reason: String,
}

/// Stops the VM; `clean` sends the agent's shutdown notice (seed: SHDN) to the host monitors.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopVm {
    pub clean: bool,
}

pub struct VmActor {
    pub def: LparDefinition,
    pub san_key: u64,
    pub vios: Vec<ViosRef>,
    pub san: String,
    pub timing: Timing,
    pub pool: ChannelPool,
    pub su: Recipient<VmCrashed>,
    sequence: u64,
    write_in_flight: bool,
    clean_stop: bool,
}

impl VmActor {
    pub fn new(
        def: LparDefinition,
        san_key: u64,
        vios: Vec<ViosRef>,
        san: String,
        timing: Timing,
        pool: ChannelPool,
        su: Recipient<VmCrashed>,
    ) -> Self {
        Self { def, san_key, vios, san, timing, pool, su, sequence: 0, write_in_flight: false, clean_stop: false }
    }

    fn heartbeat(&self, shutdown: bool) {
        for vios in &self.vios {
            let Ok(channel) = self.pool.get(&vios.endpoint) else {
                continue;
            };
            let msg = VmHeartbeat {
                vm: self.def.name.clone(),
                vm_uuid: self.def.uuid.clone(),
                sequence: self.sequence,
                shutdown,
            };
            let req = deadline(msg, self.timing.vm_heartbeat);
            actix::spawn(async move {
                let _ = HostMonitorClient::new(channel).heartbeat(req).await;
            });
        }
    }

    fn write_disk(&mut self, ctx: &mut Context<Self>) {
        if self.write_in_flight {
            return;
        }
        let Ok(channel) = self.pool.get(&self.san) else {
            return;
        };
        self.write_in_flight = true;
        let req = deadline(
            WriteRequest { disk: self.def.disk.clone(), key: self.san_key, block: self.sequence },
            self.timing.rpc_deadline,
        );
        let call = async move { SanClient::new(channel).write(req).await.map(|r| r.into_inner().accepted) };
        ctx.spawn(call.into_actor(self).map(|result, act, ctx| {
            act.write_in_flight = false;
            if let Ok(false) = result {
                act.su.do_send(VmCrashed {
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
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(vm = %self.def.name, "VM started; agent heartbeating to {} host monitors", self.vios.len());
        ctx.run_interval(self.timing.vm_heartbeat, |act, ctx| {
            act.sequence += 1;
            act.heartbeat(false);
            act.write_disk(ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.clean_stop {
            self.heartbeat(true);
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
