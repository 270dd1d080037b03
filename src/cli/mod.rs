//! `ksysmgr`: the seed's command grammar `ksysmgr <action> <class> [name] [key=value ...]`
//! parsed into a [`KsysCommand`] (pure, tested here), run against the active controller, and
//! printed in the seed's wording ([`format`]) or as JSON.
pub mod format;
pub mod grammar;
pub mod run;
pub mod vmm;

pub use grammar::{KsysCommand, parse};
