//! # vmrm — an open VM recovery manager
//!
//! It watches servers, VIOSs and VMs, decides what failed, and brings the work back without
//! ever letting a VM run twice. The managed "hardware" (HMCs, server units, VMs, the SAN) is
//! simulated by actors in [`sim`]; everything between them is real: processes, gRPC, a Raft store
//! on disk.
//!
//! ## Layout — the room map
//! | module | owns |
//! |---|---|
//! | [`pb`] | the wire: generated gRPC code of `proto/vmrm/v1`, the strings its messages carry, conversions |
//! | [`config`] | the node's TOML file: which roles it plays and where its peers are |
//! | [`clock`] | one clock for actors and timestamps: tokio's, so tests can pause and advance it |
//! | [`profile`] | timing tunables: the seed's defaults and the `fast` profile |
//! | [`error`] | the error type and its one mapping to and from gRPC status |
//! | [`domain`] | plain data: inventory records, VM states, policies, events |
//! | [`logic`] | pure decisions: failure detection, placement, the application engine, migration rules |
//! | [`hsdb`] | the Health Status Database: openraft + sled, its gRPC service and clients |
//! | [`disk_sync`] | sled flushes completed to the disk (fdatasync), for the HSDB and the SAN |
//! | [`controller`] | the KSYS controller, one sub-room per concern (API, config, detection, recovery, migration, apps) |
//! | [`agents`] | the product's agents beside the hardware: host monitor + AR gateway (VIOS), VM agent (in each VM) |
//! | [`sim`] | the simulated hardware only: HMC, server unit, the hypervisor boundary to its partitions (simulated ones its first backend), guest memory, SAN |
//! | [`metrics`] | the node's Prometheus metrics and its `/metrics` endpoint |
//! | [`ffdc`] | first-failure data capture across the cluster: triggers, coordinated capture, delegation, retrieval, trace logs |
//! | [`in_flight`] | the "one request in flight" flag of actors that poll or fetch on a timer |
//! | [`transport`] | gRPC channels with deadlines, the leader-following admin client, the SAN client |
//! | [`node`] | one `vmrmd` process: roles from config, serving, crash-only supervision, ordered shutdown |
//! | [`launcher`] | the embedded local datacenter (and the multi-process test clusters) |
//! | [`cli`] | `ksysmgr`, `ksysvmmgr` and `cmappmgr`: grammar, execution, output |
//! | `testing` | test kits behind the `testing` feature: linearizability checker, HSDB fault network, chaos checks |
pub mod agents;
pub mod cli;
pub mod clock;
pub mod config;
pub mod controller;
pub mod disk_sync;
pub mod domain;
pub mod error;
pub mod ffdc;
pub mod hsdb;
pub mod in_flight;
pub mod launcher;
pub mod logic;
pub mod metrics;
pub mod node;
pub mod pb;
pub mod profile;
pub mod sim;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use clock::now_ms;
pub use error::VmrmError;
