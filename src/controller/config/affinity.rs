//! `ksysmgr add|modify|query|delete collocation|anticollocation|workgroup NAME vm=…` (seed 000
//! §3.3). The groups as they would be after the change are checked as a whole
//! ([`check_affinity`]) before anything is written.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::domain::names::AffinityGroupName;
use crate::domain::policy::add_names;
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::logic::policy::check_affinity;

/// What an affinity command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AffinityChange {
    Add(Vec<String>),
    /// `policy=add` (true) or `policy=delete` of these VMs.
    Members(bool, Vec<String>),
    Delete,
}

impl Config {
    pub async fn change_affinity(
        &self,
        kind: AffinityKind,
        name: &AffinityGroupName,
        change: AffinityChange,
    ) -> Result<Vec<crate::pb::Step>> {
        let name = name.as_str();
        let mut groups = self.hsdb.list_versioned::<AffinityGroupRecord>().await?;
        let at = groups.iter().position(|(g, _)| g.name == name);
        let existing = |at: Option<usize>| {
            at.filter(|&i| groups[i].0.kind == kind)
                .ok_or_else(|| VmrmError::not_found(format!("{kind} group {} does not exist", quote(name))))
        };
        let (record, version, line) = match change {
            AffinityChange::Add(vms) => {
                if let Some(i) = at {
                    return Err(VmrmError::AlreadyExists(format!(
                        "{} group {name} already exists",
                        groups[i].0.kind.title()
                    )));
                }
                self.check_vms_exist(&vms).await?;
                let record = AffinityGroupRecord { name: name.to_string(), kind, vms };
                groups.push((record.clone(), 0));
                (Some(record), 0, say::affinity_group_created(kind.title(), name))
            }
            AffinityChange::Members(add, vms) => {
                let i = existing(at)?;
                self.check_vms_exist(&vms).await?;
                let group = &mut groups[i].0;
                match add {
                    true => add_names(&mut group.vms, &vms),
                    false => {
                        if let Some(missing) = vms.iter().find(|v| !group.vms.contains(v)) {
                            return Err(VmrmError::not_found(format!("VM {missing} is not in {kind} group {name}")));
                        }
                        group.vms.retain(|v| !vms.contains(v));
                    }
                }
                (Some(group.clone()), groups[i].1, say::affinity_group_modified(kind.title(), name))
            }
            AffinityChange::Delete => {
                let i = existing(at)?;
                let (_, version) = groups.remove(i);
                (None, version, say::affinity_group_removed(kind.title(), name))
            }
        };
        if let Some(record) = &record {
            let all: Vec<AffinityGroupRecord> = groups.into_iter().map(|(g, _)| g).collect();
            check_affinity(&all, &self.records.priorities().await?).map_err(VmrmError::precondition)?;
            self.hsdb.put_if_version(record, version).await?;
        } else {
            self.hsdb.delete::<AffinityGroupRecord>(name).await?;
        }
        Ok(vec![line])
    }

    async fn check_vms_exist(&self, vms: &[String]) -> Result<()> {
        if vms.is_empty() {
            return Err(VmrmError::invalid("name the VMs: vm=VM1,VM2,..."));
        }
        for vm in vms {
            self.records.vm(vm).await?;
        }
        Ok(())
    }

    /// The affinity groups of `kind` (all kinds with `None`), or the one named.
    pub async fn query_affinity(&self, kind: Option<AffinityKind>, name: &str) -> Result<Vec<AffinityGroupRecord>> {
        let groups: Vec<AffinityGroupRecord> = self
            .hsdb
            .list::<AffinityGroupRecord>()
            .await?
            .into_iter()
            .filter(|g| kind.is_none_or(|k| g.kind == k) && (name.is_empty() || g.name == name))
            .collect();
        if groups.is_empty() && !name.is_empty() {
            let what = kind.map_or("affinity", Into::into);
            return Err(VmrmError::not_found(format!("{what} group {} does not exist", quote(name))));
        }
        Ok(groups)
    }
}
