//! Notifications (seed 000 §3.8): the contacts an administrator adds, and the outbox that tells
//! each of them of every event at the system's `notification_level` — by e-mail through the
//! SMTP relay ([`smtp`]) or by webhook ([`webhook`]). Only the active controller delivers; a
//! contact's cursor and the events it was sent lately are HSDB rows, so the controller that
//! takes over after a failover goes on from the same place.
pub mod contacts;
pub mod outbox;
pub mod smtp;
pub mod webhook;

use crate::controller::records::Records;
use crate::hsdb::LocalHsdb;

/// The notification room: contacts and their deliveries.
#[derive(Clone)]
pub struct Notify {
    hsdb: LocalHsdb,
    records: Records,
}

impl Notify {
    pub fn new(hsdb: LocalHsdb, records: Records) -> Self {
        Self { hsdb, records }
    }
}
