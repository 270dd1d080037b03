//! The FFDC module of one node (seed 003 FIG. 7). It registers the node for captures, watches
//! its own path to the HSDB, and for a trigger opens the incident in the HSDB *before* asking
//! anyone (seed: the primary notification node writes first), captures its own bundle and asks
//! every other expected node once; a node asked never asks others. A node that cannot reach
//! the HSDB hands its bundle to a reachable peer, which stores it for it (seed §2.7: the CKE
//! hands the reporting to a peer's FFDC module); one that reaches nobody keeps it on its disk
//! and uploads it once its path is back.
use super::bundle::{NodeFacts, capture};
use super::store::{self, Opened, Stored};
use crate::domain::{FfdcIncidentRecord, FfdcNodeRecord, FfdcSettings, FfdcTrigger, IncidentState};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, LocalHsdb, RemoteHsdb};
use crate::logic::ffdc::{self as decide, opening};
use crate::pb::{self, ffdc_client::FfdcClient};
use crate::transport::{ChannelPool, deadline};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the node looks at its path to the HSDB (and refreshes what it caches).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Looks in a row that fail before the node opens an HSDB_LOSS incident.
pub const HSDB_MISSES: u32 = 3;
/// Incidents the node remembers having captured for (a repeated request stores nothing).
const HANDLED_KEPT: usize = 1024;
/// Bundles kept on disk while nothing is reachable; the oldest go first.
const STAGED_KEPT: usize = 16;
/// Tries to store a bundle in the HSDB before handing it to a peer, and the first pause
/// between them (doubling).
const STORE_ATTEMPTS: u32 = 4;
const STORE_RETRY_FIRST: Duration = Duration::from_millis(500);
/// Triggers remembered for coalescing on the node itself (a storm does not reach the HSDB).
const RECENT_KEPT: usize = 256;
/// The longest incident id taken from the wire.
const ID_MAX: usize = 200;
/// Most nodes an incident from the wire may expect.
const EXPECTED_MAX: usize = 10_000;

/// One node's FFDC module; cheap to clone.
#[derive(Clone)]
pub struct FfdcModule {
    inner: Arc<Inner>,
}

struct Inner {
    facts: NodeFacts,
    endpoint: String,
    hsdb: RemoteHsdb,
    /// The node's own HSDB member, if it is one (its bundle shows the member's state).
    member: Option<LocalHsdb>,
    pool: ChannelPool,
    rpc_deadline: Duration,
    staging: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    settings: FfdcSettings,
    /// The registrations as last read (whom to ask, whom to hand a report to).
    nodes: Vec<FfdcNodeRecord>,
    registered: bool,
    misses: u32,
    handled: VecDeque<String>,
    /// When this node last raised each trigger on each subject.
    recent: BTreeMap<(FfdcTrigger, String), i64>,
}

/// What the node did for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    AlreadyStored,
    DelegatedTo(String),
    KeptLocally,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stored => f.write_str("stored"),
            Self::AlreadyStored => f.write_str("already stored"),
            Self::DelegatedTo(peer) => write!(f, "delegated to {peer}"),
            Self::KeptLocally => f.write_str("kept locally"),
        }
    }
}

/// A bundle waiting on disk for the HSDB (or a peer) to be reachable again.
#[derive(serde::Serialize, serde::Deserialize)]
struct Staged {
    incident: FfdcIncidentRecord,
    bundle: Vec<u8>,
    truncated: bool,
    captured_at_ms: i64,
}

impl FfdcModule {
    pub fn new(
        facts: NodeFacts,
        endpoint: String,
        hsdb: RemoteHsdb,
        member: Option<LocalHsdb>,
        pool: ChannelPool,
        rpc_deadline: Duration,
        data_dir: &std::path::Path,
    ) -> Self {
        let inner = Inner {
            facts,
            endpoint,
            hsdb,
            member,
            pool,
            rpc_deadline,
            staging: data_dir.join("ffdc").join("staging"),
            state: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn node(&self) -> &str {
        &self.inner.facts.node
    }

    pub fn hsdb(&self) -> &RemoteHsdb {
        &self.inner.hsdb
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings as last read.
    pub fn settings(&self) -> FfdcSettings {
        self.state().settings.clone()
    }

    /// Registers the node, then watches its path to the HSDB until the process ends.
    pub fn start(&self) {
        let module = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WATCH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                module.watch_once().await;
            }
        });
    }

    /// One look: register if not yet, refresh the settings and registrations; after
    /// [`HSDB_MISSES`] failed looks open an HSDB_LOSS incident; once the path is back, upload
    /// what was kept and contribute to the open incidents this node missed.
    async fn watch_once(&self) {
        let registered = self.state().registered;
        let looked = async {
            if !registered {
                self.register().await?;
            }
            let settings = store::settings(&self.inner.hsdb).await?;
            let nodes = self.inner.hsdb.list::<FfdcNodeRecord>().await?;
            Ok::<_, VmrmError>((settings, nodes))
        };
        match looked.await {
            Ok((settings, nodes)) => {
                let healed = {
                    let mut s = self.state();
                    let healed = !s.registered || s.misses >= HSDB_MISSES;
                    (s.settings, s.nodes, s.registered, s.misses) = (settings, nodes, true, 0);
                    healed
                };
                if healed {
                    self.contribute_late().await;
                }
                self.upload_staged().await;
            }
            Err(e) => {
                let misses = {
                    let mut s = self.state();
                    s.misses += 1;
                    s.misses
                };
                if misses == HSDB_MISSES {
                    tracing::warn!(node = %self.node(), "the HSDB is not reachable: {e}");
                    // The subject is the HSDB: nodes that lose it together make one incident.
                    self.report(FfdcTrigger::HsdbLoss, "hsdb", &format!("{} cannot reach the HSDB: {e}", self.node()));
                }
            }
        }
    }

    async fn register(&self) -> Result<()> {
        let record = FfdcNodeRecord {
            node: self.node().into(),
            endpoint: self.inner.endpoint.clone(),
            roles: self.inner.facts.roles.clone(),
            incarnation: self.inner.facts.incarnation.clone(),
            registered_at_ms: crate::now_ms(),
            left: false,
            failed_at_ms: None,
        };
        self.inner.hsdb.put(&record).await?;
        tracing::info!(node = %self.node(), "registered for FFDC captures");
        Ok(())
    }

    /// Says the node leaves on purpose (a graceful stop): incidents stop expecting it.
    pub async fn leave(&self) {
        let Some(mut record) = self.state().nodes.iter().find(|n| n.node == self.node()).cloned() else { return };
        record.left = true;
        if let Err(e) = self.inner.hsdb.put(&record).await {
            tracing::warn!(node = %self.node(), "leaving FFDC captures not recorded: {e}");
        }
    }

    /// Opens an incident for `trigger` on `subject` unless it is disabled or coalesced into
    /// one already open; captures this node's bundle and asks every other expected node.
    /// Returns the incident (new or joined), or `None` when the trigger is disabled.
    pub async fn trigger(&self, trigger: FfdcTrigger, subject: &str, detail: &str) -> Result<Option<Opened>> {
        let settings = self.settings();
        if !settings.enabled(trigger) {
            return Ok(None);
        }
        let now = crate::now_ms();
        let window_ms = i64::try_from(settings.coalesce_secs * 1000).unwrap_or(i64::MAX);
        let opening = opening(trigger, subject, now, window_ms);
        let nodes = match self.inner.hsdb.list::<FfdcNodeRecord>().await {
            Ok(nodes) => nodes,
            Err(_) => self.state().nodes.clone(),
        };
        let incident = FfdcIncidentRecord {
            id: opening.id.clone(),
            trigger,
            subject: subject.into(),
            origin: self.node().into(),
            opened_by: self.node().into(),
            detail: detail.chars().take(1024).collect(),
            detected_at_ms: now,
            deadline_ms: now + i64::try_from(settings.deadline_secs * 1000).unwrap_or(i64::MAX),
            expected: decide::expected(&nodes),
            state: IncidentState::Open,
            missing: Vec::new(),
            bytes: 0,
        };
        match store::open(&self.inner.hsdb, &opening, incident.clone(), window_ms).await {
            Ok(Opened::New(incident)) => {
                tracing::info!(incident = %incident.id, "FFDC incident opened: {trigger} of {subject}");
                self.ask_all(&incident, &[]);
                let (module, mine) = (self.clone(), incident.clone());
                tokio::spawn(async move { module.capture_for(mine, true).await });
                Ok(Some(Opened::New(incident)))
            }
            Ok(Opened::Joined(stored)) => {
                crate::metrics::metrics().ffdc("coalesced");
                tracing::debug!(incident = %stored.id, "{trigger} of {subject} coalesced into an open incident");
                Ok(Some(Opened::Joined(stored)))
            }
            Err(e) => {
                tracing::warn!("FFDC incident {} not opened in the HSDB: {e}", incident.id);
                let outcome = self.capture_for(incident.clone(), false).await;
                tracing::info!(incident = %incident.id, "FFDC bundle {outcome}");
                Ok(Some(Opened::New(incident)))
            }
        }
    }

    /// Raises `trigger` on `subject` without waiting: a trigger this node raised on the same
    /// subject within the coalescing window is counted and dropped here, so a storm of failures
    /// (every guest I/O failing while the SAN is away) costs the HSDB nothing.
    pub fn report(&self, trigger: FfdcTrigger, subject: &str, detail: &str) {
        let now = crate::now_ms();
        let window_ms = i64::try_from(self.settings().coalesce_secs * 1000).unwrap_or(i64::MAX);
        {
            let mut s = self.state();
            let key = (trigger, subject.to_string());
            if s.recent.get(&key).is_some_and(|at| now - at < window_ms) {
                crate::metrics::metrics().ffdc("coalesced");
                return;
            }
            if s.recent.len() >= RECENT_KEPT {
                s.recent.retain(|_, at| now - *at < window_ms);
            }
            if s.recent.len() < RECENT_KEPT {
                s.recent.insert(key, now);
            }
        }
        let (module, subject, detail) = (self.clone(), subject.to_string(), detail.to_string());
        tokio::spawn(async move {
            if let Err(e) = module.trigger(trigger, &subject, &detail).await {
                tracing::warn!("FFDC incident {trigger} of {subject} not opened: {e}");
            }
        });
    }

    /// Asks every expected node but this one and `except` to capture for `incident`, once
    /// each, without waiting for them.
    fn ask_all(&self, incident: &FfdcIncidentRecord, except: &[&str]) {
        self.ask(incident, |node| node != self.node() && !except.contains(&node));
    }

    /// Asks the incident's expected nodes that `whom` picks to capture for it, once each,
    /// without waiting for them (the DBN relays an incident whose opener's requests were lost).
    pub fn ask(&self, incident: &FfdcIncidentRecord, whom: impl Fn(&str) -> bool) {
        let nodes = self.state().nodes.clone();
        let json = serde_json::to_vec(incident).unwrap_or_default();
        for peer in nodes.iter().filter(|n| incident.expected.contains(&n.node) && whom(&n.node)) {
            let (pool, endpoint, timeout) = (self.inner.pool.clone(), peer.endpoint.clone(), self.inner.rpc_deadline);
            let req = pb::CaptureRequest { incident_id: incident.id.clone(), incident: json.clone() };
            let name = peer.node.clone();
            crate::metrics::metrics().ffdc("requests_sent");
            tokio::spawn(async move {
                let asked = async {
                    let mut client = FfdcClient::new(pool.get(&endpoint)?);
                    Ok::<_, VmrmError>(client.capture(deadline(req, timeout * 4)).await?)
                };
                if let Err(e) = asked.await {
                    tracing::info!("FFDC capture request to {name} failed: {e}");
                }
            });
        }
    }

    /// A peer's request to capture for an incident.
    pub async fn on_capture(&self, req: pb::CaptureRequest) -> Result<Outcome> {
        crate::metrics::metrics().ffdc("requests_received");
        check_id(&req.incident_id)?;
        let sent: FfdcIncidentRecord = parse_incident(&req.incident)?;
        if sent.id != req.incident_id {
            return Err(VmrmError::invalid("the capture request names another incident than it carries"));
        }
        let incident = match self.inner.hsdb.get::<FfdcIncidentRecord>(&req.incident_id).await {
            Ok(Some((stored, _))) => stored,
            Ok(None) => return Err(VmrmError::not_found(format!("no FFDC incident {} is stored", req.incident_id))),
            Err(_) => sent,
        };
        Ok(self.capture_for(incident, true).await)
    }

    /// Captures this node's bundle for `incident` once, and stores it: in the HSDB, else
    /// through a peer, else on disk.
    async fn capture_for(&self, incident: FfdcIncidentRecord, try_hsdb: bool) -> Outcome {
        {
            let mut s = self.state();
            if s.handled.contains(&incident.id) {
                return Outcome::AlreadyStored;
            }
            if s.handled.len() == HANDLED_KEPT {
                s.handled.pop_front();
            }
            s.handled.push_back(incident.id.clone());
        }
        let cap = self.settings().bundle_cap(incident.expected.len());
        let (bundle, truncated) = capture(&self.inner.facts, &incident, self.inner.member.as_ref(), cap).await;
        let now = crate::now_ms();
        if try_hsdb {
            // An election (a DBN lost) lasts a second or two: the store is tried again, backing
            // off, before the bundle goes to a peer.
            let who = (incident.id.as_str(), self.node(), self.node());
            let mut pause = STORE_RETRY_FIRST;
            for attempt in 1..=STORE_ATTEMPTS {
                match store::store_bundle(&self.inner.hsdb, who, &bundle, truncated, now).await {
                    Ok(Stored::Stored) => {
                        crate::metrics::metrics().ffdc("bundles_stored");
                        return Outcome::Stored;
                    }
                    Ok(Stored::AlreadyStored) => return Outcome::AlreadyStored,
                    Err(e) => {
                        tracing::info!(incident = %incident.id, "FFDC bundle not stored in the HSDB (attempt {attempt}): {e}")
                    }
                }
                if attempt < STORE_ATTEMPTS {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        let staged = Staged { incident, bundle, truncated, captured_at_ms: now };
        match self.delegate(&staged).await {
            Some(peer) => Outcome::DelegatedTo(peer),
            None => {
                self.stage(&staged);
                Outcome::KeptLocally
            }
        }
    }

    /// Hands `staged` to the first registered peer that stores it.
    async fn delegate(&self, staged: &Staged) -> Option<String> {
        let peers: Vec<FfdcNodeRecord> =
            self.state().nodes.iter().filter(|n| n.node != self.node() && n.expected()).cloned().collect();
        let req = pb::DelegateRequest {
            incident: serde_json::to_vec(&staged.incident).unwrap_or_default(),
            bundle: staged.bundle.clone(),
            captured_at_ms: staged.captured_at_ms,
            node: self.node().into(),
            truncated: staged.truncated,
        };
        for peer in peers {
            let handed = async {
                let mut client = FfdcClient::new(self.inner.pool.get(&peer.endpoint)?);
                Ok::<_, VmrmError>(client.delegate(deadline(req.clone(), self.inner.rpc_deadline * 4)).await?)
            };
            match handed.await {
                Ok(_) => {
                    crate::metrics::metrics().ffdc("bundles_delegated");
                    tracing::info!(incident = %staged.incident.id, "FFDC bundle handed to {}", peer.node);
                    return Some(peer.node);
                }
                Err(e) => tracing::info!("FFDC bundle not handed to {}: {e}", peer.node),
            }
        }
        None
    }

    /// A peer that cannot reach the HSDB hands its bundle: opens the incident if it is not
    /// stored (then asks the others, as its opener), and stores the bundle captured by this
    /// node on behalf of `node`.
    pub async fn on_delegate(&self, caller: Option<&str>, req: pb::DelegateRequest) -> Result<Outcome> {
        let node = crate::domain::names::NodeName::parse(&req.node)?;
        if let Some(caller) = caller.filter(|c| *c != node.as_str()) {
            return Err(VmrmError::denied(format!("{caller} may hand over only its own FFDC bundle, not {node}'s")));
        }
        let incident = parse_incident(&req.incident)?;
        let cap = self.settings().bundle_cap(incident.expected.len());
        if req.bundle.len() > cap {
            return Err(VmrmError::invalid(format!(
                "a bundle of {} bytes exceeds the per-node cap of {cap} bytes",
                req.bundle.len()
            )));
        }
        let opened = FfdcIncidentRecord { opened_by: self.node().into(), ..incident };
        let window_ms = i64::try_from(self.settings().coalesce_secs * 1000).unwrap_or(i64::MAX);
        let opening = decide::Opening { id: opened.id.clone(), previous: None };
        let incident = match store::open(&self.inner.hsdb, &opening, opened, window_ms).await? {
            Opened::New(incident) => {
                tracing::info!(incident = %incident.id, "FFDC incident opened for {node}, which cannot reach the HSDB");
                self.ask_all(&incident, &[node.as_str()]);
                let module = self.clone();
                let mine = incident.clone();
                tokio::spawn(async move { module.capture_for(mine, true).await });
                incident
            }
            Opened::Joined(incident) => incident,
        };
        let who = (incident.id.as_str(), node.as_str(), self.node());
        let stored = store::store_bundle(&self.inner.hsdb, who, &req.bundle, req.truncated, req.captured_at_ms).await?;
        crate::metrics::metrics().ffdc("bundles_stored_for_peers");
        Ok(match stored {
            Stored::Stored => Outcome::Stored,
            Stored::AlreadyStored => Outcome::AlreadyStored,
        })
    }

    fn stage(&self, staged: &Staged) {
        let kept = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.inner.staging)?;
            let mut files = staged_files(&self.inner.staging);
            while files.len() >= STAGED_KEPT {
                std::fs::remove_file(files.remove(0))?;
            }
            let name = format!("{}.json", staged.incident.id);
            std::fs::write(self.inner.staging.join(name), serde_json::to_vec(staged)?)
        };
        match kept() {
            Ok(()) => {
                crate::metrics::metrics().ffdc("bundles_kept_locally");
                tracing::warn!(incident = %staged.incident.id, "FFDC bundle kept locally until the HSDB is reachable");
            }
            Err(e) => tracing::error!(incident = %staged.incident.id, "FFDC bundle lost: it could not be kept: {e}"),
        }
    }

    /// Uploads the bundles kept on disk: opens each incident if it is not stored yet (and asks
    /// the others), then stores the bundle.
    async fn upload_staged(&self) {
        for path in staged_files(&self.inner.staging) {
            let Some(staged) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Staged>(&b).ok()) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let opening = decide::Opening { id: staged.incident.id.clone(), previous: None };
            let uploaded = async {
                if let Opened::New(incident) =
                    store::open(&self.inner.hsdb, &opening, staged.incident.clone(), 0).await?
                {
                    self.ask_all(&incident, &[]);
                }
                let who = (staged.incident.id.as_str(), self.node(), self.node());
                store::store_bundle(&self.inner.hsdb, who, &staged.bundle, staged.truncated, staged.captured_at_ms)
                    .await
            };
            match uploaded.await {
                Ok(_) => {
                    tracing::info!(incident = %staged.incident.id, "FFDC bundle kept locally is uploaded");
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    tracing::info!(incident = %staged.incident.id, "FFDC bundle kept locally not uploaded yet: {e}");
                    return;
                }
            }
        }
    }

    /// Captures for the open incidents that expect this node and lack its bundle (it was
    /// stopped or cut off when they were opened).
    async fn contribute_late(&self) {
        let Ok(incidents) = store::incidents(&self.inner.hsdb).await else { return };
        for incident in incidents.into_iter().filter(|i| i.state == IncidentState::Open) {
            if !incident.expected.iter().any(|n| n == self.node()) {
                continue;
            }
            if let Ok(false) = store::has_bundle(&self.inner.hsdb, &incident.id, self.node()).await {
                tracing::info!(incident = %incident.id, "contributing late to an open FFDC incident");
                self.capture_for(incident, true).await;
            }
        }
    }
}

/// The files kept on disk, oldest first (ids sort by time).
fn staged_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// An incident id from the wire: a row key and a file name, never a path.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= ID_MAX
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !id.starts_with('.');
    match ok {
        true => Ok(()),
        false => Err(VmrmError::invalid(format!("`{}` is not an FFDC incident id", crate::error::quote(id)))),
    }
}

/// An incident record from the wire, checked: its id, its expected nodes' names and count.
fn parse_incident(bytes: &[u8]) -> Result<FfdcIncidentRecord> {
    let incident: FfdcIncidentRecord =
        serde_json::from_slice(bytes).map_err(|e| VmrmError::invalid(format!("not an FFDC incident: {e}")))?;
    check_id(&incident.id)?;
    if incident.expected.len() > EXPECTED_MAX {
        return Err(VmrmError::invalid(format!("an FFDC incident may expect at most {EXPECTED_MAX} nodes")));
    }
    crate::domain::names::NodeName::all(&incident.expected)?;
    crate::domain::names::NodeName::parse(&incident.origin)?;
    let unique: BTreeSet<&String> = incident.expected.iter().collect();
    if unique.len() != incident.expected.len() {
        return Err(VmrmError::invalid("an FFDC incident names an expected node twice"));
    }
    // Its times bound how long it stays open (an open incident is never evicted): detected no
    // later than a minute from now, due within the longest deadline a setting allows.
    let latest_deadline = *crate::domain::ffdc::DEADLINE_SECS.end() as i64 * 1000;
    if incident.detected_at_ms > crate::now_ms() + 60_000
        || !(incident.detected_at_ms..=incident.detected_at_ms + latest_deadline).contains(&incident.deadline_ms)
    {
        return Err(VmrmError::invalid(format!(
            "FFDC incident {} is detected in the future or due outside {} s of its detection",
            incident.id,
            crate::domain::ffdc::DEADLINE_SECS.end()
        )));
    }
    Ok(FfdcIncidentRecord { state: IncidentState::Open, missing: Vec::new(), bytes: 0, ..incident })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_from_the_wire_cannot_stay_open_for_ever() {
        let now = crate::now_ms();
        let json = |detected: i64, deadline: i64| {
            serde_json::json!({
                "id": "20261205-000000.000-manual-ctl-1", "trigger": "manual", "subject": "ctl-1",
                "origin": "ctl-1", "opened_by": "ctl-1", "detail": "", "detected_at_ms": detected,
                "deadline_ms": deadline, "expected": ["ctl-1", "ctl-2"], "state": "COMPLETE", "bytes": 7
            })
            .to_string()
        };
        let ok = parse_incident(json(now, now + 30_000).as_bytes()).unwrap();
        assert_eq!((ok.state, ok.bytes), (IncidentState::Open, 0), "what it says of itself is not taken");
        for (detected, deadline) in [(now, now + 700_000), (now, now - 1), (now + 3_600_000, now + 3_600_000)] {
            let e = parse_incident(json(detected, deadline).as_bytes()).unwrap_err();
            assert!(matches!(e, VmrmError::InvalidArgument(_)), "{e:?}");
        }
        let twice = json(now, now).replace(r#"["ctl-1","ctl-2"]"#, r#"["ctl-1","ctl-1"]"#);
        assert!(parse_incident(twice.as_bytes()).unwrap_err().to_string().contains("twice"));
        assert!(parse_incident(b"{}").is_err());
    }

    #[test]
    fn ids_from_the_wire_are_keys_never_paths() {
        assert!(check_id("20261205-033100.000-manual-ctl-1").is_ok());
        for bad in ["", "../etc/passwd", "a/b", ".hidden", &"x".repeat(201), "a b"] {
            assert!(matches!(check_id(bad), Err(VmrmError::InvalidArgument(_))), "{bad}");
        }
    }
}
