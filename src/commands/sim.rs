//! `talstrap sim`: serve a simulated fleet until Ctrl-C (see `crate::sim`).

use std::path::PathBuf;

use crate::cli::SimArgs;
use crate::exit::Exit;

use super::{CommandError, Session};

/// A fresh directory for throwaway cluster files.
pub fn fresh_dir(prefix: &str) -> Result<PathBuf, CommandError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CommandError::Runtime(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Parse `--subnet`: a /16../24 inside 127.0.0.0/8 (the simulator only binds loopback).
pub fn loopback_subnet(text: Option<&str>) -> Result<Option<ipnet::Ipv4Net>, CommandError> {
    let Some(text) = text else { return Ok(None) };
    let net: ipnet::Ipv4Net = text
        .parse()
        .map_err(|e| CommandError::input(format!("--subnet {text:?}: {e}")))?;
    if net.network().octets()[0] != 127 || !(16..=24).contains(&net.prefix_len()) {
        return Err(CommandError::input(format!(
            "--subnet {text}: the simulator only runs on loopback: a /16 to /24 inside 127.0.0.0/8, e.g. 127.0.42.0/24"
        )));
    }
    Ok(Some(net))
}

pub async fn run(session: &Session, args: SimArgs) -> Result<Exit, CommandError> {
    if args.time_scale <= 0.0 || !args.time_scale.is_finite() {
        return Err(CommandError::input(
            "--time-scale must be a positive number",
        ));
    }
    if args.control_planes == 0 {
        return Err(CommandError::input("--control-planes must be at least 1"));
    }
    let subnet = loopback_subnet(args.subnet.as_deref())?;
    if let Some(s) = &args.scenario
        && !s.is_file()
    {
        return Err(CommandError::input(format!(
            "scenario file {} does not exist",
            s.display()
        )));
    }
    let dir = match args.dir {
        Some(d) => d,
        None => fresh_dir("talstrap-sim")?,
    };
    let mut sim_args = crate::sim::cli::SimArgs {
        control_planes: args.control_planes,
        workers: args.workers,
        dir,
        port: session.port(),
        subnet,
        scenario: args.scenario,
        time_scale: args.time_scale,
        talos_version: crate::sim::version::resolve(&args.talos_version)
            .map_err(|e| CommandError::input(format!("--talos-version: {e}")))?,
    };
    let cancel = session.cancel.clone();
    let mut spec = sim_args
        .fleet_spec()
        .map_err(|e| CommandError::input(format!("{e:#}")))?;
    let fleet = match crate::sim::Fleet::start(spec.clone()).await {
        Ok(f) => f,
        Err(first) if sim_args.port != 0 => {
            // The default port is often taken (a real Talos API, another sim): pick a free one.
            sim_args.port = 0;
            spec.port = 0;
            let f = crate::sim::Fleet::start(spec).await.map_err(|e| {
                CommandError::Runtime(e.context(format!(
                    "starting the fleet (port {} failed first: {first:#})",
                    session.port()
                )))
            })?;
            eprintln!(
                "note: port {} is busy; the fleet uses port {}",
                session.port(),
                f.port()
            );
            f
        }
        Err(e) => {
            return Err(CommandError::Runtime(
                e.context("starting the simulated fleet"),
            ));
        }
    };
    print!("{}", crate::sim::cli::guide(&fleet));
    cancel.cancelled().await;
    fleet.shutdown().await;
    println!("talstrap sim: stopped");
    Ok(Exit::Success)
}
