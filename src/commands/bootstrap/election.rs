//! `bootstrap --auto`: gather control-plane candidates (from talconfig or a
//! scan), read their boot times over mTLS, and run the pure election from
//! `discovery::election` until the same leader wins two rounds in a row.

use std::net::SocketAddr;

use futures_util::future::join_all;
use serde_json::json;
use tokio::time::Instant;

use crate::discovery::election::{Candidate, Round, Settle, Verdict, elect};
use crate::discovery::{ScanOptions, parse_targets, scan};
use crate::exit::Exit;
use crate::pipeline::{Event, NodeRef};
use crate::talos::probe::{ProbeResult, probe};
use crate::talos::{MachineRole, NodeClient};

use crate::commands::plan::{Access, Endpoint};
use crate::commands::{CommandError, Session};
use crate::ops::cluster::etcd_view;

/// How the election runs.
#[derive(Debug, Clone)]
pub(crate) struct ElectionSettings {
    pub quorum: usize,
    /// Scan these ranges for candidates (empty: use talconfig's control planes).
    pub cidrs: Vec<String>,
    pub port: u16,
    pub poll_interval: std::time::Duration,
    pub allow_large: bool,
}

/// How an election ended.
#[derive(Debug, Clone)]
pub(crate) enum Election {
    /// `leader` gets the Bootstrap call. `peers`: every other address the
    /// last round saw that may run this cluster's etcd (a control plane, or
    /// a node that could not be asked what it is); the bootstrap guard must
    /// hear from each of them before sending.
    Leader {
        leader: Endpoint,
        peers: Vec<Endpoint>,
    },
    /// A candidate already has etcd (`details["refused"]` says which): the
    /// cluster is bootstrapped, nobody may be bootstrapped again.
    AlreadyBootstrapped(String),
    /// No leader settled before the deadline (`Exit::Deadline`) or Ctrl-C
    /// (`Exit::Interrupted`); nothing was bootstrapped.
    Unsettled { exit: Exit, reason: String },
}

/// How the note of a node issued by another CA starts.
const FOREIGN_CA: &str = "configured by another CA";

/// What was seen at one candidate address.
struct Inspected {
    cand: Candidate,
    note: String,
    /// It may run this cluster's etcd: a control plane of our CA, or a node
    /// that could not be asked (gone silent, TLS hung, mTLS failed). Known
    /// not to: a worker, a node in maintenance, another cluster's node, a
    /// service that is not Talos.
    may_run_etcd: bool,
}

/// Look at one candidate address.
async fn inspect(access: &Access, ep: &Endpoint) -> Inspected {
    let (cand, note, may_run_etcd) = look(access, ep).await;
    Inspected {
        cand,
        note,
        may_run_etcd,
    }
}

async fn look(access: &Access, ep: &Endpoint) -> (Candidate, String, bool) {
    let mut cand = Candidate {
        ip: ep.node.ip,
        hostname: None,
        boot_time: None,
        has_etcd: false,
        reachable: false,
        role_ok: false,
    };
    let creds = access.talosconfig.as_ref().map(|t| t.credentials.clone());
    let mode = probe(ep.addr, creds.as_deref(), &access.timeouts).await;
    let hung = mode.tls_hung();
    let (note, may_run_etcd) = match mode {
        ProbeResult::Unreachable { reason, .. } => (format!("unreachable ({reason})"), true),
        ProbeResult::NotTalos { reason } => (format!("not Talos ({reason})"), hung),
        ProbeResult::Maintenance { .. } => {
            cand.reachable = true;
            ("in maintenance mode (no config yet)".into(), false)
        }
        ProbeResult::Configured {
            ours: Some(false),
            issuer,
            ..
        } => {
            cand.reachable = true;
            (format!("{FOREIGN_CA} ({issuer})"), false)
        }
        ProbeResult::Configured { .. } => {
            cand.reachable = true;
            match access.secure.clone() {
                None => ("configured, but no talosconfig to read it".into(), true),
                Some(tls) => match NodeClient::connect_secure(ep.addr, tls, &access.timeouts).await
                {
                    Err(e) => (format!("mTLS failed: {e}"), true),
                    Ok(c) => {
                        cand.hostname = c.hostname().await.ok();
                        match c.machine_type().await {
                            Ok(MachineRole::ControlPlane | MachineRole::Init) => {
                                cand.role_ok = true
                            }
                            Ok(other) => {
                                return (cand, format!("{other}, not a control plane"), false);
                            }
                            Err(e) => return (cand, format!("role unknown: {e}"), true),
                        }
                        match c.system_stat().await {
                            Ok(s) => cand.boot_time = Some(s.boot_time),
                            Err(e) => return (cand, format!("boot time unknown: {e}"), true),
                        }
                        let view = etcd_view(access, ep).await;
                        cand.has_etcd = view.has_etcd();
                        ("configured control plane".into(), true)
                    }
                },
            }
        }
    };
    (cand, note, may_run_etcd)
}

/// Where the candidates are this round.
async fn candidates(
    es: &ElectionSettings,
    cps: &[Endpoint],
) -> Result<Vec<Endpoint>, CommandError> {
    if es.cidrs.is_empty() {
        return Ok(cps.to_vec());
    }
    let targets = parse_targets(&es.cidrs, es.allow_large).map_err(CommandError::input)?;
    let (soft, _) = crate::discovery::rlimit::raise_nofile_soft_limit();
    let opts = ScanOptions {
        port: es.port,
        connect_timeout: std::time::Duration::from_secs(1),
        window: crate::discovery::rlimit::window_for(soft),
        ..ScanOptions::default()
    };
    let result = scan(&targets, &opts, None).await;
    Ok(result
        .open
        .into_iter()
        .map(|addr: SocketAddr| Endpoint {
            node: NodeRef::new(
                addr.ip().to_string(),
                addr.ip(),
                Some("controlplane".into()),
            ),
            addr,
        })
        .collect())
}

/// One line per candidate; `seen` adds what was found at an excluded address
/// (a worker, a node still in maintenance) to that candidate's own line, so
/// no address is listed twice.
fn round_text(round: &Round, seen: &dyn Fn(std::net::IpAddr) -> Option<String>) -> String {
    let mut s = match &round.verdict {
        Verdict::Leader { ip, reason } => format!("election: leader {ip} ({reason})"),
        Verdict::Waiting { reason, .. } => format!("election: waiting ({reason})"),
        Verdict::Refused { reason, .. } => format!("election: refused ({reason})"),
    };
    for c in &round.candidates {
        s.push_str(&format!(
            "\n  {} {}: {}",
            c.ip,
            c.hostname.as_deref().unwrap_or("-"),
            c.outcome
        ));
        if let Some(note) = seen(c.ip) {
            s.push_str(&format!(" ({note})"));
        }
    }
    s
}

/// Run election rounds until a settled leader, a refusal because etcd
/// already exists, the deadline or Ctrl-C. `details["election"]` always
/// holds the last round's candidates.
pub(crate) async fn elect_leader(
    session: &Session,
    access: &Access,
    cps: &[Endpoint],
    es: &ElectionSettings,
    details: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Election, CommandError> {
    let sink = session.output.events();
    let deadline = session
        .deadline()
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(15 * 60));
    let mut settle = Settle::new(2);
    let mut last_text = String::new();
    let mut rounds = 0u32;
    loop {
        if session.cancel.is_cancelled() {
            return Ok(Election::Unsettled {
                exit: Exit::Interrupted,
                reason: "interrupted during the election; nothing was bootstrapped".into(),
            });
        }
        rounds += 1;
        let eps = candidates(es, cps).await?;
        let inspected = join_all(eps.iter().map(|ep| inspect(access, ep))).await;
        let cands: Vec<Candidate> = inspected.iter().map(|i| i.cand.clone()).collect();
        let round = elect(&cands, es.quorum);
        if let Some(foreign) = only_foreign(&inspected) {
            return Err(foreign_ca_error(access, &foreign));
        }
        let text = round_text(&round, &|ip| seen_note(&inspected, ip));
        if text != last_text {
            sink.emit(Event::Info {
                message: text.clone(),
            });
            last_text = text;
        }
        details.insert(
            "election".into(),
            round_details(es.quorum, rounds, &round, &inspected),
        );
        match &round.verdict {
            Verdict::Refused { reason, .. } => {
                details.insert("refused".into(), json!(reason));
                return Ok(Election::AlreadyBootstrapped(reason.clone()));
            }
            Verdict::Leader { .. } | Verdict::Waiting { .. } => {
                if let Some(ip) = settle.observe(&round) {
                    let elected = leader(&eps, &inspected, ip)?;
                    if let Election::Leader { leader, .. } = &elected {
                        sink.emit(Event::Info {
                            message: format!(
                                "election settled: {} ({ip}) leads two rounds in a row",
                                leader.node.node
                            ),
                        });
                    }
                    return Ok(elected);
                }
            }
        }
        if Instant::now() + es.poll_interval >= deadline {
            return Ok(Election::Unsettled {
                exit: Exit::Deadline,
                reason: format!(
                    "election did not settle before the deadline ({}); nothing was bootstrapped",
                    last_text.lines().next().unwrap_or("no round completed")
                ),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(es.poll_interval) => {}
            _ = session.cancel.cancelled() => {}
        }
    }
}

/// A talosconfig of another cluster makes every configured candidate
/// "foreign": no round can ever settle. `Some(what was seen at each
/// foreign address)` when there are foreign candidates and no usable one.
fn only_foreign(inspected: &[Inspected]) -> Option<Vec<String>> {
    let foreign: Vec<String> = inspected
        .iter()
        .filter(|i| i.note.starts_with(FOREIGN_CA))
        .map(|i| format!("{} {}", i.cand.ip, i.note))
        .collect();
    let usable = inspected.iter().any(|i| {
        i.cand.reachable && !i.note.starts_with(FOREIGN_CA) && !i.note.starts_with("in maintenance")
    });
    (!foreign.is_empty() && !usable).then_some(foreign)
}

/// The input error for a talosconfig that belongs to another cluster.
fn foreign_ca_error(access: &Access, foreign: &[String]) -> CommandError {
    let ca = access.talosconfig_ca();
    CommandError::input(format!(
        "every configured node found is issued by another CA than the talosconfig's ({ca}): {}; this talosconfig belongs to another cluster, nothing was bootstrapped",
        foreign.join("; ")
    ))
}

/// What was seen at an address the election excluded (not a usable control
/// plane): "not a control plane" alone would hide a node still in
/// maintenance.
fn seen_note(inspected: &[Inspected], ip: std::net::IpAddr) -> Option<String> {
    inspected
        .iter()
        .find(|i| i.cand.ip == ip && !(i.cand.role_ok && i.cand.boot_time.is_some()))
        .map(|i| i.note.clone())
}

/// `details["election"]`: the last round's candidates.
fn round_details(
    quorum: usize,
    rounds: u32,
    round: &Round,
    inspected: &[Inspected],
) -> serde_json::Value {
    let candidates: Vec<serde_json::Value> = round
        .candidates
        .iter()
        .map(|c| {
            let mut entry = json!({
                "ip": c.ip, "hostname": c.hostname, "outcome": c.outcome,
            });
            if let Some(note) = seen_note(inspected, c.ip) {
                entry["seen"] = json!(note);
            }
            entry
        })
        .collect();
    json!({ "quorum": quorum, "rounds": rounds, "candidates": candidates })
}

/// The settled leader `ip`, named by the hostname it reported, and its
/// peers: every other address that may run this cluster's etcd.
fn leader(
    eps: &[Endpoint],
    inspected: &[Inspected],
    ip: std::net::IpAddr,
) -> Result<Election, CommandError> {
    let ep = eps
        .iter()
        .find(|e| e.node.ip == ip)
        .cloned()
        .ok_or_else(|| CommandError::Runtime(anyhow::anyhow!("elected {ip} vanished")))?;
    let name = inspected
        .iter()
        .find(|i| i.cand.ip == ip)
        .and_then(|i| i.cand.hostname.clone());
    let leader = Endpoint {
        node: NodeRef::new(
            name.unwrap_or(ep.node.node.clone()),
            ip,
            Some("controlplane".into()),
        ),
        addr: ep.addr,
    };
    let peers = eps
        .iter()
        .zip(inspected)
        .filter(|(e, i)| e.node.ip != ip && i.may_run_etcd)
        .map(|(e, i)| peer(e, i))
        .collect();
    Ok(Election::Leader { leader, peers })
}

/// A peer endpoint named by the hostname it reported, if any.
fn peer(ep: &Endpoint, seen: &Inspected) -> Endpoint {
    match &seen.cand.hostname {
        Some(name) => Endpoint {
            node: NodeRef::new(name.clone(), ep.node.ip, Some("controlplane".into())),
            addr: ep.addr,
        },
        None => ep.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_candidate_is_listed_once_with_what_was_seen() {
        let cand = |ip: &str, cp: bool| Candidate {
            ip: ip.parse().unwrap(),
            hostname: Some(format!("n{}", &ip[ip.len() - 1..])),
            boot_time: cp.then_some(1_700_000_000),
            has_etcd: false,
            reachable: true,
            role_ok: cp,
        };
        let round = elect(
            &[
                cand("127.0.0.1", true),
                cand("127.0.0.4", false),
                cand("127.0.0.5", false),
            ],
            1,
        );
        let seen =
            |ip: std::net::IpAddr| (ip.to_string() != "127.0.0.1").then(|| "worker".to_string());
        let text = round_text(&round, &seen);
        for ip in ["127.0.0.1", "127.0.0.4", "127.0.0.5"] {
            let lines = text.lines().skip(1).filter(|l| l.contains(ip)).count();
            assert_eq!(lines, 1, "{ip} in:\n{text}");
        }
        assert!(
            text.lines()
                .any(|l| l.contains("127.0.0.4") && l.ends_with("(worker)")),
            "{text}"
        );
    }

    fn seen(ip: &str, cp: bool, note: &str, may_run_etcd: bool) -> Inspected {
        Inspected {
            cand: Candidate {
                ip: ip.parse().unwrap(),
                hostname: cp.then(|| format!("cp-{}", &ip[ip.len() - 1..])),
                boot_time: cp.then_some(1_700_000_000),
                has_etcd: false,
                reachable: !note.starts_with("unreachable"),
                role_ok: cp,
            },
            note: note.into(),
            may_run_etcd,
        }
    }

    fn ep(ip: &str) -> Endpoint {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        Endpoint {
            node: NodeRef::new(ip.to_string(), ip, Some("controlplane".into())),
            addr: SocketAddr::new(ip, 50000),
        }
    }

    #[test]
    fn another_clusters_talosconfig_is_refused_only_when_nothing_else_is_usable() {
        let foreign = seen("127.0.0.1", false, "configured by another CA (x)", false);
        let maintenance = seen(
            "127.0.0.2",
            false,
            "in maintenance mode (no config yet)",
            false,
        );
        let down = seen("127.0.0.3", false, "unreachable (refused)", true);
        assert_eq!(
            only_foreign(&[foreign, maintenance, down]),
            Some(vec!["127.0.0.1 configured by another CA (x)".to_string()])
        );
        let foreign = seen("127.0.0.1", false, "configured by another CA (x)", false);
        let ours = seen("127.0.0.4", true, "configured control plane", true);
        assert_eq!(only_foreign(&[foreign, ours]), None);
        let ours = seen("127.0.0.4", true, "configured control plane", true);
        assert_eq!(only_foreign(&[ours]), None);
    }

    #[test]
    fn details_say_what_was_seen_at_excluded_addresses_only() {
        let inspected = [
            seen("127.0.0.1", true, "configured control plane", true),
            seen(
                "127.0.0.2",
                false,
                "in maintenance mode (no config yet)",
                false,
            ),
        ];
        let cands: Vec<Candidate> = inspected.iter().map(|i| i.cand.clone()).collect();
        let round = elect(&cands, 1);
        let d = round_details(1, 3, &round, &inspected);
        assert_eq!(d["quorum"], 1);
        assert_eq!(d["rounds"], 3);
        let entries = d["candidates"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for e in entries {
            match e["ip"].as_str().unwrap() {
                "127.0.0.1" => assert!(e.get("seen").is_none(), "{e}"),
                "127.0.0.2" => assert_eq!(e["seen"], "in maintenance mode (no config yet)"),
                other => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_leader_is_named_by_its_hostname_and_peers_are_who_may_run_etcd() {
        let eps = [
            ep("127.0.0.1"),
            ep("127.0.0.2"),
            ep("127.0.0.3"),
            ep("127.0.0.4"),
        ];
        let inspected = [
            seen("127.0.0.1", true, "configured control plane", true),
            seen("127.0.0.2", true, "configured control plane", true),
            seen("127.0.0.3", false, "worker, not a control plane", false),
            seen("127.0.0.4", false, "mTLS failed: hung", true),
        ];
        let Ok(Election::Leader { leader: l, peers }) =
            leader(&eps, &inspected, "127.0.0.1".parse().unwrap())
        else {
            panic!("no leader");
        };
        assert_eq!(l.node.node, "cp-1");
        assert_eq!(l.addr, eps[0].addr);
        let peer_ips: Vec<String> = peers.iter().map(|p| p.node.ip.to_string()).collect();
        assert_eq!(peer_ips, ["127.0.0.2", "127.0.0.4"]);
        assert_eq!(peers[0].node.node, "cp-2");
        assert!(leader(&eps, &inspected, "127.0.0.9".parse().unwrap()).is_err());
    }
}
