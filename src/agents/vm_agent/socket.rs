//! The local socket `ksysvmmgr` talks to the agent through (seed: the daemon's `UnixSocket`
//! thread): one JSON request line, one JSON reply line. The VM's OS serves it, so `start vmm`
//! works while the daemon is down, as SRC does.
use super::guest::GuestDir;
use crate::error::{Result, VmrmError};
use crate::logic::app_engine::{AppStatus, VmmError};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentRequest {
    /// The daemon's state (seed: `ksysvmmgr status`).
    Status,
    StartVmm,
    StopVmm,
    /// Reload the configuration file.
    Sync,
    StartApp(String),
    StopApp(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    /// The daemon runs.
    pub active: bool,
    /// The process the daemon lives in.
    pub pid: u32,
    /// The applications' runtime status (empty while the daemon is down).
    pub apps: Vec<AppStatus>,
}

pub type Wire = std::result::Result<AgentReply, VmmError>;

/// The socket's file, removed when dropped unless another copy of the VM took the path over.
pub struct SocketFile {
    path: PathBuf,
    inode: u64,
}

/// Binds the guest's socket (replacing a file left by an earlier run).
pub fn bind(guest: &GuestDir) -> Result<(UnixListener, SocketFile)> {
    guest.create()?;
    let path = guest.socket_path();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| VmrmError::internal(format!("{}: {e}", path.display())))?;
    let inode = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or_default();
    Ok((listener, SocketFile { path, inode }))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Longest request line the agent reads (the largest, an application's definition, is a few KiB).
const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// Reads one request from `stream`, answers it with `answer`.
pub async fn serve_one<F, Fut>(stream: UnixStream, answer: F)
where
    F: FnOnce(AgentRequest) -> Fut,
    Fut: Future<Output = Wire>,
{
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // One request line, bounded: a client that never sends a newline cannot grow it for ever.
    if BufReader::new(read.take(MAX_REQUEST_BYTES)).read_line(&mut line).await.is_err() {
        return;
    }
    let reply = match serde_json::from_str::<AgentRequest>(&line) {
        Ok(req) => answer(req).await,
        Err(e) => Err(VmmError::daemon(format!("bad request: {e}"))),
    };
    if let Ok(mut text) = serde_json::to_string(&reply) {
        text.push('\n');
        let _ = write.write_all(text.as_bytes()).await;
    }
}

/// How long `ksysvmmgr` waits for the agent (a VM whose OS hangs never answers).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `ksysvmmgr`'s side: one request to the agent of the VM whose guest directory is `guest`.
pub async fn call(guest: &GuestDir, req: &AgentRequest) -> Result<Wire> {
    let path = guest.socket_path();
    let exchange = async {
        let stream = UnixStream::connect(&path).await.map_err(|e| {
            VmrmError::unavailable(format!("cannot reach the VM at {}: {e} (is the VM running?)", path.display()))
        })?;
        let (read, mut write) = stream.into_split();
        let mut text = serde_json::to_string(req).map_err(VmrmError::internal)?;
        text.push('\n');
        write.write_all(text.as_bytes()).await.map_err(VmrmError::internal)?;
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await.map_err(VmrmError::internal)?;
        serde_json::from_str(&line).map_err(|e| VmrmError::internal(format!("bad reply from the agent: {e}")))
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange).await.unwrap_or_else(|_| {
        Err(VmrmError::unavailable(format!("the VM at {} did not answer within {CALL_TIMEOUT:?}", path.display())))
    })
}
