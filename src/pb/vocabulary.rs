//! The values the protocols carry as words: the reference codes an HMC shows for a partition,
//! and the metadata key that names an HMC (states travel as enums). Both ends — the controller
//! and whatever implements the HMC (the simulator today) — use these, so neither borrows the
//! other's words.

/// Reference code an HMC shows for a running Linux partition (seed: `Linux ppc64le`).
pub const REFCODE_RUNNING: &str = "Linux ppc64le";
/// Reference code of a partition that is shut down.
pub const REFCODE_OFF: &str = "00000000";

/// Metadata key naming the HMC a call is for, when one node serves several.
pub const HMC_METADATA: &str = "vmrm-hmc";
