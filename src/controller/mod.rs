//! # The KSYS controller
//!
//! Runs on every HSDB member; only the one on the DBN (the Raft leader) is **active**: it serves
//! the admin API, runs one FDE per discovered host group and orchestrates recoveries. A standby
//! answers admin calls with `UNAVAILABLE` naming the active controller, and all its HSDB writes
//! would fail (it never forwards), so two controllers never act at once.
//!
//! * [`core`]: shared state and the HMC / SAN gateways (first-ok over a host's HMCs).
//! * [`admin`]: the `vmrm.v1.Admin` service; [`config_ops`], [`discovery`]: what it runs.
//! * [`detection_ops`]: detection settings per level (`modify system|host_group|vm`).
//! * [`fde`]: the per-host-group FDE actor (QuickQuery, QuickQuery, NeedsAttention …).
//! * [`vm_watch`]: the FDE's VM checks (evidence, HBoffsets, single-VM relocation).
//! * [`mapper_inputs`]: policies and free capacity for the relocation mapper.
//! * [`recovery`]: recovery tasks (plan, record, run by priority; advisory mode);
//!   [`restart_vm`]: one VM's fenced restart sequence; [`resume`]: unfinished tasks taken over
//!   by a controller that became active; [`restart_ops`]: the admin's restart and restore.
//! * [`migration_ops`]: one VM's live migration (`ksysmgr lpm`, gRPC `Migrate`), with its
//!   pre-check facts in [`lpm_precheck`], migrations left by a failed controller taken over in
//!   [`lpm_resume`]; [`evacuation`]: a host's VMs away and back home.
//! * [`monjv_ops`]: monitoring job variables, kept by the system as VMs run and migrate.
//! * [`su_cluster_ops`]: SU clusters, their status from the units' alive messages, and the
//!   recovery of a VM definition from a unit that is gone.
//! * [`cleanup`]: stale definitions on a host that came back.
//! * [`app_report`]: application reports from the VM agents (PUT/QUERY/GET/ACK) and what a
//!   critical application's FAILURE does to its VM; [`reboot_vm`]: a restart on the same host.
//! * [`affinity_ops`]: collocation, anticollocation and workgroup groups.
//! * [`policy_ops`]: policies (`modify … restart_policy|priority|blacklist_hosts …`, affinity groups).
//! * [`views`]: records → query replies.
pub mod admin;
pub mod affinity_ops;
pub mod app_report;
pub mod cleanup;
pub mod config_ops;
pub mod core;
pub mod detection_ops;
pub mod discovery;
pub mod evacuation;
pub mod fde;
pub mod lines;
pub mod lpm_precheck;
pub mod lpm_resume;
pub mod mapper_inputs;
pub mod membership;
pub mod migration_ops;
pub mod monjv_ops;
pub mod policy_ops;
pub mod reboot_vm;
pub mod recovery;
pub mod restart_ops;
pub mod restart_vm;
pub mod resume;
pub mod su_cluster_ops;
pub mod supervisor;
pub mod views;
pub mod vm_watch;

pub use self::core::ControllerCore;
pub use supervisor::Controller;
