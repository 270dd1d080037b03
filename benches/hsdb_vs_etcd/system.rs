//! What the bench needs from a replicated store, so one driver runs both HSDB and etcd with
//! the same workload: how to start its members, and per member a put and a status call.
use crate::cluster::{Cluster, NodeSpec};
use anyhow::{Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Deadline of one status call.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);
/// Deadline of a TCP connect to a member (loopback: a live member answers at once).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Members of each cluster.
pub const MEMBERS: usize = 3;
/// Pause between two polls while waiting for a leader or a caught-up member.
const POLL: Duration = Duration::from_millis(50);

/// A member's view of the cluster, in the store's own ids.
pub struct Status {
    pub id: u64,
    /// The leader this member follows (0: none known). A restarted member may still name its
    /// old self here for a moment, hence [`agreed_leader`].
    pub leader: u64,
    /// The member says it is the leader now.
    pub leads: bool,
    /// The member's committed (etcd) or applied (HSDB) log index.
    pub index: u64,
}

/// The member that leads and that every member follows, if there is one.
fn agreed_leader(all: &[Option<Status>]) -> Option<usize> {
    all.iter().position(|candidate| {
        candidate.as_ref().is_some_and(|c| c.leads && all.iter().all(|s| s.as_ref().is_some_and(|s| s.leader == c.id)))
    })
}

/// A gRPC client for one member.
pub trait Member: Clone + Send + Sync + 'static {
    /// Writes the bench value under key number `key` (see [`key_name`]); `Ok` once acknowledged.
    fn put(&self, key: usize, timeout: Duration) -> impl Future<Output = Result<()>> + Send;
    fn status(&self, timeout: Duration) -> impl Future<Output = Result<Status>> + Send;
}

pub trait System {
    type Member: Member;
    /// Name in the output, e.g. `HSDB`.
    const NAME: &'static str;
    /// Every port the cluster listens on.
    fn ports(&self) -> Vec<u16>;
    /// The [`MEMBERS`] members, with their data dirs (and any config files) under `dir`.
    fn node_specs(&self, dir: &Path) -> Result<Vec<NodeSpec>>;
    /// A lazily connected client for member `i`.
    fn member(&self, i: usize) -> Result<Self::Member>;
    /// How the members are run (binary, flags), for the output.
    fn describe(&self) -> String;
}

/// The key written for key number `k`, the same for both stores.
pub fn key_name(k: usize) -> String {
    format!("bench-{k:06}")
}

/// A channel to `127.0.0.1:port` that connects on first use (and reconnects after a restart).
pub fn channel(port: u16) -> Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// The bench value of `size` bytes, the same for both stores.
pub fn value_text(size: usize) -> String {
    "v".repeat(size)
}

/// Runs one unary call with `timeout` as both its gRPC deadline and a client-side bound.
pub async fn call<T, R, F>(msg: T, timeout: Duration, send: impl FnOnce(tonic::Request<T>) -> F) -> Result<R>
where
    F: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let mut request = tonic::Request::new(msg);
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, send(request)).await {
        Ok(reply) => Ok(reply?.into_inner()),
        Err(_) => bail!("no answer within {timeout:?}"),
    }
}

/// Statuses of every member that answers.
async fn statuses<S: System>(sys: &S, cluster: &mut Cluster) -> Result<Vec<Option<Status>>> {
    let mut out = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        cluster.ensure_running(i)?;
        out.push(sys.member(i)?.status(STATUS_TIMEOUT).await.ok());
    }
    Ok(out)
}

/// Index of the leader, once every member agrees on it.
pub async fn wait_for_leader<S: System>(sys: &S, cluster: &mut Cluster, timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(leader) = agreed_leader(&statuses(sys, cluster).await?) {
            return Ok(leader);
        }
        if Instant::now() > deadline {
            bail!("{}: the members did not agree on a leader within {timeout:?}", S::NAME);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until member `i` follows the agreed leader and has everything the leader has.
pub async fn wait_caught_up<S: System>(sys: &S, cluster: &mut Cluster, i: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = statuses(sys, cluster).await?;
        if let (Some(leader), Some(me)) = (agreed_leader(&all), &all[i])
            && all[leader].as_ref().is_some_and(|l| me.index >= l.index)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{}: {} did not catch up with the leader within {timeout:?}", S::NAME, cluster.name(i));
        }
        tokio::time::sleep(POLL).await;
    }
}
