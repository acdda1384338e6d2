//! The etcd gate of a rollout: is etcd healthy with every member back?
//!
//! Healthy means: every control plane of the inventory answers, runs etcd
//! and reports it healthy; their member lists (each asked locally) agree;
//! and every control plane is a member, matched by the IP in its peer or
//! client URLs, falling back to the short hostname (Talos names a member
//! after the hostname before the first dot: Talos v1.13.9
//! internal/app/machined/pkg/controllers/etcd/spec.go). The verdict is a
//! pure function of what each control plane said.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;

use crate::talos::NodeClient;

use super::super::plan::{Access, Endpoint};

/// One etcd member as a control plane lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Member {
    pub id: u64,
    pub hostname: String,
    pub ips: Vec<IpAddr>,
}

/// What one control plane said about etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CpEtcd {
    pub node: String,
    pub ip: IpAddr,
    /// The service state (`Running`, …); None when the node did not answer.
    pub state: Option<String>,
    pub healthy: Option<bool>,
    /// Its local member list; None when it could not be read.
    pub members: Option<Vec<Member>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Health {
    pub healthy: bool,
    /// Why not, one line per problem.
    pub problems: Vec<String>,
}

impl Health {
    pub(crate) fn summary(&self) -> String {
        if self.healthy {
            "etcd healthy, every control plane a member".into()
        } else {
            self.problems.join("; ")
        }
    }
}

fn is_member(cp: &CpEtcd, members: &[Member]) -> bool {
    let short = cp.node.split('.').next().unwrap_or(&cp.node);
    members
        .iter()
        .any(|m| m.ips.contains(&cp.ip) || (!m.hostname.is_empty() && m.hostname == short))
}

/// Judge the cluster's etcd from every control plane's answer.
pub(crate) fn assess(cps: &[CpEtcd]) -> Health {
    let mut problems = Vec::new();
    let mut lists: Vec<(&str, Vec<u64>)> = Vec::new();
    for cp in cps {
        match (&cp.state, cp.healthy, &cp.members) {
            (None, _, _) => problems.push(format!(
                "{} does not answer ({})",
                cp.node,
                cp.error.as_deref().unwrap_or("no reply")
            )),
            (Some(s), _, _) if s != "Running" => {
                problems.push(format!("{}: etcd is {s}", cp.node));
            }
            (Some(_), h, _) if h != Some(true) => problems.push(format!(
                "{}: etcd is {}",
                cp.node,
                if h == Some(false) {
                    "unhealthy"
                } else {
                    "not checked healthy yet"
                }
            )),
            (Some(_), _, None) => {
                problems.push(format!("{}: its etcd member list cannot be read", cp.node))
            }
            (Some(_), _, Some(members)) => {
                let mut ids: Vec<u64> = members.iter().map(|m| m.id).collect();
                ids.sort_unstable();
                lists.push((&cp.node, ids));
            }
        }
    }
    if let Some((first, ids)) = lists.first()
        && let Some((other, _)) = lists.iter().find(|(_, o)| o != ids)
    {
        problems.push(format!("the member lists of {first} and {other} disagree"));
    }
    // Every control plane must be in every list that could be read.
    for cp in cps {
        let missing_in: Vec<&str> = cps
            .iter()
            .filter_map(|o| o.members.as_ref().map(|m| (o, m)))
            .filter(|(_, m)| !is_member(cp, m))
            .map(|(o, _)| o.node.as_str())
            .collect();
        if !missing_in.is_empty() {
            problems.push(format!(
                "{} is not an etcd member (per {})",
                cp.node,
                missing_in.join(", ")
            ));
        }
    }
    Health {
        healthy: problems.is_empty() && !cps.is_empty(),
        problems: if cps.is_empty() {
            vec!["no control plane to ask".into()]
        } else {
            problems
        },
    }
}

/// Whether the control plane `node` has joined: its etcd runs healthy and
/// it is in its own member list and in every other list that was read.
pub(crate) fn joined(cps: &[CpEtcd], node: &str) -> Result<(), String> {
    let me = cps
        .iter()
        .find(|c| c.node == node)
        .ok_or_else(|| format!("{node} is not a control plane of the inventory"))?;
    match (&me.state, me.healthy, &me.members) {
        (None, _, _) => Err(format!("{node} does not answer")),
        (Some(s), _, _) if s != "Running" => Err(format!("etcd on {node} is {s}")),
        (_, h, _) if h != Some(true) => Err(format!("etcd on {node} is not healthy yet")),
        (_, _, None) => Err(format!("the member list of {node} cannot be read")),
        (_, _, Some(own)) if !is_member(me, own) => {
            Err(format!("{node} is not in its own member list"))
        }
        _ => {
            let missing: Vec<&str> = cps
                .iter()
                .filter_map(|o| o.members.as_ref().map(|m| (o, m)))
                .filter(|(_, m)| !is_member(me, m))
                .map(|(o, _)| o.node.as_str())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("{node} is not a member per {}", missing.join(", ")))
            }
        }
    }
}

/// The host of `https://1.2.3.4:2380` / `https://[::1]:2380`.
fn url_ip(url: &str) -> Option<IpAddr> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split('/').next()?;
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    host.rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .parse()
        .ok()
}

/// Ask one control plane over mTLS.
async fn ask(access: &Access, cp: &Endpoint) -> CpEtcd {
    let mut out = CpEtcd {
        node: cp.node.node.clone(),
        ip: cp.node.ip,
        state: None,
        healthy: None,
        members: None,
        error: None,
    };
    let Some(tls) = access.secure.clone() else {
        out.error = Some("no talosconfig".into());
        return out;
    };
    let client = match NodeClient::connect_secure(cp.addr, tls, &access.timeouts).await {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    match client.service_list().await {
        Ok(services) => {
            let etcd = services.iter().find(|s| s.id == "etcd");
            out.state = Some(
                etcd.map(|s| s.state.clone())
                    .unwrap_or_else(|| "absent".into()),
            );
            out.healthy = etcd.and_then(|s| s.healthy);
        }
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    }
    if out.state.as_deref() == Some("Running") {
        match client.etcd_member_list(true).await {
            Ok(members) => {
                out.members = Some(
                    members
                        .into_iter()
                        .map(|m| Member {
                            id: m.id,
                            ips: m
                                .peer_urls
                                .iter()
                                .chain(&m.client_urls)
                                .filter_map(|u| url_ip(u))
                                .collect(),
                            hostname: m.hostname,
                        })
                        .collect(),
                )
            }
            Err(e) => out.error = Some(e.to_string()),
        }
    }
    out
}

/// Ask every control plane at once, each bounded by the RPC timeouts.
pub(crate) async fn read(access: &Access, cps: &[Endpoint]) -> Vec<CpEtcd> {
    let budget = access.timeouts.connect + access.timeouts.tls + access.timeouts.rpc * 3;
    join_all(cps.iter().map(|cp| async move {
        match tokio::time::timeout(budget + Duration::from_secs(1), ask(access, cp)).await {
            Ok(v) => v,
            Err(_) => CpEtcd {
                node: cp.node.node.clone(),
                ip: cp.node.ip,
                state: None,
                healthy: None,
                members: None,
                error: Some("timed out".into()),
            },
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, i])
    }

    fn member(i: u8, name: &str) -> Member {
        Member {
            id: i as u64,
            hostname: name.into(),
            ips: vec![ip(i)],
        }
    }

    fn all() -> Vec<Member> {
        vec![member(1, "cp1"), member(2, "cp2"), member(3, "cp3")]
    }

    fn cp(i: u8, members: Option<Vec<Member>>) -> CpEtcd {
        CpEtcd {
            node: format!("cp{i}"),
            ip: ip(i),
            state: Some("Running".into()),
            healthy: Some(true),
            members,
            error: None,
        }
    }

    #[test]
    fn healthy_when_every_control_plane_answers_and_is_in_every_list() {
        let h = assess(&[cp(1, Some(all())), cp(2, Some(all())), cp(3, Some(all()))]);
        assert!(h.healthy, "{h:?}");
    }

    #[test]
    fn a_control_plane_that_is_down_or_unhealthy_fails_the_gate() {
        let mut down = cp(2, None);
        down.state = None;
        down.error = Some("connection refused".into());
        let h = assess(&[cp(1, Some(all())), down, cp(3, Some(all()))]);
        assert!(!h.healthy);
        assert!(h.summary().contains("cp2 does not answer"), "{h:?}");

        let mut sick = cp(3, Some(all()));
        sick.healthy = None;
        let h = assess(&[cp(1, Some(all())), cp(2, Some(all())), sick]);
        assert!(!h.healthy);
        assert!(h.summary().contains("cp3: etcd is not checked healthy yet"));
    }

    #[test]
    fn a_missing_member_or_disagreeing_lists_fail_the_gate() {
        let two = vec![member(1, "cp1"), member(2, "cp2")];
        let h = assess(&[
            cp(1, Some(two.clone())),
            cp(2, Some(two.clone())),
            cp(3, Some(all())),
        ]);
        assert!(!h.healthy);
        let s = h.summary();
        assert!(s.contains("disagree"), "{s}");
        assert!(
            s.contains("cp3 is not an etcd member (per cp1, cp2)"),
            "{s}"
        );
    }

    #[test]
    fn members_match_by_address_then_by_short_hostname() {
        // Member named after an FQDN host, listed by its IP only.
        let mut m = all();
        m[1].hostname = String::new();
        let mut fqdn = cp(1, Some(m.clone()));
        fqdn.node = "cp1.lab.example".into();
        assert!(assess(&[fqdn, cp(2, Some(m.clone())), cp(3, Some(m))]).healthy);
        // No IPs in the URLs: the short hostname.
        let mut by_name = all();
        for x in &mut by_name {
            x.ips.clear();
        }
        let h = assess(&[
            cp(1, Some(by_name.clone())),
            cp(2, Some(by_name.clone())),
            cp(3, Some(by_name)),
        ]);
        assert!(h.healthy, "{h:?}");
    }

    #[test]
    fn a_joining_control_plane_is_a_member_once_every_list_has_it() {
        let two = vec![member(1, "cp1"), member(2, "cp2")];
        let mut cp3 = cp(3, None);
        cp3.state = Some("Preparing".into());
        let views = [cp(1, Some(two.clone())), cp(2, Some(two.clone())), cp3];
        assert!(joined(&views, "cp3").unwrap_err().contains("Preparing"));
        // Another control plane being down does not stop the join.
        let mut cp2 = cp(2, None);
        cp2.state = None;
        let views = [cp(1, Some(all())), cp2, cp(3, Some(all()))];
        assert_eq!(joined(&views, "cp3"), Ok(()));
        let views = [cp(1, Some(two)), cp(3, Some(all()))];
        assert!(joined(&views, "cp3").unwrap_err().contains("per cp1"));
    }

    #[test]
    fn urls_give_their_ip() {
        assert_eq!(url_ip("https://127.0.0.3:2380"), Some(ip(3)));
        assert_eq!(url_ip("https://[::1]:2379"), Some("::1".parse().unwrap()));
        assert_eq!(url_ip("https://cp1:2380"), None);
    }

    #[test]
    fn no_control_plane_is_not_healthy() {
        assert!(!assess(&[]).healthy);
    }
}
