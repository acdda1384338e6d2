//! Node operations shared by several commands: probing the mode, connecting
//! the right way, mapping protocol errors to step errors with hints, and
//! describing disks.

use std::net::SocketAddr;

use crate::disksel::DiskFacts;
use crate::pipeline::{ErrorKind, NodeCtx, StepError};
use crate::talos::probe::{NodeMode, probe};
use crate::talos::{ErrorClass, NodeClient, TalosError, TrustKind};

use super::plan::{Access, PlannedNode};

/// Map a protocol error to a step error, keeping its class and code.
pub fn talos_err(e: TalosError) -> StepError {
    let kind = match e.class() {
        ErrorClass::Retryable => ErrorKind::Retryable,
        ErrorClass::Permanent => ErrorKind::Permanent,
        ErrorClass::Trust => ErrorKind::Trust,
        ErrorClass::Input => ErrorKind::Input,
    };
    let mut err = StepError::new(kind, e.to_string());
    if let Some(code) = e.code_name() {
        err = err.with_code(code);
    }
    let trust = e.trust_kind();
    if trust == Some(TrustKind::PinMismatch) {
        err = err.with_hint(
            "the node's maintenance certificate does not match --cert-fingerprint: compare with the fingerprint the node's console printed last. Talos re-issues that certificate with a new key at every boot, on an address, hostname or time change (NTP), and every 12 h, so a pin goes stale; pin it just before the apply, or leave pins out",
        );
    } else if kind == ErrorKind::Trust {
        err = err.with_hint(
            "the node and the talosconfig do not trust each other: check that the talosconfig was generated with this cluster's secrets (talhelper genconfig writes clusterconfig/talosconfig)",
        );
    }
    err
}

/// Same as [`talos_err`], but also retry `FailedPrecondition` (node not ready yet).
pub fn talos_err_retry_precondition(e: TalosError) -> StepError {
    let precondition = e.precondition_failed();
    let err = talos_err(e);
    if precondition {
        err.into_kind(ErrorKind::Retryable)
    } else {
        err
    }
}

/// Short word for a mode, used in facts and tables.
pub fn mode_word(mode: &NodeMode) -> &'static str {
    match mode {
        NodeMode::Unreachable { .. } => "unreachable",
        NodeMode::NotTalos { .. } => "not-talos",
        NodeMode::Maintenance { .. } => "maintenance",
        NodeMode::Configured {
            ours: Some(true), ..
        } => "configured",
        NodeMode::Configured {
            ours: Some(false), ..
        } => "foreign-ca",
        NodeMode::Configured { ours: None, .. } => "configured-unverified",
    }
}

/// Probe the node's mode, retrying while it is unreachable.
pub async fn probe_step(
    ctx: &NodeCtx,
    access: &Access,
    addr: SocketAddr,
) -> Result<NodeMode, StepError> {
    let creds = access.talosconfig.as_ref().map(|t| t.credentials.clone());
    let timeouts = access.timeouts.clone();
    let mode = ctx
        .step("probe", |_| {
            let creds = creds.clone();
            let timeouts = timeouts.clone();
            async move {
                let mode = probe(addr, creds.as_deref(), &timeouts).await;
                match mode {
                    NodeMode::Unreachable { reason, .. } => Err(StepError::retryable(format!(
                        "{addr} unreachable: {reason}"
                    ))
                    .with_hint("check that the node is powered on and that this machine can reach its IP on the Talos API port")),
                    other => Ok(other),
                }
            }
        })
        .await?;
    ctx.fact("mode", mode_word(&mode));
    Ok(mode)
}

/// Error for modes talstrap cannot work with.
pub fn unusable_mode(mode: &NodeMode, access: &Access) -> Option<StepError> {
    match mode {
        NodeMode::NotTalos { reason } => {
            let hint = if mode.tls_hung() {
                "the address accepts TCP connections but never completes a TLS handshake: the node may be hung (power-cycle it), or another service listens there"
            } else {
                "something else answers on this address and port: check the IP in talconfig.yaml and --port"
            };
            Some(StepError::permanent(format!("not a Talos API: {reason}")).with_hint(hint))
        }
        NodeMode::Configured {
            ours: Some(false),
            issuer,
            ..
        } => {
            let ca = access
                .talosconfig
                .as_ref()
                .map(|t| {
                    super::plan::describe_cert(t.credentials.ca_certs().first().map(|c| c.as_ref()))
                })
                .unwrap_or_else(|| "none".into());
            Some(
                StepError::new(
                    ErrorKind::Trust,
                    format!(
                        "node is configured by another cluster: its certificate is issued by \"{issuer}\", not by the talosconfig CA ({ca})"
                    ),
                )
                .with_hint("this node belongs to a different cluster (or was configured with other secrets); talstrap will not write to it. Reset it, or use that cluster's talosconfig"),
            )
        }
        _ => None,
    }
}

/// Open an mTLS client with the talosconfig.
pub async fn connect_secure(access: &Access, node: &PlannedNode) -> Result<NodeClient, StepError> {
    let Some(tls) = access.secure.clone() else {
        return Err(StepError::new(
            ErrorKind::Input,
            "node is configured (it requires a client certificate) but no talosconfig was found",
        )
        .with_hint(
            "pass --talosconfig or set TALOSCONFIG (talhelper writes clusterconfig/talosconfig)",
        ));
    };
    NodeClient::connect_secure(node.addr, tls, &access.timeouts)
        .await
        .map_err(talos_err)
}

/// Open an insecure maintenance-mode client (optionally fingerprint-pinned).
pub async fn connect_maintenance(
    access: &Access,
    node: &PlannedNode,
) -> Result<NodeClient, StepError> {
    NodeClient::connect_maintenance(node.addr, access.maintenance.clone(), &access.timeouts)
        .await
        .map_err(talos_err)
}

/// The human part of ApplyConfiguration's `mode_details`, without the config
/// diff that may follow: a diff of machine configs can carry keys and tokens,
/// so only the number of changed lines is kept.
pub fn safe_mode_details(details: &str) -> String {
    let mut kept = Vec::new();
    let mut diff_lines = 0usize;
    let mut in_diff = false;
    for line in details.lines() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        if !in_diff
            && (lower.starts_with("config diff")
                || lower.starts_with("diff:")
                || lower.ends_with("diff:"))
        {
            in_diff = true;
            if let Some(pos) = t.find("diff:") {
                let before = t[..pos].trim_end_matches(|c: char| c == ':' || c.is_whitespace());
                if !before.is_empty() && !before.eq_ignore_ascii_case("config") {
                    kept.push(before.to_string());
                }
            }
            continue;
        }
        if in_diff {
            if (t.starts_with('+') && !t.starts_with("+++"))
                || (t.starts_with('-') && !t.starts_with("---"))
            {
                diff_lines += 1;
            }
        } else if !t.is_empty() && !t.eq_ignore_ascii_case("dry run summary:") {
            kept.push(t.to_string());
        }
    }
    let mut out = kept.join(" ");
    if in_diff {
        // "… (skipped in dry-run)." then "; config diff …": no ".;".
        out.truncate(out.trim_end_matches('.').len());
        if diff_lines == 0 && details.contains("No changes") {
            out.push_str(if out.is_empty() {
                "no changes"
            } else {
                "; no changes"
            });
        } else {
            out.push_str(&format!(
                "{}config diff: {diff_lines} changed line{} (not shown: configs hold credentials)",
                if out.is_empty() { "" } else { "; " },
                if diff_lines == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

/// `/dev/sda 512 GB nvme "Samsung 980"`
pub fn describe_disk(d: &DiskFacts) -> String {
    let mut s = format!("{} {}", d.dev_path, human_size(d.size));
    if !d.transport.is_empty() {
        s.push(' ');
        s.push_str(&d.transport);
    }
    if d.rotational {
        s.push_str(" rotational");
    }
    if !d.model.is_empty() {
        s.push_str(&format!(" \"{}\"", d.model));
    }
    if d.readonly {
        s.push_str(" read-only");
    }
    if d.cdrom {
        s.push_str(" cdrom");
    }
    s
}

/// Decimal units, as Talos prints disk sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if v >= 100.0 || i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_details_never_carry_the_diff() {
        let d = "Dry run summary:\nApplied configuration without a reboot (skipped in dry-run).\nConfig diff:\n\n--- a\n+++ b\n-  token: abc.secret\n+  token: def.secret\n";
        let s = safe_mode_details(d);
        assert!(
            !s.contains("abc.secret") && !s.contains("def.secret"),
            "{s}"
        );
        assert!(s.contains("2 changed lines"), "{s}");
        assert!(!s.contains(".;"), "{s}");
        assert!(
            s.starts_with("Applied configuration without a reboot"),
            "{s}"
        );
        let r = "Applied configuration with a reboot: this config change can't be applied in immediate mode\ndiff:\n-  type: worker\n+  type: controlplane\n";
        let s = safe_mode_details(r);
        assert!(!s.contains("controlplane"), "{s}");
        assert!(s.contains("immediate mode"), "{s}");
        let m =
            "Dry run summary:\nNode is running in maintenance mode and does not have a config yet.";
        assert_eq!(
            safe_mode_details(m),
            "Node is running in maintenance mode and does not have a config yet."
        );
        let n = "Dry run summary:\nNo changes (skipped in dry-run).\nConfig diff:\n\nNo changes.";
        assert!(safe_mode_details(n).contains("no changes"));
    }

    #[test]
    fn sizes_are_decimal_like_talos() {
        assert_eq!(human_size(512_110_190_592), "512 GB");
        assert_eq!(human_size(2_000_000_000_000), "2.0 TB");
        assert_eq!(human_size(999), "999 B");
    }
}
