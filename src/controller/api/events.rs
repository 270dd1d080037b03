//! The event log as a stream (`WatchEvents`) and its acknowledgements (`AckEvent`, one event or
//! "ack all" as the seed's alarms are handled). A watch follows the log from where the watcher
//! says, in order, filtered like a query; it reads through Raft, so a controller that stops
//! being the active one ends its watches with UNAVAILABLE and the watcher goes on at the new
//! one from the last sequence it saw — nothing lost, nothing twice.
use crate::controller::ControllerCore;
use crate::controller::api::views::event_view;
use crate::controller::messages as say;
use crate::domain::AckRecord;
use crate::error::{Result, VmrmError};
use crate::hsdb::client::retry_on_conflict;
use crate::hsdb::{HsdbAccess, Table};
use crate::logic::event_page::{EventKinds, EventPage};
use crate::pb;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tonic::Status;

/// How long a watch waits before it looks for new events again.
pub const WATCH_POLL: Duration = Duration::from_millis(250);
/// The most events a watch reads at once.
const WATCH_BATCH: usize = 256;

/// What a watch follows: the events after `after` that `names` and `kinds` keep.
pub struct EventWatch {
    pub names: EventPage,
    pub kinds: EventKinds,
    pub after: Option<u64>,
}

/// Streams the events `watch` asks for until the watcher hangs up or this controller stops
/// being the active one.
pub async fn watch(
    core: ControllerCore,
    watch: EventWatch,
    permit: OwnedSemaphorePermit,
) -> Result<mpsc::Receiver<std::result::Result<pb::EventView, Status>>> {
    let mut cursor = match watch.after {
        Some(after) => after,
        None => core.hsdb.newest_sequence(Table::Event).await?,
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _permit = permit;
        loop {
            let batch = match core.hsdb.events_after(cursor, WATCH_BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = tx.send(Err(Status::from(e))).await;
                    return;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(WATCH_POLL) => continue,
                    _ = tx.closed() => return,
                }
            }
            let acks = match core.views.acknowledged().await {
                Ok(acks) => acks,
                Err(e) => {
                    let _ = tx.send(Err(Status::from(e))).await;
                    return;
                }
            };
            for (sequence, event) in batch {
                cursor = sequence;
                let wanted = watch.names.admits(sequence, &event) && watch.kinds.keeps(sequence, &event, &acks);
                if wanted && tx.send(Ok(event_view(sequence, event, &acks))).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Acknowledges event `sequence`, or with `all` every event up to the newest.
/// Two administrators acknowledging at once both get theirs in.
pub async fn acknowledge(core: &ControllerCore, sequence: u64, all: bool) -> Result<Vec<pb::Step>> {
    retry_on_conflict(|| async {
        let newest = core.hsdb.newest_sequence(Table::Event).await?;
        let (mut acks, version) = core.hsdb.get::<AckRecord>(AckRecord::KEY).await?.unwrap_or_default();
        let step = match (all, sequence) {
            (true, 0) => say::events_acknowledged(acks.acknowledge_all(newest), newest),
            (false, s) if s > 0 => match acks.acknowledge(s, newest)? {
                true => say::event_acknowledged(s),
                false => return Err(VmrmError::AlreadyExists(format!("event {s} is acknowledged already"))),
            },
            _ => return Err(VmrmError::invalid("acknowledge one event (its sequence number) or all, not both")),
        };
        core.hsdb.put_if_version(&acks, version).await?;
        Ok(vec![step])
    })
    .await
}
