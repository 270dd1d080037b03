//! The FFDC data as people get it, built from the HSDB alone so every node answers the same
//! (seed 003 §2.8: "the management tool can obtain all the data by querying just a single
//! node"): the incidents oldest first with the registered nodes and the settings, one incident
//! with its bundles, its archive, and the settings as `ksysmgr modify ffdc` changes them.
use super::store;
use super::trace_log::{TraceLog, logs};
use crate::domain::{FfdcBundleRecord, FfdcIncidentRecord, FfdcNodeRecord, FfdcSettings, FfdcTrigger};
use crate::error::{Result, VmrmError};
use crate::hsdb::HsdbAccess;
use crate::pb;
use std::collections::BTreeSet;
use strum::VariantArray;

/// Bytes of an archive per streamed part.
const PART_BYTES: usize = 1 << 20;

/// The incidents (or incident `id` with its bundles), the registered nodes and the settings,
/// as node `answering` reads them.
pub async fn list<H: HsdbAccess>(hsdb: &H, id: &str, answering: &str) -> Result<pb::FfdcList> {
    let incidents = match id.is_empty() {
        true => store::incidents(hsdb).await?.into_iter().map(|i| incident_view(i, Vec::new())).collect(),
        false => {
            super::module::check_id(id)?;
            let incident = one(hsdb, id).await?;
            let mut bundles: Vec<FfdcBundleRecord> =
                store::bundles(hsdb).await?.into_iter().filter(|b| b.incident == id).collect();
            bundles.sort_by(|a, b| a.node.cmp(&b.node));
            vec![incident_view(incident, bundles)]
        }
    };
    let mut nodes = hsdb.list::<FfdcNodeRecord>().await?;
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(pb::FfdcList {
        incidents,
        nodes: nodes.into_iter().map(node_view).collect(),
        settings: Some(settings_view(&store::settings(hsdb).await?)),
        node: answering.into(),
    })
}

async fn one<H: HsdbAccess>(hsdb: &H, id: &str) -> Result<FfdcIncidentRecord> {
    hsdb.get::<FfdcIncidentRecord>(id)
        .await?
        .map(|(i, _)| i)
        .ok_or_else(|| VmrmError::not_found(format!("no FFDC incident {id}: `ksysmgr query ffdc` lists them")))
}

/// Incident `id` as one archive: its file name, bytes and SHA-256.
pub async fn archive<H: HsdbAccess>(hsdb: &H, id: &str) -> Result<(String, Vec<u8>, String)> {
    super::module::check_id(id)?;
    let incident = one(hsdb, id).await?;
    let mut bundles = Vec::new();
    for manifest in store::bundles(hsdb).await?.into_iter().filter(|b| b.incident == id) {
        let bytes = store::bundle_bytes(hsdb, &manifest).await?;
        bundles.push((manifest, bytes));
    }
    let bytes = super::archive::build(&incident, &bundles)?;
    let sha = store::sha256_hex(&bytes);
    Ok((super::archive::file_name(id), bytes, sha))
}

/// The archive as streamed parts: the name on the first, the checksum on the last.
pub fn parts((name, bytes, sha): (String, Vec<u8>, String)) -> Vec<pb::FfdcArchivePart> {
    let mut parts: Vec<pb::FfdcArchivePart> =
        bytes.chunks(PART_BYTES).map(|c| pb::FfdcArchivePart { data: c.to_vec(), ..Default::default() }).collect();
    if parts.is_empty() {
        parts.push(pb::FfdcArchivePart::default());
    }
    parts[0].name = name;
    if let Some(last) = parts.last_mut() {
        last.sha256 = sha;
    }
    parts
}

/// The settings after `change` (`InvalidArgument` naming what is wrong; nothing changes then).
pub fn changed(mut settings: FfdcSettings, change: &pb::FfdcSettingsChange) -> Result<FfdcSettings> {
    if !change.triggers.is_empty() {
        settings.triggers = match change.triggers.as_slice() {
            [all] if all == "all" => FfdcTrigger::VARIANTS.iter().copied().collect(),
            [none] if none == "none" => BTreeSet::new(),
            names => names
                .iter()
                .map(|n| {
                    n.parse::<FfdcTrigger>().map_err(|_| {
                        let known: Vec<String> = FfdcTrigger::VARIANTS.iter().map(ToString::to_string).collect();
                        VmrmError::invalid(format!(
                            "unknown FFDC trigger `{}`: use all, none or {}",
                            crate::error::quote(n),
                            known.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        };
    }
    let pct = |v: u32, name: &str| {
        u8::try_from(v).map_err(|_| VmrmError::invalid(format!("{name}={v} is out of range: use 1..=99")))
    };
    if let Some(v) = change.periodic_secs {
        settings.periodic_secs = v;
    }
    if let Some(v) = change.hsdb_threshold_pct {
        settings.hsdb_threshold_pct = pct(v, "hsdb_threshold")?;
    }
    if let Some(v) = change.hysteresis_pct {
        settings.hysteresis_pct = pct(v, "hysteresis")?;
    }
    if let Some(v) = change.coalesce_secs {
        settings.coalesce_secs = v;
    }
    if let Some(v) = change.deadline_secs {
        settings.deadline_secs = v;
    }
    if let Some(v) = change.quota_mib {
        settings.quota_mib = v;
    }
    if let Some(v) = change.node_cap_kib {
        settings.node_cap_kib = v;
    }
    if let Some(v) = change.incident_cap_mib {
        settings.incident_cap_mib = v;
    }
    settings.check()?;
    Ok(settings)
}

/// The newest `lines` of this node's trace log named `log`.
pub fn trace(node: &str, log: &str, lines: u32) -> Result<pb::TraceReply> {
    let named: TraceLog = log.parse().map_err(|_| {
        VmrmError::invalid(format!("unknown trace log `{}`: use {}", crate::error::quote(log), TraceLog::names()))
    })?;
    let lines = logs().lines(named, usize::try_from(lines).unwrap_or(usize::MAX));
    Ok(pb::TraceReply { node: node.into(), log: named.to_string(), lines })
}

fn incident_view(i: FfdcIncidentRecord, bundles: Vec<FfdcBundleRecord>) -> pb::FfdcIncidentView {
    pb::FfdcIncidentView {
        id: i.id,
        trigger: i.trigger.to_string(),
        subject: i.subject,
        origin: i.origin,
        opened_by: i.opened_by,
        detail: i.detail,
        detected_at_ms: i.detected_at_ms,
        deadline_ms: i.deadline_ms,
        state: i.state.to_string(),
        expected: i.expected,
        missing: i.missing,
        bytes: i.bytes,
        bundles: bundles
            .into_iter()
            .map(|b| pb::FfdcBundleView {
                node: b.node,
                captured_by: b.captured_by,
                captured_at_ms: b.captured_at_ms,
                bytes: b.bytes,
                chunks: b.chunks,
                sha256: b.sha256,
                truncated: b.truncated,
            })
            .collect(),
    }
}

fn node_view(n: FfdcNodeRecord) -> pb::FfdcNodeView {
    let status = match (n.left, n.failed_at_ms) {
        (true, _) => "left",
        (false, Some(_)) => "failed",
        (false, None) => "registered",
    };
    pb::FfdcNodeView {
        node: n.node,
        endpoint: n.endpoint,
        roles: n.roles,
        registered_at_ms: n.registered_at_ms,
        status: status.into(),
    }
}

fn settings_view(s: &FfdcSettings) -> pb::FfdcSettingsView {
    pb::FfdcSettingsView {
        triggers: s.triggers.iter().map(ToString::to_string).collect(),
        periodic_secs: s.periodic_secs,
        hsdb_threshold_pct: u32::from(s.hsdb_threshold_pct),
        hysteresis_pct: u32::from(s.hysteresis_pct),
        coalesce_secs: s.coalesce_secs,
        deadline_secs: s.deadline_secs,
        quota_mib: s.quota_mib,
        node_cap_kib: s.node_cap_kib,
        incident_cap_mib: s.incident_cap_mib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_sets_what_it_names_and_refuses_what_is_out_of_range() {
        let change = pb::FfdcSettingsChange {
            triggers: vec!["manual".into(), "node_failed".into()],
            periodic_secs: Some(3600),
            ..Default::default()
        };
        let s = changed(FfdcSettings::default(), &change).unwrap();
        assert_eq!(s.triggers, [FfdcTrigger::Manual, FfdcTrigger::NodeFailed].into());
        assert_eq!((s.periodic_secs, s.quota_mib), (3600, FfdcSettings::default().quota_mib));
        let all = pb::FfdcSettingsChange { triggers: vec!["all".into()], ..Default::default() };
        assert_eq!(changed(s.clone(), &all).unwrap().triggers.len(), FfdcTrigger::VARIANTS.len());
        let bad = |c: pb::FfdcSettingsChange| changed(FfdcSettings::default(), &c).unwrap_err().to_string();
        assert!(
            bad(pb::FfdcSettingsChange { triggers: vec!["flood".into()], ..Default::default() })
                .contains("unknown FFDC trigger `flood`")
        );
        assert!(
            bad(pb::FfdcSettingsChange { hsdb_threshold_pct: Some(300), ..Default::default() })
                .contains("hsdb_threshold=300 is out of range")
        );
        assert!(bad(pb::FfdcSettingsChange { quota_mib: Some(0), ..Default::default() }).contains("quota=0"));
        assert!(trace("n", "nosuch", 0).unwrap_err().to_string().contains("use user|ksys|fde|fdelong|krest|krestlong"));
        assert_eq!(trace("n", "ksys", 5).unwrap().log, "ksys");
    }

    #[test]
    fn an_archive_streams_with_its_name_first_and_its_checksum_last() {
        let parts = parts(("a.tar.gz".into(), vec![7; PART_BYTES + 1], "abc".into()));
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name.as_str(), parts[0].sha256.as_str()), ("a.tar.gz", ""));
        assert_eq!((parts[1].name.as_str(), parts[1].sha256.as_str(), parts[1].data.len()), ("", "abc", 1));
    }
}
