//! Source-side cleanup (seed: `CLEAN_LPARS`). A host that failed keeps the definitions of the
//! VMs that were restarted elsewhere (seed: "stale definitions … all 00000000"); a copy that
//! crashed when the SAN fenced it still holds its CPU and memory, and one that was cut off may
//! even still run. Once the host is back, every definition whose VM the HSDB places on another
//! host is shut down and removed, so no VM runs twice and the host's capacity is free again.
//!
//! The FDE runs it by itself when a host's VIOS comes back (seed: "CEC IS UP, READY FOR
//! RELOCATION"); `ksysmgr cleanup host_group NAME` runs it on every host of a group, and in a
//! DR cluster on their pairs too: a site that was lost and returned after the group moved away
//! holds the stale definitions its boot lists restarted.
use crate::controller::lines::Lines;
use crate::controller::messages as say;
use crate::controller::recovery::Recovery;
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, Record};
use crate::pb::{self, states::WireEnum};
use crate::pb::{RemoveLpar, submit_job_request::Job};
use std::collections::BTreeMap;

/// A definition on `host` is stale when its VM is known to run on another host and no
/// operation on it is in progress (a restart or move decides for itself).
pub fn is_stale(lpar: &str, host: &str, vms: &BTreeMap<String, VmRecord>) -> bool {
    vms.get(lpar).is_some_and(|vm| vm.host != host && vm.vm_status == VmStatus::NoOperationInProgress)
}

impl Recovery {
    pub async fn cleanup(&self, group_name: &str) -> Result<Vec<crate::pb::Step>> {
        let (group, _) = self.records.host_group(group_name).await?;
        let out = Lines::default();
        out.push(say::cleanup_started(group_name));
        let mut removed = 0;
        let mut hosts = group.hosts.clone();
        for name in &group.hosts {
            hosts.extend(self.records.host(name).await?.pair);
        }
        for name in &hosts {
            match self.clean_lpars(name, &out).await {
                Ok(n) => removed += n,
                Err(e) => out.step(say::cleanup_host_skipped(name, e)),
            }
        }
        out.push(say::cleanup_finished(group_name, removed));
        Ok(out.take())
    }

    /// Removes the stale definitions of one host and forgets the monitors' rows about VMs that
    /// left it; returns how many definitions went. An error leaves the rest for the next try.
    pub async fn clean_lpars(&self, host_name: &str, out: &Lines) -> Result<usize> {
        let host = self.records.host(host_name).await?;
        let inv = self.hmc.host_inventory(&host).await?;
        if inv.state() != pb::HostState::Operating {
            let state = HostState::from_wire("the HMC's host state", inv.state)?;
            return Err(VmrmError::unavailable(format!("host {host_name} is {state}")));
        }
        let vms: BTreeMap<String, VmRecord> =
            self.hsdb.list::<VmRecord>().await?.into_iter().map(|v| (v.name.clone(), v)).collect();
        let stale: Vec<String> = inv
            .lpars
            .iter()
            .filter_map(|l| l.definition.as_ref().map(|d| d.name.clone()))
            .filter(|lpar| is_stale(lpar, host_name, &vms))
            .collect();
        for lpar in &stale {
            // Under the epoch the VM's record has now: if the partition was placed there by a
            // later operation than this controller knows of, the host refuses.
            let fence = vms.get(lpar).map_or(0, |vm| vm.epoch);
            let job = Job::Remove(RemoveLpar { host: host_name.to_string(), lpar: lpar.clone(), fence });
            self.hmc.run_job(&host, job).await.inspect_err(|e| {
                out.step(say::stale_definition_not_removed(lpar, host_name, e));
            })?;
            out.step(say::stale_definition_removed(lpar, host_name));
        }
        for row in self.hsdb.list::<VmHbMissedRecord>().await? {
            if row.host == host_name && vms.get(&row.vm).is_some_and(|vm| vm.host != row.host) {
                self.hsdb.delete::<VmHbMissedRecord>(&row.key()).await?;
            }
        }
        Ok(stale.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(host: &str, vm_status: VmStatus) -> VmRecord {
        VmRecord { host: host.into(), homehost: "host-1".into(), vm_status, ..VmRecord::at_rest("vm-1", "host-1") }
    }

    #[test]
    fn only_a_vm_known_elsewhere_and_at_rest_is_stale() {
        let mut vms = BTreeMap::new();
        vms.insert("vm-1".to_string(), vm("host-2", VmStatus::NoOperationInProgress));
        assert!(is_stale("vm-1", "host-1", &vms), "runs on host-2: the copy on host-1 is stale");
        assert!(!is_stale("vm-1", "host-2", &vms), "its own host");
        assert!(!is_stale("unknown", "host-1", &vms), "a partition the controller does not manage");
        vms.insert("vm-1".to_string(), vm("host-2", VmStatus::RestartInProgress));
        assert!(!is_stale("vm-1", "host-1", &vms), "a restart in progress decides for itself");
    }
}
