//! Plain data the controller reasons about: inventory records as stored in the HSDB, VM and
//! LPAR states with the seed's names, and the event catalogue. No I/O here.
pub mod app;
pub mod audit;
pub mod detection;
pub mod event;
pub mod ffdc;
pub mod guest_identity;
pub mod hex;
pub mod identity;
pub mod inventory;
pub mod lpar;
pub mod millis;
pub mod monjv;
pub mod names;
pub mod notify;
pub mod policy;
pub mod recovery;
pub mod site;
pub mod snapshot;
pub mod state;
pub mod su_cluster;

pub use app::{AppRecord, AppsReply, ArTransRecord, RESYNC_APPS_COMMAND, ShortMsgRecord, decode_apps, encode_apps};
pub use audit::{AuditRecord, AuditStage};
pub use detection::{DetectionSettings, DetectionSpeed};
pub use event::{AckRecord, EventName, EventRecord, Severity};
pub use ffdc::{
    FfdcBundleRecord, FfdcChunkRecord, FfdcIncidentRecord, FfdcNodeRecord, FfdcSettings, FfdcTrigger, IncidentState,
};
pub use guest_identity::{GuestIdentity, NetworkIdentity};
pub use inventory::*;
pub use lpar::LparDefinition;
pub use monjv::{MonjvKind, MonjvRecord};
pub use notify::{
    Contact, ContactKind, DeliveryRecord, NotificationLevel, NotificationSettings, Notified, NotifyRecord,
};
pub use policy::{
    AffinityGroupRecord, AffinityKind, DiscoverySchedule, FlexCapacity, HaMonitor, HaMonitorLevels, PriorityPercent,
    RestartPolicy,
};
pub use recovery::{PlannedRestart, RecoveryTaskRecord, RestartCause, RestartPhase, RestartProgress};
pub use site::{ConsistencyGroupRecord, DrTest, SiteRecord, SiteType, StorageAgentRecord, test_copy_of};
pub use state::{HostState, LparState, Priority, VmState, VmStatus};
pub use su_cluster::{SuAliveRecord, SuClusterRecord, SuClusterStatus, UnitHeartbeat};
