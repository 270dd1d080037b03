//! Text output in the seed's layout (`Name:`, `UUID:`, `State:` …, values from column 22):
//! the typed replies rendered with the domain's (the seed's) names.
use crate::domain::policy::on_off;
use crate::domain::{
    AffinityKind, DetectionSpeed, HostState, LparState, MonjvKind, NotificationLevel, Priority, RestartPhase,
    RestartPolicy,
};
use crate::domain::{Severity, SuClusterStatus, UnitHeartbeat, VmState, VmStatus};
use crate::logic::app_engine::Color;
use crate::logic::detection::secs;
use crate::pb;
use crate::pb::states::{WireEnum, shown};
use std::fmt::Write;
use std::time::Duration;

fn field(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<20} {value}", format!("{key}:"));
}

/// A time in UTC, to the second.
fn time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map_or_else(|| at_ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn list_field(out: &mut String, key: &str, values: &[String]) {
    match values.split_first() {
        None => field(out, key, ""),
        Some((first, rest)) => {
            field(out, key, first);
            for v in rest {
                let _ = writeln!(out, "{:<21}{v}", "");
            }
        }
    }
}

/// `ksysmgr query system` (seed: "System-Wide Persistent Attributes", values from column 30).
pub fn system(s: &pb::SystemView) -> String {
    let ms = |ms: u32| secs(Duration::from_millis(u64::from(ms)));
    let relay = if s.smtp_relay.is_empty() { "none" } else { s.smtp_relay.as_str() };
    format!(
        "System-Wide Persistent Attributes\n{:<29}{} hours\n{:<29}{}\n{:<29}{}\n{:<29}{}\n{:<29}{}\n{:<29}{} seconds ({}-{} seconds)\n{:<29}{}\n{:<29}{}\n{:<29}{}\n",
        "auto_discovery_time:",
        s.auto_discovery_time,
        "quick_discovery_interval:",
        match s.quick_discovery_interval_ms {
            0 => "none".to_string(),
            ms => format!("{} minutes", secs(Duration::from_millis(ms) / 60)),
        },
        "notification_level:",
        shown::<NotificationLevel>(s.notification_level),
        "dup_event_processing:",
        if s.dup_event_processing { "yes" } else { "no" },
        "ha_monitor:",
        on_off(s.ha_monitor),
        "host_failure_detection_time:",
        ms(s.host_failure_detection_time_ms),
        ms(s.host_failure_detection_time_min_ms),
        ms(s.host_failure_detection_time_max_ms),
        "vm_failure_detection_speed:",
        shown::<DetectionSpeed>(s.vm_failure_detection_speed),
        "smtp_relay:",
        relay,
        "smtp_sender:",
        s.smtp_sender
    )
}

/// `query notify`: the seed's `User: / Contact:` pairs, with how each contact's deliveries stand.
pub fn contacts(list: &[pb::NotifyView]) -> String {
    let mut out = String::new();
    for c in list {
        field(&mut out, "User", &c.user);
        field(&mut out, "Contact", &c.contact);
        field(&mut out, "Kind", &c.kind);
        let delivered = match c.last_delivered_ms {
            0 => format!("{} (through event {})", c.delivered, c.delivered_through),
            at => format!("{} (through event {}, last at {})", c.delivered, c.delivered_through, time(at)),
        };
        field(&mut out, "Delivered", &delivered);
        if c.attempts > 0 {
            let retry = format!("{} failed attempt(s), next at {}: {}", c.attempts, time(c.next_try_ms), c.last_error);
            field(&mut out, "Retrying", &retry);
        }
        out.push('\n');
    }
    if list.is_empty() {
        out.push_str("No notification contacts\n");
    }
    out
}

pub fn clusters(list: &[pb::ClusterView]) -> String {
    let mut out = String::new();
    for c in list {
        field(&mut out, "Name", &c.name);
        // The controller that answers is the active one: the cluster is online.
        field(&mut out, "State", "Online");
        field(&mut out, "Type", &c.r#type);
        field(&mut out, "Active_controller", &c.active_controller);
    }
    out
}

pub fn hmcs(list: &[pb::HmcView]) -> String {
    let mut out = String::new();
    for h in list {
        field(&mut out, "Name", &h.name);
        field(&mut out, "Ip", &h.ip);
        field(&mut out, "Login", &h.login);
        let state = match &h.error {
            None => "Connected".to_string(),
            Some(e) => format!("Not reachable ({e})"),
        };
        field(&mut out, "State", state);
        let _ = writeln!(out, "\n                        Managed Host List:\n");
        let _ = writeln!(out, "{:<40}Uuid", "Host Name");
        let _ = writeln!(out, "{:<40}====", "=========");
        for m in &h.managed_hosts {
            let _ = writeln!(out, "{:<40}{}", m.name, m.uuid);
        }
        let _ = writeln!(out, "{}", "=".repeat(76));
    }
    out
}

pub fn hosts(list: &[pb::HostView]) -> String {
    let mut out = String::new();
    for h in list {
        field(&mut out, "Name", &h.name);
        field(&mut out, "UUID", &h.uuid);
        field(&mut out, "State", shown::<HostState>(h.state));
        field(&mut out, "Host_group", h.host_group.as_deref().unwrap_or("No host_group defined"));
        list_field(&mut out, "VIOS", &h.vios);
        list_field(&mut out, "HMCs", &h.hmcs);
        field(&mut out, "CPU", format!("{} of {} used", h.cpu_used, h.cpu_total));
        field(&mut out, "Memory", format!("{} of {} MB used", h.memory_used_mb, h.memory_total_mb));
        field(&mut out, "HA_monitor", on_off(h.ha_monitor));
        let _ =
            writeln!(out, "VM_failure_detection_speed:    {}\n", shown::<DetectionSpeed>(h.vm_failure_detection_speed));
    }
    out
}

pub fn host_groups(list: &[pb::HostGroupView]) -> String {
    let mut out = String::new();
    for g in list {
        field(&mut out, "Name", &g.name);
        list_field(&mut out, "Hosts", &g.hosts);
        field(&mut out, "Discovered", if g.discovered { "Yes" } else { "No" });
        for (title, disk) in [("Repo_disk", &g.repo_disk), ("HA_disk", &g.ha_disk)] {
            if let Some(id) = disk {
                field(&mut out, title, id);
            }
        }
        for (title, percents) in [("Memory_capacity", &g.memory_capacity), ("CPU_capacity", &g.cpu_capacity)] {
            field(&mut out, title, "Priority Based Settings");
            for (priority, percent) in ["high", "medium", "low"].iter().zip(percents) {
                let _ = writeln!(out, "{:<21}{priority}:{percent}", "");
            }
        }
        field(&mut out, "HA_monitor", on_off(g.ha_monitor));
        field(&mut out, "Restart_policy", shown::<RestartPolicy>(g.restart_policy));
        let _ =
            writeln!(out, "VM_failure_detection_speed:    {}", shown::<DetectionSpeed>(g.vm_failure_detection_speed));
        let secs = f64::from(g.host_failure_detection_time_ms) / 1000.0;
        let _ = writeln!(out, "Host_failure_detection_time:   {secs}");
        if !g.site.is_empty() {
            field(&mut out, "Site", &g.site);
        }
        if let Some(r) = &g.replication {
            replication(&mut out, r);
        }
        let _ = writeln!(out);
    }
    out
}

/// A host group's replication across the sites (DR).
fn replication(out: &mut String, r: &pb::ReplicationView) {
    field(out, "Replication", format!("{} -> {} (generation {})", r.primary_san, r.secondary_san, r.generation));
    field(out, "Replication_lag", format!("{} writes, {} ms", r.lag_writes, r.lag_ms));
    let point = if r.consistent_at_ms > 0 { time(r.consistent_at_ms) } else { "none yet".into() };
    field(out, "Consistent_point", point);
    field(out, "Primary_writable", if r.writable { "Yes" } else { "No" });
    if r.lost_writes > 0 {
        field(out, "Lost_writes", r.lost_writes);
    }
    if !r.moving.is_empty() {
        field(out, "Moving_to", &r.moving);
    }
    if !r.dr_test_site.is_empty() {
        field(out, "Dr_test_state", format!("RUNNING at {} since {}", r.dr_test_site, time(r.dr_test_started_ms)));
        list_field(out, "Dr_test_copies", &r.dr_test_copies);
    }
    if !r.error.is_empty() {
        field(out, "Replication_error", &r.error);
    }
}

pub fn sites(list: &[pb::SiteView]) -> String {
    let mut out = String::new();
    for s in list {
        field(&mut out, "Name", &s.name);
        let kind = match pb::SiteType::try_from(s.site_type) {
            Ok(pb::SiteType::Home) => "home",
            Ok(pb::SiteType::Backup) => "backup",
            _ => "unknown",
        };
        field(&mut out, "Sitetype", kind);
        list_field(&mut out, "HMCs", &s.hmcs);
        list_field(&mut out, "Hosts", &s.hosts);
        list_field(&mut out, "Storage_agents", &s.storage_agents);
        list_field(&mut out, "Active_host_groups", &s.active_host_groups);
        let _ = writeln!(out);
    }
    out
}

/// Each site's storage agents (SANs).
pub fn storage_agents(list: &[pb::SiteView]) -> String {
    let mut out = String::new();
    for s in list {
        for agent in &s.storage_agents {
            field(&mut out, "Name", agent);
            field(&mut out, "Site", &s.name);
            let _ = writeln!(out);
        }
    }
    out
}

pub fn vioses(list: &[pb::ViosView]) -> String {
    let mut out = String::new();
    for v in list {
        field(&mut out, "Name", &v.name);
        field(&mut out, "UUID", &v.uuid);
        field(&mut out, "Host", &v.host);
        field(&mut out, "Version", &v.version);
        field(&mut out, "State", if v.managed { "MANAGED" } else { "UNMANAGED" });
        field(&mut out, "CAA_state", if v.healthy { "UP" } else { "DOWN" });
        field(&mut out, "HM_incarnation", &v.hm_incarnation);
        let _ = writeln!(out);
    }
    out
}

/// One VM in detail (seed: `ksysmgr query vm NAME`), or every VM in a table.
pub fn vms(list: &[pb::VmView], detailed: bool) -> String {
    let mut out = String::new();
    if detailed {
        for v in list {
            field(&mut out, "Name", &v.name);
            field(&mut out, "UUID", &v.uuid);
            field(&mut out, "State", shown::<VmState>(v.state));
            field(&mut out, "Host", &v.host);
            field(&mut out, "LPAR_state", shown::<LparState>(v.lpar_state));
            field(&mut out, "Priority", shown::<Priority>(v.priority));
            let _ = writeln!(
                out,
                "VM_failure_detection_speed:    {}",
                shown::<DetectionSpeed>(v.vm_failure_detection_speed)
            );
            field(&mut out, "HA_monitor", on_off(v.ha_monitor));
            field(&mut out, "Homehost", &v.homehost);
            if !v.blacklist_hosts.is_empty() {
                list_field(&mut out, "Blacklist_hosts", &v.blacklist_hosts);
            }
            field(&mut out, "VM_status", shown::<VmStatus>(v.vm_status));
            field(&mut out, "Epoch", v.epoch);
            field(&mut out, "HA_monitor_state", ha_monitor_state(v.ha_monitor_state()));
            field(&mut out, "Last_response", format!("{} seconds", v.missed_hb_ms / 1000));
            field(&mut out, "VM_restart_count", v.vm_restart_count);
            field(&mut out, "VM_max_restart_count", crate::logic::app_escalation::VM_MAX_RESTART_COUNT);
            if !v.dr_identities.is_empty() {
                list_field(&mut out, "DR_identity", &v.dr_identities);
            }
            if let Some(r) = &v.restart {
                let phase = shown::<RestartPhase>(r.phase);
                field(&mut out, "Last_restart", format!("{}: {phase} on host {}", r.task, r.target));
            }
        }
        return out;
    }
    for (title, managed) in [("Managed VMs:", true), ("Unmanaged VMs:", false)] {
        let rows: Vec<&pb::VmView> = list.iter().filter(|v| v.managed == managed).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}");
        let _ = writeln!(
            out,
            "        {:<16}{:<14}{:<16}{:<16}{:<10}VM_status",
            "Name", "Host", "State", "LPAR_state", "Priority"
        );
        for v in rows {
            let _ = writeln!(
                out,
                "        {:<16}{:<14}{:<16}{:<16}{:<10}{}",
                v.name,
                v.host,
                shown::<VmState>(v.state),
                shown::<LparState>(v.lpar_state),
                shown::<Priority>(v.priority),
                shown::<VmStatus>(v.vm_status)
            );
        }
    }
    out
}

/// Seed Example 2-34: one block per application, values at column 34.
pub fn apps(list: &[pb::AppView]) -> String {
    let mut out = String::new();
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = |key: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{:<33}{value}", format!("{key}:"));
        };
        line("Name", &a.name);
        line("Status", &shown::<Color>(a.status));
        line("AppID", &a.app_id);
        line("VM", &a.vm);
        line("Critical", &if a.critical { "yes" } else { "no" });
        line("MaxRestart", &a.max_restart);
        line("Monitoring", &u8::from(a.monitoring));
    }
    out
}

/// The column heads of the event lines.
pub fn event_header() -> String {
    format!("{:<8}{:<26}{:<15}{:<4}{:<18}Message\n", "Seq", "Event", "Severity", "Ack", "Subject")
}

/// One event (`Ack`: `*` once acknowledged).
pub fn event_line(e: &pb::EventView) -> String {
    let (severity, ack) = (shown::<Severity>(e.severity), if e.acknowledged { "*" } else { "" });
    format!("{:<8}{:<26}{:<15}{ack:<4}{:<18}{}\n", e.sequence, e.name, severity, e.subject, e.message)
}

/// One page of events; `name`: what the page was asked for, to name the next one.
pub fn events(page: &pb::EventList, name: &str) -> String {
    let mut out = event_header();
    for e in &page.events {
        out.push_str(&event_line(e));
    }
    if let Some(before) = page.older_before {
        let name = if name.is_empty() { String::new() } else { format!("{name} ") };
        let _ = writeln!(out, "Older events: ksysmgr query event {name}before={before}");
    }
    out
}

/// One page of the audit trail (times in UTC); `name`: what the page was asked for.
pub fn audit(page: &pb::AuditList, name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<8}{:<21}{:<26}{:<22}{:<9}Object", "Seq", "Time", "User", "Action", "Stage");
    for a in &page.entries {
        let detail = if a.detail.is_empty() { String::new() } else { format!(": {}", a.detail) };
        let time = time(a.at_ms);
        let _ = writeln!(
            out,
            "{:<8}{:<21}{:<26}{:<22}{:<9}{}{detail}",
            a.sequence, time, a.principal, a.action, a.stage, a.object
        );
    }
    if let Some(before) = page.older_before {
        let name = if name.is_empty() { String::new() } else { format!("{name} ") };
        let _ = writeln!(out, "Older entries: ksysmgr query audit {name}before={before}");
    }
    out
}

pub fn hsdb(view: &pb::HsdbView) -> String {
    let mut out = String::new();
    field(&mut out, "DBN", view.dbn);
    field(&mut out, "Term", view.term);
    field(&mut out, "Last_applied", view.last_applied);
    let _ = writeln!(
        out,
        "\n{:<6}{:<24}{:<24}{:<9}{:<13}{:<7}{:<14}{:<10}",
        "ID", "ENDPOINT", "PEER_ENDPOINT", "ROLE", "STATE", "TERM", "LAST_APPLIED", "SNAPSHOT"
    );
    for m in &view.members {
        let dbn = if m.dbn { "  DBN" } else { "" };
        let _ = writeln!(
            out,
            "{:<6}{:<24}{:<24}{:<9}{:<13}{:<7}{:<14}{:<10}{dbn}",
            m.node_id,
            m.endpoint,
            m.peer_endpoint,
            hsdb_role(m.role()),
            hsdb_state(m.state()),
            m.term,
            m.last_applied,
            m.snapshot_index
        );
    }
    out
}

/// Affinity groups (seed: `Name:` / `Type:` / `VMs:`).
pub fn affinity(list: &[pb::AffinityView]) -> String {
    let mut out = String::new();
    for g in list {
        field(&mut out, "Name", &g.name);
        let kind = AffinityKind::from_wire("", g.kind);
        field(&mut out, "Type", kind.map_or_else(|_| format!("unknown ({})", g.kind), |k| k.title().to_string()));
        field(&mut out, "VMs", g.vms.join(" "));
        let _ = writeln!(out);
    }
    out
}

/// MONJVs: the name and what it follows, then the system part's fields and the 256 bytes as
/// text (the seed's /SHOW-JV), or that a password is needed to read it.
pub fn monjvs(list: &[pb::MonjvView]) -> String {
    let mut out = String::new();
    for (i, jv) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        field(&mut out, "Name", &jv.name);
        field(&mut out, "VM", &jv.vm);
        field(&mut out, "Kind", shown::<MonjvKind>(jv.kind));
        field(&mut out, "Monitoring", if jv.monitoring { "yes" } else { "no (kept as a user job variable)" });
        if jv.bytes.is_empty() && jv.password_protected {
            field(&mut out, "Contents", "protected: give password=");
            continue;
        }
        for f in &jv.fields {
            field(&mut out, &f.name, &f.value);
        }
        let text: String =
            jv.bytes.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
        field(&mut out, "Bytes_1-128", format!("|{}|", &text[..text.len().min(128)]));
        field(&mut out, "Bytes_129-256", format!("|{}|", text.get(128..).unwrap_or("")));
    }
    out
}

/// SU clusters as SE Manager's "SU cluster" window shows them: the summary, then a line per
/// unit with its network heartbeat and when it last wrote an alive message.
pub fn su_clusters(list: &[pb::SuClusterView]) -> String {
    let mut out = String::new();
    let now = crate::now_ms();
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        field(&mut out, "Cluster name", &c.name);
        field(&mut out, "Function", &c.function);
        field(&mut out, "Status summary", shown::<SuClusterStatus>(c.status));
        let _ = writeln!(out, "\n{:<16}{:<20}{:<22}VIOS", "Unit", "Network heartbeat", "Last alive message");
        for u in &c.units {
            let alive = match u.last_alive_ms {
                0 => "never".to_string(),
                at => format!("{} ms ago", (now - at).max(0)),
            };
            let vios = format!("{}/{} healthy", u.healthy_vios, u.vios);
            let heartbeat = shown::<UnitHeartbeat>(u.network_heartbeat);
            let _ = writeln!(out, "{:<16}{heartbeat:<20}{alive:<22}{vios}", u.host);
        }
    }
    out
}

fn ha_monitor_state(state: pb::HaMonitorState) -> &'static str {
    match state {
        pb::HaMonitorState::Started => "STARTED",
        pb::HaMonitorState::Suspended => "SUSPENDED",
        pb::HaMonitorState::Missing => "MISSING",
        pb::HaMonitorState::Unspecified => "unknown",
    }
}

fn hsdb_role(role: pb::HsdbRole) -> &'static str {
    match role {
        pb::HsdbRole::Voter => "voter",
        pb::HsdbRole::Learner => "learner",
        pb::HsdbRole::Unspecified => "unknown",
    }
}

fn hsdb_state(state: pb::HsdbMemberState) -> &'static str {
    match state {
        pb::HsdbMemberState::Leader => "Leader",
        pb::HsdbMemberState::Follower => "Follower",
        pb::HsdbMemberState::Candidate => "Candidate",
        pb::HsdbMemberState::Learner => "Learner",
        pb::HsdbMemberState::Shutdown => "Shutdown",
        pb::HsdbMemberState::Unreachable => "unreachable",
        pb::HsdbMemberState::Unspecified => "unknown",
    }
}

/// `query snapshot`: the snapshots the HSDB keeps, newest first.
pub fn snapshots(list: &[pb::SnapshotView]) -> String {
    let mut out = String::new();
    for s in list {
        field(&mut out, "Name", &s.name);
        field(&mut out, "Taken", time(s.taken_ms));
        field(&mut out, "Size", format!("{} bytes", s.size_bytes));
        out.push('\n');
    }
    if list.is_empty() {
        out.push_str("No configuration snapshots: take one with `ksysmgr add snapshot`\n");
    }
    out
}
