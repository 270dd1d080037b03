//! The HSDB schema: one sled tree per table, rows as `{version, value}` JSON, keys as strings
//! (append-only tables use a big-endian sequence number so they sort in order).
use super::locks::VmLock;
use crate::domain::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
}

impl Table {
    pub const ALL: [Table; 18] = [
        Table::Cluster,
        Table::Hmc,
        Table::Host,
        Table::HostGroup,
        Table::Vios,
        Table::Vm,
        Table::HmHealth,
        Table::VmHbMissed,
        Table::Locked,
        Table::Event,
        Table::Affinity,
        Table::RecoveryTask,
        Table::ShortMsg,
        Table::Trans,
        Table::App,
        Table::Monjv,
        Table::SuCluster,
        Table::SuAlive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Cluster => "cluster",
            Table::Hmc => "hmc",
            Table::Host => "host",
            Table::HostGroup => "host_group",
            Table::Vios => "vios",
            Table::Vm => "vm",
            Table::HmHealth => "hm_health",
            Table::VmHbMissed => "vm_hb_missed",
            Table::Locked => "locked",
            Table::Event => "event",
            Table::Affinity => "affinity",
            Table::RecoveryTask => "recovery_task",
            Table::ShortMsg => "short_msg",
            Table::Trans => "trans",
            Table::App => "app",
            Table::Monjv => "monjv",
            Table::SuCluster => "su_cluster",
            Table::SuAlive => "su_alive",
        }
    }

    /// The sled tree holding this table.
    pub fn tree_name(self) -> String {
        format!("table/{}", self.as_str())
    }

    /// Keys of append-only tables are sequence numbers 1, 2, …; they are stored big-endian.
    pub fn is_append_only(self) -> bool {
        matches!(self, Table::Event)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Table {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown HSDB table `{s}`"))
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
record!(VmHbMissedRecord, Table::VmHbMissed, r => VmHbMissedRecord::key_of(&r.vm_uuid, &r.vios_uuid));
