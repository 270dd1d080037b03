//! One incident as one archive for support (seed 003: "package the system wide FFDC data"): a
//! tar.gz holding the incident, each node's bundle and their checksums. It is built only from
//! what the HSDB holds, with fixed times, owners and order, so every node writes the very same
//! bytes for the same incident.
use crate::domain::{FfdcBundleRecord, FfdcIncidentRecord};
use crate::error::{Result, VmrmError};
use std::io::Write as _;

/// The archive's file name: `vmrm_ffdc_<incident>.tar.gz`.
pub fn file_name(incident: &str) -> String {
    format!("vmrm_ffdc_{incident}.tar.gz")
}

/// The archive of `incident` with its bundles (manifest and bytes), in node order.
pub fn build(incident: &FfdcIncidentRecord, bundles: &[(FfdcBundleRecord, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&(FfdcBundleRecord, Vec<u8>)> = bundles.iter().collect();
    sorted.sort_by(|a, b| a.0.node.cmp(&b.0.node));
    let manifests: Vec<&FfdcBundleRecord> = sorted.iter().map(|(m, _)| m).collect();
    let summary = serde_json::json!({ "incident": incident, "bundles": manifests });
    let summary = serde_json::to_vec_pretty(&summary).map_err(VmrmError::internal)?;
    let mut files: Vec<(String, &[u8])> = vec![("incident.json".into(), &summary)];
    files.extend(sorted.iter().map(|(m, bytes)| (format!("{}.txt", m.node), bytes.as_slice())));
    let sums: String =
        files.iter().map(|(name, bytes)| format!("{}  {name}\n", super::store::sha256_hex(bytes))).collect();
    files.push(("SHA256SUMS".into(), sums.as_bytes()));

    let mtime = u64::try_from(incident.detected_at_ms / 1000).unwrap_or_default();
    let gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, format!("{}/{name}", incident.id), *bytes).map_err(VmrmError::internal)?;
    }
    let mut gz = tar.into_inner().map_err(VmrmError::internal)?;
    gz.flush().map_err(VmrmError::internal)?;
    gz.finish().map_err(VmrmError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FfdcTrigger, IncidentState};
    use std::io::Read as _;

    fn incident() -> FfdcIncidentRecord {
        FfdcIncidentRecord {
            id: "20261205-000000.000-manual-ctl-1".into(),
            trigger: FfdcTrigger::Manual,
            subject: "ctl-1".into(),
            origin: "ctl-1".into(),
            opened_by: "ctl-1".into(),
            detail: String::new(),
            detected_at_ms: 1_780_000_000_000,
            deadline_ms: 0,
            expected: vec!["a".into(), "b".into()],
            state: IncidentState::Complete,
            missing: vec![],
            bytes: 0,
        }
    }

    fn bundle(node: &str, text: &str) -> (FfdcBundleRecord, Vec<u8>) {
        let manifest = FfdcBundleRecord {
            incident: incident().id,
            node: node.into(),
            captured_by: node.into(),
            captured_at_ms: 1,
            chunks: 1,
            bytes: text.len() as u64,
            sha256: super::super::store::sha256_hex(text.as_bytes()),
            truncated: false,
        };
        (manifest, text.as_bytes().to_vec())
    }

    #[test]
    fn the_same_incident_makes_the_same_bytes_whatever_the_order_of_its_bundles() {
        let one = build(&incident(), &[bundle("b", "bee"), bundle("a", "ay")]).unwrap();
        let two = build(&incident(), &[bundle("a", "ay"), bundle("b", "bee")]).unwrap();
        assert_eq!(one, two);
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(one.as_slice()));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name.ends_with("SHA256SUMS") {
                assert!(text.contains("  a.txt\n") && text.contains("  incident.json\n"), "{text}");
            }
            names.push(name);
        }
        let id = incident().id;
        assert_eq!(
            names,
            ["incident.json", "a.txt", "b.txt", "SHA256SUMS"].map(|n| format!("{id}/{n}")).to_vec(),
            "the incident, the bundles by node, the checksums"
        );
        assert_eq!(file_name("x"), "vmrm_ffdc_x.tar.gz");
    }
}
