//! Cluster-wide facts gathered from every reachable control plane: is etcd
//! already there (the bootstrap guard), and who has it.

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;

use crate::talos::probe::{ProbeResult, probe};
use crate::talos::{ErrorClass, NodeClient, Stage};

use crate::commands::plan::{Access, Endpoint};

/// What one control plane says about etcd.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EtcdView {
    pub node: String,
    pub ip: std::net::IpAddr,
    pub reachable: bool,
    /// `Running`, `Preparing`, ... (None when unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_healthy: Option<bool>,
    /// `EtcdMembers.etcd.talos.dev/local` exists.
    pub local_member: bool,
    /// Members this node's etcd lists (empty when it has none).
    pub members: Vec<String>,
    /// The same members' IDs and the IPs of their peer/client URLs: the
    /// identity of the etcd cluster this node is in, from its own view.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_ids: Vec<u64>,
    #[serde(skip)]
    pub member_ips: Vec<std::net::IpAddr>,
    /// The node answered in maintenance mode: no config applied yet (or
    /// still installing), so no etcd.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EtcdView {
    /// Evidence that this node already has etcd (any one signal suffices).
    pub(crate) fn has_etcd(&self) -> bool {
        self.local_member
            || !self.members.is_empty()
            || matches!(self.etcd_state.as_deref(), Some("Running" | "Starting"))
    }

    /// A view of a node that could not be asked.
    pub(crate) fn unasked(cp: &Endpoint, error: impl Into<String>) -> EtcdView {
        EtcdView {
            node: cp.node.node.clone(),
            ip: cp.node.ip,
            reachable: false,
            etcd_state: None,
            etcd_healthy: None,
            local_member: false,
            members: Vec::new(),
            member_ids: Vec::new(),
            member_ips: Vec::new(),
            maintenance: false,
            error: Some(error.into()),
        }
    }

    /// "cp2 (127.0.0.3): etcd Running, 3 members"
    pub(crate) fn proof(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.etcd_state {
            parts.push(format!("etcd {s}"));
        }
        if !self.members.is_empty() {
            parts.push(format!(
                "{} member{}",
                self.members.len(),
                if self.members.len() == 1 { "" } else { "s" }
            ));
        } else if self.local_member {
            parts.push("local member present".into());
        }
        format!("{} ({}): {}", self.node, self.ip, parts.join(", "))
    }
}

/// Ask one control plane about etcd over mTLS.
pub(crate) async fn etcd_view(access: &Access, cp: &Endpoint) -> EtcdView {
    let mut view = EtcdView::unasked(cp, "no talosconfig");
    let Some(tls) = access.secure.clone() else {
        return view;
    };
    view.error = None;
    let client = match NodeClient::connect_secure(cp.addr, tls, &access.timeouts).await {
        Ok(c) => c,
        // A node still in maintenance mode (not applied yet, or installing)
        // fails the CA check too; it has no etcd, and is no foreign cluster.
        Err(e) => {
            let seen = match e.class() {
                ErrorClass::Trust => second_look(access, cp).await,
                _ => None,
            };
            view.maintenance = seen == Some(SecondLook::Maintenance);
            view.error = Some(
                seen.map(|s| s.describe().to_string())
                    .unwrap_or_else(|| e.to_string()),
            );
            return view;
        }
    };
    match client.service_list().await {
        Ok(services) => {
            view.reachable = true;
            if let Some(etcd) = services.iter().find(|s| s.id == "etcd") {
                view.etcd_state = Some(etcd.state.clone());
                view.etcd_healthy = etcd.healthy;
            }
        }
        Err(e) => {
            view.error = Some(e.to_string());
            return view;
        }
    }
    if let Ok(m) = client.etcd_local_member().await {
        view.local_member = m.is_some();
    }
    if matches!(view.etcd_state.as_deref(), Some("Running" | "Starting"))
        && let Ok(members) = client.etcd_member_list(true).await
    {
        view.member_ids = members.iter().map(|m| m.id).collect();
        view.member_ips = members.iter().flat_map(|m| m.ips()).collect();
        view.members = members.into_iter().map(|m| m.hostname).collect();
    }
    view
}

/// What a second look at a node that failed the CA check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecondLook {
    /// Maintenance mode: no config applied yet.
    Maintenance,
    /// Still serving the maintenance API while it installs the config it
    /// took (Talos v1.13+ keeps maintenance in apid until the reboot).
    Installing,
    /// Down now (rebooting after its install?).
    Down,
    /// Presents our CA now (it just came up configured).
    NowOurs,
}

impl SecondLook {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            SecondLook::Maintenance => {
                "in maintenance mode (its config is not applied yet, or it is still installing)"
            }
            SecondLook::Installing => {
                "is installing the config it was given (maintenance API still up)"
            }
            SecondLook::Down => {
                "failed the CA check and is now down (rebooting after its install?)"
            }
            SecondLook::NowOurs => {
                "failed the CA check a moment ago and now presents our CA (just came up configured)"
            }
        }
    }
}

/// Probe a node that failed the CA check; None when it really presents
/// another CA (or is not Talos).
pub(crate) async fn second_look(access: &Access, ep: &Endpoint) -> Option<SecondLook> {
    let creds = access.talosconfig.as_ref().map(|t| t.credentials.clone());
    match probe(ep.addr, creds.as_deref(), &access.timeouts).await {
        ProbeResult::Maintenance { .. } => Some(maintenance_stage(access, ep).await),
        ProbeResult::Unreachable { .. } => Some(SecondLook::Down),
        ProbeResult::Configured {
            ours: Some(true), ..
        } => Some(SecondLook::NowOurs),
        ProbeResult::Configured { .. } | ProbeResult::NotTalos { .. } => None,
    }
}

/// A node in maintenance mode that reports a stage other than
/// `maintenance` (installing, rebooting) has taken its config; one whose
/// stage cannot be read counts as not applied.
async fn maintenance_stage(access: &Access, ep: &Endpoint) -> SecondLook {
    let Ok(client) =
        NodeClient::connect_maintenance(ep.addr, access.maintenance.clone(), &access.timeouts)
            .await
    else {
        return SecondLook::Maintenance;
    };
    match client.machine_status().await {
        Ok(status) if status.stage != Stage::Maintenance && status.stage != Stage::Unknown => {
            SecondLook::Installing
        }
        _ => SecondLook::Maintenance,
    }
}

/// Ask every control plane at once (bounded by the RPC timeouts).
pub(crate) async fn etcd_views(access: &Access, cps: &[Endpoint]) -> Vec<EtcdView> {
    join_all(cps.iter().map(|cp| async move {
        let budget = access.timeouts.connect + access.timeouts.tls + access.timeouts.rpc * 4;
        match tokio::time::timeout(budget + Duration::from_secs(1), etcd_view(access, cp)).await {
            Ok(v) => v,
            Err(_) => EtcdView::unasked(cp, "timed out"),
        }
    }))
    .await
}

/// The bootstrap guard: Some(proof) if any reachable control plane has etcd.
pub(crate) async fn cluster_bootstrapped(access: &Access, cps: &[Endpoint]) -> Option<String> {
    etcd_views(access, cps)
        .await
        .into_iter()
        .find(EtcdView::has_etcd)
        .map(|v| v.proof())
}
