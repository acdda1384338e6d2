//! `talstrap discover CIDR...`: find Talos nodes and say what state each is in.
//!
//! Phase 1 is a plain TCP connect scan of the whole range, with a window of
//! connects in flight sized from the open-file limit and a short timeout.
//! Phase 2 identifies only the hosts that answered: maintenance (stage,
//! version, disks), configured by our CA (version, role, boot time, etcd),
//! configured by another CA, or not Talos.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::cli::OutputFormat;
use crate::discovery::{ScanOptions, ScanResult, TargetSet, rlimit, scan, skeleton};
use crate::disksel::DiskFacts;
use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{
    Done, Event, NodeCtx, NodeOutcome, NodeRef, RetryPolicy, StepError, run_nodes,
};
use crate::settings::DiscoverSettings;
use crate::talos::probe::{ProbeResult, probe};
use crate::talos::{NodeClient, Timeouts, talosconfig, tls};

use super::plan::{Access, Endpoint};
use super::{CommandError, Session};
use crate::ops::cluster::etcd_view;
use crate::ops::node::{describe_disk, mode_word, talos_err};

pub(crate) async fn run(session: &Session, args: DiscoverSettings) -> Result<Exit, CommandError> {
    let access = discover_access(&args)?;
    let (soft, hard) = rlimit::raise_nofile_soft_limit();
    let window = args
        .window
        .unwrap_or_else(|| rlimit::window_for(soft))
        .max(1);
    let port = session.port();
    let json = session.output.config().format == OutputFormat::Json;
    if args.skeleton && !json {
        // `discover --skeleton > nodes.yaml`: stdout carries only YAML.
        session.output.people_to_stderr();
    }
    let opts = ScanOptions {
        port,
        connect_timeout: args.connect_timeout,
        window,
        deadline: session.deadline(),
        cancel: session.cancel.clone(),
    };
    let scanned = sweep_phase(session, &args.targets, &opts, (soft, hard)).await;
    let (outcomes, mut disk_facts) = identify_phase(session, access, &scanned).await;
    let mut details = scan_details(&scanned, args.targets.len(), &opts);
    let maintenance: Vec<skeleton::MaintenanceHost> = outcomes
        .iter()
        .filter(|o| o.facts.get("mode").and_then(|m| m.as_str()) == Some("maintenance"))
        .map(|o| skeleton::MaintenanceHost {
            ip: o.node.ip,
            hostname: None,
            disks: disk_facts.remove(&o.node.ip).unwrap_or_default(),
        })
        .collect();
    let skeleton_text = args
        .skeleton
        .then(|| skeleton::render_nodes_skeleton(&maintenance));
    if json && let Some(t) = &skeleton_text {
        // JSON: the skeleton is part of the one report.
        details["skeleton"] = serde_json::Value::String(t.clone());
    }
    let report = Report::new("discover", outcomes, session.elapsed(), scan_exit(&scanned))
        .with_details(details);
    session.output.report(&report);
    if !json && let Some(t) = &skeleton_text {
        // People: the table went to stderr, the YAML alone to stdout.
        session.output.data(t);
    }
    Ok(report.exit())
}

/// Phase 1: the connect sweep, said before and after.
async fn sweep_phase(
    session: &Session,
    targets: &TargetSet,
    opts: &ScanOptions,
    (soft, hard): (u64, u64),
) -> ScanResult {
    let sink = session.output.events();
    sink.emit(Event::Info {
        message: format!(
            "discover: scanning {} addresses on port {}, {} connects in flight (open-file limit {soft}/{hard}), {} connect timeout",
            targets.len(),
            opts.port,
            opts.window,
            crate::duration::format_duration(opts.connect_timeout)
        ),
    });
    let scanned = scan(targets, opts, None).await;
    let stopped = scan_stopped(&scanned);
    sink.emit(Event::Info {
        message: format!(
            "phase 1: {} open of {} scanned in {} ({} refused, {} timed out); {}",
            scanned.open.len(),
            scanned.scanned,
            crate::duration::format_duration(scanned.elapsed),
            scanned.refused,
            scanned.timed_out,
            match stopped {
                Some(why) => format!(
                    "{why} after {} of {} addresses: the rest were not scanned",
                    scanned.scanned,
                    targets.len()
                ),
                None => "identifying the open ones".to_string(),
            }
        ),
    });
    scanned
}

/// Phase 2: identify every open host; also hands back the full disk facts
/// of maintenance hosts, for the skeleton only (the events and the report
/// carry the one-line descriptions).
async fn identify_phase(
    session: &Session,
    access: Access,
    scanned: &ScanResult,
) -> (Vec<NodeOutcome>, BTreeMap<IpAddr, Vec<DiskFacts>>) {
    let run = session.run_context(RetryPolicy::once());
    let access = Arc::new(access);
    let items = scanned
        .open
        .iter()
        .map(|addr| {
            let node = NodeRef::new(addr.ip().to_string(), addr.ip(), None);
            (node.clone(), Endpoint { node, addr: *addr })
        })
        .collect();
    let disk_facts: DiskFactsByIp = Arc::new(Mutex::new(BTreeMap::new()));
    let outcomes = {
        let disk_facts = disk_facts.clone();
        run_nodes(&run, items, move |ctx, ep| {
            let access = access.clone();
            let disk_facts = disk_facts.clone();
            async move { identify(&ctx, &access, ep.addr, &disk_facts).await }
        })
        .await
    };
    let disk_facts = disk_facts
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_default();
    (outcomes, disk_facts)
}

/// The report's `scan` details.
fn scan_details(scanned: &ScanResult, targets: u128, opts: &ScanOptions) -> serde_json::Value {
    json!({
        "scan": {
            "targets": targets.to_string(),
            "scanned": scanned.scanned,
            "open": scanned.open.len(),
            "refused": scanned.refused,
            "timed_out": scanned.timed_out,
            "errors": scanned.errors,
            "elapsed_ms": scanned.elapsed.as_millis() as u64,
            "window": opts.window,
            "connect_timeout_ms": opts.connect_timeout.as_millis() as u64,
            "port": opts.port,
            "deadline_reached": scanned.deadline_reached,
            "interrupted": scanned.interrupted,
        }
    })
}

/// A scan cut short is not a success, even when every host it reached was
/// identified: the rest of the range was never looked at.
fn scan_exit(scanned: &ScanResult) -> Option<Exit> {
    if scanned.interrupted {
        Some(Exit::Interrupted)
    } else if scanned.deadline_reached {
        Some(Exit::Deadline)
    } else {
        None
    }
}

/// Why the scan stopped before the end, in words (None: it did not).
fn scan_stopped(scanned: &ScanResult) -> Option<&'static str> {
    if scanned.interrupted {
        Some("interrupted (Ctrl-C)")
    } else if scanned.deadline_reached {
        Some("stopped by --timeout")
    } else {
        None
    }
}

fn discover_access(args: &DiscoverSettings) -> Result<Access, CommandError> {
    let timeouts = Timeouts {
        connect: args.connect_timeout.max(std::time::Duration::from_secs(1)),
        tls: std::time::Duration::from_secs(3),
        rpc: std::time::Duration::from_secs(5),
    };
    // A talosconfig is optional here: without one, configured nodes are reported but not read.
    let env_set = std::env::var_os("TALOSCONFIG").is_some_and(|v| !v.is_empty());
    // As the other commands look: talhelper's clusterconfig/talosconfig in
    // the working directory comes after $TALOSCONFIG, before ~/.talos/config.
    let talhelper = std::path::Path::new("clusterconfig/talosconfig");
    let path = if args.talosconfig.is_some() || env_set {
        Some(talosconfig::locate(args.talosconfig.as_deref()).map_err(CommandError::input)?)
    } else if talhelper.is_file() {
        Some(talhelper.to_path_buf())
    } else {
        talosconfig::locate_optional().map_err(CommandError::input)?
    };
    let tc = match path {
        Some(p) => Some(Arc::new(
            talosconfig::load(&p, args.context.as_deref()).map_err(CommandError::input)?,
        )),
        None => None,
    };
    let secure = match &tc {
        Some(t) => Some(tls::secure_config(&t.credentials).map_err(CommandError::input)?),
        None => None,
    };
    Ok(Access {
        talosconfig: tc,
        secure,
        maintenance: tls::maintenance_config(&[]),
        pins: Vec::new(),
        timeouts,
        first_round: None,
    })
}

type DiskFactsByIp = Arc<Mutex<BTreeMap<IpAddr, Vec<DiskFacts>>>>;

async fn identify(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    addr: SocketAddr,
    disk_facts: &DiskFactsByIp,
) -> Result<Done, StepError> {
    let creds = access.talosconfig.as_ref().map(|t| t.credentials.clone());
    let mode = ctx
        .step("identify", |_| {
            let creds = creds.clone();
            async move { Ok::<_, StepError>(probe(addr, creds.as_deref(), &access.timeouts).await) }
        })
        .await?;
    ctx.fact("mode", mode_word(&mode));
    match mode {
        ProbeResult::Unreachable { reason, .. } => {
            Ok(Done::Warning(format!("gone since the scan ({reason})")))
        }
        ProbeResult::NotTalos { reason } => Ok(Done::Skipped(format!("not Talos: {reason}"))),
        ProbeResult::Maintenance { fingerprint, .. } => {
            ctx.fact("fingerprint", &fingerprint);
            identify_maintenance(ctx, access, addr, disk_facts).await
        }
        ProbeResult::Configured {
            ours: Some(false),
            issuer,
            ..
        } => {
            ctx.fact("issuer", &issuer);
            Ok(Done::Ok(format!("configured by another CA ({issuer})")))
        }
        ProbeResult::Configured {
            ours: None,
            issuer,
            subject,
        } => {
            ctx.fact("issuer", &issuer);
            Ok(Done::Ok(format!(
                "configured Talos ({subject}); pass --talosconfig to read it"
            )))
        }
        ProbeResult::Configured {
            ours: Some(true), ..
        } => identify_ours(ctx, access, addr).await,
    }
}

/// A maintenance host: stage, version and disks, each best effort.
async fn identify_maintenance(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    addr: SocketAddr,
    disk_facts: &DiskFactsByIp,
) -> Result<Done, StepError> {
    let c = NodeClient::connect_maintenance(addr, access.maintenance.clone(), &access.timeouts)
        .await
        .map_err(talos_err)?;
    let stage = c
        .machine_status()
        .await
        .map(|s| s.stage.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let version = c.talos_version().await.ok().flatten();
    let disks = c.disks().await.unwrap_or_default();
    ctx.fact("stage", &stage);
    ctx.fact("version", version.as_deref().unwrap_or("≤ v1.9"));
    ctx.fact("disks", disks.iter().map(describe_disk).collect::<Vec<_>>());
    if let Ok(mut m) = disk_facts.lock() {
        m.insert(addr.ip(), disks.clone());
    }
    Ok(Done::Ok(format!(
        "maintenance, {}, {} disk{}",
        version.as_deref().unwrap_or("Talos ≤ v1.9"),
        disks.len(),
        if disks.len() == 1 { "" } else { "s" }
    )))
}

/// A node configured by our CA, read over mTLS (each reading best effort):
/// version, role, hostname, boot time, stage and, on a control plane, etcd.
async fn identify_ours(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    addr: SocketAddr,
) -> Result<Done, StepError> {
    let Some(tls) = access.secure.clone() else {
        return Ok(Done::Ok("configured by our CA".into()));
    };
    let c = NodeClient::connect_secure(addr, tls, &access.timeouts)
        .await
        .map_err(talos_err)?;
    let version = c
        .version()
        .await
        .map(|v| v.tag)
        .unwrap_or_else(|_| "unknown".into());
    let role = c
        .machine_type()
        .await
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let hostname = c.hostname().await.ok();
    let boot = c.system_stat().await.ok().map(|s| s.boot_time);
    let stage = c
        .machine_status()
        .await
        .map(|s| s.stage.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let ep = Endpoint {
        node: ctx.node.clone(),
        addr,
    };
    let etcd = if role == "controlplane" || role == "init" {
        let v = etcd_view(access, &ep).await;
        Some(if v.has_etcd() {
            "member"
        } else {
            v.etcd_state
                .as_deref()
                .map(|_| "not bootstrapped")
                .unwrap_or("unknown")
        })
    } else {
        None
    };
    ctx.fact("version", &version);
    ctx.fact("role", &role);
    ctx.fact("stage", &stage);
    if let Some(h) = &hostname {
        ctx.fact("hostname", h);
    }
    if let Some(b) = boot {
        ctx.fact("boot_time", b);
    }
    if let Some(e) = etcd {
        ctx.fact("etcd", e);
    }
    Ok(Done::Ok(format!(
        "{} {role}, {version}, {stage}{}",
        hostname.as_deref().unwrap_or("configured"),
        etcd.map(|e| format!(", etcd {e}")).unwrap_or_default()
    )))
}
