//! HSDB membership changes, as an operator makes them through `ksysmgr`: a new member joins as
//! a learner (it catches up without counting toward the quorum), is then made a voter, and can
//! be removed. Every change is checked first — the address must answer as the named member, a
//! voter set must never become empty — so a refused change leaves the membership untouched.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::error::{Result, VmrmError};
use crate::hsdb::Member;
use crate::hsdb::Raft;
use crate::pb::{self, HsdbStatusRequest, hsdb_client::HsdbClient};
use crate::transport::{Security, channel::lazy_channel, deadline};
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use strum::Display;

/// How long a probe of a member's address may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a new learner may take to catch up before the command returns.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// A member's role in the HSDB membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    Voter,
    Learner,
}

impl Role {
    /// The role a request asks for.
    pub fn from_wire(raw: i32) -> Result<Self> {
        match pb::HsdbRole::try_from(raw) {
            Ok(pb::HsdbRole::Voter) => Ok(Self::Voter),
            Ok(pb::HsdbRole::Learner) => Ok(Self::Learner),
            _ => Err(VmrmError::invalid(format!("role {raw} is not one of HSDB_ROLE_VOTER, HSDB_ROLE_LEARNER"))),
        }
    }
}

/// The membership as this member knows it: id → (endpoints, role).
fn members(raft: &Raft) -> BTreeMap<u64, (Member, Role)> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| {
            let role = if voters.contains(id) { Role::Voter } else { Role::Learner };
            (*id, (node.clone(), role))
        })
        .collect()
}

/// Asks the process at `endpoint` who it is.
async fn probe(endpoint: &str, security: &Security) -> Result<pb::HsdbStatus> {
    let channel = lazy_channel(endpoint, PROBE_TIMEOUT, security)?;
    let status = HsdbClient::new(channel).status(deadline(HsdbStatusRequest {}, PROBE_TIMEOUT)).await?;
    Ok(status.into_inner())
}

fn membership_error(e: impl std::fmt::Display) -> VmrmError {
    VmrmError::unavailable(format!("the HSDB membership change did not complete: {e}"))
}

impl Config {
    fn raft(&self) -> &Raft {
        &self.hsdb.node().raft
    }

    pub async fn add_hsdb_node(&self, node_id: u64, endpoint: &str) -> Result<Vec<pb::Step>> {
        if node_id == 0 {
            return Err(VmrmError::invalid("an HSDB node id must be a positive number"));
        }
        if !crate::transport::is_endpoint(endpoint) {
            return Err(VmrmError::invalid(format!(
                "endpoint `{endpoint}` is not an address like IP:PORT or NAME:PORT"
            )));
        }
        if let Some((member, role)) = members(self.raft()).get(&node_id) {
            return Err(VmrmError::AlreadyExists(format!(
                "HSDB node {node_id} is already a member ({role}, {member})"
            )));
        }
        let status = probe(endpoint, &self.security).await.map_err(|e| {
            VmrmError::precondition(format!(
                "no HSDB member answers at {endpoint} ({e}); start vmrmd there with [hsdb] node_id = {node_id} \
                 first. Nothing was changed"
            ))
        })?;
        if status.node_id != node_id {
            return Err(VmrmError::precondition(format!(
                "the HSDB member at {endpoint} is node {}, not node {node_id}. Nothing was changed",
                status.node_id
            )));
        }
        // Where its Raft is reached, as the member's own config says (`[hsdb.peers]`).
        if !crate::transport::is_endpoint(&status.peer_endpoint) {
            return Err(VmrmError::precondition(format!(
                "the HSDB member at {endpoint} names no peer endpoint (`{}`); give it its own entry in \
                 [hsdb.peers]. Nothing was changed",
                crate::error::quote(&status.peer_endpoint)
            )));
        }
        let node = Member::new(endpoint, &status.peer_endpoint);
        let added = tokio::time::timeout(CATCH_UP_TIMEOUT, self.raft().add_learner(node_id, node.clone(), true))
            .await
            .map_err(|_| {
                VmrmError::unavailable(format!(
                    "HSDB node {node_id} was added as a learner but has not caught up within {CATCH_UP_TIMEOUT:?}; \
                     see `ksysmgr query hsdb`"
                ))
            })?
            .map_err(membership_error)?;
        let index = added.log_id.index;
        Ok(vec![say::hsdb_node_added(node_id, &node, index)])
    }

    pub async fn modify_hsdb_node(&self, node_id: u64, wanted: Role) -> Result<Vec<pb::Step>> {
        let all = members(self.raft());
        let Some((_, current)) = all.get(&node_id) else {
            return Err(VmrmError::not_found(format!("HSDB node {node_id} is not a member")));
        };
        if *current == wanted {
            return Err(VmrmError::precondition(format!("HSDB node {node_id} is already a {wanted}")));
        }
        let ids = BTreeSet::from([node_id]);
        let change = match wanted {
            Role::Voter => ChangeMembers::AddVoterIds(ids),
            Role::Learner => {
                self.keep_a_voter(&all, node_id)?;
                ChangeMembers::RemoveVoters(ids)
            }
        };
        self.raft().change_membership(change, true).await.map_err(membership_error)?;
        Ok(vec![say::hsdb_node_role_changed(node_id, &wanted.to_string())])
    }

    pub async fn remove_hsdb_node(&self, node_id: u64) -> Result<Vec<pb::Step>> {
        let all = members(self.raft());
        let Some((member, role)) = all.get(&node_id) else {
            return Err(VmrmError::not_found(format!("HSDB node {node_id} is not a member")));
        };
        let ids = BTreeSet::from([node_id]);
        let change = match role {
            Role::Voter => {
                self.keep_a_voter(&all, node_id)?;
                ChangeMembers::RemoveVoters(ids)
            }
            Role::Learner => ChangeMembers::RemoveNodes(ids),
        };
        self.raft().change_membership(change, false).await.map_err(membership_error)?;
        Ok(vec![say::hsdb_node_removed(node_id, member)])
    }

    /// Refuses to take the last voter away: the HSDB would have no quorum at all.
    fn keep_a_voter(&self, all: &BTreeMap<u64, (Member, Role)>, leaving: u64) -> Result<()> {
        let remaining = all.iter().filter(|(id, (_, role))| **id != leaving && *role == Role::Voter).count();
        match remaining {
            0 => Err(VmrmError::precondition(format!(
                "HSDB node {leaving} is the last voter; add and promote another member first. Nothing was changed"
            ))),
            _ => Ok(()),
        }
    }

    /// Members, roles, the DBN and each member's own view of term and progress.
    pub async fn query_hsdb(&self) -> Result<pb::HsdbView> {
        let metrics = self.raft().metrics().borrow().clone();
        let dbn = metrics.current_leader.unwrap_or_default();
        let mut views = Vec::new();
        for (node_id, (member, role)) in members(self.raft()) {
            let status = probe(&member.api, &self.security).await.ok();
            views.push(pb::HsdbMemberView {
                node_id,
                endpoint: member.api,
                peer_endpoint: member.peer,
                role: match role {
                    Role::Voter => pb::HsdbRole::Voter,
                    Role::Learner => pb::HsdbRole::Learner,
                }
                .into(),
                dbn: node_id == dbn,
                state: status.as_ref().map_or(pb::HsdbMemberState::Unreachable as i32, |s| s.state),
                term: status.as_ref().map_or(0, |s| s.term),
                last_applied: status.as_ref().map_or(0, |s| s.last_applied),
                snapshot_index: status.as_ref().map_or(0, |s| s.snapshot_index),
            });
        }
        Ok(pb::HsdbView {
            dbn,
            term: metrics.current_term,
            last_applied: metrics.last_applied.map(|l| l.index).unwrap_or_default(),
            members: views,
        })
    }
}
