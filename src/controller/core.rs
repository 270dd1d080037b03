//! The wiring: every room of the controller built once, each holding only what it needs, the
//! rooms below handed to those above (records and MONJVs → recovery → migration, config, apps),
//! and whether this controller is the active one. Nothing here operates; the admin API, the
//! supervisor and the FDEs reach the rooms through it.
use crate::controller::api::views::Views;
use crate::controller::apps::Apps;
use crate::controller::config::Config;
use crate::controller::dr::Dr;
use crate::controller::gateway::{HmcGateway, Reach, SanGateway};
use crate::controller::migration::Migration;
use crate::controller::monjv::Monjvs;
use crate::controller::notify::Notify;
use crate::controller::records::Records;
use crate::controller::recovery::Recovery;
use crate::error::{Result, VmrmError};
use crate::ffdc::FfdcModule;
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
    pub reach: Reach,
    pub records: Records,
    pub monjvs: Monjvs,
    pub recovery: Recovery,
    pub migration: Migration,
    pub config: Config,
    pub dr: Dr,
    pub apps: Apps,
    pub views: Views,
    pub notify: Notify,
    /// This controller node's FFDC module (seed 003): a cluster dump asked by hand starts here.
    pub ffdc: FfdcModule,
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
    pub fn new(hsdb: LocalHsdb, pool: ChannelPool, timing: Timing, ffdc: FfdcModule) -> Self {
        Self::wire(hsdb, pool, timing, Activity::default(), ffdc)
    }

    /// Every room, each given only what it needs; the rooms below are handed to those above.
    fn wire(hsdb: LocalHsdb, pool: ChannelPool, timing: Timing, active: Activity, ffdc: FfdcModule) -> Self {
        let hmc = HmcGateway::new(hsdb.clone(), pool.clone(), (timing.rpc_deadline, timing.job_poll), ffdc.clone());
        let san = SanGateway::new(pool.clone(), timing.rpc_deadline);
        let reach = Reach::new(pool.clone(), timing.rpc_deadline);
        let records = Records::new(hsdb.clone(), timing);
        let monjvs = Monjvs::new(hsdb.clone(), timing, hmc.clone(), records.clone());
        let recovery = Recovery::new(hsdb.clone(), hmc.clone(), san.clone(), records.clone(), monjvs.clone());
        let migration =
            Migration::new(hsdb.clone(), timing, hmc.clone(), records.clone(), recovery.clone(), monjvs.clone());
        let gateways = (hmc.clone(), san.clone());
        let config =
            Config::new(hsdb.clone(), timing, gateways, records.clone(), recovery.clone(), pool.security().clone());
        let dr = Dr::new(
            hsdb.clone(),
            timing,
            (hmc.clone(), san.clone()),
            records.clone(),
            recovery.clone(),
            config.clone(),
        );
        let apps = Apps::new(hsdb.clone(), pool.clone(), timing, records.clone(), recovery.clone());
        let views = Views::new(hsdb.clone(), timing, (hmc.clone(), san.clone()), records.clone());
        let notify = Notify::new(hsdb.clone(), records.clone());
        Self {
            hsdb,
            pool,
            timing,
            hmc,
            reach,
            records,
            monjvs,
            recovery,
            migration,
            config,
            dr,
            apps,
            views,
            notify,
            ffdc,
            active,
        }
    }

    /// This controller answering queries from its own copy of the HSDB (follower reads).
    pub fn follower_reads(&self) -> Self {
        Self::wire(self.hsdb.follower_reads(), self.pool.clone(), self.timing, self.active.clone(), self.ffdc.clone())
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
