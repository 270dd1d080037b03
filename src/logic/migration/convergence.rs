//! When iterative pre-copy stops (seed 001 §4.5 phase 2, §4.8). After each round the dirty pages
//! left are weighed against the transfer rate the round reached: when they fit in the maximum
//! downtime, the VM is stopped and the rest copied. When dirtying outpaces copying — rounds stop
//! shrinking, or the round limit is reached — the policy decides: `abort` (SU /390: VMS2425,
//! the VM keeps running on the source) or `force` (SU x86: "the LM is executed in every case",
//! with a longer pause).
use std::time::Duration;

/// Default longest pause (QEMU's `downtime-limit` default: 300 ms).
pub const DEFAULT_MAX_DOWNTIME: Duration = Duration::from_millis(300);
/// Default pre-copy rounds before the policy decides.
pub const DEFAULT_MAX_ROUNDS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvergencePolicy {
    /// Seed: SU /390 aborts with VMS2425.
    #[default]
    Abort,
    /// Seed: SU x86 completes, however long the pause.
    Force,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecopyLimits {
    pub max_downtime: Duration,
    pub max_rounds: u32,
    pub policy: ConvergencePolicy,
}

/// One finished pre-copy round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent_bytes: u64,
    pub elapsed: Duration,
    /// Dirtied while the round ran: what the next round (or the pause) must send.
    pub dirty_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Another round of the pages dirtied meanwhile.
    Iterate,
    /// Stop the VM and copy the rest; `forced`: it will not fit in the maximum downtime.
    StopAndCopy { forced: bool },
    /// Seed VMS2425: "CHANGING MEMORY PAGES CANNOT BE TRANSFERRED IN TIME".
    Abort,
}

/// Rounds that do not shrink the dirty set in a row before pre-copy is judged not converging.
const STALLED_ROUNDS: usize = 3;

/// The share of the maximum downtime the last copy may take: the rest is kept for what the
/// switchover costs besides copying (pausing, moving the disk's reservation, resuming) and for
/// a rate estimate that turns out optimistic.
const COPY_SHARE_OF_DOWNTIME: f64 = 0.5;

/// What follows the `rounds` done so far (at least one).
pub fn next_step(limits: &PrecopyLimits, rounds: &[Round]) -> Next {
    let Some(last) = rounds.last() else { return Next::Iterate };
    if fits(last, limits.max_downtime) {
        return Next::StopAndCopy { forced: false };
    }
    let stalled = rounds.len() > STALLED_ROUNDS
        && rounds[rounds.len() - 1 - STALLED_ROUNDS..].windows(2).all(|w| w[1].dirty_bytes >= w[0].dirty_bytes);
    if rounds.len() as u32 >= limits.max_rounds || stalled {
        return match limits.policy {
            ConvergencePolicy::Abort => Next::Abort,
            ConvergencePolicy::Force => Next::StopAndCopy { forced: true },
        };
    }
    Next::Iterate
}

/// The pause the last round's dirty bytes would take at its transfer rate.
pub fn expected_pause(round: &Round) -> Duration {
    if round.dirty_bytes == 0 {
        return Duration::ZERO;
    }
    match round.sent_bytes {
        0 => Duration::MAX,
        sent => round.elapsed.mul_f64(round.dirty_bytes as f64 / sent as f64),
    }
}

fn fits(round: &Round, max_downtime: Duration) -> bool {
    expected_pause(round) <= max_downtime.mul_f64(COPY_SHARE_OF_DOWNTIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn limits(policy: ConvergencePolicy) -> PrecopyLimits {
        PrecopyLimits { max_downtime: Duration::from_millis(100), max_rounds: 10, policy }
    }

    /// A round at 1000 MB/s that leaves `dirty` MB behind.
    fn round(dirty: u64) -> Round {
        Round { sent_bytes: 1000 * MB, elapsed: Duration::from_secs(1), dirty_bytes: dirty * MB }
    }

    #[test]
    fn a_small_rest_stops_and_copies() {
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &[round(50)]), Next::StopAndCopy { forced: false });
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &[round(0)]), Next::StopAndCopy { forced: false });
    }

    #[test]
    fn half_the_maximum_downtime_is_kept_for_the_switchover_itself() {
        // 60 MB at 1000 MB/s: 60 ms, within the 100 ms maximum but above its copying share.
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &[round(60)]), Next::Iterate);
    }

    #[test]
    fn a_shrinking_rest_iterates() {
        let l = limits(ConvergencePolicy::Abort);
        assert_eq!(next_step(&l, &[]), Next::Iterate);
        assert_eq!(next_step(&l, &[round(800), round(400), round(200)]), Next::Iterate);
    }

    #[test]
    fn a_stalled_precopy_aborts_or_forces_by_policy() {
        let stalled = [round(300), round(300), round(310), round(320)];
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &stalled), Next::Abort);
        assert_eq!(next_step(&limits(ConvergencePolicy::Force), &stalled), Next::StopAndCopy { forced: true });
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &stalled[..3]), Next::Iterate, "not yet judged");
    }

    #[test]
    fn the_round_limit_ends_precopy_by_policy() {
        let shrinking: Vec<Round> = (0..10).map(|i| round(1000 - i * 10)).collect();
        assert_eq!(next_step(&limits(ConvergencePolicy::Abort), &shrinking), Next::Abort);
        assert_eq!(next_step(&limits(ConvergencePolicy::Force), &shrinking), Next::StopAndCopy { forced: true });
    }

    #[test]
    fn the_expected_pause_follows_the_measured_rate() {
        assert_eq!(expected_pause(&round(100)), Duration::from_millis(100));
        let stuck = Round { sent_bytes: 0, elapsed: Duration::from_secs(1), dirty_bytes: 1 };
        assert_eq!(expected_pause(&stuck), Duration::MAX);
    }
}
