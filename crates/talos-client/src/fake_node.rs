//! A minimal fake Talos node for the protocol layer's own tests: just the
//! RPCs the client tests call, answering the way real nodes do (reply
//! envelopes, `metadata.error`, COSI NotFound/PermissionDenied, the empty
//! first WatchResponse, the unterminated kubeconfig tar). The full
//! simulator lives in `crate::sim`.

#![allow(clippy::unwrap_used)]

use std::pin::Pin;

use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::proto::common::{Data, Metadata};
use crate::proto::cosi::resource::state_server::State;
use crate::proto::cosi::resource::{
    Event, EventType, GetRequest, GetResponse, ListRequest, ListResponse, WatchRequest,
    WatchResponse,
};
use crate::proto::google::rpc::Status as RpcStatus;
use crate::proto::machine::machine_service_server::MachineService;
use crate::proto::machine::*;
use crate::proto::storage::storage_service_server::StorageService;
use crate::proto::storage::{Disk, Disks, DisksResponse};
use crate::proto::talos::resource::definitions as defs;
use crate::resources::make_resource;

type BoxStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

pub(crate) const KUBECONFIG: &[u8] = b"apiVersion: v1\nkind: Config\nclusters:\n- name: test\n";
pub(crate) const BOOT_TIME: u64 = 1_700_000_000;

fn header<T>(req: &Request<T>, key: &str) -> Option<String> {
    req.metadata()
        .get(key)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn reject_nodes<T>(req: &Request<T>) -> Result<(), Status> {
    match req.metadata().get("nodes") {
        Some(_) => Err(Status::invalid_argument("the client sent `nodes` metadata")),
        None => Ok(()),
    }
}

pub(crate) struct FakeMachine;

#[tonic::async_trait]
impl MachineService for FakeMachine {
    async fn apply_configuration(
        &self,
        req: Request<ApplyConfigurationRequest>,
    ) -> Result<Response<ApplyConfigurationResponse>, Status> {
        let r = req.into_inner();
        if r.data.is_empty() {
            return Err(Status::invalid_argument(
                "configuration validation failed: empty config",
            ));
        }
        let try_secs = r.try_mode_timeout.map(|d| d.seconds).unwrap_or(-1);
        // AUTO resolves to NO_REBOOT, as on a node where the change applies live.
        let used = if r.mode == 1 { 2 } else { r.mode };
        Ok(Response::new(ApplyConfigurationResponse {
            messages: vec![ApplyConfiguration {
                metadata: None,
                warnings: vec![format!(
                    "mode={} dry_run={} try={}",
                    r.mode, r.dry_run, try_secs
                )],
                mode: used,
                mode_details: String::from_utf8_lossy(&r.data).into_owned(),
            }],
        }))
    }

    async fn bootstrap(
        &self,
        _req: Request<BootstrapRequest>,
    ) -> Result<Response<BootstrapResponse>, Status> {
        // As apid relays a per-node failure: OK status, error in metadata.
        Ok(Response::new(BootstrapResponse {
            messages: vec![Bootstrap {
                metadata: Some(Metadata {
                    hostname: "cp-1".into(),
                    error:
                        "rpc error: code = AlreadyExists desc = etcd data directory is not empty"
                            .into(),
                    status: Some(RpcStatus {
                        code: 6,
                        message: "etcd data directory is not empty".into(),
                        details: vec![],
                    }),
                }),
            }],
        }))
    }

    async fn etcd_member_list(
        &self,
        req: Request<EtcdMemberListRequest>,
    ) -> Result<Response<EtcdMemberListResponse>, Status> {
        let local = req.into_inner().query_local;
        Ok(Response::new(EtcdMemberListResponse {
            messages: vec![EtcdMembers {
                metadata: None,
                legacy_members: vec![],
                members: vec![EtcdMember {
                    id: 42,
                    hostname: if local {
                        "cp-1-local".into()
                    } else {
                        "cp-1".into()
                    },
                    peer_urls: vec!["https://127.0.0.1:2380".into()],
                    client_urls: vec!["https://127.0.0.1:2379".into()],
                    is_learner: false,
                }],
            }],
        }))
    }

    async fn etcd_status(&self, _req: Request<()>) -> Result<Response<EtcdStatusResponse>, Status> {
        Ok(Response::new(EtcdStatusResponse {
            messages: vec![EtcdStatus {
                metadata: None,
                member_status: Some(EtcdMemberStatus {
                    member_id: 42,
                    leader: 42,
                    raft_index: 100,
                    ..Default::default()
                }),
            }],
        }))
    }

    async fn hostname(&self, req: Request<()>) -> Result<Response<HostnameResponse>, Status> {
        if header(&req, "node").as_deref() == Some("hang") {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Ok(Response::new(HostnameResponse {
            messages: vec![Hostname {
                metadata: None,
                hostname: "cp-1".into(),
            }],
        }))
    }

    type KubeconfigStream = BoxStream<Data>;
    type ReadStream = BoxStream<Data>;

    async fn read(&self, _req: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        Err(Status::permission_denied("not authorized"))
    }

    async fn kubeconfig(
        &self,
        _req: Request<()>,
    ) -> Result<Response<Self::KubeconfigStream>, Status> {
        let archive = crate::kubeconfig::build_unterminated_archive("kubeconfig", KUBECONFIG);
        // Split in two to check that chunks are concatenated.
        let (a, b) = archive.split_at(archive.len() / 2);
        let chunks = vec![
            Ok(Data {
                metadata: None,
                bytes: a.to_vec(),
            }),
            Ok(Data {
                metadata: None,
                bytes: b.to_vec(),
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn reboot(
        &self,
        _req: Request<RebootRequest>,
    ) -> Result<Response<RebootResponse>, Status> {
        Ok(Response::new(RebootResponse {
            messages: vec![Reboot {
                metadata: None,
                actor_id: "actor-1".into(),
            }],
        }))
    }

    async fn service_list(
        &self,
        _req: Request<()>,
    ) -> Result<Response<ServiceListResponse>, Status> {
        let etcd = ServiceInfo {
            id: "etcd".into(),
            state: "Preparing".into(),
            events: Some(ServiceEvents {
                events: vec![ServiceEvent {
                    msg: "Running pre state".into(),
                    state: "Preparing".into(),
                    ts: Some(prost_types::Timestamp {
                        seconds: 1_700_000_100,
                        nanos: 0,
                    }),
                }],
            }),
            health: Some(ServiceHealth {
                unknown: true,
                ..Default::default()
            }),
        };
        let apid = ServiceInfo {
            id: "apid".into(),
            state: "Running".into(),
            events: None,
            health: Some(ServiceHealth {
                unknown: false,
                healthy: true,
                last_message: "".into(),
                last_change: None,
            }),
        };
        Ok(Response::new(ServiceListResponse {
            messages: vec![ServiceList {
                metadata: None,
                services: vec![etcd, apid],
            }],
        }))
    }

    async fn system_stat(&self, _req: Request<()>) -> Result<Response<SystemStatResponse>, Status> {
        Ok(Response::new(SystemStatResponse {
            messages: vec![SystemStat {
                metadata: None,
                boot_time: BOOT_TIME,
                ..Default::default()
            }],
        }))
    }

    async fn version(&self, req: Request<()>) -> Result<Response<VersionResponse>, Status> {
        reject_nodes(&req)?;
        let node = header(&req, "node").unwrap_or_else(|| "no-node".to_string());
        Ok(Response::new(VersionResponse {
            messages: vec![Version {
                metadata: None,
                version: Some(VersionInfo {
                    tag: "v1.12.11".into(),
                    sha: node,
                    ..Default::default()
                }),
                platform: Some(PlatformInfo {
                    name: "metal".into(),
                    mode: "metal".into(),
                }),
                features: None,
            }],
        }))
    }
}

pub(crate) struct FakeState;

const BOOTING: &str = "stage: booting\nstatus:\n    ready: false\n    unmetConditions:\n        - name: services\n          reason: etcd not running\n";
const RUNNING: &str = "stage: running\nstatus:\n    ready: true\n";
pub(crate) const CONFIG: &str = "version: v1alpha1\nmachine:\n    type: controlplane\n";

#[tonic::async_trait]
impl State for FakeState {
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        reject_nodes(&req)?;
        let r = req.into_inner();
        if r.namespace.is_empty() {
            return Err(Status::permission_denied("namespace \"\" is not supported"));
        }
        let resource = match (r.namespace.as_str(), r.r#type.as_str(), r.id.as_str()) {
            ("runtime", "MachineStatuses.runtime.talos.dev", "machine") => {
                make_resource("runtime", &r.r#type, "machine", BOOTING, vec![])
            }
            ("runtime", "Versions.runtime.talos.dev", "version") => {
                // What a Talos 1.9 node answers: the type does not exist.
                return Err(Status::permission_denied(
                    "resource type \"Versions.runtime.talos.dev\" is not supported",
                ));
            }
            ("config", "MachineTypes.config.talos.dev", "machine-type") => {
                // Proto spec only, to exercise the fallback decoder.
                let spec = defs::MachineTypeSpec {
                    machine_type: defs::MachineType::ControlPlane as i32,
                };
                make_resource(
                    "config",
                    &r.r#type,
                    "machine-type",
                    "",
                    spec.encode_to_vec(),
                )
            }
            ("config", "MachineConfigs.config.talos.dev", "v1alpha1") => {
                let spec =
                    yaml_serde::to_string(CONFIG).map_err(|e| Status::internal(e.to_string()))?;
                make_resource("config", &r.r#type, "v1alpha1", &spec, vec![])
            }
            _ => {
                return Err(Status::not_found(format!(
                    "resource {}({}/{}@undefined) doesn't exist",
                    r.r#type, r.namespace, r.id
                )));
            }
        };
        Ok(Response::new(GetResponse {
            resource: Some(resource),
        }))
    }

    type ListStream = BoxStream<ListResponse>;

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<Self::ListStream>, Status> {
        let r = req.into_inner();
        let mut items = Vec::new();
        if r.namespace == "runtime" && r.r#type == "Disks.block.talos.dev" {
            let yaml = "dev_path: /dev/sda\nsize: 107374182400\nmodel: QEMU HARDDISK\nserial: QM0001\ntransport: virtio\nrotational: true\nreadonly: false\ncdrom: false\n";
            items.push(make_resource("runtime", &r.r#type, "sda", yaml, vec![]));
            let spec = defs::DiskSpec {
                dev_path: "/dev/sr0".into(),
                size: 1024,
                cdrom: true,
                readonly: true,
                ..Default::default()
            };
            items.push(make_resource(
                "runtime",
                &r.r#type,
                "sr0",
                "",
                spec.encode_to_vec(),
            ));
        }
        let replies = items
            .into_iter()
            .map(|r| Ok(ListResponse { resource: Some(r) }));
        Ok(Response::new(Box::pin(tokio_stream::iter(
            replies.collect::<Vec<_>>(),
        ))))
    }

    type WatchStream = BoxStream<WatchResponse>;

    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = req.into_inner();
        if r.id.is_none() || r.api_version != 1 || r.namespace != "runtime" {
            return Err(Status::invalid_argument(
                "expected a single-resource watch, api_version 1",
            ));
        }
        let ty = r.r#type.clone();
        let event = |kind: EventType, yaml: &str| Event {
            resource: Some(make_resource("runtime", &ty, "machine", yaml, vec![])),
            event_type: kind as i32,
            old: None,
            error: None,
            bookmark: None,
        };
        let responses = vec![
            // The "watch is ready" handshake: no events.
            Ok(WatchResponse { event: vec![] }),
            Ok(WatchResponse {
                event: vec![event(EventType::Destroyed, "")],
            }),
            Ok(WatchResponse {
                event: vec![event(EventType::Created, BOOTING)],
            }),
            Ok(WatchResponse {
                event: vec![
                    event(EventType::Bootstrapped, ""),
                    event(EventType::Updated, RUNNING),
                ],
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(responses))))
    }
}

pub(crate) struct FakeStorage;

#[tonic::async_trait]
impl StorageService for FakeStorage {
    async fn disks(&self, _req: Request<()>) -> Result<Response<DisksResponse>, Status> {
        Ok(Response::new(DisksResponse {
            messages: vec![Disks {
                metadata: None,
                disks: vec![Disk {
                    size: 107_374_182_400,
                    device_name: "/dev/sda".into(),
                    model: "QEMU HARDDISK".into(),
                    ..Default::default()
                }],
            }],
        }))
    }
}
