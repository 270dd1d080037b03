//! A DR test (seed: `Dr Test State`): `ksysmgr move host_group HG to=SITE dr_test=yes` starts
//! a test copy of each VM on its host's pair at the other site, from a point-in-time copy of
//! the replica (test disks of their own), on an isolated network — production runs on where it
//! is, and its replication goes on into the replica. `ksysmgr cleanup host_group HG dr_test=yes`
//! removes the test copies and discards their disks.
use super::Dr;
use crate::controller::messages as say;
use crate::domain::identity::{disk_for_vm, uuid_for};
use crate::domain::names::{HostGroupName, SiteName};
use crate::domain::*;
use crate::error::{Result, VmrmError};
use crate::pb::{self, ActivateLpar, RemoveLpar, ShutdownLpar, submit_job_request::Job};

impl Dr {
    pub async fn start_test(&self, group: &HostGroupName, site: &SiteName) -> Result<Vec<pb::Step>> {
        let (name, site) = (group.as_str(), site.as_str());
        let (group, sides) = self.replicated(name, site, "a DR test").await?;
        if group.site.as_deref() == Some(site) {
            return Err(VmrmError::precondition(format!(
                "host_group {name} runs at site {site}: its DR test runs at the other site"
            )));
        }
        if let Some(test) = &sides.record.dr_test {
            return Err(VmrmError::precondition(format!(
                "a DR test of host_group {name} runs at {} already",
                test.site
            )));
        }
        if let Some(target) = &sides.record.moving {
            return Err(VmrmError::precondition(format!("host_group {name} is being moved to {target}")));
        }
        let pairs = self.pairs(&group).await?;
        let vms = self.group_vms(&group).await?;
        let copies: Vec<(VmRecord, String)> = vms
            .into_iter()
            .filter_map(|vm| {
                let pair = pairs.iter().find(|(h, _)| h.name == vm.host)?.1.clone();
                Some((vm, pair))
            })
            .collect();
        let test = DrTest {
            site: site.to_string(),
            started_ms: crate::now_ms(),
            copies: copies.iter().map(|(vm, host)| (test_copy_of(&vm.name), host.clone())).collect(),
        };
        self.set_test(name, Some(test)).await?;
        let mut out = vec![say::dr_test_started(name, site)];
        let copy = match self.san.test_copy(&sides.secondary.endpoint, name, false).await {
            Ok(copy) => copy,
            Err(e) => {
                self.set_test(name, None).await?;
                return Err(VmrmError::unavailable(format!(
                    "no point-in-time copy of host_group {name} at storage agent {}: {e}; no DR test runs",
                    sides.secondary.name
                )));
            }
        };
        out.push(say::dr_test_copy(name, &sides.secondary.name, copy.consistent_at_ms));
        let mut started = 0;
        for (vm, host) in &copies {
            let copy = test_copy_of(&vm.name);
            let definition = LparDefinition {
                name: copy.clone(),
                uuid: uuid_for("vm", &copy),
                cpu: vm.cpu,
                memory_mb: vm.memory_mb,
                disk: disk_for_vm(&copy),
                permanent_index: None,
                fence: 0,
                isolated: true,
                identities: Vec::new(),
            };
            let run = async {
                let target = self.records.host(host).await?;
                let job = Job::Activate(ActivateLpar { host: host.clone(), definition: Some(definition.into()) });
                self.hmc.run_job(&target, job).await
            };
            match run.await {
                Ok(()) => {
                    started += 1;
                    out.push(say::dr_test_vm_started(&copy, &vm.name, host));
                }
                Err(e) => out.push(say::dr_test_vm_error(&copy, e)),
            }
        }
        out.push(say::dr_test_running(started, copies.len(), name, site));
        Ok(out)
    }

    /// `cleanup host_group HG dr_test=yes`: the test copies go, then their disks.
    pub async fn end_test(&self, group: &HostGroupName) -> Result<Vec<pb::Step>> {
        let name = group.as_str();
        let sides = self.sides(name).await?;
        let (sides, test) = match sides {
            Some(s) => match s.record.dr_test.clone() {
                Some(test) => (s, test),
                None => return Err(VmrmError::precondition(format!("no DR test of host_group {name} runs"))),
            },
            None => return Err(VmrmError::precondition(format!("no DR test of host_group {name} runs"))),
        };
        let mut out = Vec::new();
        for (copy, host) in &test.copies {
            let removed = async {
                let target = self.records.host(host).await?;
                let shutdown = ShutdownLpar { host: host.clone(), lpar: copy.clone(), immediate: true, fence: 0 };
                // A copy that already stopped (or never started) has nothing to shut down.
                let _ = self.hmc.run_job(&target, Job::Shutdown(shutdown)).await;
                let remove = RemoveLpar { host: host.clone(), lpar: copy.clone(), fence: 0 };
                self.hmc.run_job(&target, Job::Remove(remove)).await
            };
            match removed.await {
                Ok(()) => out.push(say::dr_test_vm_removed(copy, host)),
                Err(e) if e.code() == tonic::Code::NotFound => out.push(say::dr_test_vm_removed(copy, host)),
                Err(e) => {
                    return Err(VmrmError::unavailable(format!(
                        "DR test copy {copy} on {host} was not removed: {e}; run the cleanup again"
                    )));
                }
            }
        }
        self.san.test_copy(&sides.secondary.endpoint, name, true).await?;
        self.set_test(name, None).await?;
        out.push(say::dr_test_ended(name));
        Ok(out)
    }

    async fn set_test(&self, group: &str, test: Option<DrTest>) -> Result<()> {
        self.change_record(group, |r| r.dr_test = test.clone()).await
    }
}
