//! The host monitor's part in application reporting (seed 000 §2.3.3): a gateway between the
//! controller and the VM agents. Agents ring a doorbell in their heartbeats; the HM records it in
//! the HSDB (`short_msg`), where NeedsAttention finds it. The controller then puts a message for
//! the VM (opCode 47 PUT), polls for the answer (46 QUERY), fetches it (48 GET) and acknowledges
//! it (49 ACK), which clears the exchange's `trans` row (seed: Clear_DB). The HSDB holds every
//! exchange; this HM only remembers what to hand each VM with its next heartbeat ack: messages
//! still unanswered and the confirmations (seed: GMSG) that let the agent drop its cached answer.
use crate::domain::{ArTransRecord, ShortMsgRecord};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, RemoteHsdb};
use crate::pb;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct VmOutbox {
    requests: BTreeMap<u64, pb::ArMessage>,
    confirmed: Vec<u64>,
}

/// VMs with something waiting for their next heartbeat; a message for one more is refused.
pub const MAX_OUTBOX_VMS: usize = 4096;
/// Messages or confirmations waiting for one VM (the controller has one exchange at a time
/// with a VM); the oldest confirmation goes first, a message beyond is refused.
pub const MAX_WAITING_PER_VM: usize = 16;

#[derive(Clone)]
pub struct ArGateway {
    hsdb: RemoteHsdb,
    host: String,
    outbox: Arc<Mutex<HashMap<String, VmOutbox>>>,
}

impl ArGateway {
    pub fn new(hsdb: RemoteHsdb, host: String) -> Self {
        Self { hsdb, host, outbox: Arc::default() }
    }

    fn outbox(&self) -> MutexGuard<'_, HashMap<String, VmOutbox>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.outbox.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refuses a message the outbox has no room for, before anything is written.
    fn room_for(&self, vm_uuid: &str) -> Result<()> {
        let outbox = self.outbox();
        let full = match outbox.get(vm_uuid) {
            Some(vm) => vm.requests.len() >= MAX_WAITING_PER_VM,
            None => outbox.len() >= MAX_OUTBOX_VMS,
        };
        match full {
            false => Ok(()),
            true => Err(VmrmError::precondition(format!(
                "host {}: too many messages wait for their VMs; this one was not put",
                self.host
            ))),
        }
    }

    /// Records a VM's doorbell bits, OR-ed into its pending short message.
    pub async fn ring(&self, hb: &pb::VmHeartbeat) -> Result<()> {
        let pending = self.hsdb.get::<ShortMsgRecord>(&hb.vm_uuid).await?.map_or(0, |(row, _)| row.dbell);
        if pending & hb.doorbell == hb.doorbell {
            return Ok(());
        }
        let row = ShortMsgRecord {
            vm: hb.vm.clone(),
            vm_uuid: hb.vm_uuid.clone(),
            host: self.host.clone(),
            dbell: pending | hb.doorbell,
        };
        tracing::debug!(vm = %hb.vm, "doorbell {:#x} recorded", row.dbell);
        self.hsdb.put(&row).await.map(drop)
    }

    /// The FDE saw `dbell` in NeedsAttention: those bits are cleared (others rung since stay).
    pub async fn acknowledge_doorbell(&self, ack: &pb::DoorbellAck) -> Result<()> {
        let Some((mut row, _)) = self.hsdb.get::<ShortMsgRecord>(&ack.vm_uuid).await? else {
            return Ok(());
        };
        row.dbell &= !ack.dbell;
        match row.dbell {
            0 => self.hsdb.delete::<ShortMsgRecord>(&ack.vm_uuid).await,
            _ => self.hsdb.put(&row).await.map(drop),
        }
    }

    /// What the VM gets with its heartbeat ack: unanswered messages (again until answered) and
    /// the confirmations not yet handed over.
    pub fn deliver(&self, vm_uuid: &str) -> (Vec<pb::ArMessage>, Vec<u64>) {
        let mut outbox = self.outbox();
        let Some(vm) = outbox.get_mut(vm_uuid) else {
            return (Vec::new(), Vec::new());
        };
        let delivered = (vm.requests.values().cloned().collect(), std::mem::take(&mut vm.confirmed));
        if vm.requests.is_empty() {
            outbox.remove(vm_uuid);
        }
        delivered
    }

    /// PUT (seed: opCode 47 VMDR_PUT_MSG): a message for a VM of this host.
    pub async fn put(&self, req: pb::PutMsgRequest) -> Result<()> {
        if uuid::Uuid::parse_str(&req.vm_uuid).is_err() || req.hs_tag == 0 || req.payload.is_empty() {
            return Err(VmrmError::invalid("a message needs the VM's uuid, a non-zero hsTag and a payload"));
        }
        self.room_for(&req.vm_uuid)?;
        // One exchange per VM at a time: rows an earlier controller left (it failed over between
        // PUT and ACK) are cleared here, or they would stay for ever.
        for stale in self.hsdb.list::<ArTransRecord>().await? {
            if stale.vm_uuid == req.vm_uuid && stale.hs_tag != req.hs_tag {
                self.hsdb.delete::<ArTransRecord>(&stale.hs_tag.to_string()).await?;
            }
        }
        let row = ArTransRecord {
            hs_tag: req.hs_tag,
            seq: req.seq,
            vm_uuid: req.vm_uuid.clone(),
            request: req.payload.clone(),
            response: None,
        };
        self.hsdb.put(&row).await?;
        let message = pb::ArMessage { hs_tag: req.hs_tag, seq: req.seq, payload: req.payload };
        self.outbox().entry(req.vm_uuid).or_default().requests.insert(message.hs_tag, message);
        Ok(())
    }

    async fn exchange(&self, hs_tag: u64) -> Result<ArTransRecord> {
        let found = self.hsdb.get::<ArTransRecord>(&hs_tag.to_string()).await?;
        found.map(|(row, _)| row).ok_or_else(|| VmrmError::NotFound(format!("no message with hsTag {hs_tag}")))
    }

    /// The VM's answer (seed: PMSG_RSP) goes into the exchange's row.
    pub async fn respond(&self, rsp: pb::ArResponse) -> Result<()> {
        let mut row = self.exchange(rsp.hs_tag).await?;
        if row.vm_uuid != rsp.vm_uuid {
            return Err(VmrmError::invalid(format!("hsTag {} is not a message for this VM", rsp.hs_tag)));
        }
        if row.response.is_none() {
            row.response = Some(rsp.payload);
            self.hsdb.put(&row).await?;
        }
        if let Some(vm) = self.outbox().get_mut(&rsp.vm_uuid) {
            vm.requests.remove(&rsp.hs_tag);
        }
        Ok(())
    }

    /// QUERY (seed: opCode 46): has the VM answered?
    pub async fn query(&self, hs_tag: u64) -> Result<bool> {
        Ok(self.exchange(hs_tag).await?.response.is_some())
    }

    /// GET (seed: opCode 48): the VM's answer.
    pub async fn get(&self, hs_tag: u64) -> Result<String> {
        self.exchange(hs_tag)
            .await?
            .response
            .ok_or_else(|| VmrmError::precondition(format!("the VM has not answered hsTag {hs_tag} yet")))
    }

    /// ACK (seed: opCode 49): the exchange is over; its row goes and the VM is told (GMSG).
    pub async fn ack(&self, hs_tag: u64) -> Result<()> {
        let row = self.exchange(hs_tag).await?;
        self.hsdb.delete::<ArTransRecord>(&hs_tag.to_string()).await?;
        let mut outbox = self.outbox();
        if outbox.len() >= MAX_OUTBOX_VMS && !outbox.contains_key(&row.vm_uuid) {
            // The exchange is over all the same; the VM drops its cached answer on its own later.
            return Ok(());
        }
        let vm = outbox.entry(row.vm_uuid).or_default();
        vm.requests.remove(&hs_tag);
        if vm.confirmed.len() >= MAX_WAITING_PER_VM {
            vm.confirmed.remove(0);
        }
        vm.confirmed.push(hs_tag);
        Ok(())
    }
}
