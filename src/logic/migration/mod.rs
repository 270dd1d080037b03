//! Live migration decisions (seed 001 §4, Fujitsu SE live migration): the pre-check that
//! collects every conflict at once ([`precheck`]) and when iterative pre-copy stops
//! ([`convergence`]). Pure: the server units move the bytes.
pub mod convergence;
pub mod messages;
pub mod precheck;
