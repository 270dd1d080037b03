//! Configuration commands: `add ksyscluster`, `add hmc`, `add host`, `add host_group`. Each
//! validates everything first and writes only when all is well, so a refused command changes
//! nothing. Outputs use the seed's wording.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::domain::names::{ClusterName, HmcName, HostGroupName, HostName, SiteName};
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::pb::Step;

/// Default gRPC port of an HMC when `ip=` gives no port.
pub const DEFAULT_HMC_PORT: u16 = 7101;

/// A disk's ViodiskID as `ksysmgr query viodisk` lists it: 1 to 128 base64 characters.
fn check_disk_id(kind: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    match ok {
        true => Ok(()),
        false => Err(VmrmError::invalid(format!(
            "{kind}= must be a ViodiskID (1 to 128 letters, digits, '+', '/' or '='), not {}",
            quote(id)
        ))),
    }
}

impl Config {
    /// A ksyscluster of the KSYS nodes `ksysnodes`: HA (inside one site) or DR (across two).
    pub async fn add_cluster(
        &self,
        name: &ClusterName,
        dr: bool,
        ksysnodes: Vec<HostName>,
        sync: bool,
    ) -> Result<Vec<Step>> {
        let (name, ksysnodes) = (name.as_str(), crate::domain::names::strings(ksysnodes));
        if let Some((existing, _)) = self.hsdb.get::<ClusterRecord>("cluster").await? {
            return Err(VmrmError::AlreadyExists(format!("ksyscluster {} already exists", existing.name)));
        }
        let record = ClusterRecord {
            name: name.into(),
            cluster_type: if dr { "DR" } else { "HA" }.into(),
            ksysnodes,
            detection: DetectionSettings::default(),
            ha_monitor: None,
            notification: Default::default(),
            discovery: Default::default(),
        };
        self.hsdb.put_if_version(&record, 0).await?;
        let mut lines = vec![say::cluster_node_added()];
        match sync {
            true => lines.extend(self.verified(name)),
            false => lines.push(say::cluster_created(name)),
        }
        Ok(lines)
    }

    /// `sync=yes`: what verifying and syncing a cluster of controllers means here, said with
    /// what was found. The record was just written through the HSDB, so its voters have a
    /// quorum; the KSYS subsystem is the active controller, already running (nothing starts).
    fn verified(&self, name: &str) -> Vec<Step> {
        let node = self.hsdb.node();
        let voters = node.raft.metrics().borrow().membership_config.membership().voter_ids().count();
        let active = node.leader_endpoint().unwrap_or_else(|| "unknown".into());
        vec![say::cluster_verifying(name), say::cluster_verified(name, voters), say::ksys_running(&active)]
    }

    pub async fn add_hmc(
        &self,
        name: &HmcName,
        (login, password): (&str, &str),
        ip: &str,
        site: Option<&SiteName>,
    ) -> Result<Vec<Step>> {
        let name = name.as_str();
        if login.is_empty() || password.is_empty() || ip.is_empty() {
            return Err(VmrmError::invalid("add hmc needs login=, password= and ip="));
        }
        let endpoint = if ip.contains(':') { ip.to_string() } else { format!("{ip}:{DEFAULT_HMC_PORT}") };
        if !crate::transport::is_endpoint(&endpoint) {
            return Err(VmrmError::invalid(format!(
                "ip `{ip}` is not an IP address or host name (optionally with :port)"
            )));
        }
        let site = self.hmc_site(site).await?;
        if self.hsdb.get::<HmcRecord>(name).await?.is_some() {
            return Err(VmrmError::AlreadyExists(format!("HMC {name} is already added")));
        }
        let record =
            HmcRecord { name: name.into(), ip: endpoint.clone(), login: login.into(), password: password.into(), site };
        self.hmc.inventory(&record, "").await.map_err(|e| {
            VmrmError::unavailable(format!("HMC {name} at {endpoint} cannot be reached: {e}; nothing was added"))
        })?;
        self.hsdb.put_if_version(&record, 0).await?;
        Ok(vec![say::hmc_added(name)])
    }

    pub async fn add_host(&self, name: &HostName) -> Result<Vec<Step>> {
        let name = name.as_str();
        self.records.cluster().await?;
        if self.hsdb.get::<HostRecord>(name).await?.is_some() {
            return Err(VmrmError::AlreadyExists(format!("host {name} is already added")));
        }
        let hmcs = self.hsdb.list::<HmcRecord>().await?;
        if hmcs.is_empty() {
            return Err(VmrmError::precondition(
                "no HMC is added yet: run `ksysmgr add hmc NAME login= password= ip=` first",
            ));
        }
        let mut managing = Vec::new();
        let mut inventory = None;
        for hmc in &hmcs {
            if let Ok(reply) = self.hmc.inventory(hmc, name).await
                && let Some(inv) = reply.hosts.into_iter().find(|h| h.name == name)
            {
                managing.push(hmc);
                inventory = Some(inv);
            }
        }
        let site = Self::host_site(name, &managing)?;
        let managing: Vec<String> = managing.iter().map(|h| h.name.clone()).collect();
        let inv = inventory.ok_or_else(|| {
            VmrmError::not_found(format!(
                "host {name} is not managed by any added HMC ({})",
                hmcs.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let record = HostRecord {
            name: name.into(),
            uuid: inv.uuid,
            hmcs: managing,
            host_group: None,
            vios: inv.vios.iter().map(|v| v.name.clone()).collect(),
            cpu_total: inv.cpu_total,
            memory_total_mb: inv.memory_total_mb,
            san_key: inv.san_key,
            san: inv.san,
            ha_monitor: None,
            site,
            pair: None,
        };
        for v in inv.vios {
            let vios =
                ViosRecord { name: v.name, uuid: v.uuid, host: name.into(), endpoint: v.endpoint, version: v.version };
            self.hsdb.put(&vios).await?;
        }
        self.hsdb.put_if_version(&record, 0).await?;
        Ok(vec![say::host_added(name)])
    }

    /// A host group of `hosts`, with the ViodiskIDs of its repository and HA disks if given.
    pub async fn add_host_group(
        &self,
        name: &HostGroupName,
        hosts: Vec<HostName>,
        repo_disk: Option<String>,
        ha_disk: Option<String>,
    ) -> Result<Vec<Step>> {
        let (name, hosts) = (name.as_str(), crate::domain::names::strings(hosts));
        if hosts.is_empty() {
            return Err(VmrmError::invalid("add host_group needs hosts=HOST1,HOST2,..."));
        }
        for (kind, disk) in [("repo_disk", &repo_disk), ("ha_disk", &ha_disk)] {
            disk.as_deref().map_or(Ok(()), |id| check_disk_id(kind, id))?;
        }
        if repo_disk.is_some() && repo_disk == ha_disk {
            return Err(VmrmError::invalid("repo_disk= and ha_disk= must be two different disks"));
        }
        let unique: std::collections::BTreeSet<&String> = hosts.iter().collect();
        if unique.len() != hosts.len() {
            return Err(VmrmError::invalid("hosts= names a host more than once"));
        }
        if self.hsdb.get::<HostGroupRecord>(name).await?.is_some() {
            return Err(VmrmError::AlreadyExists(format!("host_group {name} already exists")));
        }
        let mut records = Vec::new();
        for h in &hosts {
            let (host, version) = self.hsdb.get::<HostRecord>(h).await?.ok_or_else(|| {
                VmrmError::not_found(format!("host {q} is not added: run `ksysmgr add host {q}` first", q = quote(h)))
            })?;
            if let Some(other) = &host.host_group {
                return Err(VmrmError::precondition(format!("host {h} already belongs to host_group {other}")));
            }
            records.push((host, version));
        }
        let mut sites: Vec<Option<String>> = records.iter().map(|(h, _)| h.site.clone()).collect();
        sites.dedup();
        let site = match sites.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(VmrmError::precondition(
                    "a host group's hosts are at one site; hosts= names hosts of both",
                ));
            }
        };
        for (mut host, version) in records {
            host.host_group = Some(name.into());
            self.hsdb.put_if_version(&host, version).await?;
        }
        let group = HostGroupRecord {
            name: name.into(),
            hosts: hosts.clone(),
            discovered: false,
            detection: DetectionSettings::default(),
            restart_policy: RestartPolicy::default(),
            capacity: FlexCapacity::default(),
            ha_monitor: None,
            repo_disk,
            ha_disk,
            last_deep_ms: 0,
            last_quick_ms: 0,
            site,
        };
        self.hsdb.put_if_version(&group, 0).await?;
        Ok(vec![say::host_group_added(name), say::run_discovery(name)])
    }
}
