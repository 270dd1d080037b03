//! The Raft RPCs one member serves its peers, on its peer port only. Every message is decoded
//! and bounded ([`raft_guard`]) before openraft sees it; a reply from the member being
//! followed (or a snapshot from it) tells the election watch that a DBN was heard.
use super::election::{self, PreVote};
use super::raft_guard;
use super::raft_node::{HsdbNode, LEASE};
use super::types::TypeConfig;
use crate::pb::{self, raft_peer_server::RaftPeer};
use openraft::raft::{AppendEntriesResponse, InstallSnapshotRequest};
use serde::Serialize;
use tonic::{Request, Response, Status};

pub struct RaftPeerService {
    node: HsdbNode,
}

impl RaftPeerService {
    pub fn new(node: HsdbNode) -> Self {
        Self { node }
    }
}

fn raft_reply<T: Serialize>(result: T) -> Result<Response<pb::RaftPayload>, Status> {
    let data = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(pb::RaftPayload { data }))
}

/// Decodes a Raft message and refuses one outside the bounds of [`raft_guard`].
fn raft_request<T: serde::de::DeserializeOwned>(
    req: Request<pb::RaftPayload>,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, Status> {
    let rpc = serde_json::from_slice(&req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("bad Raft payload: {e}")))?;
    check(&rpc).map_err(|why| Status::invalid_argument(format!("Raft message refused: {why}")))?;
    Ok(rpc)
}

#[tonic::async_trait]
impl RaftPeer for RaftPeerService {
    async fn append_entries(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc = raft_request(req, raft_guard::check_append)?;
        let reply = self.node.raft.append_entries(rpc).await;
        // Anything but "your vote is stale" comes from the DBN this member follows.
        if matches!(reply, Ok(ref r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            self.node.heard.now();
        }
        raft_reply(reply)
    }

    async fn vote(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc = raft_request(req, raft_guard::check_vote_request)?;
        raft_reply(self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = raft_request(req, raft_guard::check_snapshot)?;
        let sender = rpc.vote;
        let reply = self.node.raft.install_snapshot(rpc).await;
        if matches!(reply, Ok(ref r) if r.vote <= sender) {
            self.node.heard.now();
        }
        raft_reply(reply)
    }

    async fn pre_vote(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: PreVote = raft_request(req, raft_guard::check_pre_vote)?;
        raft_reply(election::answer(&self.node.raft, &self.node.heard, &rpc, LEASE))
    }
}
