//! The per-node step runner: bounded concurrency, per-node isolation,
//! retries, the command deadline and Ctrl-C.
//!
//! Every node runs its own async pipeline. A failure in one node's pipeline
//! only ends that node; every node gets an outcome, including the ones that
//! never started because of Ctrl-C or the deadline. Steps that change a node
//! (`mutating`) let an attempt already on the wire finish after Ctrl-C, so a
//! node is never left guessing whether it got its config; steps that only
//! observe are cut at once.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::events::{Event, EventSink};
use super::outcome::{
    ErrorKind, NodeOutcome, NodeRef, NodeStatus, StepError, StepRecord, StepStatus,
};
use super::retry::RetryPolicy;

/// Run-wide settings shared by every node's pipeline.
#[derive(Clone)]
pub(crate) struct RunContext {
    pub parallel: usize,
    /// The command's deadline (`--timeout`).
    pub deadline: Option<Instant>,
    /// Fired on Ctrl-C: no new step or attempt starts after it.
    pub cancel: CancellationToken,
    pub retry: RetryPolicy,
    pub sink: Arc<dyn EventSink>,
}

impl RunContext {
    #[cfg(test)]
    pub(crate) fn new(sink: Arc<dyn EventSink>) -> Self {
        RunContext {
            parallel: 16,
            deadline: None,
            cancel: CancellationToken::new(),
            retry: RetryPolicy::default(),
            sink,
        }
    }

    /// Time left before the deadline (None = no deadline).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(crate) fn emit(&self, event: Event) {
        self.sink.emit(event);
    }
}

/// How a node's pipeline ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    Ok(String),
    Skipped(String),
    Warning(String),
}

/// Handle a node's pipeline uses to run steps and record facts.
pub(crate) struct NodeCtx {
    pub node: NodeRef,
    run: RunContext,
    started: Instant,
    record: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    steps: Vec<StepRecord>,
    warnings: Vec<String>,
    facts: serde_json::Map<String, serde_json::Value>,
    /// The latest progress message: what an interrupted or timed-out node
    /// was last seen doing.
    last_seen: Option<String>,
}

/// Whether Ctrl-C may cut a step's attempt in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Observing only: cut immediately.
    Immediately,
    /// Changes the node: let the attempt on the wire finish.
    AfterAttempt,
}

impl NodeCtx {
    fn new(node: NodeRef, run: RunContext) -> Self {
        NodeCtx {
            node,
            run,
            started: Instant::now(),
            record: Mutex::new(Recorded::default()),
        }
    }

    /// The run this node belongs to.
    pub(crate) fn run(&self) -> &RunContext {
        &self.run
    }

    /// True once Ctrl-C was pressed.
    pub(crate) fn cancelled(&self) -> bool {
        self.run.cancel.is_cancelled()
    }

    /// Record a fact for the report (`mode`, `stage`, `version`, ...).
    pub(crate) fn fact(&self, key: &str, value: impl serde::Serialize) {
        if let (Ok(v), Ok(mut r)) = (serde_json::to_value(value), self.record.lock()) {
            r.facts.insert(key.to_string(), v);
        }
    }

    /// A warning about this node (shown at once and in the report).
    pub(crate) fn warn(&self, message: impl Into<String>) {
        let message = message.into();
        self.run.emit(Event::Warning {
            node: Some(self.node.node.clone()),
            message: message.clone(),
        });
        if let Ok(mut r) = self.record.lock() {
            r.warnings.push(message);
        }
    }

    /// Progress message within a step (stage changes while waiting, ...).
    pub(crate) fn progress(&self, step: &str, message: impl Into<String>) {
        let message = message.into();
        if let Ok(mut r) = self.record.lock() {
            r.last_seen = Some(message.clone());
        }
        self.run.emit(Event::Progress {
            node: self.node.clone(),
            step: step.to_string(),
            message,
        });
    }

    /// Record a step that needed no work, without running anything.
    pub(crate) fn skip_step(&self, name: &str, detail: impl Into<String>) {
        let detail = detail.into();
        self.finish_step(name, StepStatus::Skipped, 0, Duration::ZERO, Some(detail));
    }

    /// Run an observing step with the run's retry policy.
    pub(crate) async fn step<T, F, Fut>(&self, name: &str, op: F) -> Result<T, StepError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let policy = self.run.retry.clone();
        self.run_step(name, &policy, Cut::Immediately, op).await
    }

    /// Run an observing step with its own retry policy.
    pub(crate) async fn step_with<T, F, Fut>(
        &self,
        name: &str,
        policy: &RetryPolicy,
        op: F,
    ) -> Result<T, StepError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        self.run_step(name, policy, Cut::Immediately, op).await
    }

    /// Run a step that changes the node: an attempt already sent is allowed
    /// to finish after Ctrl-C (bounded by the RPC timeout inside `op`).
    pub(crate) async fn mutating_step<T, F, Fut>(
        &self,
        name: &str,
        policy: &RetryPolicy,
        op: F,
    ) -> Result<T, StepError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        self.run_step(name, policy, Cut::AfterAttempt, op).await
    }

    async fn run_step<T, F, Fut>(
        &self,
        name: &str,
        policy: &RetryPolicy,
        cut: Cut,
        mut op: F,
    ) -> Result<T, StepError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let started = Instant::now();
        self.run.emit(Event::StepStarted {
            node: self.node.clone(),
            step: name.to_string(),
        });
        let mut delays = policy.delays();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(err) = self.stop_reason() {
                return Err(self.fail_step(name, attempt - 1, started, err));
            }
            let result = self.attempt(cut, op(attempt)).await;
            match result {
                Ok(v) => {
                    self.finish_step(name, StepStatus::Ok, attempt, started.elapsed(), None);
                    return Ok(v);
                }
                Err(err) if err.is_retryable() => {
                    let Some(delay) = delays.next() else {
                        let msg = if attempt > 1 {
                            format!("{} (gave up after {attempt} attempts)", err.message)
                        } else {
                            err.message.clone()
                        };
                        let err = StepError {
                            message: msg,
                            ..err.into_kind(ErrorKind::Permanent)
                        };
                        return Err(self.fail_step(name, attempt, started, err));
                    };
                    // Do not sleep past the deadline: report the real error instead.
                    if self.run.remaining().is_some_and(|r| r <= delay) {
                        let err = StepError {
                            message: format!(
                                "{} (deadline reached after {attempt} attempts)",
                                err.message
                            ),
                            ..err.into_kind(ErrorKind::Deadline)
                        };
                        return Err(self.fail_step(name, attempt, started, err));
                    }
                    self.run.emit(Event::StepRetry {
                        node: self.node.clone(),
                        step: name.to_string(),
                        attempt,
                        delay_ms: delay.as_millis() as u64,
                        error: err.message.clone(),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.run.cancel.cancelled() => {
                            let err = StepError::new(ErrorKind::Interrupted, format!("interrupted while waiting to retry ({})", err.message));
                            return Err(self.fail_step(name, attempt, started, err));
                        }
                    }
                }
                Err(err) => return Err(self.fail_step(name, attempt, started, err)),
            }
        }
    }

    /// Run one attempt, bounded by the deadline and (for observing steps) Ctrl-C.
    async fn attempt<T>(
        &self,
        cut: Cut,
        fut: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, StepError> {
        let deadline = async {
            match self.run.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cancel = async {
            match cut {
                Cut::Immediately => self.run.cancel.cancelled().await,
                Cut::AfterAttempt => std::future::pending().await,
            }
        };
        tokio::select! {
            r = fut => r,
            _ = deadline => Err(StepError::new(ErrorKind::Deadline, "deadline reached (--timeout)")),
            _ = cancel => Err(StepError::new(ErrorKind::Interrupted, "interrupted")),
        }
    }

    fn stop_reason(&self) -> Option<StepError> {
        if self.run.cancel.is_cancelled() {
            Some(StepError::new(
                ErrorKind::Interrupted,
                "interrupted before this step",
            ))
        } else if self.run.deadline_passed() {
            Some(StepError::new(
                ErrorKind::Deadline,
                "deadline reached (--timeout) before this step",
            ))
        } else {
            None
        }
    }

    fn fail_step(&self, name: &str, attempts: u32, started: Instant, err: StepError) -> StepError {
        let status = if err.kind == ErrorKind::Interrupted {
            StepStatus::Interrupted
        } else {
            StepStatus::Failed
        };
        self.finish_step(
            name,
            status,
            attempts,
            started.elapsed(),
            Some(err.message.clone()),
        );
        err
    }

    fn finish_step(
        &self,
        name: &str,
        status: StepStatus,
        attempts: u32,
        elapsed: Duration,
        detail: Option<String>,
    ) {
        let rec = StepRecord {
            name: name.to_string(),
            status,
            attempts,
            duration_ms: elapsed.as_millis() as u64,
            detail: detail.clone(),
        };
        self.run.emit(Event::StepFinished {
            node: self.node.clone(),
            step: name.to_string(),
            status,
            attempts,
            duration_ms: rec.duration_ms,
            detail,
        });
        if let Ok(mut r) = self.record.lock() {
            r.steps.push(rec);
        }
    }

    /// Manual steps, for pipelines with their own retry rules (bootstrap):
    /// announce the start ...
    pub(crate) fn emit_step_start(&self, name: &str) {
        self.run.emit(Event::StepStarted {
            node: self.node.clone(),
            step: name.to_string(),
        });
    }

    /// ... say a retry is coming ...
    pub(crate) fn retry_notice(&self, name: &str, attempt: u32, delay: Duration, error: &str) {
        self.run.emit(Event::StepRetry {
            node: self.node.clone(),
            step: name.to_string(),
            attempt,
            delay_ms: delay.as_millis() as u64,
            error: error.to_string(),
        });
    }

    /// ... and end it, successfully ...
    pub(crate) fn end_step_ok(
        &self,
        name: &str,
        attempts: u32,
        started: Instant,
        detail: Option<String>,
    ) {
        self.finish_step(name, StepStatus::Ok, attempts, started.elapsed(), detail);
    }

    /// ... or with an error (returned for `?`).
    pub(crate) fn end_step(
        &self,
        name: &str,
        attempts: u32,
        started: Instant,
        err: StepError,
    ) -> StepError {
        self.fail_step(name, attempts, started, err)
    }

    /// Mark the last recorded step with a different status/detail (e.g. a
    /// step that succeeded at the RPC level but is a warning for the operator).
    pub(crate) fn amend_last_step(&self, status: StepStatus, detail: impl Into<String>) {
        if let Ok(mut r) = self.record.lock()
            && let Some(last) = r.steps.last_mut()
        {
            last.status = status;
            last.detail = Some(detail.into());
        }
    }

    fn into_outcome(self, result: Result<Done, StepError>) -> NodeOutcome {
        let rec = self.record.into_inner().unwrap_or_default();
        let attempts = rec.steps.iter().map(|s| s.attempts).max().unwrap_or(0);
        let (status, summary, error) = match result {
            Ok(Done::Ok(s)) => (NodeStatus::Ok, s, None),
            Ok(Done::Skipped(s)) => (NodeStatus::Skipped, s, None),
            Ok(Done::Warning(s)) => (NodeStatus::Warning, s, None),
            Err(e) => {
                let status = match e.kind {
                    ErrorKind::Interrupted => NodeStatus::Interrupted,
                    ErrorKind::Deadline => NodeStatus::TimedOut,
                    _ => NodeStatus::Failed,
                };
                let step = rec.steps.last().map(|s| s.name.clone());
                let summary = stop_summary(status, step.as_deref());
                (status, summary, Some(e))
            }
        };
        // A node stopped from outside (Ctrl-C, deadline) keeps what it was
        // last seen doing ("installing").
        let mut facts = rec.facts;
        if matches!(status, NodeStatus::Interrupted | NodeStatus::TimedOut)
            && let Some(seen) = rec.last_seen
        {
            facts.insert(LAST_SEEN.into(), serde_json::Value::String(seen));
        }
        // The hint is reported once, on the outcome (not again inside the error).
        let mut error = error;
        let hint = error.as_mut().and_then(|e| e.hint.take());
        NodeOutcome {
            node: self.node,
            status,
            summary,
            attempts,
            duration_ms: self.started.elapsed().as_millis() as u64,
            steps: rec.steps,
            error,
            hint,
            warnings: rec.warnings,
            facts,
        }
    }
}

/// The fact naming the last state an interrupted or timed-out node was
/// seen in ("installing"): shown with its summary, kept in the report.
pub(crate) const LAST_SEEN: &str = "last_seen";

/// One line for a node that did not reach its goal: the step it was in.
fn stop_summary(status: NodeStatus, step: Option<&str>) -> String {
    match (status, step) {
        (NodeStatus::Interrupted, Some(step)) => format!("interrupted during {step}"),
        (NodeStatus::Interrupted, None) => "interrupted before starting".to_string(),
        (NodeStatus::TimedOut, Some(step)) => format!("deadline reached during {step}"),
        (NodeStatus::TimedOut, None) => "deadline reached before starting".to_string(),
        (_, Some(step)) => format!("{step} failed"),
        (_, None) => "failed".to_string(),
    }
}

/// Run `pipeline` for every node with at most `run.parallel` at once.
///
/// Outcomes come back in the order of `nodes`. Nodes that had not started
/// when Ctrl-C or the deadline hit are reported as interrupted / timed out
/// with no steps.
pub(crate) async fn run_nodes<T, F, Fut>(
    run: &RunContext,
    nodes: Vec<(NodeRef, T)>,
    pipeline: F,
) -> Vec<NodeOutcome>
where
    T: Send + 'static,
    F: Fn(Arc<NodeCtx>, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Done, StepError>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(run.parallel.max(1)));
    let pipeline = Arc::new(pipeline);
    let mut handles = Vec::with_capacity(nodes.len());
    for (node, item) in nodes {
        let run = run.clone();
        let permits = permits.clone();
        let pipeline = pipeline.clone();
        handles.push(tokio::spawn(async move {
            let ctx = Arc::new(NodeCtx::new(node, run.clone()));
            let result = tokio::select! {
                permit = permits.acquire_owned() => {
                    match permit {
                        Ok(_permit) => {
                            if let Some(err) = ctx.stop_reason() {
                                Err(err)
                            } else {
                                // Boxed: the pipeline's state (kilobytes)
                                // exists only while it runs, not in every
                                // queued node's task.
                                Box::pin(pipeline(ctx.clone(), item)).await
                            }
                        }
                        Err(_) => Err(StepError::permanent("internal: concurrency limiter closed")),
                    }
                }
                _ = run.cancel.cancelled() => Err(StepError::new(ErrorKind::Interrupted, "interrupted before starting")),
                _ = async {
                    match run.deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => Err(StepError::new(ErrorKind::Deadline, "deadline reached before starting")),
            };
            let ctx = match Arc::try_unwrap(ctx) {
                Ok(ctx) => ctx,
                // A pipeline that leaked its context into a spawned task:
                // rebuild from what was recorded so far.
                Err(shared) => NodeCtx {
                    node: shared.node.clone(),
                    run: shared.run.clone(),
                    started: shared.started,
                    record: Mutex::new(
                        shared
                            .record
                            .lock()
                            .map(|r| Recorded {
                                steps: r.steps.clone(),
                                warnings: r.warnings.clone(),
                                facts: r.facts.clone(),
                                last_seen: r.last_seen.clone(),
                            })
                            .unwrap_or_default(),
                    ),
                },
            };
            let outcome = ctx.into_outcome(result);
            run.emit(Event::NodeFinished {
                outcome: Box::new(outcome.clone()),
            });
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                // A panicking pipeline is a bug; keep the others' results.
                tracing::error!("node pipeline panicked: {e}");
            }
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {

    #[test]
    fn stopped_nodes_keep_the_last_state_seen() {
        assert_eq!(
            stop_summary(NodeStatus::Interrupted, Some("verify")),
            "interrupted during verify"
        );
        assert_eq!(
            stop_summary(NodeStatus::Failed, Some("apply")),
            "apply failed"
        );
        let ctx = |_: ()| {
            NodeCtx::new(
                NodeRef::new("cp1", IpAddr::V4(Ipv4Addr::LOCALHOST), None),
                RunContext::new(Arc::new(RecordingSink::default())),
            )
        };
        let stopped = ctx(());
        stopped.progress("verify", "installing");
        let stopped =
            stopped.into_outcome(Err(StepError::new(ErrorKind::Interrupted, "interrupted")));
        assert_eq!(stopped.facts[LAST_SEEN], "installing");
        let late = ctx(());
        late.progress("verify", "booting");
        let late = late.into_outcome(Err(StepError::new(ErrorKind::Deadline, "deadline")));
        assert_eq!(late.facts[LAST_SEEN], "booting");
        let failed = ctx(());
        failed.progress("verify", "installing");
        let failed = failed.into_outcome(Err(StepError::permanent("boom")));
        assert!(!failed.facts.contains_key(LAST_SEEN));
    }
    use super::*;
    use crate::pipeline::events::RecordingSink;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn node(i: u8) -> NodeRef {
        NodeRef::new(
            format!("n{i}"),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)),
            None,
        )
    }

    fn run_ctx() -> (RunContext, Arc<RecordingSink>) {
        let sink = Arc::new(RecordingSink::default());
        let mut run = RunContext::new(sink.clone());
        run.retry = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        (run, sink)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_and_counted() {
        let (run, sink) = run_ctx();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let out = run_nodes(&run, vec![(node(1), ())], move |ctx, ()| {
            let c = c.clone();
            async move {
                ctx.step("apply", |_| {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < 2 {
                            Err(StepError::retryable("Unavailable"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await?;
                Ok(Done::Ok("applied".into()))
            }
        })
        .await;
        assert_eq!(out[0].status, NodeStatus::Ok);
        assert_eq!(out[0].attempts, 3);
        let retries = sink
            .events()
            .iter()
            .filter(|e| matches!(e, Event::StepRetry { .. }))
            .count();
        assert_eq!(retries, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let (run, _) = run_ctx();
        let out = run_nodes(&run, vec![(node(1), ())], |ctx, ()| async move {
            ctx.step("apply", |_| async {
                Err::<(), _>(StepError::new(ErrorKind::Trust, "unknown CA"))
            })
            .await?;
            Ok(Done::Ok("x".into()))
        })
        .await;
        assert_eq!(out[0].status, NodeStatus::Failed);
        assert_eq!(out[0].attempts, 1);
        assert_eq!(out[0].error.as_ref().unwrap().kind, ErrorKind::Trust);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded() {
        let (run, _) = run_ctx();
        let out = run_nodes(&run, vec![(node(1), ())], |ctx, ()| async move {
            ctx.step("apply", |_| async {
                Err::<(), _>(StepError::retryable("refused"))
            })
            .await?;
            Ok(Done::Ok("x".into()))
        })
        .await;
        assert_eq!(out[0].status, NodeStatus::Failed);
        assert_eq!(out[0].attempts, 4);
        assert!(
            out[0]
                .error
                .as_ref()
                .unwrap()
                .message
                .contains("gave up after 4 attempts")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_failure_does_not_stop_the_others() {
        let (run, _) = run_ctx();
        let nodes = (1..=5).map(|i| (node(i), i)).collect();
        let out = run_nodes(&run, nodes, |ctx, i| async move {
            ctx.step("work", |_| async move {
                if i == 3 {
                    Err(StepError::permanent("broken"))
                } else {
                    Ok(())
                }
            })
            .await?;
            Ok(Done::Ok("done".into()))
        })
        .await;
        let statuses: Vec<_> = out.iter().map(|o| o.status).collect();
        assert_eq!(
            statuses,
            vec![
                NodeStatus::Ok,
                NodeStatus::Ok,
                NodeStatus::Failed,
                NodeStatus::Ok,
                NodeStatus::Ok
            ]
        );
        assert_eq!(out[2].node.node, "n3");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let (mut run, _) = run_ctx();
        run.parallel = 2;
        let inflight = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let (i2, p2) = (inflight.clone(), peak.clone());
        let nodes = (1..=6).map(|i| (node(i), ())).collect();
        let out = run_nodes(&run, nodes, move |_ctx, ()| {
            let (inflight, peak) = (i2.clone(), p2.clone());
            async move {
                let now = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                inflight.fetch_sub(1, Ordering::SeqCst);
                Ok(Done::Ok("ok".into()))
            }
        })
        .await;
        assert_eq!(out.len(), 6);
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_new_work_and_reports_every_node() {
        let (mut run, _) = run_ctx();
        run.parallel = 1;
        let cancel = run.cancel.clone();
        let nodes = (1..=3).map(|i| (node(i), i)).collect();
        let out = run_nodes(&run, nodes, move |ctx, i| {
            let cancel = cancel.clone();
            async move {
                ctx.step("wait", |_| {
                    let cancel = cancel.clone();
                    async move {
                        if i == 1 {
                            cancel.cancel();
                        }
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        Ok(())
                    }
                })
                .await?;
                Ok(Done::Ok("ok".into()))
            }
        })
        .await;
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.status == NodeStatus::Interrupted));
        assert_eq!(out[0].last_step(), Some("wait"));
        assert_eq!(out[1].steps.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn mutating_attempt_finishes_after_cancel() {
        let (run, _) = run_ctx();
        let cancel = run.cancel.clone();
        let out = run_nodes(&run, vec![(node(1), ())], move |ctx, ()| {
            let cancel = cancel.clone();
            async move {
                let policy = RetryPolicy::once();
                ctx.mutating_step("apply", &policy, |_| {
                    let cancel = cancel.clone();
                    async move {
                        cancel.cancel();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(())
                    }
                })
                .await?;
                // The next step must not start.
                ctx.step("verify", |_| async { Ok(()) }).await?;
                Ok(Done::Ok("ok".into()))
            }
        })
        .await;
        assert_eq!(out[0].steps[0].status, StepStatus::Ok);
        assert_eq!(out[0].status, NodeStatus::Interrupted);
        assert_eq!(out[0].steps.len(), 2);
        assert_eq!(out[0].steps[1].status, StepStatus::Interrupted);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_ends_waiting_steps() {
        let (mut run, _) = run_ctx();
        run.deadline = Some(Instant::now() + Duration::from_millis(500));
        let out = run_nodes(&run, vec![(node(1), ())], |ctx, ()| async move {
            ctx.step("wait", |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })
            .await?;
            Ok(Done::Ok("ok".into()))
        })
        .await;
        assert_eq!(out[0].status, NodeStatus::TimedOut);
    }
}
