//! A DR cluster's geography (seed 000 §1.8, §2.4): its two sites (`add site`, home and
//! backup), each site's SAN (`add storage_agent`, checked by asking the SAN its name), and the
//! host pairs across them (`pair host`): a host group moved to the other site restarts each
//! host's VMs on its pair. HMCs belong to a site (`add hmc … site=`), hosts to their HMCs'.
use crate::controller::config::Config;
use crate::controller::messages as say;
use crate::domain::names::{HostName, SiteName, StorageAgentName, VmName};
use crate::domain::*;
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::HsdbAccess;
use crate::pb::{self, Step};

/// A DR cluster has two sites: one home, one backup.
pub const MAX_SITES: usize = 2;

impl Config {
    /// Refuses unless the cluster is a DR cluster.
    pub(in crate::controller) async fn dr_cluster(&self, what: &str) -> Result<()> {
        match self.records.cluster().await?.cluster_type.as_str() {
            "DR" => Ok(()),
            _ => Err(VmrmError::precondition(format!(
                "{what} needs a DR ksyscluster (`ksysmgr add ksyscluster NAME type=DR`); this one is HA"
            ))),
        }
    }

    pub(in crate::controller) async fn site(&self, name: &str) -> Result<SiteRecord> {
        self.hsdb.get::<SiteRecord>(name).await?.map(|(s, _)| s).ok_or_else(|| {
            VmrmError::not_found(format!("site {q} is not added: run `ksysmgr add site {q}` first", q = quote(name)))
        })
    }

    /// The storage agent (SAN) of `site`.
    pub(in crate::controller) async fn storage_agent_of(&self, site: &str) -> Result<StorageAgentRecord> {
        let agents = self.hsdb.list::<StorageAgentRecord>().await?;
        agents.into_iter().find(|a| a.site == site).ok_or_else(|| {
            VmrmError::precondition(format!(
                "site {site} has no storage agent: run `ksysmgr add storage_agent NAME site={site} ip=...` first"
            ))
        })
    }

    pub async fn add_site(&self, name: &SiteName, site_type: SiteType) -> Result<Vec<Step>> {
        let name = name.as_str();
        self.dr_cluster("add site").await?;
        let sites = self.hsdb.list::<SiteRecord>().await?;
        if sites.iter().any(|s| s.name == name) {
            return Err(VmrmError::AlreadyExists(format!("site {name} is already added")));
        }
        if sites.len() >= MAX_SITES {
            return Err(VmrmError::precondition(format!(
                "a DR ksyscluster has {MAX_SITES} sites; it has them already"
            )));
        }
        if let Some(same) = sites.iter().find(|s| s.site_type == site_type) {
            return Err(VmrmError::precondition(format!("site {} is the {site_type} site already", same.name)));
        }
        let record = SiteRecord { name: name.into(), site_type };
        self.hsdb.put_if_version(&record, 0).await?;
        Ok(vec![say::site_added(name, site_type)])
    }

    /// A site's SAN, once it answers at `ip` with the name `name`.
    pub async fn add_storage_agent(&self, name: &StorageAgentName, site: &SiteName, ip: &str) -> Result<Vec<Step>> {
        let (name, site) = (name.as_str(), site.as_str());
        self.dr_cluster("add storage_agent").await?;
        self.site(site).await?;
        if !crate::transport::is_endpoint(ip) {
            return Err(VmrmError::invalid(format!("ip `{}` is not a SAN's address (host:port)", quote(ip))));
        }
        let agents = self.hsdb.list::<StorageAgentRecord>().await?;
        if agents.iter().any(|a| a.name == name) {
            return Err(VmrmError::AlreadyExists(format!("storage_agent {name} is already added")));
        }
        if let Some(other) = agents.iter().find(|a| a.site == site) {
            return Err(VmrmError::precondition(format!("site {site} has its storage agent {} already", other.name)));
        }
        let answer = self.san.query_group(ip, "").await.map_err(|e| {
            VmrmError::unavailable(format!("the SAN at {ip} cannot be reached: {e}; nothing was added"))
        })?;
        if answer.san != name {
            return Err(VmrmError::precondition(format!(
                "the SAN at {ip} is {}, not {name}; nothing was added",
                quote(&answer.san)
            )));
        }
        let record = StorageAgentRecord { name: name.into(), site: site.into(), endpoint: ip.into() };
        self.hsdb.put_if_version(&record, 0).await?;
        Ok(vec![say::storage_agent_added(name, site)])
    }

    /// Pairs two hosts of the two sites (both ways).
    pub async fn pair_host(&self, host: &HostName, pair: &HostName) -> Result<Vec<Step>> {
        let (host, pair) = (host.as_str(), pair.as_str());
        self.dr_cluster("pair host").await?;
        if host == pair {
            return Err(VmrmError::invalid(format!("host {host} cannot be its own pair")));
        }
        let mut rows = Vec::new();
        for name in [host, pair] {
            let row = self.hsdb.get::<HostRecord>(name).await?.ok_or_else(|| {
                VmrmError::not_found(format!(
                    "host {q} is not added: run `ksysmgr add host {q}` first",
                    q = quote(name)
                ))
            })?;
            rows.push(row);
        }
        let [(mut a, va), (mut b, vb)] = <[_; 2]>::try_from(rows).expect("two hosts");
        if a.site.is_none() || a.site == b.site {
            return Err(VmrmError::precondition(format!(
                "hosts {host} and {pair} are both at site {}: a pair spans the two sites",
                a.site.as_deref().unwrap_or("(none)")
            )));
        }
        for (h, other) in [(&a, pair), (&b, host)] {
            if let Some(current) = h.pair.as_deref().filter(|p| *p != other) {
                return Err(VmrmError::precondition(format!("host {} is paired with {current} already", h.name)));
            }
        }
        (a.pair, b.pair) = (Some(pair.into()), Some(host.into()));
        self.hsdb.put_if_version(&a, va).await?;
        self.hsdb.put_if_version(&b, vb).await?;
        Ok(vec![say::hosts_paired(host, pair)])
    }

    /// Sets (`Some`) or removes a VM's network identity at `site`, and expands every identity
    /// the VM has into the map its definition carries: each host of the site by its serial.
    /// The guest takes it on at its next boot there.
    pub async fn change_dr_identity(
        &self,
        vm: &VmName,
        site: &SiteName,
        identity: Option<NetworkIdentity>,
    ) -> Result<Vec<Step>> {
        let (vm, site) = (vm.as_str(), site.as_str());
        self.dr_cluster("a DR network identity").await?;
        self.site(site).await?;
        let hosts = self.hsdb.list::<HostRecord>().await?;
        let at = |s: &str| hosts.iter().filter(|h| h.site.as_deref() == Some(s)).cloned().collect::<Vec<_>>();
        crate::hsdb::client::retry_on_conflict(|| async {
            let (mut record, version) = self.records.vm(vm).await?;
            match &identity {
                Some(id) => record.site_identities.insert(site.to_string(), id.clone()),
                None => record.site_identities.remove(site),
            };
            record.identities = record
                .site_identities
                .iter()
                .flat_map(|(s, id)| at(s).into_iter().map(|h| GuestIdentity { serial: h.uuid, identity: id.clone() }))
                .collect();
            self.hsdb.put_if_version(&record, version).await.map(drop)
        })
        .await?;
        Ok(vec![match &identity {
            Some(id) => say::dr_identity_set(vm, site, id, at(site).len()),
            None => say::dr_identity_removed(vm, site),
        }])
    }

    /// Every site (or one), with what belongs to it.
    pub async fn query_site(&self, name: &str) -> Result<pb::SiteList> {
        let sites = self.hsdb.list::<SiteRecord>().await?;
        if !name.is_empty() && !sites.iter().any(|s| s.name == name) {
            return Err(VmrmError::not_found(format!("site {} is not added", quote(name))));
        }
        let hmcs = self.hsdb.list::<HmcRecord>().await?;
        let hosts = self.hsdb.list::<HostRecord>().await?;
        let agents = self.hsdb.list::<StorageAgentRecord>().await?;
        let groups = self.hsdb.list::<HostGroupRecord>().await?;
        let at = |site: &str| {
            let of = |s: &Option<String>| s.as_deref() == Some(site);
            pb::SiteView {
                name: site.to_string(),
                site_type: 0,
                hmcs: hmcs.iter().filter(|h| of(&h.site)).map(|h| h.name.clone()).collect(),
                hosts: hosts.iter().filter(|h| of(&h.site)).map(|h| h.name.clone()).collect(),
                storage_agents: agents.iter().filter(|a| a.site == site).map(|a| a.name.clone()).collect(),
                active_host_groups: groups.iter().filter(|g| of(&g.site)).map(|g| g.name.clone()).collect(),
            }
        };
        let sites = sites.iter().filter(|s| name.is_empty() || s.name == name).map(|s| pb::SiteView {
            site_type: match s.site_type {
                SiteType::Home => pb::SiteType::Home,
                SiteType::Backup => pb::SiteType::Backup,
            } as i32,
            ..at(&s.name)
        });
        Ok(pb::SiteList { sites: sites.collect() })
    }

    /// The site of a new HMC: required in a DR cluster, refused in an HA one.
    pub(super) async fn hmc_site(&self, site: Option<&SiteName>) -> Result<Option<String>> {
        let dr = self.records.cluster().await?.cluster_type == "DR";
        match (dr, site) {
            (true, Some(site)) => self.site(site.as_str()).await.map(|s| Some(s.name)),
            (true, None) => Err(VmrmError::invalid("in a DR ksyscluster an HMC belongs to a site: add site=SITE")),
            (false, Some(_)) => Err(VmrmError::precondition("site= needs a DR ksyscluster; this one is HA")),
            (false, None) => Ok(None),
        }
    }

    /// The site of a host: its managing HMCs', which must agree.
    pub(super) fn host_site(name: &str, hmcs: &[&HmcRecord]) -> Result<Option<String>> {
        let mut sites: Vec<Option<String>> = hmcs.iter().map(|h| h.site.clone()).collect();
        sites.dedup();
        match sites.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.clone()),
            _ => Err(VmrmError::precondition(format!(
                "host {name} is managed by HMCs of different sites ({}); an HMC manages the hosts of its own site",
                hmcs.iter()
                    .map(|h| format!("{} at {}", h.name, h.site.as_deref().unwrap_or("no site")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}
