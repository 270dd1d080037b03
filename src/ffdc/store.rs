//! The FFDC rows in the HSDB (seed 003's one storage place): opening an incident once per
//! window, storing a node's bundle as chunks under a manifest written last (so a bundle is
//! either whole or absent, and stored once whoever asks twice), reading them back with their
//! checksum verified, and evicting an incident whole.
use crate::domain::{FfdcBundleRecord, FfdcChunkRecord, FfdcIncidentRecord, FfdcSettings};
use crate::error::{Result, VmrmError};
use crate::hsdb::{Command, HsdbAccess, Table};
use crate::logic::ffdc::{Opening, joins_previous};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Bytes of a bundle per chunk: one Raft entry each, far under the HSDB's row limit.
pub const CHUNK_BYTES: usize = 96 * 1024;

/// How opening an incident went.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// This call wrote it: the caller asks the other nodes.
    New(FfdcIncidentRecord),
    /// It is stored already (by this or another node, in this window or the one before): the
    /// trigger is coalesced into it and nobody is asked again.
    Joined(FfdcIncidentRecord),
}

/// The administrator's settings, or the defaults while none are stored.
pub async fn settings<H: HsdbAccess>(hsdb: &H) -> Result<FfdcSettings> {
    Ok(hsdb.get::<FfdcSettings>(FfdcSettings::KEY).await?.map(|(s, _)| s).unwrap_or_default())
}

/// Opens `incident` (named by `opening`) unless its window's incident, or the previous
/// window's while young enough, is stored already.
pub async fn open<H: HsdbAccess>(
    hsdb: &H,
    opening: &Opening,
    incident: FfdcIncidentRecord,
    window_ms: i64,
) -> Result<Opened> {
    if let Some((stored, _)) = hsdb.get::<FfdcIncidentRecord>(&opening.id).await? {
        return Ok(Opened::Joined(stored));
    }
    if let Some(previous) = &opening.previous
        && let Some((stored, _)) = hsdb.get::<FfdcIncidentRecord>(previous).await?
        && joins_previous(&stored, incident.detected_at_ms, window_ms)
    {
        return Ok(Opened::Joined(stored));
    }
    match hsdb.put_if_version(&incident, 0).await {
        Ok(_) => Ok(Opened::New(incident)),
        Err(VmrmError::Aborted(_)) => {
            let stored = hsdb.get::<FfdcIncidentRecord>(&incident.id).await?;
            stored
                .map(|(s, _)| Opened::Joined(s))
                .ok_or_else(|| VmrmError::internal("an incident vanished as it was opened"))
        }
        Err(e) => Err(e),
    }
}

/// Whether `node`'s bundle of `incident` is stored.
pub async fn has_bundle<H: HsdbAccess>(hsdb: &H, incident: &str, node: &str) -> Result<bool> {
    Ok(hsdb.get::<FfdcBundleRecord>(&FfdcBundleRecord::key_of(incident, node)).await?.is_some())
}

/// How storing a bundle went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Stored,
    /// Its manifest was there already: nothing was written twice.
    AlreadyStored,
}

/// Stores `bundle` (already cut to its cap) as `node`'s contribution to `incident`, written by
/// `captured_by`: the chunks first, the manifest last and only if none is there.
pub async fn store_bundle<H: HsdbAccess>(
    hsdb: &H,
    (incident, node, captured_by): (&str, &str, &str),
    bundle: &[u8],
    truncated: bool,
    captured_at_ms: i64,
) -> Result<Stored> {
    if has_bundle(hsdb, incident, node).await? {
        return Ok(Stored::AlreadyStored);
    }
    let mut chunks = 0u32;
    for (no, piece) in bundle.chunks(CHUNK_BYTES).enumerate() {
        let no = u32::try_from(no).map_err(VmrmError::internal)?;
        let chunk = FfdcChunkRecord {
            incident: incident.into(),
            node: node.into(),
            captured_by: captured_by.into(),
            no,
            data: BASE64.encode(piece),
        };
        hsdb.put(&chunk).await?;
        chunks = no + 1;
    }
    let manifest = FfdcBundleRecord {
        incident: incident.into(),
        node: node.into(),
        captured_by: captured_by.into(),
        captured_at_ms,
        chunks,
        bytes: bundle.len() as u64,
        sha256: sha256_hex(bundle),
        truncated,
    };
    match hsdb.put_if_version(&manifest, 0).await {
        Ok(_) => Ok(Stored::Stored),
        Err(VmrmError::Aborted(_)) => Ok(Stored::AlreadyStored),
        Err(e) => Err(e),
    }
}

/// Every incident, oldest first.
pub async fn incidents<H: HsdbAccess>(hsdb: &H) -> Result<Vec<FfdcIncidentRecord>> {
    let mut all = hsdb.list::<FfdcIncidentRecord>().await?;
    oldest_first(&mut all);
    Ok(all)
}

/// Incidents in the order they were detected (ids of one coalescing window share its start).
pub fn oldest_first(incidents: &mut [FfdcIncidentRecord]) {
    incidents.sort_by(|a, b| (a.detected_at_ms, &a.id).cmp(&(b.detected_at_ms, &b.id)));
}

/// Every bundle's manifest (small rows: the chunks are read one by one).
pub async fn bundles<H: HsdbAccess>(hsdb: &H) -> Result<Vec<FfdcBundleRecord>> {
    hsdb.list::<FfdcBundleRecord>().await
}

/// The bytes of one bundle, checked against its manifest's checksum.
pub async fn bundle_bytes<H: HsdbAccess>(hsdb: &H, manifest: &FfdcBundleRecord) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(manifest.bytes).unwrap_or_default());
    for no in 0..manifest.chunks {
        let key = FfdcChunkRecord::key_of(&manifest.incident, &manifest.node, no);
        let (chunk, _) = hsdb.get::<FfdcChunkRecord>(&key).await?.ok_or_else(|| {
            VmrmError::internal(format!(
                "chunk {no} of {}'s bundle of incident {} is missing",
                manifest.node, manifest.incident
            ))
        })?;
        bytes.extend(BASE64.decode(chunk.data).map_err(VmrmError::internal)?);
    }
    match sha256_hex(&bytes) == manifest.sha256 {
        true => Ok(bytes),
        false => Err(VmrmError::internal(format!(
            "{}'s bundle of incident {} does not match its checksum",
            manifest.node, manifest.incident
        ))),
    }
}

/// The most chunks one bundle can have (the largest per-node cap a setting allows).
pub const MAX_CHUNKS: u32 = ((*crate::domain::ffdc::NODE_CAP_KIB.end() << 10) as usize).div_ceil(CHUNK_BYTES) as u32;

/// Deletes an incident with its bundles: the manifests first (a bundle without one is not
/// read), then the chunks — also those of an expected node that stopped before it wrote its
/// manifest —, then the incident. Deletions go in batches.
pub async fn evict<H: HsdbAccess>(
    hsdb: &H,
    incident: &FfdcIncidentRecord,
    manifests: &[FfdcBundleRecord],
) -> Result<()> {
    let mine: Vec<&FfdcBundleRecord> = manifests.iter().filter(|m| m.incident == incident.id).collect();
    let delete = |table, key| Command::Delete { table, key };
    let mut deletions: Vec<Command> =
        mine.iter().map(|m| delete(Table::FfdcBundle, FfdcBundleRecord::key_of(&m.incident, &m.node))).collect();
    for m in &mine {
        deletions.extend(
            (0..m.chunks).map(|no| delete(Table::FfdcChunk, FfdcChunkRecord::key_of(&m.incident, &m.node, no))),
        );
    }
    let unfinished = incident.expected.iter().filter(|n| !mine.iter().any(|m| &m.node == *n));
    for node in unfinished {
        deletions.extend(
            (0..MAX_CHUNKS).map(|no| delete(Table::FfdcChunk, FfdcChunkRecord::key_of(&incident.id, node, no))),
        );
    }
    for batch in deletions.chunks(crate::hsdb::types::MAX_BATCH_OPS) {
        hsdb.write(Command::Batch(batch.to_vec())).await?;
    }
    hsdb.delete::<FfdcIncidentRecord>(&incident.id).await
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::domain::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
