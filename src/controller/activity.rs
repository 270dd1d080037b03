//! The lines operations report, as they happen, for whoever watches the live status (seed:
//! `ksysmgr query system status monitor=yes`). One feed per process: an operation's
//! [`super::lines::Lines`] is made wherever the operation starts, so each publishes here rather
//! than be handed the feed. A watcher that falls more than [`FEED_CAPACITY`] lines behind is
//! told how many it missed; nothing waits for a slow watcher.
use crate::pb::Step;
use std::sync::LazyLock;
use tokio::sync::broadcast;

/// The lines a watcher may fall behind before it misses some.
pub const FEED_CAPACITY: usize = 1024;

static FEED: LazyLock<broadcast::Sender<Step>> = LazyLock::new(|| broadcast::channel(FEED_CAPACITY).0);

/// Shows `step` to the watchers (none: nothing is kept).
pub fn publish(step: &Step) {
    if FEED.receiver_count() > 0 {
        let _ = FEED.send(step.clone());
    }
}

/// The lines published from now on.
pub fn watch() -> broadcast::Receiver<Step> {
    FEED.subscribe()
}
