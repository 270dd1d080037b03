//! The SAN's gRPC face. Every request is checked where it arrives: a disk is a VM's disk, a key
//! is not zero, an owner is a host name, a write's stamp names a host and an activation. A preempt's fencing token must be one the HSDB issued
//! for an operation on the VM that still holds its lock (read linearizably from the DBN) — the
//! SAN never trusts a caller's number, so nobody can take a disk with a large token of their
//! own and block every later recovery. A reservation change, and an accepted write, is on the
//! SAN's disk before it is answered.
use super::replication::{BATCH, MAX_GROUP_DISKS};
use super::store::SanStore;
use super::{ConfigureGroup, Head, Preempt, QueryGroup, Replicate, Reserve, San, TestCopy, Write};
use crate::domain::identity::{check_copy_stamp, vm_of_disk};
use crate::domain::names::{HostGroupName, HostName};
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::{VmLock, issued};
use crate::hsdb::{HsdbAccess, RemoteHsdb};
use crate::pb::{self, san_server::San as SanRpc};
use actix::Addr;
use tonic::{Request, Response, Status};

pub struct SanService {
    san: Addr<San>,
    store: SanStore,
    hsdb: RemoteHsdb,
}

impl SanService {
    pub fn new(san: Addr<San>, store: SanStore, hsdb: RemoteHsdb) -> Self {
        Self { san, store, hsdb }
    }

    /// Refuses `fence` unless the HSDB issued it for an operation on the VM of `disk` that is
    /// still under way (see [`issued`]).
    async fn check_token(&self, disk: &str, fence: u64) -> Result<()> {
        let vm = vm_of_disk(disk)?;
        let lock = self.hsdb.get::<VmLock>(vm.as_str()).await?.map(|(lock, _)| lock);
        issued(lock.as_ref(), fence).map(drop).map_err(|why| {
            VmrmError::precondition(format!(
                "disk {disk}: fencing token {fence} was refused: {why}; the reservation did not move"
            ))
        })
    }
}

/// A disk, a key and an owner as a reservation needs them.
fn check_holder(disk: &str, key: u64, owner: &str) -> Result<()> {
    vm_of_disk(disk)?;
    HostName::parse(owner)?;
    match key {
        0 => Err(VmrmError::invalid("a reservation key must not be zero")),
        _ => Ok(()),
    }
}

/// A consistency group's name is its host group's.
fn check_group(name: &str) -> Result<()> {
    HostGroupName::parse(name).map(drop)
}

/// A batch from a peer: its group, disks, stamps and size.
fn check_batch(b: &pb::ReplicationBatch) -> Result<()> {
    check_group(&b.group)?;
    if b.writes.len() as u64 > BATCH || b.heads.len() > MAX_GROUP_DISKS {
        return Err(VmrmError::invalid(format!(
            "a replication batch carries at most {BATCH} writes or {MAX_GROUP_DISKS} disks' heads"
        )));
    }
    for (disk, writer) in
        b.writes.iter().map(|w| (&w.disk, &w.writer)).chain(b.heads.iter().map(|h| (&h.disk, &h.writer)))
    {
        vm_of_disk(disk)?;
        if !writer.is_empty() {
            check_copy_stamp(writer)?;
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl SanRpc for SanService {
    async fn reserve(&self, req: Request<pb::ReserveRequest>) -> Result<Response<pb::ReservationReply>, Status> {
        let r = req.into_inner();
        check_holder(&r.disk, r.key, &r.owner)?;
        let reply = self.san.send(Reserve(r)).await.map_err(VmrmError::from)??;
        self.store.flush().await?;
        Ok(Response::new(reply))
    }

    async fn preempt(&self, req: Request<pb::PreemptRequest>) -> Result<Response<pb::ReservationReply>, Status> {
        let r = req.into_inner();
        check_holder(&r.disk, r.key, &r.owner)?;
        self.check_token(&r.disk, r.fence).await?;
        let reply = self.san.send(Preempt(r)).await.map_err(VmrmError::from)??;
        self.store.flush().await?;
        Ok(Response::new(reply))
    }

    async fn write(&self, req: Request<pb::WriteRequest>) -> Result<Response<pb::WriteReply>, Status> {
        let w = req.into_inner();
        vm_of_disk(&w.disk)?;
        check_copy_stamp(&w.writer)?;
        let accepted = self.san.send(Write(w)).await.map_err(VmrmError::from)??;
        // An acknowledged write is on the SAN's disk: a guest that boots after a SAN restart
        // reads its log where it really ends.
        if accepted {
            self.store.flush().await?;
        }
        Ok(Response::new(pb::WriteReply { accepted }))
    }

    async fn head(&self, req: Request<pb::HeadRequest>) -> Result<Response<pb::HeadReply>, Status> {
        let r = req.into_inner();
        vm_of_disk(&r.disk)?;
        Ok(Response::new(self.san.send(Head(r)).await.map_err(VmrmError::from)??))
    }

    async fn configure_group(&self, req: Request<pb::ConsistencyGroup>) -> Result<Response<pb::GroupStatus>, Status> {
        let r = req.into_inner();
        check_group(&r.name)?;
        if !crate::transport::is_endpoint(&r.peer) {
            return Err(
                VmrmError::invalid(format!("peer `{}` is not a SAN's address", crate::error::quote(&r.peer))).into()
            );
        }
        r.disks.iter().try_for_each(|d| vm_of_disk(d).map(drop))?;
        let status = self.san.send(ConfigureGroup(r)).await.map_err(VmrmError::from)??;
        self.store.flush().await?;
        Ok(Response::new(status))
    }

    async fn replicate(&self, req: Request<pb::ReplicationBatch>) -> Result<Response<pb::ReplicationAck>, Status> {
        let who = crate::transport::gate::caller(&req)?;
        let from = (!who.unchecked).then(|| who.name.clone());
        let b = req.into_inner();
        check_batch(&b)?;
        let ack = self.san.send(Replicate(b, from)).await.map_err(VmrmError::from)??;
        // What is acknowledged as applied is on this SAN's disk.
        self.store.flush().await?;
        Ok(Response::new(ack))
    }

    async fn query_group(&self, req: Request<pb::GroupRef>) -> Result<Response<pb::GroupStatus>, Status> {
        let name = req.into_inner().name;
        if !name.is_empty() {
            check_group(&name)?;
        }
        Ok(Response::new(self.san.send(QueryGroup(name)).await.map_err(VmrmError::from)??))
    }

    async fn test_copy(&self, req: Request<pb::TestCopyRequest>) -> Result<Response<pb::TestCopyReply>, Status> {
        let r = req.into_inner();
        check_group(&r.group)?;
        let reply = self.san.send(TestCopy(r)).await.map_err(VmrmError::from)??;
        self.store.flush().await?;
        Ok(Response::new(reply))
    }

    async fn record(&self, req: Request<pb::RecordRequest>) -> Result<Response<pb::RecordReply>, Status> {
        let disk = req.into_inner().disk;
        if !disk.is_empty() {
            vm_of_disk(&disk)?;
        }
        let store = self.store.clone();
        let operations = tokio::task::spawn_blocking(move || store.ops(&disk)).await.map_err(VmrmError::internal)??;
        Ok(Response::new(pb::RecordReply { operations }))
    }
}
