//! Disaster recovery across sites (seed 000 §2.4): the storage state synchronization that
//! replicates a host group's disks to the other site ([`storage_sync`]), the discovery and
//! verification of a whole site ([`site_discovery`]), and the administrator's move of a host
//! group to the other site, planned or unplanned ([`site_move`]), and the DR test that starts test
//! copies at the other site while production runs on ([`dr_test`]).
pub mod dr_test;
pub mod site_discovery;
pub mod site_move;
pub mod storage_sync;

use crate::controller::config::Config;
use crate::controller::gateway::{HmcGateway, SanGateway};
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::hsdb::LocalHsdb;
use crate::profile::Timing;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The DR room: configuration (sites, discovery), the SANs, and recovery's fenced restarts.
#[derive(Clone)]
pub struct Dr {
    hsdb: LocalHsdb,
    timing: Timing,
    hmc: HmcGateway,
    san: SanGateway,
    records: Records,
    recovery: Recovery,
    config: Config,
    /// The host groups this controller is moving now: a move the record shows under way that
    /// is not among them was left by a controller that failed, and may be run again.
    moving: Arc<Mutex<BTreeSet<String>>>,
}

impl Dr {
    pub fn new(
        hsdb: LocalHsdb,
        timing: Timing,
        (hmc, san): (HmcGateway, SanGateway),
        records: Records,
        recovery: Recovery,
        config: Config,
    ) -> Self {
        Self { hsdb, timing, hmc, san, records, recovery, config, moving: Arc::default() }
    }
}
