//! Pure decisions over plain data with an injected clock (`now_ms`): no async, actix, tonic or
//! sled here, so every branch is unit-tested directly.
pub mod app_engine;
pub mod app_escalation;
pub mod detection;
pub mod discovery_diff;
pub mod discovery_schedule;
pub mod event_page;
pub mod fde;
pub mod ffdc;
pub mod health;
pub mod migration;
pub mod notify;
pub mod placement;
pub mod policy;
pub mod poll_cycle;
pub mod retries;
pub mod su_cluster;
pub mod vm_failure;
pub mod vm_watch;
