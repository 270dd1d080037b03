//! The agent's application reporting (seed: the `AppReport` thread of `ksys_vmmd`). The AME
//! rings doorbell bits after a round with changes; they ride on heartbeats until a host monitor
//! records them. An initial doorbell 0x2 goes after the 4th heartbeat ("Initial DBELL will be
//! send after 4 HB cycle's"), so the controller learns the apps of a VM that just started. The
//! answers the agent gave stay in its cache until the controller confirms it got them (GMSG):
//! a message delivered again is answered the same way.
use crate::logic::app_engine::engine::NOTIFY_RESYNC;
use std::collections::{BTreeMap, BTreeSet};

/// Heartbeats after which the initial doorbell is rung.
pub const INITIAL_DBELL_AFTER: u32 = 4;

/// How the agent answers one delivered message.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Already answered: send the same answer again (the first may have been lost).
    Cached(String),
    /// New: ask the AME, then [`AppReport::answered`].
    Ask,
    /// Being asked already.
    Pending,
}

#[derive(Debug, Default)]
pub struct AppReport {
    pending: u64,
    heartbeats: u32,
    cache: BTreeMap<u64, String>,
    asking: BTreeSet<u64>,
}

impl AppReport {
    /// The AME's notification vector after a round with changes.
    pub fn ring(&mut self, bits: u64) {
        self.pending |= bits;
    }

    /// A heartbeat goes out: the doorbell bits it carries.
    pub fn doorbell(&mut self) -> u64 {
        self.heartbeats = self.heartbeats.saturating_add(1);
        if self.heartbeats == INITIAL_DBELL_AFTER {
            self.pending |= NOTIFY_RESYNC;
        }
        self.pending
    }

    /// A host monitor recorded these bits: they are not rung again.
    pub fn recorded(&mut self, bits: u64) {
        self.pending &= !bits;
    }

    pub fn answer(&mut self, hs_tag: u64) -> Answer {
        if let Some(payload) = self.cache.get(&hs_tag) {
            return Answer::Cached(payload.clone());
        }
        match self.asking.insert(hs_tag) {
            true => Answer::Ask,
            false => Answer::Pending,
        }
    }

    pub fn answered(&mut self, hs_tag: u64, payload: String) {
        self.asking.remove(&hs_tag);
        self.cache.insert(hs_tag, payload);
    }

    /// Asking the AME failed: the next delivery asks again.
    pub fn not_answered(&mut self, hs_tag: u64) {
        self.asking.remove(&hs_tag);
    }

    /// GMSG: the controller has these answers; they leave the cache.
    pub fn confirmed(&mut self, hs_tags: &[u64]) {
        for tag in hs_tags {
            self.cache.remove(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::app_engine::engine::{NOTIFY_CONFIG, NOTIFY_STATUS};

    #[test]
    fn the_initial_doorbell_rings_with_the_fourth_heartbeat_only() {
        let mut r = AppReport::default();
        assert_eq!([r.doorbell(), r.doorbell(), r.doorbell()], [0, 0, 0]);
        assert_eq!(r.doorbell(), NOTIFY_RESYNC);
        r.recorded(NOTIFY_RESYNC);
        assert_eq!(r.doorbell(), 0, "recorded bits are not rung again");
        assert_eq!(r.doorbell(), 0, "the initial doorbell rings once");
    }

    #[test]
    fn bits_accumulate_until_recorded_and_later_bits_survive() {
        let mut r = AppReport::default();
        r.ring(NOTIFY_STATUS);
        r.ring(NOTIFY_CONFIG);
        assert_eq!(r.doorbell(), NOTIFY_STATUS | NOTIFY_CONFIG);
        r.recorded(NOTIFY_STATUS);
        assert_eq!(r.doorbell(), NOTIFY_CONFIG);
    }

    #[test]
    fn an_answer_is_cached_until_confirmed() {
        let mut r = AppReport::default();
        assert_eq!(r.answer(7), Answer::Ask);
        assert_eq!(r.answer(7), Answer::Pending, "asked once while the AME answers");
        r.answered(7, "[]".into());
        assert_eq!(r.answer(7), Answer::Cached("[]".into()));
        r.confirmed(&[7]);
        assert_eq!(r.answer(7), Answer::Ask, "GMSG discarded the payload");
        r.not_answered(8);
        assert_eq!(r.answer(8), Answer::Ask);
    }
}
