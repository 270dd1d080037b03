//! What every controller operation shares, and nothing more: the local HSDB member, timing,
//! whether this controller is the active one, and the gateways to the HMCs, the SAN and the
//! nodes ([`crate::controller::gateway`]). Every remote call goes through a gateway, with a
//! deadline and a visible strategy.
use crate::controller::gateway::{HmcGateway, Reach, SanGateway};
use crate::error::{Result, VmrmError};
use crate::hsdb::LocalHsdb;
use crate::profile::Timing;
use crate::transport::ChannelPool;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct ControllerCore {
    pub hsdb: LocalHsdb,
    pub pool: ChannelPool,
    pub timing: Timing,
    pub hmc: HmcGateway,
    pub san: SanGateway,
    pub reach: Reach,
    active: Activity,
}

/// When this controller became active, per Raft term. Anything locked or planned before that
/// moment (or by another controller) belongs to an operation this one is not running: an
/// orphan to take over. Noted by whichever notices the leadership first — an admin call or the
/// supervisor — so an operation an admin starts is never mistaken for an orphan.
#[derive(Clone, Default)]
struct Activity(Arc<Mutex<Option<(u64, i64)>>>);

impl Activity {
    fn since(&self, term: u64) -> i64 {
        let mut noted = self.0.lock().expect("activity lock");
        match *noted {
            Some((t, since)) if t == term => since,
            _ => {
                let now = crate::now_ms();
                *noted = Some((term, now));
                now
            }
        }
    }
}

impl ControllerCore {
    pub fn new(hsdb: LocalHsdb, pool: ChannelPool, timing: Timing) -> Self {
        let hmc = HmcGateway::new(hsdb.clone(), pool.clone(), timing.rpc_deadline, timing.job_poll);
        let san = SanGateway::new(pool.clone(), timing.rpc_deadline);
        let reach = Reach::new(pool.clone(), timing.rpc_deadline);
        Self { hsdb, pool, timing, hmc, san, reach, active: Activity::default() }
    }

    /// This controller answering queries from its own copy of the HSDB (follower reads).
    pub fn follower_reads(&self) -> Self {
        let hsdb = self.hsdb.follower_reads();
        Self { hmc: self.hmc.with_hsdb(hsdb.clone()), hsdb, ..self.clone() }
    }

    /// Refuses to act unless this controller is on the DBN.
    pub fn ensure_active(&self) -> Result<()> {
        self.active_since()
            .map(|_| ())
            .ok_or_else(|| VmrmError::NotLeader { leader: self.hsdb.node().leader_endpoint() })
    }

    /// When this controller became active (ms since the Unix epoch); `None` while standby.
    pub fn active_since(&self) -> Option<i64> {
        self.hsdb.node().leader_term().map(|term| self.active.since(term))
    }
}
