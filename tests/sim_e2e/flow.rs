//! The main path: maintenance → apply → install → reboot → apid (mTLS) →
//! bootstrap → etcd → running, with RBAC and the kubeconfig.

use std::io::Read;

use talstrap::proto::machine::{BootstrapRequest, EtcdMemberListRequest};
use talstrap::sim::{NodeMode, Stage};
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn maintenance_mode_answers_like_talos() {
    let env = start(1, 0, "").await;
    let addr = env.addr("cp1");
    assert_eq!(
        common_names(&peer_leaf(addr).await),
        ["maintenance-service.talos.dev"]
    );

    let mut m = env.insecure_machine("cp1");
    let e = within("version", m.version(())).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::Unimplemented,
            "API is not implemented in maintenance mode"
        )
    );
    let e = within("service list", m.service_list(()))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::Unimplemented, "method ServiceList not implemented")
    );

    let e = within(
        "no-reboot",
        m.apply_configuration(apply_req(env.config("cp1"), 2, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert_eq!(
        e.message(),
        "apply configuration --mode='no-reboot' is not supported in maintenance mode"
    );
    let e = within(
        "staged",
        m.apply_configuration(apply_req(env.config("cp1"), 3, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message(),
        "apply configuration --mode='staged' is not supported in maintenance mode"
    );

    let e = within(
        "bad yaml",
        m.apply_configuration(apply_req(b"machine: [".to_vec(), 1, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unknown);
    assert!(
        e.message().starts_with("failed to parse config: "),
        "{}",
        e.message()
    );

    let only_hostname = b"apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n".to_vec();
    let e = within(
        "no v1alpha1",
        m.apply_configuration(apply_req(only_hostname, 1, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("configuration validation failed: "),
        "{}",
        e.message()
    );

    let dry = within(
        "dry run",
        m.apply_configuration(apply_req(env.config("cp1"), 1, true)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        dry.messages[0].mode_details,
        "Dry run summary:\nNode is running in maintenance mode and does not have a config yet."
    );
    assert_eq!(
        env.fleet.snapshot(env.ip("cp1")).stage,
        Stage::Maintenance,
        "dry run changes nothing"
    );

    let disks = within("disks", env.insecure_storage("cp1").disks(()))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = disks.messages[0]
        .disks
        .iter()
        .map(|d| d.device_name.clone())
        .collect();
    assert_eq!(names, ["/dev/nvme0n1", "/dev/sda"]);
    assert!(
        disks.messages[0].metadata.is_none(),
        "no apid in maintenance: no metadata"
    );

    // Node metadata is ignored in maintenance (no apid).
    let mut req = tonic::Request::new(apply_req(env.config("cp1"), 1, true));
    req.metadata_mut()
        .append("nodes", "203.0.113.9".parse().unwrap());
    let r = within("metadata ignored", m.apply_configuration(req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.messages.len(), 1);
    assert!(r.messages[0].metadata.is_none());

    let ok = within(
        "apply",
        m.apply_configuration(apply_req(env.config("cp1"), 1, false)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(ok.messages.len(), 1);
    assert_eq!(ok.messages[0].mode, 0, "maintenance reply mode is left 0");
    assert!(ok.messages[0].mode_details.is_empty());
    assert_eq!(env.fleet.stats(env.ip("cp1")).applies_accepted, 1);
    let s = env
        .wait("cp1", "configured", |s| s.mode == NodeMode::Configured)
        .await;
    assert_eq!(s.stage, Stage::Booting);
    assert_eq!(s.installed_disk.as_deref(), Some("/dev/nvme0n1"));
}

#[tokio::test]
async fn configured_node_requires_our_client_certificate() {
    let env = start(1, 0, "").await;
    env.apply_all(&["cp1"]).await;
    env.wait("cp1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    let addr = env.addr("cp1");

    // The server certificate now comes from the cluster CA, for the node IP.
    assert_eq!(common_names(&peer_leaf(addr).await), ["cp1"]);

    // No client certificate: the call fails in or right after the handshake.
    let e = within("insecure", env.insecure_machine("cp1").version(()))
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);

    // The talosconfig's admin certificate works, verified against the CA by IP SAN.
    let v = within("version", env.machine("cp1").version(()))
        .await
        .unwrap()
        .into_inner();
    let v = &v.messages[0];
    assert_eq!(v.version.as_ref().unwrap().tag, "v1.12.11");
    assert_eq!(v.platform.as_ref().unwrap().name, "metal");
    assert!(v.metadata.is_none(), "no node metadata: reply untouched");

    // A certificate from another CA is refused.
    let foreign = env.tmp.path().join("foreign");
    talstrap::sim::foreign_talosconfig(env.fleet.paths(), &foreign).unwrap();
    let (_, crt, key) = creds(&foreign);
    let (ca, _, _) = creds(&env.fleet.paths().talosconfig);
    let mut c = talstrap::proto::machine::machine_service_client::MachineServiceClient::new(
        mtls_with(addr, &ca, &crt, &key),
    );
    assert!(within("foreign", c.version(())).await.is_err());

    // A certificate of our CA whose EKU is not exactly ClientAuth is refused.
    let bad = talstrap::sim::pki::issue_client_cert_with(
        env.fleet.paths().os_ca(),
        &["os:admin"],
        &[
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ],
    )
    .unwrap();
    let mut c = talstrap::proto::machine::machine_service_client::MachineServiceClient::new(
        mtls_with(addr, &ca, &bad.cert_pem, &bad.key_pem),
    );
    assert!(within("bad eku", c.version(())).await.is_err());
}

#[tokio::test]
async fn reader_role_cannot_apply_or_bootstrap() {
    let env = start(1, 0, "").await;
    env.apply_all(&["cp1"]).await;
    env.wait_ready_for_bootstrap("cp1").await;
    let reader = env.tmp.path().join("reader");
    talstrap::sim::reader_talosconfig(env.fleet.paths(), &reader).unwrap();
    let mut c = talstrap::proto::machine::machine_service_client::MachineServiceClient::new(mtls(
        env.addr("cp1"),
        &reader,
    ));
    let e = within(
        "apply",
        c.apply_configuration(apply_req(env.config("cp1"), 1, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "not authorized")
    );
    let e = within("bootstrap", c.bootstrap(BootstrapRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "not authorized")
    );
    let e = within("kubeconfig", c.kubeconfig(())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Reads are fine.
    within("version", c.version(())).await.unwrap();
    within("services", c.service_list(())).await.unwrap();
    assert_eq!(
        env.fleet.stats(env.ip("cp1")).bootstrap_calls,
        0,
        "denied before the handler"
    );
}

#[tokio::test]
async fn bootstrap_rules_and_one_etcd_cluster() {
    let env = start(3, 1, "").await;
    env.apply_all(&["cp1", "cp2", "cp3", "w1"]).await;
    for h in ["cp1", "cp2", "cp3"] {
        env.wait_ready_for_bootstrap(h).await;
    }
    // Its container runtime up too: Talos answers "not available yet" before that.
    env.wait("w1", "worker apid and cri", |s| {
        s.mode == NodeMode::Configured && !s.unmet_conditions.iter().any(|(_, r)| r.contains("cri"))
    })
    .await;

    let snap = env.fleet.snapshot(env.ip("cp1"));
    assert_eq!(snap.stage, Stage::Booting);
    let names: Vec<_> = snap
        .unmet_conditions
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["services", "staticPods", "nodeReady"]);
    assert_eq!(snap.unmet_conditions[0].1, "etcd not running");

    let mut cp1 = env.machine("cp1");
    let e = within(
        "members",
        cp1.etcd_member_list(EtcdMemberListRequest { query_local: true }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);

    let services = within("services", cp1.service_list(()))
        .await
        .unwrap()
        .into_inner();
    let etcd = services.messages[0]
        .services
        .iter()
        .find(|s| s.id == "etcd")
        .unwrap();
    assert_eq!(etcd.state, "Preparing");
    assert!(etcd.health.as_ref().unwrap().unknown);
    assert_eq!(
        etcd.events.as_ref().unwrap().events.last().unwrap().msg,
        "Running pre state"
    );

    // Bootstrap checks CRI before the role: wait for the worker's CRI (it
    // was applied last, so its boot may still be behind the control planes').
    env.wait("w1", "worker cri up", |s| {
        !s.unmet_conditions
            .iter()
            .any(|(_, m)| m.contains("cri not running"))
    })
    .await;
    let e = within(
        "worker bootstrap",
        env.machine("w1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "bootstrap can only be performed on a control plane node"
        )
    );

    within("bootstrap", cp1.bootstrap(BootstrapRequest::default()))
        .await
        .unwrap();
    let e = within(
        "second bootstrap",
        cp1.bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::AlreadyExists, "etcd data directory is not empty")
    );

    for h in ["cp1", "cp2", "cp3", "w1"] {
        env.wait(h, "running and ready", |s| {
            s.stage == Stage::Running && s.ready
        })
        .await;
    }
    let mut clusters = env.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    clusters[0].sort();
    assert_eq!(clusters[0], ["cp1", "cp2", "cp3"]);

    // A joined control plane also refuses to bootstrap.
    let e = within(
        "joined bootstrap",
        env.machine("cp2").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(env.fleet.etcd_clusters().len(), 1);

    let members = within(
        "members",
        env.machine("cp2")
            .etcd_member_list(EtcdMemberListRequest { query_local: true }),
    )
    .await
    .unwrap()
    .into_inner();
    let mut hosts: Vec<_> = members.messages[0]
        .members
        .iter()
        .map(|m| m.hostname.clone())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["cp1", "cp2", "cp3"]);
    let status = within("etcd status", cp1.etcd_status(()))
        .await
        .unwrap()
        .into_inner();
    let st = status.messages[0].member_status.as_ref().unwrap();
    assert!(st.leader != 0 && st.member_id != 0 && st.errors.is_empty());
}

#[tokio::test]
async fn kubeconfig_is_a_gzipped_tar_without_end_marker() {
    let env = start(1, 1, "").await;
    env.apply_all(&["cp1", "w1"]).await;
    env.wait_ready_for_bootstrap("cp1").await;
    // Works before bootstrap: it comes from the config alone.
    let mut stream = within("kubeconfig", env.machine("cp1").kubeconfig(()))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    let mut messages = 0;
    while let Some(d) = within("kubeconfig stream", stream.message()).await.unwrap() {
        bytes.extend(d.bytes);
        messages += 1;
    }
    assert_eq!(messages, 1);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(&tar[..10], b"kubeconfig");
    let size =
        u64::from_str_radix(std::str::from_utf8(&tar[124..135]).unwrap(), 8).unwrap() as usize;
    assert_eq!(
        tar.len(),
        512 + size,
        "exactly one header and the file, no padding, no end marker"
    );
    let text = std::str::from_utf8(&tar[512..]).unwrap();
    assert!(
        text.contains(&format!("server: {}", env.fleet.paths().endpoint)),
        "{text}"
    );
    assert!(text.contains("client-key-data:"));

    env.wait("w1", "worker apid", |s| s.mode == NodeMode::Configured)
        .await;
    let e = within("worker kubeconfig", env.machine("w1").kubeconfig(()))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::Unimplemented,
            "kubeconfig is only available on control plane nodes"
        )
    );
}

#[tokio::test]
async fn reboot_changes_boot_time_and_comes_back() {
    let env = start(1, 0, "").await;
    env.apply_all(&["cp1"]).await;
    env.wait_ready_for_bootstrap("cp1").await;
    let mut c = env.machine("cp1");
    let before = within("stat", c.system_stat(()))
        .await
        .unwrap()
        .into_inner()
        .messages[0]
        .boot_time;
    assert!(before > 1_600_000_000);
    let r = within(
        "reboot",
        c.reboot(talstrap::proto::machine::RebootRequest::default()),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].actor_id.len(), 36);
    env.wait("cp1", "rebooted", |s| {
        s.boot_time > before && s.mode == NodeMode::Configured
    })
    .await;
    let mut c = env.machine("cp1");
    let after = within("stat", c.system_stat(()))
        .await
        .unwrap()
        .into_inner()
        .messages[0]
        .boot_time;
    assert!(after > before);
}

#[tokio::test]
async fn member_list_through_endpoints_sees_the_cluster_before_joining() {
    // Joins take 10 min × 0.02 = 12 s: cp2 stays unjoined during the test.
    let env = start(
        2,
        0,
        "timing: { join: 10m }\nnodes: { cp1: { configured: true }, cp2: { configured: true } }",
    )
    .await;
    env.wait_ready_for_bootstrap("cp1").await;
    env.wait_ready_for_bootstrap("cp2").await;
    within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap();
    env.wait("cp1", "etcd healthy", |s| s.etcd.healthy).await;
    let mut cp2 = env.machine("cp2");
    let e = within(
        "local",
        cp2.etcd_member_list(EtcdMemberListRequest { query_local: true }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    let r = within(
        "via endpoints",
        cp2.etcd_member_list(EtcdMemberListRequest { query_local: false }),
    )
    .await
    .unwrap()
    .into_inner();
    let hosts: Vec<_> = r.messages[0]
        .members
        .iter()
        .map(|m| m.hostname.clone())
        .collect();
    assert_eq!(hosts, ["cp1"]);
}
