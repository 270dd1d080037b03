//! The values the protocols carry as strings: what an HMC reports of a managed system and a
//! partition, the states of its jobs, and the metadata key that names an HMC. Both ends — the
//! controller and whatever implements the HMC (the simulator today) — use these, so neither
//! borrows the other's words.

/// The state an HMC shows for a managed system it reaches (seed: `lssyscfg -r sys -F state`).
pub const HOST_OPERATING: &str = "Operating";
/// Reference code an HMC shows for a running Linux partition (seed: `Linux ppc64le`).
pub const REFCODE_RUNNING: &str = "Linux ppc64le";
/// Reference code of a partition that is shut down.
pub const REFCODE_OFF: &str = "00000000";

/// An HMC job still running.
pub const JOB_RUNNING: &str = "RUNNING";
/// An HMC job that completed successfully.
pub const JOB_COMPLETED_OK: &str = "COMPLETED_OK";
/// An HMC job that completed with an error (its message says which).
pub const JOB_COMPLETED_WITH_ERROR: &str = "COMPLETED_WITH_ERROR";

/// Metadata key naming the HMC a call is for, when one node serves several.
pub const HMC_METADATA: &str = "vmrm-hmc";
