//! The Application Management Engine's state machine (seed 000 §2.2.8, notes seed000-C §1.9).
//! The shell calls [`Engine::round`] once per `period` and [`Engine::finished`] when a script
//! ends; the engine answers with the scripts to launch or kill. Nothing here runs a process or
//! reads a clock: `now_ms` is given.
//!
//! ```text
//!  NOT_MONITORED ─load─▶ UNSET ─rc 0─▶ NORMAL ─rc≠0/timeout─▶ FAILING ─(threshold)─▶ TO_STOP
//!                          ▲  ▲          ▲                         │ rc 0                 │ stop ok
//!                          │  └──────────┴─────────────────────────┘                      ▼
//!                          └──── start ok (restarts < max_restart) ◀──────────────── TO_START
//!  start ok with restarts = max_restart → FAILURE;  stop fails stop_max_failures → NOT_STOPPABLE;
//!  start fails start_max_failures → NOT_STARTABLE;  a script missing/not executable → ABNORMAL.
//! ```
use super::config::{AppConfig, HaMonitoring, StartType, VmmError, code};
use super::deps::{Dependencies, Peer};
use super::state::{AppState, AppStatus, Outcome, ScriptKind, ScriptResult};
use std::time::Duration;

/// Notification vector bits for application reporting (seed: 0x8 after the configuration was
/// loaded, 0x20 after a status change; 0x2 is the initial full resync).
pub const NOTIFY_RESYNC: u64 = 0x2;
pub const NOTIFY_CONFIG: u64 = 0x8;
pub const NOTIFY_STATUS: u64 = 0x20;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Launch {
        app: String,
        kind: ScriptKind,
        script: String,
        timeout: Duration,
    },
    /// The script of `app` ran past its timeout: kill its process group.
    Kill {
        app: String,
    },
}

/// Why an app is being stopped and started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cycle {
    /// Its monitor failed `monitor_failure_threshold` times: a restart that counts.
    Failure,
    /// Its parent is restarted: the child goes along.
    Follow,
    /// `ksysvmmgr start|stop app`.
    Admin,
    /// The VM (re)started.
    Boot,
}

#[derive(Debug, Clone)]
struct Running {
    kind: ScriptKind,
    deadline_ms: u64,
    killing: bool,
}

#[derive(Debug, Clone)]
struct App {
    cfg: AppConfig,
    state: AppState,
    result: ScriptResult,
    running: Option<Running>,
    monitor_failures: u64,
    stop_failures: u64,
    start_failures: u64,
    restarts: u64,
    next_monitor_ms: u64,
    cycle: Cycle,
    /// After the stop, stay stopped (an administrator's `stop`).
    stay_stopped: bool,
    /// `rebootappstarttype=OS` after a boot: a first failing monitor means "not started yet".
    boot_grace: bool,
}

impl App {
    fn new(cfg: AppConfig, now_ms: u64) -> Self {
        let state = if cfg.monitored { AppState::Unset } else { AppState::NotMonitored };
        Self {
            cfg,
            state,
            result: ScriptResult::NotSet,
            running: None,
            monitor_failures: 0,
            stop_failures: 0,
            start_failures: 0,
            restarts: 0,
            next_monitor_ms: now_ms,
            cycle: Cycle::Failure,
            stay_stopped: false,
            boot_grace: false,
        }
    }

    fn start_launched(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.kind == ScriptKind::Start)
    }

    /// Counters cleared: a repaired app starts over.
    fn reset(&mut self) {
        self.monitor_failures = 0;
        self.stop_failures = 0;
        self.start_failures = 0;
        self.restarts = 0;
        self.boot_grace = false;
        self.stay_stopped = false;
    }
}

#[derive(Debug, Default)]
pub struct Engine {
    apps: Vec<App>,
    deps: Dependencies,
    /// The AME counter: rounds since the agent started.
    counter: u64,
    notify: u64,
}

impl Engine {
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// What the dependency rules see of the app `name`.
    fn peer(&self, name: &str) -> Option<Peer> {
        let app = self.apps.iter().find(|a| a.cfg.name == name)?;
        Some(Peer { state: app.state, start_launched: app.start_launched() })
    }

    /// Loads (or reloads, seed: `sync`) the configuration. Apps in a final state start over;
    /// `monitored=0` suspends monitoring (the app keeps running).
    pub fn load(&mut self, cfg: &HaMonitoring, now_ms: u64) {
        let mut apps = Vec::with_capacity(cfg.apps.len());
        for c in &cfg.apps {
            let app = match self.apps.iter().position(|a| a.cfg.uuid == c.uuid) {
                Some(i) => {
                    let mut app = self.apps.swap_remove(i);
                    app.cfg = c.clone();
                    if app.state.is_final() || (app.state == AppState::NotMonitored && !app.stay_stopped) {
                        app.reset();
                        app.state = AppState::Unset;
                        app.next_monitor_ms = now_ms;
                    }
                    if !c.monitored && app.state.is_monitoring() {
                        app.state = AppState::NotMonitored;
                    }
                    app
                }
                None => App::new(c.clone(), now_ms),
            };
            apps.push(app);
        }
        self.apps = apps;
        self.deps = Dependencies::new(&cfg.dependencies);
        self.notify |= NOTIFY_CONFIG;
    }

    /// The VM (re)started: `VMM` starts every monitored app in dependency order; `OS` lets the
    /// OS start them and starts those whose first monitor says they are not running.
    pub fn boot(&mut self, start_type: StartType, now_ms: u64) {
        for app in self.apps.iter_mut().filter(|a| a.cfg.monitored) {
            app.reset();
            app.running = None;
            app.cycle = Cycle::Boot;
            app.next_monitor_ms = now_ms;
            match start_type {
                StartType::Vmm => app.state = AppState::ToStart,
                StartType::Os => {
                    app.state = AppState::Unset;
                    app.boot_grace = true;
                }
            }
        }
        self.notify |= NOTIFY_STATUS;
    }

    /// One AME round (seed: doLaunch, then doInspectForTimeout): what to launch and what to kill.
    /// `usable` tells whether a script exists and is executable.
    pub fn round(&mut self, now_ms: u64, usable: &dyn Fn(&str) -> bool) -> Vec<Command> {
        self.counter += 1;
        let mut out = Vec::new();
        for i in 0..self.apps.len() {
            let before = self.apps[i].state;
            if let Some(cmd) = self.step(i, now_ms, usable) {
                out.push(cmd);
            }
            if self.apps[i].state != before {
                self.notify |= NOTIFY_STATUS;
            }
        }
        out
    }

    fn step(&mut self, i: usize, now_ms: u64, usable: &dyn Fn(&str) -> bool) -> Option<Command> {
        let app = &self.apps[i];
        if let Some(r) = &app.running {
            if now_ms < r.deadline_ms || r.killing {
                return None;
            }
            let name = app.cfg.name.clone();
            self.apps[i].running.as_mut()?.killing = true;
            return Some(Command::Kill { app: name });
        }
        if app.state.is_final() || app.state == AppState::NotMonitored {
            return None;
        }
        let scripts = [&app.cfg.monitor_script, &app.cfg.start_script, &app.cfg.stop_script];
        if scripts.iter().any(|s| !usable(s)) {
            let app = &mut self.apps[i];
            app.state = AppState::Abnormal;
            app.result = ScriptResult::NotSet;
            return None;
        }
        let kind = match app.state {
            s if s.is_monitoring() && now_ms >= app.next_monitor_ms => ScriptKind::Monitor,
            AppState::ToStop if self.deps.may_stop(&app.cfg.name, |n| self.peer(n)) => ScriptKind::Stop,
            AppState::ToStart if self.deps.may_start(&app.cfg.name, |n| self.peer(n)) => ScriptKind::Start,
            _ => return None,
        };
        let app = &mut self.apps[i];
        let (script, secs) = match kind {
            ScriptKind::Monitor => {
                app.next_monitor_ms = now_ms + app.cfg.monitor_period * 1000;
                (&app.cfg.monitor_script, app.cfg.monitor_timeout)
            }
            ScriptKind::Stop => (&app.cfg.stop_script, app.cfg.stop_stabilization_time),
            ScriptKind::Start => (&app.cfg.start_script, app.cfg.start_stabilization_time),
        };
        let timeout = Duration::from_secs(secs);
        app.running = Some(Running { kind, deadline_ms: now_ms + secs * 1000, killing: false });
        Some(Command::Launch { app: app.cfg.name.clone(), kind, script: script.clone(), timeout })
    }

    /// A script ended (seed: doNonBlockingWait).
    pub fn finished(&mut self, name: &str, kind: ScriptKind, outcome: &Outcome, now_ms: u64) {
        let Some(i) = self.index(name) else { return };
        if self.apps[i].running.as_ref().map(|r| r.kind) != Some(kind) {
            return;
        }
        let before = self.apps[i].state;
        self.apps[i].running = None;
        let result = match outcome {
            Outcome::Exited(0) => ScriptResult::Normal,
            Outcome::Exited(_) => ScriptResult::Abnorm,
            Outcome::TimedOut => ScriptResult::Timout,
            Outcome::Unusable(_) => {
                self.apps[i].state = AppState::Abnormal;
                self.apps[i].result = ScriptResult::NotSet;
                self.notify |= NOTIFY_STATUS;
                return;
            }
        };
        self.apps[i].result = result;
        let ok = result == ScriptResult::Normal;
        match kind {
            ScriptKind::Monitor => self.monitor_ended(i, ok),
            ScriptKind::Stop => {
                let app = &mut self.apps[i];
                match ok {
                    true if app.stay_stopped => {
                        app.stop_failures = 0;
                        app.state = AppState::NotMonitored;
                    }
                    true => {
                        app.stop_failures = 0;
                        app.state = AppState::ToStart;
                    }
                    false => {
                        app.stop_failures += 1;
                        if app.stop_failures >= app.cfg.stop_max_failures {
                            app.state = AppState::NotStoppable;
                        }
                    }
                }
            }
            ScriptKind::Start => {
                let app = &mut self.apps[i];
                if !ok {
                    app.start_failures += 1;
                    if app.start_failures >= app.cfg.start_max_failures {
                        app.state = AppState::NotStartable;
                    }
                } else {
                    app.start_failures = 0;
                    app.monitor_failures = 0;
                    app.next_monitor_ms = now_ms;
                    app.state = AppState::Unset;
                    if app.cycle == Cycle::Failure {
                        app.restarts += 1;
                        if app.restarts >= app.cfg.max_restart {
                            app.state = AppState::Failure;
                        }
                    }
                }
            }
        }
        if self.apps[i].state != before {
            self.notify |= NOTIFY_STATUS;
        }
    }

    fn monitor_ended(&mut self, i: usize, ok: bool) {
        let app = &mut self.apps[i];
        if !app.state.is_monitoring() {
            return; // stopped meanwhile (its parent is restarted): the result is moot
        }
        if ok {
            app.state = AppState::Normal;
            app.monitor_failures = 0;
            app.boot_grace = false;
            return;
        }
        if std::mem::take(&mut app.boot_grace) {
            app.state = AppState::ToStart; // the OS did not start it: the agent does
            return;
        }
        app.monitor_failures += 1;
        match app.monitor_failures >= app.cfg.monitor_failure_threshold {
            true => self.begin_stop(i, Cycle::Failure, false),
            false => app.state = AppState::Failing,
        }
    }

    /// Stops `i` (and first its children, which then start again after it).
    fn begin_stop(&mut self, i: usize, cycle: Cycle, stay_stopped: bool) {
        let name = self.apps[i].cfg.name.clone();
        let app = &mut self.apps[i];
        app.state = AppState::ToStop;
        app.cycle = cycle;
        app.stay_stopped = stay_stopped;
        for child in self.deps.children(&name) {
            if let Some(c) = self.index(&child)
                && (self.apps[c].state.is_monitoring() || self.apps[c].state == AppState::ToStart)
            {
                let child = &mut self.apps[c];
                child.state = AppState::ToStop;
                child.cycle = Cycle::Follow;
                child.stay_stopped = stay_stopped;
            }
        }
    }

    /// `ksysvmmgr start app NAME`: repairs a failed app too (counters cleared).
    pub fn start(&mut self, name: &str) -> Result<(), VmmError> {
        let i = self.index(name).ok_or_else(|| not_found(name))?;
        let app = &mut self.apps[i];
        if app.running.is_some() || app.state.is_monitoring() {
            return Err(busy(name, app.state));
        }
        app.reset();
        app.state = AppState::ToStart;
        app.cycle = Cycle::Admin;
        for child in self.deps.children(name) {
            if let Some(c) = self.index(&child).filter(|&c| self.apps[c].state == AppState::NotMonitored) {
                self.apps[c].state = AppState::ToStart;
                self.apps[c].cycle = Cycle::Follow;
            }
        }
        self.notify |= NOTIFY_STATUS;
        Ok(())
    }

    /// `ksysvmmgr stop app NAME`: stops it (children first) and leaves it stopped.
    pub fn stop(&mut self, name: &str) -> Result<(), VmmError> {
        let i = self.index(name).ok_or_else(|| not_found(name))?;
        let app = &self.apps[i];
        if app.running.is_some() || app.state == AppState::ToStop || app.state == AppState::NotMonitored {
            return Err(busy(name, app.state));
        }
        self.apps[i].reset();
        self.begin_stop(i, Cycle::Admin, true);
        self.notify |= NOTIFY_STATUS;
        Ok(())
    }

    /// The notification vector since the last call (seed: `AME Notificaton Vector`), cleared.
    pub fn take_notifications(&mut self) -> u64 {
        std::mem::take(&mut self.notify)
    }

    pub fn statuses(&self) -> Vec<AppStatus> {
        self.apps
            .iter()
            .map(|a| AppStatus {
                name: a.cfg.name.clone(),
                uuid: a.cfg.uuid.clone(),
                state: a.state,
                result: a.result,
                running: a.running.is_some(),
                monitored: a.cfg.monitored,
                critical: a.cfg.critical,
                monitor_failures: a.monitor_failures,
                monitor_failure_threshold: a.cfg.monitor_failure_threshold,
                stop_failures: a.stop_failures,
                stop_max_failures: a.cfg.stop_max_failures,
                start_failures: a.start_failures,
                start_max_failures: a.cfg.start_max_failures,
                restarts: a.restarts,
                max_restart: a.cfg.max_restart,
            })
            .collect()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.cfg.name == name)
    }
}

fn not_found(name: &str) -> VmmError {
    VmmError::new(code::NOT_FOUND, format!("Application \"{name}\" does not exist."))
}

fn busy(name: &str, state: AppState) -> VmmError {
    VmmError::daemon(format!("Application \"{name}\" is {state}: the action is not possible now."))
}
