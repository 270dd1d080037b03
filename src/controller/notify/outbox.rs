//! One delivery pass of the active controller: every contact that is due gets the events after
//! its cursor, in order — each one sent, or passed over ([`crate::logic::notify::verdict`]). A
//! contact's row is written after each event it was sent, so a controller killed mid-pass
//! repeats at most the one notice in flight, under the same id. A failure stops that contact
//! (its next attempt backs off) and no other: the contacts are served side by side.
use super::Notify;
use super::smtp::Relay;
use super::webhook;
use crate::domain::{ClusterRecord, Contact, DeliveryRecord, EventRecord, NotifyRecord};
use crate::error::Result;
use crate::hsdb::{HsdbAccess, Table};
use crate::logic::notify::{self, Verdict};
use std::collections::BTreeSet;

/// The most events one contact is given in one pass.
pub const EVENTS_PER_PASS: usize = 64;

impl Notify {
    /// Delivers what is due; the error is the first thing that stopped the pass as a whole
    /// (a contact's failed delivery is recorded in its row instead).
    pub async fn deliver(&self) -> Result<()> {
        if !self.anything_due().await? {
            return Ok(());
        }
        let Some((cluster, _)) = self.hsdb.get::<ClusterRecord>("cluster").await? else { return Ok(()) };
        let users = self.hsdb.list::<NotifyRecord>().await?;
        let mut deliveries = self.hsdb.list_versioned::<DeliveryRecord>().await?;
        let contacts: BTreeSet<String> =
            users.iter().flat_map(|u| u.contacts.iter().map(|c| DeliveryRecord::key_of(&u.user, c))).collect();
        let now = crate::now_ms();
        deliveries.retain(|(d, _)| contacts.contains(&key(d)) && notify::due(d, now));
        let Some(oldest) = deliveries.iter().map(|(d, _)| d.delivered_through).min() else { return Ok(()) };
        let events = self.hsdb.events_after(oldest, EVENTS_PER_PASS).await?;
        if events.last().is_none_or(|(newest, _)| deliveries.iter().all(|(d, _)| d.delivered_through >= *newest)) {
            return Ok(());
        }
        let passes = deliveries.into_iter().map(|(d, version)| self.deliver_to(&cluster, d, version, &events));
        futures::future::join_all(passes).await.into_iter().collect()
    }

    /// Whether a contact may have something to be told, by this member's own copy — no round
    /// through Raft while nothing is (the pass itself then reads linearizably, so a controller
    /// that is no longer the active one sends nothing).
    async fn anything_due(&self) -> Result<bool> {
        let own_copy = self.hsdb.follower_reads();
        if own_copy.list::<NotifyRecord>().await?.is_empty() {
            return Ok(false);
        }
        let now = crate::now_ms();
        let newest = own_copy.newest_sequence(Table::Event).await?;
        let deliveries = own_copy.list::<DeliveryRecord>().await?;
        Ok(deliveries.iter().any(|d| notify::due(d, now) && d.delivered_through < newest))
    }

    async fn deliver_to(
        &self,
        cluster: &ClusterRecord,
        mut d: DeliveryRecord,
        mut version: u64,
        events: &[(u64, EventRecord)],
    ) -> Result<()> {
        let settings = &cluster.notification;
        let through = d.delivered_through;
        let mut moved = false;
        for (sequence, event) in events.iter().filter(|(s, _)| *s > through) {
            if notify::verdict(settings, &d, event) != Verdict::Send {
                notify::passed(&mut d, *sequence);
                moved = true;
                continue;
            }
            let notice = notify::notice(&cluster.name, *sequence, event, &d.contact);
            let outcome = match Contact::parse(&d.contact) {
                Ok(c) if c.is_mail() => match settings.smtp_relay.as_deref().map(Relay::parse) {
                    Some(Ok(relay)) => relay.send(settings.sender(), c.as_str(), &notice).await,
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("no SMTP relay is set (modify system smtp_relay=HOST:PORT)".into()),
                },
                Ok(c) => webhook::post(c.as_str(), &notice).await,
                Err(e) => Err(e.to_string()),
            };
            let now = crate::now_ms();
            match outcome {
                Ok(()) => {
                    tracing::info!(contact = %d.contact, user = %d.user, id = %notice.id, "notified: {} {}", event.name, event.subject);
                    notify::sent(&mut d, *sequence, event, now);
                    version = self.hsdb.put_if_version(&d, version).await?;
                    moved = false;
                }
                Err(why) => {
                    tracing::warn!(contact = %d.contact, user = %d.user, "notification of event {sequence} not delivered: {why}");
                    notify::failed(&mut d, &why, now);
                    self.hsdb.put_if_version(&d, version).await?;
                    return Ok(());
                }
            }
        }
        if moved {
            self.hsdb.put_if_version(&d, version).await?;
        }
        Ok(())
    }
}

fn key(d: &DeliveryRecord) -> String {
    DeliveryRecord::key_of(&d.user, &d.contact)
}
