//! COSI reads: access policy, specs, and the watch protocol.

use talstrap::proto::cosi::resource::{EventType, GetRequest, ListRequest, WatchRequest};
use talstrap::sim::NodeMode;
use tonic::Code;

use crate::support::*;

fn get(ns: &str, ty: &str, id: &str) -> GetRequest {
    GetRequest {
        namespace: ns.into(),
        r#type: ty.into(),
        id: id.into(),
        options: None,
    }
}

#[tokio::test]
async fn access_policy_and_specs() {
    let env = start(1, 0, "").await;
    let mut s = env.insecure_state("cp1");
    let r = within(
        "status",
        s.get(get(
            "runtime",
            "MachineStatuses.runtime.talos.dev",
            "machine",
        )),
    )
    .await
    .unwrap()
    .into_inner()
    .resource
    .unwrap();
    let spec = r.spec.unwrap();
    assert_eq!(
        spec.yaml_spec,
        "stage: maintenance\nstatus:\n    ready: true\n    unmetConditions: []\n"
    );
    assert!(!spec.proto_spec.is_empty());
    assert_eq!(r.metadata.unwrap().version, "1");

    let v = within(
        "version",
        s.get(get("runtime", "Versions.runtime.talos.dev", "version")),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        v.resource.unwrap().spec.unwrap().yaml_spec,
        "version: v1.12.11\n"
    );

    let e = within("alias", s.get(get("runtime", "machinestatus", "machine")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::PermissionDenied,
            "resource type \"machinestatus\" is not supported"
        )
    );
    let e = within(
        "no ns",
        s.get(get("", "MachineStatuses.runtime.talos.dev", "machine")),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "namespace \"\" is not supported")
    );
    let e = within(
        "config",
        s.get(get("config", "MachineConfigs.config.talos.dev", "v1alpha1")),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "not authorized")
    );
    let e = within(
        "missing",
        s.get(get("runtime", "SystemDisks.block.talos.dev", "system-disk")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let mut list = within(
        "disks",
        s.list(ListRequest {
            namespace: "runtime".into(),
            r#type: "Disks.block.talos.dev".into(),
            options: None,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let mut ids = Vec::new();
    while let Some(item) = within("disk item", list.message()).await.unwrap() {
        let r = item.resource.unwrap();
        if r.metadata.as_ref().unwrap().id == "nvme0n1" {
            let yaml = &r.spec.as_ref().unwrap().yaml_spec;
            assert!(
                yaml.contains("dev_path: /dev/nvme0n1\n") && yaml.contains("transport: nvme\n"),
                "{yaml}"
            );
        }
        ids.push(r.metadata.unwrap().id);
    }
    assert_eq!(ids, ["nvme0n1", "sda"]);
}

#[tokio::test]
async fn versions_resource_is_absent_before_1_10() {
    let env = start_with(1, 0, "", |spec| spec.talos_version = "v1.9.5".into()).await;
    let e = within(
        "version",
        env.insecure_state("cp1")
            .get(get("runtime", "Versions.runtime.talos.dev", "version")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn watch_sends_ready_then_state_then_updates() {
    let env = start(1, 0, "nodes: { cp1: { configured: true } }").await;
    env.wait("cp1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    let mut stream = within(
        "watch",
        env.state("cp1").watch(WatchRequest {
            namespace: "runtime".into(),
            r#type: "MachineStatuses.runtime.talos.dev".into(),
            id: Some("machine".into()),
            options: None,
            api_version: 1,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let first = within("ready", stream.message()).await.unwrap().unwrap();
    assert!(
        first.event.is_empty(),
        "the first response only says the watch is ready"
    );
    let created = within("created", stream.message()).await.unwrap().unwrap();
    assert_eq!(created.event[0].event_type, EventType::Created as i32);
    // The boot progresses: updates follow.
    let next = within("updated", stream.message()).await.unwrap().unwrap();
    assert_eq!(next.event[0].event_type, EventType::Updated as i32);
    assert!(next.event[0].old.is_some());

    // A watch of an absent resource starts with a DESTROYED tombstone.
    let mut stream = within(
        "watch etcd",
        env.state("cp1").watch(WatchRequest {
            namespace: "etcd".into(),
            r#type: "EtcdMembers.etcd.talos.dev".into(),
            id: Some("local".into()),
            options: None,
            api_version: 1,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    within("ready", stream.message()).await.unwrap().unwrap();
    let first = within("tombstone", stream.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event[0].event_type, EventType::Destroyed as i32);
    assert_eq!(
        first.event[0]
            .resource
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .version,
        "undefined"
    );

    // Bootstrapping creates EtcdMembers/local.
    env.wait_ready_for_bootstrap("cp1").await;
    within(
        "bootstrap",
        env.machine("cp1")
            .bootstrap(talstrap::proto::machine::BootstrapRequest::default()),
    )
    .await
    .unwrap();
    let created = within("member created", stream.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.event[0].event_type, EventType::Created as i32);
    let yaml = &created.event[0]
        .resource
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .yaml_spec;
    assert!(yaml.starts_with("memberID: "), "{yaml}");
}

#[tokio::test]
async fn kind_watch_with_bootstrap_contents() {
    let env = start(1, 0, "nodes: { cp1: { configured: true } }").await;
    env.wait("cp1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    let mut stream = within(
        "watch",
        env.state("cp1").watch(WatchRequest {
            namespace: "runtime".into(),
            r#type: "Services.v1alpha1.talos.dev".into(),
            id: None,
            options: Some(talstrap::proto::cosi::resource::WatchOptions {
                bootstrap_contents: true,
                ..Default::default()
            }),
            api_version: 1,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(
        within("ready", stream.message())
            .await
            .unwrap()
            .unwrap()
            .event
            .is_empty()
    );
    let mut created = Vec::new();
    // Under load the boot may have got that far before the watch started.
    let mut kubelet_running = false;
    loop {
        let r = within("event", stream.message()).await.unwrap().unwrap();
        let e = &r.event[0];
        if e.event_type == EventType::Bootstrapped as i32 {
            break;
        }
        assert_eq!(e.event_type, EventType::Created as i32);
        let res = e.resource.as_ref().unwrap();
        let id = res.metadata.as_ref().unwrap().id.clone();
        if id == "kubelet" {
            kubelet_running = res
                .spec
                .as_ref()
                .unwrap()
                .yaml_spec
                .starts_with("running: true");
        }
        created.push(id);
    }
    assert!(
        created.contains(&"etcd".to_string()) && created.contains(&"apid".to_string()),
        "{created:?}"
    );
    // The etcd service changes as the boot goes on.
    if kubelet_running {
        return;
    }
    loop {
        let r = within("update", stream.message()).await.unwrap().unwrap();
        let e = &r.event[0];
        if e.event_type == EventType::Updated as i32
            && e.resource.as_ref().unwrap().metadata.as_ref().unwrap().id == "kubelet"
        {
            assert!(
                e.resource
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .yaml_spec
                    .starts_with("running: true")
            );
            break;
        }
    }
}
