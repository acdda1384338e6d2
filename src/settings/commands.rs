//! Settings of the commands that work on nodes: preflight, apply, verify,
//! bootstrap and discover.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{
    ApplyArgs, ApplyModeArg, BootstrapArgs, DiscoverArgs, PhaseArg, PreflightArgs, VerifyArgs,
};
use crate::commands::verify::Phase;
use crate::discovery::{TargetSet, parse_targets};
use crate::talos::ApplyMode;

use super::{InventorySettings, PacingSettings};

/// `talstrap preflight`.
#[derive(Debug, Clone)]
pub(crate) struct PreflightSettings {
    /// Also have maintenance-mode nodes validate their configs (dry run).
    pub(crate) server_dry_run: bool,
    pub(crate) inventory: InventorySettings,
    pub(crate) pacing: PacingSettings,
}

impl PreflightSettings {
    pub(crate) fn resolve(a: PreflightArgs) -> Result<Self, String> {
        Ok(PreflightSettings {
            server_dry_run: a.server_dry_run,
            inventory: InventorySettings::resolve(a.inventory)?,
            pacing: PacingSettings::resolve(a.pacing),
        })
    }
}

/// `talstrap apply`.
#[derive(Debug, Clone)]
pub(crate) struct ApplySettings {
    /// The mode for configured nodes (maintenance always gets auto).
    pub(crate) mode: ApplyMode,
    /// With `--mode try`: how long until Talos rolls the config back.
    pub(crate) try_timeout: Duration,
    /// Show what would change; never combined with `wait`.
    pub(crate) dry_run: bool,
    /// Then wait for the nodes as verify does.
    pub(crate) wait: bool,
    /// Workers a rebooting rollout may take down at once.
    pub(crate) max_unavailable: usize,
    pub(crate) allow_degraded_etcd: bool,
    pub(crate) stuck_after: Duration,
    pub(crate) inventory: InventorySettings,
    pub(crate) pacing: PacingSettings,
}

impl ApplySettings {
    pub(crate) fn resolve(a: ApplyArgs) -> Result<Self, String> {
        if a.dry_run && a.wait {
            return Err(
                "--dry-run and --wait cannot be combined: a dry run changes nothing to wait for"
                    .into(),
            );
        }
        Ok(ApplySettings {
            mode: match a.mode {
                ApplyModeArg::Auto => ApplyMode::Auto,
                ApplyModeArg::NoReboot => ApplyMode::NoReboot,
                ApplyModeArg::Reboot => ApplyMode::Reboot,
                ApplyModeArg::Staged => ApplyMode::Staged,
                ApplyModeArg::Try => ApplyMode::Try,
            },
            try_timeout: a.try_timeout,
            dry_run: a.dry_run,
            wait: a.wait,
            max_unavailable: a.max_unavailable as usize,
            allow_degraded_etcd: a.allow_degraded_etcd,
            stuck_after: a.stuck_after,
            inventory: InventorySettings::resolve(a.inventory)?,
            pacing: PacingSettings::resolve(a.pacing),
        })
    }
}

/// `talstrap verify`.
#[derive(Debug, Clone)]
pub(crate) struct VerifySettings {
    /// The state to wait for; `None` (`--phase auto`): decided from the
    /// cluster (etcd found means post-bootstrap).
    pub(crate) phase: Option<Phase>,
    pub(crate) stuck_after: Duration,
    pub(crate) inventory: InventorySettings,
    pub(crate) pacing: PacingSettings,
}

impl VerifySettings {
    pub(crate) fn resolve(a: VerifyArgs) -> Result<Self, String> {
        Ok(VerifySettings {
            phase: match a.phase {
                PhaseArg::Auto => None,
                PhaseArg::PreBootstrap => Some(Phase::PreBootstrap),
                PhaseArg::PostBootstrap => Some(Phase::PostBootstrap),
            },
            stuck_after: a.stuck_after,
            inventory: InventorySettings::resolve(a.inventory)?,
            pacing: PacingSettings::resolve(a.pacing),
        })
    }
}

/// `talstrap bootstrap`.
#[derive(Debug, Clone)]
pub(crate) struct BootstrapSettings {
    /// Elect the target; never combined with `-n`.
    pub(crate) auto: bool,
    /// With `auto`: scan these ranges for candidates (then `quorum` is set).
    pub(crate) cidr: Vec<String>,
    pub(crate) quorum: Option<u32>,
    pub(crate) wait_members: bool,
    pub(crate) allow_unreachable_control_planes: bool,
    pub(crate) etcd_timeout: Duration,
    pub(crate) kubeconfig: Option<PathBuf>,
    pub(crate) force: bool,
    pub(crate) resend_after: Duration,
    pub(crate) inventory: InventorySettings,
    pub(crate) pacing: PacingSettings,
}

impl BootstrapSettings {
    pub(crate) fn resolve(a: BootstrapArgs) -> Result<Self, String> {
        if a.auto && !a.inventory.nodes.is_empty() {
            return Err(
                "--auto elects the target itself: drop -n/--nodes, or drop --auto to bootstrap that node"
                    .into(),
            );
        }
        Ok(BootstrapSettings {
            auto: a.auto,
            cidr: a.cidr,
            quorum: a.quorum,
            wait_members: a.wait_members,
            allow_unreachable_control_planes: a.allow_unreachable_control_planes,
            etcd_timeout: a.etcd_timeout,
            kubeconfig: a.kubeconfig,
            force: a.force,
            resend_after: a.resend_after,
            inventory: InventorySettings::resolve(a.inventory)?,
            pacing: PacingSettings::resolve(a.pacing),
        })
    }
}

/// `talstrap discover`.
#[derive(Debug, Clone)]
pub(crate) struct DiscoverSettings {
    /// The addresses to scan (ranges larger than /16 only when allowed).
    pub(crate) targets: TargetSet,
    pub(crate) connect_timeout: Duration,
    /// Connects in flight; `None`: sized from the open-file limit.
    pub(crate) window: Option<usize>,
    pub(crate) skeleton: bool,
    pub(crate) talosconfig: Option<PathBuf>,
    pub(crate) context: Option<String>,
}

impl DiscoverSettings {
    pub(crate) fn resolve(a: DiscoverArgs) -> Result<Self, String> {
        Ok(DiscoverSettings {
            targets: parse_targets(&a.cidrs, a.allow_large_scan).map_err(|e| e.to_string())?,
            connect_timeout: a.connect_timeout,
            window: a.window,
            skeleton: a.skeleton,
            talosconfig: a.talosconfig,
            context: a.context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::CommandSettings;
    use super::super::tests::resolve_line;

    #[test]
    fn conflicting_flags_are_refused_by_name() {
        let err = resolve_line("talstrap apply --dry-run --wait")
            .err()
            .expect("refused");
        assert!(
            err.starts_with("--dry-run and --wait cannot be combined"),
            "{err}"
        );
        let err = resolve_line("talstrap bootstrap --auto -n cp1")
            .err()
            .expect("refused");
        assert!(err.starts_with("--auto elects the target itself"), "{err}");
    }

    #[test]
    fn modes_and_phases_become_the_commands_own_words() {
        let Ok(CommandSettings::Apply(a)) = resolve_line("talstrap apply --mode no-reboot --wait")
        else {
            panic!("apply")
        };
        assert_eq!(a.mode, crate::talos::ApplyMode::NoReboot);
        assert!(a.wait && !a.dry_run);
        let Ok(CommandSettings::Verify(v)) = resolve_line("talstrap verify") else {
            panic!("verify")
        };
        assert_eq!(v.phase, None);
        let Ok(CommandSettings::Verify(v)) = resolve_line("talstrap verify --phase post-bootstrap")
        else {
            panic!("verify")
        };
        assert_eq!(v.phase, Some(crate::commands::verify::Phase::PostBootstrap));
    }

    #[test]
    fn discover_ranges_are_read_before_the_scan() {
        let Ok(CommandSettings::Discover(d)) = resolve_line("talstrap discover 127.0.42.0/30")
        else {
            panic!("discover")
        };
        // The host addresses of a /30: network and broadcast are not scanned.
        assert_eq!(d.targets.len(), 2);
        assert!(resolve_line("talstrap discover 127.0.0.0/8").is_err());
        assert!(resolve_line("talstrap discover 127.0.0.0/8 --allow-large-scan").is_ok());
    }
}
