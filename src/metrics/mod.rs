//! What a node tells Prometheus. One `vmrmd` process is one node, so the registry is the
//! process's own (as the default registries of Prometheus clients are): the places that count
//! — the HSDB member, the controller's event log, its recoveries — reach it without threading
//! a handle through every actor. [`endpoint`] serves it at `metrics_listen`.
//!
//! * `vmrm_events_total{event}`: events this node raised (HOST_FAILURE_DETECTED,
//!   RESTART_COMPLETED, LPM_COMPLETED …), counted once written to the HSDB.
//! * `vmrm_host_detection_seconds`: how long a host had been silent when it was declared
//!   failed — the detection time plus what the polling added.
//! * `vmrm_recovery_seconds`: from a recovery task's creation to its end, failovers included.
//! * `vmrm_lpm_pause_seconds`: how long each completed live migration paused its VM.
//! * `vmrm_service_serving{service}`: 1 while the node's gRPC service serves (0 once its role
//!   stopped, or while the HSDB's NOSPACE alarm holds it NOT_SERVING).
//! * `vmrm_hsdb_*`: the member's Raft view — leader or not, term, applied index, apply lag,
//!   leader changes seen, database size and the NOSPACE alarm.
//! * `vmrm_replication_*{group}` (a DR site's SAN): writes its secondary still lacks and how
//!   old the oldest is, and whether this SAN is the consistency group's writable primary.
//! * `vmrm_ffdc_total{what}`: FFDC capture requests this node sent and received, the bundles
//!   it stored (its own and for peers), handed to a peer or kept locally, and triggers it
//!   coalesced into an incident already open.
//! * `vmrm_node_info{node, roles}`: which node this is and the roles it plays.
pub mod endpoint;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::{LazyLock, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FfdcLabels {
    pub what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

/// The node's metrics.
pub struct Metrics {
    pub events: Family<EventLabels, Counter>,
    pub host_detection_seconds: Histogram,
    pub recovery_seconds: Histogram,
    pub lpm_pause_seconds: Histogram,
    pub service_serving: Family<ServiceLabels, Gauge>,
    pub hsdb_leader: Gauge,
    pub hsdb_term: Gauge,
    pub hsdb_last_applied: Gauge,
    pub hsdb_apply_lag: Gauge,
    pub hsdb_leader_changes: Counter,
    pub hsdb_size_bytes: Gauge,
    pub hsdb_nospace: Gauge,
    pub replication_lag_writes: Family<GroupLabels, Gauge>,
    pub replication_lag_ms: Family<GroupLabels, Gauge>,
    pub replication_writable_primary: Family<GroupLabels, Gauge>,
    pub ffdc: Family<FfdcLabels, Counter>,
    node_info: OnceLock<Vec<(String, String)>>,
}

/// Recoveries take from about a second (one VM) to minutes (a host group), and host detection
/// from a second (the fast profile) to minutes (the seed's): 0.25 s … 8.5 min.
const RECOVERY_BUCKETS: [f64; 12] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// A live migration's pause: from a millisecond (an idle guest) to seconds (one that gave up
/// converging and stopped to copy the rest): 1 ms … 4 s.
const PAUSE_BUCKETS: [f64; 13] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0];

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    events: Family::default(),
    host_detection_seconds: Histogram::new(RECOVERY_BUCKETS),
    recovery_seconds: Histogram::new(RECOVERY_BUCKETS),
    lpm_pause_seconds: Histogram::new(PAUSE_BUCKETS),
    service_serving: Family::default(),
    hsdb_leader: Gauge::default(),
    hsdb_term: Gauge::default(),
    hsdb_last_applied: Gauge::default(),
    hsdb_apply_lag: Gauge::default(),
    hsdb_leader_changes: Counter::default(),
    hsdb_size_bytes: Gauge::default(),
    hsdb_nospace: Gauge::default(),
    replication_lag_writes: Family::default(),
    replication_lag_ms: Family::default(),
    replication_writable_primary: Family::default(),
    ffdc: Family::default(),
    node_info: OnceLock::new(),
});

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Counts event `name` raised.
    pub fn event(&self, name: impl std::fmt::Display) {
        self.events.get_or_create(&EventLabels { event: name.to_string() }).inc();
    }

    /// Counts one FFDC step of this node (`requests_sent`, `bundles_stored` …).
    pub fn ffdc(&self, what: &'static str) {
        self.ffdc.get_or_create(&FfdcLabels { what }).inc();
    }

    /// Notes whether gRPC service `service` serves.
    pub fn serving(&self, service: &str, serving: bool) {
        self.service_serving.get_or_create(&ServiceLabels { service: service.into() }).set(i64::from(serving));
    }

    /// Notes a consistency group's replication as this SAN sees it.
    pub fn replication(&self, group: &str, (lag_writes, lag_ms): (u64, u64), writable_primary: bool) {
        let labels = GroupLabels { group: group.into() };
        self.replication_lag_writes.get_or_create(&labels).set(lag_writes.min(i64::MAX as u64) as i64);
        self.replication_lag_ms.get_or_create(&labels).set(lag_ms.min(i64::MAX as u64) as i64);
        self.replication_writable_primary.get_or_create(&labels).set(i64::from(writable_primary));
    }

    /// Names the node and its roles (once; later calls change nothing).
    pub fn describe_node(&self, node: &str, roles: &[String]) {
        let _ = self.node_info.set(vec![("node".into(), node.into()), ("roles".into(), roles.join(","))]);
    }

    /// A registry over these metrics, for one scrape's encoding.
    fn registry(&'static self) -> Registry {
        let mut r = Registry::with_prefix("vmrm");
        r.register("events", "Events this node raised, by name", self.events.clone());
        r.register(
            "host_detection_seconds",
            "Hosts' silence when declared failed",
            self.host_detection_seconds.clone(),
        );
        r.register("recovery_seconds", "Recovery tasks, creation to end", self.recovery_seconds.clone());
        r.register("lpm_pause_seconds", "Pauses of completed live migrations", self.lpm_pause_seconds.clone());
        r.register("service_serving", "1 while the gRPC service serves", self.service_serving.clone());
        r.register("hsdb_leader", "1 while this HSDB member is the DBN", self.hsdb_leader.clone());
        r.register("hsdb_term", "The member's Raft term", self.hsdb_term.clone());
        r.register("hsdb_last_applied", "Last log index the member applied", self.hsdb_last_applied.clone());
        r.register("hsdb_apply_lag", "Log entries the member holds but has not applied", self.hsdb_apply_lag.clone());
        r.register("hsdb_leader_changes", "DBN changes the member saw", self.hsdb_leader_changes.clone());
        r.register("hsdb_size_bytes", "The member's database on disk", self.hsdb_size_bytes.clone());
        r.register("hsdb_nospace", "1 while the member's NOSPACE alarm is raised", self.hsdb_nospace.clone());
        r.register("replication_lag_writes", "Writes the secondary SAN lacks", self.replication_lag_writes.clone());
        r.register(
            "replication_lag_ms",
            "Age of the oldest write the secondary lacks",
            self.replication_lag_ms.clone(),
        );
        r.register(
            "replication_writable_primary",
            "1 while this SAN is the group's primary and accepts writes",
            self.replication_writable_primary.clone(),
        );
        r.register("ffdc", "FFDC requests, bundles and coalesced triggers of this node", self.ffdc.clone());
        if let Some(labels) = self.node_info.get() {
            r.register("node", "This node and its roles", Info::new(labels.clone()));
        }
        r
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&'static self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry());
        out
    }
}
