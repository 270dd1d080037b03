//! The embedded datacenter: a [`Topology`] (pure: it only generates node configs) and a
//! [`Datacenter`] that runs each node as its own `vmrmd` OS process on loopback, waits for them,
//! and configures the cluster through the admin API exactly as an operator would. `vmrmd local`
//! and the multi-process integration tests both use it.
pub mod certs;
pub mod compose;
pub mod datacenter;
pub mod topology;

pub use datacenter::{Datacenter, configure, inject_fault, running_vms, serving, set_workload, su_inventory};
pub use topology::{HostSpec, Topology};
