//! The etcd side: three `etcd` processes with explicit 3.4 flags and etcd's defaults otherwise
//! (fsync on), spoken to over gRPC with the few etcdserverpb messages the bench needs, written
//! by hand so no proto file or extra build step is involved.
use crate::cluster::NodeSpec;
use crate::system::{self, MEMBERS, Member, Status, System, key_name, value_text};
use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

const PUT: &str = "/etcdserverpb.KV/Put";
const STATUS: &str = "/etcdserverpb.Maintenance/Status";
/// Offsets of the client and peer ports from `--base-port`.
const CLIENT_PORT_OFFSET: u16 = 379;
const PEER_PORT_OFFSET: u16 = 480;

#[derive(Clone, PartialEq, prost::Message)]
struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PutResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    cluster_id: u64,
    #[prost(uint64, tag = "2")]
    member_id: u64,
    #[prost(int64, tag = "3")]
    revision: i64,
    #[prost(uint64, tag = "4")]
    raft_term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StatusRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
    #[prost(string, tag = "2")]
    version: String,
    #[prost(int64, tag = "3")]
    db_size: i64,
    #[prost(uint64, tag = "4")]
    leader: u64,
    #[prost(uint64, tag = "5")]
    raft_index: u64,
    #[prost(uint64, tag = "6")]
    raft_term: u64,
}

pub struct Etcd {
    binary: PathBuf,
    client_ports: [u16; MEMBERS],
    peer_ports: [u16; MEMBERS],
    keys: Arc<Vec<Vec<u8>>>,
    value: Arc<Vec<u8>>,
}

impl Etcd {
    /// Client ports `base_port + 379 ..`, peer ports `base_port + 480 ..`.
    pub fn new(binary: PathBuf, base_port: u16, keys: usize, value_size: usize) -> Self {
        Self {
            binary,
            client_ports: std::array::from_fn(|i| base_port + CLIENT_PORT_OFFSET + i as u16),
            peer_ports: std::array::from_fn(|i| base_port + PEER_PORT_OFFSET + i as u16),
            keys: Arc::new((0..keys).map(|k| key_name(k).into_bytes()).collect()),
            value: Arc::new(value_text(value_size).into_bytes()),
        }
    }

    fn flags(&self, i: usize, data_dir: &str) -> Vec<String> {
        let client = format!("http://127.0.0.1:{}", self.client_ports[i]);
        let peer = format!("http://127.0.0.1:{}", self.peer_ports[i]);
        let initial_cluster: Vec<String> =
            self.peer_ports.iter().enumerate().map(|(j, p)| format!("etcd-{}=http://127.0.0.1:{p}", j + 1)).collect();
        [
            ("--name", format!("etcd-{}", i + 1)),
            ("--data-dir", data_dir.to_string()),
            ("--listen-client-urls", client.clone()),
            ("--advertise-client-urls", client),
            ("--listen-peer-urls", peer.clone()),
            ("--initial-advertise-peer-urls", peer),
            ("--initial-cluster", initial_cluster.join(",")),
            ("--initial-cluster-state", "new".into()),
            ("--initial-cluster-token", "hsdb-vs-etcd".into()),
            ("--logger", "zap".into()),
            ("--log-level", "warn".into()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }
}

impl System for Etcd {
    type Member = EtcdMember;
    const NAME: &'static str = "etcd";

    fn ports(&self) -> Vec<u16> {
        self.client_ports.iter().chain(&self.peer_ports).copied().collect()
    }

    fn node_specs(&self, dir: &Path) -> Result<Vec<NodeSpec>> {
        (0..MEMBERS)
            .map(|i| {
                let name = format!("etcd-{}", i + 1);
                let data_dir = dir.join(&name);
                let args = self.flags(i, data_dir.to_str().context("the temp dir path is not UTF-8")?);
                Ok(NodeSpec { name, program: self.binary.clone(), args, env: Vec::new(), data_dir })
            })
            .collect()
    }

    fn member(&self, i: usize) -> Result<EtcdMember> {
        Ok(EtcdMember {
            channel: system::channel(self.client_ports[i])?,
            keys: self.keys.clone(),
            value: self.value.clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} {} (shown for etcd-1); defaults otherwise: fsync on, heartbeat 100 ms, election timeout 1000 ms, \
             snapshot count 100000, no auto-compaction, 64 MiB preallocated WAL segments",
            self.binary.display(),
            self.flags(0, "DIR").join(" ")
        )
    }
}

#[derive(Clone)]
pub struct EtcdMember {
    channel: Channel,
    keys: Arc<Vec<Vec<u8>>>,
    value: Arc<Vec<u8>>,
}

impl EtcdMember {
    async fn unary<Req, Resp>(&self, path: &'static str, msg: Req, timeout: Duration) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = Grpc::new(self.channel.clone());
        system::call(msg, timeout, |request| async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("etcd not reachable: {e}")))?;
            grpc.unary(request, PathAndQuery::from_static(path), ProstCodec::default()).await
        })
        .await
        .with_context(|| format!("etcd {path}"))
    }
}

impl Member for EtcdMember {
    async fn put(&self, key: usize, timeout: Duration) -> Result<()> {
        let request = PutRequest { key: self.keys[key].clone(), value: self.value.to_vec() };
        let _: PutResponse = self.unary(PUT, request, timeout).await?;
        Ok(())
    }

    async fn status(&self, timeout: Duration) -> Result<Status> {
        let s: StatusResponse = self.unary(STATUS, StatusRequest {}, timeout).await?;
        let header = s.header.ok_or_else(|| anyhow!("etcd status without a header"))?;
        let leads = s.leader != 0 && s.leader == header.member_id;
        Ok(Status { id: header.member_id, leader: s.leader, leads, index: s.raft_index })
    }
}
