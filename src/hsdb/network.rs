//! Raft RPCs over tonic, to each member's peer endpoint. Requests and replies travel as serde JSON inside one protobuf `bytes`
//! field: the wire follows openraft's own types, so an openraft upgrade touches no proto.
//! A peer that cannot be reached is reported `Unreachable`, and openraft retries after
//! [`BACKOFF`] — shorter than its 500 ms default, so a restarted member catches up quickly —
//! doubling while the peer stays away.
// openraft's own error types are large; they are returned as openraft defines them.
#![allow(clippy::result_large_err)]
use super::batcher::MAX_ENTRY_BYTES;
use super::election::{PRE_VOTE_TIMEOUT, PreVote, PreVoter};
use super::member::Member;
use super::types::TypeConfig;
use crate::pb::{RaftPayload, raft_peer_client::RaftPeerClient};
use crate::transport::{ChannelPool, deadline, within};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;
use tonic::transport::Channel;

type NodeId = u64;

/// Largest Raft message a member sends or accepts. One log entry stays far below it (the write
/// path packs at most [`MAX_ENTRY_BYTES`]), as does a snapshot chunk
/// ([`SNAPSHOT_CHUNK_BYTES`], as JSON numbers up to four bytes each).
pub const MAX_RAFT_MESSAGE: usize = 32 * 1024 * 1024;
/// An AppendEntries larger than this is split: openraft retries with half the entries.
const SPLIT_ABOVE: usize = 8 * 1024 * 1024;
/// Snapshot bytes per InstallSnapshot message.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
const _: () = assert!(MAX_ENTRY_BYTES * 2 < MAX_RAFT_MESSAGE && SNAPSHOT_CHUNK_BYTES as usize * 5 < MAX_RAFT_MESSAGE);

/// First retry towards an unreachable peer (rust-stack notes: ~95 ms catch-up vs ~500 ms), and
/// the longest wait it doubles up to while the peer stays away.
pub const BACKOFF: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_millis(800);

#[derive(Clone)]
pub struct GrpcRaftNetwork {
    pool: ChannelPool,
}

impl GrpcRaftNetwork {
    pub fn new(pool: ChannelPool) -> Self {
        Self { pool }
    }
}

pub struct PeerClient {
    target: NodeId,
    channel: Option<Channel>,
}

impl PreVoter for GrpcRaftNetwork {
    async fn pre_vote(&self, _voter: NodeId, addr: String, req: PreVote) -> bool {
        let Ok(data) = serde_json::to_vec(&req) else { return false };
        let Ok(channel) = self.pool.get(&addr) else { return false };
        let mut client = RaftPeerClient::new(channel);
        let ask = client.pre_vote(deadline(RaftPayload { data }, PRE_VOTE_TIMEOUT));
        match within(PRE_VOTE_TIMEOUT, ask).await {
            Ok(reply) => serde_json::from_slice(&reply.into_inner().data).unwrap_or(false),
            Err(_) => false,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcRaftNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        PeerClient { target, channel: self.pool.get(&node.peer).ok() }
    }
}

enum CallError {
    Unreachable(tonic::Status),
    Network(String),
}

impl PeerClient {
    async fn call<Req, Resp, E>(&mut self, kind: Kind, req: &Req, ttl: Duration) -> Result<Result<Resp, E>, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let data = serde_json::to_vec(req).map_err(|e| CallError::Network(e.to_string()))?;
        self.send(kind, data, ttl).await
    }

    async fn send<Resp, E>(&mut self, kind: Kind, data: Vec<u8>, ttl: Duration) -> Result<Result<Resp, E>, CallError>
    where
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let channel = self.channel.clone().ok_or_else(|| CallError::Network("bad peer address".into()))?;
        let mut client = RaftPeerClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE)
            .max_encoding_message_size(MAX_RAFT_MESSAGE);
        let request = deadline(RaftPayload { data }, ttl);
        let reply = match kind {
            Kind::Append => client.append_entries(request).await,
            Kind::Vote => client.vote(request).await,
            Kind::Snapshot => client.install_snapshot(request).await,
        }
        .map_err(CallError::Unreachable)?;
        serde_json::from_slice(&reply.into_inner().data).map_err(|e| CallError::Network(e.to_string()))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Append,
    Vote,
    Snapshot,
}

fn into_rpc<Resp, E: std::error::Error>(
    target: NodeId,
    result: Result<Result<Resp, E>, CallError>,
) -> Result<Resp, RPCError<NodeId, Member, E>> {
    match result {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(target, remote))),
        Err(CallError::Unreachable(status)) => Err(RPCError::Unreachable(Unreachable::new(&status))),
        Err(CallError::Network(msg)) => Err(RPCError::Network(NetworkError::new(&std::io::Error::other(msg)))),
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let data = serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if data.len() > SPLIT_ABOVE && rpc.entries.len() > 1 {
            // openraft sends fewer entries per message from now on.
            let hint = (rpc.entries.len() as u64 / 2).max(1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        into_rpc(self.target, self.send(Kind::Append, data, option.hard_ttl()).await)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        into_rpc(self.target, self.call(Kind::Snapshot, &rpc, option.hard_ttl()).await)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        into_rpc(self.target, self.call(Kind::Vote, &rpc, option.hard_ttl()).await)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new((1..).map(|failures| crate::logic::retries::backoff(failures, BACKOFF, BACKOFF_MAX)))
    }
}
