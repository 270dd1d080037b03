//! Live partition mobility: one VM's migration ([`lpm`]: `ksysmgr lpm`, gRPC `Migrate`), its
//! pre-check facts ([`precheck`]), a host evacuated and brought home ([`evacuation`]),
//! migrations left by a failed controller taken over ([`takeover`]) and SU clusters with the
//! recovery of a VM definition ([`su_cluster`]).
pub mod evacuation;
pub mod lpm;
pub mod precheck;
pub mod su_cluster;
pub mod takeover;
