//! # Test kits (feature `testing`, on for the tests and examples only)
//!
//! What the tests and the chaos suite judge the system with; none of it ships in a node.
//!
//! * [`lincheck`]: the linearizability checker the HSDB's fault tests judge histories with.
//! * [`faulty_network`]: drop, delay, partition and heal links between HSDB members, in process.
//! * [`chaos`]: the chaos suite's invariant checks over the SAN's record and the VMs' places.
pub mod chaos;
pub mod faulty_network;
pub mod lincheck;
