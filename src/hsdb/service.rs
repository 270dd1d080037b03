//! The HSDB's table API over gRPC (Raft between members is [`super::peer_service`], on its own
//! port). A member that is not the DBN forwards table calls to the DBN once (a forwarded call
//! is never forwarded again).
use super::client::{HsdbAccess, LocalHsdb, read_local};
use super::tables::Table;
use super::types::Command;
use super::writers::{may_read, may_write};
use crate::error::VmrmError;
use crate::pb::{self, hsdb_client::HsdbClient, hsdb_server::Hsdb};
use crate::transport::gate::caller;
use crate::transport::{ChannelPool, deadline};
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

#[tonic::async_trait]
impl Hsdb for HsdbService {
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
        let who = caller(&req)?.clone();
        let msg = req.into_inner();
        let table: Table = msg.table.parse().map_err(Status::invalid_argument)?;
        may_read(&who, table).map_err(Status::permission_denied)?;
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
        let members = m.membership_config.membership().nodes().map(|(id, n)| format!("{id}={}", n.api)).collect();
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
            peer_endpoint: node.peer_endpoint.clone(),
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
