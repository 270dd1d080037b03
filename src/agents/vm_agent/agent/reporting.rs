//! The agent's side of application reporting: what a host monitor's heartbeat ack brings
//! (recorded doorbell bits, messages put for the VM, confirmations) and the answers it sends
//! back. The bookkeeping is the pure [`AppReport`]; the answer comes from the running AME.
use super::VmAgent;
use crate::agents::vm_agent::ame::AmeRequest;
use crate::agents::vm_agent::report::Answer;
use crate::domain::{AppsReply, RESYNC_APPS_COMMAND, encode_apps};
use crate::pb::{ArMessage, ArResponse, HeartbeatAck, host_monitor_client::HostMonitorClient};
use crate::transport::deadline;
use actix::prelude::*;

impl VmAgent {
    pub(super) fn heard_from(&mut self, endpoint: String, ack: HeartbeatAck, ctx: &mut Context<Self>) {
        self.note_incarnation(endpoint.clone(), ack.hm_incarnation);
        self.report.recorded(ack.doorbell_recorded);
        self.report.confirmed(&ack.confirmed);
        for message in ack.requests {
            self.answer(&endpoint, message, ctx);
        }
    }

    /// PMSG_REQ → PMSG_RSP, to the host monitor that delivered the message.
    fn answer(&mut self, endpoint: &str, message: ArMessage, ctx: &mut Context<Self>) {
        if !self.running {
            return;
        }
        let tag = message.hs_tag;
        match self.report.answer(tag) {
            Answer::Pending => {}
            Answer::Cached(payload) => self.put_response(endpoint, &message, payload, ctx),
            Answer::Ask if message.payload != RESYNC_APPS_COMMAND => {
                let reply: AppsReply = Err(format!("unknown command {}", message.payload));
                let payload = encode_apps(&reply);
                self.report.answered(tag, payload.clone());
                self.put_response(endpoint, &message, payload, ctx);
            }
            Answer::Ask => {
                let Some(ame) = self.ame.clone() else {
                    return self.report.not_answered(tag);
                };
                let endpoint = endpoint.to_string();
                let ask = async move { ame.send(AmeRequest::Status).await };
                ctx.spawn(ask.into_actor(self).map(move |apps, act, ctx| match apps {
                    Ok(Ok(apps)) => {
                        tracing::debug!(vm = %act.def.name, "hsTag {tag}: reporting {} application(s)", apps.len());
                        let payload = encode_apps(&Ok(apps));
                        act.report.answered(tag, payload.clone());
                        act.put_response(&endpoint, &message, payload, ctx);
                    }
                    _ => act.report.not_answered(tag),
                }));
            }
        }
    }

    fn put_response(&self, endpoint: &str, message: &ArMessage, payload: String, ctx: &mut Context<Self>) {
        let Ok(channel) = self.links.pool.get(endpoint) else {
            return;
        };
        let rsp = ArResponse { vm_uuid: self.def.uuid.clone(), hs_tag: message.hs_tag, seq: message.seq, payload };
        let req = deadline(rsp, self.links.timing.vm_heartbeat);
        let call = async move { HostMonitorClient::new(channel).put_response(req).await };
        ctx.spawn(call.into_actor(self).map(|sent, act, _| {
            if let Err(e) = sent {
                tracing::debug!(vm = %act.def.name, "application report not delivered this time: {e}");
            }
        }));
    }
}
