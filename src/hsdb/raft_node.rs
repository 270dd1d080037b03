//! Starting one HSDB member: open (and vet) its sled directory, build the Raft instance with
//! failover-tuned timers, and initialize a fresh cluster from the lowest member id.
use super::Raft;
use super::log_store::SledLogStore;
use super::network::GrpcRaftNetwork;
use super::state_machine::SledStateMachine;
use crate::error::{Result, VmrmError};
use crate::transport::ChannelPool;
use openraft::{BasicNode, Config, ServerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Raft heartbeat. With the election timeout below, a new DBN is elected 0.7–1 s after the old
/// one dies (rust-stack notes: wait ≈ election_timeout_max + random(min, max) + one tick of
/// 1.5 × heartbeat). openraft's defaults (50 / 150–300 ms) fail over in ~0.5 s but caused
/// spurious elections on a loaded two-core machine, deposing a controller mid-restart.
pub const HEARTBEAT_MS: u64 = 80;
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 250;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 450;
const IDENTITY_KEY: &[u8] = b"identity";
const FORMAT: &str = "vmrm-hsdb-1";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Identity {
    format: String,
    node_id: u64,
}

/// One running HSDB member.
#[derive(Clone)]
pub struct HsdbNode {
    pub node_id: u64,
    pub raft: Raft,
    pub db: sled::Db,
}

/// Opens the sled directory, refusing a corrupt one or one that belongs to another member:
/// an HSDB must never silently start empty over data it cannot read.
fn open_db(dir: &Path, node_id: u64) -> Result<sled::Db> {
    let db = sled::Config::new().path(dir).open().map_err(|e| {
        VmrmError::precondition(format!(
            "HSDB data directory {} cannot be opened ({e}); it is corrupt or in use by another process. \
             Refusing to start: move it away to rejoin this member empty",
            dir.display()
        ))
    })?;
    let meta = db.open_tree("hsdb/identity").map_err(VmrmError::internal)?;
    let wanted = Identity { format: FORMAT.into(), node_id };
    match meta.get(IDENTITY_KEY).map_err(VmrmError::internal)? {
        Some(bytes) => {
            let found: Identity = serde_json::from_slice(&bytes).map_err(|e| {
                VmrmError::precondition(format!(
                    "HSDB data directory {} has an unreadable identity record ({e}); refusing to start",
                    dir.display()
                ))
            })?;
            if found != wanted {
                return Err(VmrmError::precondition(format!(
                    "HSDB data directory {} belongs to {} member {}, not member {node_id}; refusing to start",
                    dir.display(),
                    found.format,
                    found.node_id
                )));
            }
        }
        None => {
            let has_data = db.tree_names().iter().any(|n| n.starts_with(b"raft/") || n.starts_with(b"table/"));
            if has_data {
                return Err(VmrmError::precondition(format!(
                    "HSDB data directory {} holds Raft data without an identity record; refusing to start",
                    dir.display()
                )));
            }
            meta.insert(IDENTITY_KEY, serde_json::to_vec(&wanted).map_err(VmrmError::internal)?)
                .map_err(VmrmError::internal)?;
            meta.flush().map_err(VmrmError::internal)?;
        }
    }
    Ok(db)
}

impl HsdbNode {
    pub async fn start(dir: &Path, node_id: u64, members: &BTreeMap<u64, String>, pool: ChannelPool) -> Result<Self> {
        let db = open_db(dir, node_id)?;
        let log_store = SledLogStore::open(&db).map_err(VmrmError::internal)?;
        let state_machine = SledStateMachine::open(&db).map_err(VmrmError::internal)?;
        let config = Config {
            cluster_name: "vmrm-hsdb".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
            install_snapshot_timeout: 2_000,
            ..Default::default()
        }
        .validate()
        .map_err(VmrmError::internal)?;
        let raft = Raft::new(node_id, Arc::new(config), GrpcRaftNetwork::new(pool), log_store.clone(), state_machine)
            .await
            .map_err(VmrmError::internal)?;
        let fresh = log_store.is_empty() && raft.metrics().borrow().current_term == 0;
        if fresh && members.keys().next() == Some(&node_id) {
            let nodes: BTreeMap<u64, BasicNode> =
                members.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
            if let Err(e) = raft.initialize(nodes).await {
                tracing::info!("HSDB already initialized: {e}");
            }
        }
        Ok(Self { node_id, raft, db })
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The DBN's endpoint, when one is known.
    pub fn leader_endpoint(&self) -> Option<String> {
        leader_endpoint(&self.raft)
    }

    /// Waits until some member is leader (or the timeout passes).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = rx.borrow().current_leader {
                return Some(l);
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("HSDB shutdown: {e}");
        }
        let _ = self.db.flush_async().await;
    }
}

pub fn leader_endpoint(raft: &Raft) -> Option<String> {
    let m = raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_another_member_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_db(dir.path(), 1).expect("a fresh directory opens"));
        drop(open_db(dir.path(), 1).expect("its own directory reopens"));
        let Err(err) = open_db(dir.path(), 2) else { panic!("another member's directory must be refused") };
        let err = err.to_string();
        assert!(err.contains("belongs to vmrm-hsdb-1 member 1, not member 2"), "{err}");
    }
}
