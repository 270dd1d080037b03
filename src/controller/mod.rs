//! # The KSYS controller
//!
//! Runs on every HSDB member; only the one on the DBN (the Raft leader) is **active**: it serves
//! the admin API, runs one FDE per discovered host group and orchestrates recoveries. A standby
//! answers admin calls with `UNAVAILABLE` naming the active controller, and all its HSDB writes
//! would fail (it never forwards), so two controllers never act at once.
//!
//! It reaches the managed hardware only over the wire (HMC jobs, SAN reservations, VIOS
//! queries), never by importing the simulator: `.ci/run` checks that nothing here names it.
//!
//! | room | owns |
//! |---|---|
//! | [`core`] | what every operation shares: the local HSDB member, timing, activity, the gateways |
//! | [`gateway`] | the HMCs (first answer over a host's HMCs), the SAN (the fence), ping and VIOS sanity |
//! | [`supervisor`] | the controller actor: leadership, one FDE per host group, resumption first |
//! | [`api`] | the `vmrm.v1.Admin` service and its query views |
//! | [`config`] | cluster, HMCs, hosts, host groups, discovery, policies, affinity groups, HSDB membership |
//! | [`detection`] | the FDE actor, its VM checks, detection settings per level |
//! | [`recovery`] | mapper inputs, recovery tasks, the fenced restart, resumption, restarts by hand, cleanup |
//! | [`dr`] | a DR cluster's replication per host group, site discovery, the move to the other site |
//! | [`migration`] | live migration, its pre-check, evacuation and restore, takeover, MONJVs, SU clusters |
//! | [`monjv`] | monitoring job variables (seed 004), kept by the system as VMs run, restart and migrate |
//! | [`notify`] | notification contacts, and the outbox that mails or POSTs each event to them |
//! | [`apps`] | application reports from the VM agents and a critical application's escalation |
//! | [`records`] | the configuration records every room looks up (cluster, host groups, hosts, VMs) |
//! | [`activity`] | the lines of every operation as they happen, for the live status |
//! | [`lines`] | the console lines an operation reports as it goes |
pub mod activity;
pub mod api;
pub mod apps;
pub mod config;
pub mod core;
pub mod dashboard;
pub mod detection;
pub mod dr;
pub mod gateway;
pub mod lines;
pub mod messages;
pub mod migration;
pub mod monjv;
pub mod notify;
pub mod records;
pub mod recovery;
pub mod supervisor;

pub use self::core::ControllerCore;
pub use supervisor::Controller;
