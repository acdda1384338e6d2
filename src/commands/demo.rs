//! `talstrap demo`: the whole job against a simulated cluster, with the real
//! commands and the real output: preflight → apply (and wait) → bootstrap
//! (etcd, members, kubeconfig) → verify. The cluster files and the
//! kubeconfig stay in `--dir`; without it they live in a private temp
//! directory that is removed at the end unless `--keep` is given.

use std::time::Duration;

use crate::cli::{
    ApplyArgs, ApplyModeArg, BootstrapArgs, DemoArgs, InventoryArgs, PacingArgs, PhaseArg,
    PreflightArgs, VerifyArgs,
};
use crate::exit::Exit;
use crate::pipeline::Event;

use super::sim::fresh_dir;
use super::{CommandError, Session, apply, bootstrap, preflight, verify};

pub async fn run(session: &Session, args: DemoArgs) -> Result<Exit, CommandError> {
    if args.time_scale <= 0.0 || !args.time_scale.is_finite() {
        return Err(CommandError::input(
            "--time-scale must be a positive number",
        ));
    }
    if args.control_planes == 0 {
        return Err(CommandError::input("--control-planes must be at least 1"));
    }
    // Checked before anything is created.
    crate::sim::version::resolve(&args.talos_version)
        .map_err(|e| CommandError::input(format!("--talos-version: {e}")))?;
    let (dir, throwaway) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| CommandError::input(format!("creating {}: {e}", d.display())))?;
            (d.clone(), false)
        }
        None => (fresh_dir("talstrap-demo")?, !args.keep),
    };
    let result = run_in(session, &args, &dir, throwaway).await;
    if throwaway && let Err(e) = std::fs::remove_dir_all(&dir) {
        session.output.text(&format!(
            "warning: could not remove {} ({e}); it holds the simulated cluster's keys",
            dir.display()
        ));
    }
    result
}

/// The demo itself, in `dir`; `throwaway`: `dir` is removed afterwards.
async fn run_in(
    session: &Session,
    args: &DemoArgs,
    dir: &std::path::Path,
    throwaway: bool,
) -> Result<Exit, CommandError> {
    let kubeconfig = dir.join("kubeconfig");
    if kubeconfig.exists() {
        return Err(CommandError::input(format!(
            "{} already holds a kubeconfig from an earlier demo: pick another --dir",
            dir.display()
        )));
    }
    let mut spec =
        crate::sim::FleetSpec::new(args.control_planes, args.workers, dir.join("cluster"));
    spec.time_scale = args.time_scale;
    spec.talos_version = crate::sim::version::resolve(&args.talos_version)
        .map_err(|e| CommandError::input(format!("--talos-version: {e}")))?;
    spec.port = 0;
    if let Some(s) = &args.scenario {
        spec.scenario = crate::sim::Scenario::from_file(s)
            .map_err(|e| CommandError::input(format!("{e:#}")))?;
    }
    spec.check().map_err(CommandError::input)?;
    let fleet = crate::sim::Fleet::start(spec)
        .await
        .map_err(|e| CommandError::Runtime(e.context("starting the simulated cluster")))?;
    let port = fleet.port();
    session.set_port(port);
    let paths = fleet.paths().clone();
    let sink = session.output.events();
    let nodes = fleet.nodes();
    let subnet = nodes.first().map(|n| n.ip.to_string()).unwrap_or_default();
    sink.emit(Event::Info {
        message: format!(
            "talstrap demo: a simulated Talos cluster of {} control planes and {} workers is up on loopback ({subnet}…, port {port}), every node in maintenance mode.\ncluster files: {}",
            args.control_planes,
            args.workers,
            paths.dir.display()
        ),
    });

    let inventory = InventoryArgs {
        talconfig: Some(paths.talconfig.clone()),
        config_dir: Some(paths.config_dir.clone()),
        talosconfig: Some(paths.talosconfig.clone()),
        ..InventoryArgs::default()
    };
    // Simulated durations are seconds × time_scale: poll a little faster than that.
    let tick = Duration::from_secs_f64((0.5 * args.time_scale).clamp(0.02, 0.5));
    let pacing = PacingArgs {
        connect_timeout: Duration::from_secs(2),
        rpc_timeout: Duration::from_secs(10),
        attempts: 5,
        retry_delay: tick,
        poll_interval: tick,
    };
    let stuck_after = Duration::from_secs_f64((60.0 * args.time_scale).max(5.0));

    let demo_started = std::time::Instant::now();
    let mut worst = Exit::Success;
    // Each command's report is a stage of the demo's; the demo ends with one.
    session.output.begin_stages();
    let stage = |name: &str| {
        session.restart_clock();
        session.output.finish();
        session.output.text(&format!("\n── {name} ──"));
    };

    stage("1/4 preflight: look before touching");
    let exit = preflight::run(
        session,
        PreflightArgs {
            inventory: inventory.clone(),
            pacing: pacing.clone(),
            server_dry_run: true,
        },
    )
    .await?;
    worst = worst.max(exit);

    if worst == Exit::Success && !session.cancel.is_cancelled() {
        stage("2/4 apply: send every node its config, then wait until it is ready for bootstrap");
        let exit = apply::run(
            session,
            ApplyArgs {
                inventory: inventory.clone(),
                pacing: pacing.clone(),
                mode: ApplyModeArg::Auto,
                try_timeout: Duration::from_secs(60),
                dry_run: false,
                wait: true,
                stuck_after,
                max_unavailable: 1,
                allow_degraded_etcd: false,
            },
        )
        .await?;
        worst = worst.max(exit);
    }

    if worst == Exit::Success && !session.cancel.is_cancelled() {
        stage(
            "3/4 bootstrap: etcd exactly once, wait for every control plane, fetch the kubeconfig",
        );
        let exit = bootstrap::run(
            session,
            BootstrapArgs {
                inventory: inventory.clone(),
                pacing: pacing.clone(),
                auto: false,
                cidr: Vec::new(),
                quorum: None,
                wait_members: true,
                allow_unreachable_control_planes: false,
                etcd_timeout: stuck_after * 2,
                kubeconfig: Some(kubeconfig.clone()),
                force: false,
                resend_after: Duration::from_secs_f64((300.0 * args.time_scale).max(5.0)),
            },
        )
        .await?;
        worst = worst.max(exit);
    }

    if worst == Exit::Success && !session.cancel.is_cancelled() {
        stage("4/4 verify: every node running and ready");
        let exit = verify::run(
            session,
            VerifyArgs {
                inventory: inventory.clone(),
                pacing: pacing.clone(),
                phase: PhaseArg::PostBootstrap,
                stuck_after,
            },
        )
        .await?;
        worst = worst.max(exit);
    }

    session.output.finish();
    let last = session.output.end_stages();
    let summary = if throwaway {
        format!(
            "\nDemo {} (exit {}). Its cluster files and kubeconfig in {} are removed now; pass --keep or --dir DIR to keep them, or run `talstrap sim` for a fleet that keeps running.",
            if worst == Exit::Success {
                "complete"
            } else {
                "stopped early"
            },
            worst.code(),
            dir.display()
        )
    } else if worst == Exit::Success {
        format!(
            "\nDemo complete. Left in {}:\n  kubeconfig        {}\n  talconfig.yaml    {}\n  talosconfig       {}\nThe simulated nodes stop with this command; `talstrap sim` keeps a fleet running to try the commands by hand.",
            dir.display(),
            kubeconfig.display(),
            paths.talconfig.display(),
            paths.talosconfig.display(),
        )
    } else {
        format!(
            "\nDemo stopped early (exit {}). Cluster files are in {}.",
            worst.code(),
            dir.display()
        )
    };
    fleet.shutdown().await;
    if session.output.config().format != crate::cli::OutputFormat::Json {
        session.output.text(&summary);
        return Ok(worst);
    }
    let nodes = last.map(|r| r.nodes).unwrap_or_default();
    let report = crate::output::Report::new("demo", nodes, demo_started.elapsed(), Some(worst))
        .with_messages(vec![summary.trim().to_string()])
        .with_details(serde_json::json!({
            "dir": dir.display().to_string(),
            "kubeconfig": (worst == Exit::Success && !throwaway).then(|| kubeconfig.display().to_string()),
        }));
    session.output.report(&report);
    Ok(report.exit())
}
