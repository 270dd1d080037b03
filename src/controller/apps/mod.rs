//! Applications inside the VMs as the controller sees them: the reports from the VM agents
//! (PUT/QUERY/GET/ACK through a VIOS) and what a critical application's FAILURE does to its VM
//! ([`report`]).
pub mod report;

use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::hsdb::LocalHsdb;
use crate::profile::Timing;
use crate::transport::ChannelPool;

/// The applications room: VIOS channels for the report exchange, recovery for escalation.
#[derive(Clone)]
pub struct Apps {
    hsdb: LocalHsdb,
    pool: ChannelPool,
    timing: Timing,
    records: Records,
    recovery: Recovery,
}

impl Apps {
    pub fn new(hsdb: LocalHsdb, pool: ChannelPool, timing: Timing, records: Records, recovery: Recovery) -> Self {
        Self { hsdb, pool, timing, records, recovery }
    }
}
