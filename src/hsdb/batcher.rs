//! Group commit for HSDB writes.
//!
//! openraft 0.9 appends (and so fsyncs) each `client_write` on its own, one after another: with
//! one command per entry the store would do one disk flush per write. Here concurrent writers
//! hand their commands to one task that packs whatever is queued into a single
//! [`Command::Batch`] entry, so a hundred writers waiting together cost one fsync. While
//! [`IN_FLIGHT`] batches are being committed, new commands queue up and form the next batch;
//! an idle store still commits a lone write at once, without waiting for company.
use super::Raft;
use super::raft_node::leader_endpoint;
use super::types::{Command, CommandResult, MAX_REQUEST_BYTES};
use crate::error::{Result, VmrmError};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most commands packed into one log entry.
pub const MAX_BATCH: usize = 256;
/// Largest log entry the batcher packs (commands beyond it form the next entry): with
/// [`MAX_REQUEST_BYTES`] per command, no entry is far over this.
pub const MAX_ENTRY_BYTES: usize = 4 * MAX_REQUEST_BYTES;
/// Batches handed to Raft at the same time; more would only queue inside Raft.
pub const IN_FLIGHT: usize = 2;
/// Commands waiting for a batch; a writer beyond them waits for room.
const QUEUE: usize = 4096;

struct Pending {
    command: Command,
    size: usize,
    reply: oneshot::Sender<Result<CommandResult>>,
}

/// The write path of one HSDB member.
#[derive(Clone)]
pub struct WriteBatcher {
    queue: mpsc::Sender<Pending>,
}

impl WriteBatcher {
    /// Starts the batching task for `raft`; it ends when the last handle is dropped.
    pub fn start(raft: Raft) -> Self {
        let (queue, mut rx) = mpsc::channel::<Pending>(QUEUE);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut carried = None;
            loop {
                let first = match carried.take() {
                    Some(first) => first,
                    None => match rx.recv().await {
                        Some(first) => first,
                        None => return,
                    },
                };
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let mut bytes = first.size;
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(next) if bytes + next.size > MAX_ENTRY_BYTES => {
                            carried = Some(next);
                            break;
                        }
                        Ok(next) => {
                            bytes += next.size;
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let raft = raft.clone();
                tokio::spawn(async move {
                    commit(&raft, batch).await;
                    drop(slot);
                });
            }
        });
        Self { queue }
    }

    /// Commits `command` of `size` encoded bytes (with others queued at the same time) and
    /// returns its own result.
    pub async fn write(&self, command: Command, size: usize) -> Result<CommandResult> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { command, size, reply })
            .await
            .map_err(|_| VmrmError::unavailable("the HSDB member is shutting down"))?;
        answer.await.map_err(|_| VmrmError::unavailable("the HSDB member is shutting down"))?
    }
}

async fn commit(raft: &Raft, batch: Vec<Pending>) {
    let (mut commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let packed = replies.len() > 1;
    let command = if packed { Command::Batch(commands) } else { commands.remove(0) };
    match raft.client_write(command).await {
        Ok(resp) => match resp.data {
            CommandResult::Batch(results) if packed => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            result => {
                let _ = replies.into_iter().next().map(|reply| reply.send(Ok(result)));
            }
        },
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(write_error(raft, &e)));
            }
        }
    }
}

fn write_error(raft: &Raft, e: &RaftError<u64, ClientWriteError<u64, super::Member>>) -> VmrmError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            VmrmError::NotLeader { leader: leader_endpoint(raft) }
        }
        e => VmrmError::unavailable(format!("HSDB write failed: {e}")),
    }
}
