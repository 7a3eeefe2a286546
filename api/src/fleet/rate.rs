//! A rate limiter for calls to a rate-limited API (GCRA): calls are spaced `1/rate` apart, with
//! up to `burst` of them allowed back to back after a quiet spell. The slot is reserved when
//! `acquire` is called, so callers are served in order.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time of the next call.
    tat: Mutex<Instant>,
}

impl RateLimiter {
    /// `per_second` calls per second on average, `burst` (at least 1) at once.
    pub fn per_second(per_second: f64, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(1e-3));
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: Mutex::new(Instant::now()),
        }
    }

    /// Waits until a call may be made.
    pub async fn acquire(&self) {
        let ready = {
            let mut tat = self.tat.lock().expect("rate limiter lock");
            let now = Instant::now();
            let next = (*tat).max(now);
            *tat = next + self.interval;
            next.checked_sub(self.tolerance).unwrap_or(now).max(now)
        };
        tokio::time::sleep_until(ready).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_rate_after_the_burst() {
        let limiter = RateLimiter::per_second(5.0, 3);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..8 {
            limiter.acquire().await;
            at.push(start.elapsed());
        }
        // The burst goes at once, then one call every 200 ms.
        assert_eq!(&at[..3], &[Duration::ZERO; 3]);
        for pair in at[2..].windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(200), "{at:?}");
        }
        // After a quiet spell the burst is available again.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let quiet = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(quiet.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::per_second(10.0, 1));
        let start = Instant::now();
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let l = std::sync::Arc::clone(&limiter);
                tokio::spawn(async move {
                    l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut at = Vec::new();
        for c in calls {
            at.push(c.await.unwrap() - start);
        }
        at.sort();
        assert_eq!(at.last().copied(), Some(Duration::from_millis(1900)));
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(100), "{at:?}");
        }
    }
}
