//! `ksysmgr remove ksyscluster NAME` (seed Example 3-89): destroys the configuration — host
//! groups, hosts, HMCs, VMs and their policies, affinity groups, SU clusters, MONJVs, contacts
//! and the monitoring rows of them — so the controllers watch nothing and a new cluster can be
//! built (or a snapshot restored) on the same HSDB. It refuses while an operation holds a VM's
//! lock or a recovery is unfinished, and without an explicit confirmation (`ksysmgr` asks and
//! offers a snapshot first). What stays: the event log and audit trail (history), the
//! snapshots (to restore from), and the VM locks, whose epochs must keep growing for fencing.
//! The cluster record goes last, so a removal cut short is finished by running it again.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::domain::names::ClusterName;
use crate::domain::{EventName, EventRecord, RecoveryTaskRecord};
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::VmLock;
use crate::hsdb::{Command, HsdbAccess, Table};
use crate::pb::Step;

/// What a removal deletes, in order: what refers to VMs and hosts first, the hosts' own rows,
/// then host groups, hosts and HMCs (the seed's teardown order, adapters aside).
const REMOVED: &[Table] = &[
    Table::Monjv,
    Table::SuCluster,
    Table::SuAlive,
    Table::Affinity,
    Table::App,
    Table::ShortMsg,
    Table::Trans,
    Table::VmHbMissed,
    Table::HmHealth,
    Table::RecoveryTask,
    Table::Vm,
    Table::Vios,
    Table::HostGroup,
    Table::Host,
    Table::Hmc,
    Table::Delivery,
    Table::Notify,
];

impl Config {
    pub async fn remove_cluster(&self, name: &ClusterName, confirmed: bool) -> Result<Vec<Step>> {
        let cluster = self.records.cluster().await?;
        if cluster.name != name.as_str() {
            return Err(VmrmError::not_found(format!(
                "ksyscluster {} does not exist; this cluster is {}",
                name.as_str(),
                cluster.name
            )));
        }
        if !confirmed {
            return Err(VmrmError::precondition(format!(
                "removing ksyscluster {} destroys its whole configuration: confirm it (ksysmgr asks, or -y; gRPC: confirm=true)",
                cluster.name
            )));
        }
        self.nothing_in_progress().await?;
        let mut lines = vec![say::cluster_removing()];
        for &table in REMOVED {
            for row in self.hsdb.read(table, None).await? {
                self.hsdb.write(Command::Delete { table, key: row.key }).await?;
            }
            match table {
                Table::HostGroup => lines.push(say::host_groups_deleted()),
                Table::Host => lines.push(say::hosts_deleted()),
                Table::Hmc => lines.push(say::hmcs_deleted()),
                _ => {}
            }
        }
        self.hsdb.delete::<crate::domain::ClusterRecord>("cluster").await?;
        let message = format!("ksyscluster {} and its configuration were removed", cluster.name);
        self.hsdb.append_event(&EventRecord::new(EventName::ConfigurationChanged, &cluster.name, message)).await?;
        lines.push(say::cluster_removed(&cluster.name));
        Ok(lines)
    }

    /// No VM's lock is held and every recovery has finished.
    async fn nothing_in_progress(&self) -> Result<()> {
        for row in self.hsdb.read(Table::Locked, None).await? {
            let lock: VmLock = serde_json::from_value(row.value).map_err(VmrmError::internal)?;
            if lock.is_held() {
                return Err(VmrmError::precondition(format!(
                    "VM {} is locked by an operation in progress ({}); remove the ksyscluster when it has ended",
                    lock.vm, lock.operation
                )));
            }
        }
        let tasks = self.hsdb.list::<RecoveryTaskRecord>().await?;
        if let Some(task) = tasks.iter().find(|t| !t.finished) {
            return Err(VmrmError::precondition(format!(
                "recovery {} of {} has not finished; remove the ksyscluster when it has",
                task.id, task.subject
            )));
        }
        Ok(())
    }
}
