//! What an application is doing, as the seed's status table shows it: the STATE codes with
//! their colours, the RESULT of the last script, and the counters behind FAIL/STOP/START/RESTART.
use serde::{Deserialize, Serialize};
use strum::Display;

/// Seed STATE codes (0, 5 and 7 inferred from the gaps: NOT_MONITORED, NOT_STOPPABLE,
/// NOT_STARTABLE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum AppState {
    NotMonitored,
    Unset,
    Normal,
    Failing,
    ToStop,
    NotStoppable,
    ToStart,
    NotStartable,
    /// A script is missing or not executable: needs repair.
    Abnormal,
    /// `max_restart` local restarts did not help.
    Failure,
}

impl AppState {
    pub fn code(self) -> u8 {
        match self {
            Self::NotMonitored => 0,
            Self::Unset => 1,
            Self::Normal => 2,
            Self::Failing => 3,
            Self::ToStop => 4,
            Self::NotStoppable => 5,
            Self::ToStart => 6,
            Self::NotStartable => 7,
            Self::Abnormal => 8,
            Self::Failure => 9,
        }
    }

    /// GREEN stable, YELLOW on the way, RED failed for good (until repaired).
    pub fn color(self) -> Color {
        match self {
            Self::Normal => Color::Green,
            Self::NotStoppable | Self::NotStartable | Self::Abnormal | Self::Failure => Color::Red,
            Self::NotMonitored | Self::Unset | Self::Failing | Self::ToStop | Self::ToStart => Color::Yellow,
        }
    }

    /// Final until an administrator repairs the app and runs `start`, `resume` or `sync`.
    pub fn is_final(self) -> bool {
        self.color() == Color::Red
    }

    /// The app runs and is watched by its monitor script.
    pub fn is_monitoring(self) -> bool {
        matches!(self, Self::Unset | Self::Normal | Self::Failing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum Color {
    Green,
    Yellow,
    Red,
}

/// Seed RESULT codes: `0 NORMAL`, `1 ABNORM`, `2 TIMOUT` (sic), `99 NOTSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum ScriptResult {
    Normal,
    Abnorm,
    Timout,
    NotSet,
}

/// Which of an application's scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ScriptKind {
    Monitor,
    Start,
    Stop,
}

/// How a script ended, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// Killed (with its process group) after its timeout.
    TimedOut,
    /// It could not be run at all (missing, not executable).
    Unusable(String),
}

/// One application's status line (seed: `UUID STATE RESULT RUN MON DEL FAIL STOP START
/// RESTART`), what `ksysvmmgr query app` and the controller's `query app` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    pub name: String,
    pub uuid: String,
    pub state: AppState,
    pub result: ScriptResult,
    pub running: bool,
    pub monitored: bool,
    pub critical: bool,
    pub monitor_failures: u64,
    pub monitor_failure_threshold: u64,
    pub stop_failures: u64,
    pub stop_max_failures: u64,
    pub start_failures: u64,
    pub start_max_failures: u64,
    pub restarts: u64,
    pub max_restart: u64,
}

impl AppStatus {
    /// `NORMAL (GREEN)`.
    pub fn status(&self) -> String {
        format!("{} ({})", self.state, self.state.color())
    }
}
