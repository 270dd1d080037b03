//! The source side of a live migration (seed 001 §4.5), run for an HMC's job:
//!
//! ```text
//! begin (partition Migrating - Running; one outbound operation per unit)
//!   → SETUP: the target reserves memory and the definition            ─┐ any failure, a
//!   → PRECOPY rounds: every written page, then the pages dirtied        │ cancel, or no
//!     meanwhile, until the rest fits the maximum downtime — or the       │ convergence under
//!     policy decides (abort: VMS2425; force: stop-and-copy anyway)      ─┘ `abort`: roll back
//!   → SWITCHOVER: pause the VM, send the last pages; the target takes the disk's reservation
//!     and resumes the VM ── no RESUMED answer: take the reservation back, resume here
//!   → COMMIT: the target owns the VM; this unit stops its copy and deletes the definition.
//! ```
//! The decisions are [`convergence::next_step`]'s; this file moves bytes and reports. The pages
//! go over one gRPC stream to the target unit (its [`lane`]), on a connection of its own with
//! large flow-control windows so pre-copy is not throttled by HTTP/2 defaults.
use super::{LparMigration, ServerUnit, lane};
use crate::domain::LparState;
use crate::error::{Result, VmrmError};
use crate::logic::migration::convergence::{self, Next, PrecopyLimits, Round};
use crate::logic::migration::messages::{self as msg, on};
use crate::pb::{self, migration_frame::Frame};
use crate::profile::Timing;
use crate::sim::guest_memory::{PAGE_SIZE, SharedMemory};
use crate::sim::hypervisor::{GuestState, Stop};
use crate::transport::san::preempt;
use crate::transport::{ChannelPool, Security};
use actix::prelude::*;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::Status;

/// Pages per frame: one 1 MiB page a message (a page and the few bytes before it are all of
/// a frame on the wire).
const PAGES_PER_FRAME: usize = 1;
/// Bytes of a full frame.
const FRAME_BYTES: u64 = (PAGES_PER_FRAME * PAGE_SIZE) as u64;
/// A round in progress reports after every so many bytes.
const PROGRESS_EVERY: u64 = 8 << 20;
/// Frames queued for the stream ahead of the network: 8, in wire chunks (two a page).
const CHUNKS_AHEAD: usize = 8 * 2 * PAGES_PER_FRAME;
/// Flow-control windows of the migration connection.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

pub type ProgressSender = mpsc::Sender<std::result::Result<pb::MigrationProgress, Status>>;

/// What the driver gets when the unit lets the partition leave.
pub(super) struct Outbound {
    pub definition: crate::domain::LparDefinition,
    pub id: u32,
    pub memory: SharedMemory,
    pub cancel: Arc<AtomicBool>,
    pub source: String,
    pub san: String,
    pub san_key: u64,
    /// The unit's channels (the SAN's, to take the disk back).
    pub pool: ChannelPool,
}

/// Lets a running partition start an outbound migration.
#[derive(Message)]
#[rtype(result = "Result<Outbound>")]
pub(super) struct BeginOutbound {
    pub lpar: String,
    pub target: String,
    pub operation: String,
}

impl Handler<BeginOutbound> for ServerUnit {
    type Result = Result<Outbound>;
    fn handle(&mut self, msg: BeginOutbound, _: &mut Context<Self>) -> Self::Result {
        let name = msg.lpar.clone();
        if let Some((vm, op)) = self.outbound_operation()
            && op != msg.operation
        {
            return Err(VmrmError::precondition(format!(
                "live migration of VM {vm} from host {} is running; one outbound migration at a time",
                self.cfg.host
            )));
        }
        if self.conditions.reconfiguring || self.conditions.shutting_down {
            return Err(VmrmError::precondition(format!(
                "host {} has a configuration change or a shutdown in progress",
                self.cfg.host
            )));
        }
        let lpar = self.running_vm(&name)?;
        if self.hypervisor.guest_state(&name) == GuestState::Hung {
            return Err(VmrmError::precondition(format!("VM {name} is in WAIT (its OS hangs); it cannot migrate")));
        }
        if lpar.migration.is_some() {
            return Err(VmrmError::precondition(format!("VM {name} is already being live-migrated")));
        }
        let memory = self.hypervisor.memory_image(&name)?;
        let (definition, id) = (lpar.def.clone(), lpar.id);
        let cancel = Arc::new(AtomicBool::new(false));
        let lpar = self.lpars.get_mut(&name).expect("running");
        lpar.state = LparState::MigratingRunning;
        lpar.migration =
            Some(LparMigration::Out { target: msg.target, operation: msg.operation, cancel: cancel.clone() });
        Ok(Outbound {
            definition,
            id,
            memory,
            cancel,
            source: self.cfg.host.clone(),
            san: self.cfg.san.clone(),
            san_key: self.san_key,
            pool: self.pool.clone(),
        })
    }
}

/// The end of an outbound migration: `completed` — the copy here goes; else the VM stays.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct EndOutbound {
    pub lpar: String,
    pub completed: bool,
}

impl Handler<EndOutbound> for ServerUnit {
    type Result = ();
    fn handle(&mut self, msg: EndOutbound, _: &mut Context<Self>) {
        if msg.completed {
            let _ = self.stop_vm(&msg.lpar, Stop::Clean);
            self.lpars.remove(&msg.lpar);
            self.hypervisor.remove(&msg.lpar);
        } else if let Some(lpar) = self.lpars.get_mut(&msg.lpar) {
            lpar.migration = None;
            if self.hypervisor.guest_state(&msg.lpar) != GuestState::Off {
                lpar.state = LparState::Running;
            }
        }
        self.save_boot_list();
    }
}

/// Stops (`pause`) or lets run on the guest of a partition leaving by migration.
#[derive(Message)]
#[rtype(result = "Result<()>")]
struct PauseGuest {
    lpar: String,
    pause: bool,
}

impl Handler<PauseGuest> for ServerUnit {
    type Result = ResponseFuture<Result<()>>;
    fn handle(&mut self, msg: PauseGuest, _: &mut Context<Self>) -> Self::Result {
        match msg.pause {
            true => self.hypervisor.pause(&msg.lpar),
            false => self.hypervisor.resume(&msg.lpar),
        }
    }
}

/// Why a migration stopped, and how far it got (what the rollback must undo).
struct Abort {
    why: String,
    /// The seed's VMS2425: pre-copy did not converge under the `abort` policy.
    not_in_time: bool,
    paused: bool,
    switched: bool,
}

impl Abort {
    fn new(why: impl Into<String>) -> Self {
        Self { why: why.into(), not_in_time: false, paused: false, switched: false }
    }
}

impl From<VmrmError> for Abort {
    fn from(e: VmrmError) -> Self {
        Self::new(e.to_string())
    }
}

/// A channel of its own to the target unit, sized for bulk pages.
fn migration_channel(endpoint: &str, security: &Security, timing: Timing) -> Result<tonic::transport::Channel> {
    Ok(crate::transport::channel::dial(endpoint, security, timing.rpc_deadline)?
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keep_alive_interval(timing.rpc_deadline)
        .keep_alive_timeout(timing.rpc_deadline)
        .connect_lazy())
}

/// One outbound migration, from setup to commit or rollback; progress goes to `progress`
/// (an HMC job watching; it may go away, the migration goes on).
pub(super) struct Driver {
    pub su: Addr<ServerUnit>,
    pub out: Outbound,
    pub req: pb::MigrateOutRequest,
    pub limits: PrecopyLimits,
    pub bandwidth: Option<u64>,
    pub timing: Timing,
    pub progress: ProgressSender,
}

/// What a finished pre-copy and switchover measured.
struct Report {
    downtime: Duration,
    /// From the start of the migration to the target's RESUMED.
    resumed_after: Duration,
    forced: bool,
    target_checksum: u64,
}

impl Driver {
    fn vm_ref(&self) -> String {
        msg::vm_ref(self.out.id, &self.out.definition.name)
    }

    async fn emit(&self, p: pb::MigrationProgress) {
        let _ = self.progress.send(Ok(p)).await;
    }

    fn progress(&self, phase: pb::MigrationPhase, started: Instant, console: Vec<String>) -> pb::MigrationProgress {
        pb::MigrationProgress {
            phase: phase.into(),
            memory_bytes: self.out.memory.lock().expect("guest memory").size(),
            console,
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        }
    }

    pub async fn run(self) {
        let started = Instant::now();
        let target = self.req.target_host.clone();
        let line = on(&self.out.source, msg::started(&self.vm_ref(), &target));
        self.emit(self.progress(pb::MigrationPhase::Setup, started, vec![line])).await;
        let mut sent = 0;
        let outcome = self.drive(started, &mut sent).await;
        let mut p = self.progress(pb::MigrationPhase::Completed, started, Vec::new());
        p.sent_bytes = sent;
        match outcome {
            Ok(report) => {
                p.source_checksum = self.out.memory.lock().expect("guest memory").checksum();
                self.su.do_send(EndOutbound { lpar: self.out.definition.name.clone(), completed: true });
                let vm = self.vm_ref();
                let source = &self.out.source;
                p.console = vec![
                    on(source, msg::device_removed(&vm, &self.out.definition.disk)),
                    on(source, msg::terminated(&vm)),
                    on(source, msg::completed(&vm, &target)),
                ];
                p.downtime_us = report.downtime.as_micros() as u64;
                p.resumed_after_ms = report.resumed_after.as_millis() as u64;
                p.target_checksum = report.target_checksum;
                p.forced = report.forced;
                tracing::info!(vm = %self.out.definition.name, "migrated to {target}: pause {:?}", report.downtime);
            }
            Err(abort) => {
                self.roll_back(&abort).await;
                p.set_phase(pb::MigrationPhase::Aborted);
                let vm = self.vm_ref();
                let text = match abort.not_in_time {
                    true => msg::not_in_time(&vm, &target),
                    false => msg::aborted(&vm, &target, &abort.why),
                };
                p.console = vec![on(&self.out.source, text)];
                p.error = abort.why.clone();
                tracing::warn!(vm = %self.out.definition.name, "migration to {target} aborted: {}", abort.why);
            }
        }
        p.elapsed_ms = started.elapsed().as_millis() as u64;
        self.emit(p).await;
    }

    /// Undoes what the migration did here: the disk's reservation back (if the target may
    /// have taken it), the VM running again, the partition no longer migrating.
    async fn roll_back(&self, abort: &Abort) {
        if abort.switched {
            let o = &self.out;
            let holder = (o.definition.disk.as_str(), o.san_key, o.source.as_str());
            let taken_back = preempt(&o.pool, &o.san, holder, self.req.fence, self.timing.rpc_deadline).await;
            if let Err(e) = taken_back {
                tracing::error!(vm = %o.definition.name, "the disk's reservation could not be taken back: {e}");
            }
        }
        if abort.paused {
            let _ = self.su.send(PauseGuest { lpar: self.out.definition.name.clone(), pause: false }).await;
        }
        let _ = self.su.send(EndOutbound { lpar: self.out.definition.name.clone(), completed: false }).await;
    }

    fn cancelled(&self) -> std::result::Result<(), Abort> {
        match self.out.cancel.load(Ordering::Relaxed) {
            true => Err(Abort::new("cancelled by the administrator")),
            false => Ok(()),
        }
    }

    async fn drive(&self, started: Instant, sent: &mut u64) -> std::result::Result<Report, Abort> {
        let channel = migration_channel(&self.req.target_endpoint, self.out.pool.security(), self.timing)?;
        let (chunks, rx) = mpsc::channel(CHUNKS_AHEAD);
        let mut link = Link { chunks, acks: None, wait: self.timing.rpc_deadline };
        let memory_bytes = self.out.memory.lock().expect("guest memory").size();
        let setup = pb::MigrationSetup {
            definition: Some(self.out.definition.clone().into()),
            source_host: self.out.source.clone(),
            fence: self.req.fence,
            memory_bytes,
            lpar_id: self.out.id,
        };
        link.send(Frame::Setup(setup)).await?;
        let acks = tokio::time::timeout(self.timing.rpc_deadline, lane::open(channel, rx))
            .await
            .map_err(|_| Abort::new("the target unit does not answer"))?
            .map_err(|s| Abort::new(format!("the target unit refused: {}", s.message())))?;
        link.acks = Some(acks);
        let ack = link.ack("SETUP_DONE").await?;
        self.emit(self.progress(pb::MigrationPhase::Setup, started, ack.console)).await;
        let forced = self.precopy(&mut link, started, sent).await?;
        self.switchover(&mut link, started, sent, forced).await
    }

    /// Pre-copy rounds until the convergence rule says stop-and-copy (forced or not).
    async fn precopy(&self, link: &mut Link, started: Instant, sent: &mut u64) -> std::result::Result<bool, Abort> {
        {
            let mut memory = self.out.memory.lock().expect("guest memory");
            memory.take_dirty();
            memory.mark_all_written_dirty();
        }
        let mut rounds = Vec::new();
        loop {
            let pages: Vec<u32> =
                self.out.memory.lock().expect("guest memory").take_dirty().into_iter().map(|p| p as u32).collect();
            let begun = Instant::now();
            let round = Some((rounds.len() as u32 + 1, started, *sent));
            let round_bytes = self.send_pages(link, &pages, round).await?;
            link.send(Frame::RoundEnd(rounds.len() as u32 + 1)).await?;
            link.ack("ROUND_DONE").await?;
            *sent += round_bytes;
            let dirty_bytes = self.out.memory.lock().expect("guest memory").dirty_bytes();
            rounds.push(Round { sent_bytes: round_bytes, elapsed: begun.elapsed(), dirty_bytes });
            let mut p = self.progress(pb::MigrationPhase::Precopy, started, Vec::new());
            (p.round, p.sent_bytes, p.dirty_bytes) = (rounds.len() as u32, *sent, dirty_bytes);
            self.emit(p).await;
            match convergence::next_step(&self.limits, &rounds) {
                Next::Iterate => continue,
                Next::StopAndCopy { forced } => return Ok(forced),
                Next::Abort => {
                    let why = format!("{} rounds, {dirty_bytes} bytes still dirty", rounds.len());
                    return Err(Abort { not_in_time: true, ..Abort::new(why) });
                }
            }
        }
    }

    /// Sends `pages` in frames, at most at the bandwidth cap. In a pre-copy `round` (number,
    /// start of the migration, bytes sent before it) it checks for a cancel between frames and
    /// reports progress every [`PROGRESS_EVERY`] bytes; without one (the switchover: the VM is
    /// paused) it just sends.
    async fn send_pages(
        &self,
        link: &mut Link,
        pages: &[u32],
        round: Option<(u32, Instant, u64)>,
    ) -> std::result::Result<u64, Abort> {
        let begun = Instant::now();
        let mut bytes = 0u64;
        for chunk in pages.chunks(PAGES_PER_FRAME) {
            if round.is_some() {
                self.cancelled()?;
            }
            let pages = self.out.memory.lock().expect("guest memory").share_pages(chunk);
            bytes += (pages.len() * PAGE_SIZE) as u64;
            link.send_pages(chunk, pages).await?;
            if let Some((number, started, before)) = round
                && bytes % PROGRESS_EVERY < FRAME_BYTES
            {
                let mut p = self.progress(pb::MigrationPhase::Precopy, started, Vec::new());
                (p.round, p.sent_bytes) = (number, before + bytes);
                self.emit(p).await;
            }
            if let Some(rate) = self.bandwidth {
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(begun.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(bytes)
    }

    /// Pause, last pages, resume on the target; then commit.
    async fn switchover(
        &self,
        link: &mut Link,
        started: Instant,
        sent: &mut u64,
        forced: bool,
    ) -> std::result::Result<Report, Abort> {
        self.cancelled()?;
        let paused_at = Instant::now();
        let pause = PauseGuest { lpar: self.out.definition.name.clone(), pause: true };
        let paused = self.su.send(pause).await.map_err(VmrmError::from).and_then(|paused| paused);
        paused.map_err(|e| Abort::new(format!("the VM did not pause: {e}")))?;
        let abort = |why: String| Abort { paused: true, switched: true, ..Abort::new(why) };
        let last: Vec<u32> =
            self.out.memory.lock().expect("guest memory").take_dirty().into_iter().map(|p| p as u32).collect();
        // The last pages go in ordinary frames (pipelined, as fast as pre-copy), then the mark.
        *sent += self.send_pages(link, &last, None).await.map_err(|a| abort(a.why))?;
        link.send(Frame::Switchover(pb::MigrationPages::default())).await.map_err(|a| abort(a.why))?;
        let resumed = link.ack("RESUMED").await.map_err(|a| abort(a.why))?;
        let downtime = paused_at.elapsed();
        let resumed_after = started.elapsed();
        let vm = self.vm_ref();
        let mut console = vec![on(&self.out.source, msg::suspended(&vm, &self.req.target_host))];
        console.extend(resumed.console);
        let mut p = self.progress(pb::MigrationPhase::Switchover, started, console);
        (p.sent_bytes, p.downtime_us) = (*sent, downtime.as_micros() as u64);
        self.emit(p).await;
        // The target runs the VM and holds its disk: from here on there is no way back.
        let target_checksum = match link.send(Frame::Commit(true)).await {
            Ok(()) => match link.ack("COMMITTED").await {
                Ok(ack) => {
                    self.emit(self.progress(pb::MigrationPhase::Switchover, started, ack.console)).await;
                    ack.checksum
                }
                Err(a) => {
                    tracing::warn!(vm = %self.out.definition.name, "commit not confirmed ({}); the target runs the VM", a.why);
                    0
                }
            },
            Err(a) => {
                tracing::warn!(vm = %self.out.definition.name, "commit not sent ({}); the target runs the VM", a.why);
                0
            }
        };
        Ok(Report { downtime, resumed_after, forced, target_checksum })
    }
}

/// The stream to the target: frames out (as wire chunks), acknowledgements in, each within `wait`.
struct Link {
    chunks: mpsc::Sender<Bytes>,
    acks: Option<tonic::Streaming<pb::MigrationAck>>,
    wait: Duration,
}

impl Link {
    async fn send(&mut self, frame: Frame) -> std::result::Result<(), Abort> {
        self.push(lane::control(frame)).await
    }

    async fn send_pages(&mut self, indexes: &[u32], pages: Vec<Bytes>) -> std::result::Result<(), Abort> {
        for chunk in lane::pages(indexes, pages) {
            self.push(chunk).await?;
        }
        Ok(())
    }

    async fn push(&mut self, chunk: Bytes) -> std::result::Result<(), Abort> {
        match tokio::time::timeout(self.wait, self.chunks.send(chunk)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Abort::new("the connection to the target unit was lost")),
            Err(_) => Err(Abort::new("the network to the target unit is interrupted (no progress)")),
        }
    }

    async fn ack(&mut self, stage: &str) -> std::result::Result<pb::MigrationAck, Abort> {
        let acks = self.acks.as_mut().ok_or_else(|| Abort::new("no stream to the target unit"))?;
        match tokio::time::timeout(self.wait, acks.message()).await {
            Ok(Ok(Some(ack))) if ack.stage == stage => Ok(ack),
            Ok(Ok(Some(ack))) => Err(Abort::new(format!("the target unit answered {} instead of {stage}", ack.stage))),
            Ok(Ok(None)) => Err(Abort::new("the target unit closed the migration")),
            Ok(Err(status)) => Err(Abort::new(format!("the target unit: {}", status.message()))),
            Err(_) => Err(Abort::new(format!("the target unit did not answer {stage} in time"))),
        }
    }
}
