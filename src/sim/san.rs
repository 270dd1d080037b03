//! The SAN: disks with SCSI-3-style persistent reservations. The reservation is the I/O fence:
//! a write whose key does not hold the disk's reservation is rejected and recorded. The record
//! (reservations, preemptions, accepted and rejected writes, in order) is what the tests read
//! to prove that no VM ever ran on two hosts at once.
use crate::error::{Result, VmrmError};
use crate::pb::{self, san_server::San as SanRpc};
use actix::prelude::*;
use std::collections::HashMap;
use tonic::{Request, Response, Status};

#[derive(Default)]
pub struct San {
    holders: HashMap<String, (u64, String)>,
    /// The highest fencing token each disk has seen.
    fences: HashMap<String, u64>,
    record: Vec<pb::SanOperation>,
}

impl Actor for San {
    type Context = Context<Self>;
}

impl San {
    fn log(&mut self, disk: &str, kind: &str, key: u64, owner: &str, previous_key: u64) {
        let now = crate::now_ms();
        if kind == "WRITE"
            && let Some(last) = self.record.iter_mut().rev().find(|op| op.disk == disk)
            && last.kind == "WRITE"
            && last.key == key
        {
            last.count += 1;
            last.last_at_ms = now;
            return;
        }
        let sequence = self.record.len() as u64 + 1;
        self.record.push(pb::SanOperation {
            sequence,
            disk: disk.to_string(),
            kind: kind.to_string(),
            key,
            owner: owner.to_string(),
            at_ms: now,
            previous_key,
            count: 1,
            last_at_ms: now,
        });
    }

    fn write(&mut self, w: &pb::WriteRequest) -> bool {
        let accepted = self.holders.get(&w.disk).is_some_and(|(k, _)| *k == w.key);
        let owner = self.owner_of(&w.disk, w.key);
        self.log(&w.disk, if accepted { "WRITE" } else { "WRITE_REJECTED" }, w.key, &owner, 0);
        accepted
    }

    fn preempt(&mut self, r: &pb::PreemptRequest) -> Result<()> {
        let seen = self.fences.get(&r.disk).copied().unwrap_or(0);
        if r.fence < seen {
            let holder = self.holders.get(&r.disk).map_or(0, |(k, _)| *k);
            self.log(&r.disk, "PREEMPT_REFUSED", r.key, &r.owner, holder);
            return Err(VmrmError::precondition(format!(
                "disk {}: fencing token {} is older than {seen}; the operation that sent it was taken over",
                r.disk, r.fence
            )));
        }
        self.fences.insert(r.disk.clone(), r.fence);
        let previous = self.holders.insert(r.disk.clone(), (r.key, r.owner.clone())).map(|(k, _)| k).unwrap_or(0);
        self.log(&r.disk, "PREEMPT", r.key, &r.owner, previous);
        Ok(())
    }

    fn owner_of(&self, disk: &str, key: u64) -> String {
        match self.holders.get(disk) {
            Some((k, o)) if *k == key => o.clone(),
            _ => String::new(),
        }
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::ReservationReply>")]
pub struct Reserve(pub pb::ReserveRequest);

impl Handler<Reserve> for San {
    type Result = Result<pb::ReservationReply>;
    fn handle(&mut self, Reserve(r): Reserve, _: &mut Context<Self>) -> Self::Result {
        match self.holders.get(&r.disk) {
            Some((holder, owner)) if *holder != r.key => {
                let (holder, owner) = (*holder, owner.clone());
                self.log(&r.disk, "RESERVE_REFUSED", r.key, &r.owner, holder);
                Err(VmrmError::precondition(format!(
                    "disk {} is reserved by {owner} (key {holder:#x}); {} cannot reserve it",
                    r.disk, r.owner
                )))
            }
            _ => {
                self.holders.insert(r.disk.clone(), (r.key, r.owner.clone()));
                self.log(&r.disk, "RESERVE", r.key, &r.owner, 0);
                Ok(pb::ReservationReply { holder: r.key, owner: r.owner })
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::ReservationReply>")]
pub struct Preempt(pub pb::PreemptRequest);

impl Handler<Preempt> for San {
    type Result = Result<pb::ReservationReply>;
    fn handle(&mut self, Preempt(r): Preempt, _: &mut Context<Self>) -> Self::Result {
        self.preempt(&r)?;
        Ok(pb::ReservationReply { holder: r.key, owner: r.owner })
    }
}

#[derive(Message)]
#[rtype(result = "bool")]
pub struct Write(pub pb::WriteRequest);

impl Handler<Write> for San {
    type Result = bool;
    fn handle(&mut self, Write(w): Write, _: &mut Context<Self>) -> bool {
        self.write(&w)
    }
}

#[derive(Message)]
#[rtype(result = "Vec<pb::SanOperation>")]
pub struct Record(pub String);

impl Handler<Record> for San {
    type Result = MessageResult<Record>;
    fn handle(&mut self, Record(disk): Record, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.record.iter().filter(|op| disk.is_empty() || op.disk == disk).cloned().collect())
    }
}

/// gRPC face of the SAN actor.
pub struct SanService(pub Addr<San>);

#[tonic::async_trait]
impl SanRpc for SanService {
    async fn reserve(&self, req: Request<pb::ReserveRequest>) -> Result<Response<pb::ReservationReply>, Status> {
        let r = req.into_inner();
        if r.disk.is_empty() || r.key == 0 {
            return Err(Status::invalid_argument("reserve needs a disk name and a non-zero key"));
        }
        Ok(Response::new(self.0.send(Reserve(r)).await.map_err(VmrmError::from)??))
    }

    async fn preempt(&self, req: Request<pb::PreemptRequest>) -> Result<Response<pb::ReservationReply>, Status> {
        let r = req.into_inner();
        if r.disk.is_empty() || r.key == 0 {
            return Err(Status::invalid_argument("preempt needs a disk name and a non-zero key"));
        }
        Ok(Response::new(self.0.send(Preempt(r)).await.map_err(VmrmError::from)??))
    }

    async fn write(&self, req: Request<pb::WriteRequest>) -> Result<Response<pb::WriteReply>, Status> {
        let accepted = self.0.send(Write(req.into_inner())).await.map_err(VmrmError::from)?;
        Ok(Response::new(pb::WriteReply { accepted }))
    }

    async fn record(&self, req: Request<pb::RecordRequest>) -> Result<Response<pb::RecordReply>, Status> {
        let operations = self.0.send(Record(req.into_inner().disk)).await.map_err(VmrmError::from)?;
        Ok(Response::new(pb::RecordReply { operations }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(san: &mut San, key: u64) -> bool {
        san.write(&pb::WriteRequest { disk: "d".into(), key, block: 0 })
    }

    #[test]
    fn preempted_key_can_no_longer_write_and_writes_fold() {
        let mut san = San::default();
        san.holders.insert("d".into(), (1, "host-1".into()));
        assert!(write(&mut san, 1));
        assert!(write(&mut san, 1));
        san.preempt(&preempt(2, 1)).unwrap();
        assert!(!write(&mut san, 1));
        assert!(write(&mut san, 2));
        let kinds: Vec<_> = san.record.iter().map(|o| (o.kind.as_str(), o.key, o.count)).collect();
        assert_eq!(kinds, vec![("WRITE", 1, 2), ("PREEMPT", 2, 1), ("WRITE_REJECTED", 1, 1), ("WRITE", 2, 1)]);
    }

    fn preempt(key: u64, fence: u64) -> pb::PreemptRequest {
        pb::PreemptRequest { disk: "d".into(), key, owner: format!("host-{key}"), fence }
    }

    #[test]
    fn a_preempt_with_an_older_fencing_token_is_refused_and_changes_nothing() {
        let mut san = San::default();
        san.preempt(&preempt(2, 5)).unwrap();
        san.preempt(&preempt(2, 5)).unwrap();
        let stale = san.preempt(&preempt(3, 4)).unwrap_err();
        assert!(stale.to_string().contains("taken over"), "{stale}");
        assert!(!write(&mut san, 3));
        assert!(write(&mut san, 2));
        assert_eq!(san.record[2].kind, "PREEMPT_REFUSED");
        san.preempt(&preempt(3, 6)).unwrap();
        assert!(write(&mut san, 3));
    }
}
