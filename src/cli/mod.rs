//! The command-line tools. `ksysmgr`: the seed's command grammar `ksysmgr <action> <class>
//! [name] [key=value ...]` parsed into a [`KsysCommand`] (pure, tested here), run against the
//! active controller, and printed in the seed's wording ([`format`]) or as JSON; `ksysvmmgr`
//! ([`vmm`]), the VM agent's own tool; `cmappmgr` ([`appmgr`]), the host-side manager of a VM's
//! guest application server; `vmrmd certs` ([`certs`]), the cluster's certificate authority.
pub mod appmgr;
pub mod certs;
pub mod ffdc;
pub mod format;
pub mod grammar;
pub mod identity;
pub mod progress;
pub mod run;
pub mod settings;
pub mod vmm;

pub use grammar::{KsysCommand, parse};
pub use identity::Identity;
