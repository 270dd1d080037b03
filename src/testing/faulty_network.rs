//! Network faults between HSDB members, for in-process tests.
//!
//! [`FaultyNetwork`] wraps the real Raft transport of one member and consults a shared
//! [`NetworkFaults`] before sending each RPC and again before handing back its reply: a cut or
//! dropped link answers `Unreachable` (a lost reply means the peer *did* act on the request, as
//! on a real network), a delay holds the message. Tests partition, isolate, slow down and heal
//! members while clients run, then judge the history with [`crate::testing::lincheck`].
// openraft's own error types are large; they are returned as openraft defines them.
#![allow(clippy::result_large_err)]
use crate::hsdb::Member;
use crate::hsdb::election::{PreVote, PreVoter};
use crate::hsdb::types::TypeConfig;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type NodeId = u64;

#[derive(Debug, Default)]
struct FaultState {
    /// Directed links that deliver nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Chance, in percent, that any one message is lost.
    drop_percent: u32,
    /// Added to every message.
    delay: Duration,
}

/// The faults currently injected, shared by every member's transport.
#[derive(Debug, Clone, Default)]
pub struct NetworkFaults {
    state: Arc<Mutex<FaultState>>,
}

impl NetworkFaults {
    fn with<T>(&self, f: impl FnOnce(&mut FaultState) -> T) -> T {
        f(&mut self.state.lock().expect("fault state lock"))
    }

    /// Cuts every link between `a` and `b`, both ways.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        self.with(|s| {
            for &x in a {
                for &y in b {
                    s.cut.insert((x, y));
                    s.cut.insert((y, x));
                }
            }
        });
    }

    /// Cuts `node` off from all `members`.
    pub fn isolate(&self, node: NodeId, members: &[NodeId]) {
        let others: Vec<NodeId> = members.iter().copied().filter(|m| *m != node).collect();
        self.partition(&[node], &others);
    }

    /// Loses `percent` % of all messages.
    pub fn drop_messages(&self, percent: u32) {
        self.with(|s| s.drop_percent = percent.min(100));
    }

    /// Delays every message by `delay`.
    pub fn delay_messages(&self, delay: Duration) {
        self.with(|s| s.delay = delay);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.with(|s| *s = FaultState::default());
    }

    /// Whether a message from `from` to `to` gets through, and after how long.
    fn verdict(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        self.with(|s| {
            let lost = s.cut.contains(&(from, to)) || rand::rng().random_range(0..100) < s.drop_percent;
            (!lost).then_some(s.delay)
        })
    }
}

/// A member's Raft transport with faults injected.
#[derive(Clone)]
pub struct FaultyNetwork<N> {
    from: NodeId,
    inner: N,
    faults: NetworkFaults,
}

impl<N> FaultyNetwork<N> {
    pub fn new(from: NodeId, inner: N, faults: NetworkFaults) -> Self {
        Self { from, inner, faults }
    }
}

/// A pre-vote crosses the same links as the Raft messages.
impl<N: PreVoter> PreVoter for FaultyNetwork<N> {
    async fn pre_vote(&self, voter: NodeId, addr: String, req: PreVote) -> bool {
        let (there, back) = (self.faults.verdict(self.from, voter), self.faults.verdict(voter, self.from));
        let (Some(there), Some(back)) = (there, back) else { return false };
        tokio::time::sleep(there + back).await;
        self.inner.pre_vote(voter, addr, req).await
    }
}

impl<N: RaftNetworkFactory<TypeConfig>> RaftNetworkFactory<TypeConfig> for FaultyNetwork<N> {
    type Network = FaultyPeer<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        FaultyPeer {
            from: self.from,
            to: target,
            inner: self.inner.new_client(target, node).await,
            faults: self.faults.clone(),
        }
    }
}

pub struct FaultyPeer<P> {
    from: NodeId,
    to: NodeId,
    inner: P,
    faults: NetworkFaults,
}

impl<P> FaultyPeer<P> {
    /// Delivers one message leg (`from` → `to`) or fails it as unreachable.
    async fn leg<E: std::error::Error>(&self, from: NodeId, to: NodeId) -> Result<(), RPCError<NodeId, Member, E>> {
        match self.faults.verdict(from, to) {
            Some(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
            None => Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "injected fault: message {from} → {to} lost"
            ))))),
        }
    }
}

/// Sends a request through the faults, calls the real transport, and brings the reply back
/// through the faults.
macro_rules! faulty_call {
    ($self:ident, $call:expr) => {{
        $self.leg($self.from, $self.to).await?;
        let reply = $call.await?;
        $self.leg($self.to, $self.from).await?;
        Ok(reply)
    }};
}

impl<P: RaftNetwork<TypeConfig>> RaftNetwork<TypeConfig> for FaultyPeer<P> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        faulty_call!(self, self.inner.append_entries(rpc, option))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        faulty_call!(self, self.inner.install_snapshot(rpc, option))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        faulty_call!(self, self.inner.vote(rpc, option))
    }

    fn backoff(&self) -> Backoff {
        self.inner.backoff()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_both_ways_and_heal() {
        let f = NetworkFaults::default();
        assert_eq!(f.verdict(1, 2), Some(Duration::ZERO));
        f.isolate(1, &[1, 2, 3]);
        assert_eq!(f.verdict(1, 2), None);
        assert_eq!(f.verdict(3, 1), None);
        assert_eq!(f.verdict(2, 3), Some(Duration::ZERO), "the majority still talks");
        f.heal();
        assert_eq!(f.verdict(1, 2), Some(Duration::ZERO));
    }

    #[test]
    fn drops_and_delays_apply_to_every_link() {
        let f = NetworkFaults::default();
        f.drop_messages(100);
        assert_eq!(f.verdict(2, 3), None);
        f.drop_messages(0);
        f.delay_messages(Duration::from_millis(30));
        assert_eq!(f.verdict(2, 3), Some(Duration::from_millis(30)));
    }
}
