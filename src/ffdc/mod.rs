//! # First-failure data capture across the cluster (seed 003)
//!
//! When something fails, the evidence is spread over many nodes and gone minutes later. Every
//! `vmrmd` node runs an FFDC [`module`]: a trigger on any node opens one incident in the HSDB
//! (committed before anyone is asked), every registered node captures its own diagnostics into
//! it at that moment, a node cut off from the HSDB hands its bundle to a peer, and any node
//! serves the whole incident — listed, or as one archive — from the HSDB.
//!
//! | room | owns |
//! |---|---|
//! | [`trace_log`] | the node's named trace logs (`user`, `ksys`, `fde` …) kept in memory |
//! | [`bundle`] | what one node captures |
//! | [`store`] | the FFDC rows: incidents, bundles as chunks under a manifest, eviction |
//! | [`archive`] | one incident as a deterministic tar.gz |
//! | [`module`] | the node's side: registration, its HSDB path, capture, delegation, local staging |
//! | [`coordinator`] | the active controller's side: node liveness and membership, DBN changes, settling, quota, periodic and threshold triggers |
//! | [`views`] | what people get (the same from every node), and the settings' changes |
//! | [`service`] | the `vmrm.v1.Ffdc` gRPC service |
pub mod archive;
pub mod bundle;
pub mod coordinator;
pub mod module;
pub mod service;
pub mod store;
pub mod trace_log;
pub mod views;

pub use module::FfdcModule;
