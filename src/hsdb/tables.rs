//! The HSDB schema: one sled tree per table, rows as `{version, value}` JSON, keys as strings
//! (append-only tables use a big-endian sequence number so they sort in order).
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
        matches!(self, Table::Event)
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
}
