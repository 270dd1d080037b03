//! The HSDB's gRPC face: Raft RPCs from peers, and the table API. A member that is not the DBN
//! forwards table calls to the DBN once (a forwarded call is never forwarded again).
use super::client::{HsdbAccess, LocalHsdb, read_local};
use super::election::{self, PreVote};
use super::raft_guard;
use super::raft_node::LEASE;
use super::tables::Table;
use super::types::{Command, TypeConfig};
use super::writers::may_write;
use crate::error::VmrmError;
use crate::pb::{self, hsdb_client::HsdbClient, hsdb_server::Hsdb};
use crate::transport::gate::caller;
use crate::transport::{ChannelPool, deadline};
use openraft::raft::{AppendEntriesResponse, InstallSnapshotRequest};
use serde::Serialize;
use std::time::Duration;
use tonic::{Request, Response, Status};

const FORWARDED: &str = "vmrm-forwarded";

pub struct HsdbService {
    local: LocalHsdb,
    pool: ChannelPool,
    timeout: Duration,
}

impl HsdbService {
    pub fn new(local: LocalHsdb, pool: ChannelPool, timeout: Duration) -> Self {
        Self { local, pool, timeout }
    }

    fn leader_client(&self, err: &VmrmError) -> Option<HsdbClient<tonic::transport::Channel>> {
        match err {
            VmrmError::NotLeader { leader: Some(addr) } => self.pool.get(addr).ok().map(HsdbClient::new),
            _ => None,
        }
    }

    fn forwarded<T>(&self, msg: T) -> Request<T> {
        let mut req = deadline(msg, self.timeout);
        req.metadata_mut().insert(FORWARDED, "1".parse().expect("static metadata"));
        req
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
impl Hsdb for HsdbService {
    async fn append_entries(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc = raft_request(req, raft_guard::check_append)?;
        let node = self.local.node();
        let reply = node.raft.append_entries(rpc).await;
        // Anything but "your vote is stale" comes from the DBN this member follows.
        if matches!(reply, Ok(ref r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            node.heard.now();
        }
        raft_reply(reply)
    }

    async fn vote(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc = raft_request(req, raft_guard::check_vote_request)?;
        raft_reply(self.local.node().raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = raft_request(req, raft_guard::check_snapshot)?;
        let (node, sender) = (self.local.node(), rpc.vote);
        let reply = node.raft.install_snapshot(rpc).await;
        if matches!(reply, Ok(ref r) if r.vote <= sender) {
            node.heard.now();
        }
        raft_reply(reply)
    }

    async fn pre_vote(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: PreVote = raft_request(req, raft_guard::check_pre_vote)?;
        let node = self.local.node();
        raft_reply(election::answer(&node.raft, &node.heard, &rpc, LEASE))
    }

    async fn write(&self, req: Request<pb::HsdbWrite>) -> Result<Response<pb::HsdbWriteReply>, Status> {
        let was_forwarded = req.metadata().contains_key(FORWARDED);
        let who = caller(&req)?.clone();
        let msg = req.into_inner();
        let command: Command = serde_json::from_slice(&msg.command)
            .map_err(|e| Status::invalid_argument(format!("malformed HSDB command: {e}")))?;
        // Checked where the call arrives: a forwarded one comes from a member, which checked it.
        may_write(&who, &command).map_err(Status::permission_denied)?;
        match self.local.write(command).await {
            Ok(result) => {
                let response = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
                Ok(Response::new(pb::HsdbWriteReply { response }))
            }
            Err(e) if !was_forwarded => match self.leader_client(&e) {
                Some(mut leader) => leader.write(self.forwarded(msg)).await,
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, req: Request<pb::HsdbRead>) -> Result<Response<pb::HsdbRows>, Status> {
        let was_forwarded = req.metadata().contains_key(FORWARDED);
        let msg = req.into_inner();
        let table: Table = msg.table.parse().map_err(Status::invalid_argument)?;
        let key = (!msg.key.is_empty()).then_some(msg.key.as_str());
        let read = match msg.follower_read {
            true => read_local(&self.local.node().db, table, key),
            false => self.local.read(table, key).await,
        };
        match read {
            Ok(rows) => {
                let rows = rows
                    .into_iter()
                    .map(|r| pb::HsdbRow { key: r.key, version: r.version, value: r.value.to_string().into_bytes() })
                    .collect();
                Ok(Response::new(pb::HsdbRows { rows }))
            }
            Err(e) if !was_forwarded => match self.leader_client(&e) {
                Some(mut leader) => leader.read(self.forwarded(msg)).await,
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn status(&self, _req: Request<pb::HsdbStatusRequest>) -> Result<Response<pb::HsdbStatus>, Status> {
        let node = self.local.node();
        let m = node.raft.metrics().borrow().clone();
        let members = m.membership_config.membership().nodes().map(|(id, n)| format!("{id}={}", n.addr)).collect();
        Ok(Response::new(pb::HsdbStatus {
            node_id: node.node_id,
            leader_id: m.current_leader.unwrap_or_default(),
            leader_endpoint: node.leader_endpoint().unwrap_or_default(),
            term: m.current_term,
            last_applied: m.last_applied.map(|l| l.index).unwrap_or_default(),
            state: member_state(m.state).into(),
            members,
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or_default(),
            purged_index: m.purged.map(|l| l.index).unwrap_or_default(),
            alarm: node.own_alarm().unwrap_or_default(),
        }))
    }
}

/// The member's Raft state on the wire.
fn member_state(state: openraft::ServerState) -> pb::HsdbMemberState {
    match state {
        openraft::ServerState::Leader => pb::HsdbMemberState::Leader,
        openraft::ServerState::Follower => pb::HsdbMemberState::Follower,
        openraft::ServerState::Candidate => pb::HsdbMemberState::Candidate,
        openraft::ServerState::Learner => pb::HsdbMemberState::Learner,
        openraft::ServerState::Shutdown => pb::HsdbMemberState::Shutdown,
    }
}
