//! The controller's way to the HMCs. A host is managed by one or more HMCs; every call to "the
//! host's HMC" goes through [`HmcGateway::first_answer`]: the host's HMCs in their configured
//! order, each call under the RPC deadline, the first real answer wins. What counts as "try
//! the next one" is the caller's visible choice ([`Failover`]): reading an inventory may ask
//! anyone, but a job that ran and failed must not run again on another HMC.
use crate::domain::{HmcRecord, HostRecord};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::pb::vocabulary::HMC_METADATA;
use crate::pb::{self, hmc_client::HmcClient, submit_job_request::Job};
use crate::transport::{ChannelPool, deadline};
use std::future::Future;
use std::time::Duration;
use tonic::transport::Channel;

/// When a call passes on to the host's next HMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// Only when the HMC could not be reached (the call did not run there).
    Unreachable,
    /// On any error (reads: another HMC may know better).
    AnyError,
}

#[derive(Clone)]
pub struct HmcGateway {
    hsdb: LocalHsdb,
    pool: ChannelPool,
    rpc_deadline: Duration,
    job_poll: Duration,
}

impl HmcGateway {
    pub fn new(hsdb: LocalHsdb, pool: ChannelPool, rpc_deadline: Duration, job_poll: Duration) -> Self {
        Self { hsdb, pool, rpc_deadline, job_poll }
    }

    /// This gateway reading the HMC records from another view of the HSDB.
    pub fn with_hsdb(&self, hsdb: LocalHsdb) -> Self {
        Self { hsdb, ..self.clone() }
    }

    /// A request to `hmc` under the RPC deadline, naming it for a node that serves several.
    fn request<T>(&self, hmc: &HmcRecord, msg: T) -> tonic::Request<T> {
        let mut req = deadline(msg, self.rpc_deadline);
        if let Ok(name) = hmc.name.parse() {
            req.metadata_mut().insert(HMC_METADATA, name);
        }
        req
    }

    fn client(&self, hmc: &HmcRecord) -> Result<HmcClient<Channel>> {
        Ok(HmcClient::new(self.pool.get(&hmc.ip)?))
    }

    /// The host's HMCs, in their configured order.
    async fn hmcs_of(&self, host: &HostRecord) -> Result<Vec<HmcRecord>> {
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

    /// The call strategy: `call` on each of the host's HMCs in order until one answers with
    /// `Some`; `None` (this HMC does not know) and the errors `failover` names pass to the next.
    pub async fn first_answer<T, F, Fut>(&self, host: &HostRecord, failover: Failover, mut call: F) -> Result<T>
    where
        F: FnMut(HmcRecord) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let mut last = None;
        for hmc in self.hmcs_of(host).await? {
            match call(hmc).await {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => {}
                Err(e @ VmrmError::Unavailable(_)) => last = Some(e),
                Err(e) if failover == Failover::AnyError => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| VmrmError::unavailable(format!("no HMC reports host {}", host.name))))
    }

    /// Everything one HMC reports (all the hosts it manages, or only `host` when named).
    pub async fn inventory(&self, hmc: &HmcRecord, host: &str) -> Result<pb::InventoryReply> {
        let req = self.request(hmc, pb::InventoryRequest { host: host.to_string() });
        Ok(self.client(hmc)?.inventory(req).await?.into_inner())
    }

    /// The host as its HMCs see it now; the first HMC that reports it wins.
    pub async fn host_inventory(&self, host: &HostRecord) -> Result<pb::HostInventory> {
        self.first_answer(host, Failover::AnyError, |hmc| async move {
            let reply = self.inventory(&hmc, &host.name).await?;
            Ok(reply.hosts.into_iter().find(|h| h.name == host.name))
        })
        .await
    }

    /// Submits a job through the host's HMCs (the next one when one is unreachable) and polls
    /// it until it completes. A job that completes with an error is not run elsewhere.
    pub async fn run_job(&self, host: &HostRecord, job: Job) -> Result<()> {
        self.first_answer(host, Failover::Unreachable, |hmc| {
            let job = job.clone();
            async move { self.run_job_on(&hmc, job).await.map(Some) }
        })
        .await
    }

    /// Submits a job without waiting for it, through the first of the host's HMCs that
    /// answers; the HMC and the job's id, to follow it.
    pub async fn submit_job(&self, host: &HostRecord, job: Job) -> Result<(HmcRecord, u64)> {
        self.first_answer(host, Failover::Unreachable, |hmc| {
            let job = job.clone();
            async move { self.submit_on(&hmc, job).await.map(|id| Some((hmc, id))) }
        })
        .await
    }

    async fn submit_on(&self, hmc: &HmcRecord, job: Job) -> Result<u64> {
        let req = self.request(hmc, pb::SubmitJobRequest { job: Some(job) });
        Ok(self.client(hmc)?.submit_job(req).await?.into_inner().job_id)
    }

    /// A job's status as its HMC reports it now.
    pub async fn job_status(&self, hmc: &HmcRecord, job_id: u64) -> Result<pb::JobStatus> {
        Ok(self.client(hmc)?.get_job(self.request(hmc, pb::GetJobRequest { job_id })).await?.into_inner())
    }

    /// Asks the HMC to cancel a running job.
    pub async fn cancel_job(&self, hmc: &HmcRecord, job_id: u64) -> Result<()> {
        self.client(hmc)?.cancel_job(self.request(hmc, pb::GetJobRequest { job_id })).await?;
        Ok(())
    }

    async fn run_job_on(&self, hmc: &HmcRecord, job: Job) -> Result<()> {
        let job_id = self.submit_on(hmc, job).await?;
        let give_up = tokio::time::Instant::now() + self.rpc_deadline * 4;
        loop {
            tokio::time::sleep(self.job_poll).await;
            let status = self.job_status(hmc, job_id).await?;
            match status.state() {
                pb::JobState::CompletedOk => return Ok(()),
                pb::JobState::Running | pb::JobState::NotStarted if tokio::time::Instant::now() < give_up => continue,
                pb::JobState::Running | pb::JobState::NotStarted => {
                    return Err(VmrmError::unavailable(format!(
                        "HMC {} job {job_id} did not complete in time",
                        hmc.name
                    )));
                }
                _ => {
                    return Err(VmrmError::precondition(format!(
                        "Job execution on HMC {} failed with status <{}>. Message: <{}>",
                        hmc.name,
                        status.state().as_str_name(),
                        status.message
                    )));
                }
            }
        }
    }
}
