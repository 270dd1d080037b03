//! A hardware management console. It knows the hosts it manages (their server units), answers
//! inventory live from them, and runs LPAR operations as asynchronous jobs, as the seed's HMC
//! REST API does: submit → job id → poll until `COMPLETED_OK` or `COMPLETED_WITH_ERROR`.
//!
//! ```text
//! NOT_STARTED ──▶ RUNNING ──▶ COMPLETED_OK
//!                        └──▶ COMPLETED_WITH_ERROR (return code, message)
//! ```
//! A migration job (live partition mobility) runs on the source host's server unit, which
//! streams its progress; the job keeps the latest progress and every console line, and can be
//! cancelled while it runs (the migration rolls back).
use crate::config::HmcConfig;
use crate::error::{Result, VmrmError};
use crate::pb::vocabulary::HMC_METADATA;
use crate::pb::{self, hmc_server::Hmc as HmcRpc, server_unit_client::ServerUnitClient, submit_job_request::Job};
use crate::profile::Timing;
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap};
use tonic::{Request, Response, Status};

/// How many finished jobs an HMC remembers for polling.
const JOBS_KEPT: usize = 1024;

pub struct HmcActor {
    cfg: HmcConfig,
    timing: Timing,
    pool: ChannelPool,
    /// Last known inventory per host, with the endpoint of its server unit.
    hosts: BTreeMap<String, pb::HostInventory>,
    jobs: HashMap<u64, pb::JobStatus>,
    next_job: u64,
    /// Running migration jobs: the source unit's endpoint and the LPAR, for a cancel.
    migrations: HashMap<u64, (String, String)>,
}

impl HmcActor {
    pub fn new(cfg: HmcConfig, timing: Timing, pool: ChannelPool) -> Self {
        Self {
            cfg,
            timing,
            pool,
            hosts: BTreeMap::new(),
            jobs: HashMap::new(),
            next_job: 1,
            migrations: HashMap::new(),
        }
    }
}

impl Actor for HmcActor {
    type Context = Context<Self>;
}

/// Asks every managed server unit for its inventory, in parallel; an unreachable one is
/// reported from the last known inventory with state `No connection`.
async fn fetch_all(
    endpoints: Vec<String>,
    pool: ChannelPool,
    timing: Timing,
) -> Vec<(String, Result<pb::HostInventory>)> {
    let calls = endpoints.into_iter().map(|ep| {
        let pool = pool.clone();
        async move {
            let result = async {
                // Half the caller's deadline: a managed system that does not answer is reported
                // "No connection" in time, instead of making the whole answer late.
                let req = deadline(pb::SuInventoryRequest {}, timing.rpc_deadline / 2);
                Ok(ServerUnitClient::new(pool.get(&ep)?).inventory(req).await?.into_inner())
            }
            .await;
            (ep, result)
        }
    });
    futures::future::join_all(calls).await
}

#[derive(Message)]
#[rtype(result = "Result<pb::InventoryReply>")]
pub struct Inventory {
    pub host: String,
}

impl Handler<Inventory> for HmcActor {
    type Result = ResponseActFuture<Self, Result<pb::InventoryReply>>;

    fn handle(&mut self, msg: Inventory, _: &mut Context<Self>) -> Self::Result {
        let fetch = fetch_all(self.cfg.managed_hosts.clone(), self.pool.clone(), self.timing);
        Box::pin(fetch.into_actor(self).map(move |results, act, _| {
            for (endpoint, result) in results {
                match result {
                    Ok(inv) => {
                        act.hosts.insert(inv.name.clone(), inv);
                    }
                    Err(_) => {
                        if let Some(inv) = act.hosts.values_mut().find(|h| h.endpoint == endpoint) {
                            inv.state = pb::HostState::NoConnection as i32;
                        }
                    }
                }
            }
            let hosts: Vec<_> =
                act.hosts.values().filter(|h| msg.host.is_empty() || h.name == msg.host).cloned().collect();
            if !msg.host.is_empty() && hosts.is_empty() {
                return Err(VmrmError::not_found(format!(
                    "HMC {} does not manage a host named {}",
                    act.cfg.name, msg.host
                )));
            }
            Ok(pb::InventoryReply { hmc: act.cfg.name.clone(), hosts })
        }))
    }
}

#[derive(Message)]
#[rtype(result = "Result<u64>")]
pub struct SubmitJob(pub Job);

impl SubmitJob {
    fn hosts(&self) -> Vec<&str> {
        job_hosts(&self.0)
    }
}

/// The hosts a job needs: where it runs, and a migration's target.
fn job_hosts(job: &Job) -> Vec<&str> {
    match job {
        Job::Activate(a) => vec![&a.host],
        Job::Shutdown(s) => vec![&s.host],
        Job::Remove(r) => vec![&r.host],
        Job::Migrate(m) => vec![&m.host, &m.target_host],
    }
}

fn job_status(job_id: u64, state: pb::JobState, return_code: i32, message: String) -> pb::JobStatus {
    pb::JobStatus { job_id, state: state as i32, return_code, message, ..Default::default() }
}

/// Runs one job against a server unit.
async fn run_job(job: Job, endpoint: String, pool: ChannelPool, timing: Timing) -> Result<pb::LparReply> {
    let mut su = ServerUnitClient::new(pool.get(&endpoint)?);
    let reply = match job {
        Job::Activate(a) => {
            let def = a.definition.ok_or_else(|| VmrmError::invalid("activate job without an LPAR definition"))?;
            su.activate(deadline(def, timing.rpc_deadline)).await?
        }
        Job::Shutdown(s) => {
            let lpar = pb::LparRef { name: s.lpar, immediate: s.immediate, fence: s.fence };
            su.shutdown(deadline(lpar, timing.rpc_deadline)).await?
        }
        Job::Remove(r) => {
            su.remove(deadline(pb::LparRef { name: r.lpar, immediate: true, fence: r.fence }, timing.rpc_deadline))
                .await?
        }
        Job::Migrate(_) => return Err(VmrmError::internal("a migration job runs as a migration")),
    };
    Ok(reply.into_inner())
}

/// Runs a migration on the source unit, reporting each progress to the HMC actor.
async fn run_migration(
    m: pb::MigrateLpar,
    source: String,
    target_endpoint: String,
    pool: ChannelPool,
    timing: Timing,
    report: Recipient<MigrationUpdate>,
    job_id: u64,
) -> Result<()> {
    let req = pb::MigrateOutRequest {
        lpar: m.lpar,
        target_host: m.target_host,
        target_endpoint,
        limits: m.limits,
        fence: m.fence,
        operation: m.operation,
    };
    let mut call = tonic::Request::new(req);
    call.set_timeout(timing.rpc_deadline.max(std::time::Duration::from_secs(3600)));
    let mut stream = ServerUnitClient::new(pool.get(&source)?).migrate_out(call).await?.into_inner();
    let mut last = None;
    let lost = |e: tonic::Status| {
        VmrmError::unavailable(format!(
            "the source host's server unit stopped reporting the migration: {}",
            e.message()
        ))
    };
    while let Some(progress) = stream.message().await.map_err(lost)? {
        report.do_send(MigrationUpdate { job_id, progress: progress.clone() });
        last = Some(progress);
    }
    match last {
        Some(p) if p.phase() == pb::MigrationPhase::Completed => Ok(()),
        Some(p) if !p.error.is_empty() => Err(VmrmError::precondition(p.error)),
        _ => Err(VmrmError::unavailable("the source unit ended the migration without an outcome")),
    }
}

/// One progress report of a running migration job.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MigrationUpdate {
    job_id: u64,
    progress: pb::MigrationProgress,
}

impl Handler<MigrationUpdate> for HmcActor {
    type Result = ();
    fn handle(&mut self, msg: MigrationUpdate, _: &mut Context<Self>) {
        if let Some(job) = self.jobs.get_mut(&msg.job_id) {
            job.console.extend(msg.progress.console.iter().cloned());
            job.migration = Some(msg.progress);
        }
    }
}

impl HmcActor {
    fn endpoint_of(&self, host: &str) -> Option<String> {
        self.hosts.get(host).map(|h| h.endpoint.clone())
    }

    /// Records a new running job and starts it against the host's server unit.
    fn start_job(&mut self, job: Job, ctx: &mut Context<Self>) -> Result<u64> {
        let missing =
            |host: &str| VmrmError::not_found(format!("HMC {} does not manage a host named {host}", self.cfg.name));
        let endpoint = job_hosts(&job)
            .into_iter()
            .map(|h| self.endpoint_of(h).ok_or_else(|| missing(h)))
            .collect::<Result<Vec<_>>>()?;
        let job_id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(job_id, job_status(job_id, pb::JobState::Running, 0, String::new()));
        if self.jobs.len() > JOBS_KEPT {
            let oldest = job_id.saturating_sub(JOBS_KEPT as u64);
            self.jobs.retain(|id, _| *id > oldest);
        }
        let (pool, timing) = (self.pool.clone(), self.timing);
        let work: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>>>> = match job {
            Job::Migrate(m) => {
                self.migrations.insert(job_id, (endpoint[0].clone(), m.lpar.clone()));
                let (source, target) = (endpoint[0].clone(), endpoint[1].clone());
                Box::pin(run_migration(m, source, target, pool, timing, ctx.address().recipient(), job_id))
            }
            other => {
                let source = endpoint[0].clone();
                Box::pin(async move { run_job(other, source, pool, timing).await.map(|_| ()) })
            }
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            act.migrations.remove(&job_id);
            let job =
                act.jobs.entry(job_id).or_insert_with(|| job_status(job_id, pb::JobState::Running, 0, String::new()));
            match result {
                Ok(()) => job.state = pb::JobState::CompletedOk as i32,
                Err(e) => {
                    job.state = pb::JobState::CompletedWithError as i32;
                    job.return_code = 1;
                    job.message = e.to_string();
                }
            }
        }));
        Ok(job_id)
    }
}

impl Handler<SubmitJob> for HmcActor {
    type Result = ResponseActFuture<Self, Result<u64>>;

    /// A host this HMC has not seen since it started is looked up on its server units first.
    fn handle(&mut self, job: SubmitJob, ctx: &mut Context<Self>) -> Self::Result {
        if job.hosts().iter().all(|h| self.hosts.contains_key(*h)) {
            return Box::pin(fut::ready(self.start_job(job.0, ctx)));
        }
        let refresh = self.handle(Inventory { host: String::new() }, ctx);
        Box::pin(refresh.map(move |found, act, ctx| {
            found?;
            act.start_job(job.0, ctx)
        }))
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::JobStatus>")]
pub struct GetJob(pub u64);

impl Handler<GetJob> for HmcActor {
    type Result = Result<pb::JobStatus>;
    fn handle(&mut self, GetJob(id): GetJob, _: &mut Context<Self>) -> Self::Result {
        self.jobs
            .get(&id)
            .cloned()
            .ok_or_else(|| VmrmError::not_found(format!("HMC {} has no job {id}", self.cfg.name)))
    }
}

/// Asks a running migration job to roll back.
#[derive(Message)]
#[rtype(result = "Result<pb::JobStatus>")]
pub struct CancelJob(pub u64);

impl Handler<CancelJob> for HmcActor {
    type Result = ResponseActFuture<Self, Result<pb::JobStatus>>;
    fn handle(&mut self, CancelJob(id): CancelJob, _: &mut Context<Self>) -> Self::Result {
        let Some((source, lpar)) = self.migrations.get(&id).cloned() else {
            let why = match self.jobs.get(&id) {
                Some(job) => format!("HMC job {id} is {}: nothing to cancel", job.state().as_str_name()),
                None => format!("HMC {} has no job {id}", self.cfg.name),
            };
            return Box::pin(fut::ready(Err(VmrmError::precondition(why))));
        };
        let (pool, timing) = (self.pool.clone(), self.timing);
        let cancel = async move {
            let req = deadline(pb::LparRef { name: lpar, immediate: false, fence: 0 }, timing.rpc_deadline);
            ServerUnitClient::new(pool.get(&source)?).cancel_migration(req).await?;
            Ok::<_, VmrmError>(())
        };
        Box::pin(cancel.into_actor(self).map(move |done, act, _| {
            done?;
            act.jobs.get(&id).cloned().ok_or_else(|| VmrmError::not_found(format!("no job {id}")))
        }))
    }
}

/// gRPC face of the HMCs of one node, by name (a node may host several HMCs).
pub struct HmcService {
    pub hmcs: BTreeMap<String, Addr<HmcActor>>,
}

impl HmcService {
    /// The HMC a call is for: the one named in the `vmrm-hmc` metadata, else the node's only one.
    fn pick<T>(&self, req: &Request<T>) -> Result<&Addr<HmcActor>, Status> {
        let named = req.metadata().get(HMC_METADATA).and_then(|v| v.to_str().ok());
        if let Some(hmc) = named.and_then(|n| self.hmcs.get(n)) {
            return Ok(hmc);
        }
        match self.hmcs.len() {
            1 => Ok(self.hmcs.values().next().expect("one HMC")),
            _ => Err(Status::not_found(format!(
                "this node serves the HMCs {}; name one in the `{HMC_METADATA}` metadata",
                self.hmcs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Refuses a job whose host, partition or definition is not one (checked before it is queued,
/// not when the server unit gets it).
fn check_job(job: &pb::submit_job_request::Job) -> crate::error::Result<()> {
    use crate::domain::names::{HostName, VmName};
    use pb::submit_job_request::Job;
    let (host, lpar) = match job {
        Job::Activate(a) => {
            let definition =
                a.definition.clone().ok_or_else(|| VmrmError::invalid("an activation needs a definition"))?;
            crate::domain::LparDefinition::try_from(definition)?;
            (&a.host, None)
        }
        Job::Shutdown(s) => (&s.host, Some(&s.lpar)),
        Job::Remove(r) => (&r.host, Some(&r.lpar)),
        Job::Migrate(m) => {
            HostName::parse(&m.target_host)?;
            (&m.host, Some(&m.lpar))
        }
    };
    HostName::parse(host)?;
    lpar.map(|l| VmName::parse(l)).transpose()?;
    Ok(())
}

#[tonic::async_trait]
impl HmcRpc for HmcService {
    async fn inventory(&self, req: Request<pb::InventoryRequest>) -> Result<Response<pb::InventoryReply>, Status> {
        let hmc = self.pick(&req)?.clone();
        let host = req.into_inner().host;
        Ok(Response::new(hmc.send(Inventory { host }).await.map_err(VmrmError::from)??))
    }

    async fn submit_job(&self, req: Request<pb::SubmitJobRequest>) -> Result<Response<pb::SubmitJobReply>, Status> {
        let hmc = self.pick(&req)?.clone();
        let job = req.into_inner().job.ok_or_else(|| Status::invalid_argument("a job request needs a job"))?;
        check_job(&job)?;
        let job_id = hmc.send(SubmitJob(job)).await.map_err(VmrmError::from)??;
        Ok(Response::new(pb::SubmitJobReply { job_id }))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::JobStatus>, Status> {
        let hmc = self.pick(&req)?.clone();
        let id = req.into_inner().job_id;
        Ok(Response::new(hmc.send(GetJob(id)).await.map_err(VmrmError::from)??))
    }

    async fn cancel_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::JobStatus>, Status> {
        let hmc = self.pick(&req)?.clone();
        let id = req.into_inner().job_id;
        Ok(Response::new(hmc.send(CancelJob(id)).await.map_err(VmrmError::from)??))
    }
}
