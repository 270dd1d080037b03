//! What every controller operation shares: the local HSDB member, channels, timing, and the
//! gateways to HMCs and the SAN. Every remote call has a deadline; calls to HMCs are
//! first-ok over the host's HMCs, in order, so losing one HMC changes nothing.
use crate::domain::{HmcRecord, HostRecord};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::pb::vocabulary::{HMC_METADATA, JOB_COMPLETED_OK, JOB_RUNNING};
use crate::pb::{self, hmc_client::HmcClient, submit_job_request::Job};
use crate::profile::Timing;
use crate::transport::{ChannelPool, deadline};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct ControllerCore {
    pub hsdb: LocalHsdb,
    pub pool: ChannelPool,
    pub timing: Timing,
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
        Self { hsdb, pool, timing, active: Activity::default() }
    }

    /// This controller answering queries from its own copy of the HSDB (follower reads).
    pub fn follower_reads(&self) -> Self {
        Self { hsdb: self.hsdb.follower_reads(), ..self.clone() }
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

    pub(in crate::controller) fn hmc_request<T>(&self, hmc: &HmcRecord, msg: T) -> tonic::Request<T> {
        let mut req = deadline(msg, self.timing.rpc_deadline);
        if let Ok(name) = hmc.name.parse() {
            req.metadata_mut().insert(HMC_METADATA, name);
        }
        req
    }

    pub fn hmc_client(&self, hmc: &HmcRecord) -> Result<HmcClient<Channel>> {
        Ok(HmcClient::new(self.pool.get(&hmc.ip)?))
    }

    /// Everything one HMC reports (all the hosts it manages).
    pub async fn hmc_inventory(&self, hmc: &HmcRecord, host: &str) -> Result<pb::InventoryReply> {
        let req = self.hmc_request(hmc, pb::InventoryRequest { host: host.to_string() });
        Ok(self.hmc_client(hmc)?.inventory(req).await?.into_inner())
    }

    pub(in crate::controller) async fn hmcs_of(&self, host: &HostRecord) -> Result<Vec<HmcRecord>> {
        let mut out = Vec::new();
        for name in &host.hmcs {
            if let Some((hmc, _)) = self.hsdb.get::<HmcRecord>(name).await? {
                out.push(hmc);
            }
        }
        if out.is_empty() {
            return Err(VmrmError::precondition(format!("host {} has no HMC in the configuration", host.name)));
        }
        Ok(out)
    }

    /// The host as its HMCs see it now; first HMC that answers wins.
    pub async fn host_inventory(&self, host: &HostRecord) -> Result<pb::HostInventory> {
        let mut last = None;
        for hmc in self.hmcs_of(host).await? {
            match self.hmc_inventory(&hmc, &host.name).await {
                Ok(reply) => {
                    if let Some(inv) = reply.hosts.into_iter().find(|h| h.name == host.name) {
                        return Ok(inv);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| VmrmError::unavailable(format!("no HMC reports host {}", host.name))))
    }

    /// Submits a job through the host's HMCs (next HMC when one is unreachable) and polls it
    /// until it completes. A job that completes with an error is not retried elsewhere.
    pub async fn run_job(&self, host: &HostRecord, job: Job) -> Result<()> {
        let mut last = VmrmError::unavailable(format!("no HMC of host {} answered", host.name));
        for hmc in self.hmcs_of(host).await? {
            match self.run_job_on(&hmc, job.clone()).await {
                Err(e @ VmrmError::Unavailable(_)) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// Submits a job without waiting for it, through the first of the host's HMCs that
    /// answers; the HMC and the job's id, to follow it.
    pub async fn submit_job(&self, host: &HostRecord, job: Job) -> Result<(HmcRecord, u64)> {
        let mut last = VmrmError::unavailable(format!("no HMC of host {} answered", host.name));
        for hmc in self.hmcs_of(host).await? {
            match self.submit_on(&hmc, job.clone()).await {
                Ok(id) => return Ok((hmc, id)),
                Err(e @ VmrmError::Unavailable(_)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn submit_on(&self, hmc: &HmcRecord, job: Job) -> Result<u64> {
        let mut client = self.hmc_client(hmc)?;
        let submitted = client.submit_job(self.hmc_request(hmc, pb::SubmitJobRequest { job: Some(job) })).await?;
        Ok(submitted.into_inner().job_id)
    }

    async fn run_job_on(&self, hmc: &HmcRecord, job: Job) -> Result<()> {
        let mut client = self.hmc_client(hmc)?;
        let job_id = self.submit_on(hmc, job).await?;
        let give_up = tokio::time::Instant::now() + self.timing.rpc_deadline * 4;
        loop {
            tokio::time::sleep(self.timing.job_poll).await;
            let status = client.get_job(self.hmc_request(hmc, pb::GetJobRequest { job_id })).await?.into_inner();
            match status.status.as_str() {
                JOB_COMPLETED_OK => return Ok(()),
                JOB_RUNNING if tokio::time::Instant::now() < give_up => continue,
                JOB_RUNNING => {
                    return Err(VmrmError::unavailable(format!(
                        "HMC {} job {job_id} did not complete in time",
                        hmc.name
                    )));
                }
                _ => {
                    return Err(VmrmError::precondition(format!(
                        "Job execution on HMC {} failed with status <{}>. Message: <{}>",
                        hmc.name, status.status, status.message
                    )));
                }
            }
        }
    }

    /// The fence: gives the disk's reservation to `host`, so every other host's writes fail.
    /// `fence` is the VM lock's epoch: the SAN refuses it once a newer operation preempted.
    pub async fn preempt_disk(&self, san: &str, disk: &str, host: &HostRecord, fence: u64) -> Result<()> {
        let holder = (disk, host.san_key, host.name.as_str());
        crate::transport::san::preempt(&self.pool, san, holder, fence, self.timing.rpc_deadline).await
    }

    /// IP reachability of a node, the FDE's ping: a TCP connection to its endpoint is accepted.
    pub async fn pingable(&self, endpoint: &str) -> bool {
        let connect = tokio::net::TcpStream::connect(endpoint);
        matches!(tokio::time::timeout(self.timing.rpc_deadline.min(Duration::from_secs(2)), connect).await, Ok(Ok(_)))
    }

    /// A direct check of one VIOS (the FDE's final sanity check): true if it answers.
    pub async fn vios_answers(&self, endpoint: &str) -> bool {
        let Ok(channel) = self.pool.get(endpoint) else {
            return false;
        };
        let req = deadline(pb::SanityRequest {}, self.timing.rpc_deadline.min(Duration::from_secs(2)));
        pb::vios_client::ViosClient::new(channel).sanity(req).await.is_ok()
    }
}
