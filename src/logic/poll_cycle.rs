//! When the FDE asks its group's VIOSs, and which question: the seed's cycle QuickQuery,
//! QuickQuery, NeedsAttention on every poll period, one request at a time, through the VIOS that
//! answered last; a NeedsAttention asked for while a request is in flight goes right after it;
//! an extra poll when a detection time runs out between two regular ones. Pure: the actor's
//! timers and answers come in, the requests to make and the wake-ups to arm come out.
//!
//! ```text
//!  tick / woke ─▶ request in flight? ─ yes ─▶ remember a NeedsAttention if one was asked
//!                                    └ no ──▶ Poll { from the last VIOS, every third a NeedsAttention }
//!  answered / failed ─▶ the remembered NeedsAttention, if any
//!  deadline ─▶ WakeAt(due) unless an earlier wake-up is armed
//! ```
use crate::in_flight::InFlight;

/// One request to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// The VIOS of the group to ask first (the others follow when it does not answer).
    pub start: usize,
    pub needs_attention: bool,
}

/// How a failed request is to be told: the first of a run is a warning, the others are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    First,
    Again,
}

#[derive(Debug, Clone, Default)]
pub struct PollCycle {
    scan: u64,
    vios: usize,
    request: InFlight,
    /// A NeedsAttention is wanted as soon as the request in flight ends.
    attention_due: bool,
    /// When the earliest extra poll is armed (ms since the epoch).
    wake_at: Option<i64>,
    /// The last request failed.
    failing: bool,
}

impl PollCycle {
    /// A poll is due (the period's tick, or `attention`: a NeedsAttention now).
    pub fn tick(&mut self, attention: bool) -> Option<Poll> {
        if !self.request.start() {
            self.attention_due |= attention;
            return None;
        }
        self.scan += 1;
        Some(Poll { start: self.vios, needs_attention: attention || self.scan.is_multiple_of(3) })
    }

    /// The request was answered through VIOS `vios`; `true` when it is the first answer after
    /// failures. Then [`PollCycle::after_request`].
    pub fn answered(&mut self, vios: usize) -> bool {
        self.request.end();
        self.vios = vios;
        std::mem::take(&mut self.failing)
    }

    /// No VIOS answered. Then [`PollCycle::after_request`].
    pub fn failed(&mut self) -> Failure {
        self.request.end();
        match std::mem::replace(&mut self.failing, true) {
            true => Failure::Again,
            false => Failure::First,
        }
    }

    /// After an answer or a failure: the NeedsAttention asked for meanwhile, if any.
    pub fn after_request(&mut self) -> Option<Poll> {
        match std::mem::take(&mut self.attention_due) {
            true => self.tick(true),
            false => None,
        }
    }

    /// The earliest detection deadline now known: when to wake up for it, unless a wake-up no
    /// later than that is armed already.
    pub fn arm(&mut self, due: Option<i64>) -> Option<i64> {
        let due = due?;
        if self.wake_at.is_some_and(|armed| armed <= due) {
            return None;
        }
        self.wake_at = Some(due);
        Some(due)
    }

    /// The wake-up armed for `due` fired: a NeedsAttention, unless a later arming replaced it.
    pub fn woke(&mut self, due: i64) -> Option<Poll> {
        if self.wake_at != Some(due) {
            return None;
        }
        self.wake_at = None;
        self.tick(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(start: usize, needs_attention: bool) -> Option<Poll> {
        Some(Poll { start, needs_attention })
    }

    #[test]
    fn every_third_poll_is_a_needs_attention() {
        let mut c = PollCycle::default();
        let mut asked = Vec::new();
        for _ in 0..6 {
            asked.push(c.tick(false).unwrap().needs_attention);
            c.answered(0);
        }
        assert_eq!(asked, [false, false, true, false, false, true]);
    }

    #[test]
    fn one_request_at_a_time_and_an_attention_asked_meanwhile_follows_it() {
        let mut c = PollCycle::default();
        assert_eq!(c.tick(false), poll(0, false));
        assert_eq!(c.tick(false), None, "in flight: the tick is dropped");
        assert_eq!(c.tick(true), None, "in flight: the attention waits");
        assert!(!c.answered(1));
        assert_eq!(c.after_request(), poll(1, true), "from the VIOS that answered");
        c.answered(1);
        assert_eq!(c.after_request(), None);
    }

    #[test]
    fn a_run_of_failures_is_told_once_and_the_answer_after_it_too() {
        let mut c = PollCycle::default();
        c.tick(false);
        assert_eq!(c.failed(), Failure::First);
        c.tick(false);
        assert_eq!(c.failed(), Failure::Again);
        c.tick(true);
        assert!(c.answered(2), "the first answer after failures");
        c.tick(false);
        assert!(!c.answered(2));
    }

    #[test]
    fn an_attention_asked_during_a_failing_request_follows_it() {
        let mut c = PollCycle::default();
        c.tick(false);
        c.tick(true);
        c.failed();
        assert_eq!(c.after_request(), poll(0, true));
    }

    #[test]
    fn a_wake_up_is_armed_for_the_earliest_deadline_only() {
        let mut c = PollCycle::default();
        assert_eq!(c.arm(None), None);
        assert_eq!(c.arm(Some(5_000)), Some(5_000));
        assert_eq!(c.arm(Some(6_000)), None, "an earlier one is armed");
        assert_eq!(c.arm(Some(5_000)), None, "the same one is armed");
        assert_eq!(c.arm(Some(4_000)), Some(4_000), "earlier: armed too");
        assert_eq!(c.woke(5_000), None, "replaced by the earlier one");
        assert_eq!(c.woke(4_000), poll(0, true));
        assert_eq!(c.woke(4_000), None, "fires once");
    }

    #[test]
    fn a_wake_up_while_a_request_is_in_flight_asks_for_attention_after_it() {
        let mut c = PollCycle::default();
        c.arm(Some(1_000));
        c.tick(false);
        assert_eq!(c.woke(1_000), None);
        c.answered(0);
        assert_eq!(c.after_request(), poll(0, true));
    }
}
