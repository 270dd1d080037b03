//! `ksysmgr discover site SITE [verify=yes]` (seed 000 §6.5): every host group that runs at the
//! site is discovered, then its storage state synchronized (its replication set up or brought
//! up to date with the VMs found), and with `verify=yes` verified — the seed's lines around
//! each host group's own.
use super::Dr;
use crate::controller::messages as say;
use crate::domain::names::SiteName;
use crate::domain::*;
use crate::error::Result;
use crate::hsdb::HsdbAccess;
use crate::pb::Step;

impl Dr {
    pub async fn discover_site(&self, site: &SiteName, verify: bool) -> Result<Vec<Step>> {
        let site = site.as_str();
        self.config.dr_cluster("discover site").await?;
        self.config.site(site).await?;
        let groups: Vec<HostGroupRecord> = self
            .hsdb
            .list::<HostGroupRecord>()
            .await?
            .into_iter()
            .filter(|g| g.site.as_deref() == Some(site))
            .collect();
        let mut out = vec![say::site_discovery_started(site)];
        for group in &groups {
            out.extend(self.config.discover(&group.name, false).await?);
            out.push(nested(say::storage_sync_started(&group.name)));
            let (group, _) = self.records.host_group(&group.name).await?;
            out.push(nested(match self.synchronize(&group).await {
                Ok(()) => say::storage_sync_completed(&group.name),
                Err(e) => say::storage_sync_failed(&group.name, e),
            }));
        }
        out.push(say::site_discovery_finished(site));
        if verify {
            out.push(say::site_verification_started(site));
            for group in &groups {
                out.extend(self.config.verify(&group.name).await?);
            }
            out.push(say::site_verification_finished(site));
        }
        Ok(out)
    }
}

/// A step under the site's heading, as the seed indents the storage state synchronization.
fn nested(step: Step) -> Step {
    Step { nested: true, ..step }
}
