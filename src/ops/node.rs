//! Node operations shared by several commands: probing the mode, connecting
//! the right way, mapping protocol errors to step errors with hints, and
//! describing disks.

use std::net::SocketAddr;

use crate::disksel::DiskFacts;
use crate::pipeline::{ErrorKind, NodeCtx, StepError};
use crate::talos::probe::{HeldConnection, ProbeResult, probe_holding};
use crate::talos::{ErrorClass, NodeClient, TalosError, TrustKind};

use crate::commands::plan::{Access, PlannedNode};

/// Map a protocol error to a step error, keeping its class and code.
pub(crate) fn talos_err(e: TalosError) -> StepError {
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
    if e.not_authorized() {
        err = err.with_hint(
            "the node accepted the talosconfig's client certificate, but the Talos role it carries may not make this call: ApplyConfiguration, Bootstrap, Kubeconfig and reading the machine config need os:admin (os:reader and os:operator are refused); use the admin talosconfig (talhelper genconfig writes clusterconfig/talosconfig)",
        );
    } else if trust == Some(TrustKind::PinMismatch) {
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

/// Run one observing step that is a single call on `client`, with the
/// protocol error mapped by [`talos_err`]. Each attempt calls on a clone of
/// the client (a cheap handle on the same connection).
pub(crate) async fn client_step<T, F, Fut>(
    ctx: &NodeCtx,
    name: &str,
    client: &NodeClient,
    call: F,
) -> Result<T, StepError>
where
    F: Fn(NodeClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, TalosError>>,
{
    ctx.step(name, |_| {
        let reply = call(client.clone());
        async move { reply.await.map_err(talos_err) }
    })
    .await
}

/// Short word for a mode, used in facts and tables.
pub(crate) fn mode_word(mode: &ProbeResult) -> &'static str {
    match mode {
        ProbeResult::Unreachable { .. } => "unreachable",
        ProbeResult::NotTalos { .. } => "not-talos",
        ProbeResult::Maintenance { .. } => "maintenance",
        ProbeResult::Configured {
            ours: Some(true), ..
        } => "configured",
        ProbeResult::Configured {
            ours: Some(false), ..
        } => "foreign-ca",
        ProbeResult::Configured { ours: None, .. } => "configured-unverified",
    }
}

/// Probe the node's mode, retrying while it is unreachable.
pub(crate) async fn probe_step(
    ctx: &NodeCtx,
    access: &Access,
    addr: SocketAddr,
) -> Result<ProbeResult, StepError> {
    Ok(probe_step_holding(ctx, access, addr).await?.0)
}

/// [`probe_step`], keeping the probe's connection to a node in maintenance
/// mode for the maintenance client ([`connect_maintenance_over`]).
pub(crate) async fn probe_step_holding(
    ctx: &NodeCtx,
    access: &Access,
    addr: SocketAddr,
) -> Result<(ProbeResult, Option<HeldConnection>), StepError> {
    let creds = access.talosconfig.as_ref().map(|t| t.credentials.clone());
    let timeouts = access.timeouts.clone();
    let first_round = access.first_round.clone();
    let mode = ctx
        .step("probe", |attempt| {
            let creds = creds.clone();
            let timeouts = timeouts.clone();
            let first_round = first_round.clone();
            async move {
                let (mode, held) = probe_holding(addr, creds.as_deref(), &timeouts).await;
                let all_refused = match &first_round {
                    Some(round) if attempt <= 1 => round.every_node_refused(ctx, mode.refused()).await,
                    Some(round) => round.verdict() == Some(true) && mode.refused(),
                    None => false,
                };
                if all_refused {
                    // Said once for the run (see FirstRound), not per node.
                    let err = StepError::retryable(format!(
                        "{addr} refused the connection: nothing listens on port {}",
                        addr.port()
                    ));
                    let whole = first_round.as_ref().is_some_and(|r| r.whole_inventory);
                    return Err(if whole { err.into_kind(ErrorKind::Permanent) } else { err });
                }
                match mode {
                    ProbeResult::Unreachable { reason, .. } => Err(StepError::retryable(format!(
                        "{addr} unreachable: {reason}"
                    ))
                    .with_hint("check that the node is powered on and that this machine can reach its IP on the Talos API port")),
                    other => Ok((other, held)),
                }
            }
        })
        .await?;
    ctx.fact("mode", mode_word(&mode.0));
    Ok(mode)
}

/// The first connect of the nodes that start together, to tell a wrong
/// `--port` (every node refuses: nothing listens there) from a node that is
/// down, after one round instead of after every node's retries, and to say
/// it once for the run instead of once per node.
pub(crate) struct FirstRound {
    /// Nodes whose first connects decide (those started together, at least 2).
    expected: usize,
    /// The run covers every node of the inventory: when all refuse, no node
    /// of the cluster listens on that port, and retrying cannot help. With
    /// some nodes left out (`-n`, `--role`), those may be up on it while the
    /// selected ones are still off or rebooting: then it is said once, and
    /// the retries go on.
    whole_inventory: bool,
    port: u16,
    state: std::sync::Mutex<RoundState>,
    decided: tokio::sync::Notify,
}

#[derive(Default)]
struct RoundState {
    seen: usize,
    refused: usize,
    verdict: Option<bool>,
}

/// How long a refused node waits for the others' first answers; a connect
/// to a refusing host answers in microseconds.
const FIRST_ROUND_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl FirstRound {
    /// `nodes` in the run, `parallel` of them at a time, all on `port`. None
    /// when fewer than two nodes start together: one refusing node may just
    /// be rebooting.
    pub(crate) fn new(
        nodes: usize,
        parallel: usize,
        port: u16,
        whole_inventory: bool,
    ) -> Option<std::sync::Arc<Self>> {
        let expected = nodes.min(parallel);
        (expected >= 2).then(|| {
            std::sync::Arc::new(FirstRound {
                expected,
                whole_inventory,
                port,
                state: std::sync::Mutex::new(RoundState::default()),
                decided: tokio::sync::Notify::new(),
            })
        })
    }

    /// Records a node's first connect; for a refused one, waits (briefly)
    /// for the round's verdict: true when every node of the round refused.
    /// The run-level warning is emitted by the node that completes the round.
    async fn every_node_refused(&self, ctx: &NodeCtx, refused: bool) -> bool {
        let completed = {
            let Ok(mut st) = self.state.lock() else {
                return false;
            };
            if let Some(v) = st.verdict {
                return v && refused;
            }
            st.seen += 1;
            st.refused += usize::from(refused);
            if !refused {
                st.verdict = Some(false);
            } else if st.seen >= self.expected {
                st.verdict = Some(st.refused >= self.expected);
            }
            st.verdict.is_some()
        };
        if completed {
            self.decided.notify_waiters();
            if self.verdict() == Some(true) {
                ctx.run().emit(crate::pipeline::Event::Warning {
                    node: None,
                    message: format!(
                        "every node refused the connection on port {port} ({n} of {n}): nothing listens there. Is --port right? Talos listens on 50000, and `talstrap sim` prints the port of its fleet. {then}",
                        port = self.port,
                        n = self.expected,
                        then = if self.whole_inventory {
                            "(If every node is rebooting, run this again in a minute.)"
                        } else {
                            "Retrying, in case these nodes are still starting."
                        }
                    ),
                });
            }
        }
        if !refused {
            return false;
        }
        let wait = async {
            loop {
                let notified = self.decided.notified();
                if let Some(v) = self.verdict() {
                    return v;
                }
                notified.await;
            }
        };
        tokio::time::timeout(FIRST_ROUND_WAIT, wait)
            .await
            .unwrap_or(false)
    }

    /// True once every node of the first round refused; None before.
    fn verdict(&self) -> Option<bool> {
        self.state.lock().ok().and_then(|s| s.verdict)
    }
}

/// Error for modes talstrap cannot work with.
pub(crate) fn unusable_mode(mode: &ProbeResult, access: &Access) -> Option<StepError> {
    match mode {
        ProbeResult::NotTalos { reason } => {
            let hint = if mode.tls_hung() {
                "the address accepts TCP connections but never completes a TLS handshake: the node may be hung (power-cycle it), or another service listens there"
            } else {
                "something else answers on this address and port: check the IP in talconfig.yaml and --port"
            };
            Some(StepError::permanent(format!("not a Talos API: {reason}")).with_hint(hint))
        }
        ProbeResult::Configured {
            ours: Some(false),
            issuer,
            ..
        } => {
            let ca = access.talosconfig_ca();
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
pub(crate) async fn connect_secure(
    access: &Access,
    node: &PlannedNode,
) -> Result<NodeClient, StepError> {
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

/// Open the maintenance-mode client over the probe's connection when there
/// is one (no second handshake), else dial as [`connect_maintenance`].
pub(crate) async fn connect_maintenance_over(
    access: &Access,
    node: &PlannedNode,
    held: Option<HeldConnection>,
) -> Result<NodeClient, StepError> {
    match held {
        Some(held) => NodeClient::maintenance_over(
            held,
            access.maintenance.clone(),
            &access.pins,
            &access.timeouts,
        )
        .await
        .map_err(talos_err),
        None => connect_maintenance(access, node).await,
    }
}

/// Open an insecure maintenance-mode client (optionally fingerprint-pinned).
pub(crate) async fn connect_maintenance(
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
pub(crate) fn safe_mode_details(details: &str) -> String {
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
pub(crate) fn describe_disk(d: &DiskFacts) -> String {
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
pub(crate) fn human_size(bytes: u64) -> String {
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
