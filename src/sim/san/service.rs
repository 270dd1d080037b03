//! The SAN's gRPC face. Every request is checked where it arrives: a disk is a VM's disk, a key
//! is not zero, an owner is a host name. A preempt's fencing token must be one the HSDB issued
//! for an operation on the VM that still holds its lock (read linearizably from the DBN) — the
//! SAN never trusts a caller's number, so nobody can take a disk with a large token of their
//! own and block every later recovery. A reservation change is on the SAN's disk before it is
//! answered.
use super::store::SanStore;
use super::{Preempt, Reserve, San, Write};
use crate::domain::identity::vm_of_disk;
use crate::domain::names::HostName;
use crate::error::{Result, VmrmError};
use crate::hsdb::locks::VmLock;
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
        issued(lock.as_ref(), fence).map_err(|why| {
            VmrmError::precondition(format!(
                "disk {disk}: fencing token {fence} was refused: {why}; the reservation did not move"
            ))
        })
    }
}

/// A fencing token the HSDB issued: an epoch the VM's lock has reached, while an operation
/// holds the lock. A token below the current epoch passes here (a migration goes on under the
/// epoch it started with after a new controller takes its lock over), and the SAN's own
/// highest-token rule then refuses it once a newer operation has preempted.
fn issued(lock: Option<&VmLock>, fence: u64) -> std::result::Result<(), String> {
    match lock {
        Some(lock) if lock.is_held() && (1..=lock.epoch).contains(&fence) => Ok(()),
        Some(lock) if lock.is_held() => Err(format!("the VM's lock is at epoch {}", lock.epoch)),
        _ => Err("no operation holds the VM's lock".into()),
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
        let accepted = self.san.send(Write(req.into_inner())).await.map_err(VmrmError::from)??;
        Ok(Response::new(pb::WriteReply { accepted }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VmStatus;

    fn lock(epoch: u64, operation: VmStatus) -> VmLock {
        VmLock { vm: "vm-1".into(), epoch, operation, holder: 1, since_ms: 0 }
    }

    #[test]
    fn only_tokens_the_hsdb_issued_to_a_running_operation_pass() {
        let held = lock(4, VmStatus::RestartInProgress);
        assert_eq!(issued(Some(&held), 4), Ok(()));
        assert_eq!(issued(Some(&held), 3), Ok(()), "a migration taken over goes on under its first epoch");
        assert_eq!(issued(Some(&held), u64::MAX), Err("the VM's lock is at epoch 4".into()));
        assert!(issued(Some(&held), 0).is_err());
        let free = lock(4, VmStatus::NoOperationInProgress);
        assert_eq!(issued(Some(&free), 4), Err("no operation holds the VM's lock".into()));
        assert!(issued(None, 1).is_err());
    }
}
