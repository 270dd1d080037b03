//! Live partition mobility: one VM's migration ([`lpm`]: `ksysmgr lpm`, gRPC `Migrate`), its
//! pre-check facts ([`precheck`]), a host evacuated and brought home ([`evacuation`]),
//! migrations left by a failed controller taken over ([`takeover`]) and SU clusters with the
//! recovery of a VM definition ([`su_cluster`]), one outbound migration per host even for
//! requests at the same moment ([`outbound`]).
pub mod evacuation;
pub mod lpm;
pub mod outbound;
pub mod precheck;
pub mod su_cluster;
pub mod takeover;

use crate::controller::gateway::HmcGateway;
use crate::controller::monjv::Monjvs;
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::hsdb::LocalHsdb;
use crate::profile::Timing;
use outbound::OutboundClaims;

/// The migration room: HMC jobs for the migrations, and recovery for what falls back to a restart.
#[derive(Clone)]
pub struct Migration {
    hsdb: LocalHsdb,
    timing: Timing,
    hmc: HmcGateway,
    records: Records,
    recovery: Recovery,
    monjvs: Monjvs,
    outbound: OutboundClaims,
}

impl Migration {
    pub fn new(
        hsdb: LocalHsdb,
        timing: Timing,
        hmc: HmcGateway,
        records: Records,
        recovery: Recovery,
        monjvs: Monjvs,
    ) -> Self {
        Self { hsdb, timing, hmc, records, recovery, monjvs, outbound: OutboundClaims::default() }
    }
}
