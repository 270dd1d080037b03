//! Makes what sled wrote survive a power loss, not only a killed process (the HSDB's members
//! and the SAN keep their state in sled).
//!
//! sled 0.34's flush writes its log file with `sync_file_range`, which flushes neither the
//! drive's cache nor the file's metadata (its size), and pages too large for a log segment go
//! to blob files it never syncs at all. [`DiskSync::flush`] completes every flush an answer
//! waits for: sled's flush, then `fdatasync` of each blob file written since the last
//! one and of the blob directory (so the new names survive), then `fdatasync` of the log file.
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// sled's database with the files its flushes must reach the disk through. Concurrent flushes
/// share syncs: a caller whose writes a sync that began after them already covered returns
/// without another (twelve reservations at once cost two syncs, not twelve in a row).
#[derive(Clone)]
pub struct DiskSync {
    db: sled::Db,
    files: Arc<Files>,
    /// Flushes asked for so far (a ticket each), and those a finished sync covers.
    asked: Arc<AtomicU64>,
    covered: Arc<tokio::sync::Mutex<u64>>,
}

struct Files {
    blobs: PathBuf,
    log: File,
    /// The highest blob (named by its log sequence number) synced so far.
    synced_blob: Mutex<u64>,
}

impl DiskSync {
    /// For `db`, opened on directory `dir`.
    pub fn new(db: &sled::Db, dir: &Path) -> io::Result<Self> {
        let log = File::open(dir.join("db"))?;
        let files = Files { blobs: dir.join("blobs"), log, synced_blob: Mutex::new(0) };
        Ok(Self { db: db.clone(), files: Arc::new(files), asked: Arc::default(), covered: Arc::default() })
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Returns once everything written to the database before the call is on the disk.
    pub async fn flush(&self) -> io::Result<()> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            return Ok(());
        }
        // Every ticket up to here was taken after its writes: this sync covers them all.
        let upto = self.asked.load(Ordering::SeqCst);
        self.db.flush_async().await.map_err(io::Error::other)?;
        let files = self.files.clone();
        // fsync blocks for milliseconds: off the async workers, which carry Raft's heartbeats.
        tokio::task::spawn_blocking(move || files.sync()).await.map_err(io::Error::other)??;
        *covered = upto;
        Ok(())
    }
}

impl Files {
    fn sync(&self) -> io::Result<()> {
        let mut synced = self.synced_blob.lock().unwrap_or_else(|p| p.into_inner());
        let new_blobs = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => {
                let mut highest = *synced;
                for entry in entries {
                    let entry = entry?;
                    let Some(lsn) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
                    if lsn > *synced {
                        // Removed meanwhile by sled's blob collection: nothing left to keep.
                        match File::open(entry.path()) {
                            Ok(blob) => blob.sync_data()?,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                        highest = highest.max(lsn);
                    }
                }
                let any = highest > *synced;
                *synced = highest;
                any
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if new_blobs {
            sync_dir(&self.blobs)?;
        }
        self.log.sync_data()
    }
}

/// Makes the entries of directory `dir` (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flushes_a_database_with_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).flush_every_ms(None).open().unwrap();
        let sync = DiskSync::new(&db, dir.path()).unwrap();
        sync.flush().await.expect("an empty database flushes");
        db.insert("big", vec![7u8; 1 << 20]).unwrap();
        sync.flush().await.expect("a database with a blob flushes");
        assert!(*sync.files.synced_blob.lock().unwrap() > 0, "the 1 MiB value went to a blob file that was synced");
    }
}
