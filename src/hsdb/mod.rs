//! # HSDB — the Health Status Database
//!
//! The seed keeps health in a PostgreSQL on a shared disk with one database node (DBN). Here it
//! is an openraft 0.9 group (storage-v2) whose log and state machine live in sled; the Raft
//! leader is the DBN, and the controller on the DBN is the only active controller.
//!
//! ```text
//!  host monitor ──Write──▶ any member ──forward──▶ DBN ──client_write──▶ Raft log (fsynced)
//!                                                        └─apply──▶ tables (sled trees)
//!  VIOS (QQ/NA) ──Read───▶ any member ──forward──▶ DBN ──ensure_linearizable──▶ tables
//! ```
//! * [`tables`]: typed records over generic tables; every row carries the log index of its
//!   last write as its version, which makes compare-and-set possible.
//! * [`log_store`], [`state_machine`]: the two storage-v2 traits on sled; `applying` runs
//!   each apply as one transaction, rows and last applied log id together.
//! * [`network`], [`peer_service`]: Raft RPCs between members, on a port of their own
//!   ([`member`]); [`service`]: the table API over tonic.
//! * [`election`]: when a follower stands — after a pre-vote, once the voters' lease is out.
//! * [`batcher`]: group commit — concurrent writes share one log entry and one fsync.
//! * [`client`]: `LocalHsdb` (the controller's own member, never forwards, so a deposed
//!   controller cannot write) and `RemoteHsdb` (other nodes, follows the leader).
mod applying;
pub mod batcher;
pub mod client;
pub mod election;
pub mod locks;
pub mod log_store;
pub mod member;
pub mod network;
pub mod peer_service;
pub mod raft_guard;
pub mod raft_node;
pub mod read_barrier;
mod recent_entries;
pub mod service;
pub mod space;
pub mod state_machine;
pub mod tables;
pub mod types;
pub mod writers;

pub use client::{HsdbAccess, LocalHsdb, RemoteHsdb};
pub use member::Member;
pub use raft_node::HsdbNode;
pub use tables::{Record, Table};
pub use types::{Command, CommandResult, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig>;
