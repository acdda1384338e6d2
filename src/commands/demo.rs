//! `talstrap demo`: the whole job against a simulated cluster, with the real
//! commands and the real output: preflight → apply (and wait) → bootstrap
//! (etcd, members, kubeconfig) → verify. The cluster files and the
//! kubeconfig stay in `--dir`; without it they live in a private temp
//! directory that is removed at the end unless `--keep` is given.

use std::path::Path;

use crate::exit::Exit;
use crate::pipeline::Event;
use crate::settings::{DemoSettings, InventorySettings};

use super::sim::fresh_dir;
use super::{CommandError, Session, apply, bootstrap, preflight, verify};

pub(crate) async fn run(session: &Session, settings: DemoSettings) -> Result<Exit, CommandError> {
    let (dir, throwaway) = match &settings.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| CommandError::input(format!("creating {}: {e}", d.display())))?;
            (d.clone(), false)
        }
        None => (fresh_dir("talstrap-demo")?, !settings.keep),
    };
    let result = run_in(session, &settings, &dir, throwaway).await;
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
    settings: &DemoSettings,
    dir: &Path,
    throwaway: bool,
) -> Result<Exit, CommandError> {
    let fleet = start_fleet(session, settings, dir).await?;
    let demo_started = std::time::Instant::now();
    // Each command's report is a stage of the demo's; the demo ends with one.
    session.output.begin_stages();
    let kubeconfig = dir.join("kubeconfig");
    let worst = run_stages(session, settings, &fleet, &kubeconfig).await?;
    session.output.finish();
    let last = session.output.end_stages();
    let summary = summary(worst, throwaway, dir, &kubeconfig, fleet.paths());
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

/// The simulated cluster, its files under `dir/cluster`, announced.
async fn start_fleet(
    session: &Session,
    settings: &DemoSettings,
    dir: &Path,
) -> Result<crate::sim::Fleet, CommandError> {
    let mut spec = settings.spec.clone();
    spec.dir = dir.join("cluster");
    let fleet = crate::sim::Fleet::start(spec)
        .await
        .map_err(|e| CommandError::Runtime(e.context("starting the simulated cluster")))?;
    let port = fleet.port();
    let subnet = fleet
        .nodes()
        .first()
        .map(|n| n.ip.to_string())
        .unwrap_or_default();
    session.output.events().emit(Event::Info {
        message: format!(
            "talstrap demo: a simulated Talos cluster of {} control planes and {} workers is up on loopback ({subnet}…, port {port}), every node in maintenance mode.\ncluster files: {}",
            settings.spec.control_planes,
            settings.spec.workers,
            fleet.paths().dir.display()
        ),
    });
    Ok(fleet)
}

/// preflight → apply --wait → bootstrap → verify, each with the settings the
/// demo composes, each in its own stage session on the fleet's port; the
/// first stage that does not succeed (or Ctrl-C) ends the run.
async fn run_stages(
    session: &Session,
    settings: &DemoSettings,
    fleet: &crate::sim::Fleet,
    kubeconfig: &Path,
) -> Result<Exit, CommandError> {
    let inventory = InventorySettings::cluster_files(fleet.paths());
    let stage = |name: &str| {
        session.output.finish();
        session.output.text(&format!("\n── {name} ──"));
        session.stage(fleet.port())
    };
    let go_on = |exit: Exit| exit == Exit::Success && !session.cancel.is_cancelled();

    let s = stage("1/4 preflight: look before touching");
    let mut worst = preflight::run(&s, settings.preflight(&inventory)).await?;
    if go_on(worst) {
        let s = stage(
            "2/4 apply: send every node its config, then wait until it is ready for bootstrap",
        );
        worst = worst.max(apply::run(&s, settings.apply(&inventory)).await?);
    }
    if go_on(worst) {
        let s = stage(
            "3/4 bootstrap: etcd exactly once, wait for every control plane, fetch the kubeconfig",
        );
        let b = settings.bootstrap(&inventory, kubeconfig.to_path_buf());
        worst = worst.max(bootstrap::run(&s, b).await?);
    }
    if go_on(worst) {
        let s = stage("4/4 verify: every node running and ready");
        worst = worst.max(verify::run(&s, settings.verify(&inventory)).await?);
    }
    Ok(worst)
}

/// The last words of the demo: how it ended and what is left where.
fn summary(
    worst: Exit,
    throwaway: bool,
    dir: &Path,
    kubeconfig: &Path,
    paths: &crate::sim::GeneratedCluster,
) -> String {
    if throwaway {
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
    }
}
