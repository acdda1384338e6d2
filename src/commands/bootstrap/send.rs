//! When to send Bootstrap, and when never to send it again: a pure policy
//! ([`SendPolicy`]: the answer to the last request + the time → the next
//! action) and a small driver ([`drive`]) that runs it over any sender.
//!
//! Rules:
//! - an accepted request, or AlreadyExists, ends the sending;
//! - "not ready yet" answers are retried on the retry schedule (bounded
//!   attempts, delays capped at 30 s);
//! - after a request that may have been carried out (no reply), nothing is
//!   sent for `resend_after`: etcd starting on the target is the proof it
//!   was taken; only when it does not start is another request allowed, and
//!   every such request counts against the same bounded budget;
//! - a worker, a config without an etcd CA, or any other refusal is final.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::talos::BootstrapAnswer;

/// What came back from one Bootstrap request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Accepted,
    Failed(BootstrapAnswer),
}

/// Why sending stopped without a Bootstrap taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    NotControlPlane,
    NoEtcdCa,
    Refused,
    /// Every attempt answered "not yet".
    Exhausted,
    /// Requests went unanswered and etcd never started after any of them.
    NoReply,
    Interrupted,
}

/// The policy's next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Bootstrap was taken; the text says how.
    Landed(&'static str),
    /// Watch etcd on the target until `until`; send nothing before.
    Watch {
        until: Instant,
    },
    /// Send again after this delay.
    SendAfter(Duration),
    Stop(Failure),
}

/// The send/resend policy of one bootstrap (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct SendPolicy {
    resend_after: Duration,
    delays: std::vec::IntoIter<Duration>,
    calls: u32,
    unanswered: u32,
    /// When the last request that may have landed was sent.
    last_maybe: Option<Instant>,
}

impl SendPolicy {
    /// `delays`: the retry schedule (one entry per allowed extra request).
    pub(crate) fn new(resend_after: Duration, delays: Vec<Duration>) -> Self {
        SendPolicy {
            resend_after,
            delays: delays.into_iter(),
            calls: 0,
            unanswered: 0,
            last_maybe: None,
        }
    }

    pub(crate) fn calls(&self) -> u32 {
        self.calls
    }

    /// Whether a request may go out at `now` (never within `resend_after`
    /// of one that may have landed).
    pub(crate) fn may_send(&self, now: Instant) -> bool {
        self.last_maybe
            .is_none_or(|t| now.duration_since(t) >= self.resend_after)
    }

    /// A request sent at `sent_at` got `reply`.
    pub(crate) fn on_reply(&mut self, reply: Sent, sent_at: Instant) -> Next {
        self.calls += 1;
        match reply {
            Sent::Accepted => Next::Landed("accepted"),
            Sent::Failed(BootstrapAnswer::AlreadyExists) if self.unanswered == 0 => Next::Landed(
                "etcd data already present (bootstrapped or joined before): not bootstrapping again",
            ),
            Sent::Failed(BootstrapAnswer::AlreadyExists) => Next::Landed(
                "an earlier request was accepted (its reply was lost): etcd data present",
            ),
            Sent::Failed(BootstrapAnswer::MaybeLanded) => {
                self.unanswered += 1;
                self.last_maybe = Some(sent_at);
                Next::Watch {
                    until: sent_at + self.resend_after,
                }
            }
            Sent::Failed(BootstrapAnswer::NotYet) => match self.delays.next() {
                Some(d) => Next::SendAfter(d),
                None => Next::Stop(Failure::Exhausted),
            },
            Sent::Failed(BootstrapAnswer::NotControlPlane) => Next::Stop(Failure::NotControlPlane),
            Sent::Failed(BootstrapAnswer::NoEtcdCa) => Next::Stop(Failure::NoEtcdCa),
            Sent::Failed(BootstrapAnswer::Refused) => Next::Stop(Failure::Refused),
        }
    }

    /// The watch after an unanswered request ended at `now`.
    pub(crate) fn on_watch_end(&mut self, etcd_started: bool, now: Instant) -> Next {
        if etcd_started {
            return Next::Landed("accepted (reply lost; etcd started)");
        }
        if let Some(t) = self.last_maybe
            && !self.may_send(now)
        {
            // Woken early (e.g. a short poll): keep watching.
            return Next::Watch {
                until: t + self.resend_after,
            };
        }
        match self.delays.next() {
            Some(_) => Next::SendAfter(Duration::ZERO),
            None => Next::Stop(Failure::NoReply),
        }
    }
}

/// Run `policy`: `send` makes one request, `watch(until)` watches etcd on
/// the target until then (true: it started), `note` hears every decision.
/// Returns how the Bootstrap was taken, or why sending stopped.
pub(crate) async fn drive<S, SF, W, WF>(
    policy: &mut SendPolicy,
    cancel: &CancellationToken,
    mut send: S,
    mut watch: W,
    mut note: impl FnMut(&Next, u32),
) -> Result<&'static str, Failure>
where
    S: FnMut() -> SF,
    SF: Future<Output = Sent>,
    W: FnMut(Instant) -> WF,
    WF: Future<Output = bool>,
{
    loop {
        if cancel.is_cancelled() {
            return Err(Failure::Interrupted);
        }
        let sent_at = Instant::now();
        debug_assert!(policy.may_send(sent_at));
        let mut next = policy.on_reply(send().await, sent_at);
        loop {
            note(&next, policy.calls());
            match next {
                Next::Landed(how) => return Ok(how),
                Next::Stop(f) => return Err(f),
                Next::SendAfter(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = cancel.cancelled() => return Err(Failure::Interrupted),
                    }
                    break;
                }
                Next::Watch { until } => {
                    let started = watch(until).await;
                    if cancel.is_cancelled() && !started {
                        return Err(Failure::Interrupted);
                    }
                    next = policy.on_watch_end(started, Instant::now());
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const WINDOW: Duration = Duration::from_secs(300);

    fn delays(n: usize) -> Vec<Duration> {
        vec![Duration::from_secs(2); n]
    }

    /// Drive the policy against a scripted node; returns the result and the
    /// times (seconds since start) each request went out.
    async fn run(
        script: Vec<Sent>,
        retries: usize,
        etcd_starts_at: Option<Duration>,
    ) -> (Result<&'static str, Failure>, Vec<u64>) {
        let start = Instant::now();
        let sends = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let mut policy = SendPolicy::new(WINDOW, delays(retries));
        let cancel = CancellationToken::new();
        let s2 = sends.clone();
        let result = drive(
            &mut policy,
            &cancel,
            || {
                let sends = s2.clone();
                let script = script.clone();
                async move {
                    sends.lock().unwrap().push(start.elapsed().as_secs());
                    script
                        .lock()
                        .unwrap()
                        .next()
                        .unwrap_or(Sent::Failed(BootstrapAnswer::MaybeLanded))
                }
            },
            |until| async move {
                // Poll like the real watch does, every 2 s, until `until`.
                loop {
                    if etcd_starts_at.is_some_and(|t| start.elapsed() >= t) {
                        return true;
                    }
                    if Instant::now() >= until {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            },
            |_, _| {},
        )
        .await;
        let sends = sends.lock().unwrap().clone();
        (result, sends)
    }

    #[tokio::test(start_paused = true)]
    async fn accepted_at_once_sends_once() {
        let (r, sends) = run(vec![Sent::Accepted], 4, None).await;
        assert_eq!(r, Ok("accepted"));
        assert_eq!(sends, vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn not_yet_is_retried_on_the_schedule_then_given_up() {
        let not_yet = Sent::Failed(BootstrapAnswer::NotYet);
        let (r, sends) = run(vec![not_yet, not_yet, Sent::Accepted], 4, None).await;
        assert_eq!(r, Ok("accepted"));
        assert_eq!(sends, vec![0, 2, 4]);
        let (r, sends) = run(vec![not_yet; 10], 2, None).await;
        assert_eq!(r, Err(Failure::Exhausted));
        assert_eq!(sends.len(), 3, "one request plus two retries: {sends:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_or_a_config_without_etcd_ca_is_never_retried() {
        for (answer, failure) in [
            (BootstrapAnswer::NotControlPlane, Failure::NotControlPlane),
            (BootstrapAnswer::NoEtcdCa, Failure::NoEtcdCa),
            (BootstrapAnswer::Refused, Failure::Refused),
        ] {
            let (r, sends) = run(vec![Sent::Failed(answer); 5], 4, None).await;
            assert_eq!(r, Err(failure));
            assert_eq!(sends, vec![0], "{answer:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_reply_is_never_resent_within_the_window() {
        // etcd starts 30 s after the unanswered request: no second request.
        let lost = Sent::Failed(BootstrapAnswer::MaybeLanded);
        let (r, sends) = run(vec![lost], 4, Some(Duration::from_secs(30))).await;
        assert_eq!(r, Ok("accepted (reply lost; etcd started)"));
        assert_eq!(sends, vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_requests_are_spaced_by_the_window_and_bounded() {
        let lost = Sent::Failed(BootstrapAnswer::MaybeLanded);
        let (r, sends) = run(vec![lost; 10], 2, None).await;
        assert_eq!(r, Err(Failure::NoReply));
        assert_eq!(sends.len(), 3, "{sends:?}");
        for pair in sends.windows(2) {
            assert!(pair[1] - pair[0] >= WINDOW.as_secs(), "{sends:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn already_exists_after_a_lost_reply_says_the_first_landed() {
        let lost = Sent::Failed(BootstrapAnswer::MaybeLanded);
        let exists = Sent::Failed(BootstrapAnswer::AlreadyExists);
        let (r, sends) = run(vec![lost, exists], 4, None).await;
        assert!(r.unwrap().contains("earlier request was accepted"));
        assert_eq!(sends, vec![0, 300]);
        let (r, _) = run(vec![exists], 4, None).await;
        assert!(r.unwrap().contains("already present"));
    }

    #[test]
    fn an_early_watch_end_keeps_watching() {
        let t0 = Instant::now();
        let mut p = SendPolicy::new(WINDOW, delays(3));
        assert!(matches!(
            p.on_reply(Sent::Failed(BootstrapAnswer::MaybeLanded), t0),
            Next::Watch { .. }
        ));
        assert!(!p.may_send(t0 + Duration::from_secs(10)));
        assert_eq!(
            p.on_watch_end(false, t0 + Duration::from_secs(10)),
            Next::Watch { until: t0 + WINDOW }
        );
        assert_eq!(
            p.on_watch_end(false, t0 + WINDOW),
            Next::SendAfter(Duration::ZERO)
        );
    }
}
