//! Exponential backoff with jitter after throttling or capacity errors: while it lasts, callers
//! are told how long to wait instead of calling ECS again.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    until: Option<Instant>,
    reason: String,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: 0,
            until: None,
            reason: String::new(),
        }
    }

    /// Records a failure; returns how long to wait before the next call.
    pub fn fail(&mut self, reason: &str) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self
            .base
            .saturating_mul(1u32 << (self.failures - 1).min(16))
            .min(self.max);
        // ±20 % so that many callers (and API replicas) do not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let wait = exp.mul_f64(0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0);
        self.until = Some(Instant::now() + wait);
        self.reason = reason.to_owned();
        wait
    }

    pub fn reset(&mut self) {
        self.failures = 0;
        self.until = None;
    }

    /// While backing off: how long is left, and why.
    pub fn remaining(&self) -> Option<(Duration, &str)> {
        let left = self.until?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some((left, self.reason.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_grow_to_the_cap_and_reset_on_success() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let waits: Vec<Duration> = (0..6).map(|_| b.fail("throttled")).collect();
        for (i, w) in waits.iter().enumerate() {
            let nominal = Duration::from_secs((1u64 << i).min(8));
            assert!(
                *w >= nominal.mul_f64(0.8) && *w <= nominal.mul_f64(1.2),
                "{waits:?}"
            );
        }
        let (left, why) = b.remaining().unwrap();
        assert!(left <= waits[5] && why == "throttled");
        tokio::time::sleep(waits[5]).await;
        assert!(b.remaining().is_none());
        b.fail("again");
        b.reset();
        assert!(b.remaining().is_none());
        assert!(b.fail("x") <= Duration::from_millis(1200));
    }
}
