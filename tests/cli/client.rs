//! Protocol tests at the library level: talstrap's own `NodeClient` and
//! `probe()` over real TLS on loopback against the simulated fleet, every
//! RPC in the mode where it applies (maintenance, configured with the
//! admin talosconfig, a reader certificate, a foreign CA, apid proxying).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use talstrap::sim::{EtcdService, Fleet, FleetSpec, NodeMode as SimMode};
use talstrap::talos::tls::{maintenance_config, secure_config};
use talstrap::talos::{
    ApplyMode, ErrorClass, MachineRole, NodeClient, ProbeResult, Stage, TalosError, Timeouts,
    probe, talosconfig,
};

use crate::support::*;

/// Hang guard for every call that talks to the fleet.
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        tls: Duration::from_secs(2),
        rpc: Duration::from_secs(10),
    }
}

fn addr(c: &Cluster, hostname: &str) -> SocketAddr {
    SocketAddr::new(ip(c, hostname), c.fleet.port())
}

fn ip(c: &Cluster, hostname: &str) -> IpAddr {
    c.fleet
        .ip(hostname)
        .unwrap_or_else(|| panic!("no node {hostname}"))
}

fn config_bytes(c: &Cluster, hostname: &str) -> Vec<u8> {
    std::fs::read(c.fleet.paths().node_config(hostname).unwrap()).unwrap()
}

fn creds_of(path: &std::path::Path) -> Arc<talstrap::talos::Credentials> {
    talosconfig::load(path, None)
        .unwrap_or_else(|e| panic!("talosconfig {}: {e}", path.display()))
        .credentials
}

/// The admin credentials of the cluster's talosconfig.
fn admin(c: &Cluster) -> Arc<talstrap::talos::Credentials> {
    creds_of(&c.talosconfig())
}

async fn maintenance(c: &Cluster, hostname: &str) -> NodeClient {
    within(
        "maintenance connect",
        NodeClient::connect_maintenance(addr(c, hostname), maintenance_config(&[]), &timeouts()),
    )
    .await
    .unwrap_or_else(|e| panic!("maintenance connect to {hostname}: {e}"))
}

async fn secure_with(
    c: &Cluster,
    hostname: &str,
    creds: &talstrap::talos::Credentials,
) -> Result<NodeClient, TalosError> {
    let tls = secure_config(creds).unwrap();
    within(
        "secure connect",
        NodeClient::connect_secure(addr(c, hostname), tls, &timeouts()),
    )
    .await
}

async fn secure(c: &Cluster, hostname: &str) -> NodeClient {
    secure_with(c, hostname, &admin(c))
        .await
        .unwrap_or_else(|e| panic!("secure connect to {hostname}: {e}"))
}

async fn wait_node(
    c: &Cluster,
    hostname: &str,
    what: &str,
    pred: impl Fn(&talstrap::sim::NodeSnapshot) -> bool,
) -> talstrap::sim::NodeSnapshot {
    let ip = ip(c, hostname);
    c.fleet
        .wait_for(ip, Duration::from_secs(20), pred)
        .await
        .unwrap_or_else(|| {
            panic!(
                "{hostname}: {what} never happened; now {:?}",
                c.fleet.snapshot(ip)
            )
        })
}

/// A configured control plane that only waits for etcd (bootstrap).
async fn ready_for_bootstrap(c: &Cluster, hostname: &str) {
    wait_node(c, hostname, "ready for bootstrap", |s| {
        s.mode == SimMode::Configured && s.etcd.service == EtcdService::Preparing
    })
    .await;
}

async fn apid_up(c: &Cluster, hostname: &str) {
    wait_node(c, hostname, "apid up", |s| s.mode == SimMode::Configured).await;
}

const CONFIGURED_CP: &str = "nodes: { cp1: { configured: true } }";

// --- maintenance mode ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_reads_apply_and_the_switch_to_mtls() {
    let c = cluster(1, 0, None).await;
    let m = maintenance(&c, "cp1").await;

    // Version needs admin, which an insecure client never has.
    let err = within("version", m.version()).await.unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("Unimplemented"), "{err}");
    assert_eq!(err.message(), "API is not implemented in maintenance mode");

    // Reads that maintenance mode serves without a role.
    let status = within("status", m.machine_status()).await.unwrap();
    assert_eq!(status.stage, Stage::Maintenance);
    assert!(status.ready);
    assert_eq!(
        within("version res", m.talos_version()).await.unwrap(),
        Some("v1.12.11".to_string())
    );
    assert_eq!(
        within("type", m.machine_type()).await.unwrap(),
        MachineRole::Unknown
    );
    let storage = within("storage disks", m.storage_disks()).await.unwrap();
    let mut names: Vec<_> = storage.iter().map(|d| d.device_name.clone()).collect();
    names.sort();
    assert_eq!(names, ["/dev/nvme0n1", "/dev/sda"]);
    let disks = within("disks", m.disks()).await.unwrap();
    let mut paths: Vec<_> = disks.iter().map(|d| d.dev_path.clone()).collect();
    paths.sort();
    assert_eq!(paths, names);
    let nvme = disks.iter().find(|d| d.dev_path == "/dev/nvme0n1").unwrap();
    assert_eq!(
        (nvme.transport.as_str(), nvme.size),
        ("nvme", 512_000_000_000)
    );
    // The machine config is sensitive: no reader may see it.
    let err = within("config", m.machine_config()).await.unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Trust);
    // Other MachineService methods are simply not there.
    let err = within("services", m.service_list()).await.unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("Unimplemented"), "{err}");

    // Only AUTO, REBOOT and TRY are accepted in maintenance mode.
    let cfg = config_bytes(&c, "cp1");
    for mode in [ApplyMode::NoReboot, ApplyMode::Staged] {
        let err = within("apply", m.apply_configuration(&cfg, mode, false, None))
            .await
            .unwrap_err();
        assert_eq!(
            err.code_name().as_deref(),
            Some("Unimplemented"),
            "{mode}: {err}"
        );
        assert!(
            err.message().contains(&format!("--mode='{mode}'")),
            "{mode}: {err}"
        );
    }
    assert!(!c.fleet.snapshot(ip(&c, "cp1")).config_applied);

    let dry = within(
        "dry",
        m.apply_configuration(&cfg, ApplyMode::Auto, true, None),
    )
    .await
    .unwrap();
    assert!(
        dry.mode_details.contains("maintenance mode"),
        "{}",
        dry.mode_details
    );
    assert!(!c.fleet.snapshot(ip(&c, "cp1")).config_applied);
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).applies_accepted, 0);

    let applied = within(
        "apply",
        m.apply_configuration(&cfg, ApplyMode::Auto, false, None),
    )
    .await
    .unwrap();
    // The maintenance reply leaves `mode` at 0 and `mode_details` empty.
    assert_eq!(applied.mode, ApplyMode::Reboot);
    assert!(applied.mode_details.is_empty(), "{}", applied.mode_details);
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).applies_accepted, 1);
    ready_for_bootstrap(&c, "cp1").await;

    // Now apid: a client without a certificate is refused as a trust
    // problem, and the talosconfig's certificate is accepted.
    // The refusal is known at connect time, whatever TLS timing does.
    for _ in 0..3 {
        let err = within(
            "maintenance connect to apid",
            NodeClient::connect_maintenance(addr(&c, "cp1"), maintenance_config(&[]), &timeouts()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        assert!(
            err.to_string().contains("asks for a client certificate"),
            "the error should say the node wants a client certificate: {err}"
        );
    }

    let s = secure(&c, "cp1").await;
    assert_eq!(within("hostname", s.hostname()).await.unwrap(), "cp1");
    // The active config is exactly the file that was applied.
    assert_eq!(
        within("machine config", s.machine_config()).await.unwrap(),
        Some(cfg)
    );
    assert_eq!(
        within("type", s.machine_type()).await.unwrap(),
        MachineRole::ControlPlane
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talos_version_is_none_on_talos_1_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = FleetSpec::new(1, 0, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.talos_version = "v1.9.0".to_string();
    let fleet = within("fleet", Fleet::start(spec)).await.unwrap();
    let c = Cluster { fleet, tmp };
    let m = maintenance(&c, "cp1").await;
    // Talos 1.9 has no Versions resource; its access filter answers
    // PermissionDenied, which the client turns into "unknown".
    assert_eq!(within("version", m.talos_version()).await.unwrap(), None);
    // Everything else still reads.
    assert_eq!(
        within("status", m.machine_status()).await.unwrap().stage,
        Stage::Maintenance
    );
}

// --- roles and trust -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_certificate_cannot_apply_or_bootstrap() {
    let c = cluster(1, 0, Some(CONFIGURED_CP)).await;
    ready_for_bootstrap(&c, "cp1").await;
    let path = c.tmp.path().join("reader-talosconfig");
    talstrap::sim::reader_talosconfig(c.fleet.paths(), &path).unwrap();
    let reader_creds = creds_of(&path);
    assert_eq!(reader_creds.roles(), ["os:reader"]);
    let r = secure_with(&c, "cp1", &reader_creds).await.unwrap();

    // Reader calls work.
    assert_eq!(within("hostname", r.hostname()).await.unwrap(), "cp1");
    assert_eq!(
        within("status", r.machine_status()).await.unwrap().stage,
        Stage::Booting
    );

    let cfg = config_bytes(&c, "cp1");
    let err = within(
        "apply",
        r.apply_configuration(&cfg, ApplyMode::Auto, false, None),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Trust);
    assert_eq!(err.message(), "not authorized");

    let err = within("bootstrap", r.bootstrap()).await.unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Trust);

    let err = within("kubeconfig", r.kubeconfig()).await.unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    let err = within("config", r.machine_config()).await.unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );

    // Nothing happened on the node.
    let stats = c.fleet.stats(ip(&c, "cp1"));
    assert_eq!((stats.applies_accepted, stats.bootstraps_accepted), (0, 0));
    assert!(c.fleet.etcd_clusters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_server_certificate_is_refused_naming_the_ca() {
    let c = cluster(
        2,
        0,
        Some("nodes: { cp1: { configured: true }, cp2: { configured: true, wrong_ca: true } }"),
    )
    .await;
    apid_up(&c, "cp1").await;
    apid_up(&c, "cp2").await;

    // A node that serves a certificate from another CA (scenario wrong_ca).
    let err = secure_with(&c, "cp2", &admin(&c)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("not signed by the talosconfig CA"),
        "the error should name the CA mismatch: {text}"
    );
    assert!(text.contains(&ip(&c, "cp2").to_string()), "{text}");

    // A talosconfig of another cluster against a node of this one: our
    // client refuses the node's certificate before sending anything.
    let path = c.tmp.path().join("foreign-talosconfig");
    talstrap::sim::foreign_talosconfig(c.fleet.paths(), &path).unwrap();
    let foreign = creds_of(&path);
    let err = secure_with(&c, "cp1", &foreign).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
    let text = err.to_string();
    assert!(text.contains("not signed by the talosconfig CA"), "{text}");
    assert!(text.contains("O=talos"), "the issuer is named: {text}");
    assert!(!err.is_retryable());

    // The right talosconfig still works on cp1.
    let s = secure(&c, "cp1").await;
    assert_eq!(within("hostname", s.hostname()).await.unwrap(), "cp1");
}

// --- bootstrap and etcd ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_rules_and_etcd_reads() {
    let c = cluster(
        1,
        1,
        Some("nodes: { cp1: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    ready_for_bootstrap(&c, "cp1").await;
    apid_up(&c, "w1").await;
    let cp = secure(&c, "cp1").await;
    let w = secure(&c, "w1").await;

    // Before bootstrap: etcd is Preparing, no member list, no local member.
    let services = within("services", cp.service_list()).await.unwrap();
    let etcd = services.iter().find(|s| s.id == "etcd").expect("etcd");
    assert_eq!(etcd.state, "Preparing");
    assert_eq!(etcd.healthy, None, "health unknown before bootstrap");
    assert!(
        services
            .iter()
            .any(|s| s.id == "apid" && s.state == "Running")
    );
    assert!(
        !w.service_list()
            .await
            .unwrap()
            .iter()
            .any(|s| s.id == "etcd")
    );
    for local in [true, false] {
        let err = within("members", cp.etcd_member_list(local))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "query_local={local}: {err:?}");
    }
    assert!(within("etcd status", cp.etcd_status()).await.is_err());
    assert_eq!(within("local", cp.etcd_local_member()).await.unwrap(), None);
    let err = within("w members", w.etcd_member_list(false))
        .await
        .unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("Unimplemented"), "{err}");

    // Bootstrap on a worker: FailedPrecondition, and nothing is created.
    let err = within("w bootstrap", w.bootstrap()).await.unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("FailedPrecondition"),
        "{err}"
    );
    assert!(err.message().contains("control plane"), "{err}");
    assert!(c.fleet.etcd_clusters().is_empty());

    within("bootstrap", cp.bootstrap()).await.unwrap();
    // A second Bootstrap: the data directory is not empty any more.
    let err = within("bootstrap again", cp.bootstrap()).await.unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("AlreadyExists"), "{err}");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(c.fleet.etcd_clusters(), [["cp1"]]);

    let snap = wait_node(&c, "cp1", "etcd healthy", |s| s.etcd.healthy).await;
    let member_id = snap.etcd.member_id.unwrap();
    for local in [true, false] {
        let members = within("members", cp.etcd_member_list(local)).await.unwrap();
        assert_eq!(members.len(), 1, "query_local={local}");
        assert_eq!(members[0].hostname, "cp1");
        assert_eq!(members[0].id, member_id);
        assert!(!members[0].is_learner);
        assert_eq!(
            members[0].peer_urls,
            [format!("https://{}:2380", ip(&c, "cp1"))]
        );
    }
    let status = within("etcd status", cp.etcd_status()).await.unwrap();
    assert_eq!(status.member_id, member_id);
    assert_eq!(status.leader, member_id);
    assert!(status.errors.is_empty());
    assert_eq!(
        within("local", cp.etcd_local_member()).await.unwrap(),
        Some(format!("{member_id:016x}"))
    );
    let services = within("services", cp.service_list()).await.unwrap();
    let etcd = services.iter().find(|s| s.id == "etcd").unwrap();
    assert_eq!((etcd.state.as_str(), etcd.healthy), ("Running", Some(true)));
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).bootstraps_accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_stream_decodes_to_a_kubeconfig() {
    let c = cluster(
        1,
        1,
        Some("nodes: { cp1: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    apid_up(&c, "cp1").await;
    apid_up(&c, "w1").await;
    // The kubeconfig comes from the machine config: available before bootstrap.
    let bytes = within("kubeconfig", secure(&c, "cp1").await.kubeconfig())
        .await
        .unwrap();
    let doc: serde_json::Value =
        yaml_serde::from_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
    assert_eq!(doc["kind"], "Config");
    assert_eq!(doc["clusters"][0]["name"], "sim");
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        c.fleet.paths().endpoint.as_str()
    );
    assert!(
        doc["users"][0]["user"]["client-key-data"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    // Workers have no kubeconfig.
    let err = within("w kubeconfig", secure(&c, "w1").await.kubeconfig())
        .await
        .unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("Unimplemented"), "{err}");
}

// --- node facts, reboot, COSI ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_hostname_and_boot_time_across_a_reboot() {
    let c = cluster(1, 0, Some(CONFIGURED_CP)).await;
    ready_for_bootstrap(&c, "cp1").await;
    let s = secure(&c, "cp1").await;

    let v = within("version", s.version()).await.unwrap();
    assert_eq!(
        (v.tag.as_str(), v.platform.as_str(), v.mode.as_str()),
        ("v1.12.11", "metal", "metal")
    );
    assert_eq!(within("hostname", s.hostname()).await.unwrap(), "cp1");
    let before = within("stat", s.system_stat()).await.unwrap().boot_time;
    assert_eq!(before, c.fleet.snapshot(ip(&c, "cp1")).boot_time);
    assert!(before > 1_600_000_000, "Unix seconds: {before}");

    let actor = within("reboot", s.reboot()).await.unwrap();
    assert_eq!(actor.len(), 36, "a UUID: {actor}");
    assert_eq!(actor.matches('-').count(), 4, "{actor}");
    wait_node(&c, "cp1", "rebooted and back", |snap| {
        snap.boot_time != before && snap.mode == SimMode::Configured
    })
    .await;
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).reboots, 1);

    let again = secure(&c, "cp1").await;
    let after = within("stat", again.system_stat()).await.unwrap().boot_time;
    assert!(after > before, "boot time {before} -> {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosi_get_and_list_use_canonical_types() {
    let c = cluster(1, 0, Some(CONFIGURED_CP)).await;
    ready_for_bootstrap(&c, "cp1").await;
    let s = secure(&c, "cp1").await;

    let r = within(
        "get",
        s.get_resource("runtime", "MachineStatuses.runtime.talos.dev", "machine"),
    )
    .await
    .unwrap()
    .expect("machine status exists");
    let meta = r.metadata.unwrap();
    assert_eq!(
        (
            meta.namespace.as_str(),
            meta.r#type.as_str(),
            meta.id.as_str()
        ),
        ("runtime", "MachineStatuses.runtime.talos.dev", "machine")
    );
    assert!(r.spec.unwrap().yaml_spec.starts_with("stage: booting\n"));

    // A missing resource is None, not an error.
    assert!(
        within(
            "missing",
            s.get_resource("runtime", "MachineStatuses.runtime.talos.dev", "nope")
        )
        .await
        .unwrap()
        .is_none()
    );
    assert!(
        within(
            "etcd local",
            s.get_resource("etcd", "EtcdMembers.etcd.talos.dev", "local")
        )
        .await
        .unwrap()
        .is_none()
    );
    // Talos resolves no aliases server-side.
    let err = within("alias", s.get_resource("runtime", "disks", "sda"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );

    let disks = within("list", s.list_resources("runtime", "Disks.block.talos.dev"))
        .await
        .unwrap();
    let ids: Vec<_> = disks
        .iter()
        .map(|r| r.metadata.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids, ["nvme0n1", "sda"]);
    let services = within(
        "list services",
        s.list_resources("runtime", "Services.v1alpha1.talos.dev"),
    )
    .await
    .unwrap();
    assert!(
        services
            .iter()
            .any(|r| r.metadata.as_ref().unwrap().id == "etcd")
    );

    let status = within("status", s.machine_status()).await.unwrap();
    assert_eq!(status.stage, Stage::Booting);
    assert!(!status.ready);
    assert!(
        status
            .unmet
            .iter()
            .any(|u| u.name == "services" && u.reason.contains("etcd")),
        "{status:?}"
    );
    assert_eq!(
        within("type", s.machine_type()).await.unwrap(),
        MachineRole::ControlPlane
    );
    assert_eq!(
        within("version", s.talos_version()).await.unwrap(),
        Some("v1.12.11".to_string())
    );
    let typed = within("disks", s.disks()).await.unwrap();
    assert_eq!(typed.len(), 2);
    assert!(
        typed
            .iter()
            .any(|d| d.dev_path == "/dev/sda" && d.rotational)
    );
    assert_eq!(
        within("config", s.machine_config()).await.unwrap(),
        Some(config_bytes(&c, "cp1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_starts_with_the_current_status_then_follows_changes() {
    let c = cluster(1, 0, Some(CONFIGURED_CP)).await;
    ready_for_bootstrap(&c, "cp1").await;
    let s = secure(&c, "cp1").await;
    let mut watch = within("watch", s.watch_machine_status()).await.unwrap();

    let first = within("first event", watch.next()).await.unwrap().unwrap();
    assert_eq!(first.stage, Stage::Booting);
    assert!(!first.ready);
    assert!(
        first.unmet.iter().any(|u| u.reason.contains("etcd")),
        "{first:?}"
    );

    within("bootstrap", s.bootstrap()).await.unwrap();
    let mut seen = vec![first];
    loop {
        let next = within("running", watch.next())
            .await
            .expect("the watch ended early")
            .unwrap();
        let done = next.stage == Stage::Running && next.ready;
        seen.push(next);
        if done {
            break;
        }
    }
    // Each event is a change: no two neighbours are equal.
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
}

// --- apid proxying -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_node_proxies_through_a_control_plane_and_workers_refuse() {
    let c = cluster(
        2,
        1,
        Some("nodes: { cp1: { configured: true }, cp2: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    for h in ["cp1", "cp2", "w1"] {
        apid_up(&c, h).await;
    }
    let cp1 = secure(&c, "cp1").await;

    for (target, by) in [("cp2", ip(&c, "cp2").to_string()), ("w1", "w1".to_string())] {
        let via = cp1.clone().with_node(by.clone());
        assert_eq!(via.addr(), addr(&c, "cp1"), "still dialling cp1");
        assert_eq!(
            within("hostname", via.hostname()).await.unwrap(),
            target,
            "node={by}"
        );
        assert_eq!(
            within("stat", via.system_stat()).await.unwrap().boot_time,
            c.fleet.snapshot(ip(&c, target)).boot_time
        );
        // COSI refuses the multi-valued `nodes` key, so this also shows the
        // client sends the single `node` key.
        let role = within("type", via.machine_type()).await.unwrap();
        let want = if target == "w1" {
            MachineRole::Worker
        } else {
            MachineRole::ControlPlane
        };
        assert_eq!(role, want, "node={by}");
    }
    let before = c.fleet.stats(ip(&c, "cp2")).calls("Hostname");
    within(
        "hostname",
        cp1.clone().with_node(ip(&c, "cp2").to_string()).hostname(),
    )
    .await
    .unwrap();
    assert_eq!(c.fleet.stats(ip(&c, "cp2")).calls("Hostname"), before + 1);

    // A worker has no client certificate to forward with.
    let w1 = secure(&c, "w1").await;
    let err = within(
        "worker forward",
        w1.clone().with_node(ip(&c, "cp1").to_string()).hostname(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    assert_eq!(err.message(), "no request forwarding");
    let err = within(
        "worker forward cosi",
        w1.clone().with_node("cp1").machine_status(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.code_name().as_deref(),
        Some("PermissionDenied"),
        "{err}"
    );
    // ...except to itself.
    assert_eq!(
        within(
            "worker self",
            w1.clone().with_node(ip(&c, "w1").to_string()).hostname()
        )
        .await
        .unwrap(),
        "w1"
    );

    // A name that cannot be a header value is an input error, not a call.
    let err = within("bad node", cp1.with_node("cp\n2").hostname())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Input, "{err:?}");
}

// --- probe -------------------------------------------------------------------

fn probe_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        tls: Duration::from_millis(500),
        rpc: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_classifies_every_kind_of_peer() {
    let c = cluster(
        5,
        0,
        Some(
            "nodes: { cp2: { configured: true }, cp3: { configured: true, wrong_ca: true }, \
             cp4: { unreachable: true }, cp5: { hang_after_accept: true } }",
        ),
    )
    .await;
    apid_up(&c, "cp2").await;
    apid_up(&c, "cp3").await;
    let creds = admin(&c);
    let t = probe_timeouts();

    // Maintenance: the fingerprint pins the very certificate the node serves.
    let ProbeResult::Maintenance { fingerprint, .. } =
        within("probe cp1", probe(addr(&c, "cp1"), Some(&creds), &t)).await
    else {
        panic!("cp1 is in maintenance mode");
    };
    let pinned = within(
        "pinned",
        NodeClient::connect_maintenance(
            addr(&c, "cp1"),
            maintenance_config(std::slice::from_ref(&fingerprint)),
            &timeouts(),
        ),
    )
    .await
    .unwrap();
    within("pinned call", pinned.storage_disks()).await.unwrap();
    let err = NodeClient::connect_maintenance(
        addr(&c, "cp1"),
        maintenance_config(&["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string()]),
        &timeouts(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
    assert!(err.to_string().contains(&fingerprint), "{err}");

    // Configured by our CA, by another CA, and without a talosconfig.
    match within("probe cp2", probe(addr(&c, "cp2"), Some(&creds), &t)).await {
        ProbeResult::Configured { ours, issuer, .. } => {
            assert_eq!(ours, Some(true));
            assert!(issuer.starts_with("O=talos, key id "), "{issuer}");
        }
        other => panic!("cp2: {other:?}"),
    }
    assert!(matches!(
        within("probe cp3", probe(addr(&c, "cp3"), Some(&creds), &t)).await,
        ProbeResult::Configured {
            ours: Some(false),
            ..
        }
    ));
    assert!(matches!(
        within("probe cp2 anon", probe(addr(&c, "cp2"), None, &t)).await,
        ProbeResult::Configured { ours: None, .. }
    ));

    // Silent (SYNs dropped) and refused addresses are unreachable.
    assert!(matches!(
        within("probe cp4", probe(addr(&c, "cp4"), Some(&creds), &t)).await,
        ProbeResult::Unreachable { .. }
    ));
    let closed = SocketAddr::new(ip(&c, "cp1"), c.fleet.port());
    let refused = SocketAddr::new(closed.ip(), free_port(closed.ip()));
    assert!(matches!(
        within("probe refused", probe(refused, Some(&creds), &t)).await,
        ProbeResult::Unreachable { .. }
    ));

    // TCP that never speaks TLS, and TCP that speaks something else.
    assert!(matches!(
        within("probe cp5", probe(addr(&c, "cp5"), Some(&creds), &t)).await,
        ProbeResult::NotTalos { .. }
    ));
    let (plain, server) = plain_text_server(ip(&c, "cp1")).await;
    let got = within("probe plain", probe(plain, Some(&creds), &t)).await;
    assert!(matches!(got, ProbeResult::NotTalos { .. }), "{got:?}");
    server.abort();
}

/// A port on `ip` that nobody listens on (bound, then released).
fn free_port(ip: IpAddr) -> u16 {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A TCP server on `ip` that answers every connection with an HTTP/1.1
/// error and closes: reachable, but not a TLS server at all.
async fn plain_text_server(ip: IpAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = sock.shutdown().await;
        }
    });
    (addr, task)
}

/// The node refuses a client certificate from another CA: a trust error,
/// never a retryable connection loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refusing_our_client_certificate_is_a_trust_error() {
    let c = cluster(1, 0, Some(CONFIGURED_CP)).await;
    apid_up(&c, "cp1").await;
    let path = c.tmp.path().join("foreign-talosconfig");
    talstrap::sim::foreign_talosconfig(c.fleet.paths(), &path).unwrap();
    // Trust this cluster's CA but present a certificate from another one.
    let ca = context_pem(&c.talosconfig(), "ca");
    let creds = talstrap::talos::Credentials::from_pem(
        ca.as_bytes(),
        context_pem(&path, "crt").as_bytes(),
        context_pem(&path, "key").as_bytes(),
    )
    .unwrap();
    // The node's verdict arrives after our side of the TLS 1.3 handshake;
    // connecting waits for it, so this is never a lost connection.
    for _ in 0..5 {
        let err = secure_with(&c, "cp1", &creds).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        assert!(
            err.to_string().contains("rejected our client certificate"),
            "{err}"
        );
    }
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).calls("Hostname"), 0);
}

/// One base64 field of a talosconfig's current context, decoded.
fn context_pem(path: &std::path::Path, field: &str) -> String {
    use base64::Engine as _;
    let doc: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ctx = doc["context"].as_str().unwrap().to_string();
    let b64 = doc["contexts"][ctx.as_str()][field].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}
