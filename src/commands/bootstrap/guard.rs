//! The bootstrap guard's decisions, as pure functions over what each control
//! plane said about etcd ([`EtcdView`]):
//!
//! - [`decide`]: may the target be bootstrapped? Any control plane with etcd
//!   means the cluster exists (send nothing). Another control plane that
//!   could not be asked may be the one that has it, so the guard fails
//!   closed unless the operator explicitly accepts that risk. The target
//!   itself need not answer: Talos refuses a Bootstrap on a node with etcd
//!   data (AlreadyExists), so it cannot become a second cluster.
//! - [`count_clusters`]: after a bootstrap (or when one was found), how many
//!   etcd clusters do the control planes' own member lists show? Two nodes
//!   are in the same cluster when their member lists share a member ID; a
//!   node whose etcd runs without a list of its own yet belongs to the
//!   cluster that lists its IP (a joining member is added to the existing
//!   cluster before its etcd starts).

use std::net::IpAddr;

use crate::ops::cluster::EtcdView;

/// What one control plane's answer means for the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It has etcd (running, starting, a local member or a member list).
    Etcd,
    /// It answered and has none (configured without etcd, or in
    /// maintenance mode, where etcd cannot run).
    NoEtcd,
    /// It could not be asked: silent, hanging, rebooting, foreign
    /// certificate, trust failure. It may have etcd.
    Unknown(String),
}

pub(crate) fn answer(v: &EtcdView) -> Answer {
    if v.has_etcd() {
        Answer::Etcd
    } else if v.reachable || v.maintenance {
        Answer::NoEtcd
    } else {
        Answer::Unknown(v.error.clone().unwrap_or_else(|| "no answer".into()))
    }
}

/// The guard's verdict for one round of answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// etcd exists on `ip`: the cluster is bootstrapped; send nothing.
    Bootstrapped { ip: IpAddr, proof: String },
    /// No control plane has etcd; `unasked` is empty unless the operator
    /// allowed bootstrapping with control planes that could not be asked.
    Send { unasked: Vec<String> },
    /// Some control planes could not be asked and no other has etcd: one of
    /// them may, so bootstrapping could create a second cluster.
    Refuse { unasked: Vec<String> },
}

/// "cp2 (127.0.0.3: timed out)" for every control plane other than the
/// target that could not be asked.
fn unasked(views: &[EtcdView], target: IpAddr) -> Vec<String> {
    views
        .iter()
        .filter(|v| v.ip != target)
        .filter_map(|v| match answer(v) {
            Answer::Unknown(why) => Some(format!("{} ({}: {why})", v.node, v.ip)),
            _ => None,
        })
        .collect()
}

/// Decide from one round of answers (see the module docs).
pub(crate) fn decide(views: &[EtcdView], target: IpAddr, allow_unasked: bool) -> Verdict {
    if let Some(v) = views.iter().find(|v| answer(v) == Answer::Etcd) {
        return Verdict::Bootstrapped {
            ip: v.ip,
            proof: v.proof(),
        };
    }
    let unasked = unasked(views, target);
    if unasked.is_empty() || allow_unasked {
        Verdict::Send { unasked }
    } else {
        Verdict::Refuse { unasked }
    }
}

/// The etcd clusters the control planes show, by their own member lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Clusters {
    /// Each cluster as the control planes (names) that are in it.
    pub clusters: Vec<Vec<String>>,
    /// Control planes with etcd that no member list accounts for yet, or
    /// that could not be asked: a second cluster there cannot be ruled out.
    pub unconfirmed: Vec<String>,
}

/// Group the control planes into etcd clusters (see the module docs).
pub(crate) fn count_clusters(views: &[EtcdView]) -> Clusters {
    // (member IDs, member IPs, node names) per cluster.
    let mut groups: Vec<(Vec<u64>, Vec<IpAddr>, Vec<String>)> = Vec::new();
    let mut pending: Vec<&EtcdView> = Vec::new();
    let mut out = Clusters::default();
    for v in views {
        match answer(v) {
            Answer::NoEtcd => {}
            Answer::Unknown(why) => out.unconfirmed.push(format!("{} ({why})", v.node)),
            Answer::Etcd if v.member_ids.is_empty() => pending.push(v),
            Answer::Etcd => {
                // Merge every group this list shares a member with.
                let mut ids = v.member_ids.clone();
                let mut ips = v.member_ips.clone();
                let mut names = vec![v.node.clone()];
                groups.retain(|(gids, gips, gnames)| {
                    if gids.iter().any(|id| ids.contains(id)) {
                        ids.extend(gids);
                        ips.extend(gips);
                        names.extend(gnames.iter().cloned());
                        false
                    } else {
                        true
                    }
                });
                groups.push((ids, ips, names));
            }
        }
    }
    for v in pending {
        match groups.iter_mut().find(|(_, ips, _)| ips.contains(&v.ip)) {
            Some((_, _, names)) => names.push(v.node.clone()),
            None => out.unconfirmed.push(format!(
                "{} (etcd {} but not in any member list yet)",
                v.node,
                v.etcd_state.as_deref().unwrap_or("present")
            )),
        }
    }
    out.clusters = groups
        .into_iter()
        .map(|(_, _, mut names)| {
            names.sort();
            names.dedup();
            names
        })
        .collect();
    out.clusters.sort();
    out
}

/// What to tell the operator when two or more clusters exist.
pub(crate) fn second_cluster_message(clusters: &Clusters, intended: &str) -> (String, String) {
    let listed: Vec<String> = clusters
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| format!("cluster {}: {}", i + 1, c.join(", ")))
        .collect();
    let wrong: Vec<&String> = clusters
        .clusters
        .iter()
        .filter(|c| !c.iter().any(|n| n == intended))
        .flatten()
        .collect();
    let wrong_list = if wrong.is_empty() {
        "<the nodes of the smaller cluster>".to_string()
    } else {
        wrong
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    (
        format!(
            "{} etcd clusters exist among the control planes ({}): the cluster is split",
            clusters.clusters.len(),
            listed.join("; ")
        ),
        format!(
            "keep the cluster of {intended} and wipe etcd on the others ({wrong_list}): for each, \
             `talosctl -n <ip> reset --system-labels-to-wipe EPHEMERAL --reboot --graceful=false`, \
             then let it join again (it joins the remaining cluster once its etcd data is gone); \
             check with `talosctl -n <ip> etcd members` on every control plane before using the cluster"
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn none(name: &str, last: u8) -> EtcdView {
        EtcdView {
            node: name.into(),
            ip: ip(last),
            reachable: true,
            etcd_state: Some("Preparing".into()),
            etcd_healthy: None,
            local_member: false,
            members: vec![],
            member_ids: vec![],
            member_ips: vec![],
            maintenance: false,
            error: None,
        }
    }

    fn running(name: &str, last: u8, members: &[(u64, u8)]) -> EtcdView {
        EtcdView {
            etcd_state: Some("Running".into()),
            local_member: true,
            members: members.iter().map(|(id, _)| format!("m{id}")).collect(),
            member_ids: members.iter().map(|(id, _)| *id).collect(),
            member_ips: members.iter().map(|(_, l)| ip(*l)).collect(),
            ..none(name, last)
        }
    }

    fn unreachable(name: &str, last: u8, why: &str) -> EtcdView {
        EtcdView {
            reachable: false,
            etcd_state: None,
            error: Some(why.into()),
            ..none(name, last)
        }
    }

    #[test]
    fn every_control_plane_without_etcd_means_send() {
        let views = [none("cp1", 1), none("cp2", 2), none("cp3", 3)];
        assert_eq!(
            decide(&views, ip(1), false),
            Verdict::Send { unasked: vec![] }
        );
    }

    #[test]
    fn maintenance_mode_counts_as_asked_without_etcd() {
        let mut m = unreachable("cp2", 2, "in maintenance mode");
        m.maintenance = true;
        assert_eq!(
            decide(&[none("cp1", 1), m], ip(1), false),
            Verdict::Send { unasked: vec![] }
        );
    }

    #[test]
    fn etcd_anywhere_means_bootstrapped_even_with_others_unreachable() {
        let views = [
            none("cp1", 1),
            unreachable("cp2", 2, "timed out"),
            running("cp3", 3, &[(30, 3)]),
        ];
        match decide(&views, ip(1), false) {
            Verdict::Bootstrapped { ip: at, .. } => assert_eq!(at, ip(3)),
            other => panic!("{other:?}"),
        }
        // etcd starting (no member list yet) is evidence too.
        let mut starting = none("cp2", 2);
        starting.etcd_state = Some("Starting".into());
        assert!(matches!(
            decide(&[none("cp1", 1), starting], ip(1), false),
            Verdict::Bootstrapped { .. }
        ));
    }

    #[test]
    fn a_control_plane_that_cannot_be_asked_fails_closed() {
        for why in [
            "timed out",
            "cannot reach 127.0.0.2:50000: connection refused",
            "presents a certificate of another CA",
            "failed the CA check and is now down (rebooting after its install?)",
        ] {
            let views = [none("cp1", 1), unreachable("cp2", 2, why), none("cp3", 3)];
            match decide(&views, ip(1), false) {
                Verdict::Refuse { unasked } => {
                    assert_eq!(unasked.len(), 1);
                    assert!(unasked[0].starts_with("cp2 (127.0.0.2: "), "{unasked:?}");
                    assert!(unasked[0].contains(why));
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_target_itself_need_not_answer() {
        // Talos's AlreadyExists guards the target; only the others matter.
        let views = [unreachable("cp1", 1, "timed out"), none("cp2", 2)];
        assert_eq!(
            decide(&views, ip(1), false),
            Verdict::Send { unasked: vec![] }
        );
        assert!(matches!(
            decide(&views, ip(2), false),
            Verdict::Refuse { .. }
        ));
    }

    #[test]
    fn the_override_sends_but_names_what_was_not_asked() {
        let views = [none("cp1", 1), unreachable("cp2", 2, "timed out")];
        match decide(&views, ip(1), true) {
            Verdict::Send { unasked } => assert_eq!(unasked.len(), 1),
            other => panic!("{other:?}"),
        }
        // The override never overrides evidence of etcd.
        let views = [none("cp1", 1), running("cp2", 2, &[(2, 2)])];
        assert!(matches!(
            decide(&views, ip(1), true),
            Verdict::Bootstrapped { .. }
        ));
    }

    #[test]
    fn one_cluster_when_member_lists_overlap() {
        let all = [(1, 1), (2, 2), (3, 3)];
        let views = [
            running("cp1", 1, &all),
            running("cp2", 2, &all[..2]),
            running("cp3", 3, &all),
        ];
        let c = count_clusters(&views);
        assert_eq!(c.clusters, vec![vec!["cp1", "cp2", "cp3"]]);
        assert!(c.unconfirmed.is_empty());
    }

    #[test]
    fn disjoint_member_lists_are_two_clusters() {
        let views = [
            running("cp1", 1, &[(1, 1), (3, 3)]),
            running("cp2", 2, &[(2, 2)]),
            running("cp3", 3, &[(1, 1), (3, 3)]),
        ];
        let c = count_clusters(&views);
        assert_eq!(c.clusters.len(), 2, "{c:?}");
        assert_eq!(c.clusters, vec![vec!["cp1", "cp3"], vec!["cp2"]]);
        let (msg, hint) = second_cluster_message(&c, "cp1");
        assert!(msg.contains("2 etcd clusters"), "{msg}");
        assert!(hint.contains("cp2") && hint.contains("reset"), "{hint}");
        assert!(!hint.contains("cp3"), "{hint}");
    }

    #[test]
    fn a_joining_member_belongs_to_the_cluster_that_lists_its_ip() {
        let mut joining = none("cp2", 2);
        joining.etcd_state = Some("Starting".into());
        let views = [running("cp1", 1, &[(1, 1), (2, 2)]), joining.clone()];
        assert_eq!(count_clusters(&views).clusters, vec![vec!["cp1", "cp2"]]);
        // Not listed anywhere: it may be a cluster of its own.
        let views = [running("cp1", 1, &[(1, 1)]), joining];
        let c = count_clusters(&views);
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.unconfirmed.len(), 1, "{c:?}");
    }

    #[test]
    fn unreachable_control_planes_leave_the_count_unconfirmed() {
        let views = [
            running("cp1", 1, &[(1, 1)]),
            unreachable("cp2", 2, "timed out"),
            none("cp3", 3),
        ];
        let c = count_clusters(&views);
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.unconfirmed, vec!["cp2 (timed out)"]);
    }
}
