//! The controller's side of application reporting (seed 000 §2.3.3, the SHORTMSG task): for a
//! VM whose doorbell the FDE saw in NeedsAttention, acknowledge the doorbell, PUT
//! `<Command code="0x2"/>` through a VIOS of the VM's host, QUERY until the VM's answer is in
//! the HSDB, GET it, ACK it (the exchange's row is cleared and the agent drops its cached
//! answer). Then the applications are recorded for `ksysmgr query app`, and the pure
//! [`escalate`] decides what a new FAILURE means for the VM.
use crate::clock::Instant;
use crate::controller::apps::Apps;
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::logic::app_engine::{AppState, AppStatus};
use crate::logic::app_escalation::{Escalation, VmAppAction, escalate};
use crate::pb::{self, vios_client::ViosClient};
use crate::transport::deadline;
use tonic::transport::Channel;

impl Apps {
    /// One SHORTMSG task: the exchange with the VM, then what its report means.
    pub async fn resync_apps(&self, group: &str, doorbell: &pb::ShortMsg) -> Result<()> {
        let vms = self.hsdb.list::<VmRecord>().await?;
        let Some(vm) = vms.into_iter().find(|v| v.uuid == doorbell.vm_uuid) else {
            return Err(VmrmError::NotFound(format!("no VM with uuid {} (LPAR {})", doorbell.vm_uuid, doorbell.vm)));
        };
        let mut client = self.acknowledge_doorbell(&vm.host, doorbell).await?;
        let apps = self.exchange(&mut client, &vm).await?;
        self.apply_report(group, &vm.name, apps).await
    }

    /// Seed: "FDE performing doAcknowledge", through the first VIOS of the host that answers;
    /// the exchange goes through the same one.
    async fn acknowledge_doorbell(&self, host: &str, doorbell: &pb::ShortMsg) -> Result<ViosClient<Channel>> {
        let vioses = self.hsdb.list::<ViosRecord>().await?;
        let ack = pb::DoorbellAck { vm_uuid: doorbell.vm_uuid.clone(), dbell: doorbell.dbell };
        let mut last = VmrmError::unavailable(format!("host {host} has no VIOS"));
        for v in vioses.iter().filter(|v| v.host == host) {
            let mut client = ViosClient::new(self.pool.get(&v.endpoint)?);
            match client.acknowledge_doorbell(deadline(ack.clone(), self.timing.rpc_deadline)).await {
                Ok(_) => return Ok(client),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    /// PUT, QUERY until answered (every fifth of a heartbeat period: 2 s with the seed's 10 s),
    /// GET, ACK.
    async fn exchange(&self, client: &mut ViosClient<Channel>, vm: &VmRecord) -> Result<Vec<AppStatus>> {
        let hs_tag = new_hs_tag();
        let rpc = self.timing.rpc_deadline;
        let put =
            pb::PutMsgRequest { vm_uuid: vm.uuid.clone(), hs_tag, seq: 1, payload: RESYNC_APPS_COMMAND.to_string() };
        client.put_msg(deadline(put, rpc)).await?;
        tracing::debug!(vm = %vm.name, "doPutMsg: {RESYNC_APPS_COMMAND} placed to HM, hsTag:{hs_tag} seqNub:1");
        let every = self.timing.vm_heartbeat / 5;
        let give_up = Instant::now() + self.timing.vm_heartbeat * 10;
        let tag = pb::MsgRef { hs_tag };
        while !client.query_msg(deadline(tag, rpc)).await?.into_inner().answered {
            if Instant::now() >= give_up {
                let _ = client.ack_msg(deadline(tag, rpc)).await;
                return Err(VmrmError::unavailable(format!("VM {} did not answer hsTag {hs_tag} in time", vm.name)));
            }
            tokio::time::sleep(every).await;
        }
        let payload = client.get_msg(deadline(tag, rpc)).await?.into_inner().payload;
        client.ack_msg(deadline(tag, rpc)).await?;
        tracing::debug!(vm = %vm.name, "doAckMsg::Ack completed successfully for tag:{hs_tag}");
        decode_apps(&payload)
    }

    /// Acts on a new FAILURE, then records the report (seed: `checkRebootOrRelocation`,
    /// `compare_And_DoUpdate`). The report is recorded last: if the action fails, the FAILURE
    /// is still new when the report is taken again.
    async fn apply_report(&self, group: &str, vm_name: &str, mut apps: Vec<AppStatus>) -> Result<()> {
        let stored: Vec<AppStatus> =
            self.hsdb.list::<AppRecord>().await?.into_iter().filter(|r| r.vm == vm_name).map(|r| r.app).collect();
        let (mut vm, version) = self.records.vm(vm_name).await?;
        let escalation = escalate(&stored, &apps, vm.vm_restart_count);
        for app in &apps {
            tracing::debug!(vm = %vm_name, "checkRebootOrRelocation APP:[{}]:isMonitored:{}:critical:{}:color:{}",
                app.uuid, u8::from(app.monitored), yes_no(app.critical), app.state.color());
        }
        for failed in &escalation.failed {
            let message = format!(
                "application {} is in FAILURE after its restarts in the VM (critical: {})",
                failed.name,
                yes_no(failed.critical)
            );
            self.hsdb.append_event(&EventRecord::new(EventName::PermanentAppFailure, vm_name, message)).await?;
        }
        let blocked = match escalation.action {
            VmAppAction::None => None,
            _ => self.why_not_escalate(&vm).await?,
        };
        match (escalation.action, blocked) {
            (VmAppAction::None, _) => tracing::debug!(vm = %vm_name, "No Action needed on LPAR[{}]", vm.uuid),
            (_, Some(reason)) => tracing::warn!(vm = %vm_name, "critical application failed, no VM action: {reason}"),
            (_, None) => {
                vm.vm_restart_count = escalation.vm_restart_count;
                self.hsdb.put_if_version(&vm, version).await?;
                self.escalate_vm(group, vm.clone(), &escalation).await?;
                // Being restarted with its VM: YELLOW until the agent reports again.
                for app in apps.iter_mut().filter(|a| escalation.failed.iter().any(|f| f.critical && f.name == a.name))
                {
                    app.state = AppState::ToStart;
                }
            }
        }
        if escalation.action == VmAppAction::None && escalation.vm_restart_count != vm.vm_restart_count {
            vm.vm_restart_count = escalation.vm_restart_count;
            self.hsdb.put_if_version(&vm, version).await?;
        }
        for gone in stored.iter().filter(|s| !apps.iter().any(|a| a.name == s.name)) {
            self.hsdb.delete::<AppRecord>(&AppRecord::key_of(vm_name, &gone.name)).await?;
        }
        for app in apps.iter().filter(|a| !stored.contains(a)) {
            self.hsdb.put(&AppRecord { vm: vm_name.to_string(), app: app.clone() }).await?;
        }
        Ok(())
    }

    /// Why a critical application's FAILURE does not move the VM, if it does not.
    async fn why_not_escalate(&self, vm: &VmRecord) -> Result<Option<String>> {
        if !vm.managed {
            return Ok(Some("the VM is not managed".into()));
        }
        if vm.vm_status != VmStatus::NoOperationInProgress {
            return Ok(Some(format!("the VM has an operation in progress ({})", vm.vm_status)));
        }
        if !self.records.ha_monitor_levels(&vm.host).await?.vm(vm.ha_monitor) {
            return Ok(Some("ha_monitor is disabled for it".into()));
        }
        Ok(None)
    }

    async fn escalate_vm(&self, group: &str, vm: VmRecord, escalation: &Escalation) -> Result<()> {
        let apps: Vec<&str> = escalation.failed.iter().filter(|f| f.critical).map(|f| f.name.as_str()).collect();
        let why = format!("critical application {} in FAILURE", apps.join(", "));
        let (group, _) = self.records.host_group(group).await?;
        match escalation.action {
            VmAppAction::None => Ok(()),
            VmAppAction::RestartInPlace if group.restart_policy == RestartPolicy::AdvisoryMode => {
                let message = format!("restart VM {} on its host {} ({why})", vm.name, vm.host);
                self.hsdb.append_event(&EventRecord::new(EventName::RestartAdvised, &vm.name, message)).await
            }
            VmAppAction::RestartInPlace => self.recovery.restart_in_place(&vm.name, &why).await,
            VmAppAction::Relocate => {
                let name = vm.name.clone();
                tracing::warn!(vm = %name, "{why} after {} restarts on the same host: moving the VM", crate::logic::app_escalation::VM_MAX_RESTART_COUNT);
                let out = Lines::default();
                out.push(say::vm_restart_in_progress(&name));
                self.recovery.recover(&group, vec![vm], None, RestartCause::AppFailure, &name, &out).await.map(drop)
            }
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// An exchange's tag (seed: `hsTag:1542894422`), unique enough: the clock in nanoseconds.
fn new_hs_tag() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_nanos() as u64).max(1)
}
