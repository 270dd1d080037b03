//! Recovery: the relocation mapper's inputs ([`mapper_inputs`]: policies, free capacity),
//! recovery tasks recorded and run by priority ([`task`]; advisory mode), one VM's fenced
//! restart ([`restart_vm`]), unfinished tasks taken over by a controller that became active
//! ([`resume`]), the operator's restarts and restores ([`restart_ops`]), a restart on the same
//! host ([`reboot_vm`]) and stale definitions on a host that came back ([`cleanup`]).
pub mod cleanup;
pub mod mapper_inputs;
pub mod reboot_vm;
pub mod restart_ops;
pub mod restart_vm;
pub mod resume;
pub mod task;
