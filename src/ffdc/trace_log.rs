//! The node's named trace logs (seed 000: `ksysmgr trace log=user|ksys|fde|fdelong|krest|
//! krestlong`): a tracing layer keeps the newest lines of each in memory, so `trace` shows them
//! and every FFDC bundle carries them without reading log files. `user` holds what people asked
//! and how it went (the admin API), `ksys` the node's whole log, `fde` the failure detection
//! and `krest` the calls to the HMCs; the `…long` logs add their debug lines.
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use strum::{Display, EnumString, VariantArray};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::layer::Context;

/// Lines kept per log.
pub const LINES_KEPT: usize = 2000;
/// The longest line kept (a longer one is cut).
const LINE_MAX: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, VariantArray)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum TraceLog {
    User,
    Ksys,
    Fde,
    Fdelong,
    Krest,
    Krestlong,
}

/// The targets whose lines go to the `fde` and `krest` logs.
const FDE_TARGETS: &[&str] = &["vmrm::controller::detection", "vmrm::logic::fde", "vmrm::agents::host_monitor"];
const KREST_TARGETS: &[&str] = &["vmrm::controller::gateway"];
/// The `user` log: people's requests (the admin API) and the lines operations report to them.
const USER_TARGETS: &[&str] = &["vmrm::controller::api", "vmrm::ksys"];

impl TraceLog {
    /// Whether a line of `target` at `level` belongs to this log.
    pub fn takes(self, target: &str, level: Level) -> bool {
        let under = |targets: &[&str]| targets.iter().any(|t| target.starts_with(t));
        let info = level <= Level::INFO;
        match self {
            Self::User => info && under(USER_TARGETS),
            Self::Ksys => info,
            Self::Fde => info && under(FDE_TARGETS),
            Self::Fdelong => level <= Level::DEBUG && under(FDE_TARGETS),
            Self::Krest => info && under(KREST_TARGETS),
            Self::Krestlong => level <= Level::DEBUG && under(KREST_TARGETS),
        }
    }

    pub fn names() -> String {
        Self::VARIANTS.iter().map(ToString::to_string).collect::<Vec<_>>().join("|")
    }
}

/// The newest lines of each log.
#[derive(Default)]
pub struct TraceLogs {
    logs: Mutex<[VecDeque<String>; 6]>,
}

impl TraceLogs {
    fn index(log: TraceLog) -> usize {
        TraceLog::VARIANTS.iter().position(|l| *l == log).unwrap_or_default()
    }

    fn push(&self, target: &str, level: Level, line: &str) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        for log in TraceLog::VARIANTS.iter().filter(|l| l.takes(target, level)) {
            let lines = &mut logs[Self::index(*log)];
            if lines.len() == LINES_KEPT {
                lines.pop_front();
            }
            lines.push_back(line.to_string());
        }
    }

    /// The newest `limit` lines of `log` (all kept when `limit` is 0), oldest first.
    pub fn lines(&self, log: TraceLog, limit: usize) -> Vec<String> {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let lines = &logs[Self::index(log)];
        let skip = match limit {
            0 => 0,
            n => lines.len().saturating_sub(n),
        };
        lines.iter().skip(skip).cloned().collect()
    }
}

/// The process's trace logs.
pub fn logs() -> &'static TraceLogs {
    static LOGS: OnceLock<TraceLogs> = OnceLock::new();
    LOGS.get_or_init(TraceLogs::default)
}

/// The layer that fills [`logs`]: vmrm's own lines at debug and above (only the `…long` logs
/// keep the debug ones), whatever the console's filter shows.
pub fn layer<S: Subscriber>() -> Filtered<RingLayer, FilterFn, S> {
    RingLayer.with_filter(FilterFn::new(|meta| {
        meta.target().starts_with("vmrm") && (*meta.level() <= Level::INFO || takes_debug(meta.target()))
    }))
}

fn takes_debug(target: &str) -> bool {
    FDE_TARGETS.iter().chain(KREST_TARGETS).any(|t| target.starts_with(t))
}

pub struct RingLayer;

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line =
            format!("{} {:>5} {}:", crate::domain::millis::utc(crate::now_ms()), meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        if line.len() > LINE_MAX {
            let mut cut = LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        logs().push(meta.target(), *meta.level(), &line);
    }
}

/// Writes an event's fields as ` message k=v …`.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => write!(self.0, " {value}"),
            name => write!(self.0, " {name}={value}"),
        }
        .ok();
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        }
        .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_takes_its_targets_and_levels() {
        assert!(TraceLog::Ksys.takes("vmrm::hsdb::raft_node", Level::INFO));
        assert!(!TraceLog::Ksys.takes("vmrm::hsdb::raft_node", Level::DEBUG));
        assert!(TraceLog::Fde.takes("vmrm::controller::detection::fde", Level::WARN));
        assert!(!TraceLog::Fde.takes("vmrm::controller::detection::fde", Level::DEBUG));
        assert!(TraceLog::Fdelong.takes("vmrm::controller::detection::fde", Level::DEBUG));
        assert!(!TraceLog::Fde.takes("vmrm::controller::gateway::hmc", Level::INFO));
        assert!(TraceLog::Krest.takes("vmrm::controller::gateway::hmc", Level::INFO));
        assert!(TraceLog::Krestlong.takes("vmrm::controller::gateway::hmc", Level::DEBUG));
        assert!(TraceLog::User.takes("vmrm::controller::api::audit", Level::INFO));
        assert!(TraceLog::User.takes("vmrm::ksys", Level::INFO), "the lines of operations");
        assert_eq!("FDE".parse::<TraceLog>(), Ok(TraceLog::Fde));
        assert!("fdeshort".parse::<TraceLog>().is_err());
        assert_eq!(TraceLog::names(), "user|ksys|fde|fdelong|krest|krestlong");
    }

    #[test]
    fn a_log_keeps_its_newest_lines() {
        let logs = TraceLogs::default();
        for i in 0..LINES_KEPT + 5 {
            logs.push("vmrm::controller::detection::fde", Level::INFO, &format!("line {i}"));
        }
        let fde = logs.lines(TraceLog::Fde, 0);
        assert_eq!(fde.len(), LINES_KEPT);
        assert_eq!(fde[0], "line 5");
        assert_eq!(
            logs.lines(TraceLog::Fde, 2),
            vec![format!("line {}", LINES_KEPT + 3), format!("line {}", LINES_KEPT + 4)]
        );
        assert!(logs.lines(TraceLog::Krest, 0).is_empty());
    }
}
