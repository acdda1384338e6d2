//! The cluster-level check at the end of verify after bootstrap: every
//! control plane's own etcd member list, the lists agreeing with each other
//! and holding exactly the inventory's control planes, every member healthy.
//! Members are matched to nodes by [`EtcdMember::is_node`]: the IPs of their
//! peer/client URLs, else the short hostname Talos names them by (as
//! `talosctl health` does).

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures_util::future::join_all;
use serde::Serialize;

use crate::talos::{EtcdMember, NodeClient};

use crate::commands::plan::{Access, PlannedNode};

/// What one control plane says.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct MemberView {
    pub node: String,
    /// Its etcd service is running and healthy.
    pub healthy: bool,
    /// Member IDs and names as this node's etcd lists them.
    pub member_ids: Vec<u64>,
    pub members: Vec<String>,
    #[serde(skip)]
    pub listed: Vec<EtcdMember>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct EtcdHealth {
    pub healthy: bool,
    /// Every control plane that answered lists the same members.
    pub consistent: bool,
    /// Inventory control planes no member matches.
    pub missing: Vec<String>,
    /// Members that match no inventory control plane.
    pub unknown_members: Vec<String>,
    /// Control planes whose etcd is not healthy, or that did not answer.
    pub unhealthy: Vec<String>,
    pub per_node: Vec<MemberView>,
}

/// The pure verdict over the control planes' answers. `cps`: the inventory's
/// control planes as (name, addresses).
pub(crate) fn judge(cps: &[(String, Vec<IpAddr>)], per_node: Vec<MemberView>) -> EtcdHealth {
    let answered: Vec<&MemberView> = per_node.iter().filter(|v| v.error.is_none()).collect();
    let lists: BTreeSet<BTreeSet<u64>> = answered
        .iter()
        .map(|v| v.member_ids.iter().copied().collect())
        .collect();
    let consistent = lists.len() <= 1;
    // Every member any control plane lists.
    let mut all: Vec<&EtcdMember> = Vec::new();
    for v in &answered {
        for m in &v.listed {
            if !all.iter().any(|a| a.id == m.id) {
                all.push(m);
            }
        }
    }
    let missing: Vec<String> = cps
        .iter()
        .filter(|(name, addrs)| !all.iter().any(|m| !m.is_learner && m.is_node(addrs, name)))
        .map(|(name, _)| name.clone())
        .collect();
    let unknown_members: Vec<String> = all
        .iter()
        .filter(|m| !cps.iter().any(|(name, addrs)| m.is_node(addrs, name)))
        .map(|m| {
            if m.hostname.is_empty() {
                format!("{:x}", m.id)
            } else {
                m.hostname.clone()
            }
        })
        .collect();
    let unhealthy: Vec<String> = per_node
        .iter()
        .filter(|v| !v.healthy || v.error.is_some())
        .map(|v| v.node.clone())
        .collect();
    EtcdHealth {
        healthy: consistent
            && !answered.is_empty()
            && missing.is_empty()
            && unknown_members.is_empty()
            && unhealthy.is_empty(),
        consistent,
        missing,
        unknown_members,
        unhealthy,
        per_node,
    }
}

impl EtcdHealth {
    /// One line for the human summary.
    pub(crate) fn summary(&self) -> String {
        let names = self
            .per_node
            .iter()
            .find(|v| v.error.is_none())
            .map(|v| v.members.join(", "))
            .unwrap_or_default();
        if self.healthy {
            return format!(
                "etcd healthy: {} members ({names}), the same list on every control plane, each one of the inventory's control planes",
                self.per_node.first().map_or(0, |v| v.member_ids.len())
            );
        }
        let mut problems = Vec::new();
        if !self.consistent {
            let lists: Vec<String> = self
                .per_node
                .iter()
                .filter(|v| v.error.is_none())
                .map(|v| format!("{}: [{}]", v.node, v.members.join(", ")))
                .collect();
            problems.push(format!(
                "the control planes disagree on the members ({})",
                lists.join("; ")
            ));
        }
        if !self.missing.is_empty() {
            problems.push(format!("not members: {}", self.missing.join(", ")));
        }
        if !self.unknown_members.is_empty() {
            problems.push(format!(
                "members that are no control plane of the inventory: {}",
                self.unknown_members.join(", ")
            ));
        }
        if !self.unhealthy.is_empty() {
            problems.push(format!(
                "etcd not healthy on: {}",
                self.unhealthy.join(", ")
            ));
        }
        format!("etcd NOT healthy: {}", problems.join("; "))
    }
}

/// Ask one control plane for its etcd health and own member list.
async fn ask(access: &Access, cp: &PlannedNode) -> MemberView {
    let mut view = MemberView {
        node: cp.node.node.clone(),
        healthy: false,
        member_ids: Vec::new(),
        members: Vec::new(),
        listed: Vec::new(),
        error: None,
    };
    let Some(tls) = access.secure.clone() else {
        view.error = Some("no talosconfig".into());
        return view;
    };
    let client = match NodeClient::connect_secure(cp.addr, tls, &access.timeouts).await {
        Ok(c) => c,
        Err(e) => {
            view.error = Some(e.to_string());
            return view;
        }
    };
    match client.service_list().await {
        Ok(services) => {
            view.healthy = services
                .iter()
                .any(|s| s.id == "etcd" && s.state == "Running" && s.healthy == Some(true));
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    match client.etcd_member_list(true).await {
        Ok(members) => {
            view.member_ids = members.iter().map(|m| m.id).collect();
            view.members = members.iter().map(|m| m.hostname.clone()).collect();
            view.listed = members;
        }
        Err(e) => {
            view.error.get_or_insert(e.to_string());
        }
    }
    view
}

/// Ask every control plane at once and judge.
pub(crate) async fn check(access: &Access, cps: &[PlannedNode]) -> EtcdHealth {
    let views = join_all(cps.iter().map(|cp| async move {
        let budget = access.timeouts.connect + access.timeouts.tls + access.timeouts.rpc * 3;
        tokio::time::timeout(budget, ask(access, cp))
            .await
            .unwrap_or_else(|_| MemberView {
                node: cp.node.node.clone(),
                healthy: false,
                member_ids: Vec::new(),
                members: Vec::new(),
                listed: Vec::new(),
                error: Some("timed out".into()),
            })
    }))
    .await;
    let names: Vec<(String, Vec<IpAddr>)> = cps
        .iter()
        .map(|cp| (cp.entry.hostname.clone(), cp.entry.addresses.clone()))
        .collect();
    judge(&names, views)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, ip: &str) -> EtcdMember {
        EtcdMember {
            id,
            hostname: name.into(),
            peer_urls: vec![format!("https://{ip}:2380")],
            client_urls: vec![format!("https://{ip}:2379")],
            is_learner: false,
        }
    }

    fn view(node: &str, healthy: bool, members: &[EtcdMember]) -> MemberView {
        MemberView {
            node: node.into(),
            healthy,
            member_ids: members.iter().map(|m| m.id).collect(),
            members: members.iter().map(|m| m.hostname.clone()).collect(),
            listed: members.to_vec(),
            error: None,
        }
    }

    fn cps() -> Vec<(String, Vec<IpAddr>)> {
        vec![
            (
                "cp1.lab.example".into(),
                vec!["127.0.0.11".parse().unwrap()],
            ),
            (
                "cp2.lab.example".into(),
                vec!["127.0.0.12".parse().unwrap()],
            ),
        ]
    }

    #[test]
    fn agreeing_lists_of_every_control_plane_with_healthy_etcd_are_healthy() {
        let ms = [
            member(1, "cp1", "127.0.0.11"),
            member(2, "cp2", "127.0.0.12"),
        ];
        let h = judge(&cps(), vec![view("cp1", true, &ms), view("cp2", true, &ms)]);
        assert!(h.healthy, "{h:?}");
        assert!(
            h.summary().starts_with("etcd healthy: 2 members"),
            "{}",
            h.summary()
        );
    }

    #[test]
    fn disagreement_missing_unknown_and_unhealthy_members_are_named() {
        let ms = [
            member(1, "cp1", "127.0.0.11"),
            member(2, "cp2", "127.0.0.12"),
        ];
        let only_one = [member(1, "cp1", "127.0.0.11")];
        let h = judge(
            &cps(),
            vec![view("cp1", true, &ms), view("cp2", true, &only_one)],
        );
        assert!(!h.healthy && !h.consistent, "{h:?}");
        assert!(h.summary().contains("disagree"), "{}", h.summary());

        let h = judge(
            &cps(),
            vec![view("cp1", true, &only_one), view("cp2", false, &only_one)],
        );
        assert_eq!(h.missing, ["cp2.lab.example"]);
        assert_eq!(h.unhealthy, ["cp2"]);

        let stranger = [
            member(1, "cp1", "127.0.0.11"),
            member(2, "cp2", "127.0.0.12"),
            member(9, "old-cp", "127.0.0.40"),
        ];
        let h = judge(
            &cps(),
            vec![view("cp1", true, &stranger), view("cp2", true, &stranger)],
        );
        assert_eq!(h.unknown_members, ["old-cp"]);
        assert!(
            h.summary()
                .contains("no control plane of the inventory: old-cp")
        );

        let mut unreachable = view("cp2", false, &[]);
        unreachable.error = Some("refused".into());
        let h = judge(&cps(), vec![view("cp1", true, &ms), unreachable]);
        assert!(!h.healthy && h.consistent, "{h:?}");
        assert_eq!(h.unhealthy, ["cp2"]);
    }
}
