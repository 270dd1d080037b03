//! One clock for the actors: tokio's. Actors schedule on it (`run_later`, `run_interval`,
//! `tokio::time::sleep`) and measure with its [`Instant`], and [`now_ms`] — the wall-clock
//! milliseconds that rows shared between nodes carry — follows it too. In a node tokio's clock
//! is the real one, so [`now_ms`] is the system's wall clock; in a test that pauses tokio's
//! clock and advances it, every actor and every timestamp moves with the advance, so an FDE or
//! a host monitor can be driven through minutes of detection in milliseconds.
pub use tokio::time::Instant;

/// Wall-clock milliseconds since the Unix epoch, plus however far a paused tokio clock has
/// been advanced beyond real time (nothing, outside such a test).
pub fn now_ms() -> i64 {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64);
    wall.unwrap_or(0) + advanced_ms()
}

/// How far tokio's clock is ahead of the real monotonic clock. Read tokio's first: when it is
/// the real clock, the later real reading can only be later, and the answer is 0.
fn advanced_ms() -> i64 {
    let tokio_now = Instant::now().into_std();
    tokio_now.checked_duration_since(std::time::Instant::now()).map_or(0, |ahead| ahead.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Outside a paused runtime the clock is the wall clock.
    #[test]
    fn a_free_clock_is_the_wall_clock() {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now_ms() - wall).abs() < 1_000);
    }

    /// A paused clock advanced by an hour moves `now_ms` by an hour.
    #[tokio::test(start_paused = true)]
    async fn now_follows_a_paused_clock() {
        let before = now_ms();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let moved = now_ms() - before;
        assert!((3_599_000..3_601_000).contains(&moved), "moved {moved} ms");
    }
}
