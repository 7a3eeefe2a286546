//! Single flight: concurrent calls for one key (a workflow's provision or claim, a file's catalog
//! record, an artifact's existence, an htsget layout) share one call and its result: the first
//! caller starts it, the others await the same result, and the key is free again once it has
//! ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::runtime::Handle;

type Call<T> = Shared<BoxFuture<'static, T>>;
type Calls<T> = Arc<Mutex<HashMap<String, (u64, Call<T>)>>>;

#[derive(Debug)]
pub struct Coalesce<T: Clone> {
    inflight: Calls<T>,
    next: AtomicU64,
    /// Where calls run; `None`: on the runtime of the caller that starts one.
    runtime: Option<Handle>,
}

impl<T: Clone> Default for Coalesce<T> {
    fn default() -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicU64::new(0),
            runtime: None,
        }
    }
}

impl<T: Clone> Coalesce<T> {
    /// Calls run on `runtime` whoever starts them. For calls that requests start on a serving
    /// thread: there a call's every step (each store operation's return from the blocking
    /// pool) would queue behind the thread's ready connections, hundreds of them in a storm,
    /// while every request of the storm waits on the call.
    pub fn on(runtime: Handle) -> Self {
        Self {
            runtime: Some(runtime),
            ..Self::default()
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalesce<T> {
    /// Runs `start()` for `key` unless a call for it is already in flight, and returns that
    /// call's result. The call runs as its own task: it ends (and frees the key) even if every
    /// caller stops waiting, so no later caller gets the result of a call nobody awaited.
    pub async fn run(&self, key: &str, start: impl FnOnce() -> BoxFuture<'static, T>) -> T {
        let call = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            match inflight.get(key) {
                Some((_, call)) => call.clone(),
                None => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    let (work, calls, owned) =
                        (start(), Arc::clone(&self.inflight), key.to_owned());
                    let call = async move {
                        let out = work.await;
                        let mut calls = calls.lock().expect("inflight lock");
                        // Only this call: it may have been forgotten and a newer one started.
                        if calls.get(&owned).is_some_and(|(i, _)| *i == id) {
                            calls.remove(&owned);
                        }
                        out
                    };
                    let task = match &self.runtime {
                        Some(runtime) => runtime.spawn(call),
                        None => tokio::spawn(call),
                    };
                    let call = async move {
                        match task.await {
                            Ok(out) => out,
                            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                            Err(e) => panic!("a coalesced call was cancelled: {e}"),
                        }
                    }
                    .boxed()
                    .shared();
                    inflight.insert(key.to_owned(), (id, call.clone()));
                    call
                }
            }
        };
        call.await
    }

    /// The next caller for `key` starts a new call; the one in flight still answers those
    /// already waiting on it. For a change made meanwhile that the call may not have seen.
    pub fn forget(&self, key: &str) {
        self.inflight.lock().expect("inflight lock").remove(key);
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

    #[tokio::test]
    async fn a_call_nobody_waits_for_still_ends_and_frees_its_key() {
        let c = Coalesce::<u32>::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let first = c.run("k", move || {
            async move {
                let v = rx.await.unwrap();
                let _ = done_tx.send(());
                v
            }
            .boxed()
        });
        // The only caller gives up before the call ends.
        assert!(
            tokio::time::timeout(Duration::ZERO, first).await.is_err(),
            "the call is in flight"
        );
        tx.send(1).unwrap();
        done_rx.await.unwrap();
        // Its end freed the key: the next caller makes a new call, not the stale one.
        let next = c.run("k", || async { 2 }.boxed()).await;
        assert_eq!(next, 2);
    }

    #[tokio::test]
    async fn a_forgotten_key_starts_a_new_call_while_the_old_one_answers_its_callers() {
        let c = Arc::new(Coalesce::<u32>::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let old = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.run("k", move || async move { rx.await.unwrap() }.boxed())
                    .await
            })
        };
        tokio::task::yield_now().await;
        c.forget("k");
        assert_eq!(c.run("k", || async { 2 }.boxed()).await, 2);
        tx.send(1).unwrap();
        assert_eq!(old.await.unwrap(), 1);
    }

    /// Started from a request's serving thread, a call runs on the background runtime it was
    /// made for.
    #[test]
    fn calls_run_on_the_runtime_they_were_made_for() {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("background")
            .build()
            .unwrap();
        let serving = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let on = Coalesce::<Option<String>>::on(background.handle().clone());
        let here = Coalesce::<Option<String>>::default();
        let thread = || async { std::thread::current().name().map(str::to_owned) }.boxed();
        let (on, here) =
            serving.block_on(async { (on.run("k", thread).await, here.run("k", thread).await) });
        assert_eq!(on.as_deref(), Some("background"));
        assert_eq!(here, std::thread::current().name().map(str::to_owned));
    }
}
