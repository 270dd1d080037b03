//! The node's configuration file. One `vmrmd` process plays the roles whose sections are
//! present: `[controller]` (needs `[hsdb]`), `[hsdb]`, `[[hmc]]`, `[su]`, `[vios]`, `[san]`.
//! Unknown keys are refused and `validate` names the bad key, so a typo never starts a node
//! that silently does less than intended.
use crate::domain::LparDefinition;
use crate::domain::identity;
use crate::domain::names::{HmcName, HostName, NodeName, ViosName};
use crate::error::{Result, VmrmError, quote};
use crate::hsdb::Member;
use crate::profile::{ProfileName, Timing};
use crate::transport::tls::{Principal, Role, TlsFiles};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name, used in logs (e.g. `ctl-1`, `host-2-vios-a`).
    pub name: String,
    /// Address the node's gRPC server listens on; peers reach every role of the node here.
    pub listen: String,
    /// The address peers use when it differs from `listen` (a container listening on
    /// `0.0.0.0:7310` is reached as `host-1-su:7310`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// Where the node serves its Prometheus metrics (`GET /metrics`, plain HTTP); none if
    /// absent. A loopback address keeps them on the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// Where the node keeps its files (the HSDB's sled directory).
    pub data_dir: PathBuf,
    #[serde(default)]
    pub profile: ProfileName,
    /// The node's certificate, key and the cluster CA (mutual TLS on every connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// Serve and call in plaintext, without authentication, instead of `[tls]`: only for a
    /// cluster behind a network of its own that no one else reaches.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Endpoints of the HSDB members, for roles that read or write it remotely (VIOS).
    #[serde(default)]
    pub hsdb_endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsdb: Option<HsdbConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hmc: Vec<HmcConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub su: Option<SuConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vios: Option<ViosConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san: Option<SanConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Where the controller serves its web dashboard (HTTPS with the node's certificate); none
    /// if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HsdbConfig {
    /// This node's Raft id.
    pub node_id: u64,
    /// Where this member serves Raft to its peers: a port of its own, apart from `listen`,
    /// that answers nothing but the members' Raft (firewall it to the members' network).
    pub peer_listen: String,
    /// Initial voters: Raft id → API endpoint (tables and status, the node's `listen` port).
    /// The lowest id initializes a fresh cluster.
    pub members: BTreeMap<String, String>,
    /// The same voters' peer endpoints (their `peer_listen`, as the others reach it).
    pub peers: BTreeMap<String, String>,
    /// Log entries between snapshots; the log before a snapshot is then purged (like etcd's
    /// `--snapshot-count`).
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot, so a briefly lagging member catches up from the log
    /// instead of receiving the whole snapshot.
    #[serde(default = "default_log_kept_after_snapshot")]
    pub log_kept_after_snapshot: u64,
    /// The member's database may grow to this many bytes; then the NOSPACE alarm is raised
    /// (etcd's `--quota-backend-bytes`).
    #[serde(default = "default_quota_bytes")]
    pub quota_bytes: u64,
}

/// Allowed `quota_bytes`.
pub const QUOTA_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(8 << 40);

fn default_quota_bytes() -> u64 {
    crate::hsdb::space::DEFAULT_QUOTA_BYTES
}

/// Allowed `snapshot_every`: frequent enough to bound the log, rare enough not to spend the
/// member's time writing snapshots.
pub const SNAPSHOT_EVERY_RANGE: std::ops::RangeInclusive<u64> = 100..=1_000_000;

/// Default `snapshot_every`.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 5_000;

fn default_snapshot_every() -> u64 {
    DEFAULT_SNAPSHOT_EVERY
}

fn default_log_kept_after_snapshot() -> u64 {
    1_000
}

impl HsdbConfig {
    /// Member `node_id` of `members` (id → API and peer endpoints), serving Raft on
    /// `peer_listen`, with the default log compaction.
    pub fn new(node_id: u64, peer_listen: String, members: &BTreeMap<u64, Member>) -> Self {
        Self {
            node_id,
            peer_listen,
            members: members.iter().map(|(id, m)| (id.to_string(), m.api.clone())).collect(),
            peers: members.iter().map(|(id, m)| (id.to_string(), m.peer.clone())).collect(),
            snapshot_every: default_snapshot_every(),
            log_kept_after_snapshot: default_log_kept_after_snapshot(),
            quota_bytes: default_quota_bytes(),
        }
    }

    /// The Raft members by id, with both endpoints; ids that are not numbers, or lack a peer
    /// endpoint, are rejected by `validate`.
    pub fn member_ids(&self) -> BTreeMap<u64, Member> {
        self.members
            .iter()
            .filter_map(|(id, api)| Some((id.parse().ok()?, Member::new(api, self.peers.get(id)?))))
            .collect()
    }

    /// Where the other members reach this member's Raft.
    pub fn own_peer_endpoint(&self) -> Option<&str> {
        self.peers.get(&self.node_id.to_string()).map(String::as_str)
    }

    pub fn peer_listen_addr(&self) -> Result<SocketAddr> {
        self.peer_listen.parse().map_err(|_| {
            VmrmError::invalid(format!(
                "key `hsdb.peer_listen`: `{}` is not an address like 127.0.0.1:7101",
                self.peer_listen
            ))
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HmcConfig {
    pub name: String,
    /// Endpoints of the server units this HMC manages.
    pub managed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SuConfig {
    /// The host (managed system) name, e.g. `host-1`.
    pub host: String,
    pub cpu: u32,
    pub memory_mb: u64,
    /// The SAN endpoint the host's VMs write through.
    pub san: String,
    /// The host's two VIOS nodes (name and endpoint); VM agents heartbeat to both.
    pub vios: Vec<ViosRef>,
    /// LPARs defined on this host at power-on; each is activated if its disk is free.
    #[serde(default)]
    pub vm: Vec<VmConfig>,
    /// Where the VMs' own files live (`<guests>/<vm>/var/ksys/…`: the agent's configuration and
    /// socket). Every host a VM may run on must reach the same directory, as it reaches the
    /// VM's disk. Default: `guests` in the node's data directory.
    #[serde(default)]
    pub guests: Option<std::path::PathBuf>,
    /// How many partition definitions the hypervisor holds at most (a live migration to a host
    /// that has reached it is refused).
    #[serde(default = "default_max_definitions")]
    pub max_definitions: u32,
    /// The workload every VM of this host boots with (change it per VM with `vmrmd workload`).
    #[serde(default)]
    pub workload: WorkloadConfig,
    /// Whether an administrator may inject faults into this host (`vmrmd fault`, `vmrmd
    /// workload`): drills for test and demonstration clusters, off in production.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fault_drills: bool,
}

fn default_max_definitions() -> u32 {
    100
}

/// A booting guest's workload: the memory it holds and how fast it dirties it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub resident_mb: u64,
    pub dirty_kb_s: u64,
}

impl Default for WorkloadConfig {
    /// 16 MB written, about 256 KB/s dirtied: a quiet guest.
    fn default() -> Self {
        Self { resident_mb: 16, dirty_kb_s: 256 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ViosRef {
    pub name: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub name: String,
    pub cpu: u32,
    pub memory_mb: u64,
    /// VM2000's permanent VM index (`VM-INDEX=n`): the partition's id wherever it runs.
    /// Absent: `VM-INDEX=*ANY`, any free id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent_index: Option<u32>,
}

impl VmConfig {
    /// The partition definition of this VM (its uuid and disk follow from its name).
    pub fn definition(&self) -> LparDefinition {
        LparDefinition {
            fence: 0,
            name: self.name.clone(),
            uuid: identity::uuid_for("vm", &self.name),
            cpu: self.cpu,
            memory_mb: self.memory_mb,
            disk: identity::disk_for_vm(&self.name),
            permanent_index: self.permanent_index,
            isolated: false,
            identities: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ViosConfig {
    pub name: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SanConfig {}

impl NodeConfig {
    /// Reads and validates a config file; the error names the file and the problem.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| VmrmError::invalid(format!("cannot read config file {}: {e}", path.display())))?;
        let cfg: NodeConfig = toml::from_str(&text)
            .map_err(|e| VmrmError::invalid(format!("malformed config file {}: {e}", path.display())))?;
        cfg.validate().map_err(|e| VmrmError::invalid(format!("invalid config file {}: {e}", path.display())))?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a node config always serializes")
    }

    pub fn timing(&self) -> Timing {
        Timing::of(self.profile)
    }

    /// Where peers reach this node.
    pub fn endpoint(&self) -> &str {
        self.advertise.as_deref().unwrap_or(&self.listen)
    }

    /// Who this node is to its peers: its name and the roles its sections play (what its
    /// certificate says, see `vmrmd certs`).
    pub fn principal(&self) -> Principal {
        let mut p = Principal::anonymous();
        p.name = self.name.clone();
        let plays = [
            (Role::Controller, self.controller.is_some()),
            (Role::Hsdb, self.hsdb.is_some()),
            (Role::Hmc, !self.hmc.is_empty()),
            (Role::ServerUnit, self.su.is_some()),
            (Role::Vios, self.vios.is_some()),
            (Role::San, self.san.is_some()),
        ];
        p.roles = plays.into_iter().filter_map(|(r, on)| on.then_some(r)).collect();
        let host = self.su.as_ref().map(|s| &s.host).or(self.vios.as_ref().map(|v| &v.host));
        p.host = host.and_then(|h| HostName::parse(h).ok());
        p
    }

    /// The names and addresses peers dial this node at (its certificate must name each): its
    /// advertised and listening hosts, its Raft member addresses, and loopback.
    pub fn reached_at(&self) -> Vec<String> {
        let own_member = self.hsdb.as_ref().and_then(|h| h.member_ids().get(&h.node_id).cloned());
        let own_member = own_member.iter().flat_map(|m| [m.api.as_str(), m.peer.as_str()]);
        let mut out: Vec<String> = [Some(self.listen.as_str()), self.advertise.as_deref()]
            .into_iter()
            .flatten()
            .chain(own_member)
            .filter_map(|e| e.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']).to_string()))
            .filter(|h| h.parse::<std::net::IpAddr>().map_or(true, |ip| !ip.is_unspecified()))
            .chain(["127.0.0.1".to_string(), "localhost".to_string()])
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            VmrmError::invalid(format!("key `listen`: `{}` is not an address like 127.0.0.1:7001", self.listen))
        })
    }

    /// Checks what serde cannot: roles that need each other, addresses, ids. Names the bad key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(VmrmError::invalid(format!("key `{key}`: {why}")));
        let named =
            |key: &str, checked: Result<()>| checked.map_err(|e| VmrmError::invalid(format!("key `{key}`: {e}")));
        let endpoint = |key: &str, value: &str| match crate::transport::is_endpoint(value) {
            true => Ok(()),
            false => bad(key, format!("`{}` is not an address like 127.0.0.1:7001 or ctl-1:7001", quote(value))),
        };
        named("name", NodeName::parse(&self.name).map(drop))?;
        self.listen_addr()?;
        named("tls", crate::transport::tls::chosen(self.tls.as_ref(), self.insecure).map(drop))?;
        self.hsdb_endpoints.iter().try_for_each(|e| endpoint("hsdb_endpoints", e))?;
        for hmc in &self.hmc {
            named("hmc.name", HmcName::parse(&hmc.name).map(drop))?;
            hmc.managed_hosts.iter().try_for_each(|e| endpoint("hmc.managed_hosts", e))?;
        }
        if let Some(v) = &self.vios {
            named("vios.name", ViosName::parse(&v.name).map(drop))?;
            named("vios.host", HostName::parse(&v.host).map(drop))?;
        }
        if let Some(m) = &self.metrics_listen {
            let Ok(addr) = m.parse::<SocketAddr>() else {
                return bad("metrics_listen", format!("`{}` is not an address like 127.0.0.1:6001", quote(m)));
            };
            if addr.port() == self.listen_addr()?.port() {
                return bad("metrics_listen", format!("port {} is the node's `listen` port too", addr.port()));
            }
        }
        if let Some(d) = self.controller.as_ref().and_then(|c| c.dashboard_listen.as_ref()) {
            let Ok(addr) = d.parse::<SocketAddr>() else {
                return bad(
                    "controller.dashboard_listen",
                    format!("`{}` is not an address like 127.0.0.1:5001", quote(d)),
                );
            };
            let metrics = self.metrics_listen.as_ref().and_then(|m| m.parse::<SocketAddr>().ok()).map(|m| m.port());
            if addr.port() == self.listen_addr()?.port() || Some(addr.port()) == metrics {
                return bad(
                    "controller.dashboard_listen",
                    format!("port {} is another of the node's ports", addr.port()),
                );
            }
        }
        if let Some(a) = &self.advertise
            && !crate::transport::is_endpoint(a)
        {
            return bad("advertise", format!("`{a}` is not an address like host-1-su:7310"));
        }
        if self.principal().roles.is_empty() {
            return bad(
                "roles",
                "the node has no role: add a [controller], [hsdb], [[hmc]], [su], [vios] or [san] section".into(),
            );
        }
        if self.controller.is_some() && self.hsdb.is_none() {
            return bad("controller", "a controller must also be an HSDB member ([hsdb] section)".into());
        }
        if let Some(h) = &self.hsdb {
            let mut ids = Vec::new();
            for (id, addr) in &h.members {
                let Ok(id) = id.parse::<u64>() else {
                    return bad("hsdb.members", format!("`{id}` is not a numeric node id"));
                };
                if !crate::transport::is_endpoint(addr) {
                    return bad(
                        "hsdb.members",
                        format!("`{addr}` is not an address like 127.0.0.1:7001 or ctl-1:7001"),
                    );
                }
                ids.push(id);
            }
            if !ids.contains(&h.node_id) {
                return bad("hsdb.node_id", format!("{} is not one of hsdb.members", h.node_id));
            }
            let listen = h.peer_listen_addr()?;
            if self.listen_addr()?.port() == listen.port() {
                return bad("hsdb.peer_listen", format!("port {} is the node's `listen` port too", listen.port()));
            }
            for (id, addr) in &h.peers {
                if !h.members.contains_key(id) {
                    return bad("hsdb.peers", format!("`{id}` is not one of hsdb.members"));
                }
                endpoint("hsdb.peers", addr)?;
            }
            if let Some(id) = h.members.keys().find(|id| !h.peers.contains_key(*id)) {
                return bad("hsdb.peers", format!("member {id} has no peer endpoint"));
            }
            if !SNAPSHOT_EVERY_RANGE.contains(&h.snapshot_every) {
                let (lo, hi) = SNAPSHOT_EVERY_RANGE.into_inner();
                return bad("hsdb.snapshot_every", format!("{} is outside {lo}..={hi}", h.snapshot_every));
            }
            if !QUOTA_RANGE.contains(&h.quota_bytes) {
                let (lo, hi) = QUOTA_RANGE.into_inner();
                return bad("hsdb.quota_bytes", format!("{} is outside {lo}..={hi}", h.quota_bytes));
            }
            if h.log_kept_after_snapshot > h.snapshot_every {
                return bad(
                    "hsdb.log_kept_after_snapshot",
                    format!("{} is more than snapshot_every ({})", h.log_kept_after_snapshot, h.snapshot_every),
                );
            }
        }
        if self.vios.is_some() && self.hsdb_endpoints.is_empty() && self.hsdb.is_none() {
            return bad("hsdb_endpoints", "a VIOS needs the HSDB members' endpoints".into());
        }
        if self.san.is_some() && self.hsdb_endpoints.is_empty() && self.hsdb.is_none() {
            return bad(
                "hsdb_endpoints",
                "a SAN needs the HSDB members' endpoints (it checks fencing tokens there)".into(),
            );
        }
        if let Some(su) = &self.su {
            named("su.host", HostName::parse(&su.host).map(drop))?;
            endpoint("su.san", &su.san)?;
            if su.vios.len() != 2 {
                return bad("su.vios", format!("a host has exactly two VIOSs, found {}", su.vios.len()));
            }
            for v in &su.vios {
                named("su.vios", ViosName::parse(&v.name).map(drop))?;
                endpoint("su.vios", &v.endpoint)?;
            }
            if su.cpu == 0 || su.memory_mb == 0 {
                return bad("su.cpu", "cpu and memory_mb must be positive".into());
            }
            let mut indexes = std::collections::BTreeSet::new();
            let mut names = std::collections::BTreeSet::new();
            for vm in &su.vm {
                // What a partition definition from the wire must be, a configured one must be too.
                named("su.vm", vm.definition().check())?;
                if !names.insert(&vm.name) {
                    return bad("su.vm", format!("VM {} is defined twice", vm.name));
                }
                match vm.permanent_index {
                    Some(i) if !indexes.insert(i) => {
                        return bad("su.vm", format!("VM {}: permanent_index {i} is given to two VMs", vm.name));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Every endpoint where the HSDB can be reached from this node.
    pub fn hsdb_client_endpoints(&self) -> Vec<String> {
        if !self.hsdb_endpoints.is_empty() {
            return self.hsdb_endpoints.clone();
        }
        self.hsdb.as_ref().map(|h| h.members.values().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plaintext node's config (TLS is tested on its own below).
    fn parse(s: &str) -> Result<NodeConfig> {
        parse_as_is(&format!("insecure = true\n{s}"))
    }

    fn parse_as_is(s: &str) -> Result<NodeConfig> {
        let cfg: NodeConfig = toml::from_str(s).map_err(|e| VmrmError::invalid(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn a_node_serves_tls_or_says_plaintext_explicitly() {
        let san = "name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nhsdb_endpoints=['127.0.0.1:2']\n";
        let tls = "[tls]\nca='/c/ca.pem'\ncert='/c/a.pem'\nkey='/c/a.key'\n";
        let neither = parse_as_is(&format!("{san}[san]\n")).unwrap_err().to_string();
        assert!(neither.contains("key `tls`") && neither.contains("vmrmd certs"), "{neither}");
        let both = parse_as_is(&format!("{san}insecure=true\n[san]\n{tls}")).unwrap_err().to_string();
        assert!(both.contains("exclusive"), "{both}");
        let ok = parse_as_is(&format!("{san}[san]\n{tls}")).unwrap();
        assert_eq!(ok.tls.unwrap().key, PathBuf::from("/c/a.key"));
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = parse("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nbogus=1\n[san]\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn a_node_without_a_profile_runs_the_seeds_timing() {
        let san = "hsdb_endpoints=['127.0.0.1:2']\n[san]\n";
        let cfg = parse(&format!("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n{san}")).unwrap();
        assert_eq!(cfg.profile, ProfileName::Seed);
        assert_eq!(cfg.timing().vm_heartbeat, std::time::Duration::from_secs(10));
        let fast = parse(&format!("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nprofile='fast'\n{san}")).unwrap();
        assert_eq!(fast.profile, ProfileName::Fast);
    }

    #[test]
    fn node_without_role_is_refused() {
        let err = parse("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n").unwrap_err();
        assert!(err.to_string().contains("no role"), "{err}");
    }

    #[test]
    fn a_san_needs_the_hsdb() {
        let err = parse("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n[san]\n").unwrap_err();
        assert!(err.to_string().contains("checks fencing tokens"), "{err}");
    }

    #[test]
    fn controller_needs_hsdb() {
        let err = parse("name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n[controller]\n").unwrap_err();
        assert!(err.to_string().contains("HSDB member"), "{err}");
    }

    #[test]
    fn bad_listen_address_is_named() {
        let err = parse("name='a'\nlisten='nowhere'\ndata_dir='/tmp'\n[san]\n").unwrap_err();
        assert!(err.to_string().contains("`listen`"), "{err}");
    }

    /// A one-member HSDB node: `hsdb` is the rest of its `[hsdb]` section, `peers` its
    /// `[hsdb.peers]` lines.
    fn member(hsdb: &str, peers: &str) -> Result<NodeConfig> {
        parse(&format!(
            "name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n[hsdb]\n{hsdb}\n\
             [hsdb.members]\n1='127.0.0.1:1'\n[hsdb.peers]\n{peers}\n"
        ))
    }

    #[test]
    fn hsdb_node_must_be_a_member() {
        let err = member("node_id=4\npeer_listen='127.0.0.1:11'", "1='127.0.0.1:11'").unwrap_err();
        assert!(err.to_string().contains("hsdb.node_id"), "{err}");
    }

    #[test]
    fn metrics_are_served_where_the_config_says_or_nowhere() {
        let node = |metrics: &str| {
            parse(&format!(
                "name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nhsdb_endpoints=['127.0.0.1:9']\n{metrics}[san]\n"
            ))
        };
        assert_eq!(node("").unwrap().metrics_listen, None);
        assert_eq!(node("metrics_listen='127.0.0.1:2'\n").unwrap().metrics_listen.as_deref(), Some("127.0.0.1:2"));
        let err = node("metrics_listen='nowhere'\n").unwrap_err();
        assert!(err.to_string().contains("`metrics_listen`: `nowhere`"), "{err}");
        let err = node("metrics_listen='127.0.0.1:1'\n").unwrap_err();
        assert!(err.to_string().contains("the node's `listen` port"), "{err}");
    }

    #[test]
    fn raft_has_a_port_of_its_own_and_every_member_a_peer_endpoint() {
        let cfg = member("node_id=1\npeer_listen='127.0.0.1:11'", "1='127.0.0.1:11'").expect("a valid member");
        let hsdb = cfg.hsdb.as_ref().unwrap();
        assert_eq!(hsdb.member_ids()[&1], Member::new("127.0.0.1:1", "127.0.0.1:11"));
        assert_eq!(hsdb.own_peer_endpoint(), Some("127.0.0.1:11"));
        let err = member("node_id=1\npeer_listen='127.0.0.1:1'", "1='127.0.0.1:11'").unwrap_err();
        assert!(err.to_string().contains("`hsdb.peer_listen`: port 1 is the node's `listen` port"), "{err}");
        let err = member("node_id=1", "1='127.0.0.1:11'").unwrap_err();
        assert!(err.to_string().contains("peer_listen"), "{err}");
        let err = member("node_id=1\npeer_listen='nowhere'", "1='127.0.0.1:11'").unwrap_err();
        assert!(err.to_string().contains("`hsdb.peer_listen`: `nowhere`"), "{err}");
        let err = member("node_id=1\npeer_listen='127.0.0.1:11'", "").unwrap_err();
        assert!(err.to_string().contains("member 1 has no peer endpoint"), "{err}");
        let err = member("node_id=1\npeer_listen='127.0.0.1:11'", "1='127.0.0.1:11'\n2='127.0.0.1:12'").unwrap_err();
        assert!(err.to_string().contains("`hsdb.peers`: `2` is not one of hsdb.members"), "{err}");
        let err = member("node_id=1\npeer_listen='127.0.0.1:11'", "1='a b'").unwrap_err();
        assert!(err.to_string().contains("`hsdb.peers`"), "{err}");
    }

    #[test]
    fn permanent_vm_indexes_start_at_one_and_are_given_once_per_host() {
        let su = |vms: &str| {
            format!(
                "name='h'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n[su]\nhost='h'\ncpu=4\nmemory_mb=8192\n\
                 san='127.0.0.1:2'\nvios=[{{name='a',endpoint='127.0.0.1:3'}},{{name='b',endpoint='127.0.0.1:4'}}]\n{vms}"
            )
        };
        let vm = |name: &str, index: &str| format!("[[su.vm]]\nname='{name}'\ncpu=1\nmemory_mb=512\n{index}\n");
        let ok = parse(&su(&(vm("x", "permanent_index=5") + &vm("y", "")))).unwrap();
        assert_eq!(ok.su.unwrap().vm.iter().map(|v| v.permanent_index).collect::<Vec<_>>(), [Some(5), None]);
        let zero = parse(&su(&vm("x", "permanent_index=0"))).unwrap_err();
        assert!(zero.to_string().contains("starts at 1"), "{zero}");
        let twice = parse(&su(&(vm("x", "permanent_index=5") + &vm("y", "permanent_index=5")))).unwrap_err();
        assert!(twice.to_string().contains("given to two VMs"), "{twice}");
    }

    /// Names become directories and files; endpoints are dialled: a config file is input too.
    #[test]
    fn names_that_are_paths_and_endpoints_that_are_not_addresses_are_refused() {
        let su = |host: &str, san: &str, vms: &str| {
            format!(
                "name='h'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\n[su]\nhost='{host}'\ncpu=4\nmemory_mb=8192\n\
                 san='{san}'\nvios=[{{name='a',endpoint='127.0.0.1:3'}},{{name='b',endpoint='127.0.0.1:4'}}]\n{vms}"
            )
        };
        let vm = |name: &str| format!("[[su.vm]]\nname='{name}'\ncpu=1\nmemory_mb=512\n");
        for (config, key) in [
            (su("h", "127.0.0.1:2", &vm("../vm-2-1")), "su.vm"),
            (su("h", "127.0.0.1:2", &vm("/tmp/x")), "su.vm"),
            (su("h", "127.0.0.1:2", &(vm("x") + &vm("x"))), "su.vm"),
            (su("h", "127.0.0.1:2", "[[su.vm]]\nname='x'\ncpu=1\nmemory_mb=18446744073709551615\n"), "su.vm"),
            (su("../h", "127.0.0.1:2", ""), "su.host"),
            (su("h", "not an endpoint", ""), "su.san"),
            (
                "name='../a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nhsdb_endpoints=['127.0.0.1:2']\n[san]\n".into(),
                "name",
            ),
            (
                "name='a'\nlisten='127.0.0.1:1'\ndata_dir='/tmp'\nhsdb_endpoints=['x y']\n[san]\n".into(),
                "hsdb_endpoints",
            ),
        ] {
            let err = parse(&config).expect_err(&config).to_string();
            assert!(err.contains(&format!("key `{key}`")), "{config}: {err}");
        }
    }
}
