//! # vmrm — an open VM recovery manager
//!
//! It watches servers, VIOSs and VMs, decides what failed, and brings the work back without
//! ever letting a VM run twice. The managed "hardware" (HMCs, server units, VIOSs, VMs, the SAN)
//! is simulated by actors; everything between them is real: processes, gRPC, a Raft store on disk.
//!
//! ## Layout — the room map
//! | module | owns |
//! |---|---|
//! | [`pb`] | generated gRPC code of `proto/vmrm/v1` |
//! | [`config`] | the node's TOML file: which roles it plays and where its peers are |
//! | [`profile`] | timing tunables: the seed's defaults and the `fast` profile |
//! | [`domain`] | plain data: inventory records, VM states, events |
//! | [`logic`] | pure decisions: host and VM failure detection, placement, the application engine |
//! | [`hsdb`] | the Health Status Database: openraft + sled, its gRPC service and clients |
//! | [`lincheck`] | the linearizability checker the HSDB's fault tests judge histories with |
//! | [`actors`] | the simulated hardware: HMC, server unit, VM and its agent, VIOS + host monitor, SAN |
//! | [`controller`] | the KSYS controller: admin API, discovery, FDE, recovery |
//! | [`appmgr`] | the host-side application manager (`cmappmgr`) of a VM's guest application server |
//! | [`transport`] | gRPC channels with deadlines, the leader-following admin client |
//! | [`node`] | one `vmrmd` process: roles from config, serving, ordered shutdown |
//! | [`launcher`] | the embedded local datacenter (and the multi-process test clusters) |
//! | [`cli`] | `ksysmgr` and `ksysvmmgr`: grammar, execution, output |
pub mod actors;
pub mod appmgr;
pub mod chaos;
pub mod cli;
pub mod config;
pub mod controller;
pub mod domain;
pub mod error;
pub mod hsdb;
pub mod launcher;
pub mod lincheck;
pub mod logic;
pub mod node;
pub mod pb;
pub mod profile;
pub mod transport;

pub use error::VmrmError;

/// Wall-clock milliseconds since the Unix epoch: the time base of rows shared between nodes.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
