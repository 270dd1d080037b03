//! How what failed on the way is tried again. The FDE, besides a VM's relocation
//! ([`crate::logic::vm_failure::relocation_retry`]): the source-side cleanup of a host that came
//! back (its VIOSs may answer before its hypervisor does) and an application report that was not
//! taken (the agent rings again only after its next change); `None`: no more attempts. Every
//! other loop that retries until it succeeds (a host monitor's HSDB rows, a partition of the
//! boot list, Raft towards a peer) waits longer after each failure: [`backoff`].
use std::time::Duration;

/// How often a host that came back is tried for its source-side cleanup.
pub const CLEANUP_ATTEMPTS: u32 = 30;
/// The wait between two cleanup attempts.
pub const CLEANUP_RETRY: Duration = Duration::from_secs(1);
/// How often an application report that failed is taken before the next doorbell.
pub const REPORT_ATTEMPTS: u32 = 3;
/// A failed report is asked again after this many FDE poll periods.
pub const REPORT_RETRY_POLLS: u32 = 5;

/// The wait before cleanup attempt `attempt + 1`, after attempt `attempt` failed.
pub fn cleanup_retry(attempt: u32) -> Option<Duration> {
    (attempt < CLEANUP_ATTEMPTS).then_some(CLEANUP_RETRY)
}

/// The wait before report attempt `attempt + 1`, after attempt `attempt` failed.
pub fn report_retry(attempt: u32, fde_poll: Duration) -> Option<Duration> {
    (attempt < REPORT_ATTEMPTS).then_some(fde_poll * REPORT_RETRY_POLLS)
}

/// The wait after the `failures`-th failure in a row: `first`, doubling up to `cap`.
pub fn backoff(failures: u32, first: Duration, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    first.saturating_mul(1 << doublings).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_doubles_up_to_its_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<_> = (1..=6).map(|n| backoff(n, ms(100), ms(1000))).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert_eq!(backoff(0, ms(100), ms(1000)), ms(100));
        assert_eq!(backoff(u32::MAX, ms(100), ms(1000)), ms(1000));
    }

    #[test]
    fn a_cleanup_is_tried_every_second_thirty_times() {
        assert_eq!(cleanup_retry(1), Some(Duration::from_secs(1)));
        assert_eq!(cleanup_retry(29), Some(Duration::from_secs(1)));
        assert_eq!(cleanup_retry(30), None);
    }

    #[test]
    fn a_report_is_asked_three_times_five_polls_apart() {
        let poll = Duration::from_millis(400);
        assert_eq!(report_retry(1, poll), Some(Duration::from_secs(2)));
        assert_eq!(report_retry(2, poll), Some(Duration::from_secs(2)));
        assert_eq!(report_retry(3, poll), None);
    }
}
