//! Linearizable reads share their leadership checks. Each of openraft's `ensure_linearizable`
//! is a round of AppendEntries to every follower; a burst of reads (64 watches opened at once)
//! made as many rounds, and the followers' heartbeats waited behind them long enough for them
//! to elect another DBN. Here a read waits for one round that *began after it arrived* — its
//! own, or one a later reader began — so a burst costs two rounds, and every read is as
//! linearizable as if it had made its own.
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

#[derive(Default)]
pub struct ReadBarrier {
    /// Rounds begun so far (the number of the latest).
    begun: AtomicU64,
    /// The latest round that confirmed the leadership; held while a round runs.
    confirmed: Mutex<u64>,
}

impl ReadBarrier {
    /// Returns once a round that began after this call confirmed the leadership (`round`
    /// performs one), or with the error of the round this call ran.
    pub async fn confirm<E, F, Fut>(&self, round: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let arrived = self.begun.load(Ordering::SeqCst);
        let mut confirmed = self.confirmed.lock().await;
        if *confirmed > arrived {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        round().await?;
        *confirmed = number;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_reads_costs_two_rounds() {
        let (barrier, rounds) = (Arc::new(ReadBarrier::default()), Arc::new(AtomicUsize::new(0)));
        let round = |rounds: Arc<AtomicUsize>| async move {
            rounds.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            Ok::<(), ()>(())
        };
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let (barrier, rounds) = (barrier.clone(), rounds.clone());
                tokio::spawn(async move { barrier.confirm(|| round(rounds)).await })
            })
            .collect();
        for read in reads {
            read.await.unwrap().unwrap();
        }
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
        barrier.confirm(|| round(rounds.clone())).await.unwrap();
        assert_eq!(rounds.load(Ordering::SeqCst), 3, "a read after the burst has a round of its own");
    }

    #[tokio::test]
    async fn a_failed_round_fails_its_reader_and_confirms_nobody() {
        let barrier = ReadBarrier::default();
        assert_eq!(barrier.confirm(|| async { Err::<(), _>("not leader") }).await, Err("not leader"));
        let ran = AtomicUsize::new(0);
        let round = || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<(), &str>(())
        };
        barrier.confirm(round).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the next reader made its own round");
    }
}
