//! The SAN: disks with SCSI-3-style persistent reservations. The reservation is the I/O fence:
//! a write whose key does not hold the disk's reservation is rejected and recorded. The record
//! (reservations, preemptions, accepted and rejected writes, in order) is what the tests read
//! to prove that no VM ever ran on two hosts at once.
//!
//! Everything is kept on the SAN's disk ([`store`]) and survives its restart. A preempt moves a
//! reservation only under the fencing token of the VM's lock as the HSDB holds it ([`service`]):
//! no caller can choose its own number.
//!
//! In a DR cluster each site has its SAN, and a host group's disks are replicated from the
//! SAN of the site the group runs at to the other ([`replication`], [`replicating`]): a disk
//! held as a replica can be neither reserved, read nor written by this site's hosts.
pub mod replicating;
pub mod replication;
pub mod service;
pub mod store;
mod test_copy;

use crate::error::{Result, VmrmError};
use crate::pb;
use actix::prelude::*;
use replication::Group;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use store::{Holder, SanStore};

pub use replicating::Links;
pub use service::SanService;

/// Most disks the SAN holds reservations for; a reservation of one more is refused.
pub const MAX_DISKS: usize = 65_536;
/// Record rows kept; the oldest go first (accepted writes of one key fold into one row).
pub const MAX_RECORD: u64 = 200_000;

pub struct San {
    store: SanStore,
    holders: HashMap<String, Holder>,
    /// The highest fencing token each disk has seen.
    fences: HashMap<String, u64>,
    /// Each disk's newest record row.
    last_ops: HashMap<String, pb::SanOperation>,
    last_sequence: u64,
    records: u64,
    /// Each disk's newest written block, and the copy that wrote it.
    heads: HashMap<String, (u64, String)>,
    /// This SAN's part in each consistency group, and which group holds each replicated disk.
    groups: BTreeMap<String, Group>,
    disk_groups: HashMap<String, String>,
    shipping: HashMap<String, replicating::Shipping>,
    /// How to reach the peer SANs and the HSDB; none: nothing is shipped (unit tests).
    links: Option<Links>,
    /// How long a confirmation of a primary role lasts (the links' lease once replicating).
    lease: std::time::Duration,
}

impl Actor for San {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(links) = &self.links {
            ctx.run_interval(replicating::SHIP_TICK, |act, ctx| act.ship(ctx));
            ctx.run_interval(links.lease / 4, |act, ctx| act.confirm(ctx));
        }
    }
}

impl San {
    /// The SAN whose state lives in `store`, as it was when it stopped.
    pub fn open(store: SanStore) -> Result<Self> {
        let loaded = store.load()?;
        Ok(Self {
            store,
            holders: loaded.holders,
            fences: loaded.fences,
            last_ops: loaded.last_ops,
            last_sequence: loaded.last_sequence,
            records: loaded.records,
            heads: loaded.heads,
            disk_groups: loaded
                .groups
                .iter()
                .flat_map(|g| g.disks.iter().map(|d| (d.clone(), g.name.clone())))
                .collect(),
            groups: loaded.groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
            shipping: HashMap::new(),
            links: None,
            lease: crate::profile::Timing::of(crate::profile::ProfileName::Fast).replication_lease,
        })
    }

    /// Replicates the consistency groups it holds, through `links`.
    pub fn replicating(self, links: Links) -> Self {
        Self { lease: links.lease, links: Some(links), ..self }
    }

    fn set_head(&mut self, disk: &str, block: u64, writer: &str) -> Result<()> {
        self.store.set_head(disk, block, writer)?;
        self.heads.insert(disk.to_string(), (block, writer.to_string()));
        Ok(())
    }

    /// Opens (or creates) the SAN's store in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        Self::open(SanStore::open(dir)?)
    }

    fn log(&mut self, disk: &str, kind: &str, key: u64, owner: &str, previous_key: u64) -> Result<()> {
        self.log_write(disk, kind, key, owner, previous_key, ("", 0))
    }

    /// Records an operation; an accepted (or replicated) write that follows the disk's newest
    /// row (same kind, key and copy, the next block) folds into it.
    fn log_write(
        &mut self,
        disk: &str,
        kind: &str,
        key: u64,
        owner: &str,
        previous_key: u64,
        (writer, block): (&str, u64),
    ) -> Result<()> {
        let now = crate::now_ms();
        if let Some(last) = self.last_ops.get_mut(disk)
            && matches!(kind, "WRITE" | "REPLICA")
            && last.kind == kind
            && last.key == key
            && last.writer == writer
            && last.last_block.checked_add(1) == Some(block)
        {
            last.count += 1;
            last.last_at_ms = now;
            last.last_block = block;
            return self.store.put_op(last);
        }
        self.last_sequence += 1;
        let op = pb::SanOperation {
            sequence: self.last_sequence,
            disk: disk.to_string(),
            kind: kind.to_string(),
            key,
            owner: owner.to_string(),
            at_ms: now,
            previous_key,
            count: 1,
            last_at_ms: now,
            writer: writer.to_string(),
            first_block: block,
            last_block: block,
        };
        self.store.put_op(&op)?;
        self.last_ops.insert(disk.to_string(), op);
        self.records += 1;
        if self.records > MAX_RECORD {
            self.store.drop_oldest_op()?;
            self.records -= 1;
        }
        Ok(())
    }

    /// Accepts the write only from the disk's holder. A disk nobody ever reserved has nothing
    /// to protect and leaves no record. The newest block written again by the same copy is a
    /// retry of a write whose answer was lost: accepted, and nothing changes.
    ///
    /// A replicated disk takes writes only as its group's primary, while its role is confirmed
    /// (a write that must wait is answered UNAVAILABLE, and retried); on a replica every write
    /// is rejected.
    fn write(&mut self, w: &pb::WriteRequest) -> Result<bool> {
        let Some(holder) = self.holders.get(&w.disk) else { return Ok(false) };
        let mut accepted = holder.key == w.key;
        let owner = if accepted { holder.owner.clone() } else { String::new() };
        match self.admits_write(&w.disk) {
            Err(VmrmError::FailedPrecondition(_)) => accepted = false,
            Err(wait) => return Err(wait),
            Ok(()) => {}
        }
        if accepted {
            if self.heads.get(&w.disk).is_some_and(|(block, writer)| *block == w.block && *writer == w.writer) {
                return Ok(true);
            }
            self.set_head(&w.disk, w.block, &w.writer)?;
            self.journal(w)?;
        }
        let kind = if accepted { "WRITE" } else { "WRITE_REJECTED" };
        self.log_write(&w.disk, kind, w.key, &owner, 0, (&w.writer, w.block))?;
        Ok(accepted)
    }

    /// The disk's newest written block, for its reservation's holder.
    fn head(&self, r: &pb::HeadRequest) -> Result<pb::HeadReply> {
        self.admits_reservation(&r.disk)?;
        match self.holders.get(&r.disk) {
            Some(holder) if holder.key == r.key => {
                let (block, writer) = self.heads.get(&r.disk).cloned().unwrap_or_default();
                Ok(pb::HeadReply { block, writer })
            }
            Some(holder) => Err(VmrmError::precondition(format!(
                "disk {} is reserved by {} (key {:#x}); key {:#x} cannot read it",
                r.disk, holder.owner, holder.key, r.key
            ))),
            None => Err(VmrmError::precondition(format!("disk {} is not reserved; nobody reads it", r.disk))),
        }
    }

    fn room_for(&self, disk: &str) -> Result<()> {
        match self.holders.contains_key(disk) || self.holders.len() < MAX_DISKS {
            true => Ok(()),
            false => Err(VmrmError::precondition(format!(
                "the SAN holds reservations for {MAX_DISKS} disks already; {disk} was not reserved"
            ))),
        }
    }

    fn reserve(&mut self, r: &pb::ReserveRequest) -> Result<pb::ReservationReply> {
        self.room_for(&r.disk)?;
        self.admits_reservation(&r.disk)?;
        if let Some(held) = self.holders.get(&r.disk).filter(|h| h.key != r.key).cloned() {
            self.log(&r.disk, "RESERVE_REFUSED", r.key, &r.owner, held.key)?;
            return Err(VmrmError::precondition(format!(
                "disk {} is reserved by {} (key {:#x}); {} cannot reserve it",
                r.disk, held.owner, held.key, r.owner
            )));
        }
        self.hold(&r.disk, r.key, &r.owner)?;
        self.log(&r.disk, "RESERVE", r.key, &r.owner, 0)?;
        Ok(pb::ReservationReply { holder: r.key, owner: r.owner.clone() })
    }

    /// Moves the reservation to `r.key` under fencing token `r.fence` (already checked against
    /// the VM's lock): a token older than one the disk has seen is refused.
    fn preempt(&mut self, r: &pb::PreemptRequest) -> Result<pb::ReservationReply> {
        self.room_for(&r.disk)?;
        self.admits_reservation(&r.disk)?;
        let seen = self.fences.get(&r.disk).copied().unwrap_or(0);
        let previous = self.holders.get(&r.disk).map_or(0, |h| h.key);
        if r.fence < seen {
            self.log(&r.disk, "PREEMPT_REFUSED", r.key, &r.owner, previous)?;
            return Err(VmrmError::precondition(format!(
                "disk {}: fencing token {} is older than {seen}; the operation that sent it was taken over",
                r.disk, r.fence
            )));
        }
        self.store.set_fence(&r.disk, r.fence)?;
        self.fences.insert(r.disk.clone(), r.fence);
        self.hold(&r.disk, r.key, &r.owner)?;
        self.log(&r.disk, "PREEMPT", r.key, &r.owner, previous)?;
        Ok(pb::ReservationReply { holder: r.key, owner: r.owner.clone() })
    }

    fn hold(&mut self, disk: &str, key: u64, owner: &str) -> Result<()> {
        let holder = Holder { key, owner: owner.to_string() };
        self.store.set_holder(disk, &holder)?;
        self.holders.insert(disk.to_string(), holder);
        Ok(())
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::ReservationReply>")]
pub struct Reserve(pub pb::ReserveRequest);

impl Handler<Reserve> for San {
    type Result = Result<pb::ReservationReply>;
    fn handle(&mut self, Reserve(r): Reserve, _: &mut Context<Self>) -> Self::Result {
        self.reserve(&r)
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::ReservationReply>")]
pub struct Preempt(pub pb::PreemptRequest);

impl Handler<Preempt> for San {
    type Result = Result<pb::ReservationReply>;
    fn handle(&mut self, Preempt(r): Preempt, _: &mut Context<Self>) -> Self::Result {
        self.preempt(&r)
    }
}

#[derive(Message)]
#[rtype(result = "Result<bool>")]
pub struct Write(pub pb::WriteRequest);

impl Handler<Write> for San {
    type Result = Result<bool>;
    fn handle(&mut self, Write(w): Write, _: &mut Context<Self>) -> Self::Result {
        self.write(&w)
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::HeadReply>")]
pub struct Head(pub pb::HeadRequest);

impl Handler<Head> for San {
    type Result = Result<pb::HeadReply>;
    fn handle(&mut self, Head(r): Head, _: &mut Context<Self>) -> Self::Result {
        self.head(&r)
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::GroupStatus>")]
pub struct ConfigureGroup(pub pb::ConsistencyGroup);

impl Handler<ConfigureGroup> for San {
    type Result = Result<pb::GroupStatus>;
    fn handle(&mut self, ConfigureGroup(r): ConfigureGroup, _: &mut Context<Self>) -> Self::Result {
        self.configure(&r)
    }
}

/// A batch from a peer SAN, and who sent it (`None` on a node serving without TLS).
#[derive(Message)]
#[rtype(result = "Result<pb::ReplicationAck>")]
pub struct Replicate(pub pb::ReplicationBatch, pub Option<String>);

impl Handler<Replicate> for San {
    type Result = Result<pb::ReplicationAck>;
    fn handle(&mut self, Replicate(b, from): Replicate, _: &mut Context<Self>) -> Self::Result {
        self.receive(&b, from.as_deref())
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::TestCopyReply>")]
pub struct TestCopy(pub pb::TestCopyRequest);

impl Handler<TestCopy> for San {
    type Result = Result<pb::TestCopyReply>;
    fn handle(&mut self, TestCopy(r): TestCopy, _: &mut Context<Self>) -> Self::Result {
        self.test_copy(&r)
    }
}

#[derive(Message)]
#[rtype(result = "Result<pb::GroupStatus>")]
pub struct QueryGroup(pub String);

impl Handler<QueryGroup> for San {
    type Result = Result<pb::GroupStatus>;
    fn handle(&mut self, QueryGroup(name): QueryGroup, _: &mut Context<Self>) -> Self::Result {
        self.status(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn san(dir: &Path) -> San {
        San::open_dir(dir).unwrap()
    }

    /// sled's flusher thread lets go of the files a moment after the last handle is dropped.
    fn reopen(dir: &Path) -> San {
        for _ in 0..100 {
            if let Ok(san) = San::open_dir(dir) {
                return san;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the SAN's store does not reopen")
    }

    fn write(san: &mut San, key: u64) -> bool {
        stamped(san, key, &format!("host-{key}#00000001"))
    }

    /// The next block of the disk's log, stamped by `writer`.
    fn stamped(san: &mut San, key: u64, writer: &str) -> bool {
        let block = san.heads.get("d").map_or(1, |(b, _)| b + 1);
        at(san, key, writer, block)
    }

    fn at(san: &mut San, key: u64, writer: &str, block: u64) -> bool {
        san.write(&pb::WriteRequest { disk: "d".into(), key, block, writer: writer.into() }).unwrap()
    }

    fn head(san: &San, key: u64) -> Result<u64> {
        san.head(&pb::HeadRequest { disk: "d".into(), key }).map(|h| h.block)
    }

    fn preempt(key: u64, fence: u64) -> pb::PreemptRequest {
        pb::PreemptRequest { disk: "d".into(), key, owner: format!("host-{key}"), fence }
    }

    fn reserve(key: u64) -> pb::ReserveRequest {
        pb::ReserveRequest { disk: "d".into(), key, owner: format!("host-{key}") }
    }

    fn kinds(san: &San) -> Vec<(String, u64, u64)> {
        san.store.ops("d").unwrap().into_iter().map(|o| (o.kind, o.key, o.count)).collect()
    }

    #[test]
    fn preempted_key_can_no_longer_write_and_writes_fold() {
        let dir = tempfile::tempdir().unwrap();
        let mut san = san(dir.path());
        assert!(!write(&mut san, 1), "nobody holds the disk yet");
        san.reserve(&reserve(1)).unwrap();
        assert!(write(&mut san, 1));
        assert!(write(&mut san, 1));
        san.preempt(&preempt(2, 1)).unwrap();
        assert!(!write(&mut san, 1));
        assert!(write(&mut san, 2));
        let expected =
            [("RESERVE", 1, 1), ("WRITE", 1, 2), ("PREEMPT", 2, 1), ("WRITE_REJECTED", 1, 1), ("WRITE", 2, 1)];
        assert_eq!(kinds(&san), expected.map(|(k, key, n)| (k.to_string(), key, n)));
    }

    /// Two copies on one host share its key: the SAN accepts both, and only their stamps, kept
    /// row by row, tell them apart.
    #[test]
    fn writes_fold_only_within_one_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut san = san(dir.path());
        san.reserve(&reserve(1)).unwrap();
        for writer in ["host-1#00000001", "host-1#00000001", "host-1#00000002", "host-1#00000001"] {
            assert!(stamped(&mut san, 1, writer));
        }
        let rows: Vec<_> = san.store.ops("d").unwrap().into_iter().map(|o| (o.writer, o.count)).collect();
        let expected = [("", 1), ("host-1#00000001", 2), ("host-1#00000002", 1), ("host-1#00000001", 1)];
        assert_eq!(rows, expected.map(|(w, n)| (w.to_string(), n)));
    }

    #[test]
    fn a_preempt_with_an_older_fencing_token_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut san = san(dir.path());
        san.preempt(&preempt(2, 5)).unwrap();
        san.preempt(&preempt(2, 5)).unwrap();
        let stale = san.preempt(&preempt(3, 4)).unwrap_err();
        assert!(stale.to_string().contains("taken over"), "{stale}");
        assert!(!write(&mut san, 3));
        assert!(write(&mut san, 2));
        assert_eq!(kinds(&san)[2].0, "PREEMPT_REFUSED");
        san.preempt(&preempt(3, 6)).unwrap();
        assert!(write(&mut san, 3));
    }

    /// The disk's log: a retried write changes nothing, a gap or a repeat shows as a new row,
    /// and only the holder reads where the log is.
    #[test]
    fn the_log_head_moves_with_each_new_block_and_only_its_holder_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut san = san(dir.path());
        assert!(head(&san, 1).unwrap_err().to_string().contains("not reserved"));
        san.reserve(&reserve(1)).unwrap();
        assert_eq!(head(&san, 1).unwrap(), 0, "nothing written yet");
        let w = "host-1#00000001";
        for block in [1, 2, 2, 3] {
            assert!(at(&mut san, 1, w, block));
        }
        assert_eq!(head(&san, 1).unwrap(), 3);
        assert!(head(&san, 2).unwrap_err().to_string().contains("cannot read it"));
        assert!(at(&mut san, 1, w, 5), "a gap is written, and shows");
        assert!(at(&mut san, 1, w, 5), "the same block again: a retry");
        assert!(at(&mut san, 1, w, 4), "a step back is written, and shows");
        let rows: Vec<_> =
            san.store.ops("d").unwrap().into_iter().skip(1).map(|o| (o.first_block, o.last_block, o.count)).collect();
        assert_eq!(rows, [(1, 3, 3), (5, 5, 1), (4, 4, 1)]);
        assert_eq!(head(&san, 1).unwrap(), 4);
    }

    fn group(role: pb::ReplicationRole) -> pb::ConsistencyGroup {
        pb::ConsistencyGroup {
            name: "HG1".into(),
            generation: 1,
            role: role as i32,
            peer: "127.0.0.1:1".into(),
            disks: vec!["d".into()],
            ..Default::default()
        }
    }

    /// A primary journals its writes and ships them; the secondary applies them in order, keeps
    /// each writer's stamp, and lets no host of its own site touch the disk. A restarted primary
    /// numbers on from its journal.
    #[test]
    fn a_primary_ships_its_writes_and_the_replica_refuses_its_own_hosts() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut a, mut b) = (san(a_dir.path()), san(b_dir.path()));
        a.configure(&group(pb::ReplicationRole::Primary)).unwrap();
        b.configure(&group(pb::ReplicationRole::Secondary)).unwrap();
        a.reserve(&reserve(1)).unwrap();
        assert!(at(&mut a, 1, "host-1#00000001", 1));
        let full = a.batch("HG1").unwrap();
        assert!(full.full && full.heads.len() == 1 && full.written == 1);
        let ack = b.receive(&full, None).unwrap();
        assert_eq!(ack.applied, 1);
        for block in 2..=4 {
            assert!(at(&mut a, 1, "host-1#00000001", block));
        }
        a.groups.get_mut("HG1").unwrap().acked_by_peer(1, true, &ack);
        let batch = a.batch("HG1").unwrap();
        assert_eq!(batch.writes.iter().map(|w| w.block).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(b.receive(&batch, None).unwrap().applied, 4);
        assert_eq!(b.heads["d"], (4, "host-1#00000001".to_string()));
        let rows: Vec<_> =
            b.store.ops("d").unwrap().into_iter().map(|o| (o.kind, o.first_block, o.last_block)).collect();
        assert_eq!(rows, [("RESYNC".to_string(), 1, 1), ("REPLICA".to_string(), 2, 4)]);
        assert!(b.reserve(&reserve(2)).unwrap_err().to_string().contains("is a replica"));
        assert!(b.head(&pb::HeadRequest { disk: "d".into(), key: 2 }).is_err());
        drop(a);
        let again = reopen(a_dir.path());
        assert_eq!(again.groups["HG1"].sequence, 4, "the journal says how far the primary numbered");
    }

    /// A restarted SAN holds what it held: the holder's writes go on, the fence still refuses an
    /// older token, a stale host cannot reserve the disk, and the record continues.
    #[test]
    fn a_restarted_san_remembers_reservations_tokens_and_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = san(dir.path());
        first.reserve(&reserve(1)).unwrap();
        first.preempt(&preempt(2, 7)).unwrap();
        assert!(write(&mut first, 2));
        drop(first);
        let mut again = reopen(dir.path());
        assert!(write(&mut again, 2), "the holder's writes are still accepted");
        assert!(again.reserve(&reserve(1)).is_err(), "a stale host cannot take the disk");
        assert!(again.preempt(&preempt(1, 6)).is_err(), "nor preempt with an older token");
        let kinds = kinds(&again);
        assert_eq!(kinds[2], ("WRITE".to_string(), 2, 2), "the write folded into the row before the restart");
        assert_eq!(head(&again, 2).unwrap(), 2, "the log head survived the restart");
        assert_eq!(again.store.ops("d").unwrap().last().unwrap().sequence, 5);
    }
}
