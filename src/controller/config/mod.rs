//! Configuration: the cluster, HMCs, hosts and host groups ([`cluster`]), discovery and
//! verification ([`discovery`]), policies (`modify … restart_policy|priority|blacklist_hosts …`,
//! `manage|unmanage`: [`policies`]), collocation, anticollocation and workgroups ([`affinity`]),
//! and HSDB membership changes ([`hsdb_membership`]).
pub mod affinity;
pub mod cluster;
pub mod discovery;
pub mod hsdb_membership;
pub mod policies;
