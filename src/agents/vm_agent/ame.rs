//! The Application Management Engine's shell (seed: the `AppsMngt` thread of `ksys_vmmd`): one
//! round per `period` (doXML → doLaunch → doNonBlockingWait → doInspectForTimeout), driving the
//! pure [`Engine`] with real processes.
use super::guest::GuestDir;
use super::scripts;
use crate::clock::Instant;
use crate::logic::app_engine::engine::Command;
use crate::logic::app_engine::{AppStatus, Engine, HaMonitoring, ScriptKind, VmmError};
use actix::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// `period=0` means as often as the agent can; it still waits this long between rounds.
const SHORTEST_ROUND: Duration = Duration::from_millis(100);

struct RunningScript {
    group: i32,
    killed: bool,
}

pub struct AmeActor {
    vm: String,
    guest: GuestDir,
    engine: Engine,
    period: Duration,
    /// The VM just booted (apply `rebootappstarttype`), rather than only the agent restarting.
    boot: bool,
    epoch: Instant,
    running: HashMap<String, RunningScript>,
    groups: ProcessGroups,
    /// The agent's application reporting, rung after a round with changes.
    notify: Recipient<AppsChanged>,
}

impl AmeActor {
    pub fn new(vm: String, guest: GuestDir, groups: ProcessGroups, notify: Recipient<AppsChanged>, boot: bool) -> Self {
        Self {
            vm,
            guest,
            engine: Engine::default(),
            period: Duration::from_secs(1),
            boot,
            epoch: Instant::now(),
            running: HashMap::new(),
            groups,
            notify,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// doXML: (re)reads the configuration file.
    fn load(&mut self) -> Result<HaMonitoring, VmmError> {
        let cfg = self.guest.load()?;
        self.period = Duration::from_secs(cfg.vmm.period).max(SHORTEST_ROUND);
        let now = self.now_ms();
        self.engine.load(&cfg, now);
        match cfg.apps.is_empty() {
            true => tracing::info!(vm = %self.vm, "No application to monitor into configuration"),
            false => {
                tracing::info!(vm = %self.vm, "Valid configuration: {} application(s), normally starting or continuing AME", cfg.apps.len())
            }
        }
        Ok(cfg)
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        let now = self.now_ms();
        let before = self.engine.statuses();
        for cmd in self.engine.round(now, &scripts::usable) {
            match cmd {
                Command::Launch { app, kind, script, .. } => self.launch(app, kind, &script, ctx),
                Command::Kill { app } => {
                    if let Some(s) = self.running.get_mut(&app) {
                        tracing::info!(vm = %self.vm, app = %app, "script was in timeout, killing now script process group {}", s.group);
                        scripts::kill_group(s.group);
                        s.killed = true;
                    }
                }
            }
        }
        self.log_changes(&before);
        // Seed: the notification vector goes to the AR thread in the round after a change.
        match self.engine.take_notifications() {
            0 => {}
            bits => self.notify.do_send(AppsChanged(bits)),
        }
        self.groups.prune();
        ctx.run_later(self.period, |act, ctx| act.round(ctx));
    }

    fn launch(&mut self, app: String, kind: ScriptKind, script: &str, ctx: &mut Context<Self>) {
        let launched = match scripts::launch(script, &[], &self.guest) {
            Ok(l) => l,
            Err(outcome) => {
                tracing::warn!(vm = %self.vm, app = %app, "{kind} script not run: {outcome:?}");
                let now = self.now_ms();
                return self.engine.finished(&app, kind, &outcome, now);
            }
        };
        tracing::debug!(vm = %self.vm, app = %app, "application script \"{script}\" being forked ({kind}), group {}", launched.group);
        self.groups.add(launched.group);
        self.running.insert(app.clone(), RunningScript { group: launched.group, killed: false });
        let mut child = launched.child;
        ctx.spawn(async move { child.wait().await }.into_actor(self).map(move |status, act, _| {
            let killed = act.running.remove(&app).is_some_and(|s| s.killed);
            let outcome = scripts::outcome(status, killed);
            let before = act.engine.statuses();
            let now = act.now_ms();
            act.engine.finished(&app, kind, &outcome, now);
            act.log_changes(&before);
        }));
    }

    /// Seed: `Application : '<uuid>' status changed`.
    fn log_changes(&self, before: &[AppStatus]) {
        for now in self.engine.statuses() {
            if before.iter().find(|b| b.uuid == now.uuid).is_none_or(|b| b.state != now.state) {
                tracing::info!(vm = %self.vm, app = %now.name, "application status changed: {} (result {})", now.status(), now.result);
            }
        }
    }
}

impl Actor for AmeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(vm = %self.vm, "Applications Management Engine (AME) thread launched.");
        match self.load() {
            Ok(cfg) if self.boot => {
                let now = self.now_ms();
                self.engine.boot(cfg.vmm.rebootappstarttype, now);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(vm = %self.vm, "{e}"),
        }
        self.round(ctx);
    }
}

/// The engine's notification vector (seed: 0x8 configuration, 0x20 status) for the doorbell.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct AppsChanged(pub u64);

/// What `ksysvmmgr` asks the running engine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<AppStatus>, VmmError>")]
pub enum AmeRequest {
    /// Reload the configuration file (seed: `ksysvmmgr sync`, or `-s`).
    Sync,
    StartApp(String),
    StopApp(String),
    Status,
}

impl Handler<AmeRequest> for AmeActor {
    type Result = Result<Vec<AppStatus>, VmmError>;
    fn handle(&mut self, req: AmeRequest, _: &mut Context<Self>) -> Self::Result {
        let before = self.engine.statuses();
        match &req {
            AmeRequest::Sync => self.load().map(drop)?,
            AmeRequest::StartApp(app) => self.engine.start(app)?,
            AmeRequest::StopApp(app) => self.engine.stop(app)?,
            AmeRequest::Status => {}
        }
        self.log_changes(&before);
        Ok(self.engine.statuses())
    }
}

/// Every process group the agent launched while the VM runs (scripts and what they started):
/// the VM's processes, which die when it stops and freeze when its OS hangs.
#[derive(Clone, Default)]
pub struct ProcessGroups(std::sync::Arc<std::sync::Mutex<BTreeSet<i32>>>);

impl ProcessGroups {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.0.lock().expect("process groups lock")
    }

    pub fn add(&self, group: i32) {
        self.lock().insert(group);
    }

    /// Forgets the groups that have no process left (a finished script that started nothing),
    /// so the set stays small and a group id the system reuses later is never signalled.
    fn prune(&self) {
        self.lock().retain(|group| scripts::group_alive(*group));
    }

    /// Sends `signal` to every group (SIGKILL when the VM stops, SIGSTOP when its OS hangs).
    pub fn signal_all(&self, signal: i32) {
        let groups = self.lock();
        for group in groups.iter() {
            scripts::signal_group(*group, signal);
        }
    }
}

/// The agent stops (the VM's processes keep running, unless the VM stops too).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAme;

impl Handler<StopAme> for AmeActor {
    type Result = ();
    fn handle(&mut self, _: StopAme, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
