//! The target side of a live migration: the source unit's frames in, acknowledgements out.
//!
//! ```text
//! Setup ──▶ reserve: memory and the definition (state Migrating - Not Activated) ─▶ SETUP_DONE
//! Pages … RoundEnd ──▶ pages loaded ────────────────────────────────────────────▶ ROUND_DONE
//! Switchover ──▶ the disk's reservation preempted to this host with the migration's
//!                fencing token; the VM runs here ──────────────────────────────────▶ RESUMED
//! Commit ──▶ the definition is this unit's ───────────▶ COMMITTED (the memory's checksum
//!            at the resume, computed meanwhile)
//! ```
//! A stream that ends, breaks or falls silent before RESUMED drops everything reserved here:
//! nothing is left behind. After RESUMED the VM stays: it holds the disk, and if the source
//! takes the disk back (it never heard RESUMED) the VM here is fenced off, crashes, and goes.
//!
//! Only a migration the controller set up arrives ([`admit`]): its setup must come from the
//! server unit of the source host it names (by that unit's certificate), and its fencing token
//! must be one the HSDB issued to a live migration holding the VM's lock — a one-time ticket
//! bound to the VM, its source and its operation, which no other caller can make up.
use super::{Lpar, LparMigration, ServerUnit};
use crate::domain::{LparDefinition, LparState, VmStatus};
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::{VmLock, issued};
use crate::hsdb::{HsdbAccess, RemoteHsdb};
use crate::logic::migration::messages::{self as msg, on};
use crate::pb::{self, migration_frame::Frame};
use crate::sim::guest_memory::SharedMemory;
use crate::transport::grpc_wire::MessageReader;
use crate::transport::san::preempt;
use crate::transport::tls::Principal;
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Status;

pub type AckSender = mpsc::Sender<std::result::Result<pb::MigrationAck, Status>>;

/// Reserves what an arriving VM needs.
#[derive(Message)]
#[rtype(result = "Result<SharedMemory>")]
struct BeginInbound {
    def: LparDefinition,
    source: String,
    memory_bytes: u64,
}

impl Handler<BeginInbound> for ServerUnit {
    type Result = Result<SharedMemory>;
    fn handle(&mut self, msg: BeginInbound, _: &mut Context<Self>) -> Self::Result {
        let host = self.cfg.host.clone();
        let name = msg.def.name.clone();
        if std::mem::take(&mut self.conditions.refuse_next_inbound) {
            return Err(VmrmError::unavailable(format!("host {host} could not assign the resources of VM {name}")));
        }
        if self.conditions.reconfiguring || self.conditions.shutting_down {
            return Err(VmrmError::precondition(format!(
                "host {host} has a configuration change or a shutdown in progress"
            )));
        }
        if self.lpars.contains_key(&name) {
            return Err(VmrmError::AlreadyExists(format!("VM name {name} is already in use on host {host}")));
        }
        if self.lpars.len() >= self.cfg.max_definitions as usize {
            return Err(VmrmError::precondition(format!(
                "host {host} has reached its maximum of {} VM definitions",
                self.cfg.max_definitions
            )));
        }
        if msg.memory_bytes != msg.def.memory_mb << 20 {
            return Err(VmrmError::invalid(format!(
                "VM {name}: {} bytes of memory sent for a definition of {} MB",
                msg.memory_bytes, msg.def.memory_mb
            )));
        }
        let (cpu, mem) = self.used();
        if cpu + msg.def.cpu > self.cfg.cpu || mem + msg.def.memory_mb > self.cfg.memory_mb {
            return Err(VmrmError::precondition(format!(
                "host {host} has not enough free capacity for VM {name}: it needs {} CPU / {} MB",
                msg.def.cpu, msg.def.memory_mb
            )));
        }
        let id = self.id_for(&msg.def)?;
        self.hypervisor.define(&msg.def);
        let memory = match self.hypervisor.receive(&name, msg.memory_bytes) {
            Ok(memory) => memory,
            Err(e) => {
                self.hypervisor.remove(&name);
                return Err(e);
            }
        };
        let mut lpar = Lpar::off(msg.def, id);
        lpar.state = LparState::MigratingNotActivated;
        lpar.reference_code = String::new();
        lpar.migration = Some(LparMigration::In { source: msg.source, resumed: false });
        self.lpars.insert(name, lpar);
        Ok(memory)
    }
}

/// The switchover: the disk's reservation to this host, then the VM runs on its memory.
#[derive(Message)]
#[rtype(result = "Result<()>")]
struct ResumeInbound {
    name: String,
    fence: u64,
}

impl Handler<ResumeInbound> for ServerUnit {
    type Result = ResponseActFuture<Self, Result<()>>;
    fn handle(&mut self, msg: ResumeInbound, _: &mut Context<Self>) -> Self::Result {
        let msg_fence = msg.fence;
        if std::mem::take(&mut self.conditions.fail_next_resume) {
            let why = format!("VM {} could not be resumed on host {}", msg.name, self.cfg.host);
            return Box::pin(fut::ready(Err(VmrmError::unavailable(why))));
        }
        let Some(lpar) = self.lpars.get(&msg.name) else {
            return Box::pin(fut::ready(Err(VmrmError::not_found(format!("no inbound VM {}", msg.name)))));
        };
        let (pool, san, disk) = (self.pool.clone(), self.cfg.san.clone(), lpar.def.disk.clone());
        let (key, owner, timeout) = (self.san_key, self.cfg.host.clone(), self.timing.rpc_deadline);
        let preempt = async move { preempt(&pool, &san, (&disk, key, &owner), msg_fence, timeout).await };
        Box::pin(preempt.into_actor(self).map(move |preempted, act, _| {
            preempted?;
            if !act.lpars.contains_key(&msg.name) {
                return Err(VmrmError::not_found("the inbound VM is gone"));
            }
            act.start_partition(&msg.name)?;
            if let Some(LparMigration::In { resumed, .. }) =
                &mut act.lpars.get_mut(&msg.name).expect("running").migration
            {
                *resumed = true;
            }
            Ok(())
        }))
    }
}

/// The end of an inbound migration: committed — the VM is this unit's; not — whatever was
/// reserved goes, unless the VM already runs here.
#[derive(Message)]
#[rtype(result = "()")]
struct EndInbound {
    name: String,
    committed: bool,
}

/// How long a VM resumed without a commit keeps its "in from" mark: if the source takes the
/// disk back meanwhile, the VM here crashes and is removed as a rolled-back arrival.
const UNCOMMITTED_GRACE: Duration = Duration::from_secs(10);

impl Handler<EndInbound> for ServerUnit {
    type Result = ();
    fn handle(&mut self, msg: EndInbound, ctx: &mut Context<Self>) {
        let Some(lpar) = self.lpars.get_mut(&msg.name) else { return };
        match (&lpar.migration, msg.committed) {
            (Some(LparMigration::In { .. }), true) => lpar.migration = None,
            (Some(LparMigration::In { resumed: false, .. }), false) => {
                self.lpars.remove(&msg.name);
                self.hypervisor.remove(&msg.name);
                tracing::info!(vm = %msg.name, "inbound migration dropped; nothing left here");
            }
            (Some(LparMigration::In { resumed: true, .. }), false) => {
                ctx.notify_later(EndInbound { name: msg.name, committed: true }, UNCOMMITTED_GRACE);
            }
            _ => {}
        }
        self.save_boot_list();
    }
}

/// Who sends an arrival, and how it is checked.
pub(super) struct Arrival {
    /// The caller, from its certificate (none: the call passed no gate, and is refused).
    pub sender: Option<Principal>,
    pub hsdb: Option<RemoteHsdb>,
    /// A source silent this long has gone.
    pub silence: Duration,
}

/// Whether the migration `setup` of VM `vm` may arrive from `sender` (see the module doc).
async fn admit(
    sender: Option<&Principal>,
    setup: &pb::MigrationSetup,
    vm: &str,
    hsdb: Option<&RemoteHsdb>,
) -> Result<()> {
    let who = sender.ok_or_else(|| VmrmError::Unauthenticated("the sender of the migration is unknown".into()))?;
    if who.unchecked {
        return Ok(());
    }
    if who.host.as_ref().map(|h| h.as_str()) != Some(setup.source_host.as_str()) {
        return Err(VmrmError::denied(format!("{who} may not send a migration from host {}", setup.source_host)));
    }
    let hsdb = hsdb.ok_or_else(|| VmrmError::precondition("this unit reaches no HSDB to check a migration's token"))?;
    let lock = hsdb.get::<VmLock>(vm).await?.map(|(lock, _)| lock);
    let refused =
        |why: String| VmrmError::precondition(format!("VM {vm}: migration token {} refused: {why}", setup.fence));
    match issued(lock.as_ref(), setup.fence) {
        Ok(lock) if lock.operation == VmStatus::LpmInProgress => Ok(()),
        Ok(lock) => Err(refused(format!("its lock is held by {}, not by a live migration", lock.operation))),
        Err(why) => Err(refused(why)),
    }
}

/// Serves one inbound migration stream; the answers go to `acks`.
pub(super) async fn serve(
    su: Addr<ServerUnit>,
    host: String,
    mut frames: MessageReader,
    acks: AckSender,
    arrival: Arrival,
) {
    let mut reserved: Option<(String, SharedMemory)> = None;
    let outcome = receive(&su, &host, &mut frames, &acks, &arrival, &mut reserved).await;
    let committed = outcome.is_ok();
    if let Err(e) = outcome {
        tracing::warn!(host = %host, "inbound migration ended: {e}");
        let _ = acks.send(Err(e.into())).await;
    }
    if let Some((name, _)) = reserved {
        let _ = su.send(EndInbound { name, committed }).await;
    }
}

fn frame_bytes(p: &pb::MigrationPages) -> u64 {
    p.pages.iter().map(|b| b.len() as u64).sum()
}

async fn next(frames: &mut MessageReader, silence: Duration) -> Result<Frame> {
    match tokio::time::timeout(silence, frames.next::<pb::MigrationFrame>()).await {
        Ok(Ok(Some(pb::MigrationFrame { frame: Some(frame) }))) => Ok(frame),
        Ok(Ok(Some(_))) => Err(VmrmError::invalid("an empty migration frame")),
        Ok(Ok(None)) => Err(VmrmError::unavailable("the source unit ended the migration")),
        Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
            Err(VmrmError::invalid(format!("the source unit sent {}", status.message())))
        }
        Ok(Err(status)) => Err(VmrmError::unavailable(format!("the source unit's stream broke: {}", status.message()))),
        Err(_) => Err(VmrmError::unavailable("the source unit fell silent")),
    }
}

async fn ack(acks: &AckSender, stage: &str, console: Vec<String>, checksum: u64, received: u64) -> Result<()> {
    let ack = pb::MigrationAck { stage: stage.into(), console, received_bytes: received, checksum };
    acks.send(Ok(ack)).await.map_err(|_| VmrmError::unavailable("the source unit went away"))
}

async fn receive(
    su: &Addr<ServerUnit>,
    host: &str,
    frames: &mut MessageReader,
    acks: &AckSender,
    from: &Arrival,
    arrival: &mut Option<(String, SharedMemory)>,
) -> Result<()> {
    let silence = from.silence;
    let Frame::Setup(mut setup) = next(frames, silence).await? else {
        return Err(VmrmError::invalid("a migration starts with its setup"));
    };
    // Here the VM runs under the migration's epoch: only an operation as recent stops it.
    let def =
        LparDefinition { fence: setup.fence, ..LparDefinition::try_from(setup.definition.take().unwrap_or_default())? };
    admit(from.sender.as_ref(), &setup, &def.name, from.hsdb.as_ref()).await?;
    let (name, disk, source) = (def.name.clone(), def.disk.clone(), setup.source_host.clone());
    let begin = BeginInbound { def, source: source.clone(), memory_bytes: setup.memory_bytes };
    let memory = su.send(begin).await.map_err(VmrmError::from)??;
    *arrival = Some((name.clone(), memory.clone()));
    let vm = msg::vm_ref(setup.lpar_id, &name);
    let console = vec![
        on(host, msg::inbound_started(&vm, &source)),
        on(host, msg::created(&vm)),
        on(host, msg::device_assigned(&vm, &disk)),
    ];
    ack(acks, "SETUP_DONE", console, 0, 0).await?;
    let (mut received, mut checksum) = (0u64, 0u64);
    loop {
        match next(frames, silence).await? {
            Frame::Pages(p) => {
                received += frame_bytes(&p);
                memory.lock().expect("guest memory").load_pages(&p.indexes, p.pages)?;
            }
            Frame::RoundEnd(_) => ack(acks, "ROUND_DONE", Vec::new(), 0, received).await?,
            Frame::Switchover(p) => {
                received += frame_bytes(&p);
                let at_resume = {
                    let mut m = memory.lock().expect("guest memory");
                    m.load_pages(&p.indexes, p.pages)?;
                    m.snapshot()
                };
                su.send(ResumeInbound { name: name.clone(), fence: setup.fence }).await.map_err(VmrmError::from)??;
                ack(acks, "RESUMED", vec![on(host, msg::resumed(&vm, &source))], 0, received).await?;
                // The memory as it resumed, checksummed while the VM runs on.
                checksum =
                    tokio::task::spawn_blocking(move || at_resume.checksum()).await.map_err(VmrmError::internal)?;
            }
            Frame::Commit(_) => {
                su.send(EndInbound { name: name.clone(), committed: true }).await.map_err(VmrmError::from)?;
                *arrival = None;
                let console = vec![on(host, msg::inbound_completed(&vm, &source))];
                return ack(acks, "COMMITTED", console, checksum, received).await;
            }
            Frame::Setup(_) => return Err(VmrmError::invalid("a second setup in one migration")),
        }
    }
}
