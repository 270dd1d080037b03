//! Three server processes in a fresh temp dir, owned by a guard that SIGKILLs them when it is
//! dropped (end of run, error or panic), so a bench run never leaves servers behind. Also the
//! footprint probes: allocated disk blocks of the data dirs and VmRSS of the processes.
use anyhow::{Context, Result, bail};
use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

/// How to run one member; restarting reuses it, so a member comes back on the same data dir.
pub struct NodeSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub data_dir: PathBuf,
}

struct Node {
    spec: NodeSpec,
    log: PathBuf,
    child: Option<Child>,
}

/// The running members. Field order matters: the guard kills the children before the temp dir
/// (data, configs, logs) is removed.
pub struct Cluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

/// Fails with a clear message when one of the ports is already taken on 127.0.0.1.
pub fn ensure_ports_free(ports: &[u16]) -> Result<()> {
    for &port in ports {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("port 127.0.0.1:{port} is in use; pick other ports with --base-port"))?;
    }
    Ok(())
}

impl Cluster {
    /// Starts every member; `dir` holds their data dirs and receives one log file per member.
    pub fn start(specs: Vec<NodeSpec>, dir: TempDir) -> Result<Self> {
        let nodes = specs
            .into_iter()
            .map(|spec| Node { log: dir.path().join(format!("{}.log", spec.name)), spec, child: None })
            .collect();
        let mut cluster = Self { nodes, _dir: dir };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].spec.name
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("cannot open log file {}", node.log.display()))?;
        let child = Command::new(&node.spec.program)
            .args(&node.spec.args)
            .envs(node.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", node.spec.name, node.spec.program.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILLs member `i` and reaps it: when this returns, the process is gone.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let mut child = node.child.take().with_context(|| format!("{} is not running", node.spec.name))?;
        child.kill().with_context(|| format!("cannot SIGKILL {}", node.spec.name))?;
        child.wait().with_context(|| format!("cannot reap {}", node.spec.name))?;
        Ok(())
    }

    /// Starts member `i` again on its existing data dir.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i)
    }

    /// Fails, with the tail of its log, when member `i` has exited.
    pub fn ensure_running(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let child = node.child.as_mut().with_context(|| format!("{} is not running", node.spec.name))?;
        if let Some(status) = child.try_wait()? {
            node.child = None;
            bail!("{} exited ({status}); last lines of {}:\n{}", node.spec.name, node.log.display(), tail(&node.log));
        }
        Ok(())
    }

    /// Sum of VmRSS of the running members, in MiB.
    pub fn rss_mib(&self) -> Result<f64> {
        let mut kib = 0u64;
        for node in &self.nodes {
            let pid = node.child.as_ref().with_context(|| format!("{} is not running", node.spec.name))?.id();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("cannot read /proc/{pid}/status of {}", node.spec.name))?;
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
            kib += line.trim().trim_end_matches("kB").trim().parse::<u64>().context("malformed VmRSS line")?;
        }
        Ok(kib as f64 / 1024.0)
    }

    /// Sum of the blocks allocated to the members' data dirs (what `du` reports), in MiB.
    pub fn disk_mib(&self) -> Result<f64> {
        let mut bytes = 0;
        for node in &self.nodes {
            bytes += allocated_bytes(&node.spec.data_dir)?;
        }
        Ok(bytes as f64 / (1024.0 * 1024.0))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn allocated_bytes(path: &Path) -> Result<u64> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let mut bytes = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))? {
            bytes += allocated_bytes(&entry?.path())?;
        }
    }
    Ok(bytes)
}

fn tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}
