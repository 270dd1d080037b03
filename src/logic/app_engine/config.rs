//! The VM agent's configuration (seed: `/var/ksys/config/HAMonitoring.xml`, kept here as TOML
//! in the VM): the VmMonitor attributes, up to 16 applications and their dependencies, with the
//! seed's defaults and the checks `ksysvmmgr` applies. Every edit either succeeds whole or
//! returns a `KSYSVMMGR-nnn(ERROR)` and leaves the configuration as it was.
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString};

/// At most this many applications per VM (seed: `Maximum count of "16" applications reached`).
pub const MAX_APPS: usize = 16;
/// `period`: seconds between two AME rounds (seed: default 1, range 0–6).
pub const PERIOD_RANGE: (u64, u64) = (0, 6);
/// Seconds and counts an application attribute may take.
const SECONDS_RANGE: (u64, u64) = (1, 86_400);
const COUNT_RANGE: (u64, u64) = (1, 100);

/// A `ksysvmmgr` error: printed as `KSYSVMMGR-<code>(ERROR): <message>`, exit code ≠ 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("KSYSVMMGR-{code:03}(ERROR): {message}")]
pub struct VmmError {
    pub code: u16,
    pub message: String,
}

impl VmmError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The daemon, its socket or the VM's files failed (not the command's fault).
    pub fn daemon(message: impl Into<String>) -> Self {
        Self::new(code::DAEMON, message)
    }
}

impl From<crate::error::VmrmError> for VmmError {
    fn from(e: crate::error::VmrmError) -> Self {
        Self::daemon(e.to_string())
    }
}

/// The error codes. 002 and 057 are the seed's; the others follow its style.
pub mod code {
    pub const ACTION_MANDATORY: u16 = 2;
    pub const UNKNOWN_ACTION: u16 = 3;
    pub const UNKNOWN_CLASS: u16 = 4;
    pub const NAME_MANDATORY: u16 = 5;
    pub const UNKNOWN_ATTRIBUTE: u16 = 10;
    pub const BAD_VALUE: u16 = 11;
    pub const OUT_OF_RANGE: u16 = 12;
    pub const READ_ONLY: u16 = 13;
    pub const MANDATORY_ATTRIBUTE: u16 = 14;
    pub const NOT_FOUND: u16 = 20;
    pub const ALREADY_EXISTS: u16 = 21;
    pub const TOO_MANY_APPS: u16 = 22;
    pub const BAD_DEPENDENCY: u16 = 30;
    pub const IN_USE: u16 = 31;
    pub const DAEMON: u16 = 40;
    pub const PERIOD_NOT_ABOVE_TIMEOUT: u16 = 57;
}

/// `rebootappstarttype`: who starts the applications after the VM restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE", ascii_case_insensitive)]
pub enum StartType {
    /// The agent starts them at once.
    #[default]
    Vmm,
    /// The OS or a user starts them; the agent starts those that are not running.
    Os,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmmConfig {
    pub log: u8,
    pub period: u64,
    pub version: String,
    pub comment: String,
    pub rebootappstarttype: StartType,
}

impl Default for VmmConfig {
    fn default() -> Self {
        Self { log: 2, period: 1, version: "1.0".into(), comment: String::new(), rebootappstarttype: StartType::Vmm }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    pub uuid: String,
    pub version: String,
    pub desc: String,
    pub monitored: bool,
    pub monitor_script: String,
    pub monitor_period: u64,
    pub monitor_timeout: u64,
    pub monitor_failure_threshold: u64,
    pub stop_script: String,
    pub stop_stabilization_time: u64,
    pub stop_max_failures: u64,
    pub start_script: String,
    pub start_stabilization_time: u64,
    pub start_max_failures: u64,
    pub max_restart: u64,
    pub critical: bool,
    #[serde(rename = "type")]
    pub app_type: String,
    pub instancename: String,
    pub database: String,
    pub vendor_id: String,
}

impl AppConfig {
    /// A new application with the seed's defaults (Example 3-78).
    pub fn new(name: &str, uuid: String) -> Self {
        Self {
            name: name.into(),
            uuid,
            version: String::new(),
            desc: String::new(),
            monitored: true,
            monitor_script: String::new(),
            monitor_period: 30,
            monitor_timeout: 15,
            monitor_failure_threshold: 5,
            stop_script: String::new(),
            stop_stabilization_time: 25,
            stop_max_failures: 3,
            start_script: String::new(),
            start_stabilization_time: 25,
            start_max_failures: 3,
            max_restart: 3,
            critical: false,
            app_type: String::new(),
            instancename: String::new(),
            database: String::new(),
            vendor_id: String::new(),
        }
    }

    /// Sets one attribute from its `ksysvmmgr` text.
    fn set(&mut self, attr: &str, value: &str) -> Result<(), VmmError> {
        match attr {
            "version" => self.version = value.into(),
            "desc" => self.desc = value.into(),
            "monitored" => self.monitored = flag(attr, value)?,
            "monitor_script" => self.monitor_script = script(attr, value)?,
            "stop_script" => self.stop_script = script(attr, value)?,
            "start_script" => self.start_script = script(attr, value)?,
            "monitor_period" => self.monitor_period = number(attr, value, SECONDS_RANGE)?,
            "monitor_timeout" => self.monitor_timeout = number(attr, value, SECONDS_RANGE)?,
            "monitor_failure_threshold" => self.monitor_failure_threshold = number(attr, value, COUNT_RANGE)?,
            "stop_stabilization_time" => self.stop_stabilization_time = number(attr, value, SECONDS_RANGE)?,
            "stop_max_failures" => self.stop_max_failures = number(attr, value, COUNT_RANGE)?,
            "start_stabilization_time" => self.start_stabilization_time = number(attr, value, SECONDS_RANGE)?,
            "start_max_failures" => self.start_max_failures = number(attr, value, COUNT_RANGE)?,
            "max_restart" => self.max_restart = number(attr, value, COUNT_RANGE)?,
            "critical" => self.critical = flag(attr, value)?,
            "type" => self.app_type = app_type(value)?,
            "instancename" => self.instancename = value.into(),
            "database" => self.database = value.into(),
            "vendor_id" => self.vendor_id = value.into(),
            "name" | "uuid" | "nooftimes_restarted" | "status" => {
                return Err(VmmError::new(code::READ_ONLY, format!("attribute \"{attr}\" is read-only.")));
            }
            _ => return Err(unknown_attribute(attr, "app")),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), VmmError> {
        for (attr, value) in [
            ("monitor_script", &self.monitor_script),
            ("start_script", &self.start_script),
            ("stop_script", &self.stop_script),
        ] {
            if value.is_empty() {
                return Err(VmmError::new(
                    code::MANDATORY_ATTRIBUTE,
                    format!("{attr} is mandatory for application \"{}\".", self.name),
                ));
            }
        }
        if self.monitor_period <= self.monitor_timeout {
            return Err(VmmError::new(
                code::PERIOD_NOT_ABOVE_TIMEOUT,
                "monitor_period value must be greater than monitor_timeout value(monitor_period > monitor_timeout).",
            ));
        }
        Ok(())
    }
}

/// `dependency_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DependencyType {
    StartSequence,
    StopSequence,
    ParentChild,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub depuuid: String,
    pub dependency_type: DependencyType,
    /// Application names, in order (parent first for `parent_child`).
    pub dependency_list: Vec<String>,
    /// `start_sequence` only: the next app starts once the previous one is NORMAL.
    pub strict: bool,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaMonitoring {
    #[serde(rename = "VmMonitor")]
    pub vmm: VmmConfig,
    #[serde(default, rename = "Application")]
    pub apps: Vec<AppConfig>,
    #[serde(default, rename = "Dependency")]
    pub dependencies: Vec<Dependency>,
}

impl HaMonitoring {
    pub fn app(&self, name: &str) -> Result<&AppConfig, VmmError> {
        self.apps.iter().find(|a| a.name == name).ok_or_else(|| app_not_found(name))
    }

    /// `add app NAME attr=value …`: `uuid` is given by the caller (creation time in ns, as
    /// the seed's look).
    pub fn add_app(&mut self, name: &str, uuid: String, attrs: &[(String, String)]) -> Result<(), VmmError> {
        if self.apps.iter().any(|a| a.name == name) {
            return Err(VmmError::new(code::ALREADY_EXISTS, format!("Application \"{name}\" already exists.")));
        }
        if self.apps.len() >= MAX_APPS {
            return Err(VmmError::new(
                code::TOO_MANY_APPS,
                format!("Application ADD failed, Maximum count of \"{MAX_APPS}\" applications reached."),
            ));
        }
        let mut app = AppConfig::new(name, uuid);
        for (attr, value) in attrs {
            app.set(attr, value)?;
        }
        app.check()?;
        self.apps.push(app);
        Ok(())
    }

    pub fn modify_app(&mut self, name: &str, attrs: &[(String, String)]) -> Result<(), VmmError> {
        let index = self.apps.iter().position(|a| a.name == name).ok_or_else(|| app_not_found(name))?;
        let mut app = self.apps[index].clone();
        for (attr, value) in attrs {
            app.set(attr, value)?;
        }
        app.check()?;
        self.apps[index] = app;
        Ok(())
    }

    pub fn delete_app(&mut self, name: &str) -> Result<(), VmmError> {
        self.app(name)?;
        if let Some(d) = self.dependencies.iter().find(|d| d.dependency_list.iter().any(|a| a == name)) {
            return Err(VmmError::new(
                code::IN_USE,
                format!("Application \"{name}\" is part of dependency {}; delete the dependency first.", d.depuuid),
            ));
        }
        self.apps.retain(|a| a.name != name);
        Ok(())
    }

    /// `modify [vmm] log=… period=… rebootappstarttype=… comment=…`.
    pub fn modify_vmm(&mut self, attrs: &[(String, String)]) -> Result<(), VmmError> {
        let mut vmm = self.vmm.clone();
        for (attr, value) in attrs {
            match attr.as_str() {
                "log" => vmm.log = number(attr, value, (0, 3))? as u8,
                "period" => vmm.period = number(attr, value, PERIOD_RANGE)?,
                "comment" => vmm.comment = value.clone(),
                "rebootappstarttype" => {
                    vmm.rebootappstarttype = value.parse().map_err(|_| bad_value(attr, value, "VMM or OS"))?
                }
                "version" | "VmUUID" => {
                    return Err(VmmError::new(code::READ_ONLY, format!("attribute \"{attr}\" is read-only.")));
                }
                _ => return Err(unknown_attribute(attr, "vmm")),
            }
        }
        self.vmm = vmm;
        Ok(())
    }

    /// `add dependency dependency_list=a,b dependency_type=… [strict=yes|no]`.
    pub fn add_dependency(&mut self, depuuid: String, attrs: &[(String, String)]) -> Result<(), VmmError> {
        let (mut list, mut kind, mut strict) = (None, None, true);
        for (attr, value) in attrs {
            match attr.as_str() {
                "dependency_list" => list = Some(value.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()),
                "dependency_type" => {
                    let expected = "start_sequence, stop_sequence or parent_child";
                    kind = Some(value.parse().map_err(|_| bad_value(attr, value, expected))?)
                }
                "strict" => strict = flag(attr, value)?,
                _ => return Err(unknown_attribute(attr, "dependency")),
            }
        }
        let mandatory = |what: &str| VmmError::new(code::MANDATORY_ATTRIBUTE, format!("{what} is mandatory."));
        let list = list.ok_or_else(|| mandatory("dependency_list"))?;
        let kind = kind.ok_or_else(|| mandatory("dependency_type"))?;
        self.check_dependency(kind, &list)?;
        let strict = strict && kind == DependencyType::StartSequence;
        self.dependencies.push(Dependency { depuuid, dependency_type: kind, dependency_list: list, strict });
        Ok(())
    }

    fn check_dependency(&self, kind: DependencyType, list: &[String]) -> Result<(), VmmError> {
        let bad = |why: String| VmmError::new(code::BAD_DEPENDENCY, why);
        for name in list {
            self.app(name)?;
        }
        let mut unique = list.to_vec();
        unique.sort();
        unique.dedup();
        if unique.len() != list.len() {
            return Err(bad("an application appears twice in dependency_list.".into()));
        }
        match kind {
            DependencyType::ParentChild if list.len() != 2 => {
                Err(bad("a parent_child dependency takes exactly 2 applications (parent,child).".into()))
            }
            DependencyType::ParentChild => {
                // One level only: the parent is nobody's child, the child nobody's parent.
                let (parent, child) = (&list[0], &list[1]);
                let nested = self.parent_child().any(|(p, c)| c == parent || p == child || c == child);
                match nested {
                    true => Err(bad(format!(
                        "parent_child {parent},{child} would nest dependencies: only one level is supported."
                    ))),
                    false => Ok(()),
                }
            }
            _ if list.len() < 2 => Err(bad(format!("a {kind} dependency needs more than 1 application."))),
            _ => Ok(()),
        }
    }

    pub fn delete_dependency(&mut self, depuuid: &str) -> Result<(), VmmError> {
        let before = self.dependencies.len();
        self.dependencies.retain(|d| d.depuuid != depuuid);
        match self.dependencies.len() < before {
            true => Ok(()),
            false => Err(VmmError::new(code::NOT_FOUND, format!("Dependency \"{depuuid}\" does not exist."))),
        }
    }

    /// (parent, child) pairs.
    pub fn parent_child(&self) -> impl Iterator<Item = (&String, &String)> {
        self.dependencies
            .iter()
            .filter(|d| d.dependency_type == DependencyType::ParentChild)
            .map(|d| (&d.dependency_list[0], &d.dependency_list[1]))
    }
}

fn app_not_found(name: &str) -> VmmError {
    VmmError::new(code::NOT_FOUND, format!("Application \"{name}\" does not exist."))
}

fn unknown_attribute(attr: &str, class: &str) -> VmmError {
    VmmError::new(code::UNKNOWN_ATTRIBUTE, format!("\"{attr}\" is not a valid attribute for class {class}."))
}

fn bad_value(attr: &str, value: &str, expected: &str) -> VmmError {
    VmmError::new(code::BAD_VALUE, format!("\"{value}\" is not a valid value for {attr}: use {expected}."))
}

fn number(attr: &str, value: &str, (min, max): (u64, u64)) -> Result<u64, VmmError> {
    let n: u64 = value.parse().map_err(|_| bad_value(attr, value, "a whole number"))?;
    match (min..=max).contains(&n) {
        true => Ok(n),
        false => Err(VmmError::new(code::OUT_OF_RANGE, format!("{attr} value {n} is out of range ({min}-{max})."))),
    }
}

fn flag(attr: &str, value: &str) -> Result<bool, VmmError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" => Ok(true),
        "no" | "0" | "false" => Ok(false),
        _ => Err(bad_value(attr, value, "yes or no (1 or 0)")),
    }
}

fn script(attr: &str, value: &str) -> Result<String, VmmError> {
    match value.starts_with('/') {
        true => Ok(value.into()),
        false => Err(bad_value(attr, value, "an absolute path")),
    }
}

fn app_type(value: &str) -> Result<String, VmmError> {
    match value {
        "" | "ORACLE" | "DB2" | "SAPHANA" => Ok(value.into()),
        _ => Err(bad_value("type", value, "ORACLE, DB2 or SAPHANA (uppercase), or nothing")),
    }
}
