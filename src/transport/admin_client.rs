//! The admin client that finds the active controller by itself: it is given every controller
//! endpoint, follows the `vmrm-leader` hint of a standby, moves on from a dead endpoint, and
//! keeps trying for a while during an election — asking each endpoint for a health check before
//! the call, so a paused or unreachable controller costs a short probe, not a call's deadline.
//! `ksysmgr` and the tests use it.
use super::channel::ChannelPool;
use crate::error::{LEADER_METADATA, Result, VmrmError, did_not_run, unanswered};
use crate::pb::{self, admin_client::AdminClient as AdminGrpc};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Response, Status};

/// How long the client keeps looking for an active controller.
pub const FIND_LEADER_FOR: Duration = Duration::from_secs(8);
/// While looking for the active controller, the wait before the endpoints are tried again.
const RETRY_EVERY: Duration = Duration::from_millis(50);
/// How long an endpoint has to answer a health check before a call goes elsewhere: a paused
/// controller, or one behind a connection that hangs, would otherwise hold the call until its
/// deadline (seconds), and a call that reached it may have run, so it could not be sent
/// anywhere else.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// An endpoint that did not answer its health check is passed over for this long while
/// another endpoint is left to try: a paused controller costs one probe, not one per round.
const QUIET_FOR: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct AdminClient {
    endpoints: Vec<String>,
    current: usize,
    /// Endpoints that did not answer a health check, and until when they are passed over.
    quiet: std::collections::BTreeMap<usize, tokio::time::Instant>,
    pool: ChannelPool,
    /// Deadline of one call (long for discovery and restarts).
    pub call_timeout: Duration,
}

impl AdminClient {
    pub fn new(endpoints: Vec<String>, security: super::Security) -> Result<Self> {
        let endpoints: Vec<String> =
            endpoints.into_iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
        if endpoints.is_empty() {
            return Err(VmrmError::invalid("no controller endpoint given"));
        }
        for e in &endpoints {
            super::channel::lazy_channel(e, Duration::from_secs(1), &security)?;
        }
        Ok(Self {
            endpoints,
            current: 0,
            quiet: Default::default(),
            pool: ChannelPool::new(Duration::from_secs(1), security),
            call_timeout: Duration::from_secs(120),
        })
    }

    /// The endpoint that answered last.
    pub fn current(&self) -> &str {
        &self.endpoints[self.current]
    }

    /// Calls the active controller, wherever it is.
    pub async fn call<T, F, Fut>(&mut self, f: F) -> Result<T>
    where
        F: Fn(AdminGrpc<Channel>, Duration) -> Fut,
        Fut: Future<Output = std::result::Result<Response<T>, Status>>,
    {
        let give_up = tokio::time::Instant::now() + FIND_LEADER_FOR;
        let mut last = String::new();
        loop {
            for _ in 0..self.endpoints.len() {
                let endpoint = self.endpoints[self.current].clone();
                if self.passed_over(self.current) {
                    self.current = (self.current + 1) % self.endpoints.len();
                    continue;
                }
                let hint = match self.attempt(&endpoint, &f).await {
                    Attempt::Answer(answer) => return answer,
                    Attempt::Elsewhere { why, hint, silent } => {
                        if silent {
                            self.quiet.insert(self.current, tokio::time::Instant::now() + QUIET_FOR);
                        }
                        last = format!("{endpoint}: {why}");
                        hint.filter(|h| *h != endpoint)
                    }
                };
                match hint.as_ref().and_then(|h| self.endpoints.iter().position(|e| e == h)) {
                    Some(i) => self.current = i,
                    None => {
                        self.current = (self.current + 1) % self.endpoints.len();
                        // An address this client was not given (a container's name seen from
                        // the host may not resolve): tried once, then the rotation goes on.
                        if let Some(hint) = hint
                            && let Attempt::Answer(answer) = self.attempt(&hint, &f).await
                        {
                            return answer;
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(VmrmError::unavailable(format!(
                    "cannot reach an active controller at {} (last answer: {last})",
                    self.endpoints.join(", ")
                )));
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Whether endpoint `i` stays quiet this round: it did not answer a health check lately,
    /// and some other endpoint did not fail that way.
    fn passed_over(&self, i: usize) -> bool {
        let now = tokio::time::Instant::now();
        let quiet = |j: &usize| self.quiet.get(j).is_some_and(|until| *until > now);
        quiet(&i) && !(0..self.endpoints.len()).all(|j| quiet(&j))
    }

    /// One call to `endpoint`: its answer, or that the call did not run there (a standby,
    /// nothing reached, or no answer to a health check within [`PROBE_TIMEOUT`]), with the
    /// active controller it named.
    async fn attempt<T, F, Fut>(&self, endpoint: &str, f: &F) -> Attempt<T>
    where
        F: Fn(AdminGrpc<Channel>, Duration) -> Fut,
        Fut: Future<Output = std::result::Result<Response<T>, Status>>,
    {
        let channel = match self.pool.get(endpoint) {
            Ok(c) => c,
            Err(e) => return Attempt::Elsewhere { why: e.to_string(), hint: None, silent: false },
        };
        let check = super::deadline(tonic_health::pb::HealthCheckRequest::default(), PROBE_TIMEOUT);
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let answer = super::within(PROBE_TIMEOUT, health.check(check)).await;
        // Any answer, even "unknown service", shows the process runs.
        if let Err(status) = answer
            && unanswered(&status)
        {
            let why = format!("no answer to a health check ({})", status.message());
            return Attempt::Elsewhere { why, hint: None, silent: true };
        }
        match f(AdminGrpc::new(channel), self.call_timeout).await {
            Ok(resp) => Attempt::Answer(Ok(resp.into_inner())),
            Err(status) if did_not_run(&status) => {
                Attempt::Elsewhere { why: status.message().to_string(), hint: leader_hint(&status), silent: false }
            }
            Err(status) => Attempt::Answer(Err(status.into())),
        }
    }
}

enum Attempt<T> {
    Answer(Result<T>),
    /// The call did not run there; `silent`: not even the health check was answered.
    Elsewhere {
        why: String,
        hint: Option<String>,
        silent: bool,
    },
}

fn leader_hint(status: &Status) -> Option<String> {
    status.metadata().get(LEADER_METADATA)?.to_str().ok().map(str::to_owned)
}

/// The longest a live migration (or a host's evacuation) may stream.
pub const MIGRATE_FOR: Duration = Duration::from_secs(3600);

impl AdminClient {
    /// Starts a live migration (or an evacuation); its replies stream until it ends.
    pub async fn migrate(&mut self, msg: pb::MigrateRequest) -> Result<tonic::Streaming<pb::MigrateReply>> {
        self.call(|mut c, _| {
            let req = request(msg.clone(), MIGRATE_FOR);
            async move { c.migrate(req).await }
        })
        .await
    }

    /// Runs a live migration to its end: every reply, or the error that ended it.
    pub async fn migrate_all(&mut self, msg: pb::MigrateRequest) -> Result<Vec<pb::MigrateReply>> {
        let mut stream = self.migrate(msg).await?;
        let mut replies = Vec::new();
        while let Some(reply) = stream.message().await? {
            replies.push(reply);
        }
        Ok(replies)
    }
}

impl AdminClient {
    /// The events as they are appended (see `WatchEvents`), for as long as the caller reads.
    pub async fn watch_events(&mut self, msg: pb::EventWatch) -> Result<tonic::Streaming<pb::EventView>> {
        self.call(|mut c, _| {
            let req = request(msg.clone(), WATCH_FOR);
            async move { c.watch_events(req).await }
        })
        .await
    }

    /// The live status, and with `monitor` the operations' lines after it.
    pub async fn watch_status(&mut self, msg: pb::StatusWatch) -> Result<tonic::Streaming<pb::Step>> {
        self.call(|mut c, _| {
            let req = request(msg, WATCH_FOR);
            async move { c.watch_status(req).await }
        })
        .await
    }
}

impl AdminClient {
    /// Follows the event log for as long as the caller reads: when a stream is lost (its
    /// controller died or stopped being the active one), it watches again at the active
    /// controller after the last event it gave — nothing lost, nothing twice. It ends with the
    /// first error that is not a lost stream.
    pub fn follow_events(&mut self, watch: pb::EventWatch) -> impl futures::Stream<Item = Result<pb::EventView>> + '_ {
        let state = (self, watch, None::<tonic::Streaming<pb::EventView>>, false);
        futures::stream::unfold(state, |(client, mut watch, mut stream, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let current = match stream.as_mut() {
                    Some(s) => s,
                    None => match client.watch_events(watch.clone()).await {
                        Ok(s) => stream.insert(s),
                        Err(e) => return Some((Err(e), (client, watch, None, true))),
                    },
                };
                match current.message().await {
                    Ok(Some(event)) => {
                        watch.after = Some(event.sequence);
                        return Some((Ok(event), (client, watch, stream, false)));
                    }
                    Ok(None) => return None,
                    Err(status) if unanswered(&status) => stream = None,
                    Err(status) => return Some((Err(status.into()), (client, watch, None, true))),
                }
            }
        })
    }
}

/// The longest an event or status stream is followed in one call (a day; the CLI calls again).
pub const WATCH_FOR: Duration = Duration::from_secs(86_400);

impl AdminClient {
    /// Waits until a byte range of a MONJV changes (the call's deadline is the watch's).
    pub async fn watch_monjv(&mut self, msg: pb::MonjvWatch) -> Result<pb::MonjvView> {
        let wait = match msg.timeout_ms {
            0 => MIGRATE_FOR,
            ms => Duration::from_millis(ms.into()) + Duration::from_secs(5),
        };
        self.call(|mut c, _| {
            let req = request(msg.clone(), wait);
            async move { c.watch_monjv(req).await }
        })
        .await
    }
}

/// Builds a request with a deadline (for use inside [`AdminClient::call`] closures).
pub fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    super::channel::deadline(msg, timeout)
}

/// One typed method per admin RPC, each following the active controller.
macro_rules! admin_rpcs {
    ($($method:ident($req:ty) -> $resp:ty;)*) => {
        impl AdminClient {
            $(
                pub async fn $method(&mut self, msg: $req) -> Result<$resp> {
                    self.call(|mut c, d| {
                        let req = request(msg.clone(), d);
                        async move { c.$method(req).await }
                    })
                    .await
                }
            )*
        }
    };
}

admin_rpcs! {
    add_cluster(pb::AddClusterRequest) -> pb::CommandReply;
    add_hmc(pb::AddHmcRequest) -> pb::CommandReply;
    add_host(pb::AddHostRequest) -> pb::CommandReply;
    add_host_group(pb::AddHostGroupRequest) -> pb::CommandReply;
    discover(pb::DiscoverRequest) -> pb::CommandReply;
    verify(pb::VerifyRequest) -> pb::CommandReply;
    restart_vm(pb::RestartVmRequest) -> pb::RestartVmReply;
    query_cluster(pb::QueryRequest) -> pb::ClusterList;
    query_hmc(pb::QueryRequest) -> pb::HmcList;
    query_host(pb::QueryRequest) -> pb::HostList;
    query_host_group(pb::QueryRequest) -> pb::HostGroupList;
    query_vios(pb::QueryRequest) -> pb::ViosList;
    query_vm(pb::QueryRequest) -> pb::VmList;
    query_event(pb::EventQuery) -> pb::EventList;
    query_audit(pb::EventQuery) -> pb::AuditList;
    query_app(pb::QueryRequest) -> pb::AppList;
    add_hsdb_node(pb::AddHsdbNodeRequest) -> pb::CommandReply;
    modify_hsdb_node(pb::ModifyHsdbNodeRequest) -> pb::CommandReply;
    remove_hsdb_node(pb::RemoveHsdbNodeRequest) -> pb::CommandReply;
    query_hsdb(pb::QueryRequest) -> pb::HsdbView;
    modify(pb::ModifyRequest) -> pb::CommandReply;
    query_system(pb::QueryRequest) -> pb::SystemView;
    manage(pb::ManageRequest) -> pb::CommandReply;
    change_affinity(pb::AffinityRequest) -> pb::CommandReply;
    query_affinity(pb::AffinityQuery) -> pb::AffinityList;
    restore(pb::RestoreRequest) -> pb::CommandReply;
    cleanup(pb::CleanupRequest) -> pb::CommandReply;
    change_monjv(pb::MonjvChange) -> pb::CommandReply;
    query_monjv(pb::MonjvQuery) -> pb::MonjvList;
    change_su_cluster(pb::SuClusterChange) -> pb::CommandReply;
    query_su_cluster(pb::QueryRequest) -> pb::SuClusterList;
    recover_vm_definition(pb::RecoverVmDefinitionRequest) -> pb::CommandReply;
    add_notify(pb::NotifyRequest) -> pb::CommandReply;
    delete_notify(pb::NotifyRequest) -> pb::CommandReply;
    query_notify(pb::QueryRequest) -> pb::NotifyList;
    ack_event(pb::AckRequest) -> pb::CommandReply;
    add_snapshot(pb::SnapshotRequest) -> pb::SnapshotReply;
    query_snapshot(pb::QueryRequest) -> pb::SnapshotList;
    restore_snapshot(pb::RestoreSnapshotRequest) -> pb::CommandReply;
    remove_cluster(pb::RemoveClusterRequest) -> pb::CommandReply;
    add_site(pb::AddSiteRequest) -> pb::CommandReply;
    add_storage_agent(pb::AddStorageAgentRequest) -> pb::CommandReply;
    pair_host(pb::PairHostRequest) -> pb::CommandReply;
    query_site(pb::QueryRequest) -> pb::SiteList;
    discover_site(pb::DiscoverSiteRequest) -> pb::CommandReply;
    move_host_group(pb::MoveRequest) -> pb::CommandReply;
    change_dr_identity(pb::DrIdentityChange) -> pb::CommandReply;
    add_ffdc(pb::AddFfdcRequest) -> pb::FfdcIncidentView;
    query_ffdc(pb::FfdcQuery) -> pb::FfdcList;
    modify_ffdc(pb::FfdcSettingsChange) -> pb::CommandReply;
    query_trace(pb::TraceRequest) -> pb::TraceReply;
}

impl AdminClient {
    /// Incident `id`'s archive from the active controller: its file name, bytes and SHA-256.
    pub async fn snap_ffdc(&mut self, id: &str) -> Result<(String, Vec<u8>, String)> {
        let msg = pb::FfdcSnapRequest { id: id.to_string() };
        let stream = self
            .call(|mut c, d| {
                let req = request(msg.clone(), d);
                async move { c.snap_ffdc(req).await }
            })
            .await?;
        archive_of(stream).await
    }

    /// The `Ffdc` service of the node at `endpoint`, reached with this client's credentials.
    pub fn ffdc_at(&self, endpoint: &str) -> Result<crate::pb::ffdc_client::FfdcClient<Channel>> {
        Ok(crate::pb::ffdc_client::FfdcClient::new(self.pool.get(endpoint)?))
    }
}

/// An archive's streamed parts put together: its file name, bytes and SHA-256, checked.
pub async fn archive_of(mut stream: tonic::Streaming<pb::FfdcArchivePart>) -> Result<(String, Vec<u8>, String)> {
    let (mut name, mut bytes, mut sha) = (String::new(), Vec::new(), String::new());
    while let Some(part) = stream.message().await? {
        if !part.name.is_empty() {
            name = part.name;
        }
        if !part.sha256.is_empty() {
            sha = part.sha256;
        }
        bytes.extend(part.data);
    }
    let got = crate::ffdc::store::sha256_hex(&bytes);
    match got == sha {
        true => Ok((name, bytes, sha)),
        false => Err(VmrmError::internal(format!("the archive arrived damaged: its SHA-256 is {got}, not {sha}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_endpoint_is_passed_over_while_another_is_left() {
        let endpoints = vec!["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()];
        let mut client = AdminClient::new(endpoints, super::super::Security::Plaintext).unwrap();
        let later = tokio::time::Instant::now() + QUIET_FOR;
        client.quiet.insert(0, later);
        assert!(client.passed_over(0));
        assert!(!client.passed_over(1));
        client.quiet.insert(1, later);
        assert!(!client.passed_over(0), "with every endpoint silent, each is tried again");
        client.quiet.insert(1, tokio::time::Instant::now());
        assert!(client.passed_over(0) && !client.passed_over(1), "a quiet spell ends");
    }
}
