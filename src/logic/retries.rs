//! How the FDE tries again what failed on the way, besides a VM's relocation
//! ([`crate::logic::vm_failure::relocation_retry`]): the source-side cleanup of a host that came
//! back (its VIOSs may answer before its hypervisor does) and an application report that was not
//! taken (the agent rings again only after its next change). `None`: no more attempts.
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

#[cfg(test)]
mod tests {
    use super::*;

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
