//! Carrying out a `ksysvmmgr` command, as the seed's does: edits go to the VM's configuration
//! file (whole, or not at all), and the daemon is told through its socket with `-s` or `sync`;
//! runtime actions and status go to the daemon.
use super::grammar::{Invocation, VmmCommand};
use crate::agents::vm_agent::guest::GuestDir;
use crate::agents::vm_agent::socket::{self, AgentReply, AgentRequest};
use crate::logic::app_engine::config::{AppConfig, Dependency, code};
use crate::logic::app_engine::{AppStatus, HaMonitoring, VmmError};
use std::fmt::Write;

const NOT_SYNCED: &str = "'-s' option is not provided.Please execute 'ksysvmmgr sync' to update VMM Daemon.";

pub async fn execute(guest: &GuestDir, inv: Invocation) -> Result<String, VmmError> {
    let sync = inv.sync;
    let uuid = || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos().to_string()
    };
    match inv.command {
        VmmCommand::Help => Ok(format!("{}\n", super::grammar::USAGE)),
        VmmCommand::QueryVmm => {
            let cfg = guest.load()?;
            let uuid = std::fs::read_to_string(guest.uuid_path()).unwrap_or_default();
            let v = &cfg.vmm;
            Ok(format!(
                "VmMonitor log={} period={} version={} comment={} rebootappstarttype={} VmUUID={}\n",
                v.log,
                v.period,
                v.version,
                v.comment,
                v.rebootappstarttype,
                uuid.trim()
            ))
        }
        VmmCommand::QueryApp { name, only } => {
            let cfg = guest.load()?;
            if let Some(n) = &name {
                cfg.app(n)?;
            }
            let statuses = socket::call(guest, &AgentRequest::Status).await.ok().and_then(Result::ok).map(|r| r.apps);
            let mut out = String::new();
            for app in cfg.apps.iter().filter(|a| name.as_ref().is_none_or(|n| *n == a.name)) {
                let status = statuses.as_ref().and_then(|s| s.iter().find(|s| s.uuid == app.uuid));
                out.push_str(&app_block(app, status, &only)?);
            }
            Ok(out)
        }
        VmmCommand::QueryDependency { depuuid } => {
            let cfg = guest.load()?;
            let deps: Vec<&Dependency> =
                cfg.dependencies.iter().filter(|d| depuuid.as_ref().is_none_or(|u| *u == d.depuuid)).collect();
            if let (Some(u), true) = (&depuuid, deps.is_empty()) {
                return Err(VmmError::new(code::NOT_FOUND, format!("Dependency \"{u}\" does not exist.")));
            }
            Ok(deps.iter().map(|d| dependency_line(d) + "\n").collect())
        }
        VmmCommand::Status => {
            let r = ask(guest, AgentRequest::Status).await?;
            let state = if r.active { "active" } else { "inoperative" };
            let pid = if r.active { r.pid.to_string() } else { String::new() };
            Ok(format!("Subsystem         Group            PID          Status\n ksys_vmm                          {pid:<12} {state}\n"))
        }
        VmmCommand::StartVmm => {
            let r = ask(guest, AgentRequest::StartVmm).await?;
            Ok(format!("0513-059 The ksys_vmm Subsystem has been started. Subsystem PID is {}.\n", r.pid))
        }
        VmmCommand::StopVmm => {
            ask(guest, AgentRequest::StopVmm).await?;
            Ok("0513-044 The ksys_vmm Subsystem was requested to stop.\n".into())
        }
        VmmCommand::StartApp { name } => {
            ask(guest, AgentRequest::StartApp(name.clone())).await?;
            Ok(format!("Starting application \"{name}\" successfully requested.\n"))
        }
        VmmCommand::StopApp { name } => {
            ask(guest, AgentRequest::StopApp(name.clone())).await?;
            Ok(format!("Stopping application \"{name}\" successfully requested.\n"))
        }
        VmmCommand::Suspend { name } => monitoring(guest, &name, false).await,
        VmmCommand::Resume { name } => monitoring(guest, &name, true).await,
        VmmCommand::Sync => {
            ask(guest, AgentRequest::Sync).await?;
            Ok("VMM Daemon configuration successfully updated.\n".into())
        }
        VmmCommand::AddApp { name, attrs } => {
            edit(guest, sync, |cfg| {
                cfg.add_app(&name, uuid(), &attrs)?;
                Ok(format!("Adding application \"{name}\" into configuration successfully performed."))
            })
            .await
        }
        VmmCommand::ModifyApp { name, attrs } => {
            edit(guest, sync, |cfg| {
                cfg.modify_app(&name, &attrs)?;
                Ok(format!("Modifying application \"{name}\" into configuration successfully performed."))
            })
            .await
        }
        VmmCommand::DeleteApp { name } => {
            edit(guest, sync, |cfg| {
                cfg.delete_app(&name)?;
                Ok(format!("Deleting application \"{name}\" from configuration successfully performed."))
            })
            .await
        }
        VmmCommand::ModifyVmm { attrs } => {
            edit(guest, sync, |cfg| {
                cfg.modify_vmm(&attrs)?;
                Ok("Modifying VmMonitor into configuration successfully performed.".into())
            })
            .await
        }
        VmmCommand::AddDependency { attrs } => {
            edit(guest, sync, |cfg| {
                let depuuid = uuid();
                cfg.add_dependency(depuuid.clone(), &attrs)?;
                let list = attrs.iter().find(|(k, _)| k == "dependency_list").map_or("", |(_, v)| v.as_str());
                Ok(format!(
                    "Adding dependency \"dependency_list={list}\" into configuration successfully performed. depuuid={depuuid}"
                ))
            })
            .await
        }
        VmmCommand::DeleteDependency { depuuid } => {
            edit(guest, sync, |cfg| {
                cfg.delete_dependency(&depuuid)?;
                Ok(format!("Deleting dependency \"{depuuid}\" from configuration successfully performed."))
            })
            .await
        }
    }
}

/// `suspend|resume app`: its `monitored` attribute, applied at once (dependencies ignored).
async fn monitoring(guest: &GuestDir, name: &str, resume: bool) -> Result<String, VmmError> {
    edit(guest, true, |cfg| {
        cfg.modify_app(name, &[("monitored".into(), if resume { "1" } else { "0" }.into())])?;
        let verb = if resume { "Resuming" } else { "Suspending" };
        Ok(format!("{verb} monitoring of application \"{name}\" successfully performed."))
    })
    .await
}

/// One request to the daemon; unreachable or refused → the error.
async fn ask(guest: &GuestDir, req: AgentRequest) -> Result<AgentReply, VmmError> {
    socket::call(guest, &req).await?
}

/// A configuration edit: applied to the file whole or not at all, then told to the daemon
/// with `-s`; returns the seed's success line.
async fn edit(
    guest: &GuestDir,
    sync: bool,
    change: impl FnOnce(&mut HaMonitoring) -> Result<String, VmmError>,
) -> Result<String, VmmError> {
    let mut cfg = guest.load()?;
    let done = change(&mut cfg)?;
    guest.save(&cfg)?;
    match sync {
        true => ask(guest, AgentRequest::Sync).await.map(|_| format!("{done}\n")),
        false => Ok(format!("{done}\n{NOT_SYNCED}\n")),
    }
}

/// Example 3-78's layout; `only` keeps the named attributes (`-a`).
fn app_block(app: &AppConfig, status: Option<&AppStatus>, only: &[String]) -> Result<String, VmmError> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let status_text = status.map_or("NOT_MONITORED (daemon not running)".to_string(), AppStatus::status);
    let restarts = status.map_or(0, |s| s.restarts);
    let rows: Vec<(&str, String)> = vec![
        ("version", app.version.clone()),
        ("uuid", app.uuid.clone()),
        ("desc", app.desc.clone()),
        ("monitored", u8::from(app.monitored).to_string()),
        ("monitor_script", app.monitor_script.clone()),
        ("monitor_period", app.monitor_period.to_string()),
        ("monitor_timeout", app.monitor_timeout.to_string()),
        ("monitor_failure_threshold", app.monitor_failure_threshold.to_string()),
        ("stop_script", app.stop_script.clone()),
        ("stop_stabilization_time", app.stop_stabilization_time.to_string()),
        ("stop_max_failures", app.stop_max_failures.to_string()),
        ("start_script", app.start_script.clone()),
        ("start_stabilization_time", app.start_stabilization_time.to_string()),
        ("start_max_failures", app.start_max_failures.to_string()),
        ("max_restart", app.max_restart.to_string()),
        ("nooftimes_restarted", restarts.to_string()),
        ("critical", yes_no(app.critical).into()),
        ("type", app.app_type.clone()),
        ("instancename", app.instancename.clone()),
        ("database", app.database.clone()),
        ("vendor_id", app.vendor_id.clone()),
        ("status", status_text),
    ];
    if let Some(bad) = only.iter().find(|o| !rows.iter().any(|(k, _)| k == o)) {
        return Err(VmmError::new(
            code::UNKNOWN_ATTRIBUTE,
            format!("\"{bad}\" is not a valid attribute for class app."),
        ));
    }
    let mut out = format!("Application name={}\n", app.name);
    for (k, v) in rows.iter().filter(|(k, _)| only.is_empty() || only.iter().any(|o| o == k)) {
        let _ = writeln!(out, " {k}={v}");
    }
    Ok(out)
}

fn dependency_line(d: &Dependency) -> String {
    format!(
        "Dependency depuuid={} dependency_type={} dependency_list={} strict={}",
        d.depuuid,
        d.dependency_type,
        d.dependency_list.join(","),
        if d.strict { "YES" } else { "NO" }
    )
}
