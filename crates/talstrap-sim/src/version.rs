//! Talos version strings (`v1.12.11`) and the behaviours that depend on them.
//!
//! Every simulated node runs one Talos version (the fleet's, or its own in a
//! scenario). The predicates below name each behaviour that changed between
//! the releases the simulator models, with the Talos change that made it;
//! handlers and the state machine ask them instead of comparing numbers.

/// The releases the simulator models, oldest first, as `sim --talos-version`
/// accepts them (`1.12`) and the full tag each one reports.
pub const RELEASES: &[(&str, &str)] = &[
    ("1.12", "v1.12.11"),
    ("1.13", "v1.13.9"),
    ("1.14", "v1.14.0-rc.1"),
];

/// The newest modelled release: the default of `talstrap sim` and `demo`.
pub const NEWEST: &str = "v1.14.0-rc.1";

/// `1.13`, `v1.13`, or a full tag (`v1.13.3`) → the tag a node reports.
/// A bare minor picks the patch release the simulator is modelled on; a
/// full tag is kept as given. Minors outside 1.12–1.14 are refused.
pub fn resolve(text: &str) -> Result<String, String> {
    let t = text.trim();
    let bare = t.trim_start_matches('v');
    if let Some((_, tag)) = RELEASES.iter().find(|(minor, _)| *minor == bare) {
        return Ok((*tag).to_string());
    }
    let supported = RELEASES
        .iter()
        .map(|(m, _)| *m)
        .collect::<Vec<_>>()
        .join(", ");
    match parse(t) {
        Some((1, minor, _)) if (12..=14).contains(&minor) && bare.matches('.').count() >= 2 => {
            Ok(format!("v{bare}"))
        }
        _ => Err(format!(
            "unsupported Talos version {t:?}: the simulator models {supported}"
        )),
    }
}

/// Parses `v1.12.11` / `1.12` into (major, minor, patch).
pub fn parse(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// Whether `version` is at least `major.minor` (unparsable versions count
/// as the newest, the simulator's default).
pub fn at_least(version: &str, major: u32, minor: u32) -> bool {
    parse(version).is_none_or(|(ma, mi, _)| (ma, mi) >= (major, minor))
}

/// Whether `version` is at least `major.minor.patch`.
pub fn at_least_patch(version: &str, major: u32, minor: u32, patch: u32) -> bool {
    parse(version).is_none_or(|v| v >= (major, minor, patch))
}

/// v1.13+: maintenance mode is served by apid (reader role for everyone,
/// `Version` answers, admin-only calls are PermissionDenied, every apply
/// mode is accepted and mapped). Talos commit b7d70cf62; Talos v1.13.9
/// internal/app/machined/pkg/controllers/runtime/api_service_config.go.
pub fn maintenance_in_apid(version: &str) -> bool {
    at_least(version, 1, 13)
}

/// v1.13+: Bootstrap on a worker is Unimplemented (v1.12: FailedPrecondition).
/// Talos commit da70cedfd; Talos v1.13.9
/// internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go `Bootstrap`.
pub fn worker_bootstrap_unimplemented(version: &str) -> bool {
    at_least(version, 1, 13)
}

/// v1.14: REBOOT on a configured node is Unimplemented, AUTO never reboots,
/// `CanApplyImmediate` and the "already applied and rebooting" guard are
/// gone. Talos commit 995bc30d5; Talos v1.14.0-rc.1
/// internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go
/// `ApplyConfiguration`.
pub fn reboot_mode_removed(version: &str) -> bool {
    at_least(version, 1, 14)
}

/// v1.14: the UnattendedInstallConfig document, its status resource, the
/// Kube* documents, Bootstrap waiting for the install and refusing a config
/// without an etcd CA. Talos v1.14.0-rc.1
/// pkg/machinery/config/types/runtime/unattended_install.go,
/// internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go `IsBootstrapAllowed`.
pub fn unattended_install(version: &str) -> bool {
    at_least(version, 1, 14)
}

/// The two FailedPrecondition apply guards exist from v1.12.9 and v1.13.3
/// (Talos commit 01b434870) and, on v1.14, only "in progress" remains.
pub fn apply_reboot_guard(version: &str) -> bool {
    match parse(version) {
        Some((1, 12, p)) => p >= 9,
        Some((1, 13, p)) => p >= 3,
        Some((1, m, _)) if m < 12 => false,
        _ => !reboot_mode_removed(version),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compares_minor_versions() {
        assert_eq!(parse("v1.12.11"), Some((1, 12, 11)));
        assert_eq!(parse("1.9"), Some((1, 9, 0)));
        assert_eq!(parse("v1.13.0-alpha.1"), Some((1, 13, 0)));
        assert!(at_least("v1.12.11", 1, 12));
        assert!(at_least("v1.10.0", 1, 10));
        assert!(!at_least("v1.9.5", 1, 10));
        assert!(!at_least("v1.11.3", 1, 12));
        assert!(at_least("latest", 1, 12));
    }

    #[test]
    fn resolves_minors_and_tags() {
        assert_eq!(resolve("1.12").unwrap(), "v1.12.11");
        assert_eq!(resolve("v1.13").unwrap(), "v1.13.9");
        assert_eq!(resolve("1.14").unwrap(), NEWEST);
        assert_eq!(resolve("v1.13.2").unwrap(), "v1.13.2");
        assert_eq!(resolve("1.13.2").unwrap(), "v1.13.2");
        let err = resolve("1.11").unwrap_err();
        assert!(err.contains("1.12, 1.13, 1.14"), "{err}");
        assert!(resolve("1.15").is_err());
        assert!(resolve("latest").is_err());
    }

    #[test]
    fn behaviours_change_at_their_release() {
        assert!(!maintenance_in_apid("v1.12.11") && maintenance_in_apid("v1.13.0"));
        assert!(!worker_bootstrap_unimplemented("v1.12.11"));
        assert!(worker_bootstrap_unimplemented("v1.13.9"));
        assert!(!reboot_mode_removed("v1.13.9") && reboot_mode_removed(NEWEST));
        assert!(!unattended_install("v1.13.9") && unattended_install("v1.14.0"));
        assert!(!apply_reboot_guard("v1.12.8") && apply_reboot_guard("v1.12.9"));
        assert!(!apply_reboot_guard("v1.13.2") && apply_reboot_guard("v1.13.3"));
        assert!(!apply_reboot_guard(NEWEST));
    }
}
