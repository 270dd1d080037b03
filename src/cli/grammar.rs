//! The `ksysmgr` grammar. Actions and classes accept the seed's aliases (`q`, `mk`, `cl`,
//! `discovery` …); attributes are `key=value`, lists are comma-separated. Anything unknown is
//! refused with the list of what is allowed.
use super::settings::{KEYS, list as items, settings};
use crate::domain::{AffinityKind, Severity};
use crate::pb;
use std::collections::BTreeMap;
use strum::EnumString;

/// What a command acts on, with the seed's aliases. It is the CLI's vocabulary, not the HSDB's:
/// `system`, `hsdb` or an affinity kind has no table of its own, and most tables no class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Class {
    #[strum(serialize = "system", serialize = "sys")]
    System,
    #[strum(serialize = "ksyscluster", serialize = "cluster", serialize = "cl")]
    Cluster,
    Hmc,
    Host,
    #[strum(serialize = "host_group", serialize = "hg")]
    HostGroup,
    Vios,
    #[strum(serialize = "vm", serialize = "lpar")]
    Vm,
    #[strum(serialize = "event", serialize = "events")]
    Event,
    Audit,
    #[strum(serialize = "app", serialize = "application", serialize = "apps")]
    App,
    Hsdb,
    HsdbNode,
    #[strum(serialize = "monjv", serialize = "jv")]
    Monjv,
    #[strum(serialize = "su_cluster", serialize = "sucl")]
    SuCluster,
    #[strum(serialize = "vm_definition", serialize = "vm_def")]
    VmDefinition,
    /// Notification contacts (seed: `add notify user=NAME contact=ADDRESS`).
    Notify,
    /// Configuration snapshots (seed: `add snapshot`).
    Snapshot,
    /// A DR cluster's sites, and each site's SAN.
    Site,
    StorageAgent,
    /// A VM's network identity at one site.
    DrIdentity,
    /// First-failure data capture incidents (seed 003).
    Ffdc,
    /// `collocation`, `anticollocation` or `workgroup`.
    #[strum(disabled)]
    Affinity(AffinityKind),
}

#[derive(Debug, Clone, PartialEq)]
pub enum KsysCommand {
    AddCluster(pb::AddClusterRequest),
    /// `add hmc NAME login=USER [password=PASSWORD] ip=IP`: without `password=`, ksysmgr asks
    /// for it (no echo on a terminal; one line from a pipe), keeping it out of the process list
    /// and the shell's history.
    AddHmc {
        name: String,
        login: String,
        password: Option<String>,
        ip: String,
        site: String,
    },
    AddSite(pb::AddSiteRequest),
    AddStorageAgent(pb::AddStorageAgentRequest),
    PairHost(pb::PairHostRequest),
    DiscoverSite(pb::DiscoverSiteRequest),
    /// `add|remove dr_identity vm=VM site=SITE …`.
    ChangeDrIdentity(pb::DrIdentityChange),
    /// `move host_group NAME to=SITE [dr_type=planned|unplanned]`: asks for confirmation first.
    Move(pb::MoveRequest),
    AddHost {
        name: String,
    },
    AddHostGroup {
        name: String,
        hosts: Vec<String>,
        repo_disk: Option<String>,
        ha_disk: Option<String>,
    },
    Discover {
        host_group: String,
        verify: bool,
    },
    Verify {
        host_group: String,
    },
    Query {
        class: Class,
        name: String,
    },
    /// `query vm [NAME] [state=manage|unmanage]`: only the managed, or the unmanaged, VMs.
    QueryVm {
        name: String,
        managed: Option<bool>,
    },
    RestartVm {
        vm: String,
        host: String,
    },
    /// `lpm vm|host NAME …`: the `Migrate` request as ksysmgr builds it.
    Lpm(pb::MigrateRequest),
    /// `add|modify|remove su_cluster NAME …`.
    ChangeSuCluster(pb::SuClusterChange),
    /// `recover vm_definition VM [host=LOCAL]`.
    RecoverVmDefinition {
        vm: String,
        host: String,
    },
    /// `add|modify|remove monjv NAME …`.
    ChangeMonjv(pb::MonjvChange),
    /// `query event [NAME] [before=SEQ] [limit=N] [severity=…] [unacknowledged=yes]`: one page
    /// of events, newest last.
    QueryEvent(pb::EventQuery),
    /// `query event [NAME] [severity=…] watch=yes [after=SEQ]`: the events as they come.
    WatchEvents(pb::EventWatch),
    /// `ack event SEQ|all`.
    AckEvent(pb::AckRequest),
    /// `remove ksyscluster NAME [filepath=PATH]`: asks whether to take a snapshot first (written
    /// to PATH if given), then for confirmation.
    RemoveCluster {
        name: String,
        filepath: Option<String>,
    },
    /// `add snapshot [filepath=PATH]`: taken, kept in the HSDB, and written to PATH if given.
    AddSnapshot {
        filepath: Option<String>,
    },
    /// `restore snapshot NAME` (one the HSDB keeps) or `restore snapshot filepath=PATH`.
    RestoreSnapshot {
        name: String,
        filepath: Option<String>,
    },
    /// `query system status [monitor=yes]`.
    QueryStatus {
        monitor: bool,
    },
    /// `query audit [USER|ACTION] [before=SEQ] [limit=N]`: one page of the audit trail.
    QueryAudit {
        name: String,
        before: Option<u64>,
        limit: Option<u32>,
    },
    /// `query monjv [NAME] [password=PW] [wait=FROM-TO [timeout=S]]`.
    QueryMonjv {
        name: String,
        password: String,
        wait: Option<(u32, u32)>,
        timeout_ms: u32,
    },
    AddHsdbNode {
        node_id: u64,
        endpoint: String,
    },
    ModifyHsdbNode(pb::ModifyHsdbNodeRequest),
    RemoveHsdbNode {
        node_id: u64,
    },
    /// `modify system|host_group|host|vm …`.
    Modify(pb::ModifyRequest),
    /// `manage|unmanage vm …`.
    Manage(pb::ManageRequest),
    /// `add|modify|delete collocation|anticollocation|workgroup …`.
    Affinity(pb::AffinityRequest),
    /// `restore vm|host NAME`.
    Restore(pb::RestoreRequest),
    Cleanup {
        host_group: String,
        /// `dr_test=yes`: end the host group's DR test.
        dr_test: bool,
    },
    /// `add ffdc [detail=TEXT]`: a cluster dump by hand; ksysmgr waits for it to settle.
    AddFfdc {
        detail: String,
    },
    /// `query ffdc [ID] [node=NODE]`: from the active controller, or straight from that node.
    QueryFfdc {
        id: String,
        node: Option<String>,
    },
    /// `snap ffdc ID filepath=PATH [node=NODE]`: the incident's archive written to PATH.
    SnapFfdc {
        id: String,
        filepath: String,
        node: Option<String>,
    },
    /// `modify ffdc …`.
    ModifyFfdc(pb::FfdcSettingsChange),
    /// `trace log=NAME [node=NODE] [lines=N] [filepath=PATH]` (seed: `ksysmgr trace log=fde`).
    Trace {
        request: pb::TraceRequest,
        filepath: Option<String>,
    },
    /// `add notify user=NAME contact=ADDRESS`.
    AddNotify(pb::NotifyRequest),
    /// `delete notify user=NAME [contact=ADDRESS]`.
    DeleteNotify(pb::NotifyRequest),
}

pub const USAGE: &str = "\
Usage: ksysmgr [--endpoints HOST:PORT,...] [-o text|json] [--follower-read] [-y] <action> <class> [name] [attribute=value ...]
  add ksyscluster NAME [type=HA|DR] [ksysnodes=N1,...] [sync=yes|no]
  remove ksyscluster NAME [filepath=PATH]  (offers a snapshot, then asks; -y: takes it and goes on)
  add hmc NAME login=USER [password=PASSWORD] ip=IP[:PORT] [site=SITE]   (without password=: asked for, not echoed;
         site=: in a DR cluster, the HMC's site and its hosts')
  add site NAME sitetype=home|backup       (a DR cluster's two sites)
  add storage_agent NAME site=SITE ip=IP:PORT   (the site's SAN, by its node name)
  pair host HOST pair=HOST                 (hosts of the two sites: a moved host group's VMs restart on the pair)
  add dr_identity vm=VM site=SITE hostname=NAME ip=IP netmask=MASK gateway=IP   (the VM's network at that site,
         applied inside the guest at boot; remove dr_identity vm=VM site=SITE: it keeps its own there)
  discover site NAME [verify=yes]          (its host groups discovered, their storage replicated to the other site)
  move host_group NAME to=SITE [dr_type=planned|unplanned]   (asks first; -y: goes on)
  move host_group NAME to=SITE dr_test=yes   (DR test: test copies at SITE from a point-in-time copy, isolated;
         production runs on)
  cleanup host_group NAME dr_test=yes      (ends the DR test: its copies and their disks go)
  add host NAME
  add host_group NAME hosts=HOST1,HOST2,... [repo_disk=VIODISKID ha_disk=VIODISKID]
  discover host_group NAME [verify=yes]
  verify host_group NAME
  query system|ksyscluster|hmc|host|host_group|vios|vm|site [NAME]
  query vm [NAME] [state=manage|unmanage]  (only the managed, or the unmanaged, VMs)
  query event [EVENT|SUBJECT] [before=SEQ] [limit=1-1000] [severity=critical|warning|maintenance|informational]
         [unacknowledged=yes]   (newest last; 100 by default; severity: that severe or more)
  query event [EVENT|SUBJECT] [severity=...] watch=yes [after=SEQ]   (the events as they come, until Ctrl-C)
  ack event SEQ|all                        (acknowledge one event, or every event so far)
  query system status [monitor=yes]        (host groups, recoveries and migrations in progress; monitor: live lines)
  query audit [USER|ACTION] [before=SEQ] [limit=1-1000]   (who did what: Start, OK, Failed, Refused)
  query app [VM]                           (applications the VM agents report)
  modify system [host_failure_detection_time=SECONDS] [vm_failure_detection_speed=fast|normal|slow] [ha_monitor=enable|disable]
  modify host_group NAME [options] [host_failure_detection_time=SECONDS] [vm_failure_detection_speed=...] [ha_monitor=...]
         [restart_policy=auto|advisory_mode] [memory_capacity=1-100 cpu_capacity=1-100 priority=low|medium|high]
  modify host NAME ha_monitor=enable|disable
  modify vm NAME[,NAME...] [vm_failure_detection_speed=...] [ha_monitor=...] [priority=high|medium|low]
         [blacklist_hosts=HOST1,... [policy=add|delete]] [homehost=HOST]
  manage|unmanage vm NAME[,NAME...]
  add collocation|anticollocation|workgroup NAME vm=VM1,VM2,...
  modify collocation|anticollocation|workgroup NAME policy=add|delete vm=VM1,...
  query|delete collocation|anticollocation|workgroup [NAME]
  restart vm NAME [host=TARGET]
  restore vm|host NAME                     (move back to the home host)
  cleanup host_group NAME                  (stale definitions on a host that came back, at either site)
  lpm vm NAME[,NAME...] [to=HOST] [action=validate|cancel]   (live partition mobility; no to=:
         the system picks the host) [max_downtime=MS] [policy=abort|force] [bandwidth=MB/s] [max_rounds=N]
         [monjv=NAME [monjv_password=PW]]   (a MONJV that follows the migration: $S $R $T $TW $AE $AF)
  lpm host NAME [to=HOST] [action=validate] [...]   (evacuate: every managed VM of the host)
  add su_cluster NAME hosts=HOST1,HOST2    (two server units sharing VM definitions; live migration)
  modify su_cluster NAME state=active|inactive
  query|remove su_cluster [NAME]
  recover vm_definition VM [host=LOCAL]    (take over from a unit whose alive messages stopped, start it)
  add monjv NAME vm=VM [password=PW]       (a monitoring job variable for the VM)
  modify monjv NAME user=TEXT [password=PW]   (bytes 129-256)
  query monjv [NAME] [password=PW] [wait=FROM-TO [timeout=SECONDS]]   (wait: until those bytes change)
  remove monjv NAME [password=PW]          (once monitoring ended)
  add notify user=NAME contact=ADDRESS     (an e-mail address, SMS/pager as digits@carrier, or an http(s) webhook URL)
  query notify [contact|USER]              (the contacts and how their deliveries stand)
  delete notify user=NAME [contact=ADDRESS]   (every contact of the user, or one)
  modify system [notification_level=disable|low|medium|high] [dup_event_processing=yes|no]
         [smtp_relay=HOST:PORT|none] [smtp_sender=ADDRESS]
  add snapshot [filepath=PATH]             (the configuration and policies, <cluster>_BASIC_<time>; kept: the newest 8)
  query snapshot [NAME]
  restore snapshot NAME|filepath=PATH      (onto a fresh cluster: HMCs, hosts, host groups discovered, policies)
  add ffdc [detail=TEXT]                   (a cluster-wide FFDC dump now: every node captures into one incident)
  query ffdc [ID] [node=NODE]              (incidents by time, one with each node's bundle; node=: as that node reads them)
  snap ffdc ID filepath=PATH [node=NODE]   (the incident as one tar.gz with checksums; the same bytes from every node)
  modify ffdc [triggers=all|none|T1,T2,...] [periodic=SECONDS|0] [hsdb_threshold=PCT] [hysteresis=PCT]
         [coalesce=SECONDS] [deadline=SECONDS] [quota=MIB] [node_cap=KIB] [incident_cap=MIB]
  trace log=user|ksys|fde|fdelong|krest|krestlong [node=NODE] [lines=N] [filepath=PATH]
         (a node's named trace log: the active controller's unless node= names another)
  query hsdb
  add hsdb_node ID endpoint=IP:PORT        (joins as a learner)
  modify hsdb_node ID role=voter|learner
  remove hsdb_node ID";

fn action(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "add" | "ad" | "create" | "cr" | "mk" | "make" => "add",
        "query" | "q" | "qu" | "ls" | "list" => "query",
        "discover" | "discovery" | "di" => "discover",
        "verify" | "ve" => "verify",
        "restart" | "re" => "restart",
        "lpm" | "migrate" => "lpm",
        "modify" | "mod" | "ch" | "change" => "modify",
        "remove" | "rm" | "delete" | "del" => "remove",
        "manage" => "manage",
        "unmanage" => "unmanage",
        "restore" => "restore",
        "cleanup" => "cleanup",
        "recover" => "recover",
        "ack" | "acknowledge" => "ack",
        "pair" => "pair",
        "move" | "mv" => "move",
        "snap" => "snap",
        _ => return None,
    })
}

fn class(word: &str) -> Option<Class> {
    word.parse().ok().or_else(|| word.parse().ok().map(Class::Affinity))
}

struct Words {
    name: Option<String>,
    attrs: BTreeMap<String, String>,
}

fn split(words: &[String], allowed: &[&str], what: &str) -> Result<Words, String> {
    let mut name = None;
    let mut attrs = BTreeMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                let k = k.to_ascii_lowercase();
                if !allowed.contains(&k.as_str()) {
                    let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                    return Err(format!("unknown attribute `{k}` for {what} (allowed: {allowed})"));
                }
                if v.is_empty() {
                    return Err(format!("attribute `{k}` needs a value"));
                }
                attrs.insert(k, v.to_string());
            }
            None if name.is_none() => name = Some(w.clone()),
            None => {
                return Err(format!("unexpected word `{w}` for {what}: attributes are key=value"));
            }
        }
    }
    Ok(Words { name, attrs })
}

/// `FROM-TO` (1-based bytes of a MONJV), e.g. `1-3`.
fn byte_range(range: &str) -> Result<(u32, u32), String> {
    let bad = || format!("wait={range} is not a byte range such as 1-3");
    let (from, to) = range.split_once('-').ok_or_else(bad)?;
    Ok((from.parse().map_err(|_| bad())?, to.parse().map_err(|_| bad())?))
}

fn required(w: &Words, what: &str) -> Result<String, String> {
    w.name.clone().ok_or_else(|| format!("{what} needs a name"))
}

fn node_id(w: &Words, what: &str) -> Result<u64, String> {
    let id = w.name.as_deref().ok_or_else(|| format!("{what} needs a node id"))?;
    match id.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{id}` is not an HSDB node id (a positive number)")),
    }
}

fn attr(w: &Words, key: &str, what: &str) -> Result<String, String> {
    w.attrs.get(key).cloned().ok_or_else(|| format!("{what} needs {key}="))
}

fn list(value: Option<&String>) -> Vec<String> {
    value.map(|v| items(v)).unwrap_or_default()
}

/// A change's action as the wire carries it.
fn change_action(act: &str) -> i32 {
    let action = match act {
        "add" => pb::ChangeAction::Add,
        "modify" => pb::ChangeAction::Modify,
        _ => pb::ChangeAction::Remove,
    };
    action as i32
}

fn scope(class: Class) -> i32 {
    let scope = match class {
        Class::Host => pb::Scope::Host,
        _ => pb::Scope::Vm,
    };
    scope as i32
}

fn yes_no(value: Option<&String>, key: &str) -> Result<bool, String> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "yes" || v == "true" => Ok(true),
        Some(v) if v == "no" || v == "false" => Ok(false),
        Some(v) => Err(format!("{key}={v}: use yes or no")),
    }
}

/// A number attribute, if given.
fn number<T: std::str::FromStr>(w: &Words, key: &str) -> Result<Option<T>, String> {
    w.attrs.get(key).map(|v| v.parse().map_err(|_| format!("{key}={v} is not a number"))).transpose()
}

/// `trace log=NAME [node=NODE] [lines=N] [filepath=PATH]` (an action without a class).
fn trace(rest: &[String]) -> Result<KsysCommand, String> {
    let w = split(rest, &["log", "node", "lines", "filepath"], "trace")?;
    if let Some(word) = w.name {
        return Err(format!("unexpected word `{word}` for trace: use log=NAME"));
    }
    let request = pb::TraceRequest {
        log: attr(&w, "log", "trace")?,
        node: w.attrs.get("node").cloned().unwrap_or_default(),
        lines: number(&w, "lines")?.unwrap_or(0),
    };
    Ok(KsysCommand::Trace { request, filepath: w.attrs.get("filepath").cloned() })
}

/// Parses the words after the options.
pub fn parse(words: &[String]) -> Result<KsysCommand, String> {
    if let [act, rest @ ..] = words
        && act.eq_ignore_ascii_case("trace")
    {
        return trace(rest);
    }
    let [act, cls, rest @ ..] = words else {
        return Err("an action and a class are required".into());
    };
    let act = action(act).ok_or_else(|| {
        format!(
            "unknown action `{act}` (add, modify, remove, query, discover, verify, restart, restore, manage, unmanage, cleanup, lpm, recover, ack, pair, move, snap, trace)"
        )
    })?;
    let cls = class(cls).ok_or_else(|| {
        format!(
            "unknown class `{cls}` (system, ksyscluster, hmc, host, host_group, vios, vm, event, audit, app, collocation, anticollocation, workgroup, hsdb, hsdb_node, monjv, su_cluster, vm_definition, notify, snapshot, site, storage_agent, dr_identity, ffdc)"
        )
    })?;
    let what = format!("{act} {}", words[1]);
    Ok(match (act, cls) {
        ("add", Class::Cluster) => {
            let w = split(rest, &["type", "ksysnodes", "sync"], &what)?;
            let cluster_type = match w.attrs.get("type").map(|t| t.to_ascii_uppercase()).as_deref() {
                None | Some("HA") => pb::ClusterType::Ha,
                Some("DR") => pb::ClusterType::Dr,
                Some(other) => return Err(format!("type={other}: use HA or DR")),
            };
            KsysCommand::AddCluster(pb::AddClusterRequest {
                name: required(&w, &what)?,
                r#type: cluster_type as i32,
                ksysnodes: list(w.attrs.get("ksysnodes")),
                sync: yes_no(w.attrs.get("sync"), "sync")?,
            })
        }
        ("remove", Class::Cluster) => {
            let w = split(rest, &["filepath"], &what)?;
            KsysCommand::RemoveCluster { name: required(&w, &what)?, filepath: w.attrs.get("filepath").cloned() }
        }
        ("add", Class::Hmc) => {
            let w = split(rest, &["login", "password", "ip", "site"], &what)?;
            KsysCommand::AddHmc {
                name: required(&w, &what)?,
                login: attr(&w, "login", &what)?,
                password: w.attrs.get("password").cloned(),
                ip: attr(&w, "ip", &what)?,
                site: w.attrs.get("site").cloned().unwrap_or_default(),
            }
        }
        ("add", Class::Site) => {
            let w = split(rest, &["sitetype"], &what)?;
            let site_type = match attr(&w, "sitetype", &what)?.to_ascii_lowercase().as_str() {
                "home" => pb::SiteType::Home,
                "backup" => pb::SiteType::Backup,
                other => return Err(format!("sitetype={other}: use home or backup")),
            };
            KsysCommand::AddSite(pb::AddSiteRequest { name: required(&w, &what)?, site_type: site_type as i32 })
        }
        ("add", Class::StorageAgent) => {
            let w = split(rest, &["site", "ip"], &what)?;
            KsysCommand::AddStorageAgent(pb::AddStorageAgentRequest {
                name: required(&w, &what)?,
                site: attr(&w, "site", &what)?,
                ip: attr(&w, "ip", &what)?,
            })
        }
        ("add" | "remove", Class::DrIdentity) => {
            let w = split(rest, &["vm", "site", "hostname", "ip", "netmask", "gateway"], &what)?;
            let adding = act == "add";
            let get = |key: &str| match adding {
                true => attr(&w, key, &what),
                false => Ok(String::new()),
            };
            KsysCommand::ChangeDrIdentity(pb::DrIdentityChange {
                action: change_action(act),
                vm: attr(&w, "vm", &what)?,
                site: attr(&w, "site", &what)?,
                hostname: get("hostname")?,
                ip: get("ip")?,
                netmask: get("netmask")?,
                gateway: get("gateway")?,
            })
        }
        ("pair", Class::Host) => {
            let w = split(rest, &["pair"], &what)?;
            KsysCommand::PairHost(pb::PairHostRequest { host: required(&w, &what)?, pair: attr(&w, "pair", &what)? })
        }
        ("discover", Class::Site) => {
            let w = split(rest, &["verify"], &what)?;
            let verify = yes_no(w.attrs.get("verify"), "verify")?;
            KsysCommand::DiscoverSite(pb::DiscoverSiteRequest { site: required(&w, &what)?, verify })
        }
        ("move", Class::HostGroup) => {
            let w = split(rest, &["to", "dr_type", "dr_test"], &what)?;
            let dr_type = match w.attrs.get("dr_type").map(|t| t.to_ascii_lowercase()).as_deref() {
                None | Some("planned") => pb::DrType::Planned,
                Some("unplanned") => pb::DrType::Unplanned,
                Some(other) => return Err(format!("dr_type={other}: use planned or unplanned")),
            };
            KsysCommand::Move(pb::MoveRequest {
                host_group: required(&w, &what)?,
                to: attr(&w, "to", &what)?,
                dr_type: dr_type as i32,
                confirm: false,
                dr_test: yes_no(w.attrs.get("dr_test"), "dr_test")?,
            })
        }
        ("add", Class::Host) => KsysCommand::AddHost { name: required(&split(rest, &[], &what)?, &what)? },
        ("add", Class::HostGroup) => {
            let w = split(rest, &["hosts", "repo_disk", "ha_disk"], &what)?;
            let hosts = list(w.attrs.get("hosts"));
            if hosts.is_empty() {
                return Err(format!("{what} needs hosts=HOST1,HOST2,..."));
            }
            KsysCommand::AddHostGroup {
                name: required(&w, &what)?,
                hosts,
                repo_disk: w.attrs.get("repo_disk").cloned(),
                ha_disk: w.attrs.get("ha_disk").cloned(),
            }
        }
        ("discover", Class::HostGroup) => {
            let w = split(rest, &["verify"], &what)?;
            KsysCommand::Discover { host_group: required(&w, &what)?, verify: yes_no(w.attrs.get("verify"), "verify")? }
        }
        ("verify", Class::HostGroup) => KsysCommand::Verify { host_group: required(&split(rest, &[], &what)?, &what)? },
        ("query", Class::Monjv) => {
            let w = split(rest, &["password", "wait", "timeout"], &what)?;
            let wait = match w.attrs.get("wait") {
                None => None,
                Some(range) => Some(byte_range(range)?),
            };
            let timeout_ms = match w.attrs.get("timeout") {
                None => 0,
                Some(t) => {
                    t.parse::<f64>().map(|s| (s * 1000.0) as u32).map_err(|_| format!("timeout={t} is not seconds"))?
                }
            };
            if wait.is_none() && w.attrs.contains_key("timeout") {
                return Err(format!("{what}: timeout= goes with wait=FROM-TO"));
            }
            KsysCommand::QueryMonjv {
                name: w.name.clone().unwrap_or_default(),
                password: w.attrs.get("password").cloned().unwrap_or_default(),
                wait,
                timeout_ms,
            }
        }
        ("query", Class::Event | Class::Audit) => {
            let allowed: &[&str] = match cls {
                Class::Event => &["before", "limit", "severity", "unacknowledged", "watch", "after"],
                _ => &["before", "limit"],
            };
            let w = split(rest, allowed, &what)?;
            let number = |key: &str| {
                w.attrs.get(key).map(|v| v.parse::<u64>().map_err(|_| format!("{key}={v} is not a number"))).transpose()
            };
            let limit = number("limit")?.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
            let (name, before) = (w.name.clone().unwrap_or_default(), number("before")?);
            let severity = match w.attrs.get("severity") {
                None => 0,
                Some(s) => i32::from(
                    s.parse::<Severity>()
                        .map_err(|_| format!("severity={s}: use critical, warning, maintenance or informational"))?,
                ),
            };
            let unacknowledged = yes_no(w.attrs.get("unacknowledged"), "unacknowledged")?;
            match (cls, yes_no(w.attrs.get("watch"), "watch")?) {
                (Class::Event, true) if before.is_some() || limit.is_some() || unacknowledged => {
                    return Err(format!("{what} watch=yes takes a name, severity= and after=, not pages"));
                }
                (Class::Event, true) => {
                    KsysCommand::WatchEvents(pb::EventWatch { name, after: number("after")?, severity })
                }
                (Class::Event, false) if w.attrs.contains_key("after") => {
                    return Err("after= goes with watch=yes (pages go back with before=)".to_string());
                }
                (Class::Event, false) => KsysCommand::QueryEvent(pb::EventQuery {
                    name,
                    before,
                    limit,
                    severity,
                    unacknowledged,
                    follower_read: false,
                }),
                _ => KsysCommand::QueryAudit { name, before, limit },
            }
        }
        ("ack", Class::Event) => {
            let w = split(rest, &[], &what)?;
            let which = w.name.ok_or_else(|| format!("{what} needs an event's sequence number or `all`"))?;
            KsysCommand::AckEvent(match which.eq_ignore_ascii_case("all") {
                true => pb::AckRequest { sequence: 0, all: true },
                false => match which.parse::<u64>() {
                    Ok(sequence) if sequence > 0 => pb::AckRequest { sequence, all: false },
                    _ => return Err(format!("`{which}` is not an event's sequence number (or `all`)")),
                },
            })
        }
        ("query", Class::System) => {
            let w = split(rest, &["monitor"], &what)?;
            match w.name.as_deref() {
                None if w.attrs.is_empty() => KsysCommand::Query { class: Class::System, name: String::new() },
                Some(s) if s.eq_ignore_ascii_case("status") => {
                    KsysCommand::QueryStatus { monitor: yes_no(w.attrs.get("monitor"), "monitor")? }
                }
                _ => return Err(format!("{what} takes no name: query system, or query system status [monitor=yes]")),
            }
        }
        ("query", Class::Vm) => {
            let w = split(rest, &["state"], &what)?;
            let managed = match w.attrs.get("state").map(|s| s.to_ascii_lowercase()).as_deref() {
                None => None,
                Some("manage" | "managed") => Some(true),
                Some("unmanage" | "unmanaged") => Some(false),
                Some(other) => return Err(format!("state={other}: use manage or unmanage")),
            };
            KsysCommand::QueryVm { name: w.name.unwrap_or_default(), managed }
        }
        ("query", Class::Notify) => {
            let w = split(rest, &[], &what)?;
            // The seed lists every contact with `query notify contact`.
            let name = w.name.filter(|n| !n.eq_ignore_ascii_case("contact")).unwrap_or_default();
            KsysCommand::Query { class: Class::Notify, name }
        }
        ("query", Class::Ffdc) => {
            let w = split(rest, &["node"], &what)?;
            KsysCommand::QueryFfdc { id: w.name.unwrap_or_default(), node: w.attrs.get("node").cloned() }
        }
        ("query", class) => {
            let w = split(rest, &[], &what)?;
            KsysCommand::Query { class, name: w.name.unwrap_or_default() }
        }
        ("restart", Class::Vm) => {
            let w = split(rest, &["host"], &what)?;
            KsysCommand::RestartVm { vm: required(&w, &what)?, host: w.attrs.get("host").cloned().unwrap_or_default() }
        }
        ("lpm", class @ (Class::Vm | Class::Host)) => {
            let allowed =
                ["to", "action", "max_downtime", "policy", "bandwidth", "max_rounds", "monjv", "monjv_password"];
            let w = split(rest, &allowed, &what)?;
            let number = |key: &str| -> Result<u32, String> {
                w.attrs.get(key).map_or(Ok(0), |v| v.parse().map_err(|_| format!("{key}={v} is not a whole number")))
            };
            let policy = match w.attrs.get("policy").map(|p| p.to_ascii_lowercase()).as_deref() {
                None | Some("abort") => pb::ConvergencePolicy::Abort,
                Some("force") => pb::ConvergencePolicy::Force,
                Some(other) => return Err(format!("policy={other}: use abort or force")),
            };
            let action = match w.attrs.get("action").map(|a| a.to_ascii_lowercase()).as_deref() {
                None => pb::MigrateAction::Migrate,
                Some("validate") => pb::MigrateAction::Validate,
                Some("cancel") => pb::MigrateAction::Cancel,
                Some(other) => {
                    return Err(format!("action={other}: use validate or cancel, or leave it out to migrate"));
                }
            };
            let limits = pb::MigrationLimits {
                max_downtime_ms: number("max_downtime")?,
                max_rounds: number("max_rounds")?,
                policy: policy as i32,
                bandwidth_mb_s: number("bandwidth")?,
            };
            KsysCommand::Lpm(pb::MigrateRequest {
                scope: scope(class),
                names: items(&required(&w, &what)?),
                to: w.attrs.get("to").cloned().unwrap_or_default(),
                action: action as i32,
                limits: Some(limits),
                monjv: w.attrs.get("monjv").cloned().unwrap_or_default(),
                monjv_password: w.attrs.get("monjv_password").cloned().unwrap_or_default(),
            })
        }
        (act @ ("add" | "modify" | "remove"), Class::SuCluster) => {
            let allowed: &[&str] = match act {
                "add" => &["hosts"],
                "modify" => &["state"],
                _ => &[],
            };
            let w = split(rest, allowed, &what)?;
            if act == "add" && !w.attrs.contains_key("hosts") {
                return Err(format!("{what} needs hosts=HOST1,HOST2"));
            }
            if act == "modify" && !w.attrs.contains_key("state") {
                return Err(format!("{what} needs state=active|inactive"));
            }
            let active = match w.attrs.get("state").map(|s| s.to_ascii_lowercase()).as_deref() {
                None => None,
                Some("active") => Some(true),
                Some("inactive") => Some(false),
                Some(other) => return Err(format!("state={other}: use active or inactive")),
            };
            KsysCommand::ChangeSuCluster(pb::SuClusterChange {
                action: change_action(act),
                name: required(&w, &what)?,
                hosts: list(w.attrs.get("hosts")),
                active,
            })
        }
        ("recover", Class::VmDefinition) => {
            let w = split(rest, &["host"], &what)?;
            KsysCommand::RecoverVmDefinition {
                vm: required(&w, &what)?,
                host: w.attrs.get("host").cloned().unwrap_or_default(),
            }
        }
        (act @ ("add" | "modify" | "remove"), Class::Monjv) => {
            let allowed: &[&str] = match act {
                "add" => &["vm", "password"],
                "modify" => &["user", "password"],
                _ => &["password"],
            };
            let w = split(rest, allowed, &what)?;
            let vm = match act {
                "add" => attr(&w, "vm", &what)?,
                _ => String::new(),
            };
            let user = match act {
                "modify" => attr(&w, "user", &what)?,
                _ => String::new(),
            };
            KsysCommand::ChangeMonjv(pb::MonjvChange {
                action: change_action(act),
                name: required(&w, &what)?,
                vm,
                password: w.attrs.get("password").cloned().unwrap_or_default(),
                user,
            })
        }
        ("add", Class::HsdbNode) => {
            let w = split(rest, &["endpoint"], &what)?;
            KsysCommand::AddHsdbNode { node_id: node_id(&w, &what)?, endpoint: attr(&w, "endpoint", &what)? }
        }
        ("modify", Class::HsdbNode) => {
            let w = split(rest, &["role"], &what)?;
            let role = match attr(&w, "role", &what)?.to_ascii_lowercase().as_str() {
                "voter" => pb::HsdbRole::Voter,
                "learner" => pb::HsdbRole::Learner,
                other => return Err(format!("role={other}: use voter or learner")),
            };
            KsysCommand::ModifyHsdbNode(pb::ModifyHsdbNodeRequest { node_id: node_id(&w, &what)?, role: role as i32 })
        }
        ("modify", level @ (Class::System | Class::HostGroup | Class::Host | Class::Vm)) => {
            // The seed writes `modify host_group HG options memory_capacity=60 …`: the word
            // `options` after the name (first for the system) only introduces the attributes.
            let at = if level == Class::System { 0 } else { 1 };
            let rest: Vec<String> = rest
                .iter()
                .enumerate()
                .filter(|(i, w)| !(*i == at && *w == "options"))
                .map(|(_, w)| w.clone())
                .collect();
            let w = split(&rest, KEYS, &what)?;
            let (level, names) = match level {
                Class::System => (pb::ModifyLevel::System, Vec::new()),
                Class::HostGroup => (pb::ModifyLevel::HostGroup, vec![required(&w, &what)?]),
                Class::Host => (pb::ModifyLevel::Host, vec![required(&w, &what)?]),
                _ => (pb::ModifyLevel::Vm, items(&required(&w, &what)?)),
            };
            if let (pb::ModifyLevel::System, Some(name)) = (level, &w.name) {
                return Err(format!("unexpected word `{name}` for {what}: attributes are key=value"));
            }
            if w.attrs.is_empty() {
                return Err(format!("{what} needs at least one attribute=value"));
            }
            KsysCommand::Modify(pb::ModifyRequest { level: level as i32, names, settings: Some(settings(&w.attrs)?) })
        }
        (act @ ("manage" | "unmanage"), Class::Vm) => {
            let w = split(rest, &["name"], &what)?;
            let vms = w.attrs.get("name").cloned().or(w.name).ok_or_else(|| format!("{what} needs VM names"))?;
            KsysCommand::Manage(pb::ManageRequest { vms: items(&vms), manage: act == "manage" })
        }
        (act @ ("add" | "modify" | "remove"), Class::Affinity(kind)) => {
            let allowed: &[&str] = if act == "modify" { &["vm", "policy"] } else { &["vm"] };
            let w = split(rest, allowed, &what)?;
            let vms = list(w.attrs.get("vm"));
            if act != "remove" && vms.is_empty() {
                return Err(format!("{what} needs vm=VM1,VM2,..."));
            }
            let remove_vms = match (act, w.attrs.get("policy").map(|p| p.to_ascii_lowercase()).as_deref()) {
                ("modify", Some("add")) => false,
                ("modify", Some("delete")) => true,
                ("modify", _) => return Err(format!("{what} needs policy=add|delete")),
                _ => false,
            };
            KsysCommand::Affinity(pb::AffinityRequest {
                action: change_action(act),
                kind: kind.into(),
                name: required(&w, &what)?,
                vms,
                remove_vms,
            })
        }
        ("restore", class @ (Class::Vm | Class::Host)) => KsysCommand::Restore(pb::RestoreRequest {
            scope: scope(class),
            name: required(&split(rest, &[], &what)?, &what)?,
        }),
        ("cleanup", Class::HostGroup) => {
            let w = split(rest, &["dr_test"], &what)?;
            KsysCommand::Cleanup {
                host_group: required(&w, &what)?,
                dr_test: yes_no(w.attrs.get("dr_test"), "dr_test")?,
            }
        }
        ("add", Class::Notify) => {
            let w = split(rest, &["user", "contact"], &what)?;
            if let Some(word) = w.name {
                return Err(format!("unexpected word `{word}` for {what}: use user=NAME contact=ADDRESS"));
            }
            KsysCommand::AddNotify(pb::NotifyRequest {
                user: attr(&w, "user", &what)?,
                contact: attr(&w, "contact", &what)?,
            })
        }
        ("remove", Class::Notify) => {
            let w = split(rest, &["user", "contact"], &what)?;
            if let Some(word) = w.name {
                return Err(format!("unexpected word `{word}` for {what}: use user=NAME [contact=ADDRESS]"));
            }
            let contact = w.attrs.get("contact").cloned().unwrap_or_default();
            KsysCommand::DeleteNotify(pb::NotifyRequest { user: attr(&w, "user", &what)?, contact })
        }
        ("add", Class::Ffdc) => {
            let w = split(rest, &["detail"], &what)?;
            if let Some(word) = w.name {
                return Err(format!("unexpected word `{word}` for {what}: use [detail=TEXT]"));
            }
            KsysCommand::AddFfdc { detail: w.attrs.get("detail").cloned().unwrap_or_default() }
        }
        ("snap", Class::Ffdc) => {
            let w = split(rest, &["filepath", "node"], &what)?;
            KsysCommand::SnapFfdc {
                id: w
                    .name
                    .clone()
                    .ok_or_else(|| format!("{what} needs an incident id (`ksysmgr query ffdc` lists them)"))?,
                filepath: attr(&w, "filepath", &what)?,
                node: w.attrs.get("node").cloned(),
            }
        }
        ("modify", Class::Ffdc) => {
            let keys = [
                "triggers",
                "periodic",
                "hsdb_threshold",
                "hysteresis",
                "coalesce",
                "deadline",
                "quota",
                "node_cap",
                "incident_cap",
            ];
            let w = split(rest, &keys, &what)?;
            if let Some(word) = w.name {
                return Err(format!("unexpected word `{word}` for {what}: attributes are key=value"));
            }
            if w.attrs.is_empty() {
                return Err(format!("{what} needs at least one of {}=", keys.join("=, ")));
            }
            KsysCommand::ModifyFfdc(pb::FfdcSettingsChange {
                triggers: list(w.attrs.get("triggers")),
                periodic_secs: number(&w, "periodic")?,
                hsdb_threshold_pct: number(&w, "hsdb_threshold")?,
                hysteresis_pct: number(&w, "hysteresis")?,
                coalesce_secs: number(&w, "coalesce")?,
                deadline_secs: number(&w, "deadline")?,
                quota_mib: number(&w, "quota")?,
                node_cap_kib: number(&w, "node_cap")?,
                incident_cap_mib: number(&w, "incident_cap")?,
            })
        }
        ("add", Class::Snapshot) => {
            let w = split(rest, &["filepath"], &what)?;
            if let Some(word) = w.name {
                return Err(format!("unexpected word `{word}` for {what}: use [filepath=PATH]"));
            }
            KsysCommand::AddSnapshot { filepath: w.attrs.get("filepath").cloned() }
        }
        ("restore", Class::Snapshot) => {
            let w = split(rest, &["filepath"], &what)?;
            match (w.name, w.attrs.get("filepath")) {
                (Some(name), None) => KsysCommand::RestoreSnapshot { name, filepath: None },
                (None, Some(path)) => {
                    KsysCommand::RestoreSnapshot { name: String::new(), filepath: Some(path.clone()) }
                }
                _ => return Err(format!("{what} needs a snapshot's name or filepath=PATH (one of them)")),
            }
        }
        ("remove", Class::HsdbNode) => {
            KsysCommand::RemoveHsdbNode { node_id: node_id(&split(rest, &[], &what)?, &what)? }
        }
        (_, Class::App) => {
            return Err(format!(
                "`{what}`: application HA policies are configured only in the VM, with ksysvmmgr; ksysmgr can only query app"
            ));
        }
        _ => return Err(format!("`{what}` is not a supported command")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<KsysCommand, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn seed_examples_parse() {
        assert_eq!(
            p("add hmc rthmc3 login=hscroot password=abc123 ip=9.3.18.159").unwrap(),
            KsysCommand::AddHmc {
                name: "rthmc3".into(),
                login: "hscroot".into(),
                password: Some("abc123".into()),
                ip: "9.3.18.159".into(),
                site: String::new(),
            }
        );
        assert_eq!(
            p("move host_group Default_HG to=sitert12").unwrap(),
            KsysCommand::Move(pb::MoveRequest {
                host_group: "Default_HG".into(),
                to: "sitert12".into(),
                dr_type: pb::DrType::Planned as i32,
                confirm: false,
                dr_test: false,
            })
        );
        assert_eq!(
            p("discover site sitert11 verify=yes").unwrap(),
            KsysCommand::DiscoverSite(pb::DiscoverSiteRequest { site: "sitert11".into(), verify: true })
        );
        assert_eq!(
            p("discovery host_group ITSO_HG verify=yes").unwrap(),
            KsysCommand::Discover { host_group: "ITSO_HG".into(), verify: true }
        );
        assert_eq!(
            p("add ksyscluster ITSO_HA ksysnodes=ksys7005rbdr sync=yes type=HA").unwrap(),
            KsysCommand::AddCluster(pb::AddClusterRequest {
                name: "ITSO_HA".into(),
                r#type: pb::ClusterType::Ha as i32,
                ksysnodes: vec!["ksys7005rbdr".into()],
                sync: true
            })
        );
        assert_eq!(p("q cl").unwrap(), KsysCommand::Query { class: Class::Cluster, name: String::new() });
        assert_eq!(
            p("add host_group HG hosts=a,b repo_disk=x").unwrap(),
            KsysCommand::AddHostGroup {
                name: "HG".into(),
                hosts: vec!["a".into(), "b".into()],
                repo_disk: Some("x".into()),
                ha_disk: None
            }
        );
        assert_eq!(p("restart vm v1 host=h2").unwrap(), KsysCommand::RestartVm { vm: "v1".into(), host: "h2".into() });
        assert_eq!(
            p("query event vm-1 before=9 limit=2").unwrap(),
            KsysCommand::QueryEvent(pb::EventQuery {
                name: "vm-1".into(),
                before: Some(9),
                limit: Some(2),
                ..Default::default()
            })
        );
        assert!(p("query event limit=many").unwrap_err().contains("limit=many is not a number"));
        assert!(p("query event after=3").unwrap_err().contains("goes with watch=yes"), "before= pages back");
        let critical = pb::Severity::Critical as i32;
        assert_eq!(
            p("query event severity=CRITICAL unacknowledged=yes").unwrap(),
            KsysCommand::QueryEvent(pb::EventQuery { severity: critical, unacknowledged: true, ..Default::default() })
        );
        assert_eq!(
            p("query event host-1 watch=yes after=40 severity=critical").unwrap(),
            KsysCommand::WatchEvents(pb::EventWatch { name: "host-1".into(), after: Some(40), severity: critical })
        );
        assert!(p("query event watch=yes limit=3").unwrap_err().contains("not pages"));
        assert!(p("query event severity=loud").unwrap_err().contains("critical, warning"));
        assert_eq!(p("ack event 7").unwrap(), KsysCommand::AckEvent(pb::AckRequest { sequence: 7, all: false }));
        assert_eq!(p("ack event ALL").unwrap(), KsysCommand::AckEvent(pb::AckRequest { sequence: 0, all: true }));
        assert!(p("ack event 0").unwrap_err().contains("not an event's sequence number"));
        assert!(p("ack event").unwrap_err().contains("needs an event's sequence number"));
        assert_eq!(p("query system status monitor=yes").unwrap(), KsysCommand::QueryStatus { monitor: true });
        assert_eq!(p("q sys status").unwrap(), KsysCommand::QueryStatus { monitor: false });
        assert!(p("query system monitor=yes").unwrap_err().contains("query system status [monitor=yes]"));
        assert_eq!(p("add snapshot").unwrap(), KsysCommand::AddSnapshot { filepath: None });
        assert_eq!(p("add ffdc detail=why").unwrap(), KsysCommand::AddFfdc { detail: "why".into() });
        assert_eq!(
            p("snap ffdc X filepath=/tmp/a.tgz node=ctl-2").unwrap(),
            KsysCommand::SnapFfdc { id: "X".into(), filepath: "/tmp/a.tgz".into(), node: Some("ctl-2".into()) }
        );
        assert!(p("snap ffdc filepath=/tmp/a").unwrap_err().contains("needs an incident id"));
        assert!(p("snap ffdc X").unwrap_err().contains("needs filepath="));
        let modify = p("modify ffdc triggers=manual,node_failed quota=8").unwrap();
        let KsysCommand::ModifyFfdc(change) = modify else { panic!("{modify:?}") };
        assert_eq!((change.triggers.len(), change.quota_mib, change.periodic_secs), (2, Some(8), None));
        assert!(p("modify ffdc quota=lots").unwrap_err().contains("quota=lots is not a number"));
        assert!(p("modify ffdc").unwrap_err().contains("needs at least one"));
        let KsysCommand::Trace { request, filepath } = p("trace log=fde lines=20").unwrap() else { panic!() };
        assert_eq!((request.log.as_str(), request.lines, filepath), ("fde", 20, None));
        assert!(p("trace").unwrap_err().contains("trace needs log="));
        assert_eq!(
            p("delete ksyscluster ITSO_HA").unwrap(),
            KsysCommand::RemoveCluster { name: "ITSO_HA".into(), filepath: None }
        );
        assert!(p("remove ksyscluster").unwrap_err().contains("needs"), "{:?}", p("remove ksyscluster"));
        assert_eq!(
            p("restore snapshot filepath=/tmp/s.json").unwrap(),
            KsysCommand::RestoreSnapshot { name: String::new(), filepath: Some("/tmp/s.json".into()) }
        );
        assert!(p("restore snapshot a filepath=b").unwrap_err().contains("one of them"));
        assert_eq!(
            p("query audit bob limit=5").unwrap(),
            KsysCommand::QueryAudit { name: "bob".into(), before: None, limit: Some(5) }
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(p("frobnicate vm").unwrap_err().contains("unknown action"));
        assert!(p("query widget").unwrap_err().contains("unknown class"));
        assert!(p("add hmc h1 login=a password=b").unwrap_err().contains("ip="));
        let asked = p("add hmc h1 login=a ip=10.0.0.1").unwrap();
        assert!(matches!(asked, KsysCommand::AddHmc { password: None, .. }), "{asked:?}");
        assert!(p("restart vm v1 color=red").unwrap_err().contains("unknown attribute `color`"));
        assert!(p("discover host_group HG verify=maybe").unwrap_err().contains("yes or no"));
        assert!(p("add host_group HG").unwrap_err().contains("hosts="));
        assert!(p("restart vm").unwrap_err().contains("needs a name"));
        assert!(p("query").unwrap_err().contains("action and a class"));
        assert!(p("lpm vios v1").unwrap_err().contains("not a supported command"));
        assert!(p("lpm vm v1 max_downtime=soon").unwrap_err().contains("not a whole number"));
        assert!(p("add hsdb_node four endpoint=127.0.0.1:7004").unwrap_err().contains("not an HSDB node id"));
        assert!(p("add hsdb_node 4").unwrap_err().contains("endpoint="));
        assert!(p("remove hsdb_node").unwrap_err().contains("needs a node id"));
        assert!(p("move host_group HG").unwrap_err().contains("to="));
        assert!(p("move host_group HG to=B dr_type=sometimes").unwrap_err().contains("planned or unplanned"));
        assert!(p("add site S sitetype=spare").unwrap_err().contains("home or backup"));
        assert!(p("pair host h1").unwrap_err().contains("pair="));
    }

    #[test]
    fn lpm_commands_parse_with_their_limits() {
        let KsysCommand::Lpm(req) = p("lpm vm v1 to=h2 max_downtime=100 policy=force bandwidth=20").unwrap() else {
            panic!("an lpm")
        };
        assert_eq!(
            (req.scope(), req.names.as_slice(), req.to.as_str()),
            (pb::Scope::Vm, &["v1".to_string()][..], "h2")
        );
        let limits = req.limits.unwrap();
        assert_eq!(
            (limits.max_downtime_ms, limits.policy(), limits.bandwidth_mb_s),
            (100, pb::ConvergencePolicy::Force, 20)
        );
        let KsysCommand::Lpm(req) = p("migrate host h1 action=validate").unwrap() else { panic!("an lpm") };
        assert_eq!((req.scope(), req.action(), req.to.as_str()), (pb::Scope::Host, pb::MigrateAction::Validate, ""));
        let KsysCommand::Lpm(req) = p("lpm vm a,b").unwrap() else { panic!("an lpm") };
        assert_eq!(req.names, ["a", "b"]);
        assert!(p("lpm vm v1 action=later").unwrap_err().contains("validate or cancel"));
        assert!(p("lpm vm v1 policy=maybe").unwrap_err().contains("abort or force"));
    }

    #[test]
    fn su_cluster_commands_parse() {
        let KsysCommand::ChangeSuCluster(c) = p("add su_cluster SUC hosts=h1,h2").unwrap() else { panic!("a change") };
        assert_eq!((c.action(), c.hosts.len()), (pb::ChangeAction::Add, 2));
        let KsysCommand::ChangeSuCluster(c) = p("modify su_cluster SUC state=inactive").unwrap() else { panic!() };
        assert_eq!((c.action(), c.active), (pb::ChangeAction::Modify, Some(false)));
        assert!(p("add su_cluster SUC").unwrap_err().contains("hosts="));
        assert!(p("modify su_cluster SUC").unwrap_err().contains("state="));
        assert_eq!(
            p("recover vm_definition vm1").unwrap(),
            KsysCommand::RecoverVmDefinition { vm: "vm1".into(), host: String::new() }
        );
    }

    #[test]
    fn monjv_commands_parse() {
        assert_eq!(
            p("query monjv JV.VM1 wait=1-3 timeout=2.5").unwrap(),
            KsysCommand::QueryMonjv {
                name: "JV.VM1".into(),
                password: String::new(),
                wait: Some((1, 3)),
                timeout_ms: 2500
            }
        );
        let KsysCommand::ChangeMonjv(c) = p("add monjv JV.VM1 vm=vm-1-1 password=pw").unwrap() else {
            panic!("a change")
        };
        assert_eq!((c.action(), c.vm.as_str(), c.password.as_str()), (pb::ChangeAction::Add, "vm-1-1", "pw"));
        assert!(p("add monjv JV.VM1").unwrap_err().contains("vm="));
        assert!(p("modify monjv JV.VM1").unwrap_err().contains("user="));
        assert!(p("query monjv JV wait=3").unwrap_err().contains("byte range"));
        assert!(p("query monjv JV timeout=3").unwrap_err().contains("goes with wait"));
    }

    #[test]
    fn hsdb_membership_commands_parse() {
        assert_eq!(
            p("add hsdb_node 4 endpoint=127.0.0.1:7004").unwrap(),
            KsysCommand::AddHsdbNode { node_id: 4, endpoint: "127.0.0.1:7004".into() }
        );
        assert_eq!(
            p("modify hsdb_node 4 role=voter").unwrap(),
            KsysCommand::ModifyHsdbNode(pb::ModifyHsdbNodeRequest { node_id: 4, role: pb::HsdbRole::Voter as i32 })
        );
        assert!(p("modify hsdb_node 4 role=boss").unwrap_err().contains("voter or learner"));
        assert_eq!(p("rm hsdb_node 4").unwrap(), KsysCommand::RemoveHsdbNode { node_id: 4 });
        assert_eq!(p("q hsdb").unwrap(), KsysCommand::Query { class: Class::Hsdb, name: String::new() });
        assert_eq!(p("q app vm1").unwrap(), KsysCommand::Query { class: Class::App, name: "vm1".into() });
        assert!(p("modify app app1 critical=yes").unwrap_err().contains("only in the VM, with ksysvmmgr"));
    }

    #[test]
    fn query_vm_takes_the_seeds_state_filter() {
        let q = |name: &str, managed| KsysCommand::QueryVm { name: name.into(), managed };
        assert_eq!(p("query vm state=manage").unwrap(), q("", Some(true)));
        assert_eq!(p("q vm state=unmanage").unwrap(), q("", Some(false)));
        assert_eq!(p("q vm vm-1-1").unwrap(), q("vm-1-1", None));
        assert!(p("q vm state=running").unwrap_err().contains("use manage or unmanage"));
    }

    #[test]
    fn modify_commands_parse_per_level() {
        let modify = |level: pb::ModifyLevel, names: &[&str], settings: pb::Settings| {
            KsysCommand::Modify(pb::ModifyRequest {
                level: level as i32,
                names: names.iter().map(|n| n.to_string()).collect(),
                settings: Some(settings),
            })
        };
        let capacity =
            pb::Settings { memory_capacity: Some(60), priority: pb::Priority::Medium as i32, ..Default::default() };
        assert_eq!(
            p("modify system host_failure_detection_time=120").unwrap(),
            modify(
                pb::ModifyLevel::System,
                &[],
                pb::Settings { host_failure_detection_time_ms: Some(120_000), ..Default::default() }
            )
        );
        assert_eq!(
            p("ch hg HG1 memory_capacity=60 priority=medium").unwrap(),
            modify(pb::ModifyLevel::HostGroup, &["HG1"], capacity.clone())
        );
        // Seed Example 3-53's form, with `options` before the attributes.
        assert_eq!(
            p("modify host_group HG1 options memory_capacity=60 priority=medium").unwrap(),
            modify(pb::ModifyLevel::HostGroup, &["HG1"], capacity)
        );
        let on = pb::Settings { ha_monitor: Some(true), ..Default::default() };
        assert_eq!(p("modify system options ha_monitor=enable").unwrap(), modify(pb::ModifyLevel::System, &[], on));
        assert!(p("modify host_group HG1 HG2 memory_capacity=60").unwrap_err().contains("unexpected word `HG2`"));
        let blacklist = pb::Blacklist { hosts: vec!["h1".into(), "h2".into()], remove: true };
        assert_eq!(
            p("modify vm rt11004,rt11005 blacklist_hosts=h1,h2 policy=delete").unwrap(),
            modify(
                pb::ModifyLevel::Vm,
                &["rt11004", "rt11005"],
                pb::Settings { blacklist: Some(blacklist), ..Default::default() }
            )
        );
        let off = pb::Settings { ha_monitor: Some(false), ..Default::default() };
        assert_eq!(p("modify host h1 ha_monitor=disable").unwrap(), modify(pb::ModifyLevel::Host, &["h1"], off));
        assert!(p("modify vm a colour=red").unwrap_err().contains("unknown attribute"));
        assert!(p("modify vm a priority=urgent").unwrap_err().contains("high, medium or low"));
        assert!(p("modify host_group vm_failure_detection_speed=fast").unwrap_err().contains("needs a name"));
        assert!(p("modify system").unwrap_err().contains("at least one"));
        assert!(p("modify system HG1 vm_failure_detection_speed=fast").unwrap_err().contains("unexpected word"));
        assert_eq!(p("q system").unwrap(), KsysCommand::Query { class: Class::System, name: String::new() });
        let notify = |user: &str, contact: &str| pb::NotifyRequest { user: user.into(), contact: contact.into() };
        assert_eq!(
            p("add notify user=John contact=john@example.com").unwrap(),
            KsysCommand::AddNotify(notify("John", "john@example.com"))
        );
        assert_eq!(p("delete notify user=John").unwrap(), KsysCommand::DeleteNotify(notify("John", "")));
        assert_eq!(p("q notify contact").unwrap(), KsysCommand::Query { class: Class::Notify, name: String::new() });
        assert_eq!(p("q notify John").unwrap(), KsysCommand::Query { class: Class::Notify, name: "John".into() });
        assert!(p("add notify user=John").unwrap_err().contains("needs contact="));
        assert!(p("add notify John contact=x@y").unwrap_err().contains("unexpected word `John`"));
    }

    #[test]
    fn policy_commands_parse() {
        assert_eq!(
            p("add collocation policy_1 vm=rt12001,rt12002,rt12003").unwrap(),
            KsysCommand::Affinity(pb::AffinityRequest {
                action: pb::ChangeAction::Add as i32,
                kind: pb::AffinityKind::Collocation as i32,
                name: "policy_1".into(),
                vms: vec!["rt12001".into(), "rt12002".into(), "rt12003".into()],
                remove_vms: false,
            })
        );
        assert!(matches!(
            p("modify anticollocation policy_2 policy=delete vm=rt11001").unwrap(),
            KsysCommand::Affinity(pb::AffinityRequest { kind: 2, remove_vms: true, .. })
        ));
        assert!(matches!(
            p("delete workgroup dev_itso").unwrap(),
            KsysCommand::Affinity(pb::AffinityRequest { action: 3, kind: 3, .. })
        ));
        assert_eq!(
            p("q collocation").unwrap(),
            KsysCommand::Query { class: Class::Affinity(AffinityKind::Collocation), name: String::new() }
        );
        let manage = |vms: &[&str], manage| {
            KsysCommand::Manage(pb::ManageRequest { vms: vms.iter().map(|v| v.to_string()).collect(), manage })
        };
        assert_eq!(p("unmanage vm name=a,b").unwrap(), manage(&["a", "b"], false));
        assert_eq!(p("manage vm a").unwrap(), manage(&["a"], true));
        assert_eq!(
            p("restore host h1").unwrap(),
            KsysCommand::Restore(pb::RestoreRequest { scope: pb::Scope::Host as i32, name: "h1".into() })
        );
        assert_eq!(
            p("cleanup host_group HG").unwrap(),
            KsysCommand::Cleanup { host_group: "HG".into(), dr_test: false }
        );
        assert_eq!(
            p("cleanup host_group HG dr_test=yes").unwrap(),
            KsysCommand::Cleanup { host_group: "HG".into(), dr_test: true }
        );
        assert!(p("add collocation c1").unwrap_err().contains("vm="));
        assert!(p("modify collocation c1 vm=a").unwrap_err().contains("policy=add|delete"));
        assert!(p("restore hmc x").unwrap_err().contains("not a supported command"));
    }
}
