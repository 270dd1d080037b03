//! Configuration: the cluster, HMCs, hosts and host groups ([`cluster`]), discovery and
//! verification ([`discovery`]), policies (`modify … restart_policy|priority|blacklist_hosts …`,
//! `manage|unmanage`: [`policies`]), collocation, anticollocation and workgroups ([`affinity`]),
//! HSDB membership changes ([`hsdb_membership`]), configuration snapshots ([`snapshot`]), and
//! the discoveries the controller runs by itself ([`auto_discovery`]); a DR cluster's sites,
//! storage agents and host pairs ([`sites`]).
pub mod affinity;
pub mod auto_discovery;
pub mod cluster;
pub mod discovery;
pub mod hsdb_membership;
pub mod policies;
pub mod removal;
pub mod sites;
pub mod snapshot;

use crate::controller::gateway::{HmcGateway, SanGateway};
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::hsdb::LocalHsdb;
use crate::profile::Timing;
use crate::transport::Security;

/// The configuration room: records written after checks, discovery through the HMCs, and the
/// relocation mapper's verdict for `verify`.
#[derive(Clone)]
pub struct Config {
    hsdb: LocalHsdb,
    timing: Timing,
    hmc: HmcGateway,
    san: SanGateway,
    records: Records,
    recovery: Recovery,
    /// How this controller dials a would-be HSDB member it probes.
    security: Security,
}

impl Config {
    pub fn new(
        hsdb: LocalHsdb,
        timing: Timing,
        (hmc, san): (HmcGateway, SanGateway),
        records: Records,
        recovery: Recovery,
        security: Security,
    ) -> Self {
        Self { hsdb, timing, hmc, san, records, recovery, security }
    }
}
