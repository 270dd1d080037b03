//! `ksysmgr`'s FFDC commands (seed 003) and `trace` (seed 000): a cluster dump by hand and its
//! outcome, the incidents grouped by day, one incident's archive written to a file — from the
//! active controller or straight from any registered node —, the settings, a node's trace log.
use super::grammar::KsysCommand;
use super::run::Output;
use crate::error::{Result, VmrmError};
use crate::pb;
use crate::transport::AdminClient;
use crate::transport::admin_client::archive_of;
use std::fmt::Write as _;
use std::time::Duration;

/// How long `add ffdc` waits past the incident's deadline for it to be settled.
const SETTLE_GRACE: Duration = Duration::from_secs(10);

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Runs one of the FFDC commands or `trace`.
pub async fn execute(admin: &mut AdminClient, cmd: KsysCommand, output: Output) -> Result<String> {
    Ok(match cmd {
        KsysCommand::AddFfdc { detail } => add(admin, detail, output).await?,
        KsysCommand::QueryFfdc { id, node } => {
            let one = !id.is_empty();
            let list = match node {
                None => admin.query_ffdc(pb::FfdcQuery { id }).await?,
                Some(node) => at_node(admin, &node).await?.list(pb::FfdcQuery { id }).await?.into_inner(),
            };
            match output {
                Output::Json => json(&list),
                Output::Text => incidents(&list, one),
            }
        }
        KsysCommand::SnapFfdc { id, filepath, node } => {
            let (name, bytes, sha) = match node {
                None => admin.snap_ffdc(&id).await?,
                Some(node) => {
                    let stream = at_node(admin, &node).await?.snap(pb::FfdcSnapRequest { id }).await?.into_inner();
                    archive_of(stream).await?
                }
            };
            let path = write_archive(&filepath, &name, &bytes)?;
            format!("Created: {path} ({} bytes, SHA-256 {sha})\n", bytes.len())
        }
        KsysCommand::ModifyFfdc(change) => {
            let reply = admin.modify_ffdc(change).await?;
            match output {
                Output::Json => json(&reply),
                Output::Text => pb::steps::printed(&reply.steps).iter().map(|l| format!("{l}\n")).collect(),
            }
        }
        KsysCommand::Trace { request, filepath } => {
            let reply = admin.query_trace(request).await?;
            let text: String = reply.lines.iter().map(|l| format!("{l}\n")).collect();
            match (filepath, output) {
                (Some(path), _) => {
                    std::fs::write(&path, &text).map_err(|e| VmrmError::invalid(format!("{path}: {e}")))?;
                    format!(
                        "Created: {path} ({} lines of trace log {} of node {})\n",
                        reply.lines.len(),
                        reply.log,
                        reply.node
                    )
                }
                (None, Output::Json) => json(&reply),
                (None, Output::Text) => text,
            }
        }
        other => return Err(VmrmError::internal(format!("not an FFDC command: {other:?}"))),
    })
}

/// `add ffdc`: opens the incident, then waits until it is settled (or its deadline passed
/// well over) and says how it ended.
async fn add(admin: &mut AdminClient, detail: String, output: Output) -> Result<String> {
    let opened = admin.add_ffdc(pb::AddFfdcRequest { detail }).await?;
    let mut out = String::new();
    let asked = opened.expected.len();
    if output == Output::Text {
        println!("FFDC incident {} opened: {asked} nodes asked to capture", opened.id);
    }
    let give_up = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(opened.deadline_ms - opened.detected_at_ms).unwrap_or_default())
        + SETTLE_GRACE;
    let settled = loop {
        let list = admin.query_ffdc(pb::FfdcQuery { id: opened.id.clone() }).await?;
        let now = list.incidents.into_iter().next();
        match now {
            Some(i) if i.state != "OPEN" => break Some(i),
            _ if tokio::time::Instant::now() >= give_up => break None,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    match (output, settled) {
        (Output::Json, Some(i)) => out.push_str(&json(&i)),
        (Output::Json, None) => out.push_str(&json(&opened)),
        (Output::Text, Some(i)) => {
            let _ = writeln!(out, "{}", settled_line(&i));
        }
        (Output::Text, None) => {
            let _ =
                writeln!(out, "FFDC incident {} is still open: `ksysmgr query ffdc {}` shows it", opened.id, opened.id);
        }
    }
    Ok(out)
}

fn settled_line(i: &pb::FfdcIncidentView) -> String {
    let contributed = i.expected.len() - i.missing.len().min(i.expected.len());
    let mut line = format!(
        "FFDC incident {} {}: {contributed} of {} nodes contributed ({})",
        i.id,
        i.state,
        i.expected.len(),
        size(i.bytes)
    );
    if !i.missing.is_empty() {
        let _ = write!(line, "; missing: {}", i.missing.join(", "));
    }
    line
}

/// The `Ffdc` service of registered node `node`, reached directly.
async fn at_node(
    admin: &mut AdminClient,
    node: &str,
) -> Result<pb::ffdc_client::FfdcClient<tonic::transport::Channel>> {
    let nodes = admin.query_ffdc(pb::FfdcQuery::default()).await?.nodes;
    let found = nodes.iter().find(|n| n.node == node).ok_or_else(|| {
        VmrmError::not_found(format!("no node {node} is registered: `ksysmgr query ffdc` lists the nodes"))
    })?;
    admin.ffdc_at(&found.endpoint)
}

/// Writes the archive to `path` (a directory: under its own name in it), readable by its owner
/// only (it holds every node's logs); the path written.
fn write_archive(path: &str, name: &str, bytes: &[u8]) -> Result<String> {
    let mut path = std::path::PathBuf::from(path);
    if path.is_dir() {
        path.push(name);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| VmrmError::invalid(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn utc(at_ms: i64) -> String {
    crate::domain::millis::utc(at_ms)
}

/// `query ffdc`: the incidents grouped by day (oldest first), or one with its bundles; then
/// the registered nodes and the settings.
pub fn incidents(list: &pb::FfdcList, one: bool) -> String {
    let mut out = String::new();
    match list.incidents.as_slice() {
        [i] if one => incident(&mut out, i),
        all => {
            let _ = writeln!(out, "FFDC incidents ({} as node {} reads them)", all.len(), list.node);
            let mut day = String::new();
            for i in all {
                let at = utc(i.detected_at_ms);
                let (today, time) = at.split_once(' ').unwrap_or((&at, ""));
                if today != day {
                    day = today.to_string();
                    let _ = writeln!(out, "{day}");
                }
                let contributed = i.expected.len() - i.missing.len().min(i.expected.len());
                let nodes = match i.state.as_str() {
                    "OPEN" => format!("-/{}", i.expected.len()),
                    _ => format!("{contributed}/{}", i.expected.len()),
                };
                let _ = writeln!(
                    out,
                    "  {:<12} {:<58} {:<18} {:<9} {:>7} {:>9}",
                    time.trim_end_matches(" UTC"),
                    i.id,
                    i.trigger,
                    i.state,
                    nodes,
                    size(i.bytes)
                );
            }
        }
    }
    let failed: Vec<&str> = list.nodes.iter().filter(|n| n.status == "failed").map(|n| n.node.as_str()).collect();
    let left: Vec<&str> = list.nodes.iter().filter(|n| n.status == "left").map(|n| n.node.as_str()).collect();
    let _ = writeln!(
        out,
        "\nNodes: {} registered{}{}",
        list.nodes.len(),
        if failed.is_empty() { String::new() } else { format!(", failed: {}", failed.join(", ")) },
        if left.is_empty() { String::new() } else { format!(", left: {}", left.join(", ")) }
    );
    if let Some(s) = &list.settings {
        let _ = writeln!(
            out,
            "Settings: triggers={} periodic={} hsdb_threshold={} hysteresis={} coalesce={} deadline={} quota={} node_cap={} incident_cap={}",
            s.triggers.join(","),
            s.periodic_secs,
            s.hsdb_threshold_pct,
            s.hysteresis_pct,
            s.coalesce_secs,
            s.deadline_secs,
            s.quota_mib,
            s.node_cap_kib,
            s.incident_cap_mib
        );
    }
    out
}

fn incident(out: &mut String, i: &pb::FfdcIncidentView) {
    let field = |out: &mut String, k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{:<20} {v}", format!("{k}:"));
    };
    field(out, "Incident", &i.id);
    field(out, "Trigger", &i.trigger);
    field(out, "Subject", &i.subject);
    field(out, "Detail", &i.detail);
    field(out, "Origin", &i.origin);
    field(out, "Opened by", &i.opened_by);
    field(out, "Detected", &utc(i.detected_at_ms));
    field(out, "Deadline", &utc(i.deadline_ms));
    field(out, "State", &i.state);
    field(out, "Expected", &i.expected.join(", "));
    field(out, "Missing", &i.missing.join(", "));
    field(out, "Size", &size(i.bytes));
    let _ = writeln!(out, "Bundles:");
    for b in &i.bundles {
        let by = match b.captured_by == b.node {
            true => String::new(),
            false => format!(" (captured by {} for it)", b.captured_by),
        };
        let cut = if b.truncated { " truncated" } else { "" };
        let _ = writeln!(
            out,
            "  {:<20} {}  {:>9}  sha256 {}{cut}{by}",
            b.node,
            utc(b.captured_at_ms),
            size(b.bytes),
            &b.sha256.get(..16).unwrap_or(&b.sha256)
        );
    }
}
