//! The workspace's one way to retry: exponential backoff with jitter, from the crate `backon`
//! (`use htsprep_shared::retry::Retryable` and call `.retry(backoff(...))` on an async
//! closure, with `.when(...)` for what is worth retrying).

use std::time::Duration;

pub use backon::{ConstantBuilder, Retryable};

/// At most `attempts` tries in all; the first pause is `first`, then each doubles (with
/// jitter), up to a minute.
pub fn backoff(attempts: u32, first: Duration) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(Duration::from_secs(60))
        .with_factor(2.0)
        .with_max_times(attempts.saturating_sub(1) as usize)
        .with_jitter()
}

/// Polling: a try every `every`, for at most `within`.
pub fn polling(every: Duration, within: Duration) -> ConstantBuilder {
    let tries = (within.as_millis() / every.as_millis().max(1)).max(1);
    ConstantBuilder::default()
        .with_delay(every)
        .with_max_times(usize::try_from(tries).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_what_may_pass_up_to_the_attempts() {
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = (|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err("transient")
        })
        .retry(backoff(3, Duration::from_millis(100)))
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "three attempts in all");
        calls.store(0, Ordering::SeqCst);
        let r: Result<(), &str> = (|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err("permanent")
        })
        .retry(backoff(3, Duration::from_millis(100)))
        .when(|e| *e != "permanent")
        .await;
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "what cannot pass is not retried"
        );
    }
}
