//! FFDC's cluster-wide duties, run by the active controller (the DBN's, seed 003's primary
//! notification node) once a second: it watches the registered nodes — one that stops
//! answering opens NODE_FAILED (a surviving node originates it, the failed one is missing),
//! one that registers opens NODE_ADDED, one that leaves NODE_REMOVED, once the ksyscluster
//! exists —, opens DBN_CHANGED when
//! it takes over from another DBN, settles incidents COMPLETE or PARTIAL (raising an event),
//! evicts the oldest beyond the quota, runs the periodic collection and watches the HSDB's
//! size against its threshold. The decisions are in [`crate::logic::ffdc`].
use super::module::FfdcModule;
use super::store;
use crate::domain::{
    ClusterRecord, EventName, EventRecord, FfdcBundleRecord, FfdcIncidentRecord, FfdcNodeRecord, FfdcTrigger,
    IncidentState,
};
use crate::error::Result;
use crate::hsdb::{HsdbAccess, LocalHsdb};
use crate::logic::ffdc::{self as decide, Liveness, Probed, Threshold};
use crate::transport::ChannelPool;
use futures::StreamExt as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How often the active controller does its FFDC duties.
pub const COORDINATE_EVERY: Duration = Duration::from_secs(1);
/// Probes in a row a registered node misses before it is failed.
pub const PROBE_MISSES: u32 = 3;
/// How long after the ksyscluster is created new registrations are still only learned: the
/// nodes deployed with it register within their first seconds.
const STARTUP_QUIET_MS: i64 = 10_000;
/// Nodes probed at once.
const PROBES_AT_ONCE: usize = 64;

pub struct Coordinator {
    module: FfdcModule,
    member: LocalHsdb,
    pool: ChannelPool,
    probe_deadline: Duration,
    liveness: Liveness,
    /// Each registered node's incarnation and whether it had left, as last seen.
    seen: BTreeMap<String, (String, bool)>,
    first_look: bool,
    threshold: Threshold,
    leading: bool,
    /// The DBN this member saw last while it did not lead.
    leader_before: Option<u64>,
    /// The open incidents this DBN relayed (asked their missing nodes again).
    relayed: BTreeSet<String>,
    /// Registrations are only learned until then: `i64::MAX` while no ksyscluster exists, a
    /// moment after this DBN saw it created.
    quiet_until: Option<i64>,
}

impl Coordinator {
    pub fn new(module: FfdcModule, member: LocalHsdb, pool: ChannelPool, rpc_deadline: Duration) -> Self {
        Self {
            module,
            member,
            pool,
            probe_deadline: rpc_deadline.min(Duration::from_secs(1)),
            liveness: Liveness::default(),
            seen: BTreeMap::new(),
            first_look: true,
            threshold: Threshold::default(),
            leading: false,
            leader_before: None,
            relayed: BTreeSet::new(),
            quiet_until: None,
        }
    }

    /// Runs until the process ends.
    pub async fn run(mut self) {
        let mut every = tokio::time::interval(COORDINATE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.pass().await;
        }
    }

    async fn pass(&mut self) {
        let node = self.member.node();
        let m = node.raft.metrics().borrow().clone();
        if m.state != openraft::ServerState::Leader {
            if m.current_leader.is_some() {
                self.leader_before = m.current_leader;
            }
            (self.leading, self.first_look, self.liveness) = (false, true, Liveness::default());
            self.relayed.clear();
            return;
        }
        if !self.leading {
            self.leading = true;
            if let Some(before) = self.leader_before.filter(|b| *b != node.node_id) {
                let detail = format!(
                    "HSDB member {} ({}) is the DBN in term {}; member {before} was",
                    node.node_id,
                    self.module.node(),
                    m.current_term
                );
                self.open(FfdcTrigger::DbnChanged, self.module.node(), &detail).await;
            }
        }
        if let Err(e) = self.duties().await {
            tracing::debug!("FFDC duties not done this time: {e}");
        }
    }

    async fn open(&self, trigger: FfdcTrigger, subject: &str, detail: &str) {
        if let Err(e) = self.module.trigger(trigger, subject, detail).await {
            tracing::warn!("FFDC incident {trigger} of {subject} not opened: {e}");
        }
    }

    async fn duties(&mut self) -> Result<()> {
        let settings = store::settings(&self.member).await?;
        let bundles = store::bundles(&self.member).await?;
        let incidents = self.settle(&bundles).await?;
        self.evict(&settings, &incidents, &bundles).await?;
        // Until the ksyscluster exists, and for a moment after it was created here, the nodes
        // are only coming up: their registrations are learned, not incidents.
        let configured = self.member.get::<ClusterRecord>("cluster").await?.is_some();
        let now = crate::now_ms();
        self.quiet_until = match (configured, self.quiet_until) {
            (false, _) => Some(i64::MAX),
            (true, Some(i64::MAX)) => Some(now + STARTUP_QUIET_MS),
            (true, until) => until.filter(|u| now < *u),
        };
        let nodes = self.member.list_versioned::<FfdcNodeRecord>().await?;
        let records: Vec<FfdcNodeRecord> = nodes.iter().map(|(n, _)| n.clone()).collect();
        let learning = self.first_look || self.quiet_until.is_some();
        let changes = decide::membership_changes(&self.seen, &records, learning);
        self.seen = records.iter().map(|n| (n.node.clone(), (n.incarnation.clone(), n.left))).collect();
        self.first_look = false;
        if !configured {
            return Ok(());
        }
        for (trigger, node) in changes {
            let detail = match trigger {
                FfdcTrigger::NodeRemoved => format!("node {node} left the cluster"),
                _ => format!("node {node} registered"),
            };
            self.open(trigger, &node, &detail).await;
        }
        self.watch_nodes(nodes).await;
        let period = i64::try_from(settings.periodic_secs * 1000).unwrap_or(i64::MAX);
        if decide::periodic_due(&incidents, now, period) {
            let detail = format!("periodic collection every {} s", settings.periodic_secs);
            self.open(FfdcTrigger::Periodic, "cluster", &detail).await;
        }
        if let Some(pct) = self.member.node().used_pct()
            && self.threshold.observe(pct, settings.hsdb_threshold_pct, settings.hysteresis_pct)
        {
            let detail = format!(
                "the HSDB uses {pct:.1} % of its quota on member {} (threshold {} %)",
                self.member.node().node_id,
                settings.hsdb_threshold_pct
            );
            self.open(FfdcTrigger::ResourceThreshold, "hsdb", &detail).await;
        }
        Ok(())
    }

    /// Probes every registered node that has not left (not this one): a node failed after
    /// [`PROBE_MISSES`] is marked failed and opens NODE_FAILED; one answering again is
    /// expected again and opens NODE_ADDED.
    async fn watch_nodes(&mut self, nodes: Vec<(FfdcNodeRecord, u64)>) {
        let registered: BTreeSet<String> = nodes.iter().map(|(n, _)| n.node.clone()).collect();
        self.liveness.retain(&registered);
        let me = self.module.node().to_string();
        let this = &*self;
        let probed: Vec<(FfdcNodeRecord, u64, bool)> =
            futures::stream::iter(nodes.into_iter().filter(|(n, _)| !n.left && n.node != me))
                .map(|(n, version)| async move {
                    let answered = this.answers(&n.endpoint).await;
                    (n, version, answered)
                })
                .buffer_unordered(PROBES_AT_ONCE)
                .collect()
                .await;
        let mut failed = Vec::new();
        for (mut record, version, answered) in probed {
            match self.liveness.probe(&record.node, answered, PROBE_MISSES) {
                Some(Probed::Failed) => failed.push((record, version)),
                Some(Probed::Back) => {
                    let node = record.node.clone();
                    record.failed_at_ms = None;
                    self.mark(&record, version).await;
                    self.open(FfdcTrigger::NodeAdded, &node, &format!("node {node} answers again")).await;
                }
                None => {}
            }
        }
        if failed.is_empty() {
            return;
        }
        // The nodes found failed together (a host's server unit and VIOSs) make one incident,
        // which still expects them (they are its missing nodes); later ones do not.
        failed.sort_by(|a, b| a.0.node.cmp(&b.0.node));
        let names: Vec<&str> = failed.iter().map(|(r, _)| r.node.as_str()).collect();
        let detail = format!("{} missed {PROBE_MISSES} probes in a row", names.join(", "));
        self.open(FfdcTrigger::NodeFailed, &names.join("+"), &detail).await;
        for (mut record, version) in failed {
            record.failed_at_ms = Some(crate::now_ms());
            self.mark(&record, version).await;
        }
    }

    async fn mark(&self, record: &FfdcNodeRecord, version: u64) {
        if let Err(e) = self.member.put_if_version(record, version).await {
            tracing::info!("FFDC registration of {} not updated: {e}", record.node);
        }
    }

    async fn answers(&self, endpoint: &str) -> bool {
        let Ok(channel) = self.pool.get(endpoint) else { return false };
        let req = crate::transport::deadline(tonic_health::pb::HealthCheckRequest::default(), self.probe_deadline);
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let check = client.check(req);
        matches!(tokio::time::timeout(self.probe_deadline, check).await, Ok(Ok(_)))
    }

    /// Settles the incidents whose nodes all contributed or whose deadline passed, each with an
    /// event (the management tool's notification, seed FIG. 7 step 7.11); returns them all.
    async fn settle(&mut self, bundles: &[FfdcBundleRecord]) -> Result<Vec<FfdcIncidentRecord>> {
        let incidents = self.member.list_versioned::<FfdcIncidentRecord>().await?;
        let now = crate::now_ms();
        let mut all = Vec::with_capacity(incidents.len());
        for (incident, version) in incidents {
            let mine: Vec<_> = bundles.iter().filter(|b| b.incident == incident.id).collect();
            let contributed: BTreeSet<String> = mine.iter().map(|b| b.node.clone()).collect();
            let Some((state, missing)) = decide::settle(&incident, &contributed, now) else {
                self.relay(&incident, &contributed, now);
                all.push(incident);
                continue;
            };
            let bytes = mine.iter().map(|b| b.bytes).sum();
            let settled = FfdcIncidentRecord { state, missing, bytes, ..incident };
            if self.member.put_if_version(&settled, version).await.is_ok() {
                let (name, how) = match state {
                    IncidentState::Partial => {
                        (EventName::FfdcIncidentPartial, format!("missing {}", settled.missing.join(", ")))
                    }
                    _ => (EventName::FfdcIncidentCompleted, "complete".to_string()),
                };
                let message = format!(
                    "FFDC incident {} ({} of {}): {} of {} nodes contributed, {}",
                    settled.id,
                    settled.trigger,
                    settled.subject,
                    contributed.len(),
                    settled.expected.len(),
                    how
                );
                tracing::info!("{message}");
                self.member.append_event(&EventRecord::new(name, settled.id.clone(), message)).await?;
            }
            all.push(settled);
        }
        store::oldest_first(&mut all);
        let open: BTreeSet<&String> = all.iter().filter(|i| i.state == IncidentState::Open).map(|i| &i.id).collect();
        self.relayed.retain(|id| open.contains(id));
        Ok(all)
    }

    /// Halfway to its deadline an open incident still missing nodes is relayed once: the DBN
    /// asks them itself (seed 003: the primary notification node forwards to every node), so
    /// an opener that died before its requests went out loses nobody's bundle.
    fn relay(&mut self, incident: &FfdcIncidentRecord, contributed: &BTreeSet<String>, now: i64) {
        let due = decide::relay_due(incident, contributed, now);
        if due && self.relayed.insert(incident.id.clone()) {
            let me = self.module.node().to_string();
            tracing::info!(incident = %incident.id, "relaying an FFDC incident to the nodes that have not contributed");
            self.module.ask(incident, |n| n != me && !contributed.contains(n));
        }
    }

    /// Evicts the oldest settled incidents beyond the quota.
    async fn evict(
        &self,
        settings: &crate::domain::FfdcSettings,
        incidents: &[FfdcIncidentRecord],
        bundles: &[FfdcBundleRecord],
    ) -> Result<()> {
        let sizes: Vec<(String, IncidentState, u64)> = incidents
            .iter()
            .map(|i| {
                let bytes = bundles.iter().filter(|b| b.incident == i.id).map(|b| b.bytes).sum();
                (i.id.clone(), i.state, bytes)
            })
            .collect();
        for id in decide::evictions(&sizes, settings.quota_mib << 20) {
            let Some(incident) = incidents.iter().find(|i| i.id == id) else { continue };
            store::evict(&self.member, incident, bundles).await?;
            tracing::info!(incident = %id, "FFDC incident evicted: the incidents exceed the quota of {} MiB", settings.quota_mib);
        }
        Ok(())
    }
}
