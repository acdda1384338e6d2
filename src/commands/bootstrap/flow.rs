//! The steps of `talstrap bootstrap` on its one target, each a pipeline step:
//! the fail-closed guard, the connection to the target, the send under the
//! cluster lock, the etcd waits, the one-cluster check and the kubeconfig.
//! The decisions are in `guard` and `send`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::pipeline::{ErrorKind, NodeCtx, RetryPolicy, StepError};
use crate::talos::{ErrorClass, NodeClient, ServiceStatus, bootstrap_answer};

use crate::commands::bootstrap::cluster_lock::{self, LockError};
use crate::commands::bootstrap::guard::{Verdict, count_clusters, decide, second_cluster_message};
use crate::commands::bootstrap::kubeconfig_file::{self, KubeconfigPlan};
use crate::commands::bootstrap::send::{Failure, Next, SendPolicy, Sent, drive};
use crate::commands::plan::{Access, Endpoint, PlannedNode};
use crate::ops::cluster::{EtcdView, SecondLook, etcd_view, etcd_views, second_look};
use crate::ops::node::talos_err;
use crate::ops::secret_file::write_secret_file;

/// Settings of the bootstrap pipeline.
#[derive(Clone, Debug)]
pub(crate) struct BootstrapPolicy {
    pub etcd_timeout: Duration,
    pub wait_members: bool,
    pub kubeconfig: Option<KubeconfigPlan>,
    pub poll_interval: Duration,
    pub resend_after: Duration,
    pub retry: RetryPolicy,
    /// `--allow-unreachable-control-planes`.
    pub allow_unasked: bool,
    /// How long to wait (looking again) before sending: zero for the first
    /// control plane, a settle window per rank for the others.
    pub settle: Duration,
    /// The cluster identity for the local lock (None: no talosconfig CA).
    pub lock_key: Option<String>,
    /// The target's machine config file, for errors about its content.
    pub target_config: Option<std::path::PathBuf>,
}

/// A control plane: where to dial it, and every address it has (etcd
/// members are matched to it by these).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub ep: Endpoint,
    pub addresses: Vec<IpAddr>,
}

impl Target {
    pub(crate) fn of(n: &PlannedNode) -> Target {
        Target {
            ep: n.endpoint(),
            addresses: n.entry.addresses.clone(),
        }
    }

    pub(crate) fn bare(ep: Endpoint) -> Target {
        Target {
            addresses: vec![ep.node.ip],
            ep,
        }
    }
}

fn endpoints(set: &[Target]) -> Vec<Endpoint> {
    set.iter().map(|t| t.ep.clone()).collect()
}

/// One guard round, recorded as the `guard` fact.
async fn guard_round(access: &Access, guard_set: &[Target], ctx: &NodeCtx) -> Vec<EtcdView> {
    let views = etcd_views(access, &endpoints(guard_set)).await;
    ctx.fact("guard", &views);
    views
}

/// Ask every control plane about etcd, again on the retry schedule while
/// some cannot be asked; fail closed when they still cannot.
pub(crate) async fn guard_until_answered(
    ctx: &Arc<NodeCtx>,
    step: &str,
    access: &Access,
    (guard_set, target): (&[Target], IpAddr),
    s: &BootstrapPolicy,
) -> Result<Verdict, StepError> {
    ctx.step_with(step, &RetryPolicy::once(), |_| async {
        let mut delays = s.retry.delays();
        loop {
            let views = guard_round(access, guard_set, ctx).await;
            let verdict = decide(&views, target, s.allow_unasked);
            let Verdict::Refuse { unasked } = &verdict else {
                if let Verdict::Send { unasked } = &verdict
                    && !unasked.is_empty()
                {
                    ctx.warn(format!(
                        "--allow-unreachable-control-planes: bootstrapping although {} could not be asked about etcd; if one of them has etcd, this makes a second etcd cluster",
                        unasked.join(", ")
                    ));
                }
                return Ok(verdict);
            };
            let delay = delays.next().filter(|_| !ctx.cancelled());
            let Some(delay) = delay else {
                return Err(refusal(unasked));
            };
            ctx.progress(
                step,
                format!("cannot ask {} about etcd yet; asking again", unasked.join(", ")),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ctx.run().cancel.cancelled() => {}
            }
        }
    })
    .await
}

fn refusal(unasked: &[String]) -> StepError {
    StepError::permanent(format!(
        "not bootstrapping: {} could not be asked about etcd, and any of them may already run it (a Bootstrap now could make a second etcd cluster)",
        unasked.join(", ")
    ))
    .with_hint(
        "bring those control planes up (or fix their trust: talosconfig and CA), then run bootstrap again; \
         if they are wiped or gone for good, --allow-unreachable-control-planes bootstraps without them, at that risk",
    )
}

/// mTLS to the bootstrap target, retried while it is down or installing.
/// A target still in maintenance mode (no config applied) stops at the
/// second look (the first may be the moment right after an apply).
pub(crate) async fn connect_target(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    target: &Target,
) -> Result<NodeClient, StepError> {
    let tls = access
        .secure
        .clone()
        .ok_or_else(|| StepError::new(ErrorKind::Input, "no talosconfig"))?;
    let ep = &target.ep;
    let seen = AtomicBool::new(false);
    ctx.step("connect", |_| {
        let tls = tls.clone();
        let seen = &seen;
        async move {
            match NodeClient::connect_secure(ep.addr, tls, &access.timeouts).await {
                Ok(c) => Ok(c),
                // A maintenance-mode node's certificate does not chain to
                // the talosconfig CA either; tell the two apart.
                Err(e) if e.class() == ErrorClass::Trust => match second_look(access, ep).await {
                    Some(SecondLook::Maintenance) => {
                        let again = seen.swap(true, Ordering::SeqCst);
                        Err(maintenance_error(&ep.node.node, again))
                    }
                    Some(why) => Err(StepError::retryable(format!(
                        "{} {}",
                        ep.node.node,
                        why.describe()
                    ))),
                    None => Err(talos_err(e)),
                },
                Err(e) => Err(talos_err(e)),
            }
        }
    })
    .await
}

fn maintenance_error(node: &str, final_: bool) -> StepError {
    let msg = format!(
        "{node} is in maintenance mode: its machine config is not applied, so there is nothing to bootstrap yet"
    );
    let err = if final_ {
        StepError::permanent(msg)
    } else {
        StepError::retryable(msg)
    };
    err.with_hint("apply its machine config first (talstrap apply --wait), then bootstrap")
}

/// From the last look to etcd healthy, holding the cluster lock: wait the
/// settle window (looking again), take the lock, ask every control plane
/// once more, send, wait for etcd. Returns `Bootstrapped` when the last
/// look found etcd (nothing sent), else `Send` (sent, etcd healthy).
pub(crate) async fn send_under_lock(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    client: &NodeClient,
    target: &Target,
    guard_set: &[Target],
    s: &BootstrapPolicy,
) -> Result<Verdict, StepError> {
    if !s.settle.is_zero()
        && let Some(found) = settle(ctx, access, guard_set, s).await?
    {
        return Ok(found);
    }
    let _lock = match &s.lock_key {
        Some(key) => Some(take_lock(ctx, key, &target.ep).await?),
        None => None,
    };
    let verdict = guard_until_answered(
        ctx,
        "guard-recheck",
        access,
        (guard_set, target.ep.node.ip),
        s,
    )
    .await?;
    if !matches!(verdict, Verdict::Send { .. }) {
        return Ok(verdict);
    }
    send_bootstrap(ctx, client, s).await?;
    wait_etcd_healthy(ctx, client, s).await?;
    Ok(verdict)
}

/// A target that is not the first control plane waits `s.settle`, looking
/// every poll: an earlier-ranked run's bootstrap shows up as etcd.
async fn settle(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    guard_set: &[Target],
    s: &BootstrapPolicy,
) -> Result<Option<Verdict>, StepError> {
    let until = Instant::now() + s.settle;
    ctx.progress(
        "guard",
        format!(
            "not the first control plane: watching {} for a bootstrap elsewhere before sending",
            crate::duration::format_duration(s.settle)
        ),
    );
    while Instant::now() < until {
        if ctx.cancelled() {
            return Err(StepError::new(
                ErrorKind::Interrupted,
                "interrupted before Bootstrap was sent",
            ));
        }
        let views = guard_round(access, guard_set, ctx).await;
        if let v @ Verdict::Bootstrapped { .. } = decide(&views, IpAddr::from([0, 0, 0, 0]), true) {
            return Ok(Some(v));
        }
        tokio::time::sleep(s.poll_interval.max(Duration::from_millis(50))).await;
    }
    Ok(None)
}

async fn take_lock(
    ctx: &Arc<NodeCtx>,
    key: &str,
    ep: &Endpoint,
) -> Result<cluster_lock::ClusterLock, StepError> {
    let note = format!(
        "pid {}, bootstrapping {} ({})",
        std::process::id(),
        ep.node.node,
        ep.node.ip
    );
    let dir = cluster_lock::runtime_dir();
    cluster_lock::acquire(&dir, key, &note, &ctx.run().cancel, |holder| {
        ctx.progress(
            "guard",
            format!(
                "another bootstrap of this cluster runs on this machine ({holder}): waiting for it"
            ),
        )
    })
    .await
    .map_err(|e| match e {
        LockError::Cancelled => StepError::new(
            ErrorKind::Interrupted,
            "interrupted before Bootstrap was sent",
        ),
        LockError::Unusable(why) => StepError::permanent(format!(
            "cannot take the bootstrap lock of this cluster: {why}"
        ))
        .with_hint("set TALSTRAP_RUNTIME_DIR to a private directory this user can write"),
    })
}

/// Send Bootstrap under [`SendPolicy`]; Ok once a request was taken.
async fn send_bootstrap(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    s: &BootstrapPolicy,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut policy = SendPolicy::new(s.resend_after, s.retry.delays().collect());
    let last_error = Mutex::new(String::new());
    ctx.emit_step_start("bootstrap");
    let result = drive(
        &mut policy,
        &ctx.run().cancel,
        || async {
            match client.bootstrap().await {
                Ok(()) => Sent::Accepted,
                Err(e) => {
                    if let Ok(mut l) = last_error.lock() {
                        *l = e.to_string();
                    }
                    Sent::Failed(bootstrap_answer(&e))
                }
            }
        },
        |until| etcd_starts_until(client, until, s.poll_interval, ctx),
        |next, calls| {
            ctx.fact("bootstrap_calls", calls);
            let last = last_error.lock().map(|l| l.clone()).unwrap_or_default();
            note(ctx, next, s, calls, &last)
        },
    )
    .await;
    let calls = policy.calls();
    match result {
        Ok(how) => {
            ctx.progress("bootstrap", format!("Bootstrap {how}; waiting for etcd"));
            ctx.end_step_ok("bootstrap", calls, started, Some(how.into()));
            Ok(())
        }
        Err(f) => {
            let last = last_error.lock().map(|l| l.clone()).unwrap_or_default();
            Err(ctx.end_step(
                "bootstrap",
                calls,
                started,
                send_failure(f, &last, calls, s),
            ))
        }
    }
}

fn note(ctx: &NodeCtx, next: &Next, s: &BootstrapPolicy, calls: u32, last: &str) {
    match next {
        Next::Watch { .. } => ctx.progress(
            "bootstrap",
            format!(
                "no reply; the request may have been accepted: watching etcd, no resend for {}",
                crate::duration::format_duration(s.resend_after)
            ),
        ),
        Next::SendAfter(d) if d.is_zero() => {
            ctx.progress("bootstrap", "etcd did not start: sending Bootstrap again")
        }
        Next::SendAfter(d) => ctx.retry_notice("bootstrap", calls, *d, last),
        Next::Landed(_) | Next::Stop(_) => {}
    }
}

fn send_failure(f: Failure, last: &str, calls: u32, s: &BootstrapPolicy) -> StepError {
    match f {
        Failure::NotControlPlane => StepError::permanent(format!(
            "the node answers that it is not a control plane ({last}); nothing was bootstrapped"
        ))
        .with_hint("bootstrap a control plane: check controlPlane: true in talconfig.yaml and the node's machine.type"),
        Failure::NoEtcdCa => StepError::new(
            ErrorKind::Input,
            format!(
                "the node's machine config has no etcd CA (cluster.etcd.ca){}: {last}",
                s.target_config
                    .as_ref()
                    .map(|p| format!(" (applied from {})", p.display()))
                    .unwrap_or_default()
            ),
        )
        .with_hint("regenerate the control plane config with the cluster secrets (talhelper genconfig / talosctl gen config), apply it, then bootstrap"),
        Failure::Refused => StepError::permanent(format!("Bootstrap refused: {last}")),
        Failure::Exhausted => StepError::permanent(format!(
            "{last} (gave up after {calls} attempts)"
        )),
        Failure::NoReply => StepError::permanent(format!(
            "no reply to {calls} Bootstrap requests and etcd did not start within {} of any of them (last: {last})",
            crate::duration::format_duration(s.resend_after)
        ))
        .with_hint("the node takes requests but does not answer: check its console and `talosctl -n <ip> dmesg`; run bootstrap again once it answers (the cluster-wide guard prevents a second etcd)"),
        Failure::Interrupted => StepError::new(
            ErrorKind::Interrupted,
            "interrupted before Bootstrap was sent",
        ),
    }
}

/// Watch for etcd starting on the target until `until` (or Ctrl-C).
async fn etcd_starts_until(
    client: &NodeClient,
    until: Instant,
    poll: Duration,
    ctx: &NodeCtx,
) -> bool {
    while Instant::now() < until && !ctx.cancelled() {
        if let Ok(services) = client.service_list().await
            && services
                .iter()
                .any(|s| s.id == "etcd" && (s.state == "Running" || s.state == "Starting"))
        {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = ctx.run().cancel.cancelled() => {}
        }
    }
    false
}

fn last_events(svc: Option<&ServiceStatus>) -> String {
    let Some(svc) = svc else {
        return "no etcd service reported".into();
    };
    let events: Vec<String> = svc
        .events
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|e| format!("{}: {}", e.state, e.msg))
        .collect();
    let health = match svc.healthy {
        Some(true) => "healthy".to_string(),
        Some(false) => format!("unhealthy ({})", svc.last_message),
        None => "health unknown".to_string(),
    };
    format!(
        "etcd {} ({health}); last events: {}",
        svc.state,
        events.join(" | ")
    )
}

/// The node stopped answering during a wait: since when, and why.
#[derive(Debug, Clone)]
pub(crate) struct Silence {
    pub since: Instant,
    pub why: String,
}

/// Why the etcd wait ended without a healthy etcd. A node that stopped
/// answering and never answered again is reported as down, with what it
/// said last only as history: its last state is not its state now.
pub(crate) fn etcd_wait_failure(
    node: &str,
    timeout: Duration,
    last: Option<&ServiceStatus>,
    silence: Option<(&Silence, Instant)>,
) -> StepError {
    let timeout = crate::duration::format_duration(timeout);
    match silence {
        Some((s, now)) => {
            let before = match last {
                Some(svc) => format!(
                    "before that, etcd was {}{}",
                    svc.state,
                    if svc.healthy == Some(true) { ", healthy" } else { ", not yet healthy" }
                ),
                None => "it had not reported etcd before".to_string(),
            };
            StepError::stuck(format!(
                "{node} went down during the etcd wait: no answer for the last {} ({}); {before}; etcd not healthy after {timeout}",
                crate::duration::format_duration(now.saturating_duration_since(s.since)),
                s.why
            ))
            .with_hint("the node stopped answering (power, kernel panic, network, reboot loop): check its console; once it is back, run bootstrap again (it finds the etcd it started and sends nothing twice)")
        }
        None => StepError::stuck(format!("etcd not healthy after {timeout}: {}", last_events(last)))
            .with_hint("check the node's etcd logs (talosctl logs etcd); time sync and disk speed are the usual causes"),
    }
}

/// etcd Running and healthy on `client`'s node within `--etcd-timeout`. A
/// node that stops answering is reported as down, not by its last state.
pub(crate) async fn wait_etcd_healthy(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    s: &BootstrapPolicy,
) -> Result<(), StepError> {
    let until = Instant::now() + s.etcd_timeout;
    let node = ctx.node.node.clone();
    ctx.step_with("etcd", &RetryPolicy::once(), |_| async {
        let mut last: Option<ServiceStatus> = None;
        let mut last_state = String::new();
        let mut silence: Option<Silence> = None;
        loop {
            match client.service_list().await {
                Ok(services) => {
                    if silence.take().is_some() {
                        ctx.progress("etcd", format!("{node} answers again"));
                    }
                    let etcd = services.into_iter().find(|s| s.id == "etcd");
                    if let Some(e) = &etcd {
                        if e.state != last_state {
                            ctx.progress("etcd", format!("etcd {}", e.state));
                            last_state = e.state.clone();
                        }
                        if e.state == "Running" && e.healthy == Some(true) {
                            return Ok(());
                        }
                    }
                    last = etcd;
                }
                Err(e) if e.class() == ErrorClass::Trust => return Err(talos_err(e)),
                Err(e) if e.not_answering() => {
                    if silence.is_none() {
                        ctx.progress(
                            "etcd",
                            format!("{node} stopped answering ({}): waiting for it until the etcd deadline", e.message()),
                        );
                        silence = Some(Silence { since: Instant::now(), why: e.message() });
                    } else if let Some(s) = silence.as_mut() {
                        s.why = e.message();
                    }
                }
                // It answered, with an error: not down.
                Err(_) => silence = None,
            }
            let now = Instant::now();
            if now >= until {
                return Err(etcd_wait_failure(
                    &node,
                    s.etcd_timeout,
                    last.as_ref(),
                    silence.as_ref().map(|x| (x, now)),
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(s.poll_interval) => {}
                _ = ctx.run().cancel.cancelled() => {
                    return Err(StepError::new(ErrorKind::Interrupted, "interrupted while waiting for etcd"));
                }
            }
        }
    })
    .await
}

/// Every control plane is a (non-learner) member, matched by the IPs of the
/// member's URLs, else by short hostname (as `talosctl health` does).
pub(crate) async fn wait_members(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    cps: &[Target],
    s: &BootstrapPolicy,
) -> Result<(), StepError> {
    let until = Instant::now() + s.etcd_timeout;
    ctx.step_with("members", &RetryPolicy::once(), |_| async {
        let mut seen = 0usize;
        loop {
            if let Ok(members) = client.etcd_member_list(false).await {
                let voters: Vec<_> = members.iter().filter(|m| !m.is_learner).collect();
                let names: Vec<String> = voters.iter().map(|m| m.hostname.clone()).collect();
                let missing: Vec<&Target> = cps
                    .iter()
                    .filter(|cp| {
                        !voters
                            .iter()
                            .any(|m| m.is_node(&cp.addresses, &cp.ep.node.node))
                    })
                    .collect();
                if names.len() != seen {
                    seen = names.len();
                    ctx.progress("members", format!("etcd members: {}", names.join(", ")));
                }
                if missing.is_empty() {
                    ctx.fact("etcd_members", &names);
                    return Ok(());
                }
                if Instant::now() >= until {
                    return Err(StepError::stuck(format!(
                        "not every control plane joined etcd within {}: missing {} (members: {})",
                        crate::duration::format_duration(s.etcd_timeout),
                        missing
                            .iter()
                            .map(|m| m.ep.node.node.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                        names.join(", ")
                    )));
                }
            } else if Instant::now() >= until {
                return Err(StepError::stuck("etcd member list unavailable"));
            }
            tokio::time::sleep(s.poll_interval).await;
        }
    })
    .await
}

/// Ask every control plane for its own etcd member list and group them: two
/// clusters are a loud failure with the recovery steps. A control plane
/// whose etcd is not accounted for yet is asked again within a bound.
pub(crate) async fn check_clusters(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    guard_set: &[Target],
    intended: &Target,
    s: &BootstrapPolicy,
) -> Result<(), StepError> {
    ctx.step_with("one-cluster", &RetryPolicy::once(), |_| async {
        let mut delays = s.retry.delays();
        loop {
            let views =
                futures_util::future::join_all(guard_set.iter().map(|t| etcd_view(access, &t.ep)))
                    .await;
            let c = count_clusters(&views);
            ctx.fact("clusters", &c.clusters);
            if c.clusters.len() > 1 {
                let (msg, hint) = second_cluster_message(&c, &intended.ep.node.node);
                return Err(StepError::permanent(msg).with_hint(hint));
            }
            if c.unconfirmed.is_empty() {
                return Ok(());
            }
            match delays.next().filter(|_| !ctx.cancelled()) {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    ctx.warn(format!(
                        "could not confirm that no second etcd cluster exists: {}",
                        c.unconfirmed.join(", ")
                    ));
                    return Ok(());
                }
            }
        }
    })
    .await
}

/// Keep the same cluster's kubeconfig, or fetch and write it.
pub(crate) async fn keep_or_write(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    plan: &KubeconfigPlan,
) -> Result<(), StepError> {
    let path = plan.path();
    ctx.fact("kubeconfig", path.display().to_string());
    if let KubeconfigPlan::Keep { .. } = plan {
        ctx.fact("kubeconfig_kept", true);
        ctx.skip_step(
            "kubeconfig",
            "this cluster's kubeconfig is already there: kept",
        );
        return Ok(());
    }
    let bytes = ctx
        .step("kubeconfig", |_| {
            let c = client.clone();
            async move { c.kubeconfig().await.map_err(talos_err) }
        })
        .await?;
    match plan {
        KubeconfigPlan::KeepIfSame { .. } => {
            kubeconfig_file::same_cluster(path, &bytes)
                .map_err(|e| StepError::new(ErrorKind::Input, e))?;
            ctx.fact("kubeconfig_kept", true);
            Ok(())
        }
        KubeconfigPlan::Write { replace, .. } => write_secret_file(path, &bytes, *replace)
            .map_err(|e| StepError::permanent(format!("writing {}: {e}", path.display()))),
        KubeconfigPlan::Keep { .. } => Ok(()),
    }
}
