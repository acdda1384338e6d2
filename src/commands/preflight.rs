//! `talstrap preflight`: look at every node before touching it.
//!
//! Per node: probe the mode; read stage, Talos version and disks; evaluate
//! `machine.install.disk`/`diskSelector` locally with Talos's rules (no match
//! = error listing the disks that exist; several = warning naming them);
//! optionally let a maintenance node validate its config (`dry_run`).
//! Nothing is written to any node.

use std::sync::Arc;

use crate::disksel::{self, DiskFacts};
use crate::exit::Exit;
use crate::inventory::{NodeEntry, Role};
use crate::output::Report;
use crate::pipeline::{Done, ErrorKind, NodeCtx, StepError, run_nodes};
use crate::settings::PreflightSettings;
use crate::talos::probe::ProbeResult;
use crate::talos::{ApplyMode, MachineRole, Stage};

use super::plan::{Access, PlannedNode};
use super::{CommandError, Session};
use crate::ops::node::{
    client_step, connect_maintenance, connect_secure, describe_disk, probe_step, unusable_mode,
};

pub(crate) async fn run(session: &Session, args: PreflightSettings) -> Result<Exit, CommandError> {
    let plan = session.plan(&args.inventory, &args.pacing).await?;
    for w in &plan.warnings {
        session
            .output
            .events()
            .emit(crate::pipeline::Event::Warning {
                node: None,
                message: w.clone(),
            });
    }
    let run = session.run_context(plan.retry.clone());
    run.emit(crate::pipeline::Event::RunStarted {
        command: "preflight".into(),
        nodes: plan.nodes.len(),
        parallel: run.parallel,
    });
    let access = Arc::new(plan.access.clone());
    let server_dry_run = args.server_dry_run;
    let items = plan
        .nodes
        .iter()
        .map(|n| (n.node.clone(), n.clone()))
        .collect();
    let outcomes = run_nodes(&run, items, move |ctx, node| {
        let access = access.clone();
        async move { preflight_node(&ctx, &access, &node, server_dry_run).await }
    })
    .await;
    let report = Report::new("preflight", outcomes, session.elapsed(), None);
    session.output.report(&report);
    Ok(report.exit())
}

async fn preflight_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    server_dry_run: bool,
) -> Result<Done, StepError> {
    let mode = probe_step(ctx, access, node.addr).await?;
    if let Some(err) = unusable_mode(&mode, access) {
        ctx.amend_last_step(crate::pipeline::StepStatus::Failed, err.message.clone());
        return Err(err);
    }
    let facts = match mode {
        ProbeResult::Maintenance { fingerprint, .. } => {
            ctx.fact("fingerprint", &fingerprint);
            look_at_maintenance(ctx, access, node, server_dry_run).await?
        }
        ProbeResult::Configured { .. } => look_at_configured(ctx, access, node).await?,
        // Unreachable is retried inside probe_step; the rest was handled above.
        other => return Err(StepError::permanent(format!("unexpected mode {other:?}"))),
    };
    verdict(node.entry.role, &facts)
}

/// What preflight learnt about one node, for [`verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Facts {
    /// A node in maintenance mode: its Talos version (`None`: v1.9 or
    /// older, which cannot say) and the disk it would install to.
    Maintenance {
        version: Option<String>,
        install: InstallDisk,
    },
    /// A configured node: the role it runs as, its version and stage.
    Configured {
        role: MachineRole,
        version: String,
        stage: Stage,
    },
}

/// The per-node verdict: facts in, the node's result out. A maintenance
/// node with install-disk warnings is a warning; a configured node must run
/// as the role the inventory gives it (an init node counts as a control
/// plane).
fn verdict(expected: Role, facts: &Facts) -> Result<Done, StepError> {
    match facts {
        Facts::Maintenance { version, install } => {
            let summary = format!(
                "maintenance, {}, install to {}",
                version.as_deref().unwrap_or("Talos ≤ v1.9"),
                install.chosen
            );
            if install.warnings.is_empty() {
                Ok(Done::Ok(summary))
            } else {
                Ok(Done::Warning(summary))
            }
        }
        Facts::Configured {
            role,
            version,
            stage,
        } => {
            let role_ok = match expected {
                Role::ControlPlane => role.is_control_plane(),
                Role::Worker => *role == MachineRole::Worker,
            };
            if !role_ok {
                return Err(StepError::new(
                    ErrorKind::Input,
                    format!("node runs as {role}, but talconfig.yaml says {expected}"),
                )
                .with_hint(
                    "a role change needs a reset of the node; check controlPlane in talconfig.yaml",
                ));
            }
            Ok(Done::Ok(format!(
                "configured ({role}), {version}, stage {stage}"
            )))
        }
    }
}

/// Read a maintenance node: stage, version (and the document kinds it
/// knows), disks and the install disk; optionally let it validate the
/// config (`--server-dry-run`).
async fn look_at_maintenance(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    server_dry_run: bool,
) -> Result<Facts, StepError> {
    let client = ctx
        .step("connect", |_| connect_maintenance(access, node))
        .await?;
    let status = client_step(ctx, "stage", &client, |c| async move {
        c.machine_status().await
    })
    .await?;
    ctx.fact("stage", status.stage.to_string());
    let version = client_step(ctx, "version", &client, |c| async move {
        c.talos_version().await
    })
    .await?;
    ctx.fact("version", version.as_deref().unwrap_or("v1.9 or older"));
    if let Some(v) = &version {
        check_kinds(&node.entry, v)?;
    }
    let disks = client_step(ctx, "disks", &client, |c| async move { c.disks().await }).await?;
    ctx.fact("disks", disks.iter().map(describe_disk).collect::<Vec<_>>());
    let install = ctx
        .step_with(
            "install-disk",
            &crate::pipeline::RetryPolicy::once(),
            |_| {
                let r = evaluate_install_disk(&node.entry, &disks);
                async move { r }
            },
        )
        .await?;
    ctx.fact("install_disk", &install.chosen);
    for w in &install.warnings {
        ctx.warn(w.clone());
    }
    if server_dry_run {
        let data = node.entry.config.raw().to_vec();
        let result = client_step(ctx, "server-dry-run", &client, |c| {
            let data = data.clone();
            async move {
                c.apply_configuration(&data, ApplyMode::Auto, true, None)
                    .await
            }
        })
        .await?;
        for w in &result.warnings {
            ctx.warn(format!("node validation: {w}"));
        }
        ctx.fact(
            "server_dry_run",
            crate::ops::node::safe_mode_details(&result.mode_details),
        );
    }
    Ok(Facts::Maintenance { version, install })
}

/// Read a configured node over mTLS: stage, version and the role it runs as.
async fn look_at_configured(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
) -> Result<Facts, StepError> {
    let client = ctx
        .step("connect", |_| connect_secure(access, node))
        .await?;
    let status = client_step(ctx, "stage", &client, |c| async move {
        c.machine_status().await
    })
    .await?;
    ctx.fact("stage", status.stage.to_string());
    let version = client_step(
        ctx,
        "version",
        &client,
        |c| async move { c.version().await },
    )
    .await?;
    ctx.fact("version", &version.tag);
    let role = client_step(
        ctx,
        "role",
        &client,
        |c| async move { c.machine_type().await },
    )
    .await?;
    ctx.fact("running_role", role.to_string());
    Ok(Facts::Configured {
        role,
        version: version.tag,
        stage: status.stage,
    })
}

/// The disk a node would install to, and warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstallDisk {
    pub chosen: String,
    pub warnings: Vec<String>,
}

/// Evaluate `machine.install.disk` / `diskSelector` against the node's disks
/// with Talos's rules.
pub(crate) fn evaluate_install_disk(
    entry: &NodeEntry,
    disks: &[DiskFacts],
) -> Result<InstallDisk, StepError> {
    let listing = || {
        if disks.is_empty() {
            "the node reports no disks".to_string()
        } else {
            format!(
                "disks on the node: {}",
                disks
                    .iter()
                    .map(describe_disk)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    };
    let cfg = &entry.config;
    if let Some(expr) = &cfg.unattended_match {
        return unattended_install_disk(entry, expr, disks, &listing());
    }
    if let Some(sel) = &cfg.disk_selector {
        let matched = disksel::select_disks(sel, disks).map_err(|e| {
            StepError::new(
                ErrorKind::Input,
                format!(
                    "{}: machine.install.diskSelector: {e}",
                    entry.config_path.display()
                ),
            )
        })?;
        let sel_text = serde_json::to_string(sel).unwrap_or_default();
        return match matched.as_slice() {
            [] => Err(StepError::new(
                ErrorKind::Input,
                format!("install diskSelector {sel_text} matches no disk; {}", listing()),
            )
            .with_hint("edit installDiskSelector for this node in talconfig.yaml (Talos ignores read-only, cdrom and transport-less disks), then talhelper genconfig")),
            [one] => Ok(InstallDisk {
                chosen: one.dev_path.clone(),
                warnings: vec![],
            }),
            many => Ok(InstallDisk {
                chosen: many[0].dev_path.clone(),
                warnings: vec![format!(
                    "install diskSelector {sel_text} matches {} disks: {}; Talos installs to one of them — make the selector specific so a data disk is never wiped",
                    many.len(),
                    many.iter().map(|d| describe_disk(d)).collect::<Vec<_>>().join("; ")
                )],
            }),
        };
    }
    if let Some(path) = &cfg.install_disk {
        if let Some(d) = crate::ops::unattended::disk_for_path(path, disks) {
            // A /dev/disk/by-* link: the installer resolves it on the node.
            let chosen = if &d.dev_path == path {
                path.clone()
            } else {
                format!("{path} → {}", d.dev_path)
            };
            return Ok(InstallDisk {
                chosen,
                warnings: vec![],
            });
        }
        return Err(StepError::new(
            ErrorKind::Input,
            format!("install disk {path} does not exist on this node; {}", listing()),
        )
        .with_hint("set installDisk (or installDiskSelector) for this node in talconfig.yaml to one of the disks listed"));
    }
    Err(StepError::new(
        ErrorKind::Input,
        format!(
            "{}: neither machine.install.disk nor machine.install.diskSelector is set; {}",
            entry.config_path.display(),
            listing()
        ),
    ))
}

/// v1.14 `UnattendedInstallConfig`: the node evaluates the CEL selector
/// over every disk and installs to the first match; nothing checks it when
/// the config is applied, so a selector that matches nothing would leave
/// the node booting forever ("no disk matched the selector").
fn unattended_install_disk(
    entry: &NodeEntry,
    expr: &str,
    disks: &[DiskFacts],
    listing: &str,
) -> Result<InstallDisk, StepError> {
    let field = "UnattendedInstallConfig provisioning.diskSelector.match";
    let matched = crate::ops::unattended::matching_disks(expr, disks).map_err(|e| {
        StepError::new(
            ErrorKind::Input,
            format!("{}: {field} {expr:?}: {}", entry.config_path.display(), e.0),
        )
        .with_hint("the selector is CEL over `disk` (e.g. disk.transport == \"nvme\", disk.size >= 400u * GB: sizes are unsigned, note the `u`)")
    })?;
    let Some(first) = matched.first() else {
        return Err(StepError::new(
            ErrorKind::Input,
            format!("{field} {expr:?} matches no disk; {listing}"),
        )
        .with_hint("Talos would wait forever with \"no disk matched the selector\": edit the selector in the UnattendedInstallConfig document (CD-ROMs and read-only disks are not excluded for you)"));
    };
    let mut warnings = Vec::new();
    if matched.len() > 1 {
        warnings.push(format!(
            "{field} {expr:?} matches {} disks: {}; Talos installs to the first, {} — make the selector specific so a data disk is never wiped",
            matched.len(),
            matched.iter().map(|d| describe_disk(d)).collect::<Vec<_>>().join("; "),
            first.dev_path
        ));
    }
    if first.cdrom || first.readonly {
        warnings.push(format!(
            "{field} {expr:?} picks {}, which is {}: UnattendedInstallConfig does not exclude such disks, and the install will fail or write to boot media",
            first.dev_path,
            if first.cdrom { "a CD-ROM" } else { "read-only" }
        ));
    }
    if first.transport == "usb" || first.transport == "mmc" {
        warnings.push(format!(
            "{field} {expr:?} picks {}, removable media ({}): is that the boot stick?",
            first.dev_path, first.transport
        ));
    }
    Ok(InstallDisk {
        chosen: first.dev_path.clone(),
        warnings,
    })
}

/// Refuses a config with document kinds the node's release does not know.
fn check_kinds(entry: &NodeEntry, version: &str) -> Result<(), StepError> {
    let unknown = kinds_unknown_to(entry, version);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StepError::new(
        ErrorKind::Input,
        format!(
            "{}: documents this node's Talos {version} does not know: {}; it would refuse the config",
            entry.config_path.display(),
            unknown.join(", ")
        ),
    )
    .with_hint("generate the config for the Talos version the node runs (talhelper: talosVersion), or boot a newer image"))
}

/// Document kinds in `entry`'s config that a node on `version` does not
/// register: it would refuse the whole config ("not registered").
pub(crate) fn kinds_unknown_to(entry: &NodeEntry, version: &str) -> Vec<String> {
    let Some(minor) = crate::talos::version_minor(version) else {
        return Vec::new();
    };
    entry
        .config
        .extra_documents
        .iter()
        .filter_map(|(kind, _)| {
            let since = crate::inventory::config_kind_since(kind)?;
            (since > minor).then(|| format!("{kind} (v1.{since}+)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(warnings: &[&str]) -> InstallDisk {
        InstallDisk {
            chosen: "/dev/sda".into(),
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn configured(role: MachineRole) -> Facts {
        Facts::Configured {
            role,
            version: "v1.12.11".into(),
            stage: Stage::Running,
        }
    }

    #[test]
    fn a_maintenance_node_is_ok_unless_its_install_disk_warns() {
        let clean = Facts::Maintenance {
            version: Some("v1.12.11".into()),
            install: install(&[]),
        };
        assert_eq!(
            verdict(Role::Worker, &clean),
            Ok(Done::Ok(
                "maintenance, v1.12.11, install to /dev/sda".into()
            ))
        );
        let old_and_ambiguous = Facts::Maintenance {
            version: None,
            install: install(&["matches 2 disks"]),
        };
        assert_eq!(
            verdict(Role::ControlPlane, &old_and_ambiguous),
            Ok(Done::Warning(
                "maintenance, Talos ≤ v1.9, install to /dev/sda".into()
            ))
        );
    }

    #[test]
    fn a_configured_node_must_run_the_inventory_role() {
        for (expected, running, ok) in [
            (Role::ControlPlane, MachineRole::ControlPlane, true),
            (Role::ControlPlane, MachineRole::Init, true),
            (Role::ControlPlane, MachineRole::Worker, false),
            (Role::ControlPlane, MachineRole::Unknown, false),
            (Role::Worker, MachineRole::Worker, true),
            (Role::Worker, MachineRole::Init, false),
            (Role::Worker, MachineRole::ControlPlane, false),
        ] {
            let got = verdict(expected, &configured(running));
            match got {
                Ok(Done::Ok(summary)) if ok => assert_eq!(
                    summary,
                    format!("configured ({running}), v1.12.11, stage running")
                ),
                Err(e) if !ok => {
                    assert_eq!(e.kind, ErrorKind::Input);
                    assert_eq!(
                        e.message,
                        format!("node runs as {running}, but talconfig.yaml says {expected}")
                    );
                    assert!(e.hint.is_some());
                }
                other => panic!("{expected} running as {running}: {other:?}"),
            }
        }
    }
}
