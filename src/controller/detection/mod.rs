//! Detection: the per-host-group FDE actor ([`fde`]: QuickQuery, QuickQuery, NeedsAttention
//! through one VIOS), its VM checks ([`vm_watch`]: evidence, HBoffsets, single-VM relocation) and
//! the detection settings per level ([`settings`]: `modify system|host_group|vm`, `query system`).
pub mod fde;
#[cfg(test)]
mod fde_tests;
pub mod settings;
pub mod vm_watch;
pub mod world;
