//! Starting one HSDB member: open (and vet) its sled directory, build the Raft instance with
//! failover-tuned timers, and initialize a fresh cluster from the lowest member id.
use super::Raft;
use super::election::{self, Heard, PreVoter};
use super::log_store::SledLogStore;
use super::network::{GrpcRaftNetwork, SNAPSHOT_CHUNK_BYTES};
use super::space;
use super::state_machine::SledStateMachine;
use super::types::TypeConfig;
use crate::config::HsdbConfig;
use crate::disk_sync::{DiskSync, sync_dir};
use crate::error::{Result, VmrmError};
use crate::transport::ChannelPool;
use openraft::network::RaftNetworkFactory;
use openraft::{Config, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Raft heartbeat. openraft also gives each follower this long to confirm the leadership behind
/// a linearizable read: at 50 ms, 64 concurrent reads on a loaded machine timed out.
pub const HEARTBEAT_MS: u64 = 80;
/// openraft's own election timer is off ([`election`] decides when a follower stands, after a
/// pre-vote); of these two, the maximum is what remains in use: the voters' leader lease, the
/// silence after which they grant a vote at all. A new DBN is then elected about 0.3 s after
/// the old one dies.
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 150;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 250;
/// The voters' leader lease: openraft's, and the silence after which a member grants a pre-vote.
pub const LEASE: Duration = Duration::from_millis(ELECTION_TIMEOUT_MAX_MS);
/// sled's page cache: the resident memory of a member is bounded by this plus the working set.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;
const IDENTITY_KEY: &[u8] = b"identity";
/// The identity file beside sled's files.
pub const IDENTITY_FILE: &str = "vmrm-hsdb.json";
/// The data format: 2 records each member's API and peer endpoints in the membership.
const FORMAT: &str = "vmrm-hsdb-2";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Identity {
    format: String,
    node_id: u64,
}

/// One running HSDB member.
#[derive(Clone)]
pub struct HsdbNode {
    pub node_id: u64,
    /// Where the other members reach this member's Raft.
    pub peer_endpoint: String,
    pub raft: Raft,
    pub db: sled::Db,
    /// When this member last heard from a DBN (the Raft service tells it).
    pub heard: Heard,
    /// NOSPACE alarms ([`space`]): this member's own, and while it leads, its peers'.
    alarms: Arc<Mutex<BTreeMap<u64, String>>>,
    /// This member's database size and quota as last measured (FFDC's resource threshold).
    usage: Arc<Mutex<Option<(u64, u64)>>>,
}

/// How often a member measures its disk (and a leader asks its peers for their alarms).
const SPACE_EVERY: Duration = Duration::from_secs(1);

/// Opens the sled directory, refusing a damaged one or one that belongs to another member:
/// an HSDB must never silently start empty over data it cannot read.
///
/// The member's identity is kept twice: inside sled and in a small file beside sled's own
/// files. sled recovers a damaged file by keeping the readable prefix of its log, which can be
/// nothing at all; the file outside sled is what tells "new member" from "data lost".
fn open_db(dir: &Path, node_id: u64) -> Result<sled::Db> {
    let wanted = Identity { format: FORMAT.into(), node_id };
    let refuse = |why: String| {
        VmrmError::precondition(format!("HSDB data directory {} {why}; refusing to start", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot be created ({e})")))?;
    let marker_path = dir.join(IDENTITY_FILE);
    let marker: Option<Identity> = match std::fs::read(&marker_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| refuse(format!("has an unreadable {IDENTITY_FILE} ({e})")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(refuse(format!("has an unreadable {IDENTITY_FILE} ({e})"))),
    };
    // No background flusher: the log store syncs before every acknowledgement (which persists
    // everything written before it), and an extra timer-driven sync only competes with it.
    let db = sled::Config::new().path(dir).cache_capacity(SLED_CACHE_BYTES).flush_every_ms(None).open().map_err(|e| {
        refuse(format!("cannot be opened ({e}); it is damaged or in use by another process. Move it away to rejoin this member empty"))
    })?;
    let meta = db.open_tree("hsdb/identity").map_err(VmrmError::internal)?;
    let stored: Option<Identity> = match meta.get(IDENTITY_KEY).map_err(VmrmError::internal)? {
        Some(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| refuse(format!("has an unreadable identity record ({e})")))?,
        ),
        None => None,
    };
    let belongs_elsewhere = |found: &Identity| match found.format == FORMAT {
        true => refuse(format!("belongs to {} member {}, not member {node_id}", found.format, found.node_id)),
        false => refuse(format!(
            "holds data of format {}, which this vmrmd does not read ({FORMAT}: the membership records each \
             member's peer endpoint). Move it away to rejoin this member empty; it catches up from its peers",
            found.format
        )),
    };
    match (marker, stored) {
        (Some(m), _) if m != wanted => return Err(belongs_elsewhere(&m)),
        (_, Some(s)) if s != wanted => return Err(belongs_elsewhere(&s)),
        (Some(_), None) => {
            return Err(refuse(format!(
                "is damaged: {IDENTITY_FILE} names member {node_id} but the database has lost its records \
                 (sled kept only what it could read). Move the directory away to rejoin this member empty"
            )));
        }
        (None, None) => {
            let has_data = db.tree_names().iter().any(|n| n.starts_with(b"raft/") || n.starts_with(b"table/"));
            if has_data {
                return Err(refuse("holds Raft data without an identity record".into()));
            }
            meta.insert(IDENTITY_KEY, serde_json::to_vec(&wanted).map_err(VmrmError::internal)?)
                .map_err(VmrmError::internal)?;
            meta.flush().map_err(VmrmError::internal)?;
            write_marker(&marker_path, &wanted)?;
        }
        (None, Some(_)) => write_marker(&marker_path, &wanted)?,
        (Some(_), Some(_)) => {}
    }
    Ok(db)
}

/// Opens member `node_id`'s storage on `dir` exactly as the member runs on it: the vetted sled
/// database, its Raft log and its state machine (call within a tokio runtime: the log starts
/// its flusher task). Public so openraft's storage conformance suite tests these very stores.
pub fn open_storage(dir: &Path, node_id: u64) -> Result<(sled::Db, SledLogStore, SledStateMachine)> {
    let db = open_db(dir, node_id)?;
    let disk = DiskSync::new(&db, dir).map_err(VmrmError::internal)?;
    let log_store = SledLogStore::open(&disk, node_id).map_err(VmrmError::internal)?;
    let state_machine = SledStateMachine::open(&disk).map_err(VmrmError::internal)?;
    Ok((db, log_store, state_machine))
}

/// Writes the identity file durably (write, fsync, rename, fsync of the directory).
fn write_marker(path: &Path, identity: &Identity) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(identity).map_err(VmrmError::internal)?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    };
    write().map_err(|e| VmrmError::internal(format!("cannot write {}: {e}", path.display())))
}

impl HsdbNode {
    /// Starts member `config.node_id` on its data directory. A snapshot every
    /// `config.snapshot_every` entries, with the log before it purged, keeps the disk bounded
    /// under any write load.
    pub async fn start(dir: &Path, config: &HsdbConfig, pool: ChannelPool) -> Result<Self> {
        let node = Self::start_with_network(dir, config, GrpcRaftNetwork::new(pool.clone())).await?;
        tokio::spawn(node.clone().watch_space(dir.to_path_buf(), config.quota_bytes, pool));
        tokio::spawn(report_metrics(node.raft.clone()));
        Ok(node)
    }

    /// Starts a member over any Raft transport (tests wrap the real one to inject faults).
    pub async fn start_with_network(
        dir: &Path,
        config: &HsdbConfig,
        network: impl RaftNetworkFactory<TypeConfig> + PreVoter + Clone,
    ) -> Result<Self> {
        let (node_id, members) = (config.node_id, config.member_ids());
        let peer_endpoint = config.own_peer_endpoint().unwrap_or_default().to_string();
        let (db, log_store, state_machine) = open_storage(dir, node_id)?;
        let config = Config {
            cluster_name: "vmrm-hsdb".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
            install_snapshot_timeout: 2_000,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.log_kept_after_snapshot,
            purge_batch_size: 256,
            enable_elect: false,
            ..Default::default()
        }
        .validate()
        .map_err(VmrmError::internal)?;
        let pre_voter = Arc::new(network.clone());
        let raft = Raft::new(node_id, Arc::new(config), network, log_store.clone(), state_machine)
            .await
            .map_err(VmrmError::internal)?;
        let heard = Heard::default();
        tokio::spawn(election::watch(raft.clone(), heard.clone(), pre_voter, LEASE));
        let fresh = log_store.is_empty() && raft.metrics().borrow().current_term == 0;
        if fresh
            && members.keys().next() == Some(&node_id)
            && let Err(e) = raft.initialize(members).await
        {
            tracing::info!("HSDB already initialized: {e}");
        }
        Ok(Self { node_id, peer_endpoint, raft, db, heard, alarms: Arc::default(), usage: Arc::default() })
    }

    /// Measures this member's space every [`SPACE_EVERY`] and keeps its alarm; while it leads,
    /// also its peers' alarms (asked through `pool`). Ends with the member.
    async fn watch_space(self, dir: PathBuf, quota: u64, pool: ChannelPool) {
        let mut tick = tokio::time::interval(SPACE_EVERY);
        while self.core_stopped().is_none() {
            tick.tick().await;
            let raised = self.alarms().contains_key(&self.node_id);
            let db = self.db.clone();
            let measured = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || space::measure(&db, &dir)
            })
            .await;
            match measured.map_err(std::io::Error::other).and_then(|m| m) {
                Ok(used) => {
                    crate::metrics::metrics().hsdb_size_bytes.set(i64::try_from(used.used).unwrap_or(i64::MAX));
                    *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some((used.used, quota));
                    self.set_alarm(self.node_id, space::alarm(raised, used, quota));
                }
                Err(e) => tracing::warn!("HSDB space not measured: {e}"),
            }
            self.ask_peers(&pool).await;
        }
    }

    /// While leading: each peer's alarm, from its status (a peer that does not answer keeps
    /// what it said last).
    async fn ask_peers(&self, pool: &ChannelPool) {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            self.alarms().retain(|id, _| *id == self.node_id);
            return;
        }
        for (id, node) in m.membership_config.membership().nodes().filter(|(id, _)| **id != self.node_id) {
            let Ok(channel) = pool.get(&node.api) else { continue };
            let req = crate::transport::deadline(crate::pb::HsdbStatusRequest {}, SPACE_EVERY / 2);
            if let Ok(status) = crate::pb::hsdb_client::HsdbClient::new(channel).status(req).await {
                let alarm = status.into_inner().alarm;
                self.set_alarm(*id, (!alarm.is_empty()).then_some(alarm));
            }
        }
    }

    fn alarms(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, String>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.alarms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_alarm(&self, member: u64, alarm: Option<String>) {
        if member == self.node_id {
            crate::metrics::metrics().hsdb_nospace.set(i64::from(alarm.is_some()));
        }
        let mut alarms = self.alarms();
        match alarm {
            Some(why) => {
                if !alarms.contains_key(&member) {
                    tracing::error!("HSDB NOSPACE alarm on member {member}: {why}");
                }
                alarms.insert(member, why);
            }
            None => {
                if alarms.remove(&member).is_some() {
                    tracing::info!("HSDB NOSPACE alarm on member {member} cleared");
                }
            }
        }
    }

    /// The percentage of its quota this member's database used when last measured.
    pub fn used_pct(&self) -> Option<f64> {
        let usage = *self.usage.lock().unwrap_or_else(|p| p.into_inner());
        usage.filter(|(_, quota)| *quota > 0).map(|(used, quota)| used as f64 * 100.0 / quota as f64)
    }

    /// This member's own NOSPACE alarm.
    pub fn own_alarm(&self) -> Option<String> {
        self.alarms().get(&self.node_id).cloned()
    }

    /// Every NOSPACE alarm this member knows of: its own, and its peers' while it leads.
    pub fn space_alarms(&self) -> BTreeMap<u64, String> {
        self.alarms().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The Raft term this member leads, if it is the leader.
    pub fn leader_term(&self) -> Option<u64> {
        let m = self.raft.metrics().borrow().clone();
        (m.state == ServerState::Leader).then_some(m.current_term)
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

    /// Why the Raft core stopped, if it did (a storage error, a fatal state); `None` while it runs.
    pub fn core_stopped(&self) -> Option<String> {
        self.raft.metrics().borrow().running_state.as_ref().err().map(|fatal| fatal.to_string())
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("HSDB shutdown: {e}");
        }
        let _ = self.db.flush_async().await;
    }
}

/// Keeps the node's `vmrm_hsdb_*` metrics in step with the member's Raft view, until the
/// member stops.
async fn report_metrics(raft: Raft) {
    let m = crate::metrics::metrics();
    let mut watch = raft.metrics();
    let mut leader = None;
    loop {
        let now = watch.borrow_and_update().clone();
        if now.current_leader.is_some() && now.current_leader != leader {
            if leader.is_some() {
                m.hsdb_leader_changes.inc();
            }
            leader = now.current_leader;
        }
        let index = |l: Option<openraft::LogId<u64>>| l.map_or(0, |l| l.index);
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.hsdb_leader.set(i64::from(now.state == ServerState::Leader));
        m.hsdb_term.set(gauge(now.current_term));
        m.hsdb_last_applied.set(gauge(index(now.last_applied)));
        m.hsdb_apply_lag.set(gauge(now.last_log_index.unwrap_or(0).saturating_sub(index(now.last_applied))));
        if watch.changed().await.is_err() {
            return;
        }
    }
}

pub fn leader_endpoint(raft: &Raft) -> Option<String> {
    let m = raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    m.membership_config.membership().get_node(&leader).map(|n| n.api.clone())
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
        assert!(err.contains("belongs to vmrm-hsdb-2 member 1, not member 2"), "{err}");
    }

    #[test]
    fn a_directory_of_an_older_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let old = Identity { format: "vmrm-hsdb-1".into(), node_id: 1 };
        write_marker(&dir.path().join(IDENTITY_FILE), &old).unwrap();
        let Err(err) = open_db(dir.path(), 1) else { panic!("an older format must be refused") };
        let err = err.to_string();
        assert!(err.contains("holds data of format vmrm-hsdb-1, which this vmrmd does not read"), "{err}");
    }

    #[test]
    fn a_database_that_lost_its_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_db(dir.path(), 1).expect("a fresh directory opens"));
        // What sled recovers from a damaged file: an empty database.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name() != Some(std::ffi::OsStr::new(IDENTITY_FILE)) {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        let Err(err) = open_db(dir.path(), 1) else { panic!("a database without its records must be refused") };
        assert!(err.to_string().contains("is damaged"), "{err}");
    }

    #[test]
    fn an_unreadable_identity_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_db(dir.path(), 1).expect("a fresh directory opens"));
        std::fs::write(dir.path().join(IDENTITY_FILE), b"\x00garbage").unwrap();
        let Err(err) = open_db(dir.path(), 1) else { panic!("garbage must be refused") };
        assert!(err.to_string().contains("unreadable vmrm-hsdb.json"), "{err}");
    }
}
