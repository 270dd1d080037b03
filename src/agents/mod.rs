//! # The product's agents
//!
//! vmrm's software that runs beside the managed hardware rather than in the controller: on each
//! VIOS the [`host_monitor`] (VM heartbeats, transitions into the HSDB, QuickQuery and
//! NeedsAttention for the FDE) with its [`ar_gateway`] (application reports: PUT, QUERY, GET,
//! ACK); in each VM the [`vm_agent`] (heartbeats to the host monitors, the application
//! engine's shell: scripts as processes, the guest's files, `ksysvmmgr`'s socket, application
//! reporting, the guest application server).
pub mod ar_gateway;
pub mod host_monitor;
pub mod vm_agent;

#[cfg(test)]
mod host_monitor_tests;
