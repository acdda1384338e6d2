//! Every scenario fault, observed from the client side.

use std::time::Duration;

use talstrap::proto::machine::BootstrapRequest;
use talstrap::sim::{EtcdService, InstallTarget, NodeMode, Stage};
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn install_failure_returns_to_maintenance_with_a_new_certificate() {
    let env = start(1, 0, "nodes: { cp1: { install_fails: true } }").await;
    let first = peer_leaf(env.addr("cp1")).await;
    env.apply_all(&["cp1"]).await;
    env.wait("cp1", "install attempted", |_| {
        env.fleet.stats(env.ip("cp1")).installs_failed == 1
    })
    .await;
    let s = env
        .wait("cp1", "back in maintenance", |s| {
            s.mode == NodeMode::Maintenance
        })
        .await;
    assert_eq!(s.stage, Stage::Maintenance);
    assert!(!s.config_applied);
    let second = peer_leaf(env.addr("cp1")).await;
    assert_eq!(common_names(&second), ["maintenance-service.talos.dev"]);
    assert_ne!(
        first, second,
        "a new ephemeral certificate after the reboot"
    );
}

#[tokio::test]
async fn missing_install_disk_fails_the_install() {
    let env = start_with(1, 0, "", |spec| {
        spec.install
            .insert("cp1".into(), InstallTarget::Disk("/dev/sdz".into()));
    })
    .await;
    env.apply_all(&["cp1"]).await;
    env.wait("cp1", "install failed", |_| {
        env.fleet.stats(env.ip("cp1")).installs_failed == 1
    })
    .await;
    env.wait("cp1", "back in maintenance", |s| {
        s.mode == NodeMode::Maintenance
    })
    .await;
}

#[tokio::test]
async fn unmatched_disk_selector_is_refused_at_apply() {
    let env = start(
        0,
        1,
        "disks: { w1: [ { dev_path: /dev/sda, size: 2TB, transport: sata, rotational: true } ] }",
    )
    .await;
    let e = within(
        "apply",
        env.insecure_machine("w1")
            .apply_configuration(apply_req(env.config("w1"), 1, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("runtime configuration validation failed: 1 error occurred:\n\t* no disks matched the expression: "),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("disk.transport == \"nvme\""),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn unreachable_node_times_out_instead_of_refusing() {
    let env = start(2, 0, "nodes: { cp2: { unreachable: true } }").await;
    let attempt = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(env.addr("cp2")),
    )
    .await;
    assert!(attempt.is_err(), "expected a timeout, got {attempt:?}");
    // The healthy node next to it answers.
    tokio::net::TcpStream::connect(env.addr("cp1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn hung_node_accepts_tcp_but_never_speaks_tls() {
    let env = start(1, 0, "nodes: { cp1: { hang_after_accept: true } }").await;
    let tcp = tokio::net::TcpStream::connect(env.addr("cp1"))
        .await
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAny::new()))
    .with_no_client_auth();
    let handshake = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)).connect(
        rustls::pki_types::ServerName::IpAddress(env.ip("cp1").into()),
        tcp,
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), handshake)
            .await
            .is_err()
    );
    assert_eq!(env.fleet.stats(env.ip("cp1")).connections, 1);
}

#[tokio::test]
async fn flaky_method_fails_n_times_then_works() {
    let env = start(
        1,
        0,
        "nodes: { cp1: { flaky: { method: ApplyConfiguration, count: 2 } } }",
    )
    .await;
    let mut c = env.insecure_machine("cp1");
    for _ in 0..2 {
        let e = within(
            "flaky",
            c.apply_configuration(apply_req(env.config("cp1"), 1, true)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
    }
    within(
        "third",
        c.apply_configuration(apply_req(env.config("cp1"), 1, true)),
    )
    .await
    .unwrap();
    // Other methods were never affected.
    assert_eq!(
        env.fleet.stats(env.ip("cp1")).calls("ApplyConfiguration"),
        3
    );
}

#[tokio::test]
async fn lost_apply_reply_still_applies() {
    let env = start(1, 0, "nodes: { cp1: { apply_reply_lost: true } }").await;
    let r = within(
        "apply",
        env.insecure_machine("cp1")
            .apply_configuration(apply_req(env.config("cp1"), 1, false)),
    )
    .await;
    assert!(r.is_err(), "the reply must be lost: {r:?}");
    assert_eq!(env.fleet.stats(env.ip("cp1")).applies_accepted, 1);
    env.wait("cp1", "configured anyway", |s| {
        s.mode == NodeMode::Configured
    })
    .await;
}

#[tokio::test]
async fn lost_bootstrap_reply_still_bootstraps() {
    let env = start(1, 0, "nodes: { cp1: { bootstrap_reply_lost: true } }").await;
    env.apply_all(&["cp1"]).await;
    env.wait_ready_for_bootstrap("cp1").await;
    let r = within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await;
    assert!(r.is_err(), "the reply must be lost: {r:?}");
    assert_eq!(env.fleet.etcd_clusters(), vec![vec!["cp1".to_string()]]);
    let e = within(
        "retry",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn time_not_synced_then_synced() {
    // 40 s × 0.02 = 0.8 s of unsynced time after boot.
    let env = start(1, 0, "nodes: { cp1: { time_not_synced_for: 40s } }").await;
    env.apply_all(&["cp1"]).await;
    env.wait_ready_for_bootstrap("cp1").await;
    let e = within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "time is not in sync yet")
    );
    assert!(
        env.fleet
            .snapshot(env.ip("cp1"))
            .unmet_conditions
            .iter()
            .any(|(n, _)| n == "time")
    );
    env.wait("cp1", "time synced", |s| {
        !s.unmet_conditions.iter().any(|(n, _)| n == "time")
    })
    .await;
    within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn early_bootstrap_is_not_available_yet() {
    // A long boot keeps the container runtime down for a while.
    let env = start(1, 0, "timing: { boot: 60s }").await;
    env.apply_all(&["cp1"]).await;
    env.wait("cp1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    let e = within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "bootstrap is not available yet")
    );
}

#[tokio::test]
async fn wrong_ca_node_fails_server_verification() {
    let env = start(1, 0, "nodes: { cp1: { wrong_ca: true } }").await;
    env.apply_all(&["cp1"]).await;
    env.wait("cp1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    let e = within("version", env.machine("cp1").version(()))
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
}

#[tokio::test]
async fn already_bootstrapped_and_configured_nodes_start_that_way() {
    let env = start(2, 1, "nodes: { cp1: { already_bootstrapped: true }, cp2: { configured: true }, w1: { configured: true } }").await;
    let s = env.fleet.snapshot(env.ip("cp1"));
    assert_eq!(s.mode, NodeMode::Configured);
    assert_eq!(s.etcd.service, EtcdService::Running);
    let e = within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    for h in ["cp1", "cp2", "w1"] {
        env.wait(h, "running", |s| s.stage == Stage::Running && s.ready)
            .await;
    }
    let mut c = env.fleet.etcd_clusters();
    c[0].sort();
    assert_eq!(c, vec![vec!["cp1".to_string(), "cp2".to_string()]]);
}

#[tokio::test]
async fn powered_off_node_comes_up_on_demand() {
    let env = start(1, 0, "nodes: { cp1: { powered_off: true } }").await;
    let refused = tokio::net::TcpStream::connect(env.addr("cp1")).await;
    assert!(refused.is_err());
    assert!(!env.fleet.snapshot(env.ip("cp1")).powered);
    env.fleet.power_on(env.ip("cp1")).await;
    assert_eq!(env.fleet.snapshot(env.ip("cp1")).stage, Stage::Maintenance);
    tokio::net::TcpStream::connect(env.addr("cp1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn stuck_reboot_loop_and_unhealthy_etcd() {
    let env = start(
        3,
        1,
        "nodes: { cp1: { configured: true, etcd_never_healthy: true }, cp2: { configured: true, reboot_loop: true }, cp3: { stuck_in: installing }, w1: { configured: true, stuck_in: booting } }",
    )
    .await;
    // etcd never healthy: Running, health failing, stage stays booting.
    env.wait_ready_for_bootstrap("cp1").await;
    within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap();
    let s = env
        .wait("cp1", "health failed", |s| {
            s.unmet_conditions
                .iter()
                .any(|(n, r)| n == "services" && r.contains("etcd not healthy"))
        })
        .await;
    assert_eq!(s.stage, Stage::Booting);
    let services = within("services", env.machine("cp1").service_list(()))
        .await
        .unwrap()
        .into_inner();
    let etcd = services.messages[0]
        .services
        .iter()
        .find(|s| s.id == "etcd")
        .unwrap();
    assert_eq!(etcd.state, "Running");
    let health = etcd.health.as_ref().unwrap();
    assert!(!health.healthy && !health.unknown);
    assert!(
        etcd.events
            .as_ref()
            .unwrap()
            .events
            .iter()
            .any(|e| e.msg.contains("Health check failed"))
    );

    // Reboot loop: boot time keeps moving.
    let first = env.fleet.snapshot(env.ip("cp2")).boot_time;
    env.wait("cp2", "rebooted twice", |s| s.boot_time >= first + 2)
        .await;

    // Stuck installing.
    env.apply_all(&["cp3"]).await;
    env.wait("cp3", "installing", |s| s.stage == Stage::Installing)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.fleet.snapshot(env.ip("cp3")).stage, Stage::Installing);

    // Worker stuck in booting: conditions constant.
    let a = env
        .wait("w1", "apid", |s| s.mode == NodeMode::Configured)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = env.fleet.snapshot(env.ip("w1"));
    assert_eq!(b.stage, Stage::Booting);
    assert_eq!(a.unmet_conditions, b.unmet_conditions);
}

#[tokio::test]
async fn latency_delays_every_call() {
    // 10 min × 0.02 = 12 s per call: far beyond the client's patience here.
    let env = start(2, 0, "nodes: { cp1: { latency: 10m } }").await;
    let mut slow = env.insecure_state("cp1");
    let mut quick = env.insecure_state("cp2");
    let req = talstrap::proto::cosi::resource::GetRequest {
        namespace: "runtime".into(),
        r#type: "MachineStatuses.runtime.talos.dev".into(),
        id: "machine".into(),
        options: None,
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow.get(req.clone()))
            .await
            .is_err(),
        "the delayed node must not answer yet"
    );
    within("quick", quick.get(req)).await.unwrap();
}

/// `power_off_after`: the machine dies mid-run. Pessimistic: its address
/// goes silent (a connect times out, it is not refused), a request on a
/// connection opened before the cut never gets an answer, and etcd stops.
#[tokio::test]
async fn power_off_after_makes_a_running_control_plane_silent() {
    // 100 s at time scale 0.02 = 2 s.
    let env = start(
        1,
        0,
        "nodes: { cp1: { already_bootstrapped: true, power_off_after: 100s } }",
    )
    .await;
    let mut machine = env.machine("cp1");
    within("a request before the cut", machine.service_list(()))
        .await
        .expect("etcd node answers before the power cut");
    let s = env
        .wait("cp1", "powered off", |s| s.mode == NodeMode::Down)
        .await;
    assert!(!s.powered);
    assert_eq!(s.etcd.service, EtcdService::Absent);
    assert!(s.etcd.has_data, "etcd data survives on disk");
    // The open connection answers nothing: the request outlives 1 s.
    let hung = tokio::time::timeout(Duration::from_secs(1), machine.service_list(())).await;
    assert!(hung.is_err(), "a powered-off node answered: {hung:?}");
    // A new connection is not refused: the SYN gets no answer.
    let connect = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(env.addr("cp1")),
    )
    .await;
    assert!(
        connect.is_err(),
        "connect to a powered-off node: {connect:?}"
    );
    assert_eq!(env.fleet.etcd_clusters(), vec![vec!["cp1".to_string()]]);
}
