//! # The simulated hardware
//!
//! What a datacenter would own and vmrm only talks to: one actix actor per object, each with a
//! thin gRPC service in front, speaking the same protocols a real backend would. Nothing of the
//! product lives here, and nothing of the controller imports it (`.ci/run` checks that).
//!
//! * [`hmc`]: a hardware management console: inventory and asynchronous jobs.
//! * [`su`]: a server unit — a host's hypervisor with its LPAR table, live migration's data
//!   plane, the operator's drills.
//! * [`hypervisor`]: the boundary between a unit and its partitions, so another backend (real
//!   virtual machines) can stand behind the same unit.
//! * [`vm`]: the simulated partitions, the first backend: a running partition's OS (ping, I/O on
//!   the SAN disk, a workload) hosting the product's VM agent ([`crate::agents::vm_agent`]).
//! * [`guest_memory`], [`workload`]: a guest's memory as real pages and what dirties them.
//! * [`san`]: the storage, with persistent reservations (the fence) and its own record.
pub mod guest_memory;
pub mod hmc;
pub mod hypervisor;
pub mod san;
pub mod su;
pub mod vm;
pub mod workload;
