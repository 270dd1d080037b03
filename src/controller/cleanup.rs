//! `ksysmgr cleanup host_group NAME`: a host that failed keeps the definitions of the VMs that
//! were restarted elsewhere (seed: "stale definitions … all 00000000"). Once it is back, this
//! removes every definition that is not running and whose VM the controller knows runs on
//! another host, and forgets the monitors' rows about VMs that left their hosts.
use super::core::ControllerCore;
use super::lines::Lines;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::{HsdbAccess, Record};
use crate::pb::{RemoveLpar, submit_job_request::Job};
use std::collections::BTreeMap;

impl ControllerCore {
    pub async fn cleanup(&self, group_name: &str) -> Result<Vec<String>> {
        let (group, _) = self.host_group(group_name).await?;
        let vms: BTreeMap<String, VmRecord> =
            self.hsdb.list::<VmRecord>().await?.into_iter().map(|v| (v.name.clone(), v)).collect();
        let out = Lines::default();
        out.push(format!("Cleanup started for Host_group {group_name}"));
        let mut removed = 0;
        for name in &group.hosts {
            let host = self.host(name).await?;
            let Ok(inv) = self.host_inventory(&host).await else {
                out.step(format!("Host {name} is not reachable through its HMCs; skipped"));
                continue;
            };
            let stale = inv
                .lpars
                .iter()
                .filter(|l| l.state != LparState::Running.as_str())
                .filter_map(|l| l.definition.as_ref().map(|d| d.name.clone()))
                .filter(|lpar| {
                    vms.get(lpar).is_some_and(|vm| vm.host != *name && vm.vm_status == VmStatus::NoOperationInProgress)
                });
            for lpar in stale {
                let job = Job::Remove(RemoveLpar { host: name.clone(), lpar: lpar.clone() });
                match self.run_job(&host, job).await {
                    Ok(()) => {
                        removed += 1;
                        out.step(format!("Removed stale definition of VM {} from host {name}", lpar));
                    }
                    Err(e) => {
                        out.step(format!("ERROR: stale definition of VM {} on host {name} not removed: {e}", lpar))
                    }
                }
            }
        }
        for row in self.hsdb.list::<VmHbMissedRecord>().await? {
            if vms.get(&row.vm).is_some_and(|vm| vm.host != row.host) {
                self.hsdb.delete::<VmHbMissedRecord>(&row.key()).await?;
            }
        }
        out.push(format!("Cleanup has finished for {group_name}: {removed} stale definition(s) removed"));
        Ok(out.take())
    }
}
