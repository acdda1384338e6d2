//! `talstrap bootstrap`: bootstrap etcd exactly once, on exactly one control
//! plane, then wait for it to be healthy and fetch the kubeconfig.
//!
//! Safety rules, in order:
//! 1. **Guard**: every reachable control plane is asked about etcd (service
//!    state, local member, member list). If any has it, the cluster is
//!    already bootstrapped: success, and no Bootstrap call at all.
//! 2. **One target**: `-n NODE`, else the first control plane in talconfig
//!    order, else (`--auto`) the elected one.
//! 3. **Bounded retries** of FailedPrecondition / Unavailable only.
//! 4. **No early resend**: after a request that may have been accepted
//!    (a reply, or a reply lost on the wire), nothing is sent again for
//!    `--resend-after` (5 minutes); etcd coming up is the proof.
//! 5. **AlreadyExists** is success once etcd is confirmed running.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::cli::BootstrapArgs;
use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{Done, ErrorKind, Event, NodeCtx, RetryPolicy, StepError, run_nodes};
use crate::talos::{ErrorClass, NodeClient, ServiceStatus};

use super::cluster::{EtcdView, etcd_views, not_yet_configured};
use super::election::{Election, ElectionSettings, elect_leader};
use super::nodeops::{talos_err, talos_err_retry_precondition};
use super::plan::{Access, Endpoint};
use super::secret_file::{check_writable, write_secret_file};
use super::{CommandError, Session};

/// Settings of the bootstrap pipeline (also used by the demo).
#[derive(Clone, Debug)]
pub struct BootstrapSettings {
    pub etcd_timeout: Duration,
    pub wait_members: bool,
    pub kubeconfig: Option<std::path::PathBuf>,
    pub force: bool,
    pub poll_interval: Duration,
    pub resend_after: Duration,
    pub retry: RetryPolicy,
}

pub async fn run(session: &Session, args: BootstrapArgs) -> Result<Exit, CommandError> {
    if let Some(p) = &args.kubeconfig {
        check_writable(p, args.force).map_err(CommandError::input)?;
    }
    if args.auto && !args.inventory.nodes.is_empty() {
        return Err(CommandError::input(
            "--auto elects the target itself: drop -n/--nodes, or drop --auto to bootstrap that node",
        ));
    }
    let settings = BootstrapSettings {
        etcd_timeout: args.etcd_timeout,
        wait_members: args.wait_members,
        kubeconfig: args.kubeconfig.clone(),
        force: args.force,
        poll_interval: args.pacing.poll_interval,
        resend_after: args.resend_after,
        retry: RetryPolicy {
            attempts: args.pacing.attempts.max(10),
            base: args.pacing.retry_delay,
            max: Duration::from_secs(10).max(args.pacing.retry_delay),
        },
    };

    // Candidates and credentials.
    let scan_mode = !args.cidr.is_empty();
    let (access, control_planes, selected, warnings) = if scan_mode
        && args.inventory.talconfig.is_none()
        && args.inventory.node_configs.is_empty()
        && !std::path::Path::new("talconfig.yaml").exists()
    {
        let tc = super::plan::find_talosconfig(&args.inventory, None)?;
        let access =
            super::plan::build_access(tc, &args.inventory.cert_fingerprints, &args.pacing)?;
        (access, Vec::new(), Vec::new(), Vec::new())
    } else {
        let plan = session.plan(&args.inventory, &args.pacing).await?;
        let cps: Vec<Endpoint> = plan.control_planes.iter().map(|n| n.endpoint()).collect();
        let selected: Vec<_> = plan.nodes.clone();
        (plan.access, cps, selected, plan.warnings)
    };
    for w in &warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    if access.secure.is_none() {
        return Err(CommandError::input(
            "bootstrap needs a talosconfig (the nodes are configured and require a client certificate): pass --talosconfig or set TALOSCONFIG",
        ));
    }
    if !scan_mode && control_planes.is_empty() {
        return Err(CommandError::input(
            "the inventory has no control plane (controlPlane: true) to bootstrap",
        ));
    }
    let quorum = match (args.quorum, scan_mode) {
        (Some(q), _) => q as usize,
        (None, true) => {
            return Err(CommandError::input(
                "--auto --cidr needs --quorum N: how many control planes must be present before electing",
            ));
        }
        (None, false) => control_planes.len(),
    };
    if args.auto && !scan_mode && quorum > control_planes.len() {
        return Err(CommandError::input(format!(
            "--quorum {quorum} can never be reached: the inventory has only {} control planes",
            control_planes.len()
        )));
    }

    let mut details = serde_json::Map::new();
    let mut messages = Vec::new();
    let target: Endpoint = if args.auto {
        let es = ElectionSettings {
            quorum,
            cidrs: args.cidr.clone(),
            port: session.port(),
            poll_interval: args.pacing.poll_interval,
            allow_large: false,
        };
        match elect_leader(session, &access, &control_planes, &es, &mut details).await? {
            Election::Leader(t) => t,
            // Someone already has etcd: the election refused, which means "bootstrapped".
            Election::AlreadyBootstrapped(reason) => {
                messages.push(format!(
                    "cluster already bootstrapped: {reason}; no Bootstrap call was made"
                ));
                return Ok(election_only_report(
                    session,
                    messages,
                    details,
                    Exit::Success,
                ));
            }
            Election::Unsettled { exit, reason } => {
                messages.push(reason);
                return Ok(election_only_report(session, messages, details, exit));
            }
        }
    } else if !args.inventory.nodes.is_empty() {
        match selected.as_slice() {
            [one] if one.is_control_plane() => one.endpoint(),
            [one] => {
                return Err(CommandError::input(format!(
                    "{} is a worker: bootstrap runs on a control plane",
                    one.node.node
                )));
            }
            many => {
                return Err(CommandError::input(format!(
                    "bootstrap runs on exactly one control plane, but -n selects {}: {}",
                    many.len(),
                    many.iter()
                        .map(|n| n.node.node.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    } else {
        control_planes[0].clone()
    };
    details.insert(
        "target".into(),
        json!({"node": target.node.node, "ip": target.node.ip}),
    );

    let run = session.run_context(settings.retry.clone());
    run.emit(Event::RunStarted {
        command: "bootstrap".into(),
        nodes: 1,
        parallel: 1,
    });
    let guard_set: Vec<Endpoint> = if control_planes.is_empty() {
        vec![target.clone()]
    } else {
        control_planes.clone()
    };
    let access = Arc::new(access);
    let settings = Arc::new(settings);
    let outcomes =
        {
            let access = access.clone();
            let settings = settings.clone();
            let guard_set = Arc::new(guard_set);
            run_nodes(&run, vec![(target.node.clone(), target.clone())], move |ctx, target| {
            let access = access.clone();
            let settings = settings.clone();
            let guard_set = guard_set.clone();
            async move { bootstrap_node(&ctx, &access, &target, &guard_set, &settings).await }
        })
        .await
        };
    if let Some(o) = outcomes.first() {
        if let Some(g) = o.facts.get("guard") {
            details.insert("guard".into(), g.clone());
        }
        // Say it at run level too (as `--auto` does): the operator's first
        // question is "did this run bootstrap anything, and who has etcd?".
        if let Some(proof) = o.facts.get("proof").and_then(|p| p.as_str()) {
            messages.push(format!(
                "cluster already bootstrapped: {proof}; no Bootstrap call was made"
            ));
        }
        if let Some(p) = o.facts.get("kubeconfig") {
            messages.push(format!(
                "kubeconfig written to {}",
                p.as_str().unwrap_or_default()
            ));
        }
    }
    let report = Report::new("bootstrap", outcomes, session.elapsed(), None)
        .with_messages(messages)
        .with_details(serde_json::Value::Object(details));
    session.output.report(&report);
    Ok(report.exit())
}

/// The report of a run that ended in the election (no node pipeline ran).
fn election_only_report(
    session: &Session,
    messages: Vec<String>,
    details: serde_json::Map<String, serde_json::Value>,
    exit: Exit,
) -> Exit {
    let report = Report::new("bootstrap", Vec::new(), session.elapsed(), Some(exit))
        .with_messages(messages)
        .with_details(serde_json::Value::Object(details));
    session.output.report(&report);
    report.exit()
}

/// The whole bootstrap of one target, as steps of one node pipeline.
pub async fn bootstrap_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    target: &Endpoint,
    guard_set: &[Endpoint],
    s: &BootstrapSettings,
) -> Result<Done, StepError> {
    // 1. Guard.
    let mut views = guard(ctx, "guard", access, guard_set).await?;
    let mut already: Option<EtcdView> = views.iter().find(|v| v.has_etcd()).cloned();
    let mut target_client: Option<NodeClient> = None;

    if already.is_none() {
        // The target may still be installing (right after `apply`): wait for
        // it within the retry bound before deciding anything.
        let client = connect_target(ctx, access, target).await?;
        // Control planes we could not ask may have come up meanwhile; a
        // decision to create etcd must rest on the freshest answers.
        if views.iter().any(|v| !v.reachable) {
            views = guard(ctx, "guard-recheck", access, guard_set).await?;
            already = views.iter().find(|v| v.has_etcd()).cloned();
        }
        if already.is_none() {
            let unreachable: Vec<String> = views
                .iter()
                .filter(|v| !v.reachable)
                .map(|v| {
                    format!(
                        "{} ({})",
                        v.node,
                        v.error.as_deref().unwrap_or("unreachable")
                    )
                })
                .collect();
            if !unreachable.is_empty() {
                ctx.warn(format!(
                    "could not ask every control plane about etcd ({}); bootstrapping {} because no reachable control plane has etcd",
                    unreachable.join(", "),
                    target.node.node
                ));
            }
            send_bootstrap(ctx, &client, s).await?;
            target_client = Some(client);
        }
    }

    let etcd_node: Endpoint = match &already {
        Some(v) => {
            ctx.progress("guard", format!("already bootstrapped: {}", v.proof()));
            ctx.fact("already_bootstrapped", true);
            ctx.fact("proof", v.proof());
            ctx.fact("bootstrap_calls", 0);
            ctx.skip_step("bootstrap", format!("already bootstrapped: {}", v.proof()));
            guard_set
                .iter()
                .find(|e| e.node.ip == v.ip)
                .cloned()
                .unwrap_or_else(|| target.clone())
        }
        None => target.clone(),
    };

    // 2. etcd healthy (on the node we bootstrapped, or the one that proved
    // the cluster exists).
    let client = match target_client {
        Some(c) => c,
        None => connect_target(ctx, access, &etcd_node).await?,
    };
    wait_etcd_healthy(ctx, &client, s).await?;

    // 3. Optionally, every control plane joined.
    if s.wait_members && guard_set.len() > 1 {
        wait_members(ctx, &client, guard_set, s).await?;
    }

    // 4. kubeconfig.
    if let Some(path) = &s.kubeconfig {
        let bytes = ctx
            .step("kubeconfig", |_| {
                let c = client.clone();
                async move { c.kubeconfig().await.map_err(talos_err) }
            })
            .await?;
        if ctx.cancelled() {
            return Err(StepError::new(
                ErrorKind::Interrupted,
                "interrupted before writing the kubeconfig",
            ));
        }
        write_secret_file(path, &bytes, s.force)
            .map_err(|e| StepError::permanent(format!("writing {}: {e}", path.display())))?;
        ctx.fact("kubeconfig", path.display().to_string());
    }

    Ok(match &already {
        Some(v) => Done::Skipped(format!(
            "already bootstrapped: {}; no Bootstrap sent",
            v.proof()
        )),
        None => Done::Ok(format!(
            "bootstrapped; etcd healthy{}",
            if s.wait_members {
                ", all control planes joined"
            } else {
                ""
            }
        )),
    })
}

/// Ask every control plane about etcd (one attempt; unreachable ones are
/// reported, not retried) and record the answers.
async fn guard(
    ctx: &Arc<NodeCtx>,
    step: &str,
    access: &Access,
    guard_set: &[Endpoint],
) -> Result<Vec<EtcdView>, StepError> {
    let views = ctx
        .step_with(step, &RetryPolicy::once(), |_| async {
            Ok::<_, StepError>(etcd_views(access, guard_set).await)
        })
        .await?;
    ctx.fact("guard", &views);
    Ok(views)
}

/// mTLS to the bootstrap target, retried while it is down or still in
/// maintenance mode (its config not applied yet, or installing).
async fn connect_target(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    target: &Endpoint,
) -> Result<NodeClient, StepError> {
    let tls = access
        .secure
        .clone()
        .ok_or_else(|| StepError::new(ErrorKind::Input, "no talosconfig"))?;
    ctx.step("connect", |_| {
        let tls = tls.clone();
        async move {
            match NodeClient::connect_secure(target.addr, tls, &access.timeouts).await {
                Ok(c) => Ok(c),
                // A maintenance-mode node's certificate does not chain to
                // the talosconfig CA either; tell the two apart.
                Err(e) if e.class() == ErrorClass::Trust => {
                    match not_yet_configured(access, target).await {
                        Some(why) => Err(StepError::retryable(format!(
                            "{} {why}",
                            target.node.node
                        ))
                        .with_hint("apply its machine config first (talstrap apply --wait), then bootstrap")),
                        None => Err(talos_err(e)),
                    }
                }
                Err(e) => Err(talos_err(e)),
            }
        }
    })
    .await
}

/// Send Bootstrap under the no-early-resend rule. Returns once a request was
/// accepted (or AlreadyExists says etcd data exists).
///
/// Every request counts against the retry budget, the unanswered ones too:
/// a node that never answers gets a bounded number of Bootstrap requests,
/// each after a full `--resend-after` window without etcd starting.
async fn send_bootstrap(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    s: &BootstrapSettings,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut calls = 0u32;
    let mut unanswered = 0u32;
    let mut delays = s.retry.delays();
    ctx.emit_step_start("bootstrap");
    loop {
        if ctx.cancelled() {
            return Err(ctx.end_step(
                "bootstrap",
                calls,
                started,
                StepError::new(
                    ErrorKind::Interrupted,
                    "interrupted before Bootstrap was sent",
                ),
            ));
        }
        calls += 1;
        ctx.fact("bootstrap_calls", calls);
        let result = client.bootstrap().await;
        match result {
            Ok(()) => {
                ctx.progress("bootstrap", "Bootstrap accepted; waiting for etcd");
                ctx.end_step_ok("bootstrap", calls, started, Some("accepted".into()));
                return Ok(());
            }
            Err(e) if e.already_exists() => {
                let detail = if unanswered == 0 {
                    "etcd data already present (bootstrapped or joined before): not bootstrapping again"
                } else {
                    "an earlier request was accepted (its reply was lost): etcd data present"
                };
                ctx.progress("bootstrap", detail);
                ctx.end_step_ok("bootstrap", calls, started, Some(detail.into()));
                return Ok(());
            }
            Err(e) if e.reply_may_be_lost() => {
                // The request may have reached the node: do not resend for a while;
                // etcd starting is the proof it was taken.
                unanswered += 1;
                ctx.progress(
                    "bootstrap",
                    format!("no reply ({}); the request may have been accepted: watching etcd, no resend for {}", e.message(), crate::duration::format_duration(s.resend_after)),
                );
                if etcd_starts_within(client, s.resend_after, s.poll_interval, ctx).await {
                    ctx.end_step_ok(
                        "bootstrap",
                        calls,
                        started,
                        Some("accepted (reply lost; etcd started)".into()),
                    );
                    return Ok(());
                }
                if ctx.cancelled() {
                    continue;
                }
                if delays.next().is_none() {
                    let err = StepError::permanent(format!(
                        "no reply to {calls} Bootstrap requests and etcd did not start within {} of any of them (last: {e})",
                        crate::duration::format_duration(s.resend_after)
                    ))
                    .with_hint("the node takes requests but does not answer: check its console and `talosctl -n <ip> dmesg`; run bootstrap again once it answers (the cluster-wide guard prevents a second etcd)");
                    return Err(ctx.end_step("bootstrap", calls, started, err));
                }
                ctx.progress("bootstrap", "etcd did not start: sending Bootstrap again");
            }
            Err(e) => {
                let err = talos_err_retry_precondition(e);
                if !err.is_retryable() {
                    return Err(ctx.end_step("bootstrap", calls, started, err));
                }
                let Some(delay) = delays.next() else {
                    let msg = format!("{} (gave up after {calls} attempts)", err.message);
                    return Err(ctx.end_step(
                        "bootstrap",
                        calls,
                        started,
                        StepError {
                            message: msg,
                            ..err.into_kind(ErrorKind::Permanent)
                        },
                    ));
                };
                ctx.retry_notice("bootstrap", calls, delay, &err.message);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = ctx.run().cancel.cancelled() => {}
                }
            }
        }
    }
}

async fn etcd_starts_within(
    client: &NodeClient,
    window: Duration,
    poll: Duration,
    ctx: &NodeCtx,
) -> bool {
    let until = Instant::now() + window;
    while Instant::now() < until && !ctx.cancelled() {
        if let Ok(services) = client.service_list().await
            && services
                .iter()
                .any(|s| s.id == "etcd" && (s.state == "Running" || s.state == "Starting"))
        {
            return true;
        }
        tokio::time::sleep(poll).await;
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

async fn wait_etcd_healthy(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    s: &BootstrapSettings,
) -> Result<(), StepError> {
    let until = Instant::now() + s.etcd_timeout;
    ctx.step_with("etcd", &RetryPolicy::once(), |_| async {
        let mut last: Option<ServiceStatus> = None;
        let mut last_state = String::new();
        loop {
            match client.service_list().await {
                Ok(services) => {
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
                Err(_) => {}
            }
            if Instant::now() >= until {
                return Err(StepError::stuck(format!(
                    "etcd not healthy after {}: {}",
                    crate::duration::format_duration(s.etcd_timeout),
                    last_events(last.as_ref())
                ))
                .with_hint("check the node's etcd logs (talosctl logs etcd); time sync and disk speed are the usual causes"));
            }
            tokio::time::sleep(s.poll_interval).await;
        }
    })
    .await
}

async fn wait_members(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    cps: &[Endpoint],
    s: &BootstrapSettings,
) -> Result<(), StepError> {
    let until = Instant::now() + s.etcd_timeout;
    ctx.step_with("members", &RetryPolicy::once(), |_| async {
        let mut seen = 0usize;
        loop {
            if let Ok(members) = client.etcd_member_list(false).await {
                let names: Vec<String> = members
                    .iter()
                    .filter(|m| !m.is_learner)
                    .map(|m| m.hostname.clone())
                    .collect();
                let missing: Vec<&Endpoint> = cps
                    .iter()
                    .filter(|cp| !names.iter().any(|n| n == &cp.node.node))
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
                        "not every control plane joined etcd within {}: missing {}",
                        crate::duration::format_duration(s.etcd_timeout),
                        missing
                            .iter()
                            .map(|m| m.node.node.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
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
