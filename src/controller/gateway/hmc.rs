//! The controller's way to the HMCs. A host is managed by one or more HMCs; every call to "the
//! host's HMC" goes through [`HmcGateway::first_answer`]: the host's HMCs in their configured
//! order, each call under the RPC deadline, the first real answer wins. What counts as "try
//! the next one" is the caller's visible choice ([`Failover`]): reading an inventory may ask
//! anyone, but a job goes to the next HMC only when it never reached one ([`HmcError`]): a job
//! that may have run, or ran and failed, must not run again elsewhere.
use crate::domain::FfdcTrigger;
use crate::domain::{HmcRecord, HostRecord};
use crate::error::HmcError;
use crate::ffdc::FfdcModule;
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::pb::vocabulary::HMC_METADATA;
use crate::pb::{self, hmc_client::HmcClient, submit_job_request::Job};
use crate::transport::{ChannelPool, deadline};
use std::future::Future;
use std::time::Duration;
use tonic::transport::Channel;

type Result<T, E = HmcError> = std::result::Result<T, E>;

/// When a call passes on to the host's next HMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// Only when the call never reached the HMC (it did not run there).
    Unreachable,
    /// On any error (reads: another HMC may know better).
    AnyError,
}

impl Failover {
    /// Whether a call that failed with `e` goes on to the host's next HMC.
    pub fn passes_on(self, e: &HmcError) -> bool {
        matches!(e, HmcError::NotReached { .. }) || self == Self::AnyError
    }
}

#[derive(Clone)]
pub struct HmcGateway {
    hsdb: LocalHsdb,
    pool: ChannelPool,
    rpc_deadline: Duration,
    job_poll: Duration,
    /// Told when an HMC cannot be reached (an RPC_FAILURE incident, coalesced per HMC).
    ffdc: FfdcModule,
}

impl HmcGateway {
    pub fn new(
        hsdb: LocalHsdb,
        pool: ChannelPool,
        (rpc_deadline, job_poll): (Duration, Duration),
        ffdc: FfdcModule,
    ) -> Self {
        Self { hsdb, pool, rpc_deadline, job_poll, ffdc }
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
        let channel =
            self.pool.get(&hmc.ip).map_err(|e| HmcError::NotReached { hmc: hmc.name.clone(), why: e.to_string() })?;
        Ok(HmcClient::new(channel))
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
            return Err(HmcError::NoneConfigured { host: host.name.clone() });
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
                Err(e) if failover.passes_on(&e) => {
                    if let HmcError::NotReached { hmc, why } = &e {
                        let detail = format!("the controller cannot reach HMC {hmc}: {why}");
                        self.ffdc.report(FfdcTrigger::RpcFailure, hmc, &detail);
                    }
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| HmcError::NotReported { host: host.name.clone() }))
    }

    /// Everything one HMC reports (all the hosts it manages, or only `host` when named).
    pub async fn inventory(&self, hmc: &HmcRecord, host: &str) -> Result<pb::InventoryReply> {
        let req = self.request(hmc, pb::InventoryRequest { host: host.to_string() });
        let reply = self.client(hmc)?.inventory(req).await;
        Ok(reply.map_err(|s| HmcError::of_call(&hmc.name, s))?.into_inner())
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
        let reply = self.client(hmc)?.submit_job(req).await;
        Ok(reply.map_err(|s| HmcError::of_call(&hmc.name, s))?.into_inner().job_id)
    }

    /// A job's status as its HMC reports it now.
    pub async fn job_status(&self, hmc: &HmcRecord, job_id: u64) -> Result<pb::JobStatus> {
        let reply = self.client(hmc)?.get_job(self.request(hmc, pb::GetJobRequest { job_id })).await;
        Ok(reply.map_err(|s| HmcError::of_call(&hmc.name, s))?.into_inner())
    }

    /// Asks the HMC to cancel a running job.
    pub async fn cancel_job(&self, hmc: &HmcRecord, job_id: u64) -> Result<()> {
        let reply = self.client(hmc)?.cancel_job(self.request(hmc, pb::GetJobRequest { job_id })).await;
        reply.map_err(|s| HmcError::of_call(&hmc.name, s))?;
        Ok(())
    }

    async fn run_job_on(&self, hmc: &HmcRecord, job: Job) -> Result<()> {
        let job_id = self.submit_on(hmc, job).await?;
        let give_up = tokio::time::Instant::now() + self.rpc_deadline * 4;
        loop {
            tokio::time::sleep(self.job_poll).await;
            // Submitted: whatever happens to the HMC now, the job may run, so it is never
            // passed on to another HMC.
            let status = self.job_status(hmc, job_id).await.map_err(|e| match e {
                HmcError::NotReached { hmc, why } => {
                    HmcError::NoAnswer { hmc, why: format!("job {job_id} was submitted, then: {why}") }
                }
                e => e,
            })?;
            match status.state() {
                pb::JobState::CompletedOk => return Ok(()),
                pb::JobState::Running | pb::JobState::NotStarted if tokio::time::Instant::now() < give_up => continue,
                pb::JobState::Running | pb::JobState::NotStarted => {
                    return Err(HmcError::JobTimedOut { hmc: hmc.name.clone(), job: job_id });
                }
                _ => {
                    return Err(HmcError::JobFailed {
                        hmc: hmc.name.clone(),
                        state: status.state().as_str_name().to_string(),
                        message: status.message,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_goes_to_the_next_hmc_only_when_it_never_reached_one() {
        let (hmc, why) = ("hmc-1".to_string(), "x".to_string());
        let not_reached = HmcError::NotReached { hmc: hmc.clone(), why: why.clone() };
        let no_answer = HmcError::NoAnswer { hmc: hmc.clone(), why: why.clone() };
        let failed = HmcError::JobFailed { hmc: hmc.clone(), state: "COMPLETED_WITH_ERROR".into(), message: why };
        let timed_out = HmcError::JobTimedOut { hmc, job: 7 };
        assert!(Failover::Unreachable.passes_on(&not_reached));
        for may_have_run in [&no_answer, &failed, &timed_out] {
            assert!(!Failover::Unreachable.passes_on(may_have_run), "{may_have_run}");
            assert!(Failover::AnyError.passes_on(may_have_run), "a read asks the next HMC");
        }
    }
}
