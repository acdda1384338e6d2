//! The gRPC services a simulated node serves (MachineService, StorageService,
//! cosi.resource.State) and what happens before a handler runs: request
//! counting, injected latency and flaky failures, maintenance versus apid,
//! and apid's `node`/`nodes` proxying, including aggregation of per-node
//! replies with `metadata.hostname` and per-node errors as messages.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Response, Status};

use super::cosi::{self, TypeDef};
use super::handlers::{self, Call, Caller, Reply};
use super::node::SimNode;
use super::rbac::{self, Roles};
use super::route::{self, Route};
use super::scenario::scale_duration;
use super::server::ConnInfo;
use super::state::{ListenerKind, Role};
use crate::proto::common::{Data, Metadata};
use crate::proto::cosi::resource::{
    Event, EventType, GetRequest, GetResponse, ListRequest, ListResponse, Resource, WatchRequest,
    WatchResponse, state_server::State,
};
use crate::proto::machine::machine_service_server::MachineService;
use crate::proto::machine::*;
use crate::proto::storage::DisksResponse;
use crate::proto::storage::storage_service_server::StorageService;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

const P_GET: &str = "/cosi.resource.State/Get";
const P_LIST: &str = "/cosi.resource.State/List";
const P_WATCH: &str = "/cosi.resource.State/Watch";

/// Faults that apply to any call a node handles: counted, delayed, maybe failed.
async fn prelude(node: &Arc<SimNode>, path: &str) -> Result<(), Status> {
    node.count_request(path);
    if let Some(latency) = node.id.faults.latency {
        tokio::time::sleep(scale_duration(latency, node.id.time_scale)).await;
    }
    if node.lock().take_flaky(&node.id, path) {
        return Err(Status::unavailable(format!(
            "injected transient failure of {path}"
        )));
    }
    Ok(())
}

/// Entry of every request on a client connection.
async fn enter(node: &Arc<SimNode>, path: &str, ext: &Extensions) -> Result<ConnInfo, Status> {
    let conn = ext
        .get::<ConnInfo>()
        .cloned()
        .ok_or_else(|| Status::internal("connection information missing"))?;
    if node.lock().listener.kind == ListenerKind::Silent {
        // Powered off: a request on a connection opened before the power
        // cut never gets an answer; the client's own timeout ends it.
        std::future::pending::<()>().await;
    }
    prelude(node, path).await?;
    if node.lock().listener.generation != conn.generation {
        // The node moved on (left maintenance, rebooted) since this
        // connection was made.
        return Err(Status::unavailable("transport is closing"));
    }
    Ok(conn)
}

fn is_local(node: &SimNode, target: &str) -> bool {
    target == node.id.ip.to_string()
        || target == node.id.hostname
        || target == node.lock().hostname(&node.id)
}

/// apid dialling `target` from `endpoint`: the errors grpc-go would report.
fn reach(endpoint: &Arc<SimNode>, target: &str) -> Result<Arc<SimNode>, Status> {
    let fleet = endpoint
        .fleet()
        .ok_or_else(|| Status::unavailable("node is shutting down"))?;
    let port = fleet.port;
    let conn_err =
        |why: String| Status::unavailable(format!("connection error: desc = \"transport: {why}\""));
    let Some(t) = fleet.resolve(target) else {
        return Err(match target.parse::<std::net::IpAddr>() {
            Ok(ip) => conn_err(format!(
                "Error while dialing: dial tcp {}: connect: connection refused",
                super::fleet::host_port(ip, port)
            )),
            Err(_) => conn_err(format!(
                "Error while dialing: dial tcp: lookup {target}: no such host"
            )),
        });
    };
    let addr = super::fleet::host_port(t.id.ip, port);
    let endpoint_ca = endpoint
        .lock()
        .config
        .as_ref()
        .and_then(|c| c.ca_id().map(str::to_string));
    let (kind, target_ca) = {
        let st = t.lock();
        (
            st.listener.kind,
            st.config
                .as_ref()
                .and_then(|c| c.ca_id().map(str::to_string)),
        )
    };
    if t.id.faults.unreachable || kind == ListenerKind::Silent {
        return Err(conn_err(format!(
            "Error while dialing: dial tcp {addr}: i/o timeout"
        )));
    }
    if kind == ListenerKind::None {
        return Err(conn_err(format!(
            "Error while dialing: dial tcp {addr}: connect: connection refused"
        )));
    }
    if t.id.faults.hang_after_accept {
        return Err(conn_err(
            "authentication handshake failed: context deadline exceeded".to_string(),
        ));
    }
    if kind == ListenerKind::Maintenance || target_ca != endpoint_ca || t.id.faults.wrong_ca {
        return Err(conn_err(
            "authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .to_string(),
        ));
    }
    Ok(t)
}

/// Where a configured node sends a call.
async fn routed(node: &Arc<SimNode>, md: &MetadataMap, path: &str) -> Result<Route, Status> {
    let forwarding = node.lock().role(&node.id) == Role::ControlPlane;
    route::route(md, path, forwarding, |t| is_local(node, t))
}

/// A proxied call reaching `target` (counted and faulted there).
async fn at_target(
    endpoint: &Arc<SimNode>,
    target: &str,
    path: &str,
) -> Result<Arc<SimNode>, Status> {
    let t = reach(endpoint, target)?;
    prelude(&t, path).await?;
    Ok(t)
}

fn failure_metadata(target: &str, status: &Status) -> Metadata {
    Metadata {
        hostname: target.to_string(),
        error: route::go_error(status),
        status: Some(route::rpc_status(status)),
    }
}

/// A unary call, end to end.
async fn unary(
    node: &Arc<SimNode>,
    md: &MetadataMap,
    ext: &Extensions,
    call: Call,
) -> Result<Reply, Status> {
    let path = call.path();
    let conn = enter(node, path, ext).await?;
    if conn.kind == ListenerKind::Maintenance {
        // No apid in maintenance: node metadata is ignored.
        return handlers::maintenance(node, &conn, call).await;
    }
    let roles = conn.roles.clone();
    match routed(node, md, path).await? {
        Route::Local => {
            let caller = Caller {
                roles,
                conn: Some(conn),
            };
            handlers::configured(node, &caller, call).await
        }
        Route::One(target) if is_local(node, &target) => {
            let caller = Caller {
                roles,
                conn: Some(conn),
            };
            handlers::configured(node, &caller, call).await
        }
        Route::One(target) => {
            let t = at_target(node, &target, path).await?;
            handlers::configured(&t, &Caller { roles, conn: None }, call).await
        }
        Route::Many(targets) => {
            let mut pending: FuturesUnordered<_> = targets
                .into_iter()
                .map(|target| {
                    let call = call.clone();
                    let roles = roles.clone();
                    async move {
                        let result = async {
                            let t = at_target(node, &target, path).await?;
                            handlers::configured(&t, &Caller { roles, conn: None }, call).await
                        }
                        .await;
                        (target, result)
                    }
                })
                .collect();
            let mut out: Option<Reply> = None;
            // Replies are concatenated in arrival order, as apid does.
            while let Some((target, result)) = pending.next().await {
                let piece = match result {
                    Ok(mut r) => {
                        r.tag(&target);
                        r
                    }
                    Err(s) => call.error_reply(failure_metadata(&target, &s)),
                };
                match &mut out {
                    None => out = Some(piece),
                    Some(o) => o.merge(piece),
                }
            }
            out.ok_or_else(|| Status::invalid_argument("no target nodes"))
        }
    }
}

/// Body of a unary trait method: split the request, dispatch, unwrap the reply.
macro_rules! unary_body {
    ($self:ident, $request:ident, $variant:ident, |$r:pat_param| $call:expr) => {{
        let (md, ext, $r) = $request.into_parts();
        match unary(&$self.node, &md, &ext, $call).await? {
            Reply::$variant(v) => Ok(Response::new(v)),
            _ => Err(Status::internal("mismatched reply")),
        }
    }};
}

/// `machine.MachineService` of one node.
pub struct MachineApi {
    node: Arc<SimNode>,
}

impl MachineApi {
    pub fn new(node: Arc<SimNode>) -> Self {
        Self { node }
    }

    async fn kubeconfig_items(
        &self,
        md: &MetadataMap,
        ext: &Extensions,
    ) -> Result<Vec<Data>, Status> {
        let path = handlers::P_KUBECONFIG;
        let node = &self.node;
        let conn = enter(node, path, ext).await?;
        if conn.kind == ListenerKind::Maintenance {
            // v1.13+: apid with the reader role (Talos v1.13.9 internal/app/apid/service.go).
            if super::version::maintenance_in_apid(&node.id.talos_version) {
                return Err(Status::permission_denied("not authorized"));
            }
            return Err(Status::unimplemented("method Kubeconfig not implemented"));
        }
        let roles = conn.roles.clone();
        match routed(node, md, path).await? {
            Route::Local => handlers::kubeconfig(node, &roles),
            Route::One(target) if is_local(node, &target) => handlers::kubeconfig(node, &roles),
            Route::One(target) => {
                let t = at_target(node, &target, path).await?;
                handlers::kubeconfig(&t, &roles)
            }
            Route::Many(targets) => {
                let mut out = Vec::new();
                for target in targets {
                    let result = async {
                        let t = at_target(node, &target, path).await?;
                        handlers::kubeconfig(&t, &roles)
                    }
                    .await;
                    match result {
                        Ok(items) => out.extend(items.into_iter().map(|mut d| {
                            d.metadata.get_or_insert_with(Metadata::default).hostname =
                                target.clone();
                            d
                        })),
                        // A streamed per-node error: one message with only metadata.
                        Err(s) => out.push(Data {
                            metadata: Some(failure_metadata(&target, &s)),
                            bytes: Vec::new(),
                        }),
                    }
                }
                Ok(out)
            }
        }
    }
}

#[tonic::async_trait]
impl MachineService for MachineApi {
    type KubeconfigStream = BoxStream<Data>;
    type ReadStream = BoxStream<Data>;

    async fn apply_configuration(
        &self,
        request: Request<ApplyConfigurationRequest>,
    ) -> Result<Response<ApplyConfigurationResponse>, Status> {
        unary_body!(self, request, Apply, |r| Call::Apply(r))
    }
    async fn bootstrap(
        &self,
        request: Request<BootstrapRequest>,
    ) -> Result<Response<BootstrapResponse>, Status> {
        unary_body!(self, request, Bootstrap, |r| Call::Bootstrap(r))
    }
    async fn etcd_member_list(
        &self,
        request: Request<EtcdMemberListRequest>,
    ) -> Result<Response<EtcdMemberListResponse>, Status> {
        unary_body!(self, request, EtcdMemberList, |r| {
            Call::EtcdMemberList(r)
        })
    }
    async fn etcd_status(
        &self,
        request: Request<()>,
    ) -> Result<Response<EtcdStatusResponse>, Status> {
        unary_body!(self, request, EtcdStatus, |_r| Call::EtcdStatus)
    }
    async fn hostname(&self, request: Request<()>) -> Result<Response<HostnameResponse>, Status> {
        unary_body!(self, request, Hostname, |_r| Call::Hostname)
    }
    async fn reboot(
        &self,
        request: Request<RebootRequest>,
    ) -> Result<Response<RebootResponse>, Status> {
        unary_body!(self, request, Reboot, |r| Call::Reboot(r))
    }
    async fn service_list(
        &self,
        request: Request<()>,
    ) -> Result<Response<ServiceListResponse>, Status> {
        unary_body!(self, request, ServiceList, |_r| Call::ServiceList)
    }
    async fn system_stat(
        &self,
        request: Request<()>,
    ) -> Result<Response<SystemStatResponse>, Status> {
        unary_body!(self, request, SystemStat, |_r| Call::SystemStat)
    }
    async fn version(&self, request: Request<()>) -> Result<Response<VersionResponse>, Status> {
        unary_body!(self, request, Version, |_r| Call::Version)
    }

    /// Only the boot id can be read (`/proc/sys/kernel/random/boot_id`, what
    /// talosctl reads to see a reboot; v1.12.11
    /// cmd/talosctl/pkg/talos/action/tracker.go `getBootID`); admin only.
    async fn read(
        &self,
        request: Request<ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (md, ext, req) = request.into_parts();
        let path = handlers::P_READ;
        let node = &self.node;
        let conn = enter(node, path, &ext).await?;
        if conn.kind == ListenerKind::Maintenance {
            return Err(Status::unimplemented("method Read not implemented"));
        }
        rbac::authorize(&conn.roles, path)?;
        let target = match routed(node, &md, path).await? {
            Route::Local => node.clone(),
            Route::One(t) if is_local(node, &t) => node.clone(),
            Route::One(t) => at_target(node, &t, path).await?,
            Route::Many(_) => {
                return Err(Status::unimplemented(
                    "the simulator reads files one node at a time",
                ));
            }
        };
        let bytes = handlers::read_file(&target, &req.path)?;
        Ok(Response::new(Box::pin(futures_util::stream::iter([Ok(
            Data {
                metadata: None,
                bytes,
            },
        )]))))
    }

    async fn kubeconfig(
        &self,
        request: Request<()>,
    ) -> Result<Response<Self::KubeconfigStream>, Status> {
        let (md, ext, ()) = request.into_parts();
        let items = self.kubeconfig_items(&md, &ext).await?;
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            items.into_iter().map(Ok),
        ))))
    }
}

/// `storage.StorageService` of one node.
pub struct StorageApi {
    node: Arc<SimNode>,
}

impl StorageApi {
    pub fn new(node: Arc<SimNode>) -> Self {
        Self { node }
    }
}

#[tonic::async_trait]
impl StorageService for StorageApi {
    async fn disks(&self, request: Request<()>) -> Result<Response<DisksResponse>, Status> {
        unary_body!(self, request, Disks, |_r| Call::Disks)
    }
}

/// `cosi.resource.State` of one node.
pub struct StateApi {
    node: Arc<SimNode>,
}

impl StateApi {
    pub fn new(node: Arc<SimNode>) -> Self {
        Self { node }
    }

    /// Resolves the node that serves a COSI call and the caller's roles
    /// there. COSI goes one-to-one only.
    async fn target(
        &self,
        md: &MetadataMap,
        ext: &Extensions,
        path: &str,
    ) -> Result<(Arc<SimNode>, Roles), Status> {
        let node = &self.node;
        let conn = enter(node, path, ext).await?;
        if conn.kind == ListenerKind::Maintenance {
            // Maintenance connections get the reader role.
            return Ok((node.clone(), Roles(vec!["os:reader".to_string()])));
        }
        let roles = conn.roles.clone();
        let target = match routed(node, md, path).await? {
            Route::Local => node.clone(),
            Route::One(t) if is_local(node, &t) => node.clone(),
            Route::One(t) => at_target(node, &t, path).await?,
            Route::Many(_) => {
                return Err(Status::invalid_argument(
                    "one-2-many proxying is not supported for COSI methods",
                ));
            }
        };
        rbac::authorize(&roles, path)?;
        Ok((target, roles))
    }
}

fn access(
    node: &SimNode,
    type_name: &str,
    namespace: &str,
    roles: &Roles,
) -> Result<TypeDef, Status> {
    cosi::check_access(node, type_name, namespace, roles)
}

#[tonic::async_trait]
impl State for StateApi {
    type ListStream = BoxStream<ListResponse>;
    type WatchStream = BoxStream<WatchResponse>;

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let (md, ext, req) = request.into_parts();
        let (node, roles) = self.target(&md, &ext, P_GET).await?;
        let t = access(&node, &req.r#type, &req.namespace, &roles)?;
        let resource = cosi::get(&node, &node.versions, &t, &req.namespace, &req.id)
            .ok_or_else(|| cosi::not_found(&t, &req.namespace, &req.id))?;
        Ok(Response::new(GetResponse {
            resource: Some(resource),
        }))
    }

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (md, ext, req) = request.into_parts();
        let (node, roles) = self.target(&md, &ext, P_LIST).await?;
        let t = access(&node, &req.r#type, &req.namespace, &roles)?;
        let items: Vec<Result<ListResponse, Status>> =
            cosi::list(&node, &node.versions, &t, &req.namespace)
                .into_iter()
                .map(|r| Ok(ListResponse { resource: Some(r) }))
                .collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (md, ext, req) = request.into_parts();
        let (node, roles) = self.target(&md, &ext, P_WATCH).await?;
        let t = access(&node, &req.r#type, &req.namespace, &roles)?;
        let opts = req.options.clone().unwrap_or_default();
        if req.id.is_some() && (opts.bootstrap_contents || !opts.label_query.is_empty()) {
            return Err(Status::unimplemented(
                "bootstrap contents and label queries are not supported for single resource watch",
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<WatchResponse, Status>>(64);
        tokio::spawn(watch_task(node, t, req, tx));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

fn event(resource: Resource, event_type: EventType, old: Option<Resource>) -> WatchResponse {
    WatchResponse {
        event: vec![Event {
            resource: Some(resource),
            event_type: event_type as i32,
            old,
            error: None,
            bookmark: None,
        }],
    }
}

fn version_of(r: &Resource) -> &str {
    r.metadata
        .as_ref()
        .map(|m| m.version.as_str())
        .unwrap_or_default()
}

fn id_of(r: &Resource) -> &str {
    r.metadata
        .as_ref()
        .map(|m| m.id.as_str())
        .unwrap_or_default()
}

/// Streams a COSI watch: an empty "ready" response, then the initial state,
/// then one event per change, until the client goes away.
async fn watch_task(
    node: Arc<SimNode>,
    t: TypeDef,
    req: WatchRequest,
    tx: tokio::sync::mpsc::Sender<Result<WatchResponse, Status>>,
) {
    let mut changes = node.subscribe();
    changes.borrow_and_update();
    let ns = req.namespace.clone();
    if tx
        .send(Ok(WatchResponse { event: Vec::new() }))
        .await
        .is_err()
    {
        return;
    }
    let snapshot = |node: &SimNode| -> Vec<Resource> { cosi::list(node, &node.versions, &t, &ns) };
    let mut last: Vec<Resource> = snapshot(&node);
    if let Some(id) = &req.id {
        last.retain(|r| id_of(r) == id);
        let first = match last.first() {
            Some(r) => event(r.clone(), EventType::Created, None),
            None => event(cosi::tombstone(&t, &ns, id), EventType::Destroyed, None),
        };
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
    } else if req.options.as_ref().is_some_and(|o| o.bootstrap_contents) {
        for r in &last {
            if tx
                .send(Ok(event(r.clone(), EventType::Created, None)))
                .await
                .is_err()
            {
                return;
            }
        }
        if req.api_version >= 1 {
            let marker = WatchResponse {
                event: vec![Event {
                    resource: None,
                    event_type: EventType::Bootstrapped as i32,
                    old: None,
                    error: None,
                    bookmark: None,
                }],
            };
            if tx.send(Ok(marker)).await.is_err() {
                return;
            }
        }
    }
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = tx.closed() => return,
        }
        let mut now = snapshot(&node);
        if let Some(id) = &req.id {
            now.retain(|r| id_of(r) == id);
        }
        let mut out = Vec::new();
        for r in &now {
            match last.iter().find(|o| id_of(o) == id_of(r)) {
                None => out.push(event(r.clone(), EventType::Created, None)),
                Some(o) if version_of(o) != version_of(r) => {
                    out.push(event(r.clone(), EventType::Updated, Some(o.clone())))
                }
                Some(_) => {}
            }
        }
        for o in &last {
            if !now.iter().any(|r| id_of(r) == id_of(o)) {
                out.push(event(o.clone(), EventType::Destroyed, None));
            }
        }
        for e in out {
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
        last = now;
    }
}
