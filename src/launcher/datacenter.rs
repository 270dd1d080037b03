//! Runs a [`Topology`] as real `vmrmd` processes: writes each node's config, starts it with its
//! log in `DATA/logs/`, waits for its health service, and can kill, restart or stop any node.
//! Dropping the datacenter kills every process it started.
use super::topology::Topology;
use crate::error::{Result, VmrmError};
use crate::pb::{self, server_unit_client::ServerUnitClient};
use crate::transport::{AdminClient, Security};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long a node may take to start serving.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Datacenter {
    pub topology: Topology,
    /// The administrator's credentials (what the tests and `vmrmd local`'s setup act as).
    security: Security,
    binary: PathBuf,
    configs: BTreeMap<String, PathBuf>,
    children: BTreeMap<String, Child>,
}

impl Datacenter {
    /// Writes the configs and starts every node (not yet configured: see [`Datacenter::setup`]).
    pub async fn start(topology: Topology, binary: &Path) -> Result<Self> {
        topology.check_ports()?;
        let config_dir = topology.data_dir.join("configs");
        let log_dir = topology.data_dir.join("logs");
        for d in [&config_dir, &log_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| VmrmError::invalid(format!("cannot create {}: {e}", d.display())))?;
        }
        super::certs::issue_all(&topology, &topology.certs_dir())?;
        let security = super::certs::security_of(&topology.certs_dir(), super::certs::ADMIN)?;
        let mut dc = Self {
            topology,
            security,
            binary: binary.to_path_buf(),
            configs: BTreeMap::new(),
            children: BTreeMap::new(),
        };
        for cfg in dc.topology.node_configs() {
            let path = config_dir.join(format!("{}.toml", cfg.name));
            std::fs::write(&path, cfg.to_toml())
                .map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
            dc.configs.insert(cfg.name.clone(), path);
        }
        for name in dc.configs.keys().cloned().collect::<Vec<_>>() {
            dc.spawn(&name)?;
        }
        for cfg in dc.topology.node_configs() {
            dc.wait_serving(&cfg.name, &cfg.listen).await?;
        }
        for cfg in dc.topology.node_configs() {
            if let Some(su) = &cfg.su {
                let vms = su.vm.iter().map(|v| v.name.as_str());
                wait_powered_on(&su.host, &cfg.listen, vms, &dc.security).await?;
            }
        }
        Ok(dc)
    }

    pub fn log_path(&self, node: &str) -> PathBuf {
        self.topology.data_dir.join("logs").join(format!("{node}.log"))
    }

    fn spawn(&mut self, name: &str) -> Result<()> {
        let config = self.configs.get(name).ok_or_else(|| VmrmError::not_found(format!("no node {name}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .map_err(|e| VmrmError::internal(format!("log of {name}: {e}")))?;
        let err = log.try_clone().map_err(VmrmError::internal)?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| VmrmError::internal(format!("cannot start {}: {e}", self.binary.display())))?;
        self.children.insert(name.to_string(), child);
        Ok(())
    }

    async fn wait_serving(&mut self, name: &str, endpoint: &str) -> Result<()> {
        let give_up = tokio::time::Instant::now() + NODE_START_TIMEOUT;
        loop {
            if let Some(child) = self.children.get_mut(name)
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(VmrmError::internal(format!(
                    "node {name} exited ({status}) while starting; its log {} ends with:\n{}",
                    self.log_path(name).display(),
                    self.log_tail(name, 10)
                )));
            }
            if serving(endpoint, &self.security).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > give_up {
                return Err(VmrmError::unavailable(format!("node {name} at {endpoint} did not start serving in time")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self, node: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(node)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Configures the cluster through the admin API, as an operator would, and returns the lines.
    pub async fn setup(&self) -> Result<Vec<String>> {
        configure(&self.topology, &self.security).await
    }

    pub fn admin(&self) -> Result<AdminClient> {
        AdminClient::new(self.topology.controller_endpoints(), self.security.clone())
    }

    /// The administrator's credentials.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// The credentials of `name` (a node or a person of [`super::certs::people`]).
    pub fn security_of(&self, name: &str) -> Result<Security> {
        super::certs::security_of(&self.topology.certs_dir(), name)
    }

    /// Credentials for a principal of the caller's choosing, from the cluster's CA.
    pub fn issue(&self, who: &crate::transport::tls::Principal) -> Result<Security> {
        super::certs::issue_for(&self.topology.certs_dir(), who)
    }

    /// An administrator's channel to `endpoint`.
    pub fn channel(&self, endpoint: &str) -> Result<tonic::transport::Channel> {
        crate::transport::channel::lazy_channel(endpoint, Duration::from_secs(2), &self.security)
    }

    pub fn pid(&self, node: &str) -> Option<u32> {
        self.children.get(node).map(Child::id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&String, u32)> {
        self.children.iter().map(|(n, c)| (n, c.id()))
    }

    /// SIGKILL: the node dies without any goodbye.
    pub fn kill(&mut self, node: &str) {
        if let Some(mut child) = self.children.remove(node) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the node freezes mid-step, holding its sockets open (a hung process, a long
    /// GC pause, a VM stalled by its hypervisor).
    pub fn pause(&self, node: &str) {
        if let Some(pid) = self.pid(node) {
            signal(pid, "STOP");
        }
    }

    /// SIGCONT: a paused node carries on as if nothing happened.
    pub fn resume(&self, node: &str) {
        if let Some(pid) = self.pid(node) {
            signal(pid, "CONT");
        }
    }

    /// A fault inside a running VM on `host` (see [`crate::sim::hypervisor::VmFault`]).
    pub async fn inject_fault(&self, host: &str, vm: &str, fault: &str) -> Result<pb::Lpar> {
        let su = self.topology.su_endpoint(host).ok_or_else(|| VmrmError::not_found(format!("no host {host}")))?;
        inject_fault(&su, vm, fault, &self.security).await
    }

    /// Sets the workload of VM `vm` on `host` (see [`crate::sim::workload`]).
    pub async fn set_workload(
        &self,
        host: &str,
        vm: &str,
        resident_mb: u64,
        dirty_kb_s: u64,
        log: bool,
    ) -> Result<pb::Lpar> {
        let su = self.topology.su_endpoint(host).ok_or_else(|| VmrmError::not_found(format!("no host {host}")))?;
        set_workload(&su, pb::LparWorkload { name: vm.into(), resident_mb, dirty_kb_s, log }, &self.security).await
    }

    /// Loses a whole server at once: its SU and both VIOS nodes.
    pub fn kill_host(&mut self, host: &str) {
        for node in Topology::host_nodes(host) {
            self.kill(&node);
        }
    }

    /// Starts a killed node again from its config and data directory.
    pub async fn restart(&mut self, node: &str) -> Result<()> {
        self.kill(node);
        self.spawn(node)?;
        let listen = self
            .topology
            .node_configs()
            .into_iter()
            .find(|c| c.name == node)
            .map(|c| c.listen)
            .ok_or_else(|| VmrmError::not_found(format!("no node {node}")))?;
        self.wait_serving(node, &listen).await
    }

    /// SIGTERM to one node: it stops on purpose (and says so); then waits for it (SIGKILL
    /// after a grace period).
    pub fn terminate(&mut self, node: &str) {
        if let Some(mut child) = self.children.remove(node) {
            signal(child.id(), "TERM");
            let give_up = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < give_up && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts `node` with its config changed by `change` (a test routes the node's traffic
    /// through a proxy it controls).
    pub async fn restart_with(
        &mut self,
        node: &str,
        change: impl FnOnce(&mut crate::config::NodeConfig),
    ) -> Result<()> {
        let mut cfg = self
            .topology
            .node_configs()
            .into_iter()
            .find(|c| c.name == node)
            .ok_or_else(|| VmrmError::not_found(format!("no node {node}")))?;
        change(&mut cfg);
        let path = self.configs.get(node).ok_or_else(|| VmrmError::not_found(format!("no node {node}")))?;
        std::fs::write(path, cfg.to_toml()).map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
        self.restart(node).await
    }

    /// SIGTERM to every node, then waits for them (SIGKILL after a grace period).
    pub fn stop(&mut self) {
        for child in self.children.values() {
            signal(child.id(), "CONT");
            signal(child.id(), "TERM");
        }
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        for (_, mut child) in std::mem::take(&mut self.children) {
            while std::time::Instant::now() < give_up {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Datacenter {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits until the host's configured LPARs have booted: a server unit activates them once the
/// SAN answers, a moment after it starts serving, and discovery only registers running VMs.
async fn wait_powered_on<'a>(
    host: &str,
    endpoint: &str,
    lpars: impl Iterator<Item = &'a str>,
    security: &Security,
) -> Result<()> {
    let lpars: Vec<&str> = lpars.collect();
    let give_up = tokio::time::Instant::now() + NODE_START_TIMEOUT;
    loop {
        let booting: Vec<&str> = match su_inventory(endpoint, Duration::from_millis(500), security).await {
            Ok(inv) => lpars
                .iter()
                .copied()
                .filter(|name| {
                    !inv.lpars.iter().any(|l| {
                        l.state() == pb::LparState::Running && l.definition.as_ref().is_some_and(|d| d.name == *name)
                    })
                })
                .collect(),
            Err(_) => lpars.clone(),
        };
        if booting.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > give_up {
            return Err(VmrmError::unavailable(format!(
                "host {host}: LPARs {} did not boot in time",
                booting.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when the node's standard health service answers SERVING.
pub async fn serving(endpoint: &str, security: &Security) -> bool {
    let Ok(channel) = crate::transport::channel::lazy_channel(endpoint, Duration::from_millis(500), security) else {
        return false;
    };
    let req = crate::transport::deadline(HealthCheckRequest { service: String::new() }, Duration::from_millis(500));
    matches!(
        HealthClient::new(channel).check(req).await.map(|r| r.into_inner().status),
        Ok(s) if s == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    )
}

/// Asks the server unit at `su` to inject `fault` into its running VM `vm`.
pub async fn inject_fault(su: &str, vm: &str, fault: &str, security: &Security) -> Result<pb::Lpar> {
    let channel = crate::transport::channel::lazy_channel(su, Duration::from_secs(2), security)?;
    let req = pb::LparFault { name: vm.to_string(), fault: fault.to_string() };
    let reply = ServerUnitClient::new(channel).inject_fault(req).await?;
    reply.into_inner().lpar.ok_or_else(|| VmrmError::internal("the server unit answered without the LPAR"))
}

/// Sets the workload of the running VM `w.name` on the server unit at `su`.
pub async fn set_workload(su: &str, w: pb::LparWorkload, security: &Security) -> Result<pb::Lpar> {
    let channel = crate::transport::channel::lazy_channel(su, Duration::from_secs(2), security)?;
    let mut call = tonic::Request::new(w);
    call.set_timeout(Duration::from_secs(60));
    let reply = ServerUnitClient::new(channel).set_workload(call).await?;
    reply.into_inner().lpar.ok_or_else(|| VmrmError::internal("the server unit answered without the LPAR"))
}

/// Configures `t`'s cluster through the admin API, as an operator would (cluster, HMCs, hosts,
/// host group, `ha_monitor=enable`, discovery and verification), and returns the lines.
pub async fn configure(t: &Topology, security: &Security) -> Result<Vec<String>> {
    let mut admin = AdminClient::new(t.controller_endpoints(), security.clone())?;
    let mut out = Vec::new();
    let dr = !t.sites.is_empty();
    let cluster = pb::AddClusterRequest {
        name: t.cluster_name.clone(),
        r#type: if dr { pb::ClusterType::Dr } else { pb::ClusterType::Ha } as i32,
        ksysnodes: (1..=t.controllers).map(|i| format!("ctl-{i}")).collect(),
        sync: true,
    };
    out.extend(admin.add_cluster(cluster.clone()).await?.printed());
    for (i, site) in t.sites.iter().enumerate() {
        let site_type = if i == 0 { pb::SiteType::Home } else { pb::SiteType::Backup };
        let req = pb::AddSiteRequest { name: site.clone(), site_type: site_type as i32 };
        out.extend(admin.add_site(req).await?.printed());
    }
    for i in 1..=t.hmcs {
        let hmc = pb::AddHmcRequest {
            name: format!("hmc-{i}"),
            login: "hscroot".into(),
            password: "abc123".into(),
            ip: t.hmc_endpoint(i),
            site: t.hmc_site(i).map(|s| t.sites[s].clone()).unwrap_or_default(),
        };
        out.extend(admin.add_hmc(hmc.clone()).await?.printed());
    }
    for (i, site) in t.sites.iter().enumerate() {
        let req =
            pb::AddStorageAgentRequest { name: Topology::san_name(i), site: site.clone(), ip: t.san_endpoint_of(i) };
        out.extend(admin.add_storage_agent(req).await?.printed());
    }
    for h in &t.hosts {
        let host = pb::AddHostRequest { name: h.name.clone() };
        out.extend(admin.add_host(host.clone()).await?.printed());
    }
    for (host, pair) in t.host_pairs() {
        out.extend(admin.pair_host(pb::PairHostRequest { host, pair }).await?.printed());
    }
    // As the seed's Example 3-32: the group's repository and HA disks by their ViodiskIDs.
    let disk_id = |kind: &str| crate::domain::identity::uuid_for(kind, &t.host_group).replace('-', "");
    let group = pb::AddHostGroupRequest {
        name: t.host_group.clone(),
        hosts: t.hosts.iter().filter(|h| h.site == 0).map(|h| h.name.clone()).collect(),
        repo_disk: Some(disk_id("repo_disk")),
        ha_disk: Some(disk_id("ha_disk")),
    };
    out.extend(admin.add_host_group(group.clone()).await?.printed());
    let enable = pb::ModifyRequest {
        level: pb::ModifyLevel::System as i32,
        names: Vec::new(),
        settings: Some(pb::Settings { ha_monitor: Some(true), ..Default::default() }),
    };
    out.extend(admin.modify(enable).await?.printed());
    match t.sites.first() {
        Some(home) => {
            let discover = pb::DiscoverSiteRequest { site: home.clone(), verify: true };
            out.extend(admin.discover_site(discover).await?.printed());
        }
        None => {
            let discover = pb::DiscoverRequest { host_group: t.host_group.clone(), verify: true };
            out.extend(admin.discover(discover.clone()).await?.printed());
        }
    }
    Ok(out)
}

/// One server unit's inventory (the hypervisor's own word), within `timeout`.
pub async fn su_inventory(endpoint: &str, timeout: Duration, security: &Security) -> Result<pb::HostInventory> {
    let channel = crate::transport::channel::lazy_channel(endpoint, timeout, security)?;
    let req = crate::transport::deadline(pb::SuInventoryRequest {}, timeout);
    Ok(ServerUnitClient::new(channel).inventory(req).await?.into_inner())
}

/// Ground truth from the hypervisors: VM → the hosts whose server unit runs it. `reach` turns
/// an SU's endpoint into the address this process reaches it at; SUs that do not answer are
/// left out.
pub async fn running_vms(
    topology: &Topology,
    reach: impl Fn(&str) -> String,
    security: &Security,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for host in &topology.hosts {
        let Some(su) = topology.su_endpoint(&host.name) else { continue };
        let Ok(inv) = su_inventory(&reach(&su), Duration::from_secs(2), security).await else { continue };
        for lpar in inv.lpars.into_iter().filter(|l| l.state() == pb::LparState::Running) {
            if let Some(def) = lpar.definition {
                out.entry(def.name).or_default().push(host.name.clone());
            }
        }
    }
    out
}
