//! The SAN actor's part in DR replication ([`super::replication`] decides): it keeps the
//! consistency groups and their journal, ships a primary's writes to the peer SAN in order
//! (one batch in flight per group, backing off while the peer does not answer, an empty batch
//! every quarter lease as a heartbeat), applies a secondary's batches, and confirms a primary's
//! role with the HSDB.
use super::San;
use super::replication::{self, Apply, BATCH, Group, MAX_GROUPS, Role};
use crate::domain::ConsistencyGroupRecord;
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, RemoteHsdb};
use crate::in_flight::InFlight;
use crate::pb;
use crate::transport::{ChannelPool, deadline};
use actix::prelude::*;
use std::time::{Duration, Instant};

/// How often the SAN looks for writes to ship.
pub(super) const SHIP_TICK: Duration = Duration::from_millis(50);
/// The first and the longest wait before shipping again to a peer that did not answer.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a SAN needs to replicate: its own name (as the HSDB's records name it), the way to its
/// peers and to the HSDB, and its primary role's lease.
#[derive(Clone)]
pub struct Links {
    pub name: String,
    pub pool: ChannelPool,
    pub hsdb: RemoteHsdb,
    pub lease: Duration,
    pub rpc_deadline: Duration,
}

/// One group's shipping, in memory only.
#[derive(Debug)]
pub struct Shipping {
    sending: InFlight,
    checking: InFlight,
    retry_at: Instant,
    backoff: Duration,
    last_sent: Option<Instant>,
    /// When the primary role was last confirmed (by the peer or the HSDB).
    confirmed_at: Option<Instant>,
}

impl Default for Shipping {
    fn default() -> Self {
        Self {
            sending: InFlight::default(),
            checking: InFlight::default(),
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            last_sent: None,
            confirmed_at: None,
        }
    }
}

impl San {
    fn confirmed(&self, group: &str) -> bool {
        let at = self.shipping.get(group).and_then(|s| s.confirmed_at);
        at.is_some_and(|at| at.elapsed() < self.lease)
    }

    /// The consistency group that holds `disk`, if any.
    pub(super) fn group_of(&self, disk: &str) -> Option<&Group> {
        self.disk_groups.get(disk).and_then(|g| self.groups.get(g))
    }

    /// Refuses a reservation change or a read of `disk` unless this site may use it (see
    /// [`Group::admits_reservations`]).
    pub(super) fn admits_reservation(&self, disk: &str) -> Result<()> {
        match self.group_of(disk) {
            Some(g) => g.admits_reservations(disk, self.confirmed(&g.name)),
            None => Ok(()),
        }
    }

    /// Whether a host of this site may write `disk` now (see [`Group::admits_writes`]).
    pub(super) fn admits_write(&self, disk: &str) -> Result<()> {
        match self.group_of(disk) {
            Some(g) => g.admits_writes(disk, crate::now_ms(), self.confirmed(&g.name)),
            None => Ok(()),
        }
    }

    /// Journals an accepted write on a replicated disk.
    pub(super) fn journal(&mut self, w: &pb::WriteRequest) -> Result<()> {
        let Some(name) = self.disk_groups.get(&w.disk).cloned() else { return Ok(()) };
        let Some(group) = self.groups.get_mut(&name) else { return Ok(()) };
        let was_owed = group.needs_full;
        let (sequence, dropped) = group.accepted();
        let write = pb::ReplicatedWrite {
            sequence,
            disk: w.disk.clone(),
            block: w.block,
            writer: w.writer.clone(),
            at_ms: crate::now_ms(),
        };
        self.store.journal_append(&name, &write)?;
        if let Some(oldest) = dropped {
            self.store.journal_trim(&name, oldest)?;
        }
        if group.needs_full != was_owed {
            tracing::warn!(group = %name, "the secondary {} lags over {} writes: it gets a full copy", group.peer, replication::MAX_JOURNAL);
            self.store.put_group(group)?;
        }
        Ok(())
    }

    fn put_group(&mut self, group: Group, drop_journal: bool) -> Result<()> {
        if drop_journal {
            self.store.journal_trim(&group.name, u64::MAX)?;
        }
        self.store.put_group(&group)?;
        self.disk_groups.retain(|_, g| *g != group.name);
        for disk in &group.disks {
            self.disk_groups.insert(disk.clone(), group.name.clone());
        }
        self.groups.insert(group.name.clone(), group);
        Ok(())
    }

    /// Sets this SAN's part in a consistency group (from the controller).
    pub(super) fn configure(&mut self, req: &pb::ConsistencyGroup) -> Result<pb::GroupStatus> {
        if !self.groups.contains_key(&req.name) && self.groups.len() >= MAX_GROUPS {
            return Err(VmrmError::precondition(format!("the SAN holds {MAX_GROUPS} consistency groups already")));
        }
        for disk in &req.disks {
            match self.disk_groups.get(disk) {
                Some(other) if *other != req.name => {
                    return Err(VmrmError::precondition(format!(
                        "disk {disk} is in consistency group {other} already"
                    )));
                }
                _ => {}
            }
        }
        let lease = self.lease.as_millis() as i64;
        let change = replication::configure(self.groups.get(&req.name), req, crate::now_ms(), lease)?;
        let before = self.groups.get(&req.name).map(|g| (g.role, g.generation));
        if before != Some((change.group.role, change.group.generation)) {
            tracing::info!(group = %req.name, "consistency group: {:?} at generation {}, peer {}", change.group.role, change.group.generation, change.group.peer);
        }
        let changed_role = before.is_some_and(|(role, _)| role != change.group.role);
        self.put_group(change.group, change.drop_journal)?;
        if changed_role {
            // A new role is confirmed anew: the old confirmation was for the old one.
            self.shipping.entry(req.name.clone()).or_default().confirmed_at = None;
        }
        if req.role == pb::ReplicationRole::Primary as i32 {
            // The controller that just set the role read it from the HSDB it wrote it to.
            self.shipping.entry(req.name.clone()).or_default().confirmed_at = Some(Instant::now());
        }
        self.status(&req.name)
    }

    pub(super) fn status(&self, name: &str) -> Result<pb::GroupStatus> {
        let san = self.links.as_ref().map_or("", |l| l.name.as_str());
        if name.is_empty() {
            return Ok(pb::GroupStatus { san: san.to_string(), ..Default::default() });
        }
        let group = self
            .groups
            .get(name)
            .ok_or_else(|| VmrmError::not_found(format!("this SAN holds no consistency group {name}")))?;
        let oldest = match group.role {
            Role::Primary => self.store.journal_after(name, group.acked, 1)?.first().map(|w| w.at_ms),
            Role::Secondary => None,
        };
        let lag_ms = oldest.map_or(0, |at| (crate::now_ms() - at).max(0) as u64);
        let writable = group.admits_writes("", crate::now_ms(), self.confirmed(name)).is_ok();
        Ok(group.status(san, lag_ms, writable))
    }

    /// A batch from the peer (`from`: its name, when known): applied in order, answered with
    /// how far this copy is. Only the group's peer may send one.
    pub(super) fn receive(&mut self, batch: &pb::ReplicationBatch, from: Option<&str>) -> Result<pb::ReplicationAck> {
        let mut group = self
            .groups
            .get(&batch.group)
            .cloned()
            .ok_or_else(|| VmrmError::not_found(format!("this SAN holds no consistency group {}", batch.group)))?;
        if let Some(from) = from.filter(|f| !group.peer_name.is_empty() && *f != group.peer_name) {
            return Err(VmrmError::denied(format!(
                "SAN {from} is not the peer of consistency group {} ({}): its batch was refused",
                group.name, group.peer_name
            )));
        }
        let was = group.role;
        let apply = replication::receive(&mut group, batch)?;
        let writes = match apply {
            Apply::Superseded(ack) => return Ok(ack),
            Apply::Full => {
                for head in &batch.heads {
                    self.set_head(&head.disk, head.block, &head.writer)?;
                    self.log_write(&head.disk, "RESYNC", 0, "", 0, (&head.writer, head.block))?;
                }
                Vec::new()
            }
            Apply::Writes(writes) => {
                for w in &writes {
                    self.set_head(&w.disk, w.block, &w.writer)?;
                    self.log_write(&w.disk, "REPLICA", 0, "", 0, (&w.writer, w.block))?;
                }
                writes
            }
        };
        if was == Role::Primary {
            tracing::warn!(group = %group.name, "taken over at generation {}: {} writes accepted here after the new primary's consistent point are lost", group.generation, group.lost);
        }
        replication::applied(&mut group, batch, &writes);
        let ack = pb::ReplicationAck { applied: group.sequence, generation: group.generation, superseded: false };
        self.put_group(group, was == Role::Primary)?;
        Ok(ack)
    }

    /// Ships what each group owes its peer, one batch in flight per group.
    pub(super) fn ship(&mut self, ctx: &mut Context<Self>) {
        let Some(links) = self.links.clone() else { return };
        self.publish();
        let heartbeat = links.lease / 4;
        let now = Instant::now();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            let group = &self.groups[&name];
            let shipping = self.shipping.entry(name.clone()).or_default();
            let idle_primary = group.role == Role::Primary && shipping.last_sent.is_none_or(|t| now - t >= heartbeat);
            if !(group.has_unshipped() || idle_primary) || now < shipping.retry_at || !shipping.sending.start() {
                continue;
            }
            shipping.last_sent = Some(now);
            let batch = match self.batch(&name) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(group = %name, "no batch: {e}");
                    self.shipping.entry(name).or_default().sending.end();
                    continue;
                }
            };
            let (peer, store, links) = (self.groups[&name].peer.clone(), self.store.clone(), links.clone());
            let (generation, full) = (batch.generation, batch.full);
            let send = async move {
                // Only what is on this SAN's disk leaves it: a write shipped and then lost
                // here in a crash would be numbered again differently.
                store.flush().await?;
                let mut client = pb::san_client::SanClient::new(links.pool.get(&peer)?);
                Ok::<_, VmrmError>(client.replicate(deadline(batch, links.rpc_deadline)).await?.into_inner())
            };
            ctx.spawn(send.into_actor(self).map(move |answer, act, _| {
                act.shipped(&name, (generation, full, now), answer);
            }));
        }
    }

    /// Each group's lag and role, for the node's metrics.
    fn publish(&self) {
        for name in self.groups.keys() {
            if let Ok(s) = self.status(name) {
                crate::metrics::metrics().replication(name, (s.lag_writes, s.lag_ms), s.writable);
            }
        }
    }

    pub(super) fn batch(&self, name: &str) -> Result<pb::ReplicationBatch> {
        let group = &self.groups[name];
        let mut batch = pb::ReplicationBatch {
            group: name.to_string(),
            generation: group.batch_generation(),
            written: group.sequence,
            full: group.needs_full,
            sent_at_ms: crate::now_ms(),
            promoted_at: group.promoted_at,
            ..Default::default()
        };
        match group.needs_full {
            true => {
                batch.heads = group
                    .disks
                    .iter()
                    .filter_map(|d| self.heads.get(d).map(|(block, writer)| (d, block, writer)))
                    .map(|(d, block, writer)| pb::DiskHead { disk: d.clone(), block: *block, writer: writer.clone() })
                    .collect();
            }
            false => batch.writes = self.store.journal_after(name, group.acked, BATCH)?,
        }
        Ok(batch)
    }

    fn shipped(
        &mut self,
        name: &str,
        (generation, full, sent): (u64, bool, Instant),
        answer: Result<pb::ReplicationAck>,
    ) {
        let Some(shipping) = self.shipping.get_mut(name) else { return };
        shipping.sending.end();
        let ack = match answer {
            Ok(ack) => ack,
            Err(e) => {
                shipping.retry_at = Instant::now() + shipping.backoff;
                shipping.backoff = (shipping.backoff * 2).min(MAX_BACKOFF);
                tracing::debug!(group = %name, "replication batch not taken: {e}");
                return;
            }
        };
        shipping.backoff = FIRST_BACKOFF;
        let Some(mut group) = self.groups.get(name).cloned() else { return };
        let was = group.role;
        if group.acked_by_peer(generation, full, &ack) {
            shipping.confirmed_at = Some(sent);
        }
        let demoted = was == Role::Primary && group.role == Role::Secondary;
        if demoted {
            tracing::warn!(group = %name, "the peer {} is at generation {}: this SAN was taken over; {} writes accepted here after its consistent point are lost", group.peer, group.generation, group.lost);
        }
        let result = self.store.journal_trim(name, if demoted { u64::MAX } else { group.acked }).and_then(|_| {
            // After a full copy the journal must go on from it, or another copy is owed.
            let continues = group.acked == group.sequence
                || self
                    .store
                    .journal_after(name, group.acked, 1)?
                    .first()
                    .is_some_and(|w| w.sequence == group.acked + 1);
            group.needs_full |= !continues && group.role == Role::Primary;
            self.put_group(group, false)
        });
        if let Err(e) = result {
            tracing::error!(group = %name, "replication state not kept: {e}");
        }
    }

    /// Confirms each primary role with the HSDB's record of its group; a record of a newer
    /// generation with another primary means this SAN was taken over.
    pub(super) fn confirm(&mut self, ctx: &mut Context<Self>) {
        let Some(links) = self.links.clone() else { return };
        let primaries: Vec<String> =
            self.groups.values().filter(|g| g.role == Role::Primary).map(|g| g.name.clone()).collect();
        for name in primaries {
            if !self.shipping.entry(name.clone()).or_default().checking.start() {
                continue;
            }
            let (hsdb, key, started) = (links.hsdb.clone(), name.clone(), Instant::now());
            let read = async move { read_record(&hsdb, &key).await };
            let me = links.name.clone();
            ctx.spawn(read.into_actor(self).map(move |record, act, _| {
                act.shipping.entry(name.clone()).or_default().checking.end();
                let (Ok(Some(record)), Some(group)) = (record, act.groups.get(&name).cloned()) else { return };
                if group.role != Role::Primary {
                    return;
                }
                if record.generation == group.generation && record.primary_san == me {
                    act.shipping.entry(name).or_default().confirmed_at = Some(started);
                } else if record.generation > group.generation && record.primary_san != me {
                    let demoted = replication::demoted(&group, record.generation, record.consistent_point);
                    tracing::warn!(group = %name, "the HSDB names {} primary at generation {}: this SAN was taken over; {} writes are lost", record.primary_san, record.generation, demoted.lost);
                    if let Err(e) = act.put_group(demoted, true) {
                        tracing::error!(group = %name, "replication state not kept: {e}");
                    }
                }
            }));
        }
    }
}

async fn read_record(hsdb: &RemoteHsdb, name: &str) -> Result<Option<ConsistencyGroupRecord>> {
    Ok(hsdb.get::<ConsistencyGroupRecord>(name).await?.map(|(r, _)| r))
}
