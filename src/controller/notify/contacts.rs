//! `ksysmgr add notify user=NAME contact=ADDRESS`, `query notify [USER]`, `delete notify
//! user=NAME [contact=ADDRESS]` — with the seed's lines. A new contact is told of the events
//! from its addition on, not of the whole log before it.
use super::Notify;
use crate::controller::messages as say;
use crate::domain::names::UserName;
use crate::domain::notify::{CONTACTS_PER_USER, USERS_MAX};
use crate::domain::{Contact, DeliveryRecord, NotifyRecord};
use crate::error::{Result, VmrmError};
use crate::hsdb::{HsdbAccess, Table};
use crate::pb;

impl Notify {
    pub async fn add_notify(&self, user: &UserName, contact: &Contact) -> Result<Vec<pb::Step>> {
        let cluster = self.records.cluster().await?;
        if contact.is_mail() && cluster.notification.smtp_relay.is_none() {
            return Err(VmrmError::precondition(format!(
                "{contact} is an e-mail address and no SMTP relay is set: run `ksysmgr modify system smtp_relay=HOST:PORT` first"
            )));
        }
        let existing = self.hsdb.get::<NotifyRecord>(user.as_str()).await?;
        let (mut record, version) = match existing {
            Some(found) => found,
            None if self.hsdb.list::<NotifyRecord>().await?.len() >= USERS_MAX => {
                return Err(VmrmError::precondition(format!(
                    "{USERS_MAX} users have contacts already: delete one first"
                )));
            }
            None => (NotifyRecord { user: user.to_string(), contacts: Vec::new() }, 0),
        };
        if record.contacts.iter().any(|c| c == contact.as_str()) {
            return Err(VmrmError::AlreadyExists(format!("user {user} has contact {contact} already")));
        }
        if record.contacts.len() >= CONTACTS_PER_USER {
            return Err(VmrmError::precondition(format!(
                "user {user} has {CONTACTS_PER_USER} contacts already: delete one first"
            )));
        }
        let through = self.hsdb.newest_sequence(Table::Event).await?;
        self.hsdb.put(&DeliveryRecord::fresh(user.as_str(), contact, through)).await?;
        record.contacts.push(contact.to_string());
        self.hsdb.put_if_version(&record, version).await?;
        Ok(vec![say::notify_added(user.as_str(), contact.as_str())])
    }

    /// Every contact of `user`, or only `contact`.
    pub async fn delete_notify(&self, user: &UserName, contact: Option<&Contact>) -> Result<Vec<pb::Step>> {
        let (mut record, version) = self
            .hsdb
            .get::<NotifyRecord>(user.as_str())
            .await?
            .ok_or_else(|| VmrmError::not_found(format!("user {user} has no contacts")))?;
        let gone: Vec<String> = match contact {
            None => std::mem::take(&mut record.contacts),
            Some(c) if record.contacts.iter().any(|k| k == c.as_str()) => {
                record.contacts.retain(|k| k != c.as_str());
                vec![c.to_string()]
            }
            Some(c) => return Err(VmrmError::not_found(format!("user {user} has no contact {c}"))),
        };
        match record.contacts.is_empty() {
            true => self.hsdb.delete::<NotifyRecord>(user.as_str()).await?,
            false => self.hsdb.put_if_version(&record, version).await.map(drop)?,
        }
        for c in &gone {
            self.hsdb.delete::<DeliveryRecord>(&DeliveryRecord::key_of(user.as_str(), c)).await?;
        }
        Ok(vec![say::notify_deleted(user.as_str(), gone.len())])
    }

    /// The contacts of `user` (every user's when `None`) and how their deliveries stand.
    pub async fn query_notify(&self, user: Option<&UserName>) -> Result<Vec<pb::NotifyView>> {
        let users: Vec<NotifyRecord> = match user {
            Some(u) => vec![
                self.hsdb
                    .get::<NotifyRecord>(u.as_str())
                    .await?
                    .ok_or_else(|| VmrmError::not_found(format!("user {u} has no contacts")))?
                    .0,
            ],
            None => self.hsdb.list::<NotifyRecord>().await?,
        };
        let deliveries = self.hsdb.list::<DeliveryRecord>().await?;
        let mut views = Vec::new();
        for record in users {
            for contact in &record.contacts {
                let kind = Contact::parse(contact).map(|c| c.kind().to_string()).unwrap_or_default();
                let d = deliveries.iter().find(|d| d.user == record.user && &d.contact == contact);
                views.push(pb::NotifyView {
                    user: record.user.clone(),
                    contact: contact.clone(),
                    kind,
                    delivered_through: d.map_or(0, |d| d.delivered_through),
                    delivered: d.map_or(0, |d| d.delivered),
                    last_delivered_ms: d.and_then(|d| d.last_delivered_ms).unwrap_or(0),
                    attempts: d.map_or(0, |d| d.attempts),
                    last_error: d.and_then(|d| d.last_error.clone()).unwrap_or_default(),
                    next_try_ms: d.map_or(0, |d| d.next_try_ms),
                });
            }
        }
        Ok(views)
    }
}
