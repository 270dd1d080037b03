//! The `ksysmgr` grammar. Actions and classes accept the seed's aliases (`q`, `mk`, `cl`,
//! `discovery` …); attributes are `key=value`, lists are comma-separated. Anything unknown is
//! refused with the list of what is allowed.
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    System,
    Cluster,
    Hmc,
    Host,
    HostGroup,
    Vios,
    Vm,
    Event,
    Hsdb,
    HsdbNode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KsysCommand {
    AddCluster {
        name: String,
        cluster_type: String,
        ksysnodes: Vec<String>,
        sync: bool,
    },
    AddHmc {
        name: String,
        login: String,
        password: String,
        ip: String,
    },
    AddHost {
        name: String,
    },
    AddHostGroup {
        name: String,
        hosts: Vec<String>,
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
    RestartVm {
        vm: String,
        host: String,
    },
    Lpm {
        vm: String,
        to: String,
    },
    AddHsdbNode {
        node_id: u64,
        endpoint: String,
    },
    ModifyHsdbNode {
        node_id: u64,
        role: String,
    },
    RemoveHsdbNode {
        node_id: u64,
    },
    /// `level`: system, host_group or vm; empty values are left unchanged.
    ModifyDetection {
        level: String,
        name: String,
        host_failure_detection_time: String,
        vm_failure_detection_speed: String,
    },
}

pub const USAGE: &str = "\
Usage: ksysmgr [--endpoints HOST:PORT,...] [-o text|json] [--follower-read] <action> <class> [name] [attribute=value ...]
  add ksyscluster NAME [type=HA] [ksysnodes=N1,...] [sync=yes|no]
  add hmc NAME login=USER password=PASSWORD ip=IP[:PORT]
  add host NAME
  add host_group NAME hosts=HOST1,HOST2,...
  discover host_group NAME [verify=yes]
  verify host_group NAME
  query system|ksyscluster|hmc|host|host_group|vios|vm|event [NAME]
  modify system [host_failure_detection_time=SECONDS] [vm_failure_detection_speed=fast|normal|slow]
  modify host_group NAME [host_failure_detection_time=SECONDS] [vm_failure_detection_speed=fast|normal|slow]
  modify vm NAME[,NAME...] vm_failure_detection_speed=fast|normal|slow
  restart vm NAME [host=TARGET]
  lpm vm NAME to=HOST
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
        _ => return None,
    })
}

fn class(word: &str) -> Option<Class> {
    Some(match word.to_ascii_lowercase().as_str() {
        "system" | "sys" => Class::System,
        "ksyscluster" | "cluster" | "cl" => Class::Cluster,
        "hmc" => Class::Hmc,
        "host" => Class::Host,
        "host_group" | "hg" => Class::HostGroup,
        "vios" => Class::Vios,
        "vm" | "lpar" => Class::Vm,
        "event" | "events" => Class::Event,
        "hsdb" => Class::Hsdb,
        "hsdb_node" => Class::HsdbNode,
        _ => return None,
    })
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
    value.map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

fn yes_no(value: Option<&String>, key: &str) -> Result<bool, String> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "yes" || v == "true" => Ok(true),
        Some(v) if v == "no" || v == "false" => Ok(false),
        Some(v) => Err(format!("{key}={v}: use yes or no")),
    }
}

/// Parses the words after the options.
pub fn parse(words: &[String]) -> Result<KsysCommand, String> {
    let [act, cls, rest @ ..] = words else {
        return Err("an action and a class are required".into());
    };
    let act = action(act).ok_or_else(|| {
        format!("unknown action `{act}` (add, modify, remove, query, discover, verify, restart, lpm)")
    })?;
    let cls = class(cls).ok_or_else(|| {
        format!("unknown class `{cls}` (system, ksyscluster, hmc, host, host_group, vios, vm, event, hsdb, hsdb_node)")
    })?;
    let what = format!("{act} {}", words[1]);
    Ok(match (act, cls) {
        ("add", Class::Cluster) => {
            let w = split(rest, &["type", "ksysnodes", "sync"], &what)?;
            KsysCommand::AddCluster {
                name: required(&w, &what)?,
                cluster_type: w.attrs.get("type").cloned().unwrap_or_else(|| "HA".into()),
                ksysnodes: list(w.attrs.get("ksysnodes")),
                sync: yes_no(w.attrs.get("sync"), "sync")?,
            }
        }
        ("add", Class::Hmc) => {
            let w = split(rest, &["login", "password", "ip"], &what)?;
            KsysCommand::AddHmc {
                name: required(&w, &what)?,
                login: attr(&w, "login", &what)?,
                password: attr(&w, "password", &what)?,
                ip: attr(&w, "ip", &what)?,
            }
        }
        ("add", Class::Host) => KsysCommand::AddHost { name: required(&split(rest, &[], &what)?, &what)? },
        ("add", Class::HostGroup) => {
            let w = split(rest, &["hosts", "repo_disk", "ha_disk"], &what)?;
            let hosts = list(w.attrs.get("hosts"));
            if hosts.is_empty() {
                return Err(format!("{what} needs hosts=HOST1,HOST2,..."));
            }
            KsysCommand::AddHostGroup { name: required(&w, &what)?, hosts }
        }
        ("discover", Class::HostGroup) => {
            let w = split(rest, &["verify"], &what)?;
            KsysCommand::Discover { host_group: required(&w, &what)?, verify: yes_no(w.attrs.get("verify"), "verify")? }
        }
        ("verify", Class::HostGroup) => KsysCommand::Verify { host_group: required(&split(rest, &[], &what)?, &what)? },
        ("query", class) => {
            let w = split(rest, &[], &what)?;
            KsysCommand::Query { class, name: w.name.unwrap_or_default() }
        }
        ("restart", Class::Vm) => {
            let w = split(rest, &["host"], &what)?;
            KsysCommand::RestartVm { vm: required(&w, &what)?, host: w.attrs.get("host").cloned().unwrap_or_default() }
        }
        ("lpm", Class::Vm) => {
            let w = split(rest, &["to"], &what)?;
            KsysCommand::Lpm { vm: required(&w, &what)?, to: attr(&w, "to", &what)? }
        }
        ("add", Class::HsdbNode) => {
            let w = split(rest, &["endpoint"], &what)?;
            KsysCommand::AddHsdbNode { node_id: node_id(&w, &what)?, endpoint: attr(&w, "endpoint", &what)? }
        }
        ("modify", Class::HsdbNode) => {
            let w = split(rest, &["role"], &what)?;
            KsysCommand::ModifyHsdbNode { node_id: node_id(&w, &what)?, role: attr(&w, "role", &what)? }
        }
        ("modify", level @ (Class::System | Class::HostGroup | Class::Vm)) => {
            const BOTH: &[&str] = &["host_failure_detection_time", "vm_failure_detection_speed"];
            let allowed = if level == Class::Vm { &BOTH[1..] } else { BOTH };
            let w = split(rest, allowed, &what)?;
            let (level, name) = match level {
                Class::System => ("system", w.name.clone().unwrap_or_default()),
                Class::HostGroup => ("host_group", required(&w, &what)?),
                _ => ("vm", required(&w, &what)?),
            };
            if level == "system" && !name.is_empty() {
                return Err(format!("unexpected word `{name}` for {what}: attributes are key=value"));
            }
            if w.attrs.is_empty() {
                return Err(format!("{what} needs at least one of: {}", allowed.join("=, ") + "="));
            }
            let value = |k: &str| w.attrs.get(k).cloned().unwrap_or_default();
            KsysCommand::ModifyDetection {
                level: level.into(),
                name,
                host_failure_detection_time: value("host_failure_detection_time"),
                vm_failure_detection_speed: value("vm_failure_detection_speed"),
            }
        }
        ("remove", Class::HsdbNode) => {
            KsysCommand::RemoveHsdbNode { node_id: node_id(&split(rest, &[], &what)?, &what)? }
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
                password: "abc123".into(),
                ip: "9.3.18.159".into()
            }
        );
        assert_eq!(
            p("discovery host_group ITSO_HG verify=yes").unwrap(),
            KsysCommand::Discover { host_group: "ITSO_HG".into(), verify: true }
        );
        assert_eq!(
            p("add ksyscluster ITSO_HA ksysnodes=ksys7005rbdr sync=yes type=HA").unwrap(),
            KsysCommand::AddCluster {
                name: "ITSO_HA".into(),
                cluster_type: "HA".into(),
                ksysnodes: vec!["ksys7005rbdr".into()],
                sync: true
            }
        );
        assert_eq!(p("q cl").unwrap(), KsysCommand::Query { class: Class::Cluster, name: String::new() });
        assert_eq!(
            p("add host_group HG hosts=a,b repo_disk=x").unwrap(),
            KsysCommand::AddHostGroup { name: "HG".into(), hosts: vec!["a".into(), "b".into()] }
        );
        assert_eq!(p("restart vm v1 host=h2").unwrap(), KsysCommand::RestartVm { vm: "v1".into(), host: "h2".into() });
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(p("frobnicate vm").unwrap_err().contains("unknown action"));
        assert!(p("query widget").unwrap_err().contains("unknown class"));
        assert!(p("add hmc h1 login=a password=b").unwrap_err().contains("ip="));
        assert!(p("restart vm v1 color=red").unwrap_err().contains("unknown attribute `color`"));
        assert!(p("discover host_group HG verify=maybe").unwrap_err().contains("yes or no"));
        assert!(p("add host_group HG").unwrap_err().contains("hosts="));
        assert!(p("restart vm").unwrap_err().contains("needs a name"));
        assert!(p("query").unwrap_err().contains("action and a class"));
        assert!(p("lpm host h1").unwrap_err().contains("not a supported command"));
        assert!(p("add hsdb_node four endpoint=127.0.0.1:7004").unwrap_err().contains("not an HSDB node id"));
        assert!(p("add hsdb_node 4").unwrap_err().contains("endpoint="));
        assert!(p("remove hsdb_node").unwrap_err().contains("needs a node id"));
    }

    #[test]
    fn hsdb_membership_commands_parse() {
        assert_eq!(
            p("add hsdb_node 4 endpoint=127.0.0.1:7004").unwrap(),
            KsysCommand::AddHsdbNode { node_id: 4, endpoint: "127.0.0.1:7004".into() }
        );
        assert_eq!(
            p("modify hsdb_node 4 role=voter").unwrap(),
            KsysCommand::ModifyHsdbNode { node_id: 4, role: "voter".into() }
        );
        assert_eq!(p("rm hsdb_node 4").unwrap(), KsysCommand::RemoveHsdbNode { node_id: 4 });
        assert_eq!(p("q hsdb").unwrap(), KsysCommand::Query { class: Class::Hsdb, name: String::new() });
    }

    #[test]
    fn detection_settings_parse_per_level() {
        let modify = |level: &str, name: &str, fdt: &str, speed: &str| KsysCommand::ModifyDetection {
            level: level.into(),
            name: name.into(),
            host_failure_detection_time: fdt.into(),
            vm_failure_detection_speed: speed.into(),
        };
        assert_eq!(p("modify system host_failure_detection_time=120").unwrap(), modify("system", "", "120", ""));
        assert_eq!(
            p("ch hg HG1 vm_failure_detection_speed=fast host_failure_detection_time=90").unwrap(),
            modify("host_group", "HG1", "90", "fast")
        );
        assert_eq!(p("modify vm a,b vm_failure_detection_speed=slow").unwrap(), modify("vm", "a,b", "", "slow"));
        assert!(p("modify vm a host_failure_detection_time=90").unwrap_err().contains("unknown attribute"));
        assert!(p("modify host_group vm_failure_detection_speed=fast").unwrap_err().contains("needs a name"));
        assert!(p("modify system").unwrap_err().contains("at least one"));
        assert!(p("modify system HG1 vm_failure_detection_speed=fast").unwrap_err().contains("unexpected word"));
        assert_eq!(p("q system").unwrap(), KsysCommand::Query { class: Class::System, name: String::new() });
    }
}
