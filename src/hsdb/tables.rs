//! The HSDB schema: one sled tree per table, rows as `{version, value}` JSON, keys as strings
//! (append-only tables use a big-endian sequence number so they sort in order).
//!
//! Every row written must be the table's record under its own key ([`Table::check_row`]): the
//! tables are read by every controller, and one row nobody can decode would stop them all.
use super::locks::VmLock;
use crate::domain::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use strum::{Display, EnumString, VariantArray};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Display, EnumString, VariantArray)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", parse_err_ty = String, parse_err_fn = unknown_table)]
pub enum Table {
    Cluster,
    Hmc,
    Host,
    HostGroup,
    Vios,
    Vm,
    HmHealth,
    VmHbMissed,
    Locked,
    Event,
    Affinity,
    RecoveryTask,
    ShortMsg,
    Trans,
    App,
    Monjv,
    SuCluster,
    SuAlive,
    Audit,
    Notify,
    Delivery,
    EventAck,
    Snapshot,
    Site,
    StorageAgent,
    ConsistencyGroup,
    FfdcIncident,
    FfdcBundle,
    FfdcChunk,
    FfdcNode,
    FfdcSettings,
}

fn unknown_table(s: &str) -> String {
    format!("unknown HSDB table `{s}`")
}

impl Table {
    /// The sled tree holding this table.
    pub fn tree_name(self) -> String {
        format!("table/{self}")
    }

    /// Keys of append-only tables are sequence numbers 1, 2, …; they are stored big-endian.
    pub fn is_append_only(self) -> bool {
        matches!(self, Table::Event | Table::Audit)
    }
}

impl Table {
    /// Refuses a row that is not this table's record stored under the record's own key. The
    /// lock table is written only by taking and freeing locks, the event log only by appending.
    pub fn check_row(self, key: &str, value: &serde_json::Value) -> Result<(), String> {
        match self {
            Table::Cluster => conforms::<ClusterRecord>(key, value),
            Table::Hmc => conforms::<HmcRecord>(key, value),
            Table::Host => conforms::<HostRecord>(key, value),
            Table::HostGroup => conforms::<HostGroupRecord>(key, value),
            Table::Vios => conforms::<ViosRecord>(key, value),
            Table::Vm => conforms::<VmRecord>(key, value),
            Table::HmHealth => conforms::<HmHealthRecord>(key, value),
            Table::VmHbMissed => conforms::<VmHbMissedRecord>(key, value),
            Table::Affinity => conforms::<AffinityGroupRecord>(key, value),
            Table::RecoveryTask => conforms::<RecoveryTaskRecord>(key, value),
            Table::ShortMsg => conforms::<ShortMsgRecord>(key, value),
            Table::Trans => conforms::<ArTransRecord>(key, value),
            Table::App => conforms::<AppRecord>(key, value),
            Table::Monjv => conforms::<MonjvRecord>(key, value),
            Table::SuCluster => conforms::<SuClusterRecord>(key, value),
            Table::SuAlive => conforms::<SuAliveRecord>(key, value),
            Table::Notify => conforms::<NotifyRecord>(key, value),
            Table::Delivery => conforms::<DeliveryRecord>(key, value),
            Table::EventAck => conforms::<AckRecord>(key, value),
            Table::Snapshot => conforms::<snapshot::SnapshotRecord>(key, value),
            Table::Site => conforms::<SiteRecord>(key, value),
            Table::StorageAgent => conforms::<StorageAgentRecord>(key, value),
            Table::ConsistencyGroup => conforms::<ConsistencyGroupRecord>(key, value),
            Table::FfdcIncident => conforms::<FfdcIncidentRecord>(key, value),
            Table::FfdcBundle => conforms::<FfdcBundleRecord>(key, value),
            Table::FfdcChunk => conforms::<FfdcChunkRecord>(key, value),
            Table::FfdcNode => conforms::<FfdcNodeRecord>(key, value),
            Table::FfdcSettings => conforms::<FfdcSettings>(key, value),
            Table::Locked | Table::Event | Table::Audit => Err(self.written_otherwise()),
        }
    }

    /// Refuses a row removal the table does not allow (see [`Table::check_row`]).
    pub fn check_delete(self) -> Result<(), String> {
        match self {
            Table::Locked | Table::Event | Table::Audit => Err(self.written_otherwise()),
            _ => Ok(()),
        }
    }

    /// Refuses an appended value that is not the append-only table's record.
    pub fn check_appended(self, value: &serde_json::Value) -> Result<(), String> {
        match self {
            Table::Event => EventRecord::deserialize(value).map(drop).map_err(|e| format!("not an event: {e}")),
            Table::Audit => AuditRecord::deserialize(value).map(drop).map_err(|e| format!("not an audit record: {e}")),
            _ => Err(format!("table {self} is not append-only; rows are put under their keys")),
        }
    }

    fn written_otherwise(self) -> String {
        match self {
            Table::Locked => "rows of table locked change only by taking and freeing a VM's lock".into(),
            _ => format!("table {self} is append-only: rows are appended, never put or deleted"),
        }
    }
}

/// The value decodes as `R` and `key` is the record's own key.
fn conforms<R: Record>(key: &str, value: &serde_json::Value) -> Result<(), String> {
    let record = R::deserialize(value).map_err(|e| format!("not a row of table {}: {e}", R::TABLE))?;
    let own = record.key();
    match own == key {
        true => Ok(()),
        false => Err(format!("the row of table {} under key `{key}` is the record of `{own}`", R::TABLE)),
    }
}

/// A row as stored: the value and the log index that last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRow {
    pub version: u64,
    pub value: serde_json::Value,
}

/// A typed record bound to its table and key.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    const TABLE: Table;
    fn key(&self) -> String;
}

macro_rules! record {
    ($ty:ty, $table:expr, $r:ident => $key:expr) => {
        impl Record for $ty {
            const TABLE: Table = $table;
            fn key(&self) -> String {
                let $r = self;
                $key
            }
        }
    };
}

record!(ClusterRecord, Table::Cluster, _r => "cluster".to_string());
record!(HmcRecord, Table::Hmc, r => r.name.clone());
record!(HostRecord, Table::Host, r => r.name.clone());
record!(HostGroupRecord, Table::HostGroup, r => r.name.clone());
record!(ViosRecord, Table::Vios, r => r.name.clone());
record!(VmRecord, Table::Vm, r => r.name.clone());
record!(HmHealthRecord, Table::HmHealth, r => r.vios_uuid.clone());
record!(VmLock, Table::Locked, r => r.vm.clone());
record!(AffinityGroupRecord, Table::Affinity, r => r.name.clone());
record!(RecoveryTaskRecord, Table::RecoveryTask, r => r.id.clone());
record!(ShortMsgRecord, Table::ShortMsg, r => r.vm_uuid.clone());
record!(ArTransRecord, Table::Trans, r => r.hs_tag.to_string());
record!(AppRecord, Table::App, r => AppRecord::key_of(&r.vm, &r.app.name));
record!(SuClusterRecord, Table::SuCluster, r => r.name.clone());
record!(SuAliveRecord, Table::SuAlive, r => r.host.clone());
record!(MonjvRecord, Table::Monjv, r => r.name.clone());
record!(NotifyRecord, Table::Notify, r => r.user.clone());
record!(AckRecord, Table::EventAck, _r => AckRecord::KEY.to_string());
record!(snapshot::SnapshotRecord, Table::Snapshot, r => r.name.clone());
record!(SiteRecord, Table::Site, r => r.name.clone());
record!(StorageAgentRecord, Table::StorageAgent, r => r.name.clone());
record!(ConsistencyGroupRecord, Table::ConsistencyGroup, r => r.host_group.clone());
record!(FfdcIncidentRecord, Table::FfdcIncident, r => r.id.clone());
record!(FfdcBundleRecord, Table::FfdcBundle, r => FfdcBundleRecord::key_of(&r.incident, &r.node));
record!(FfdcChunkRecord, Table::FfdcChunk, r => FfdcChunkRecord::key_of(&r.incident, &r.node, r.no));
record!(FfdcNodeRecord, Table::FfdcNode, r => r.node.clone());
record!(FfdcSettings, Table::FfdcSettings, _r => FfdcSettings::KEY.to_string());
record!(DeliveryRecord, Table::Delivery, r => DeliveryRecord::key_of(&r.user, &r.contact));
record!(VmHbMissedRecord, Table::VmHbMissed, r => VmHbMissedRecord::key_of(&r.vm_uuid, &r.vios_uuid));

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are on disk (sled trees, snapshots) and on the wire: they must not drift from
    /// the serde names.
    #[test]
    fn table_names_are_the_snake_case_names() {
        for table in Table::VARIANTS {
            assert_eq!(serde_json::to_value(table).unwrap(), table.to_string());
            assert_eq!(table.to_string().parse(), Ok(*table));
        }
        assert_eq!(Table::VmHbMissed.tree_name(), "table/vm_hb_missed");
        assert_eq!("widgets".parse::<Table>(), Err("unknown HSDB table `widgets`".into()));
    }

    /// The poison row of the review: a lock whose value is a number, which every later lock of
    /// the VM failed to decode inside `apply`.
    #[test]
    fn only_a_tables_own_records_under_their_own_keys_are_rows() {
        let err = Table::Locked.check_row("vm-1-1", &serde_json::json!(42)).unwrap_err();
        assert!(err.contains("only by taking and freeing"), "{err}");
        assert!(Table::Locked.check_delete().is_err());
        assert!(Table::Event.check_row("1", &serde_json::json!({})).is_err());
        assert!(Table::Event.check_delete().is_err());
        let err = Table::RecoveryTask.check_row("t", &serde_json::json!({"id": "t"})).unwrap_err();
        assert!(err.starts_with("not a row of table recovery_task"), "{err}");
        let alive = SuAliveRecord { host: "host-1".into(), incarnation: "i".into(), at_ms: 1 };
        let value = serde_json::to_value(&alive).unwrap();
        assert_eq!(Table::SuAlive.check_row("host-1", &value), Ok(()));
        let err = Table::SuAlive.check_row("host-2", &value).unwrap_err();
        assert_eq!(err, "the row of table su_alive under key `host-2` is the record of `host-1`");
        let event = EventRecord::new(EventName::VmFailureDetected, "vm-1", "down");
        assert_eq!(Table::Event.check_appended(&serde_json::to_value(&event).unwrap()), Ok(()));
        assert!(Table::Event.check_appended(&serde_json::json!("x")).is_err());
        assert!(Table::Vm.check_appended(&serde_json::to_value(&event).unwrap()).is_err());
    }
}
