//! Which nodes a datacenter has and on which loopback ports. Port layout from `base_port` B:
//! controllers B+1.. (their HSDB peer ports B+11..), HMCs B+101.., the SAN of site s B+201+s,
//! host i: SU B+300+10i, VIOS a/b B+301+10i / B+302+10i; every node's metrics at its port −
//! 1000, a controller's dashboard at its port − 2000.
//!
//! A DR datacenter ([`Topology::two_sites`]) has two sites, each with its SAN, its HMC and its
//! hosts; the VMs run at the first, and each host there is paired with one at the second.
use crate::config::*;
use crate::hsdb::Member;
use crate::profile::ProfileName;
use crate::transport::tls::TlsFiles;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub cpu: u32,
    pub memory_mb: u64,
    pub vms: Vec<VmConfig>,
    /// The hypervisor's limit of partition definitions.
    pub max_definitions: u32,
    /// Its site (an index into [`Topology::sites`]; 0 in an HA datacenter).
    pub site: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub base_port: u16,
    pub controllers: usize,
    pub hmcs: usize,
    pub hosts: Vec<HostSpec>,
    pub profile: ProfileName,
    pub data_dir: PathBuf,
    pub cluster_name: String,
    pub host_group: String,
    /// `snapshot_every` of every HSDB member (tests lower it to exercise log compaction).
    pub hsdb_snapshot_every: u64,
    /// Each HSDB member's quota (its NOSPACE alarm).
    pub hsdb_quota_bytes: u64,
    /// One container per node on the compose network, each at a fixed address and listening
    /// on all interfaces, instead of loopback ports.
    pub containers: bool,
    /// A DR datacenter's two sites (home first); none in an HA one.
    pub sites: Vec<String>,
}

/// Every node serves its metrics at its gRPC port − this (the local datacenter's ctl-1: 6001):
/// below the node's own ports rather than above, where the test clusters' ports would reach
/// into the kernel's ephemeral range (32768 and up), which outgoing connections take.
pub const METRICS_PORT_OFFSET: u16 = 1000;

/// Every controller serves its web dashboard at its gRPC port − this (the local datacenter's
/// ctl-1: 5001), below its metrics for the same reason.
pub const DASHBOARD_PORT_OFFSET: u16 = 2000;

/// Linux's default first ephemeral port (`net.ipv4.ip_local_port_range`).
const EPHEMERAL_PORTS_START: u16 = 32768;

/// HSDB member `i`'s peer port is the base port + this + `i`.
const PEER_PORT_OFFSET: u16 = 10;

/// Base port of the local datacenter: `ksysmgr` without `--endpoints` reaches B+1..B+3.
pub const LOCAL_BASE_PORT: u16 = 7000;

impl Topology {
    /// The local datacenter: 3 controllers, 2 HMCs, 4 hosts (SU + 2 VIOSs each), a SAN, 12 VMs.
    pub fn local(data_dir: PathBuf) -> Self {
        Self::uniform(LOCAL_BASE_PORT, 4, 3, data_dir)
    }

    /// The local DR datacenter (`vmrmd local --dr`): the local datacenter's ports, its 4 hosts
    /// split over sites Austin and Dallas, 3 VMs on each host at Austin.
    pub fn local_two_sites(data_dir: PathBuf) -> Self {
        Self::two_sites(LOCAL_BASE_PORT, 2, 3, data_dir)
    }

    /// `hosts` hosts of 16 CPU / 32 GiB, each with `vms_per_host` VMs of 2 CPU / 4 GiB.
    pub fn uniform(base_port: u16, hosts: usize, vms_per_host: usize, data_dir: PathBuf) -> Self {
        let hosts = (1..=hosts)
            .map(|i| HostSpec {
                name: format!("host-{i}"),
                cpu: 16,
                memory_mb: 32 * 1024,
                vms: (1..=vms_per_host)
                    .map(|j| VmConfig { name: format!("vm-{i}-{j}"), cpu: 2, memory_mb: 4096, permanent_index: None })
                    .collect(),
                max_definitions: 100,
                site: 0,
            })
            .collect();
        Self {
            base_port,
            controllers: 3,
            hmcs: 2,
            hosts,
            profile: ProfileName::Fast,
            data_dir,
            cluster_name: "vmrm_local".into(),
            host_group: "HG1".into(),
            hsdb_snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            hsdb_quota_bytes: crate::hsdb::space::DEFAULT_QUOTA_BYTES,
            containers: false,
            sites: Vec::new(),
        }
    }

    /// A DR datacenter: sites Austin (home) and Dallas (backup), `hosts_per_site` hosts at each
    /// (host-1.. at Austin with `vms_per_host` VMs each, their pairs at Dallas with none: no
    /// backup VM is deployed in advance), a SAN and an HMC per site.
    pub fn two_sites(base_port: u16, hosts_per_site: usize, vms_per_host: usize, data_dir: PathBuf) -> Self {
        let mut t = Self::uniform(base_port, 2 * hosts_per_site, vms_per_host, data_dir);
        for (i, host) in t.hosts.iter_mut().enumerate().skip(hosts_per_site) {
            host.site = 1;
            host.vms.clear();
            host.name = format!("host-{}", i + 1);
        }
        t.sites = vec!["Austin".into(), "Dallas".into()];
        t.cluster_name = "vmrm_dr".into();
        t
    }

    /// Each host of the home site with its pair at the backup site.
    pub fn host_pairs(&self) -> Vec<(String, String)> {
        let (home, backup): (Vec<&HostSpec>, Vec<&HostSpec>) = self.hosts.iter().partition(|h| h.site == 0);
        home.iter().zip(backup).map(|(a, b)| (a.name.clone(), b.name.clone())).collect()
    }

    /// The SAN of site `site`: `san` (and `san-2` for a DR datacenter's second site).
    pub fn san_name(site: usize) -> String {
        match site {
            0 => "san".into(),
            s => format!("san-{}", s + 1),
        }
    }

    /// The site of HMC `i` (1-based): in a DR datacenter HMC i manages site i−1's hosts; in an
    /// HA one every HMC manages every host.
    pub fn hmc_site(&self, i: usize) -> Option<usize> {
        (!self.sites.is_empty()).then(|| (i - 1) % self.sites.len())
    }

    /// The container cluster (`docker-compose.yml`): the local datacenter's nodes, each in its
    /// own container at a fixed address, with its data under `/data`.
    pub fn compose() -> Self {
        Self { containers: true, ..Self::local(PathBuf::from("/data")) }
    }

    /// The DR container cluster (`docker-compose.dr.yml`): the local DR datacenter's nodes, each
    /// in its own container.
    pub fn compose_two_sites() -> Self {
        Self { containers: true, ..Self::local_two_sites(PathBuf::from("/data")) }
    }

    /// Where the node at port offset `offset` is reached: its container's name, or loopback.
    fn addr(&self, node: &str, offset: u16) -> String {
        match self.containers {
            true => format!("{node}:{}", self.base_port + offset),
            false => format!("127.0.0.1:{}", self.base_port + offset),
        }
    }

    /// The HSDB members' addresses (Raft between the controllers). In containers these are the
    /// controllers' fixed addresses, not their names: right after a container dies Docker's
    /// DNS fails lookups for seconds, and an election whose vote requests cannot resolve the
    /// surviving peer stalls for as long. (Everything else keeps names: a dead node's name fails
    /// at once, where its address would hang until a timeout.)
    ///
    /// Member `i`'s Raft is served on its peer port, base port + 10 + `i`.
    pub fn hsdb_members(&self) -> Vec<Member> {
        let at = |i: u16, port: u16| match self.containers {
            true => format!("{}:{port}", super::compose::address(i)),
            false => format!("127.0.0.1:{port}"),
        };
        (1..=self.controllers as u16)
            .map(|i| Member::new(at(i, self.base_port + i), at(i, self.peer_port(i))))
            .collect()
    }

    /// The peer port of HSDB member `i`.
    pub fn peer_port(&self, i: u16) -> u16 {
        self.base_port + PEER_PORT_OFFSET + i
    }

    /// Where the nodes read their certificates: in their container, or the data directory.
    pub fn certs_dir(&self) -> PathBuf {
        match self.containers {
            true => PathBuf::from("/certs"),
            false => self.data_dir.join("certs"),
        }
    }

    /// The VMs' guest directories, shared by every server unit (see `SuConfig::guests`).
    pub fn guests_dir(&self) -> PathBuf {
        self.data_dir.join("guests")
    }

    pub fn controller_endpoints(&self) -> Vec<String> {
        (1..=self.controllers).map(|i| self.addr(&format!("ctl-{i}"), i as u16)).collect()
    }

    pub fn hmc_endpoint(&self, i: usize) -> String {
        self.addr(&format!("hmc-{i}"), 100 + i as u16)
    }

    pub fn san_endpoint(&self) -> String {
        self.san_endpoint_of(0)
    }

    /// The SAN of site `site`.
    pub fn san_endpoint_of(&self, site: usize) -> String {
        self.addr(&Self::san_name(site), 201 + site as u16)
    }

    /// Host `i`'s SU (part 0) or VIOS a/b (parts 1, 2).
    fn host_port(&self, i: usize, part: u16) -> String {
        let host = &self.hosts[i - 1].name;
        let node = match part {
            0 => format!("{host}-su"),
            1 => format!("{host}-vios-a"),
            _ => format!("{host}-vios-b"),
        };
        self.addr(&node, 300 + 10 * i as u16 + part)
    }

    /// Every controller's dashboard, as a browser on this machine opens it.
    pub fn dashboard_urls(&self) -> Vec<String> {
        let ports =
            (1..=self.controllers as u16).filter_map(|i| (self.base_port + i).checked_sub(DASHBOARD_PORT_OFFSET));
        ports.map(|p| format!("https://127.0.0.1:{p}/")).collect()
    }

    /// The server unit of a host, by the host's name.
    pub fn su_endpoint(&self, host: &str) -> Option<String> {
        self.hosts.iter().position(|h| h.name == host).map(|i| self.host_port(i + 1, 0))
    }

    pub fn vios_names(host: &str) -> [String; 2] {
        [format!("{host}-vios-a"), format!("{host}-vios-b")]
    }

    /// Node names of one host: its SU and both VIOS nodes (what "losing the server" kills).
    pub fn host_nodes(host: &str) -> Vec<String> {
        let [a, b] = Self::vios_names(host);
        vec![format!("{host}-su"), a, b]
    }

    fn node(&self, name: String, endpoint: String) -> NodeConfig {
        let port: u16 = endpoint.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_default();
        let (listen, advertise, metrics_host) = match self.containers {
            true => (format!("0.0.0.0:{port}"), Some(endpoint), "0.0.0.0"),
            false => (endpoint, None, "127.0.0.1"),
        };
        NodeConfig {
            metrics_listen: port.checked_sub(METRICS_PORT_OFFSET).map(|m| format!("{metrics_host}:{m}")),
            tls: Some(TlsFiles::in_dir(&self.certs_dir(), &name)),
            insecure: false,
            data_dir: self.data_dir.join(&name),
            name,
            listen,
            advertise,
            profile: self.profile,
            hsdb_endpoints: Vec::new(),
            controller: None,
            hsdb: None,
            hmc: Vec::new(),
            su: None,
            vios: None,
            san: None,
        }
    }

    /// Refuses a loopback datacenter with a port in the kernel's ephemeral range (32768 and up):
    /// an outgoing connection's local port may hold it at the moment a node binds, so the node
    /// would fail to start now and then rather than always.
    pub fn check_ports(&self) -> crate::error::Result<()> {
        if self.containers {
            return Ok(());
        }
        let highest = self
            .node_configs()
            .iter()
            .flat_map(|n| {
                let peer = n.hsdb.as_ref().map(|h| h.peer_listen.as_str());
                let dashboard = n.controller.as_ref().and_then(|c| c.dashboard_listen.as_deref());
                [Some(n.listen.as_str()), n.metrics_listen.as_deref(), peer, dashboard]
            })
            .flatten()
            .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
            .max();
        match highest {
            Some(port) if port >= EPHEMERAL_PORTS_START => Err(crate::error::VmrmError::invalid(format!(
                "base port {} puts port {port} in the kernel's ephemeral range ({EPHEMERAL_PORTS_START} and up), where outgoing connections take ports; choose a base port below {}",
                self.base_port,
                self.base_port.saturating_sub(port - EPHEMERAL_PORTS_START + 1)
            ))),
            _ => Ok(()),
        }
    }

    /// Every node's config, in start order.
    pub fn node_configs(&self) -> Vec<NodeConfig> {
        let members: BTreeMap<u64, Member> =
            self.hsdb_members().into_iter().enumerate().map(|(i, m)| (i as u64 + 1, m)).collect();
        let mut out = Vec::new();
        for (i, listen) in self.controller_endpoints().into_iter().enumerate() {
            let mut n = self.node(format!("ctl-{}", i + 1), listen);
            let port = self.base_port + i as u16 + 1;
            let host = if self.containers { "0.0.0.0" } else { "127.0.0.1" };
            let dashboard_listen = port.checked_sub(DASHBOARD_PORT_OFFSET).map(|p| format!("{host}:{p}"));
            n.controller = Some(ControllerConfig { dashboard_listen });
            let peer_listen = match self.containers {
                true => format!("0.0.0.0:{}", self.peer_port(i as u16 + 1)),
                false => members[&(i as u64 + 1)].peer.clone(),
            };
            let mut hsdb = HsdbConfig::new(i as u64 + 1, peer_listen, &members);
            hsdb.snapshot_every = self.hsdb_snapshot_every;
            hsdb.quota_bytes = self.hsdb_quota_bytes;
            hsdb.log_kept_after_snapshot = hsdb.log_kept_after_snapshot.min(self.hsdb_snapshot_every / 2);
            n.hsdb = Some(hsdb);
            out.push(n);
        }
        for site in 0..self.sites.len().max(1) {
            let mut san = self.node(Self::san_name(site), self.san_endpoint_of(site));
            san.hsdb_endpoints = self.controller_endpoints();
            san.san = Some(SanConfig {});
            out.push(san);
        }
        for i in 1..=self.hmcs {
            let site = self.hmc_site(i);
            let managed = self.hosts.iter().enumerate().filter(|(_, h)| site.is_none_or(|s| h.site == s));
            let su_endpoints = managed.map(|(j, _)| self.host_port(j + 1, 0)).collect();
            let name = format!("hmc-{i}");
            let mut n = self.node(name.clone(), self.hmc_endpoint(i));
            n.hsdb_endpoints = self.controller_endpoints();
            n.hmc = vec![HmcConfig { name, managed_hosts: su_endpoints }];
            out.push(n);
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let i = i + 1;
            let [va, vb] = Self::vios_names(&h.name);
            for (part, vios) in [(1, &va), (2, &vb)] {
                let mut n = self.node(vios.clone(), self.host_port(i, part));
                n.hsdb_endpoints = self.controller_endpoints();
                n.vios = Some(ViosConfig { name: vios.clone(), host: h.name.clone() });
                out.push(n);
            }
            let mut n = self.node(format!("{}-su", h.name), self.host_port(i, 0));
            n.hsdb_endpoints = self.controller_endpoints();
            n.su = Some(SuConfig {
                host: h.name.clone(),
                cpu: h.cpu,
                memory_mb: h.memory_mb,
                san: self.san_endpoint_of(h.site),
                vios: vec![
                    ViosRef { name: va, endpoint: self.host_port(i, 1) },
                    ViosRef { name: vb, endpoint: self.host_port(i, 2) },
                ],
                vm: h.vms.clone(),
                guests: Some(self.guests_dir()),
                max_definitions: h.max_definitions,
                workload: WorkloadConfig::default(),
                fault_drills: true,
            });
            out.push(n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in `cluster-configs/local` is exactly what `vmrmd local` runs.
    #[test]
    fn checked_in_local_configs_match_the_generator() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs/local");
        let t = Topology::local(PathBuf::from("/tmp/vmrm-local"));
        for cfg in t.node_configs() {
            let path = dir.join(format!("{}.toml", cfg.name));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                text,
                cfg.to_toml(),
                "{} is stale: run `vmrmd gen-configs --out cluster-configs/local`",
                path.display()
            );
        }
    }

    #[test]
    fn loopback_ports_stay_below_the_ephemeral_range() {
        let dir = PathBuf::from("/tmp/x");
        assert!(Topology::uniform(16000, 3, 2, dir.clone()).check_ports().is_ok());
        let err = Topology::uniform(32500, 3, 2, dir.clone()).check_ports().unwrap_err().to_string();
        assert!(err.contains("port 32832") && err.contains("below 32435"), "{err}");
        assert!(Topology { containers: true, ..Topology::uniform(32500, 3, 2, dir) }.check_ports().is_ok());
    }

    #[test]
    fn local_datacenter_has_every_role_and_valid_configs() {
        let t = Topology::local(PathBuf::from("/tmp/x"));
        let nodes = t.node_configs();
        assert_eq!(nodes.len(), 3 + 1 + 2 + 4 * 3);
        assert_eq!(nodes.iter().filter_map(|n| n.su.as_ref()).map(|s| s.vm.len()).sum::<usize>(), 12);
        for n in &nodes {
            n.validate().unwrap_or_else(|e| panic!("{}: {e}", n.name));
            let back: NodeConfig = toml::from_str(&n.to_toml()).expect("round trip");
            assert_eq!(&back, n);
        }
        let mut ports: Vec<_> = nodes.iter().map(|n| n.listen.clone()).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), nodes.len(), "every node has its own port");
    }
}
