//! The typed client for one Talos node.
//!
//! A [`NodeClient`] holds one gRPC channel to one node address, opened with
//! either the maintenance TLS config (no client certificate) or the secure
//! one (talosconfig mTLS). Every call returns typed results or a classified
//! [`TalosError`]. Unary calls carry the per-call deadline
//! ([`Timeouts::rpc`]); watch streams do not.
//!
//! Node targeting: talstrap dials each node directly and sends no node
//! metadata. [`NodeClient::with_node`] sets the single-valued `node` key
//! (one-to-one proxying through apid, valid for COSI too); the multi-valued
//! `nodes` key is never sent: its replies aggregate several nodes and COSI
//! rejects it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use rustls::ClientConfig;
use tonic::transport::Channel;

use super::connect::{Timeouts, await_server_verdict, open_channel};
use super::error::{TalosError, TrustFailure};
use super::kubeconfig::extract_kubeconfig;
use super::probe::HeldConnection;
use super::reply::{node_error, single};
use super::resources::{self, kinds};
use super::tls::check_pins;
use super::types::{
    ApplyMode, ApplyResult, EtcdMember, EtcdMemberStatus, InstallStatus, MachineRole,
    MachineStatus, ServiceEventInfo, ServiceStatus, SystemStatInfo, VersionInfo,
};
use crate::disksel::DiskFacts;
use crate::proto::cosi::resource::state_client::StateClient;
use crate::proto::cosi::resource::{EventType, GetRequest, ListRequest, Resource, WatchRequest};
use crate::proto::machine::machine_service_client::MachineServiceClient;
use crate::proto::machine::{
    ApplyConfigurationRequest, BootstrapRequest, EtcdMemberListRequest, RebootRequest,
};
use crate::proto::storage::storage_service_client::StorageServiceClient;

/// Talos servers accept messages up to 32 MiB; so do we.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Which TLS mode the channel was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Maintenance,
    Secure,
}

/// A typed client for one node. Cheap to clone (the channel is shared).
#[derive(Clone)]
pub struct NodeClient {
    addr: SocketAddr,
    channel: Channel,
    kind: ChannelKind,
    rpc_timeout: Duration,
    node: Option<String>,
    /// For a client opened over a probe's connection: closes when that
    /// connection is gone.
    held: Option<tokio::sync::watch::Receiver<()>>,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("addr", &self.addr)
            .field("kind", &self.kind)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("node", &self.node)
            .finish()
    }
}

impl NodeClient {
    /// Connects with the maintenance config (see `tls::maintenance_config`).
    pub async fn connect_maintenance(
        addr: SocketAddr,
        tls: Arc<ClientConfig>,
        t: &Timeouts,
    ) -> Result<Self, TalosError> {
        Self::connect(addr, tls, t, ChannelKind::Maintenance).await
    }

    /// Connects with the talosconfig mTLS config (see `tls::secure_config`).
    pub async fn connect_secure(
        addr: SocketAddr,
        tls: Arc<ClientConfig>,
        t: &Timeouts,
    ) -> Result<Self, TalosError> {
        Self::connect(addr, tls, t, ChannelKind::Secure).await
    }

    async fn connect(
        addr: SocketAddr,
        tls: Arc<ClientConfig>,
        t: &Timeouts,
        kind: ChannelKind,
    ) -> Result<Self, TalosError> {
        let channel = open_channel(addr, tls, t, None).await?;
        Ok(NodeClient {
            addr,
            channel,
            kind,
            rpc_timeout: t.rpc,
            node: None,
            held: None,
        })
    }

    /// A maintenance client over the connection a probe left open
    /// ([`crate::probe::probe_holding`]): the same checks as
    /// [`NodeClient::connect_maintenance`] with `tls` (built with `pins`),
    /// without a second handshake. Should that connection break, the
    /// channel dials a new one with `tls` as usual.
    pub async fn maintenance_over(
        held: HeldConnection,
        tls: Arc<ClientConfig>,
        pins: &[String],
        t: &Timeouts,
    ) -> Result<Self, TalosError> {
        let HeldConnection { addr, leaf, stream } = held;
        if let Err(failure) = check_pins(pins, &leaf, &addr.ip().to_string()) {
            let failure = failure.unwrap_or_else(|| TrustFailure::Other {
                ip: addr.ip().to_string(),
                detail: "its certificate does not parse".into(),
            });
            return Err(TalosError::from_trust(addr, &failure));
        }
        let (alive, gone) = tokio::sync::watch::channel(());
        let first = await_server_verdict(addr, stream, t.tls)
            .await?
            .tracked(alive);
        let channel = open_channel(addr, tls, t, Some(first)).await?;
        Ok(NodeClient {
            addr,
            channel,
            kind: ChannelKind::Maintenance,
            rpc_timeout: t.rpc,
            node: None,
            held: Some(gone),
        })
    }

    /// For a client opened with [`NodeClient::maintenance_over`]: a future
    /// that ends when the probe's connection has closed (a node leaving
    /// maintenance mode closes it). None for clients that dialled.
    pub fn held_connection_closed(
        &self,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let mut gone = self.held.clone()?;
        Some(async move { while gone.changed().await.is_ok() {} })
    }

    /// Targets `node` through this endpoint with the single-valued `node`
    /// metadata key on every call.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn state(&self) -> StateClient<Channel> {
        StateClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn storage(&self) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// A request with the node header and (unless `stream`) our deadline.
    fn request<T>(&self, msg: T, with_deadline: bool) -> Result<tonic::Request<T>, TalosError> {
        let mut req = tonic::Request::new(msg);
        if with_deadline {
            req.set_timeout(self.rpc_timeout);
        }
        if let Some(node) = &self.node {
            let value = node
                .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                .map_err(|_| {
                    TalosError::Input(format!(
                        "node name {node:?} cannot be sent as gRPC metadata"
                    ))
                })?;
            req.metadata_mut().insert("node", value);
        }
        Ok(req)
    }

    fn status(&self, rpc: &'static str, status: tonic::Status) -> TalosError {
        let err = TalosError::from_status(status, self.addr, rpc);
        match err {
            // Talos v1.13+ serves maintenance mode from apid with the reader
            // role for every caller (Talos v1.13.9 internal/app/apid/service.go,
            // pkg/grpc/middleware/authz/injector.go): admin-only calls answer
            // PermissionDenied where v1.12's maintenance service answered
            // Unimplemented. That is the node's mode, not our credentials:
            // classify it as the v1.12 answer, never as a trust failure.
            // (Sensitive COSI reads are refused the same way on every
            // release and stay what they were.)
            TalosError::Status {
                code: tonic::Code::PermissionDenied,
                message,
                ..
            } if self.kind == ChannelKind::Maintenance
                && message == "not authorized"
                && !rpc.starts_with("cosi") =>
            {
                TalosError::Status {
                    addr: self.addr,
                    rpc,
                    code: tonic::Code::Unimplemented,
                    message: format!(
                        "{message}: not available in maintenance mode (the node serves it read-only until it has a config)"
                    ),
                }
            }
            // Name our own deadline precisely.
            TalosError::Transport {
                code: Some(tonic::Code::DeadlineExceeded),
                ..
            } => TalosError::timeout(self.addr, rpc, self.rpc_timeout),
            other => other,
        }
    }

    /// Runs a future under the per-call deadline (for streamed replies,
    /// whose body tonic's own timeout does not cover).
    async fn bounded<T>(
        &self,
        rpc: &'static str,
        fut: impl std::future::Future<Output = Result<T, TalosError>>,
    ) -> Result<T, TalosError> {
        match tokio::time::timeout(self.rpc_timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(TalosError::timeout(self.addr, rpc, self.rpc_timeout)),
        }
    }

    /// `Version`. In maintenance mode this fails with Unimplemented.
    pub async fn version(&self) -> Result<VersionInfo, TalosError> {
        const RPC: &str = "Version";
        let reply = self
            .machine()
            .version(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        let version = msg.version.unwrap_or_default();
        let platform = msg.platform.unwrap_or_default();
        Ok(VersionInfo {
            tag: version.tag,
            sha: version.sha,
            platform: platform.name,
            mode: platform.mode,
        })
    }

    /// `ApplyConfiguration` with `data` (the whole multi-document YAML).
    /// `try_timeout` is the TRY-mode rollback delay (Talos defaults to 1 min).
    pub async fn apply_configuration(
        &self,
        data: &[u8],
        mode: ApplyMode,
        dry_run: bool,
        try_timeout: Option<Duration>,
    ) -> Result<ApplyResult, TalosError> {
        const RPC: &str = "ApplyConfiguration";
        let request = ApplyConfigurationRequest {
            data: data.to_vec(),
            mode: mode.as_proto() as i32,
            dry_run,
            try_mode_timeout: try_timeout.map(duration_to_proto),
        };
        let reply = self
            .machine()
            .apply_configuration(self.request(request, true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        Ok(ApplyResult {
            warnings: msg.warnings,
            mode: ApplyMode::from_i32(msg.mode).unwrap_or(ApplyMode::Reboot),
            mode_details: msg.mode_details,
        })
    }

    /// `Bootstrap` (no etcd recovery).
    pub async fn bootstrap(&self) -> Result<(), TalosError> {
        const RPC: &str = "Bootstrap";
        let reply = self
            .machine()
            .bootstrap(self.request(BootstrapRequest::default(), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        // An empty message list is fine here: the reply has no payload.
        if let Some(err) = reply
            .messages
            .iter()
            .find_map(|m| node_error(m.metadata.as_ref(), self.addr, RPC))
        {
            return Err(err);
        }
        Ok(())
    }

    /// `EtcdMemberList`; `query_local` asks the node's own etcd.
    pub async fn etcd_member_list(&self, query_local: bool) -> Result<Vec<EtcdMember>, TalosError> {
        const RPC: &str = "EtcdMemberList";
        let reply = self
            .machine()
            .etcd_member_list(self.request(EtcdMemberListRequest { query_local }, true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        Ok(msg
            .members
            .into_iter()
            .map(|m| EtcdMember {
                id: m.id,
                hostname: m.hostname,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
            .collect())
    }

    /// `EtcdStatus` of the node's etcd member.
    pub async fn etcd_status(&self) -> Result<EtcdMemberStatus, TalosError> {
        const RPC: &str = "EtcdStatus";
        let reply = self
            .machine()
            .etcd_status(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        let s = msg.member_status.ok_or_else(|| TalosError::BadReply {
            addr: self.addr,
            rpc: RPC,
            detail: "no member_status".to_string(),
        })?;
        Ok(EtcdMemberStatus {
            member_id: s.member_id,
            leader: s.leader,
            errors: s.errors,
            is_learner: s.is_learner,
            raft_index: s.raft_index,
        })
    }

    /// `ServiceList`.
    pub async fn service_list(&self) -> Result<Vec<ServiceStatus>, TalosError> {
        const RPC: &str = "ServiceList";
        let reply = self
            .machine()
            .service_list(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        Ok(msg
            .services
            .into_iter()
            .map(|s| {
                let health = s.health.unwrap_or_default();
                ServiceStatus {
                    id: s.id,
                    state: s.state,
                    healthy: (!health.unknown).then_some(health.healthy),
                    last_message: health.last_message,
                    events: s
                        .events
                        .unwrap_or_default()
                        .events
                        .into_iter()
                        .map(|e| ServiceEventInfo {
                            msg: e.msg,
                            state: e.state,
                            ts_unix: e.ts.map(|ts| ts.seconds),
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// `SystemStat`: the kernel boot time.
    pub async fn system_stat(&self) -> Result<SystemStatInfo, TalosError> {
        const RPC: &str = "SystemStat";
        let reply = self
            .machine()
            .system_stat(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        let msg = single(self.addr, RPC, reply.messages)?;
        Ok(SystemStatInfo {
            boot_time: msg.boot_time,
        })
    }

    /// The kernel's boot id (`Read /proc/sys/kernel/random/boot_id`, as
    /// talosctl reads it to see a reboot). `None` when the node does not let
    /// this client read it: Read is admin-only, and maintenance mode has no
    /// Read at all.
    pub async fn boot_id(&self) -> Result<Option<String>, TalosError> {
        const RPC: &str = "Read";
        let read = self
            .bounded(RPC, async {
                let mut stream = self
                    .machine()
                    .read(self.request(
                        crate::proto::machine::ReadRequest {
                            path: "/proc/sys/kernel/random/boot_id".into(),
                        },
                        true,
                    )?)
                    .await
                    .map_err(|s| self.status(RPC, s))?
                    .into_inner();
                let mut payload = Vec::new();
                while let Some(item) = stream.next().await {
                    let data = item.map_err(|s| self.status(RPC, s))?;
                    if let Some(err) = node_error(data.metadata.as_ref(), self.addr, RPC) {
                        return Err(err);
                    }
                    payload.extend_from_slice(&data.bytes);
                }
                Ok(payload)
            })
            .await;
        match read {
            Ok(payload) => {
                let id = String::from_utf8_lossy(&payload).trim().to_string();
                Ok((!id.is_empty()).then_some(id))
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(tonic::Code::PermissionDenied | tonic::Code::Unimplemented)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `Hostname`.
    pub async fn hostname(&self) -> Result<String, TalosError> {
        const RPC: &str = "Hostname";
        let reply = self
            .machine()
            .hostname(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        Ok(single(self.addr, RPC, reply.messages)?.hostname)
    }

    /// `Kubeconfig`: the admin kubeconfig file bytes, extracted from the
    /// streamed gzip'd tar. Holds cluster credentials: never log it.
    pub async fn kubeconfig(&self) -> Result<Vec<u8>, TalosError> {
        const RPC: &str = "Kubeconfig";
        let payload = self
            .bounded(RPC, async {
                let mut stream = self
                    .machine()
                    .kubeconfig(self.request((), true)?)
                    .await
                    .map_err(|s| self.status(RPC, s))?
                    .into_inner();
                let mut payload = Vec::new();
                while let Some(item) = stream.next().await {
                    let data = item.map_err(|s| self.status(RPC, s))?;
                    if let Some(err) = node_error(data.metadata.as_ref(), self.addr, RPC) {
                        return Err(err);
                    }
                    payload.extend_from_slice(&data.bytes);
                }
                Ok(payload)
            })
            .await?;
        if payload.is_empty() {
            return Err(TalosError::EmptyReply {
                addr: self.addr,
                rpc: RPC,
            });
        }
        extract_kubeconfig(&payload).map_err(|e| TalosError::BadReply {
            addr: self.addr,
            rpc: RPC,
            detail: e.to_string(),
        })
    }

    /// `Reboot` (default mode); returns the actor id of the reboot events.
    pub async fn reboot(&self) -> Result<String, TalosError> {
        const RPC: &str = "Reboot";
        let reply = self
            .machine()
            .reboot(self.request(RebootRequest::default(), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        Ok(single(self.addr, RPC, reply.messages)?.actor_id)
    }

    /// `storage.StorageService/Disks`: works in maintenance mode without a
    /// role.
    pub async fn storage_disks(&self) -> Result<Vec<crate::proto::storage::Disk>, TalosError> {
        const RPC: &str = "Disks";
        let reply = self
            .storage()
            .disks(self.request((), true)?)
            .await
            .map_err(|s| self.status(RPC, s))?
            .into_inner();
        Ok(single(self.addr, RPC, reply.messages)?.disks)
    }

    /// COSI Get; a missing resource is `Ok(None)`.
    pub async fn get_resource(
        &self,
        ns: &str,
        ty: &str,
        id: &str,
    ) -> Result<Option<Resource>, TalosError> {
        const RPC: &str = "cosi Get";
        let request = GetRequest {
            namespace: ns.to_string(),
            r#type: ty.to_string(),
            id: id.to_string(),
            options: None,
        };
        match self.state().get(self.request(request, true)?).await {
            Ok(reply) => Ok(reply.into_inner().resource),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(self.status(RPC, status)),
        }
    }

    /// COSI List of every resource of `ty` in `ns`.
    pub async fn list_resources(&self, ns: &str, ty: &str) -> Result<Vec<Resource>, TalosError> {
        const RPC: &str = "cosi List";
        let request = ListRequest {
            namespace: ns.to_string(),
            r#type: ty.to_string(),
            options: None,
        };
        self.bounded(RPC, async {
            let mut stream = self
                .state()
                .list(self.request(request, true)?)
                .await
                .map_err(|s| self.status(RPC, s))?
                .into_inner();
            let mut out = Vec::new();
            while let Some(item) = stream.next().await {
                if let Some(resource) = item.map_err(|s| self.status(RPC, s))?.resource {
                    out.push(resource);
                }
            }
            Ok(out)
        })
        .await
    }

    fn bad_spec(&self, rpc: &'static str, ty: &str, detail: String) -> TalosError {
        TalosError::BadReply {
            addr: self.addr,
            rpc,
            detail: format!("{ty}: {detail}"),
        }
    }

    /// `MachineStatuses.runtime.talos.dev` `runtime/machine`.
    pub async fn machine_status(&self) -> Result<MachineStatus, TalosError> {
        let (ns, ty, id) = kinds::MACHINE_STATUS;
        let resource = self.get_resource(ns, ty, id).await?.ok_or_else(|| {
            self.bad_spec(
                "cosi Get",
                ty,
                "resource runtime/machine does not exist".to_string(),
            )
        })?;
        resources::machine_status(&resource).map_err(|e| self.bad_spec("cosi Get", ty, e))
    }

    /// Watches `runtime/machine`: one item per change, starting with the
    /// current state. The watch has no deadline; only setting it up does.
    pub async fn watch_machine_status(
        &self,
    ) -> Result<BoxStream<'static, Result<MachineStatus, TalosError>>, TalosError> {
        const RPC: &str = "cosi Watch";
        let (ns, ty, id) = kinds::MACHINE_STATUS;
        let request = WatchRequest {
            namespace: ns.to_string(),
            r#type: ty.to_string(),
            // Presence matters: Some = watch this one resource.
            id: Some(id.to_string()),
            options: None,
            api_version: 1,
        };
        let request = self.request(request, false)?;
        let mut state = self.state();
        let stream = self
            .bounded(RPC, async {
                state
                    .watch(request)
                    .await
                    .map_err(|s| self.status(RPC, s))
                    .map(tonic::Response::into_inner)
            })
            .await?;
        let addr = self.addr;
        let items = stream.flat_map(move |item| {
            let out: Vec<Result<MachineStatus, TalosError>> = match item {
                Err(status) => vec![Err(TalosError::from_status(status, addr, RPC))],
                // The first response is empty (watch is set up); skip it and
                // any other event-less response.
                Ok(response) => response
                    .event
                    .into_iter()
                    .filter_map(|ev| watch_event(ev, addr))
                    .collect(),
            };
            futures_util::stream::iter(out)
        });
        Ok(items.boxed())
    }

    /// `Versions.runtime.talos.dev` `runtime/version`; `None` on Talos 1.9,
    /// which has no such resource (its access filter answers
    /// PermissionDenied "resource type … is not supported", not NotFound).
    pub async fn talos_version(&self) -> Result<Option<String>, TalosError> {
        let (ns, ty, id) = kinds::VERSION;
        match self.get_resource(ns, ty, id).await {
            Ok(None) => Ok(None),
            Ok(Some(resource)) => resources::version(&resource)
                .map(Some)
                .map_err(|e| self.bad_spec("cosi Get", ty, e)),
            Err(TalosError::Status {
                code: tonic::Code::PermissionDenied,
                message,
                ..
            }) if message.contains("is not supported") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// v1.14's `UnattendedInstallStatuses.runtime.talos.dev`
    /// `runtime/unattended-install`: `None` when the node has none (no
    /// UnattendedInstallConfig, or a release without the type).
    pub async fn unattended_install_status(&self) -> Result<Option<InstallStatus>, TalosError> {
        let (ns, ty, id) = kinds::UNATTENDED_INSTALL_STATUS;
        match self.get_resource(ns, ty, id).await {
            Ok(None) => Ok(None),
            Ok(Some(resource)) => resources::install_status(&resource)
                .map(Some)
                .map_err(|e| self.bad_spec("cosi Get", ty, e)),
            Err(TalosError::Status {
                code: tonic::Code::PermissionDenied,
                message,
                ..
            }) if message.contains("is not supported") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `MachineTypes.config.talos.dev` `config/machine-type`.
    pub async fn machine_type(&self) -> Result<MachineRole, TalosError> {
        let (ns, ty, id) = kinds::MACHINE_TYPE;
        match self.get_resource(ns, ty, id).await? {
            None => Ok(MachineRole::Unknown),
            Some(resource) => {
                resources::machine_type(&resource).map_err(|e| self.bad_spec("cosi Get", ty, e))
            }
        }
    }

    /// Every `Disks.block.talos.dev` in namespace `runtime`.
    pub async fn disks(&self) -> Result<Vec<DiskFacts>, TalosError> {
        let (ns, ty) = kinds::DISKS;
        self.list_resources(ns, ty)
            .await?
            .iter()
            .map(|r| resources::disk(r).map_err(|e| self.bad_spec("cosi List", ty, e)))
            .collect()
    }

    /// `EtcdMembers.etcd.talos.dev` `etcd/local`: the member id, present only
    /// while the local etcd runs and is healthy.
    pub async fn etcd_local_member(&self) -> Result<Option<String>, TalosError> {
        let (ns, ty, id) = kinds::ETCD_LOCAL_MEMBER;
        match self.get_resource(ns, ty, id).await? {
            None => Ok(None),
            Some(resource) => resources::etcd_member_id(&resource)
                .map(Some)
                .map_err(|e| self.bad_spec("cosi Get", ty, e)),
        }
    }

    /// `MachineConfigs.config.talos.dev` `config/v1alpha1`: the active config
    /// as applied (admin only; holds secrets, never log it).
    pub async fn machine_config(&self) -> Result<Option<Vec<u8>>, TalosError> {
        let (ns, ty, id) = kinds::MACHINE_CONFIG;
        match self.get_resource(ns, ty, id).await? {
            None => Ok(None),
            Some(resource) => resources::machine_config(&resource)
                .map(Some)
                .map_err(|e| self.bad_spec("cosi Get", ty, e)),
        }
    }
}

/// One watch event as a status update; tombstones and bookkeeping events
/// are skipped.
fn watch_event(
    event: crate::proto::cosi::resource::Event,
    addr: SocketAddr,
) -> Option<Result<MachineStatus, TalosError>> {
    const RPC: &str = "cosi Watch";
    match EventType::try_from(event.event_type) {
        Ok(EventType::Created) | Ok(EventType::Updated) => {
            let resource = event.resource?;
            Some(
                resources::machine_status(&resource).map_err(|detail| TalosError::BadReply {
                    addr,
                    rpc: RPC,
                    detail,
                }),
            )
        }
        Ok(EventType::Errored) => Some(Err(TalosError::BadReply {
            addr,
            rpc: RPC,
            detail: format!("watch error: {}", event.error.unwrap_or_default()),
        })),
        // DESTROYED (incl. the tombstone sent when the resource does not
        // exist yet), BOOTSTRAPPED, NOOP and unknown kinds carry no state.
        _ => None,
    }
}

fn duration_to_proto(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
