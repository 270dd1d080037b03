//! The HSDB side: three hsdb-only `vmrmd` members, each from its own TOML config, written to
//! through the library's generated `Hsdb` gRPC client with the `Command::Put` the controller
//! itself uses, so the bench measures the path real callers take.
use crate::cluster::NodeSpec;
use crate::system::{self, MEMBERS, Member, Status, System, key_name, value_text};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use vmrm::domain::SuAliveRecord;
use vmrm::hsdb::raft_node::{ELECTION_TIMEOUT_MAX_MS, ELECTION_TIMEOUT_MIN_MS, HEARTBEAT_MS};
use vmrm::hsdb::{Command, CommandResult, Table};
use vmrm::pb::{HsdbStatusRequest, HsdbWrite, hsdb_client::HsdbClient};

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
/// Each member's Raft is served on its port + this (etcd's peer ports are separate too).
const PEER_OFFSET: u16 = 10;

pub struct Hsdb {
    ports: [u16; MEMBERS],
    /// The encoded `Put` of every key, built once so the clients spend no time on JSON.
    commands: Arc<Vec<Vec<u8>>>,
}

impl Hsdb {
    /// Members listen on `base_port + 1 ..= base_port + 3`.
    pub fn new(base_port: u16, keys: usize, value_size: usize) -> Result<Self> {
        // The HSDB stores only its tables' records: each key is a server unit's alive row whose
        // incarnation carries the value.
        let row = |k| SuAliveRecord { host: key_name(k), incarnation: value_text(value_size), at_ms: 0 };
        let commands = (0..keys)
            .map(|k| {
                let value = serde_json::to_value(row(k))?;
                serde_json::to_vec(&Command::Put { table: Table::SuAlive, key: key_name(k), value })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("cannot encode an HSDB command")?;
        Ok(Self { ports: std::array::from_fn(|i| base_port + 1 + i as u16), commands: Arc::new(commands) })
    }

    fn config(&self, i: usize, data_dir: &Path) -> Result<String> {
        let data_dir = data_dir.to_str().context("the temp dir path is not UTF-8")?;
        let listed = |offset: u16| -> String {
            let at = |(j, port): (usize, &u16)| format!("{} = \"127.0.0.1:{}\"\n", j + 1, port + offset);
            self.ports.iter().enumerate().map(at).collect()
        };
        Ok(format!(
            "name = \"hsdb-{id}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {data_dir:?}\nprofile = \"fast\"\n\
             insecure = true\n\
             hsdb_endpoints = []\n\n[hsdb]\nnode_id = {id}\npeer_listen = \"127.0.0.1:{peer}\"\n\n\
             [hsdb.members]\n{members}\n[hsdb.peers]\n{peers}",
            id = i + 1,
            port = self.ports[i],
            peer = self.ports[i] + PEER_OFFSET,
            members = listed(0),
            peers = listed(PEER_OFFSET),
        ))
    }
}

impl System for Hsdb {
    type Member = HsdbMember;
    const NAME: &'static str = "HSDB";

    fn ports(&self) -> Vec<u16> {
        self.ports.iter().flat_map(|p| [*p, p + PEER_OFFSET]).collect()
    }

    fn node_specs(&self, dir: &Path) -> Result<Vec<NodeSpec>> {
        (0..MEMBERS)
            .map(|i| {
                let name = format!("hsdb-{}", i + 1);
                let data_dir = dir.join(&name);
                let config = dir.join(format!("{name}.toml"));
                std::fs::write(&config, self.config(i, &data_dir)?)
                    .with_context(|| format!("cannot write {}", config.display()))?;
                Ok(NodeSpec {
                    name,
                    program: VMRMD.into(),
                    args: vec!["--config".into(), config.display().to_string()],
                    env: vec![("RUST_LOG".into(), "warn".into())],
                    data_dir,
                })
            })
            .collect()
    }

    fn member(&self, i: usize) -> Result<HsdbMember> {
        Ok(HsdbMember { client: HsdbClient::new(system::channel(self.ports[i])?), commands: self.commands.clone() })
    }

    fn describe(&self) -> String {
        format!(
            "{VMRMD} --config hsdb-N.toml (hsdb-only members, profile \"fast\", RUST_LOG=warn), ports {}-{}; \
             Raft on ports + {PEER_OFFSET}, heartbeat {HEARTBEAT_MS} ms, election timeout {ELECTION_TIMEOUT_MIN_MS}-{ELECTION_TIMEOUT_MAX_MS} ms",
            self.ports[0],
            self.ports[MEMBERS - 1]
        )
    }
}

#[derive(Clone)]
pub struct HsdbMember {
    client: HsdbClient<Channel>,
    commands: Arc<Vec<Vec<u8>>>,
}

impl Member for HsdbMember {
    async fn put(&self, key: usize, timeout: Duration) -> Result<()> {
        let mut client = self.client.clone();
        let write = HsdbWrite { command: self.commands[key].clone() };
        let reply = system::call(write, timeout, |r| async move { client.write(r).await }).await?;
        match serde_json::from_slice(&reply.response).context("malformed HSDB write reply")? {
            CommandResult::Applied { .. } => Ok(()),
            other => bail!("unexpected HSDB write result {other:?}"),
        }
    }

    async fn status(&self, timeout: Duration) -> Result<Status> {
        let mut client = self.client.clone();
        let s = system::call(HsdbStatusRequest {}, timeout, |r| async move { client.status(r).await }).await?;
        let leads = s.state() == vmrm::pb::HsdbMemberState::Leader && s.leader_id == s.node_id;
        Ok(Status { id: s.node_id, leader: s.leader_id, leads, index: s.last_applied })
    }
}
