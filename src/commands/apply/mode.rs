//! The apply-mode decision: given the node's mode, the requested mode, its
//! Talos version and what the change touches, which mode goes on the wire
//! and whether the node will reboot. One pure function, so every version
//! rule lives in one place.

use crate::talos::ApplyMode;

/// What is known about the node and the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModeQuery {
    /// The node is in maintenance mode (insecure apply, then install).
    pub maintenance: bool,
    /// `--mode`.
    pub requested: ApplyMode,
    /// Talos (major, minor) of the node, when known.
    pub version: Option<(u32, u32)>,
    /// Configured node: the config differs from the one it runs.
    pub differs: bool,
    /// The change touches settings Talos reboots for under AUTO
    /// (`CanApplyImmediate`, see `diff::needs_reboot`).
    pub reboot_settings: bool,
}

/// How the node will reboot for the change, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reboot {
    /// Applied live (or staged/tried): no reboot now.
    No,
    /// The node reboots itself after the apply (REBOOT, or AUTO answered
    /// with REBOOT on v1.12/v1.13).
    ByNode,
    /// talstrap calls the Reboot RPC after the apply (v1.14 has no REBOOT mode).
    ByRequest,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeDecision {
    /// The node already runs this config.
    Skip,
    Send {
        wire: ApplyMode,
        /// Expected before the node answers (the reply may still say REBOOT).
        reboot: Reboot,
        warning: Option<String>,
        /// Talos v1.14 takes the change live, but some of it is read only
        /// at boot: it waits for the next reboot.
        next_reboot: bool,
    },
}

/// Decide the mode for one node.
pub(crate) fn decide(q: ModeQuery) -> ModeDecision {
    if q.maintenance {
        // The maintenance service accepts AUTO, REBOOT and TRY (v1.12) and
        // maps everything to NO_REBOOT (v1.13+): AUTO is the one mode every
        // version takes. The install that follows is not a rollout reboot.
        let warning = (!matches!(
            q.requested,
            ApplyMode::Auto | ApplyMode::Try | ApplyMode::Reboot
        ))
        .then(|| {
            format!(
                "--mode {} is not accepted in maintenance mode; sending auto",
                q.requested
            )
        });
        return ModeDecision::Send {
            wire: ApplyMode::Auto,
            reboot: Reboot::No,
            warning,
            next_reboot: false,
        };
    }
    if !q.differs {
        return ModeDecision::Skip;
    }
    let v114 = q.version.is_some_and(|v| v >= (1, 14));
    let (wire, reboot) = match q.requested {
        // Talos v1.14: REBOOT is Unimplemented on a configured node; apply
        // without a reboot, then ask for one (internal/integration/api/
        // apply-config.go@v1.14.0-rc.1 does the same).
        ApplyMode::Reboot if v114 => (ApplyMode::NoReboot, Reboot::ByRequest),
        ApplyMode::Reboot => (ApplyMode::Reboot, Reboot::ByNode),
        // v1.14: AUTO never reboots.
        ApplyMode::Auto if v114 => (ApplyMode::Auto, Reboot::No),
        ApplyMode::Auto if q.reboot_settings => (ApplyMode::Auto, Reboot::ByNode),
        other => (other, Reboot::No),
    };
    // v1.14 applies AUTO and NO_REBOOT whatever they change (the live-apply
    // check, `CanApplyImmediate`, was deleted in Talos commit 995bc30d5):
    // what v1.13.9 could not apply live now waits for the next reboot.
    let next_reboot = v114
        && q.reboot_settings
        && reboot == Reboot::No
        && matches!(wire, ApplyMode::Auto | ApplyMode::NoReboot);
    ModeDecision::Send {
        wire,
        reboot,
        warning: None,
        next_reboot,
    }
}

/// After the node answered: will it reboot for this apply?
pub(crate) fn reboots_after(expected: Reboot, replied: ApplyMode) -> Reboot {
    match (expected, replied) {
        (Reboot::ByRequest, _) => Reboot::ByRequest,
        (_, ApplyMode::Reboot) => Reboot::ByNode,
        _ => Reboot::No,
    }
}

/// `v1.14.0-rc.1` → (1, 14).
pub(crate) fn minor_version(tag: &str) -> Option<(u32, u32)> {
    let mut parts = tag.trim().trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(requested: ApplyMode) -> ModeQuery {
        ModeQuery {
            maintenance: false,
            requested,
            version: Some((1, 12)),
            differs: true,
            reboot_settings: false,
        }
    }

    fn send(wire: ApplyMode, reboot: Reboot) -> ModeDecision {
        ModeDecision::Send {
            wire,
            reboot,
            warning: None,
            next_reboot: false,
        }
    }

    #[test]
    fn maintenance_always_gets_auto_and_no_rollout_reboot() {
        for m in [ApplyMode::Auto, ApplyMode::Reboot, ApplyMode::Try] {
            let d = decide(ModeQuery {
                maintenance: true,
                ..q(m)
            });
            assert_eq!(d, send(ApplyMode::Auto, Reboot::No), "{m}");
        }
        let d = decide(ModeQuery {
            maintenance: true,
            ..q(ApplyMode::Staged)
        });
        let ModeDecision::Send { wire, warning, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(wire, ApplyMode::Auto);
        assert!(warning.unwrap().contains("--mode staged"));
    }

    #[test]
    fn an_unchanged_configured_node_is_skipped() {
        let d = decide(ModeQuery {
            differs: false,
            ..q(ApplyMode::Reboot)
        });
        assert_eq!(d, ModeDecision::Skip);
    }

    #[test]
    fn configured_nodes_up_to_v1_13() {
        assert_eq!(
            decide(q(ApplyMode::Reboot)),
            send(ApplyMode::Reboot, Reboot::ByNode)
        );
        assert_eq!(
            decide(q(ApplyMode::Auto)),
            send(ApplyMode::Auto, Reboot::No)
        );
        assert_eq!(
            decide(ModeQuery {
                reboot_settings: true,
                ..q(ApplyMode::Auto)
            }),
            send(ApplyMode::Auto, Reboot::ByNode)
        );
        for m in [ApplyMode::NoReboot, ApplyMode::Staged, ApplyMode::Try] {
            assert_eq!(
                decide(ModeQuery {
                    reboot_settings: true,
                    ..q(m)
                }),
                send(m, Reboot::No)
            );
        }
        // Unknown version: the v1.12 rules.
        assert_eq!(
            decide(ModeQuery {
                version: None,
                ..q(ApplyMode::Reboot)
            }),
            send(ApplyMode::Reboot, Reboot::ByNode)
        );
    }

    #[test]
    fn v1_14_never_sends_reboot() {
        let v = |m| ModeQuery {
            version: Some((1, 14)),
            reboot_settings: true,
            ..q(m)
        };
        assert_eq!(
            decide(v(ApplyMode::Reboot)),
            send(ApplyMode::NoReboot, Reboot::ByRequest)
        );
        // AUTO and NO_REBOOT take a boot-time change live: it waits for
        // the next reboot.
        for m in [ApplyMode::Auto, ApplyMode::NoReboot] {
            assert_eq!(
                decide(v(m)),
                ModeDecision::Send {
                    wire: m,
                    reboot: Reboot::No,
                    warning: None,
                    next_reboot: true,
                },
                "{m}"
            );
            let live = ModeQuery {
                reboot_settings: false,
                ..v(m)
            };
            assert_eq!(decide(live), send(m, Reboot::No), "{m}");
        }
        // Before v1.14 the node reboots (AUTO) or refuses (NO_REBOOT) instead.
        let old = ModeQuery {
            reboot_settings: true,
            ..q(ApplyMode::NoReboot)
        };
        assert_eq!(decide(old), send(ApplyMode::NoReboot, Reboot::No));
    }

    #[test]
    fn versions_read_as_major_minor() {
        assert_eq!(minor_version("v1.14.0-rc.1"), Some((1, 14)));
        assert_eq!(minor_version("v1.12.11"), Some((1, 12)));
        assert_eq!(minor_version("1.13"), Some((1, 13)));
        assert_eq!(minor_version("latest"), None);
    }

    #[test]
    fn the_reply_decides_for_auto() {
        assert_eq!(reboots_after(Reboot::No, ApplyMode::Reboot), Reboot::ByNode);
        assert_eq!(
            reboots_after(Reboot::ByNode, ApplyMode::NoReboot),
            Reboot::No
        );
        assert_eq!(
            reboots_after(Reboot::ByRequest, ApplyMode::NoReboot),
            Reboot::ByRequest
        );
        assert_eq!(
            reboots_after(Reboot::ByNode, ApplyMode::Reboot),
            Reboot::ByNode
        );
    }
}
