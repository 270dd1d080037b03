//! The engine in simulated time: one round per second (the seed's `period=1`), scripts that
//! end when the test says so, and scripts that are missing when the test removes them.
use super::config::{HaMonitoring, VmmError, code};
use super::engine::{Command, Engine, NOTIFY_CONFIG, NOTIFY_STATUS};
use super::state::{AppState, Outcome, ScriptKind, ScriptResult};
use super::{Color, StartType};
use std::collections::BTreeSet;

fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect()
}

fn scripts(app: &str) -> Vec<(String, String)> {
    attrs(&[
        ("monitor_script", &format!("/apps/{app}/mon")),
        ("start_script", &format!("/apps/{app}/start")),
        ("stop_script", &format!("/apps/{app}/stop")),
        ("monitor_period", "5"),
        ("monitor_timeout", "3"),
        ("monitor_failure_threshold", "2"),
        ("max_restart", "1"),
    ])
}

fn config(apps: &[&str]) -> HaMonitoring {
    let mut cfg = HaMonitoring::default();
    for (i, app) in apps.iter().enumerate() {
        cfg.add_app(app, format!("15422311849727770{i:02}"), &scripts(app)).unwrap();
    }
    cfg
}

struct Sim {
    engine: Engine,
    now: u64,
    missing: BTreeSet<String>,
    /// Every launch, in order: (second, app, kind).
    launched: Vec<(u64, String, ScriptKind)>,
    killed: Vec<(u64, String)>,
}

impl Sim {
    fn new(cfg: &HaMonitoring) -> Self {
        let mut engine = Engine::default();
        engine.load(cfg, 0);
        Self { engine, now: 0, missing: BTreeSet::new(), launched: Vec::new(), killed: Vec::new() }
    }

    /// One round at the current second, then the clock moves on by one second.
    fn round(&mut self) -> Vec<Command> {
        let missing = self.missing.clone();
        let cmds = self.engine.round(self.now, &|s: &str| !missing.contains(s));
        for c in &cmds {
            match c {
                Command::Launch { app, kind, .. } => self.launched.push((self.now / 1000, app.clone(), *kind)),
                Command::Kill { app } => self.killed.push((self.now / 1000, app.clone())),
            }
        }
        self.now += 1000;
        cmds
    }

    fn rounds(&mut self, n: usize) {
        for _ in 0..n {
            self.round();
        }
    }

    fn end(&mut self, app: &str, kind: ScriptKind, rc: i32) {
        self.engine.finished(app, kind, &Outcome::Exited(rc), self.now);
    }

    /// The stop script, then the start script, both succeeding.
    fn restart_cycle(&mut self, app: &str) {
        self.until_launch(app, ScriptKind::Stop, 1);
        self.end(app, ScriptKind::Stop, 0);
        self.until_launch(app, ScriptKind::Start, 1);
        self.end(app, ScriptKind::Start, 0);
    }

    fn state(&self, app: &str) -> AppState {
        self.engine.statuses().into_iter().find(|s| s.name == app).unwrap().state
    }

    fn last_launch(&self, app: &str) -> Option<ScriptKind> {
        self.launched.iter().rev().find(|(_, a, _)| a == app).map(|(_, _, k)| *k)
    }

    /// Runs rounds until `app` launches `kind` (at most `limit` rounds).
    fn until_launch(&mut self, app: &str, kind: ScriptKind, limit: usize) {
        for _ in 0..limit {
            let cmds = self.round();
            if cmds.iter().any(|c| matches!(c, Command::Launch { app: a, kind: k, .. } if a == app && *k == kind)) {
                return;
            }
        }
        panic!("{app} did not launch its {kind} script within {limit} rounds: {:?}", self.launched);
    }
}

#[test]
fn a_loaded_app_is_unset_then_normal_and_monitored_launch_to_launch() {
    let mut sim = Sim::new(&config(&["app1"]));
    assert_eq!(sim.state("app1"), AppState::Unset);
    assert_eq!(sim.state("app1").color(), Color::Yellow);
    let cmds = sim.round();
    assert!(matches!(&cmds[..], [Command::Launch { kind: ScriptKind::Monitor, script, timeout, .. }]
        if script == "/apps/app1/mon" && timeout.as_secs() == 3));
    sim.end("app1", ScriptKind::Monitor, 0);
    assert_eq!(sim.state("app1"), AppState::Normal);
    assert_eq!(sim.engine.statuses()[0].status(), "NORMAL (GREEN)");
    // A 1 s script with period 5: launched at 0, 5, 10 (launch to launch).
    for _ in 0..11 {
        let second = sim.now / 1000;
        sim.round();
        if sim.last_launch("app1") == Some(ScriptKind::Monitor) && sim.launched.last().unwrap().0 == second {
            sim.end("app1", ScriptKind::Monitor, 0);
        }
    }
    let at: Vec<u64> = sim.launched.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(at, [0, 5, 10]);
}

#[test]
fn monitor_failures_up_to_the_threshold_restart_the_app_then_failure_after_max_restart() {
    let mut sim = Sim::new(&config(&["app1"]));
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 1);
    let status = &sim.engine.statuses()[0];
    assert_eq!((status.state, status.result, status.monitor_failures), (AppState::Failing, ScriptResult::Abnorm, 1));
    sim.until_launch("app1", ScriptKind::Monitor, 6);
    sim.end("app1", ScriptKind::Monitor, 1);
    assert_eq!(sim.state("app1"), AppState::ToStop, "FAIL 2/2: needs to be stopped");
    sim.until_launch("app1", ScriptKind::Stop, 1);
    sim.end("app1", ScriptKind::Stop, 0);
    assert_eq!(sim.state("app1"), AppState::ToStart, "stop ok, needs now to be started");
    sim.until_launch("app1", ScriptKind::Start, 1);
    sim.end("app1", ScriptKind::Start, 0);
    let status = &sim.engine.statuses()[0];
    assert_eq!(
        (status.state, status.restarts),
        (AppState::Failure, 1),
        "cycles(1)/max(1): FAILURE right after the start"
    );
    assert_eq!(status.status(), "FAILURE (RED)");
    sim.rounds(20);
    assert_eq!(sim.last_launch("app1"), Some(ScriptKind::Start), "a FAILURE app runs no more scripts");
}

#[test]
fn a_restart_below_max_restart_goes_back_to_monitoring() {
    let mut cfg = config(&["app1"]);
    cfg.modify_app("app1", &attrs(&[("max_restart", "3"), ("monitor_failure_threshold", "1")])).unwrap();
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 1);
    sim.restart_cycle("app1");
    assert_eq!(sim.state("app1"), AppState::Unset);
    sim.until_launch("app1", ScriptKind::Monitor, 1);
    sim.end("app1", ScriptKind::Monitor, 0);
    let status = &sim.engine.statuses()[0];
    assert_eq!((status.state, status.restarts, status.monitor_failures), (AppState::Normal, 1, 0));
}

#[test]
fn a_monitor_past_its_timeout_is_killed_and_counts_as_a_timout_failure() {
    let mut sim = Sim::new(&config(&["app1"]));
    sim.round(); // launched at 0, timeout 3 s
    sim.rounds(2);
    assert!(sim.killed.is_empty(), "not before its timeout");
    sim.round();
    assert_eq!(sim.killed, [(3, "app1".to_string())]);
    sim.round();
    assert_eq!(sim.killed.len(), 1, "killed once");
    sim.engine.finished("app1", ScriptKind::Monitor, &Outcome::TimedOut, sim.now);
    let status = &sim.engine.statuses()[0];
    assert_eq!((status.state, status.result), (AppState::Failing, ScriptResult::Timout));
}

#[test]
fn a_missing_script_makes_the_app_abnormal_until_a_sync_after_the_repair() {
    let cfg = config(&["app1"]);
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 0);
    sim.missing.insert("/apps/app1/mon".into());
    sim.round();
    let status = &sim.engine.statuses()[0];
    assert_eq!((status.state, status.monitor_failures), (AppState::Abnormal, 0), "ABNORMAL at once, FAIL stays 0");
    assert_eq!(status.status(), "ABNORMAL (RED)");
    sim.rounds(10);
    assert_eq!(sim.launched.len(), 1, "nothing runs while ABNORMAL");
    sim.missing.clear();
    sim.rounds(3);
    assert_eq!(sim.state("app1"), AppState::Abnormal, "final until repaired and synced");
    sim.engine.load(&cfg, sim.now);
    assert_eq!(sim.state("app1"), AppState::Unset);
    sim.until_launch("app1", ScriptKind::Monitor, 1);
}

#[test]
fn a_script_that_cannot_be_run_is_abnormal_too() {
    let mut sim = Sim::new(&config(&["app1"]));
    sim.round();
    sim.engine.finished("app1", ScriptKind::Monitor, &Outcome::Unusable("Permission denied".into()), sim.now);
    assert_eq!(sim.state("app1"), AppState::Abnormal);
}

#[test]
fn stop_and_start_failures_end_in_not_stoppable_and_not_startable() {
    let mut cfg = config(&["app1", "app2"]);
    for app in ["app1", "app2"] {
        cfg.modify_app(app, &attrs(&[("monitor_failure_threshold", "1")])).unwrap();
    }
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 1);
    sim.end("app2", ScriptKind::Monitor, 1);
    sim.until_launch("app2", ScriptKind::Stop, 1);
    sim.end("app2", ScriptKind::Stop, 0);
    for attempt in 1..=3 {
        if attempt > 1 {
            sim.until_launch("app1", ScriptKind::Stop, 2);
        }
        sim.end("app1", ScriptKind::Stop, 1);
        let expected = if attempt < 3 { AppState::ToStop } else { AppState::NotStoppable };
        assert_eq!(sim.state("app1"), expected, "stop failure {attempt}/3");
    }
    assert_eq!(sim.last_launch("app2"), Some(ScriptKind::Start), "launched meanwhile");
    for attempt in 1..=3 {
        if attempt > 1 {
            sim.until_launch("app2", ScriptKind::Start, 2);
        }
        sim.engine.finished("app2", ScriptKind::Start, &Outcome::TimedOut, sim.now);
        let expected = if attempt < 3 { AppState::ToStart } else { AppState::NotStartable };
        assert_eq!(sim.state("app2"), expected, "start failure {attempt}/3");
    }
    assert_eq!(sim.engine.statuses()[1].status(), "NOT_STARTABLE (RED)");
}

#[test]
fn start_repairs_a_failed_app_and_stop_leaves_it_stopped() {
    let mut cfg = config(&["app1"]);
    cfg.modify_app("app1", &attrs(&[("monitor_failure_threshold", "1")])).unwrap();
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 1);
    sim.restart_cycle("app1");
    assert_eq!(sim.state("app1"), AppState::Failure);

    sim.engine.start("app1").unwrap();
    sim.until_launch("app1", ScriptKind::Start, 1);
    sim.end("app1", ScriptKind::Start, 0);
    let status = &sim.engine.statuses()[0];
    assert_eq!((status.state, status.restarts), (AppState::Unset, 0), "an admin start does not count as a restart");
    assert_eq!(sim.engine.start("app1").unwrap_err().code, code::DAEMON, "already running");

    sim.engine.stop("app1").unwrap();
    sim.until_launch("app1", ScriptKind::Stop, 1);
    sim.end("app1", ScriptKind::Stop, 0);
    assert_eq!(sim.state("app1"), AppState::NotMonitored);
    sim.rounds(10);
    assert_eq!(sim.last_launch("app1"), Some(ScriptKind::Stop), "a stopped app stays stopped");
    assert_eq!(sim.engine.stop("nosuch").unwrap_err().code, code::NOT_FOUND);
}

#[test]
fn monitored_0_suspends_monitoring_and_1_resumes_it() {
    let mut cfg = config(&["app1"]);
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 0);
    cfg.modify_app("app1", &attrs(&[("monitored", "0")])).unwrap();
    sim.engine.load(&cfg, sim.now);
    assert_eq!(sim.state("app1"), AppState::NotMonitored);
    sim.rounds(10);
    assert_eq!(sim.launched.len(), 1);
    cfg.modify_app("app1", &attrs(&[("monitored", "1")])).unwrap();
    sim.engine.load(&cfg, sim.now);
    assert_eq!(sim.state("app1"), AppState::Unset);
    sim.until_launch("app1", ScriptKind::Monitor, 1);
}

#[test]
fn after_a_vm_restart_vmm_starts_the_apps_and_os_only_those_not_running() {
    let cfg = config(&["app1", "app2"]);
    let mut sim = Sim::new(&cfg);
    sim.engine.boot(StartType::Vmm, 0);
    let cmds = sim.round();
    assert_eq!(cmds.iter().filter(|c| matches!(c, Command::Launch { kind: ScriptKind::Start, .. })).count(), 2);

    let mut sim = Sim::new(&cfg);
    sim.engine.boot(StartType::Os, 0);
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 0);
    sim.end("app2", ScriptKind::Monitor, 1);
    assert_eq!(sim.state("app1"), AppState::Normal, "the OS started it");
    assert_eq!(sim.state("app2"), AppState::ToStart, "not running: the agent starts it");
    assert_eq!(sim.engine.statuses()[1].monitor_failures, 0, "not a failure");
    sim.until_launch("app2", ScriptKind::Start, 1);
}

#[test]
fn strict_start_sequence_waits_for_normal_and_non_strict_only_for_the_launch() {
    let mut cfg = config(&["a", "b", "c"]);
    cfg.add_dependency("d1".into(), &attrs(&[("dependency_list", "a,b,c"), ("dependency_type", "start_sequence")]))
        .unwrap();
    let mut sim = Sim::new(&cfg);
    sim.engine.boot(StartType::Vmm, 0);
    sim.round();
    assert_eq!(sim.launched, [(0, "a".to_string(), ScriptKind::Start)]);
    sim.end("a", ScriptKind::Start, 0);
    sim.round();
    assert!(sim.last_launch("b").is_none(), "a is started but not NORMAL yet");
    sim.end("a", ScriptKind::Monitor, 0);
    sim.until_launch("b", ScriptKind::Start, 1);
    assert!(sim.last_launch("c").is_none());

    let mut cfg = config(&["a", "b"]);
    let loose = attrs(&[("dependency_list", "a,b"), ("dependency_type", "start_sequence"), ("strict", "no")]);
    cfg.add_dependency("d1".into(), &loose).unwrap();
    let mut sim = Sim::new(&cfg);
    sim.engine.boot(StartType::Vmm, 0);
    sim.round();
    let order: Vec<&str> = sim.launched.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(order, ["a", "b"], "b right after a's launch");
}

#[test]
fn stop_sequence_stops_in_list_order() {
    let mut cfg = config(&["a", "b"]);
    cfg.add_dependency("d1".into(), &attrs(&[("dependency_list", "b,a"), ("dependency_type", "stop_sequence")]))
        .unwrap();
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("a", ScriptKind::Monitor, 0);
    sim.end("b", ScriptKind::Monitor, 0);
    sim.engine.stop("a").unwrap();
    sim.engine.stop("b").unwrap();
    sim.round();
    assert_eq!(sim.last_launch("a"), Some(ScriptKind::Monitor), "a waits for b");
    assert_eq!(sim.last_launch("b"), Some(ScriptKind::Stop));
    sim.end("b", ScriptKind::Stop, 0);
    sim.until_launch("a", ScriptKind::Stop, 1);
}

#[test]
fn a_failing_parent_stops_its_child_first_then_restarts_parent_then_child() {
    let mut cfg = config(&["parent", "child"]);
    cfg.modify_app("parent", &attrs(&[("monitor_failure_threshold", "1"), ("max_restart", "3")])).unwrap();
    cfg.add_dependency(
        "d1".into(),
        &attrs(&[("dependency_list", "parent,child"), ("dependency_type", "parent_child")]),
    )
    .unwrap();
    let mut sim = Sim::new(&cfg);
    sim.round();
    sim.end("parent", ScriptKind::Monitor, 1);
    sim.end("child", ScriptKind::Monitor, 0);
    assert_eq!((sim.state("parent"), sim.state("child")), (AppState::ToStop, AppState::ToStop));
    sim.round();
    assert_eq!(sim.last_launch("parent"), Some(ScriptKind::Monitor), "the child stops first");
    assert_eq!(sim.last_launch("child"), Some(ScriptKind::Stop));
    sim.end("child", ScriptKind::Stop, 0);
    sim.until_launch("parent", ScriptKind::Stop, 1);
    sim.end("parent", ScriptKind::Stop, 0);
    sim.until_launch("parent", ScriptKind::Start, 1);
    sim.end("parent", ScriptKind::Start, 0);
    sim.round();
    assert_eq!(sim.last_launch("child"), Some(ScriptKind::Stop), "the child waits for its parent to be NORMAL");
    sim.end("parent", ScriptKind::Monitor, 0);
    sim.until_launch("child", ScriptKind::Start, 1);
    sim.end("child", ScriptKind::Start, 0);
    let status = sim.engine.statuses();
    assert_eq!((status[0].restarts, status[1].restarts), (1, 0), "only the parent's restart counts");
    let order: Vec<(&str, ScriptKind)> =
        sim.launched.iter().filter(|(_, _, k)| *k != ScriptKind::Monitor).map(|(_, a, k)| (a.as_str(), *k)).collect();
    use ScriptKind::{Start, Stop};
    assert_eq!(order, [("child", Stop), ("parent", Stop), ("parent", Start), ("child", Start)]);
}

#[test]
fn a_parent_that_cannot_start_keeps_its_child_down() {
    let mut cfg = config(&["parent", "child"]);
    cfg.add_dependency(
        "d1".into(),
        &attrs(&[("dependency_list", "parent,child"), ("dependency_type", "parent_child")]),
    )
    .unwrap();
    let mut sim = Sim::new(&cfg);
    sim.engine.boot(StartType::Vmm, 0);
    for _ in 0..3 {
        sim.until_launch("parent", ScriptKind::Start, 2);
        sim.end("parent", ScriptKind::Start, 1);
    }
    assert_eq!(sim.state("parent"), AppState::NotStartable);
    sim.rounds(10);
    assert!(sim.last_launch("child").is_none(), "{:?}", sim.launched);
}

#[test]
fn the_notification_vector_says_config_then_status() {
    let mut sim = Sim::new(&config(&["app1"]));
    assert_eq!(sim.engine.take_notifications(), NOTIFY_CONFIG);
    assert_eq!(sim.engine.take_notifications(), 0, "cleared once read");
    sim.round();
    sim.end("app1", ScriptKind::Monitor, 0);
    assert_eq!(sim.engine.take_notifications(), NOTIFY_STATUS, "UNSET → NORMAL");
    sim.rounds(3);
    assert_eq!(sim.engine.take_notifications(), 0, "nothing changed");
}

fn err(r: Result<(), VmmError>) -> (u16, String) {
    let e = r.unwrap_err();
    (e.code, e.to_string())
}

#[test]
fn configuration_edits_are_checked_and_a_refused_one_changes_nothing() {
    let mut cfg = config(&["app1"]);
    let before = cfg.clone();
    let (c, text) = err(cfg.modify_app("app1", &attrs(&[("monitor_period", "10"), ("monitor_timeout", "10")])));
    assert_eq!(c, code::PERIOD_NOT_ABOVE_TIMEOUT);
    assert_eq!(
        text,
        "KSYSVMMGR-057(ERROR): monitor_period value must be greater than monitor_timeout value(monitor_period > monitor_timeout)."
    );
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("max_restart", "0")]))).0, code::OUT_OF_RANGE);
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("max_restart", "x")]))).0, code::BAD_VALUE);
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("colour", "red")]))).0, code::UNKNOWN_ATTRIBUTE);
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("uuid", "1")]))).0, code::READ_ONLY);
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("critical", "maybe")]))).0, code::BAD_VALUE);
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("type", "oracle")]))).0, code::BAD_VALUE, "uppercase only");
    assert_eq!(err(cfg.modify_app("app1", &attrs(&[("start_script", "start.sh")]))).0, code::BAD_VALUE);
    assert_eq!(err(cfg.modify_app("nosuch", &attrs(&[("critical", "yes")]))).0, code::NOT_FOUND);
    assert_eq!(err(cfg.modify_vmm(&attrs(&[("period", "7")]))).0, code::OUT_OF_RANGE);
    assert_eq!(err(cfg.modify_vmm(&attrs(&[("rebootappstarttype", "USER")]))).0, code::BAD_VALUE);
    assert_eq!(err(cfg.modify_vmm(&attrs(&[("version", "2.0")]))).0, code::READ_ONLY);
    let missing = attrs(&[("monitor_script", "/m"), ("stop_script", "/s")]);
    assert_eq!(err(cfg.add_app("app2", "2".into(), &missing)).0, code::MANDATORY_ATTRIBUTE);
    assert_eq!(err(cfg.add_app("app1", "2".into(), &scripts("app1"))).0, code::ALREADY_EXISTS);
    assert_eq!(cfg, before, "nothing changed");
}

#[test]
fn the_seventeenth_application_is_refused() {
    let names: Vec<String> = (1..=16).map(|i| format!("app{i}")).collect();
    let mut cfg = config(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let (c, text) = err(cfg.add_app("app17", "17".into(), &scripts("app17")));
    assert_eq!(c, code::TOO_MANY_APPS);
    assert!(text.ends_with("Application ADD failed, Maximum count of \"16\" applications reached."), "{text}");
    assert_eq!(cfg.apps.len(), 16);
}

#[test]
fn dependencies_are_checked() {
    let mut cfg = config(&["a", "b", "c"]);
    let dep = |list: &str, kind: &str| attrs(&[("dependency_list", list), ("dependency_type", kind)]);
    assert_eq!(err(cfg.add_dependency("1".into(), &dep("a", "start_sequence"))).0, code::BAD_DEPENDENCY);
    assert_eq!(err(cfg.add_dependency("1".into(), &dep("a,b,c", "parent_child"))).0, code::BAD_DEPENDENCY);
    assert_eq!(err(cfg.add_dependency("1".into(), &dep("a,a", "stop_sequence"))).0, code::BAD_DEPENDENCY);
    assert_eq!(err(cfg.add_dependency("1".into(), &dep("a,x", "stop_sequence"))).0, code::NOT_FOUND);
    assert_eq!(err(cfg.add_dependency("1".into(), &dep("a,b", "after"))).0, code::BAD_VALUE);
    assert_eq!(err(cfg.add_dependency("1".into(), &attrs(&[("dependency_list", "a,b")]))).0, code::MANDATORY_ATTRIBUTE);
    cfg.add_dependency("1".into(), &dep("a,b", "parent_child")).unwrap();
    assert_eq!(err(cfg.add_dependency("2".into(), &dep("b,c", "parent_child"))).0, code::BAD_DEPENDENCY, "one level");
    assert_eq!(err(cfg.delete_app("b")).0, code::IN_USE);
    assert!(!cfg.dependencies[0].strict, "strict applies to start_sequence only");
    cfg.delete_dependency("1").unwrap();
    assert_eq!(err(cfg.delete_dependency("1")).0, code::NOT_FOUND);
    cfg.delete_app("b").unwrap();
}

#[test]
fn the_configuration_file_round_trips() {
    let mut cfg = config(&["app1", "app2"]);
    cfg.add_dependency("9".into(), &attrs(&[("dependency_list", "app1,app2"), ("dependency_type", "start_sequence")]))
        .unwrap();
    let text = toml::to_string(&cfg).unwrap();
    assert!(text.contains("[VmMonitor]") && text.contains("[[Application]]"), "{text}");
    assert_eq!(toml::from_str::<HaMonitoring>(&text).unwrap(), cfg);
}
