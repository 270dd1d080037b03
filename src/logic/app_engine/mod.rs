//! Application monitoring inside a VM (seed 000 §2.2.8 and §3.7): the agent's configuration
//! with the checks `ksysvmmgr` applies ([`config`]), the application states ([`state`]), the
//! Application Management Engine's state machine ([`engine`]) and the dependency rules it
//! checks before every script launch (`deps`). All pure: the VM agent's shell runs the scripts
//! and feeds the results back.
pub mod config;
mod deps;
pub mod engine;
pub mod state;

pub use config::{AppConfig, HaMonitoring, StartType, VmmError};
pub use engine::{Command, Engine};
pub use state::{AppState, AppStatus, Color, Outcome, ScriptKind, ScriptResult};

#[cfg(test)]
mod tests;
