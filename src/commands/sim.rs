//! `talstrap sim`: serve a simulated fleet until Ctrl-C (see `crate::sim`).

use std::path::PathBuf;

use crate::cli::SimArgs;
use crate::exit::Exit;

use super::{CommandError, Session};

/// A fresh directory for throwaway cluster files (keys included): a random
/// name under the temp dir, created new (never an existing path or a
/// symlink someone planted) with mode 0700.
pub fn fresh_dir(prefix: &str) -> Result<PathBuf, CommandError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let tmp = std::env::temp_dir();
    let mut last = None;
    for _ in 0..8 {
        let name = format!("{:016x}", unpredictable_u64());
        let dir = tmp.join(format!("{prefix}-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(CommandError::Runtime(anyhow::anyhow!(
                    "creating {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(CommandError::Runtime(anyhow::anyhow!(
        "creating a directory under {}: {}",
        tmp.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// 64 bits no one else can guess: SipHash under the process's random keys
/// (std seeds them from the OS; each `RandomState` gets new ones).
fn unpredictable_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
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
        && !s.exists()
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
    };
    let cancel = session.cancel.clone();
    let mut spec = sim_args
        .fleet_spec()
        .map_err(|e| CommandError::input(format!("{e:#}")))?;
    spec.check().map_err(CommandError::input)?;
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
            crate::output::stdout::error_line(&format!(
                "note: port {} is busy; the fleet uses port {}",
                session.port(),
                f.port()
            ));
            f
        }
        Err(e) => {
            return Err(CommandError::Runtime(
                e.context("starting the simulated fleet"),
            ));
        }
    };
    crate::output::stdout::write(crate::sim::cli::guide(&fleet).as_bytes());
    cancel.cancelled().await;
    fleet.shutdown().await;
    crate::output::stdout::line("talstrap sim: stopped");
    Ok(Exit::Success)
}
