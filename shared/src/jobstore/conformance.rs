//! The job store conformance suite. Every backend runs all of it through
//! [`jobstore_conformance!`](crate::jobstore_conformance), each case on a fresh, empty store
//! whose clock is a [`ManualClock`] (time-dependent cases never sleep).

use std::sync::Arc;
use std::time::Duration;

use super::{
    ClaimOutcome, ClaimRequest, Fence, JobChange, JobPolicy, JobStore, JobStoreError, JobStoreExt,
    ListQuery, PublishedProbe,
};
use crate::clock::ManualClock;
use crate::domain::{
    ArtifactKind, EventKind, Ident, JobFailure, JobId, JobStatus, Progress, WorkerRef,
};

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async fn returning
/// `(Arc<dyn JobStore>, Arc<ManualClock>, guard)` for a fresh empty store; the guard is kept
/// alive for the test (a temp dir, a server database).
#[macro_export]
macro_rules! jobstore_conformance {
    ($make:path) => {
        $crate::jobstore_conformance!(@cases $make;
            claim_creates_then_attaches,
            racing_claims_have_one_winner,
            stale_job_is_reclaimed_with_a_new_lease,
            heartbeat_keeps_a_job_alive,
            fenced_writes_are_noops_after_reclaim,
            release_is_terminal,
            failure_is_terminal_and_keeps_its_reason,
            retries_count_attempts,
            last_attempt_stale_fails_and_a_fresh_job_follows,
            stages_artifacts_and_timeline_are_recorded,
            list_pages_newest_first,
            find_stale_lists_only_stale_active_jobs,
            unknown_jobs_are_not_found,
            a_stale_queued_job_is_taken_over_without_costing_an_attempt,
            waiting_renews_the_dispatch_lease,
            a_claim_answers_published_instead_of_starting_work,
            a_permanent_failure_stands_until_an_operator_retries,
            find_latest_names_the_newest_job,
            cancel_fails_an_active_job_and_voids_its_lease,
            a_requeue_runs_the_same_attempt_again,
            the_longest_identifiers_work,
        );
    };
    (@cases $make:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, clock, _guard) = $make().await;
                $crate::jobstore::conformance::$case(store, clock).await;
            }
        )+
    };
}

const STALE: Duration = Duration::from_secs(60);

fn request(key: &str) -> ClaimRequest {
    ClaimRequest {
        workflow_key: format!("dcc/{key}/0123456789abcdef0123456789abcdef/v1"),
        dcc: Ident::parse("dcc").unwrap(),
        local_id: Ident::parse(key).unwrap(),
        policy: JobPolicy {
            stale_after: STALE,
            max_attempts: 3,
        },
        driver: Some("replica-a".into()),
    }
}

fn worker() -> WorkerRef {
    WorkerRef {
        provider: "local".into(),
        resource_id: "pid-1".into(),
        address: "127.0.0.1:1".into(),
    }
}

fn assert_lease_lost<T: std::fmt::Debug>(r: Result<T, JobStoreError>) {
    assert!(
        matches!(r, Err(JobStoreError::LeaseLost { .. })),
        "expected LeaseLost, got {r:?}"
    );
}

pub async fn claim_creates_then_attaches(store: Arc<dyn JobStore>, _clock: Arc<ManualClock>) {
    let first = store.claim(&request("a")).await.unwrap();
    assert_eq!(first.outcome, ClaimOutcome::Created);
    assert!(first.owns());
    assert_eq!(first.job.status, JobStatus::Pending);
    assert!(first.job.active);
    assert_eq!(first.job.attempt, 1);

    let second = store.claim(&request("a")).await.unwrap();
    assert_eq!(second.outcome, ClaimOutcome::Attached);
    assert!(!second.owns());
    assert_eq!(second.job.job_id, first.job.job_id);

    let other = store.claim(&request("b")).await.unwrap();
    assert_eq!(other.outcome, ClaimOutcome::Created);
    assert_ne!(other.job.job_id, first.job.job_id);

    let stored = store.get(&first.job.job_id).await.unwrap();
    assert_eq!(stored.workflow_key, request("a").workflow_key);
    assert_eq!(stored.lease, first.job.lease);
}

/// Exactly one of `n` concurrent claims (spread over `stores`) creates the job.
pub async fn racing_claims_across(stores: &[Arc<dyn JobStore>], n: usize) {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim(&request("race")).await.unwrap()
            })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.unwrap());
    }
    let created = claims
        .iter()
        .filter(|c| c.outcome == ClaimOutcome::Created)
        .count();
    let attached = claims
        .iter()
        .filter(|c| c.outcome == ClaimOutcome::Attached)
        .count();
    assert_eq!((created, attached), (1, n - 1));
    let id = &claims[0].job.job_id;
    assert!(
        claims.iter().all(|c| &c.job.job_id == id),
        "all claims name one job"
    );
    let page = stores[0].list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 1, "exactly one job stored");
}

pub async fn racing_claims_have_one_winner(store: Arc<dyn JobStore>, _clock: Arc<ManualClock>) {
    racing_claims_across(&[store], 50).await;
}

pub async fn stale_job_is_reclaimed_with_a_new_lease(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let first = store.claim(&request("a")).await.unwrap().job;
    let first = store
        .mark_running(&Fence::of(&first), worker())
        .await
        .unwrap();
    clock.advance(STALE - Duration::from_secs(1));
    let still = store.claim(&request("a")).await.unwrap();
    assert_eq!(still.outcome, ClaimOutcome::Attached, "not stale yet");

    clock.advance(Duration::from_secs(2));
    let re = store.claim(&request("a")).await.unwrap();
    assert_eq!(re.outcome, ClaimOutcome::Reclaimed);
    assert!(re.owns());
    assert_eq!(re.job.job_id, first.job_id, "the job keeps its id");
    assert_ne!(
        re.job.lease, first.lease,
        "a new lease fences the old owner"
    );
    assert_eq!(re.job.attempt, 2);
    assert_eq!(re.job.status, JobStatus::Pending);
    assert!(
        re.job
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Rescheduled { .. }))
    );
}

pub async fn heartbeat_keeps_a_job_alive(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    store.mark_running(&fence, worker()).await.unwrap();
    for i in 0..5 {
        clock.advance(STALE / 2);
        let progress = Progress {
            stage: "sort".into(),
            fraction: Some(f64::from(i) / 5.0),
            message: None,
        };
        let hb = store
            .heartbeat(&fence, Some(progress.clone()))
            .await
            .unwrap();
        assert_eq!(hb.progress, Some(progress));
    }
    clock.advance(STALE / 2);
    let c = store.claim(&request("a")).await.unwrap();
    assert_eq!(
        c.outcome,
        ClaimOutcome::Attached,
        "2.5 stale periods later, still alive"
    );
    assert_eq!(c.job.status, JobStatus::Running);
    assert_eq!(c.job.attempt, 1);
}

pub async fn fenced_writes_are_noops_after_reclaim(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let old = store.claim(&request("a")).await.unwrap().job;
    let old_fence = Fence::of(&old);
    store.mark_running(&old_fence, worker()).await.unwrap();
    clock.advance(STALE * 2);
    let new = store.claim(&request("a")).await.unwrap().job;
    let before = store.get(&old.job_id).await.unwrap();

    assert_lease_lost(store.heartbeat(&old_fence, None).await);
    assert_lease_lost(store.mark_running(&old_fence, worker()).await);
    assert_lease_lost(
        store
            .record_stage(&old_fence, "sort", Some((ArtifactKind::Data, "k".into())))
            .await,
    );
    assert_lease_lost(store.complete(&old_fence).await);
    assert_lease_lost(store.fail(&old_fence, JobFailure::new("late")).await);
    assert_lease_lost(store.reschedule(&old_fence, "late").await);

    let after = store.get(&old.job_id).await.unwrap();
    assert_eq!(after, before, "late writes changed nothing");
    assert_eq!(after.lease, new.lease);
    // The new owner can write.
    store.heartbeat(&Fence::of(&new), None).await.unwrap();
}

pub async fn release_is_terminal(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    store.mark_running(&fence, worker()).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let done = store.complete(&fence).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert!(!done.active);
    assert_eq!(done.finished_at, Some(clock_now(&clock)));

    assert_lease_lost(store.heartbeat(&fence, None).await);
    assert_lease_lost(store.fail(&fence, JobFailure::new("after the fact")).await);
    assert_lease_lost(store.complete(&fence).await);
    assert_eq!(
        store.get(&job.job_id).await.unwrap().status,
        JobStatus::Completed
    );
    assert!(
        store
            .find_active(&job.workflow_key)
            .await
            .unwrap()
            .is_none()
    );

    // The workflow's mutex is free again: a new claim creates a new job.
    let next = store.claim(&request("a")).await.unwrap();
    assert_eq!(next.outcome, ClaimOutcome::Created);
    assert_ne!(next.job.job_id, job.job_id);
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<chrono::Utc> {
    crate::clock::Clock::now(clock)
}

pub async fn failure_is_terminal_and_keeps_its_reason(
    store: Arc<dyn JobStore>,
    _clock: Arc<ManualClock>,
) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    let mut failure = JobFailure::new("samtools sort failed: truncated file");
    failure.stage = Some("sort".into());
    failure.exit_status = Some(1);
    failure.stderr_tail = Some("[E::bgzf_read] truncated".into());
    let failed = store.fail(&fence, failure.clone()).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(!failed.active);
    assert_eq!(failed.error, Some(failure.clone()));
    assert_lease_lost(store.complete(&fence).await);
    let stored = store.get(&job.job_id).await.unwrap();
    assert_eq!(stored.error, Some(failure));
    assert!(stored.events.iter().any(
        |e| matches!(&e.kind, EventKind::Failed { message } if message.contains("truncated"))
    ));
}

pub async fn retries_count_attempts(store: Arc<dyn JobStore>, _clock: Arc<ManualClock>) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let mut fence = Fence::of(&job);
    for expected in 2..=4 {
        let re = store.reschedule(&fence, "worker died").await.unwrap();
        assert_eq!(re.attempt, expected);
        assert_eq!(re.status, JobStatus::Pending);
        assert!(re.active);
        assert_ne!(re.lease, fence.lease);
        assert_lease_lost(store.heartbeat(&fence, None).await);
        fence = Fence::of(&re);
    }
    let stored = store.get(&job.job_id).await.unwrap();
    assert_eq!(stored.attempt, 4);
    let reschedules = stored
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Rescheduled { .. }))
        .count();
    assert_eq!(reschedules, 3);
}

pub async fn last_attempt_stale_fails_and_a_fresh_job_follows(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let req = request("a");
    let max = req.policy.max_attempts;
    let mut job = store.claim(&req).await.unwrap().job;
    for _ in 1..max {
        store
            .mark_running(&Fence::of(&job), worker())
            .await
            .unwrap();
        clock.advance(STALE * 2);
        job = store.claim(&req).await.unwrap().job;
    }
    assert_eq!(job.attempt, max);
    store
        .mark_running(&Fence::of(&job), worker())
        .await
        .unwrap();
    clock.advance(STALE * 2);
    let fresh = store.claim(&req).await.unwrap();
    assert_eq!(fresh.outcome, ClaimOutcome::Created);
    assert_ne!(fresh.job.job_id, job.job_id);
    assert_eq!(fresh.job.attempt, 1);
    let old = store.get(&job.job_id).await.unwrap();
    assert_eq!(old.status, JobStatus::Failed);
    let err = old.error.expect("abandoned job has a reason");
    assert!(err.message.contains("no heartbeat"), "{}", err.message);
    assert!(err.retryable);
}

pub async fn stages_artifacts_and_timeline_are_recorded(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    clock.advance(Duration::from_secs(1));
    let running = store.mark_running(&fence, worker()).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.worker, Some(worker()));
    let started = running.started_at.expect("started_at set");

    store
        .append_event(
            &fence,
            EventKind::StageStarted {
                stage: "sort".into(),
                command: Some("samtools sort".into()),
            },
        )
        .await
        .unwrap();
    store
        .record_stage(
            &fence,
            "sort",
            Some((ArtifactKind::Data, "d/l/data/p/m-v1".into())),
        )
        .await
        .unwrap();
    store
        .record_stage(
            &fence,
            "index",
            Some((ArtifactKind::Index, "d/l/index/p/m-v1".into())),
        )
        .await
        .unwrap();
    store.record_stage(&fence, "validate", None).await.unwrap();
    clock.advance(Duration::from_secs(1));
    store.mark_running(&fence, worker()).await.unwrap();
    let done = store.complete(&fence).await.unwrap();

    let names: Vec<_> = done.stages_done.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["sort", "index", "validate"]);
    assert_eq!(
        done.artifacts.get(&ArtifactKind::Data).map(String::as_str),
        Some("d/l/data/p/m-v1")
    );
    assert_eq!(
        done.artifacts.get(&ArtifactKind::Index).map(String::as_str),
        Some("d/l/index/p/m-v1")
    );
    assert_eq!(done.started_at, Some(started), "started_at is set once");
    let kinds: Vec<_> = done
        .events
        .iter()
        .map(|e| match e.kind {
            EventKind::Claimed => "claimed",
            EventKind::Running { .. } => "running",
            EventKind::StageStarted { .. } => "stage_started",
            EventKind::Completed => "completed",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "claimed",
            "running",
            "stage_started",
            "running",
            "completed"
        ]
    );
    let stored = store.get(&job.job_id).await.unwrap();
    assert_eq!(stored, done);
}

pub async fn list_pages_newest_first(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let mut ids = Vec::new();
    for i in 0..7 {
        clock.advance(Duration::from_secs(1));
        let job = store.claim(&request(&format!("f{i}"))).await.unwrap().job;
        if i % 2 == 0 {
            store.complete(&Fence::of(&job)).await.unwrap();
        }
        ids.push(job.job_id);
    }
    ids.reverse(); // newest first

    let mut seen = Vec::new();
    let mut query = ListQuery {
        limit: Some(3),
        ..Default::default()
    };
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.iter().map(|j| j.job_id.clone()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every job once, newest first");

    let completed = store
        .list(&ListQuery {
            status: Some(JobStatus::Completed),
            ..Default::default()
        })
        .await
        .unwrap();
    let expect: Vec<_> = ids.iter().step_by(2).cloned().collect();
    assert_eq!(
        completed
            .jobs
            .iter()
            .map(|j| j.job_id.clone())
            .collect::<Vec<_>>(),
        expect
    );
    assert!(completed.next.is_none());
    let pending = store
        .list(&ListQuery {
            status: Some(JobStatus::Pending),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.jobs.len(), 3);
    assert!(pending.jobs.iter().all(|j| j.status == JobStatus::Pending));
}

pub async fn find_stale_lists_only_stale_active_jobs(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let old = store.claim(&request("old")).await.unwrap().job;
    let done = store.claim(&request("done")).await.unwrap().job;
    store.complete(&Fence::of(&done)).await.unwrap();
    clock.advance(STALE * 2);
    let fresh = store.claim(&request("fresh")).await.unwrap().job;
    let beating = store.claim(&request("beating")).await.unwrap().job;
    clock.advance(STALE / 2);
    store.heartbeat(&Fence::of(&beating), None).await.unwrap();

    let cutoff =
        crate::clock::Clock::now(clock.as_ref()) - chrono::Duration::from_std(STALE).unwrap();
    let stale = store.find_stale(cutoff, 100).await.unwrap();
    let ids: Vec<_> = stale.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(ids, vec![old.job_id.clone()]);
    assert!(!ids.contains(&fresh.job_id));

    clock.advance(STALE + Duration::from_secs(1));
    let cutoff =
        crate::clock::Clock::now(clock.as_ref()) - chrono::Duration::from_std(STALE).unwrap();
    let stale = store.find_stale(cutoff, 100).await.unwrap();
    let ids: Vec<_> = stale.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(
        ids,
        vec![old.job_id, fresh.job_id, beating.job_id],
        "oldest first"
    );
    assert_eq!(
        store.find_stale(cutoff, 1).await.unwrap().len(),
        1,
        "limit is honoured"
    );
}

pub async fn unknown_jobs_are_not_found(store: Arc<dyn JobStore>, _clock: Arc<ManualClock>) {
    let missing = JobId::new();
    assert!(matches!(
        store.get(&missing).await,
        Err(JobStoreError::NotFound { .. })
    ));
    let fence = Fence {
        job_id: missing,
        lease: crate::domain::Lease::new(),
        attempt: 1,
    };
    assert!(matches!(
        store.heartbeat(&fence, None).await,
        Err(JobStoreError::NotFound { .. })
    ));
    assert!(store.find_active("nope/nope/x/v1").await.unwrap().is_none());
}

pub async fn a_stale_queued_job_is_taken_over_without_costing_an_attempt(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let queued = store.claim(&request("a")).await.unwrap().job;
    assert_eq!(queued.driver.as_deref(), Some("replica-a"));
    assert_eq!(queued.queued_since, Some(queued.submitted_at));
    clock.advance(STALE * 2);
    let mut req = request("a");
    req.driver = Some("replica-b".into());
    let taken = store.claim(&req).await.unwrap();
    assert_eq!(taken.outcome, ClaimOutcome::TakenOver);
    assert!(taken.owns());
    let job = taken.job;
    assert_eq!(job.job_id, queued.job_id);
    assert_eq!(job.attempt, 1, "waiting costs no attempt");
    assert_eq!(job.status, JobStatus::Pending);
    assert_ne!(job.lease, queued.lease);
    assert_eq!(job.driver.as_deref(), Some("replica-b"));
    assert_eq!(
        job.queued_since, queued.queued_since,
        "still queued since then"
    );
    assert!(job.events.iter().any(
        |e| matches!(&e.kind, EventKind::TakenOver { reason } if reason.contains("dispatch lease"))
    ));
    // The old driver is fenced off.
    assert_lease_lost(store.waiting(&Fence::of(&queued), "no worker").await);
    assert_lease_lost(store.mark_running(&Fence::of(&queued), worker()).await);
    // A running job that goes quiet costs an attempt.
    store
        .mark_running(&Fence::of(&job), worker())
        .await
        .unwrap();
    clock.advance(STALE * 2);
    let re = store.claim(&request("a")).await.unwrap();
    assert_eq!(re.outcome, ClaimOutcome::Reclaimed);
    assert_eq!(re.job.attempt, 2);
    assert!(re.job.queued_since.is_some() && re.job.worker.is_none());
}

pub async fn waiting_renews_the_dispatch_lease(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    for _ in 0..4 {
        clock.advance(STALE / 2);
        let w = store
            .waiting(&fence, "2 of at most 2 workers busy")
            .await
            .unwrap();
        assert_eq!(
            w.waiting_for.as_deref(),
            Some("2 of at most 2 workers busy")
        );
        assert_eq!(w.attempt, 1);
    }
    clock.advance(STALE / 2);
    let c = store.claim(&request("a")).await.unwrap();
    assert_eq!(c.outcome, ClaimOutcome::Attached, "renewed: not stale");
    let running = store.mark_running(&fence, worker()).await.unwrap();
    assert_eq!(running.queued_since, None);
    assert_eq!(running.waiting_for, None);
    assert_eq!(running.attempt, 1);
}

pub async fn a_claim_answers_published_instead_of_starting_work(
    store: Arc<dyn JobStore>,
    _clock: Arc<ManualClock>,
) {
    let published: &PublishedProbe = &|| Box::pin(async { Ok(true) });
    let req = request("a");
    assert!(
        store
            .claim_unless_published(&req, published)
            .await
            .unwrap()
            .is_none(),
        "published and no active job: nothing to do"
    );
    assert!(
        store
            .find_latest(&req.workflow_key)
            .await
            .unwrap()
            .is_none(),
        "no job stored"
    );
    // An active job is attached to whatever the probe says (it may be republishing).
    let job = store.claim(&req).await.unwrap().job;
    let attached = store
        .claim_unless_published(&req, published)
        .await
        .unwrap()
        .expect("attached");
    assert_eq!(attached.outcome, ClaimOutcome::Attached);
    assert_eq!(attached.job.job_id, job.job_id);
}

pub async fn a_permanent_failure_stands_until_an_operator_retries(
    store: Arc<dyn JobStore>,
    _clock: Arc<ManualClock>,
) {
    let req = request("a");
    let job = store.claim(&req).await.unwrap().job;
    let mut failure = JobFailure::new("md5 mismatch: the catalog says 0123…, the source is 4567…");
    failure.retryable = false;
    store.fail(&Fence::of(&job), failure).await.unwrap();
    for _ in 0..3 {
        let again = store.claim(&req).await.unwrap();
        assert_eq!(again.outcome, ClaimOutcome::Failed);
        assert!(!again.owns());
        assert_eq!(again.job.job_id, job.job_id, "no new job");
    }
    assert!(matches!(
        store.request_retry(&JobId::new()).await,
        Err(JobStoreError::NotFound { .. })
    ));
    let retried = store.request_retry(&job.job_id).await.unwrap();
    assert!(retried.error.as_ref().unwrap().retryable);
    assert!(
        retried
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RetryRequested))
    );
    let next = store.claim(&req).await.unwrap();
    assert_eq!(next.outcome, ClaimOutcome::Created);
    assert_ne!(next.job.job_id, job.job_id);
    assert!(matches!(
        store.request_retry(&next.job.job_id).await,
        Err(JobStoreError::WrongStatus {
            status: JobStatus::Pending,
            ..
        })
    ));
    // A failure another attempt may fix does not stand.
    let mut transient = JobFailure::new("the worker shut down");
    transient.retryable = true;
    store.fail(&Fence::of(&next.job), transient).await.unwrap();
    assert_eq!(
        store.claim(&req).await.unwrap().outcome,
        ClaimOutcome::Created
    );
}

pub async fn find_latest_names_the_newest_job(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let req = request("a");
    assert!(
        store
            .find_latest(&req.workflow_key)
            .await
            .unwrap()
            .is_none()
    );
    let mut last = None;
    for _ in 0..3 {
        let job = store.claim(&req).await.unwrap().job;
        store.complete(&Fence::of(&job)).await.unwrap();
        clock.advance(Duration::from_secs(1));
        last = Some(job.job_id);
    }
    let other = store.claim(&request("b")).await.unwrap().job;
    let latest = store.find_latest(&req.workflow_key).await.unwrap().unwrap();
    assert_eq!(Some(latest.job_id), last);
    assert_eq!(latest.status, JobStatus::Completed);
    assert_eq!(
        store
            .find_latest(&other.workflow_key)
            .await
            .unwrap()
            .unwrap()
            .job_id,
        other.job_id
    );
}

pub async fn cancel_fails_an_active_job_and_voids_its_lease(
    store: Arc<dyn JobStore>,
    _clock: Arc<ManualClock>,
) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    store.mark_running(&fence, worker()).await.unwrap();
    let cancelled = store
        .cancel(&job.job_id, "cancelled by an operator")
        .await
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Failed);
    let err = cancelled.error.unwrap();
    assert_eq!(err.message, "cancelled by an operator");
    assert!(err.retryable, "a cancel is no verdict on the file");
    assert_lease_lost(store.heartbeat(&fence, None).await);
    assert!(matches!(
        store.cancel(&job.job_id, "again").await,
        Err(JobStoreError::WrongStatus {
            status: JobStatus::Failed,
            ..
        })
    ));
    assert_eq!(
        store.claim(&request("a")).await.unwrap().outcome,
        ClaimOutcome::Created,
        "the next request prepares the file again"
    );
}

pub async fn a_requeue_runs_the_same_attempt_again(
    store: Arc<dyn JobStore>,
    _clock: Arc<ManualClock>,
) {
    let job = store.claim(&request("a")).await.unwrap().job;
    let fence = Fence::of(&job);
    store.mark_running(&fence, worker()).await.unwrap();
    let requeued = store
        .update(
            &fence,
            JobChange::Requeue {
                reason: "its task stopped: Your Spot Task was interrupted.".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(requeued.status, JobStatus::Pending);
    assert_eq!(requeued.attempt, 1, "no attempt counted");
    assert_ne!(requeued.lease, job.lease);
    assert!(requeued.worker.is_none() && requeued.queued_since.is_some());
    assert!(
        requeued.events.iter().any(
            |e| matches!(&e.kind, EventKind::Rescheduled { reason } if reason.contains("Spot"))
        )
    );
    assert_lease_lost(store.heartbeat(&fence, None).await);
}

/// A job for a file whose identifiers are as long as the rules allow is claimed, found by its
/// workflow and completed like any other.
pub async fn the_longest_identifiers_work(store: Arc<dyn JobStore>, _clock: Arc<ManualClock>) {
    let long = "L".repeat(256);
    let mut req = request(&long);
    req.dcc = Ident::parse(&"D".repeat(256)).unwrap();
    req.workflow_key = format!(
        "{}/{long}/data/samtools-bam/0123456789abcdef0123456789abcdef-v1",
        req.dcc
    );
    let claim = store.claim(&req).await.unwrap();
    assert_eq!(claim.outcome, ClaimOutcome::Created);
    let again = store.claim(&req).await.unwrap();
    assert_eq!(again.outcome, ClaimOutcome::Attached);
    assert_eq!(again.job.job_id, claim.job.job_id);
    let found = store.find_active(&req.workflow_key).await.unwrap().unwrap();
    assert_eq!(found.local_id.as_str(), long);
    let done = store.complete(&Fence::of(&claim.job)).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
}
