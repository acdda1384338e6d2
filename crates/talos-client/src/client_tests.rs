//! End-to-end tests of the protocol layer (TLS configs, connector, probe,
//! typed client) against small in-process TLS/gRPC servers, each on its own
//! random 127.x.y.1 address.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::task::JoinHandle;

use super::fake_node::{BOOT_TIME, CONFIG, KUBECONFIG};
use super::testkit::{
    Leaf, Pki, ServerTls, admin_credentials, dropping_server, grpc_server, loopback_ip,
    refused_addr, server_cert, server_config, silent_server,
};
use super::*;
use crate::client::ChannelKind;
use crate::probe::MAINTENANCE_CN;
use crate::tls::{maintenance_config, secure_config};

/// Hang guard only: nothing here is timed.
async fn guard<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("test hung")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        tls: Duration::from_secs(5),
        rpc: Duration::from_secs(20),
    }
}

/// A configured node: server cert from `server_ca`, client certs required
/// from `client_ca`.
async fn configured_node(
    server_ca: &Pki,
    client_ca: &Pki,
    tls12_only: bool,
) -> (SocketAddr, JoinHandle<()>) {
    let ip = loopback_ip();
    let leaf = server_cert(server_ca, ip, "cp-1");
    let config = server_config(
        &leaf,
        ServerTls::RequireClientCert(client_ca.ca()),
        tls12_only,
    );
    grpc_server(ip, config).await
}

/// A maintenance-mode node; returns its leaf too (for fingerprints).
async fn maintenance_node() -> (SocketAddr, JoinHandle<()>, Leaf) {
    let ip = loopback_ip();
    let ephemeral = Pki::new("");
    let leaf = server_cert(&ephemeral, ip, MAINTENANCE_CN);
    let config = server_config(&leaf, ServerTls::NoClientAuth, false);
    let (addr, task) = grpc_server(ip, config).await;
    (addr, task, leaf)
}

async fn secure_client(pki: &Pki, addr: SocketAddr) -> NodeClient {
    let creds = admin_credentials(pki);
    let tls = secure_config(&creds).unwrap();
    NodeClient::connect_secure(addr, tls, &timeouts())
        .await
        .unwrap()
}

#[tokio::test]
async fn secure_client_calls_machine_rpcs() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let client = secure_client(&pki, addr).await;
        assert_eq!(client.addr(), addr);
        assert_eq!(client.kind(), ChannelKind::Secure);

        let v = client.version().await.unwrap();
        assert_eq!(v.tag, "v1.12.11");
        assert_eq!(v.platform, "metal");
        // Without with_node no `node` header is sent.
        assert_eq!(v.sha, "no-node");
        let v = client.clone().with_node("cp-9").version().await.unwrap();
        assert_eq!(v.sha, "cp-9");

        assert_eq!(client.hostname().await.unwrap(), "cp-1");
        assert_eq!(client.system_stat().await.unwrap().boot_time, BOOT_TIME);
        assert_eq!(client.reboot().await.unwrap(), "actor-1");

        let services = client.service_list().await.unwrap();
        let etcd = services.iter().find(|s| s.id == "etcd").unwrap();
        assert_eq!(etcd.state, "Preparing");
        assert_eq!(etcd.healthy, None);
        assert_eq!(etcd.events[0].msg, "Running pre state");
        assert_eq!(etcd.events[0].ts_unix, Some(1_700_000_100));
        let apid = services.iter().find(|s| s.id == "apid").unwrap();
        assert_eq!(apid.healthy, Some(true));

        let members = client.etcd_member_list(false).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!((members[0].id, members[0].hostname.as_str()), (42, "cp-1"));
        assert_eq!(
            client.etcd_member_list(true).await.unwrap()[0].hostname,
            "cp-1-local"
        );
        let status = client.etcd_status().await.unwrap();
        assert_eq!(
            (status.member_id, status.leader, status.raft_index),
            (42, 42, 100)
        );

        assert_eq!(client.kubeconfig().await.unwrap(), KUBECONFIG);
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn apply_sends_mode_dry_run_and_try_timeout() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let client = secure_client(&pki, addr).await;

        let r = client
            .apply_configuration(
                b"version: v1alpha1\n",
                ApplyMode::Try,
                true,
                Some(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        assert_eq!(r.warnings, vec!["mode=4 dry_run=true try=30"]);
        assert_eq!(r.mode, ApplyMode::Try);
        assert_eq!(r.mode_details, "version: v1alpha1\n");

        let r = client
            .apply_configuration(b"x", ApplyMode::Auto, false, None)
            .await
            .unwrap();
        assert_eq!(r.warnings, vec!["mode=1 dry_run=false try=-1"]);
        assert_eq!(r.mode, ApplyMode::NoReboot);

        let err = client
            .apply_configuration(b"", ApplyMode::Auto, false, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::InvalidArgument));
        assert_eq!(err.class(), ErrorClass::Input);
        assert!(err.message().contains("configuration validation failed"));
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn metadata_error_in_an_ok_reply_fails_the_call() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let client = secure_client(&pki, addr).await;
        let err = client.bootstrap().await.unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::AlreadyExists));
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert_eq!(err.message(), "etcd data directory is not empty");
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn resources_are_read_and_decoded() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let client = secure_client(&pki, addr).await;

        let status = client.machine_status().await.unwrap();
        assert_eq!(status.stage, Stage::Booting);
        assert!(!status.ready);
        assert_eq!(status.unmet[0].reason, "etcd not running");

        // Talos 1.9 has no Versions resource and says so with PermissionDenied.
        assert_eq!(client.talos_version().await.unwrap(), None);
        assert_eq!(
            client.machine_type().await.unwrap(),
            MachineRole::ControlPlane
        );
        assert_eq!(client.etcd_local_member().await.unwrap(), None);
        assert_eq!(
            client.machine_config().await.unwrap().unwrap(),
            CONFIG.as_bytes()
        );

        let disks = client.disks().await.unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0].dev_path, "/dev/sda");
        assert_eq!(disks[0].transport, "virtio");
        assert!(disks[0].rotational);
        assert_eq!(disks[1].dev_path, "/dev/sr0");
        assert!(disks[1].cdrom);

        assert!(
            client
                .get_resource("runtime", "Nope.talos.dev", "x")
                .await
                .unwrap()
                .is_none()
        );
        let err = client
            .get_resource("", "Nope.talos.dev", "x")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::PermissionDenied));
        assert!(
            client
                .list_resources("runtime", "Nope.talos.dev")
                .await
                .unwrap()
                .is_empty()
        );
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn watch_skips_the_handshake_and_tombstones() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let client = secure_client(&pki, addr).await;
        let items: Vec<_> = client.watch_machine_status().await.unwrap().collect().await;
        let stages: Vec<Stage> = items.into_iter().map(|r| r.unwrap().stage).collect();
        assert_eq!(stages, vec![Stage::Booting, Stage::Running]);
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn foreign_server_ca_is_a_trust_error_naming_the_issuer() {
    guard(async {
        let ours = Pki::new("talos");
        let theirs = Pki::new("other-cluster");
        let (addr, task) = configured_node(&theirs, &ours, false).await;
        let creds = admin_credentials(&ours);
        let err = NodeClient::connect_secure(addr, secure_config(&creds).unwrap(), &timeouts())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "server certificate for {} is not signed by the talosconfig CA (issuer: O=other-cluster)",
                addr.ip()
            )),
            "{text}"
        );
        task.abort();
    })
    .await;
}

/// With TLS 1.3 the node rejects our certificate after our side of the
/// handshake is done; connecting waits for that verdict, so the refusal is
/// always a trust error at connect time, never a lost connection later.
#[tokio::test]
async fn rejected_client_cert_is_a_trust_error_tls13() {
    guard(async {
        let ours = Pki::new("talos");
        let theirs = Pki::new("other-cluster");
        let (addr, task) = configured_node(&ours, &theirs, false).await;
        let creds = admin_credentials(&ours);
        for _ in 0..5 {
            let err = NodeClient::connect_secure(addr, secure_config(&creds).unwrap(), &timeouts())
                .await
                .unwrap_err();
            assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
            assert!(
                err.message().contains("rejected our client certificate"),
                "{err}"
            );
        }
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn rejected_client_cert_is_a_trust_error_tls12() {
    guard(async {
        let ours = Pki::new("talos");
        let theirs = Pki::new("other-cluster");
        let (addr, task) = configured_node(&ours, &theirs, true).await;
        let creds = admin_credentials(&ours);
        let err = NodeClient::connect_secure(addr, secure_config(&creds).unwrap(), &timeouts())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn maintenance_client_accepts_any_cert_and_honours_pins() {
    guard(async {
        let (addr, task, leaf) = maintenance_node().await;
        let client = NodeClient::connect_maintenance(addr, maintenance_config(&[]), &timeouts())
            .await
            .unwrap();
        assert_eq!(client.kind(), ChannelKind::Maintenance);
        let disks = client.storage_disks().await.unwrap();
        assert_eq!(disks[0].device_name, "/dev/sda");

        let pin = spki_fingerprint(&leaf.cert_der).unwrap();
        let pinned = NodeClient::connect_maintenance(addr, maintenance_config(&[pin]), &timeouts())
            .await
            .unwrap();
        assert_eq!(pinned.machine_status().await.unwrap().stage, Stage::Booting);

        let other = spki_fingerprint(&server_cert(&Pki::new(""), addr.ip(), "x").cert_der).unwrap();
        let err = NodeClient::connect_maintenance(addr, maintenance_config(&[other]), &timeouts())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        assert!(
            err.message().contains("not one of the pinned fingerprints"),
            "{err}"
        );
        task.abort();
    })
    .await;
}

/// A node that reboots right after taking a request drops the connection:
/// that must be retryable (and "sent, confirm later" for apply).
#[tokio::test]
async fn dropped_connection_is_retryable() {
    guard(async {
        let ip = loopback_ip();
        let leaf = server_cert(&Pki::new(""), ip, MAINTENANCE_CN);
        let (addr, task) =
            dropping_server(server_config(&leaf, ServerTls::NoClientAuth, false)).await;
        let result =
            match NodeClient::connect_maintenance(addr, maintenance_config(&[]), &timeouts()).await
            {
                Ok(client) => client
                    .apply_configuration(b"version: v1alpha1\n", ApplyMode::Auto, false, None)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
        let err = result.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
        task.abort();
    })
    .await;
}

/// A node that takes the call and never answers hits our deadline.
#[tokio::test]
async fn hung_call_hits_the_deadline() {
    guard(async {
        let pki = Pki::new("talos");
        let (addr, task) = configured_node(&pki, &pki, false).await;
        let creds = admin_credentials(&pki);
        let t = Timeouts {
            rpc: Duration::from_millis(300),
            ..timeouts()
        };
        let client = NodeClient::connect_secure(addr, secure_config(&creds).unwrap(), &t)
            .await
            .unwrap();
        // The fake node stalls Hostname for the node name "hang".
        let err = client.with_node("hang").hostname().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
        assert_eq!(err.code(), Some(tonic::Code::DeadlineExceeded), "{err:?}");
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn probe_classifies_every_kind_of_listener() {
    guard(async {
        let t = Timeouts {
            tls: Duration::from_millis(300),
            ..timeouts()
        };
        let ours = Pki::new("talos");
        let creds = admin_credentials(&ours);

        let refused = refused_addr().await;
        assert!(matches!(
            probe(refused, Some(&creds), &t).await,
            ProbeResult::Unreachable { .. }
        ));

        let (silent, silent_task) = silent_server().await;
        match probe(silent, Some(&creds), &t).await {
            ProbeResult::NotTalos { reason } => {
                assert!(reason.contains("did not finish"), "{reason}")
            }
            other => panic!("unexpected {other:?}"),
        }
        silent_task.abort();

        let (maint, maint_task, leaf) = maintenance_node().await;
        match probe(maint, Some(&creds), &t).await {
            ProbeResult::Maintenance { fingerprint, .. } => {
                assert_eq!(fingerprint, spki_fingerprint(&leaf.cert_der).unwrap())
            }
            other => panic!("unexpected {other:?}"),
        }
        maint_task.abort();

        let (cp, cp_task) = configured_node(&ours, &ours, false).await;
        assert_eq!(
            probe(cp, Some(&creds), &t).await,
            ProbeResult::Configured {
                ours: Some(true),
                issuer: "O=talos".into(),
                subject: "CN=cp-1".into()
            }
        );
        match probe(cp, None, &t).await {
            ProbeResult::Configured { ours, .. } => assert_eq!(ours, None),
            other => panic!("unexpected {other:?}"),
        }
        let other_creds = admin_credentials(&Pki::new("talos"));
        match probe(cp, Some(&other_creds), &t).await {
            ProbeResult::Configured { ours, issuer, .. } => {
                assert_eq!(ours, Some(false));
                assert_eq!(issuer, "O=talos");
            }
            other => panic!("unexpected {other:?}"),
        }
        cp_task.abort();

        // TLS 1.2: the handshake fails, but the request was seen.
        let (cp12, cp12_task) = configured_node(&ours, &ours, true).await;
        match probe(cp12, Some(&creds), &t).await {
            ProbeResult::Configured { ours, .. } => assert_eq!(ours, Some(true)),
            other => panic!("unexpected {other:?}"),
        }
        cp12_task.abort();

        // Plain TLS, no client auth, not the maintenance certificate.
        let ip = loopback_ip();
        let web = server_cert(&Pki::new("web"), ip, "www.example.test");
        let (plain, plain_task) =
            grpc_server(ip, server_config(&web, ServerTls::NoClientAuth, false)).await;
        assert!(matches!(
            probe(plain, Some(&creds), &t).await,
            ProbeResult::NotTalos { .. }
        ));
        plain_task.abort();
    })
    .await;
}

#[test]
fn node_mode_serializes_with_a_mode_tag() {
    let json = serde_json::to_value(ProbeResult::Configured {
        ours: Some(true),
        issuer: "O=talos".into(),
        subject: "CN=cp-1".into(),
    })
    .unwrap();
    assert_eq!(json["mode"], "configured");
    assert_eq!(json["ours"], true);
    let json = serde_json::to_value(ProbeResult::Maintenance {
        fingerprint: "abc".into(),
        ca_key_id: None,
    })
    .unwrap();
    assert_eq!(json["mode"], "maintenance");
}
