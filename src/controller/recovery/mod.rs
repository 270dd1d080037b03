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

use crate::controller::gateway::{HmcGateway, SanGateway};
use crate::controller::monjv::Monjvs;
use crate::controller::records::Records;
use crate::hsdb::LocalHsdb;

/// The recovery room: what a fenced restart needs, and nothing more.
#[derive(Clone)]
pub struct Recovery {
    hsdb: LocalHsdb,
    hmc: HmcGateway,
    san: SanGateway,
    records: Records,
    monjvs: Monjvs,
}

impl Recovery {
    pub fn new(hsdb: LocalHsdb, hmc: HmcGateway, san: SanGateway, records: Records, monjvs: Monjvs) -> Self {
        Self { hsdb, hmc, san, records, monjvs }
    }
}
