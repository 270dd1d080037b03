//! When a follower stands for election: a pre-vote, then the vote.
//!
//! openraft's own election timer is off. It waits for the voters' leader lease
//! (`election_timeout_max`) *plus* a random election timeout of silence before it stands, and
//! it cannot tell a dead DBN from a follower that itself stalled for a moment, or that just
//! restarted and has not been reached yet: timers short enough for a fast failover let such a
//! follower depose a healthy DBN on a loaded two-core machine, so they had to stay long, and a
//! killed controller cost about a second.
//!
//! Here a follower that has heard no DBN for the lease (plus a margin and a random jitter)
//! first asks the other voters whether they would vote for it (Raft's pre-vote, as etcd does
//! it): a voter says yes only when it has not heard a DBN for the lease either, and the
//! asker's log is at least as complete as its own. With a quorum of yeses the follower stands
//! (openraft's vote then decides, with all of Raft's own checks); without, it waits again. So
//! a follower that merely missed heartbeats, or came back from a restart, hears "no" from the
//! voters that still follow a DBN and deposes nobody; and of two followers left after a crash,
//! only one with the complete log gets a quorum, so the other cannot keep both from winning.
//!
//! The rules are pure functions over plain data ([`decide`], [`grants`]); [`watch`] and
//! [`answer`] are the shells around them.
use super::Raft;
use openraft::{LogId, ServerState};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a voter has to answer a pre-vote.
pub const PRE_VOTE_TIMEOUT: Duration = Duration::from_millis(100);
/// Beyond the lease: the other voters heard the last heartbeat a little after this one did.
const MARGIN: Duration = Duration::from_millis(25);
/// Up to this much more, drawn anew for every wait, so followers do not ask in step.
const JITTER_MS: u64 = 75;
/// How often the silence is looked at.
const POLL: Duration = Duration::from_millis(15);

/// "Would you vote for me?" — changes nothing at the voter asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVote {
    pub candidate: u64,
    /// The asker's last log entry.
    pub last_log: Option<LogId<u64>>,
}

/// A voter's situation when a pre-vote arrives.
#[derive(Debug, Clone, Copy)]
pub struct Voter {
    pub leading: bool,
    /// Since it last heard a DBN.
    pub silence: Duration,
    pub last_log: Option<LogId<u64>>,
}

/// Whether `voter` would vote for the asker: it heard no DBN for the `lease` (and is none), and
/// the asker's log is at least as complete as its own.
pub fn grants(voter: &Voter, asker_log: Option<&LogId<u64>>, lease: Duration) -> bool {
    !voter.leading && voter.silence >= lease && asker_log >= voter.last_log.as_ref()
}

/// How the pre-vote of the current silence went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    NotAsked,
    Asking,
    Granted,
    Refused,
}

/// One member's situation, as its watchdog sees it.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Only voters stand for election.
    pub voter: bool,
    pub leading: bool,
    /// Since the last sign of a DBN (a heartbeat) or the last vote this member cast (its own
    /// candidacy included).
    pub silence: Duration,
    pub poll: Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Ask the other voters for a pre-vote.
    Ask,
    /// The voters refused: wait another while.
    StartOver,
    Elect,
}

/// What to do now; `patience` is the silence after which this member asks (the lease, a
/// margin and this wait's jitter).
pub fn decide(view: &View, patience: Duration) -> Step {
    if !view.voter || view.leading || view.silence < patience {
        return Step::Wait;
    }
    match view.poll {
        Poll::NotAsked => Step::Ask,
        Poll::Asking => Step::Wait,
        Poll::Granted => Step::Elect,
        Poll::Refused => Step::StartOver,
    }
}

/// The patience of one wait: the lease, the margin and a fresh jitter.
fn patience(lease: Duration) -> Duration {
    lease + MARGIN + Duration::from_millis(rand::rng().random_range(0..JITTER_MS))
}

/// Sends a pre-vote to another member; the Raft transport provides it (tests'
/// fault-injecting transport applies its faults to it too).
pub trait PreVoter: Send + Sync + 'static {
    /// Whether member `voter`, reached at `addr`, grants `req` within [`PRE_VOTE_TIMEOUT`].
    fn pre_vote(&self, voter: u64, addr: String, req: PreVote) -> impl Future<Output = bool> + Send;
}

/// When this member last heard from a DBN (an AppendEntries or a snapshot it accepted).
#[derive(Debug, Clone)]
pub struct Heard(Arc<Mutex<Instant>>);

impl Default for Heard {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }
}

impl Heard {
    pub fn now(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// This member's answer to a pre-vote.
pub fn answer(raft: &Raft, heard: &Heard, req: &PreVote, lease: Duration) -> bool {
    let voter = Voter {
        leading: raft.metrics().borrow().state == ServerState::Leader,
        silence: heard.last().elapsed(),
        last_log: raft.data_metrics().borrow().last_log,
    };
    grants(&voter, req.last_log.as_ref(), lease)
}

/// The silence the watchdog is measuring, and its pre-vote.
struct Silence {
    since: Instant,
    asking: Option<tokio::task::JoinHandle<bool>>,
    poll: Poll,
    patience: Duration,
}

impl Silence {
    fn new(lease: Duration) -> Self {
        Self { since: Instant::now(), asking: None, poll: Poll::NotAsked, patience: patience(lease) }
    }

    /// Starts over at `at`: a sign of life, a vote, a candidacy, a refusal.
    fn restart(&mut self, at: Instant, lease: Duration) {
        if let Some(p) = self.asking.take() {
            p.abort();
        }
        *self = Self { since: at, ..Self::new(lease) };
    }

    /// Takes in the outcome of a finished pre-vote.
    async fn collect(&mut self) {
        if let Some(p) = self.asking.take_if(|p| p.is_finished()) {
            self.poll = if p.await.unwrap_or(false) { Poll::Granted } else { Poll::Refused };
        }
    }
}

/// Asks every other voter at once; true as soon as a quorum said yes (this member's own vote
/// included), false when the answers cannot make one.
async fn ask_voters(network: Arc<impl PreVoter>, voters: Vec<(u64, String)>, quorum: usize, req: PreVote) -> bool {
    use futures::StreamExt;
    let mut answers: futures::stream::FuturesUnordered<_> =
        voters.into_iter().map(|(id, addr)| network.pre_vote(id, addr, req.clone())).collect();
    let mut yeses = 1;
    while yeses < quorum {
        match answers.next().await {
            Some(true) => yeses += 1,
            Some(false) => {}
            None => return false,
        }
    }
    true
}

/// Runs the rule for member `raft` until its core stops.
pub async fn watch(raft: Raft, heard: Heard, network: Arc<impl PreVoter>, lease: Duration) {
    let mut silence = Silence::new(lease);
    let mut vote = raft.metrics().borrow().vote;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let m = raft.metrics().borrow().clone();
        if m.running_state.is_err() || m.state == ServerState::Shutdown {
            return;
        }
        // A vote cast (or a newer term seen) starts the silence over, as in any Raft: the
        // member voted for needs a moment to send its first heartbeat.
        if m.vote != vote {
            vote = m.vote;
            silence.restart(Instant::now(), lease);
        }
        if heard.last() > silence.since || m.state == ServerState::Leader {
            silence.restart(heard.last().max(silence.since), lease);
        }
        silence.collect().await;
        let membership = m.membership_config.membership().clone();
        let view = View {
            voter: membership.voter_ids().any(|v| v == m.id),
            leading: m.state == ServerState::Leader,
            silence: silence.since.elapsed(),
            poll: silence.poll,
        };
        match decide(&view, silence.patience) {
            Step::Wait => {}
            Step::Ask => {
                let voters: Vec<(u64, String)> = membership
                    .voter_ids()
                    .filter(|v| *v != m.id)
                    .filter_map(|v| membership.get_node(&v).map(|n| (v, n.peer.clone())))
                    .collect();
                let quorum = membership.voter_ids().count() / 2 + 1;
                let req = PreVote { candidate: m.id, last_log: raft.data_metrics().borrow().last_log };
                silence.asking = Some(tokio::spawn(ask_voters(network.clone(), voters, quorum, req)));
                silence.poll = Poll::Asking;
            }
            Step::StartOver => silence.restart(Instant::now(), lease),
            Step::Elect => {
                tracing::info!(
                    member = m.id,
                    silence_ms = view.silence.as_millis() as u64,
                    "HSDB: no DBN heard and a quorum agrees; standing for election"
                );
                if let Err(e) = raft.trigger().elect().await {
                    tracing::warn!("HSDB: election not started: {e}");
                }
                silence.restart(Instant::now(), lease);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    const LEASE: Duration = Duration::from_millis(250);

    fn follower(silence_ms: u64, poll: Poll) -> View {
        View { voter: true, leading: false, silence: Duration::from_millis(silence_ms), poll }
    }

    fn log(term: u64, index: u64) -> Option<LogId<u64>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn heartbeats_on_time_change_nothing() {
        assert_eq!(decide(&follower(60, Poll::NotAsked), LEASE), Step::Wait);
    }

    #[test]
    fn after_the_lease_a_follower_asks_then_stands_only_with_a_quorum() {
        assert_eq!(decide(&follower(260, Poll::NotAsked), LEASE), Step::Ask);
        assert_eq!(decide(&follower(300, Poll::Asking), LEASE), Step::Wait, "one pre-vote at a time");
        assert_eq!(decide(&follower(300, Poll::Granted), LEASE), Step::Elect);
        assert_eq!(decide(&follower(300, Poll::Refused), LEASE), Step::StartOver);
    }

    #[test]
    fn leaders_and_learners_never_stand() {
        let leader = View { leading: true, ..follower(5_000, Poll::Granted) };
        assert_eq!(decide(&leader, LEASE), Step::Wait);
        let learner = View { voter: false, ..follower(5_000, Poll::Granted) };
        assert_eq!(decide(&learner, LEASE), Step::Wait);
    }

    #[test]
    fn a_voter_that_still_hears_its_dbn_refuses() {
        let voter = Voter { leading: false, silence: Duration::from_millis(60), last_log: log(2, 10) };
        assert!(!grants(&voter, log(2, 10).as_ref(), LEASE), "a stalled or restarted asker deposes nobody");
        assert!(!grants(&Voter { leading: true, silence: LEASE * 4, ..voter }, log(2, 10).as_ref(), LEASE));
    }

    #[test]
    fn a_voter_that_heard_nothing_grants_only_a_log_as_complete_as_its_own() {
        let voter = Voter { leading: false, silence: LEASE, last_log: log(2, 10) };
        assert!(grants(&voter, log(2, 10).as_ref(), LEASE));
        assert!(grants(&voter, log(3, 4).as_ref(), LEASE), "a later term is more complete");
        assert!(!grants(&voter, log(2, 9).as_ref(), LEASE), "the one behind is refused");
        assert!(!grants(&voter, None, LEASE));
        assert!(grants(&Voter { last_log: None, ..voter }, None, LEASE), "a fresh cluster");
    }

    #[test]
    fn each_wait_draws_its_own_jitter_within_bounds() {
        let waits: std::collections::BTreeSet<_> = (0..50).map(|_| patience(LEASE)).collect();
        assert!(waits.len() > 1, "waits differ");
        assert!(waits.iter().all(|w| *w >= LEASE + MARGIN && *w < LEASE + MARGIN + Duration::from_millis(JITTER_MS)));
    }
}
