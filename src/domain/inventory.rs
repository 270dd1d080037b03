//! Inventory records as the controller stores them in the HSDB (seed objects: ksyscluster,
//! HMC, host, host_group, VIOS, VM) and the health rows host monitors write.
use super::detection::{DetectionSettings, DetectionSpeed};
use super::policy::{FlexCapacity, HaMonitor, RestartPolicy};
use super::recovery::RestartProgress;
use super::state::{Priority, VmState, VmStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub cluster_type: String,
    pub ksysnodes: Vec<String>,
    /// The system level of the detection settings.
    #[serde(default)]
    pub detection: DetectionSettings,
    /// The global `ha_monitor` switch (seed default: disable).
    #[serde(default)]
    pub ha_monitor: HaMonitor,
    /// Who is told of events, and how (seed: `notification_level`, `dup_event_processing`).
    #[serde(default)]
    pub notification: super::notify::NotificationSettings,
    /// When discovery runs by itself (seed: `auto_discovery_time`).
    #[serde(default)]
    pub discovery: super::policy::DiscoverySchedule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HmcRecord {
    pub name: String,
    /// The HMC's gRPC endpoint.
    pub ip: String,
    pub login: String,
    /// Kept for the HMC session; never printed or logged.
    pub password: String,
    /// Its site in a DR cluster (the hosts it manages are there too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub uuid: String,
    /// HMCs that manage the host, in the order they are tried.
    pub hmcs: Vec<String>,
    pub host_group: Option<String>,
    pub vios: Vec<String>,
    pub cpu_total: u32,
    pub memory_total_mb: u64,
    pub san_key: u64,
    /// The SAN endpoint the host's VMs write through.
    pub san: String,
    #[serde(default)]
    pub ha_monitor: HaMonitor,
    /// Its site in a DR cluster (its HMCs'), and its pair at the other site: where its VMs
    /// restart when their host group moves there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostGroupRecord {
    pub name: String,
    pub hosts: Vec<String>,
    /// The FDE of a host group starts after its first successful discovery (seed).
    pub discovered: bool,
    #[serde(default)]
    pub detection: DetectionSettings,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub capacity: FlexCapacity,
    #[serde(default)]
    pub ha_monitor: HaMonitor,
    /// The ViodiskID of its repository disk, as given when it was added (seed: `repo_disk=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_disk: Option<String>,
    /// The ViodiskID of its HA disk (seed: `ha_disk=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha_disk: Option<String>,
    /// When it was last discovered deep (by hand, or at `auto_discovery_time`) and quick
    /// (ms since the Unix epoch; 0: never).
    #[serde(default)]
    pub last_deep_ms: i64,
    #[serde(default)]
    pub last_quick_ms: i64,
    /// In a DR cluster: the site it runs at now (its `hosts` are there; their pairs at the
    /// other site take its VMs when it moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViosRecord {
    pub name: String,
    pub uuid: String,
    pub host: String,
    pub endpoint: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmRecord {
    pub name: String,
    pub uuid: String,
    /// The host the VM runs on (or last ran on).
    pub host: String,
    pub homehost: String,
    pub cpu: u32,
    pub memory_mb: u64,
    pub disk: String,
    pub priority: Priority,
    pub managed: bool,
    pub state: VmState,
    pub vm_status: VmStatus,
    /// Raised by every operation that takes the VM's lock; a writer holding an older epoch is refused.
    pub epoch: u64,
    /// The VM's own `vm_failure_detection_speed`; `None` follows its host group.
    #[serde(default)]
    pub vm_failure_detection_speed: Option<DetectionSpeed>,
    #[serde(default)]
    pub ha_monitor: HaMonitor,
    /// Hosts this VM is never restarted on (seed: `blacklist_hosts`).
    #[serde(default)]
    pub blacklist_hosts: Vec<String>,
    /// The VM's part of its latest recovery task.
    #[serde(default)]
    pub restart: Option<RestartProgress>,
    /// Restarts on its own host for a critical application since it last moved (seed:
    /// `VM_restart_count`, at most `VM_max_restart_count` 3).
    #[serde(default)]
    pub vm_restart_count: u32,
    /// The VM's running live migration: where to, and the HMC job that runs it (for a cancel).
    #[serde(default)]
    pub lpm: Option<LpmJob>,
    /// Its permanent VM index, as discovery found its definition (`None`: any free id).
    #[serde(default)]
    pub permanent_index: Option<u32>,
    /// Its network identity at each site as the administrator set it (DR, seed:
    /// `vmr_dr_ip_conf`), and the map from host serial to identity its definition carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_identities: BTreeMap<String, super::NetworkIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<super::GuestIdentity>,
}

/// A live migration in progress, as the controller that started it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LpmJob {
    pub target: String,
    pub hmc: String,
    pub job_id: u64,
}

impl VmRecord {
    /// A VM discovery found running on `host` for the first time: managed, at home there,
    /// with the seed's defaults, `INIT` until verified.
    pub fn discovered(def: &super::LparDefinition, host: &str) -> Self {
        Self {
            name: def.name.clone(),
            uuid: def.uuid.clone(),
            host: host.into(),
            homehost: host.into(),
            cpu: def.cpu,
            memory_mb: def.memory_mb,
            disk: def.disk.clone(),
            priority: Priority::default(),
            managed: true,
            state: VmState::Init,
            vm_status: VmStatus::NoOperationInProgress,
            epoch: 0,
            vm_failure_detection_speed: None,
            ha_monitor: None,
            blacklist_hosts: Vec::new(),
            restart: None,
            vm_restart_count: 0,
            lpm: None,
            permanent_index: def.permanent_index,
            site_identities: BTreeMap::new(),
            identities: def.identities.clone(),
        }
    }

    /// The partition definition a restart activates: the VM's own, with the entitlement the
    /// restart gives it, under the restart's fencing epoch.
    pub fn definition(&self, cpu: u32, memory_mb: u64, fence: u64) -> super::LparDefinition {
        super::LparDefinition {
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            cpu,
            memory_mb,
            disk: self.disk.clone(),
            permanent_index: self.permanent_index,
            fence,
            isolated: false,
            identities: self.identities.clone(),
        }
    }

    /// A managed VM at rest on its home host `host`, 2 CPU / 4 GiB: the unit tests' usual VM.
    #[cfg(test)]
    pub fn at_rest(name: &str, host: &str) -> Self {
        let def = super::LparDefinition {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            cpu: 2,
            memory_mb: 4096,
            disk: format!("{name}-rootvg"),
            permanent_index: None,
            fence: 0,
            isolated: false,
            identities: Vec::new(),
        };
        Self { state: VmState::ReadyToMove, epoch: 1, ..Self::discovered(&def, host) }
    }
}

/// A host monitor's liveness row (seed: the HM's `vioHmHb` into the HSDB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HmHealthRecord {
    pub vios: String,
    pub vios_uuid: String,
    pub host: String,
    pub incarnation: String,
    pub last_heartbeat_ms: i64,
    /// Its last row, written as the VIOS was shut down on purpose (the CAA reason SHUTDOWN
    /// its peers see): DOWN at once, and not a failure while its partition is Not Activated.
    #[serde(default)]
    pub shut_down: bool,
}

/// One host monitor missing one VM's heartbeats since `missed_since_ms` (seed: `map.vmHbMissed`).
/// Written on the MISSING transition, deleted when heartbeats come back. With `suspended` the
/// agent stopped cleanly (seed: `SHDN`, the VM SUSPENDED): no heartbeats are expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmHbMissedRecord {
    pub vm: String,
    pub vm_uuid: String,
    pub vios_uuid: String,
    pub host: String,
    pub missed_since_ms: i64,
    #[serde(default)]
    pub suspended: bool,
}

impl VmHbMissedRecord {
    pub fn key_of(vm_uuid: &str, vios_uuid: &str) -> String {
        format!("{vm_uuid}/{vios_uuid}")
    }
}
