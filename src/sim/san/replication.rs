//! A host group's disks replicated to the other site's SAN as one consistency group (DR).
//!
//! The primary numbers every write it accepts on the group's disks (one sequence for the whole
//! group) and ships them in that order; the secondary applies only the next one, so its copy is
//! always the primary's state at some earlier moment — the consistent point an unplanned move
//! starts from. Roles change only with a newer generation: a SAN refuses an older one, and a
//! primary that meets a newer generation (from its peer, the controller or the HSDB) has been
//! taken over and stops accepting writes at once.
//!
//! A primary accepts writes only while its role is confirmed — by its peer acknowledging a
//! batch of the same generation, or by the HSDB's record of the group — within its lease. A
//! site cut off from both stops writing after one lease, so an unplanned move that waits one
//! lease before the new primary accepts writes can never leave two sites writing one disk.
//!
//! Everything here is plain data: the SAN actor keeps the groups, their journal and the clocks.
use crate::error::{Result, VmrmError};
use crate::pb;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most writes a primary keeps for its secondary; beyond that it drops them and owes a full
/// copy, so a secondary cut off for long never makes the primary's disk fill up.
pub const MAX_JOURNAL: u64 = 100_000;
/// Most writes one batch ships.
pub const BATCH: u64 = 512;
/// Most consistency groups a SAN holds, and most disks in one.
pub const MAX_GROUPS: usize = 1024;
pub const MAX_GROUP_DISKS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Primary,
    Secondary,
}

impl Role {
    pub fn of(role: i32) -> Result<Self> {
        match pb::ReplicationRole::try_from(role) {
            Ok(pb::ReplicationRole::Primary) => Ok(Role::Primary),
            Ok(pb::ReplicationRole::Secondary) => Ok(Role::Secondary),
            _ => Err(VmrmError::invalid("a consistency group's role is PRIMARY or SECONDARY")),
        }
    }

    pub fn to_pb(self) -> pb::ReplicationRole {
        match self {
            Role::Primary => pb::ReplicationRole::Primary,
            Role::Secondary => pb::ReplicationRole::Secondary,
        }
    }
}

/// One SAN's part in a consistency group, as kept on its disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub generation: u64,
    pub role: Role,
    /// The other site's SAN, and its node name (the only caller whose batches are taken).
    pub peer: String,
    #[serde(default)]
    pub peer_name: String,
    pub disks: BTreeSet<String>,
    /// Primary: the newest sequence accepted here. Secondary: the newest applied here.
    pub sequence: u64,
    /// Primary: the newest sequence the secondary applied (the journal holds the rest).
    pub acked: u64,
    /// The generation the journal's writes were accepted under: a primary demoted by a planned
    /// move ships what is left under it.
    pub shipping_generation: u64,
    /// The sequence this SAN's primary role began from: what a returning old primary compares
    /// its own writes with.
    pub promoted_at: u64,
    /// Secondary: the primary's newest sequence as it last reported it.
    pub primary_sequence: u64,
    /// Secondary: when its copy was the primary's state (ms since the Unix epoch, primary's clock).
    pub consistent_at_ms: i64,
    /// A full copy is owed to the secondary before any write.
    pub needs_full: bool,
    /// Writes accepted here as a primary that the next primary never received.
    pub lost: u64,
    /// No write is accepted before this (ms since the Unix epoch): an unplanned promotion waits
    /// out the old primary's lease.
    pub writable_after_ms: i64,
}

/// A write the primary accepted, as its journal keeps it.
pub type Journaled = pb::ReplicatedWrite;

/// What a SAN does with a consistency group change it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub group: Group,
    /// The journal is dropped (a full copy replaces it, or its writes are lost).
    pub drop_journal: bool,
}

/// Checks a requested change against the group as this SAN holds it, and returns the group as
/// it is to be. `now_ms` and `lease_ms` date an unplanned promotion's first write.
pub fn configure(current: Option<&Group>, req: &pb::ConsistencyGroup, now_ms: i64, lease_ms: i64) -> Result<Change> {
    let role = Role::of(req.role)?;
    if req.generation == 0 {
        return Err(VmrmError::invalid("a consistency group's generation starts at 1"));
    }
    if req.disks.len() > MAX_GROUP_DISKS {
        return Err(VmrmError::invalid(format!("a consistency group holds at most {MAX_GROUP_DISKS} disks")));
    }
    let disks: BTreeSet<String> = req.disks.iter().cloned().collect();
    let Some(current) = current else {
        // A new group: a primary owes its secondary a first full copy.
        let group = Group {
            name: req.name.clone(),
            generation: req.generation,
            role,
            peer: req.peer.clone(),
            peer_name: req.peer_name.clone(),
            disks,
            sequence: 0,
            acked: 0,
            shipping_generation: req.generation,
            promoted_at: 0,
            primary_sequence: 0,
            consistent_at_ms: 0,
            needs_full: role == Role::Primary,
            lost: 0,
            writable_after_ms: 0,
        };
        return Ok(Change { group, drop_journal: false });
    };
    if req.generation < current.generation {
        return Err(VmrmError::precondition(format!(
            "consistency group {} is at generation {} here; generation {} is older",
            current.name, current.generation, req.generation
        )));
    }
    let grown = !disks.is_subset(&current.disks);
    let peer_name = req.peer_name.clone();
    let mut group = Group { generation: req.generation, peer: req.peer.clone(), peer_name, disks, ..current.clone() };
    if req.generation == current.generation {
        // A disk new to the group has data the secondary never received: a full copy brings it.
        group.needs_full |= grown && role == Role::Primary;
        return match role == current.role {
            true => Ok(Change { group, drop_journal: false }),
            false => Err(VmrmError::precondition(format!(
                "consistency group {} is {:?} at generation {}: a change of role needs a newer generation",
                current.name, current.role, current.generation
            ))),
        };
    }
    let mut drop_journal = false;
    match (current.role, role) {
        (Role::Primary, Role::Secondary) if req.consistent_point == 0 => {
            // A planned move: what is left in the journal is still shipped, under the old
            // generation, before the peer takes over from exactly here.
            group.role = Role::Secondary;
            group.shipping_generation = current.generation;
        }
        (Role::Primary, Role::Secondary) => {
            group = demoted(&group, req.generation, req.consistent_point);
            drop_journal = true;
        }
        (Role::Secondary, Role::Primary) => {
            group.role = Role::Primary;
            group.promoted_at = current.sequence;
            group.shipping_generation = req.generation;
            group.acked = current.sequence;
            if req.peer_lost {
                // The old primary may have accepted writes after our copy: it gets a full copy
                // when it returns, and nobody writes here until its lease has lapsed.
                group.needs_full = true;
                group.writable_after_ms = now_ms.saturating_add(lease_ms);
            }
        }
        _ => {}
    }
    Ok(Change { group, drop_journal })
}

/// A primary taken over at `generation`, whose successor started from sequence `point`: its
/// writes after `point` are lost, and it waits for a full copy from the new primary.
pub fn demoted(group: &Group, generation: u64, point: u64) -> Group {
    Group {
        role: Role::Secondary,
        generation,
        lost: group.lost + group.sequence.saturating_sub(point),
        sequence: point.min(group.sequence),
        acked: point.min(group.sequence),
        shipping_generation: generation,
        needs_full: false,
        ..group.clone()
    }
}

impl Group {
    /// Whether this SAN's hosts may write the group's disks now; `confirmed` says whether the
    /// primary role was confirmed within the lease.
    pub fn admits_writes(&self, disk: &str, now_ms: i64, confirmed: bool) -> Result<()> {
        self.admits_reservations(disk, confirmed)?;
        match now_ms < self.writable_after_ms {
            true => Err(VmrmError::unavailable(format!(
                "disk {disk}: consistency group {} was promoted without its old primary; writes wait {} ms more for the old primary's lease to lapse",
                self.name,
                self.writable_after_ms - now_ms
            ))),
            false => Ok(()),
        }
    }

    /// Whether this SAN's hosts may reserve and read the group's disks: never on a replica, and
    /// on a primary only while its role is confirmed — a SAN back from a lost site waits to learn
    /// it was taken over, so its hosts' boot lists start no stale copy meanwhile.
    pub fn admits_reservations(&self, disk: &str, confirmed: bool) -> Result<()> {
        match self.role {
            Role::Secondary => Err(self.replica(disk)),
            Role::Primary if !confirmed => Err(VmrmError::unavailable(format!(
                "disk {disk}: consistency group {}'s primary role is not confirmed (neither its peer {} nor the HSDB answered within the lease); it waits",
                self.name, self.peer
            ))),
            Role::Primary => Ok(()),
        }
    }

    /// Why a host of this SAN's site may not use a disk the group holds as a secondary.
    pub fn replica(&self, disk: &str) -> VmrmError {
        VmrmError::precondition(format!(
            "disk {disk} is a replica in consistency group {} (generation {}, primary at {}): no host of this site may reserve, read or write it",
            self.name, self.generation, self.peer
        ))
    }

    /// A write accepted on one of the group's disks: its sequence, and the journaled write to
    /// drop, if any. The journal keeps the newest [`MAX_JOURNAL`] writes: once the secondary
    /// lacks an older one, it is owed a full copy instead (and gets the journal's writes after it).
    pub fn accepted(&mut self) -> (u64, Option<u64>) {
        self.sequence += 1;
        let oldest_kept = self.sequence.saturating_sub(MAX_JOURNAL);
        match oldest_kept > self.acked {
            true => {
                self.needs_full = true;
                (self.sequence, Some(oldest_kept))
            }
            false => (self.sequence, None),
        }
    }

    /// Whether there is anything to ship: a full copy owed, or journal writes not yet applied.
    pub fn has_unshipped(&self) -> bool {
        let ships = self.role == Role::Primary || self.shipping_generation < self.generation;
        ships && (self.needs_full || self.acked < self.sequence)
    }

    /// The generation a batch goes under.
    pub fn batch_generation(&self) -> u64 {
        match self.role {
            Role::Primary => self.generation,
            Role::Secondary => self.shipping_generation,
        }
    }

    /// The peer's answer to a batch sent under `generation`: `true` when it confirms this SAN's
    /// primary role.
    pub fn acked_by_peer(&mut self, generation: u64, full: bool, ack: &pb::ReplicationAck) -> bool {
        if ack.superseded || (ack.generation > self.generation && self.role == Role::Primary) {
            match self.role {
                Role::Primary => *self = demoted(self, ack.generation, ack.applied),
                // A drained journal whose answer was lost: the successor took over from
                // `ack.applied`; what it lacks is lost, and nothing is shipped any more.
                Role::Secondary => {
                    self.lost += self.sequence.saturating_sub(ack.applied.max(self.acked));
                    self.acked = self.sequence;
                    self.shipping_generation = self.generation;
                }
            }
            return false;
        }
        if generation != self.batch_generation() {
            return false;
        }
        if full {
            self.needs_full = false;
        }
        self.acked = ack.applied.clamp(self.acked, self.sequence);
        self.role == Role::Primary && generation == self.generation
    }

    pub fn status(&self, san: &str, lag_ms: u64, writable: bool) -> pb::GroupStatus {
        let primary = self.role == Role::Primary;
        pb::GroupStatus {
            name: self.name.clone(),
            generation: self.generation,
            role: self.role.to_pb() as i32,
            peer: self.peer.clone(),
            disks: self.disks.len() as u32,
            sequence: self.sequence,
            acked: if primary { self.acked } else { 0 },
            lag_writes: if primary { self.sequence - self.acked } else { 0 },
            lag_ms,
            consistent_at_ms: if primary { 0 } else { self.consistent_at_ms },
            primary_sequence: if primary { 0 } else { self.primary_sequence },
            writable: primary && writable,
            lost_writes: self.lost,
            needs_full: self.needs_full,
            san: san.to_string(),
        }
    }
}

/// What a secondary does with a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Apply {
    /// The sender is behind: tell it (it has been taken over).
    Superseded(pb::ReplicationAck),
    /// Replace every disk's head (a full copy), then answer.
    Full,
    /// Apply these writes, in order (possibly none), then answer.
    Writes(Vec<pb::ReplicatedWrite>),
}

/// How `group` takes `batch` from its peer. A primary that receives a batch of a newer
/// generation has been taken over (the old site returned): it becomes a secondary first.
pub fn receive(group: &mut Group, batch: &pb::ReplicationBatch) -> Result<Apply> {
    if batch.generation < group.generation || batch.generation == group.generation && group.role == Role::Primary {
        let applied = if group.role == Role::Primary { group.promoted_at } else { group.sequence };
        return Ok(Apply::Superseded(pb::ReplicationAck { applied, generation: group.generation, superseded: true }));
    }
    if group.role == Role::Primary {
        *group = demoted(group, batch.generation, batch.promoted_at);
    }
    group.generation = batch.generation;
    if let Some(stranger) = batch
        .writes
        .iter()
        .map(|w| &w.disk)
        .chain(batch.heads.iter().map(|h| &h.disk))
        .find(|d| !group.disks.contains(*d))
    {
        return Err(VmrmError::invalid(format!(
            "disk {stranger} is not in consistency group {}; nothing was applied",
            group.name
        )));
    }
    if batch.full {
        return Ok(Apply::Full);
    }
    let newer = batch.writes.iter().filter(|w| w.sequence > group.sequence);
    let writes =
        (group.sequence + 1..).zip(newer).take_while(|(next, w)| w.sequence == *next).map(|(_, w)| w.clone()).collect();
    Ok(Apply::Writes(writes))
}

/// The group after `applied` writes (or a full copy) of `batch`.
pub fn applied(group: &mut Group, batch: &pb::ReplicationBatch, writes: &[pb::ReplicatedWrite]) {
    if batch.full {
        group.sequence = batch.written;
        group.consistent_at_ms = batch.sent_at_ms;
    }
    if let Some(last) = writes.last() {
        group.sequence = last.sequence;
        group.consistent_at_ms = last.at_ms;
    }
    group.primary_sequence = group.primary_sequence.max(batch.written);
    if group.sequence == batch.written {
        group.consistent_at_ms = group.consistent_at_ms.max(batch.sent_at_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: i64 = 2_000;

    fn req(generation: u64, role: pb::ReplicationRole) -> pb::ConsistencyGroup {
        pb::ConsistencyGroup {
            name: "HG1".into(),
            generation,
            role: role as i32,
            peer: "san-b".into(),
            disks: vec!["vm-1-rootvg".into()],
            peer_lost: false,
            consistent_point: 0,
            peer_name: "san-b".into(),
        }
    }

    fn primary() -> Group {
        configure(None, &req(1, pb::ReplicationRole::Primary), 0, LEASE).unwrap().group
    }

    fn write(sequence: u64, block: u64) -> pb::ReplicatedWrite {
        pb::ReplicatedWrite {
            sequence,
            disk: "vm-1-rootvg".into(),
            block,
            writer: "host-1#00000001".into(),
            at_ms: 10 * sequence as i64,
        }
    }

    fn batch(generation: u64, writes: Vec<pb::ReplicatedWrite>, written: u64) -> pb::ReplicationBatch {
        pb::ReplicationBatch {
            group: "HG1".into(),
            generation,
            writes,
            written,
            sent_at_ms: 1_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_primary_owes_a_full_copy_and_numbers_its_writes() {
        let mut g = primary();
        assert!(g.needs_full && g.has_unshipped());
        assert_eq!(g.accepted(), (1, None));
        assert_eq!(g.accepted(), (2, None));
        let ack = pb::ReplicationAck { applied: 2, generation: 1, superseded: false };
        assert!(g.acked_by_peer(1, true, &ack), "the peer's answer confirms the primary role");
        assert!(!g.needs_full && !g.has_unshipped());
        assert!(g.admits_writes("vm-1-rootvg", 0, true).is_ok());
        let unconfirmed = g.admits_writes("vm-1-rootvg", 0, false).unwrap_err();
        assert!(matches!(unconfirmed, VmrmError::Unavailable(_)), "{unconfirmed:?}");
        assert!(matches!(g.admits_reservations("vm-1-rootvg", false), Err(VmrmError::Unavailable(_))));
    }

    #[test]
    fn the_journal_overflows_into_a_full_copy() {
        let mut g = primary();
        g.needs_full = false;
        g.sequence = MAX_JOURNAL - 1;
        assert_eq!(g.accepted(), (MAX_JOURNAL, None));
        assert!(!g.needs_full);
        assert_eq!(g.accepted(), (MAX_JOURNAL + 1, Some(1)), "the oldest write goes");
        assert!(g.needs_full);
        assert_eq!(g.accepted(), (MAX_JOURNAL + 2, Some(2)), "the journal slides");
    }

    #[test]
    fn a_secondary_applies_only_the_next_writes_in_order() {
        let mut s = configure(None, &req(1, pb::ReplicationRole::Secondary), 0, LEASE).unwrap().group;
        assert!(matches!(s.admits_writes("vm-1-rootvg", 0, true), Err(VmrmError::FailedPrecondition(_))));
        let b = batch(1, vec![write(1, 1), write(2, 2), write(4, 4)], 4);
        let Apply::Writes(ws) = receive(&mut s, &b).unwrap() else { panic!() };
        assert_eq!(ws.iter().map(|w| w.sequence).collect::<Vec<_>>(), [1, 2], "a gap stops the batch");
        applied(&mut s, &b, &ws);
        assert_eq!((s.sequence, s.primary_sequence, s.consistent_at_ms), (2, 4, 20));
        let again = batch(1, vec![write(2, 2), write(3, 3), write(4, 4)], 4);
        let Apply::Writes(ws) = receive(&mut s, &again).unwrap() else { panic!() };
        assert_eq!(ws.iter().map(|w| w.sequence).collect::<Vec<_>>(), [3, 4], "applied writes are skipped");
        applied(&mut s, &again, &ws);
        assert_eq!(s.consistent_at_ms, 1_000, "caught up: consistent as of the send");
        let mut stranger = batch(1, vec![write(5, 5)], 5);
        stranger.writes[0].disk = "vm-9-rootvg".into();
        assert!(receive(&mut s, &stranger).unwrap_err().to_string().contains("not in consistency group"));
    }

    #[test]
    fn roles_change_only_with_a_newer_generation() {
        let g = primary();
        let older = configure(Some(&g), &req(1, pb::ReplicationRole::Secondary), 0, LEASE).unwrap_err();
        assert!(older.to_string().contains("needs a newer generation"), "{older}");
        let mut two = g.clone();
        two.generation = 2;
        assert!(configure(Some(&two), &req(1, pb::ReplicationRole::Primary), 0, LEASE).is_err());
        let same = configure(Some(&g), &req(1, pb::ReplicationRole::Primary), 0, LEASE).unwrap();
        assert_eq!(same.group, g, "the same request again changes nothing");
    }

    /// A planned move: the old primary drains its journal under the old generation, and the new
    /// one continues the sequence from where the old stopped.
    #[test]
    fn a_planned_move_hands_the_sequence_over() {
        let mut a = primary();
        a.needs_full = false;
        a.sequence = 10;
        a.acked = 8;
        let a2 = configure(Some(&a), &req(2, pb::ReplicationRole::Secondary), 0, LEASE).unwrap().group;
        assert_eq!((a2.role, a2.batch_generation(), a2.sequence), (Role::Secondary, 1, 10));
        assert!(a2.has_unshipped(), "two writes are still to ship");
        let mut b = configure(None, &req(1, pb::ReplicationRole::Secondary), 0, LEASE).unwrap().group;
        b.sequence = 10;
        let b2 = configure(Some(&b), &req(2, pb::ReplicationRole::Primary), 5, LEASE).unwrap().group;
        assert_eq!(
            (b2.sequence, b2.acked, b2.promoted_at, b2.needs_full, b2.writable_after_ms),
            (10, 10, 10, false, 0)
        );
    }

    /// An unplanned move: the new primary waits a lease, owes the old one a full copy, and the
    /// old one, told by the new primary's batch, counts the writes it accepted after the
    /// consistent point as lost.
    #[test]
    fn an_unplanned_move_fences_the_old_primary_and_counts_what_it_lost() {
        let mut b = configure(None, &req(1, pb::ReplicationRole::Secondary), 0, LEASE).unwrap().group;
        b.sequence = 7;
        let mut promote = req(2, pb::ReplicationRole::Primary);
        promote.peer_lost = true;
        let b2 = configure(Some(&b), &promote, 5_000, LEASE).unwrap().group;
        assert!(b2.needs_full);
        assert!(matches!(b2.admits_writes("d", 6_999, true), Err(VmrmError::Unavailable(_))));
        assert!(b2.admits_reservations("d", true).is_ok(), "the VMs' restarts take their disks meanwhile");
        assert!(b2.admits_writes("d", 7_000, true).is_ok());
        let mut a = primary();
        a.needs_full = false;
        a.sequence = 12;
        let mut full = batch(2, vec![], 7);
        full.full = true;
        full.promoted_at = 7;
        assert_eq!(receive(&mut a, &full).unwrap(), Apply::Full);
        assert_eq!((a.role, a.generation, a.lost, a.sequence), (Role::Secondary, 2, 5, 7));
        let stale = receive(&mut a, &batch(1, vec![], 12)).unwrap();
        assert!(matches!(stale, Apply::Superseded(ack) if ack.superseded && ack.generation == 2));
    }

    /// A disk added to a primary's group brings a full copy; a demoted primary whose last
    /// batch's answer was lost stops shipping once the successor says it took over.
    #[test]
    fn a_new_disk_brings_a_full_copy_and_a_drained_journal_stops_on_the_successors_word() {
        let mut g = primary();
        g.needs_full = false;
        let mut more = req(1, pb::ReplicationRole::Primary);
        more.disks.push("vm-2-rootvg".into());
        assert!(configure(Some(&g), &more, 0, LEASE).unwrap().group.needs_full);
        g.sequence = 10;
        g.acked = 8;
        let mut a = configure(Some(&g), &req(2, pb::ReplicationRole::Secondary), 0, LEASE).unwrap().group;
        assert!(a.has_unshipped());
        let ack = pb::ReplicationAck { applied: 10, generation: 2, superseded: true };
        assert!(!a.acked_by_peer(1, false, &ack));
        assert!(!a.has_unshipped() && a.lost == 0, "{a:?}");
    }

    /// The old primary learns it was taken over from its peer's answer, with the sequence the
    /// new primary began from.
    #[test]
    fn a_superseded_answer_demotes_the_primary() {
        let mut a = primary();
        a.needs_full = false;
        a.sequence = 9;
        a.acked = 6;
        let ack = pb::ReplicationAck { applied: 6, generation: 2, superseded: true };
        assert!(!a.acked_by_peer(1, false, &ack));
        assert_eq!((a.role, a.generation, a.lost), (Role::Secondary, 2, 3));
        assert!(matches!(a.admits_writes("d", 0, true), Err(VmrmError::FailedPrecondition(_))));
    }
}
