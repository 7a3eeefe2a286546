//! Single flight: concurrent calls for one key (a workflow's provision, a workflow's claim)
//! share one call and its result: the first caller starts it, the others await the same future,
//! and the key is free again once it has ended.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

type Call<T> = Shared<BoxFuture<'static, T>>;

#[derive(Debug)]
pub struct Coalesce<T: Clone> {
    inflight: Mutex<HashMap<String, Call<T>>>,
}

impl<T: Clone> Default for Coalesce<T> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalesce<T> {
    /// Runs `start()` for `key` unless a call for it is already in flight, and returns that
    /// call's result.
    pub async fn run(&self, key: &str, start: impl FnOnce() -> BoxFuture<'static, T>) -> T {
        let call = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            inflight
                .entry(key.to_owned())
                .or_insert_with(|| start().shared())
                .clone()
        };
        let result = call.clone().await;
        let mut inflight = self.inflight.lock().expect("inflight lock");
        // Only the call that ended: a newer one for the key may have started meanwhile.
        if inflight.get(key).is_some_and(|c| c.ptr_eq(&call)) {
            inflight.remove(key);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_call_per_key_at_a_time_and_a_new_one_afterwards() {
        let c = Arc::new(Coalesce::<Result<(), ()>>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let start = |calls: Arc<AtomicUsize>| {
            move || {
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(())
                }
                .boxed()
            }
        };
        let waiters: Vec<_> = (0..20)
            .map(|i| {
                let (c, calls) = (Arc::clone(&c), Arc::clone(&calls));
                let key = if i % 2 == 0 { "a" } else { "b" };
                tokio::spawn(async move { c.run(key, start(calls)).await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one per key");
        c.run("a", start(Arc::clone(&calls))).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the key is free once the call ended"
        );
    }
}
