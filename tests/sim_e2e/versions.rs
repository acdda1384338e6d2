//! What each simulated Talos release answers: maintenance in apid on v1.13+,
//! v1.14's apply modes, Bootstrap per version, the v1.14 unattended install.

use std::time::Duration;

use talstrap::proto::machine::BootstrapRequest;
use talstrap::sim::{InstallPhase, NodeMode, Stage};
use tonic::Code;

use crate::support::*;

const REBOOT: i32 = 0;
const AUTO: i32 = 1;
const NO_REBOOT: i32 = 2;
const STAGED: i32 = 3;

fn on(version: &str) -> impl FnOnce(&mut talstrap::sim::FleetSpec) + '_ {
    move |spec| spec.talos_version = version.to_string()
}

#[tokio::test]
async fn maintenance_is_served_by_apid_from_1_13() {
    let old = start_with(1, 0, "", on("v1.12.11")).await;
    let new = start_with(1, 0, "", on("v1.13.9")).await;

    let e = within("v1.12 version", old.insecure_machine("cp1").version(()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = within(
        "v1.12 reboot",
        old.insecure_machine("cp1")
            .reboot(talstrap::proto::machine::RebootRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);

    let v = within("v1.13 version", new.insecure_machine("cp1").version(()))
        .await
        .unwrap()
        .into_inner();
    let m = &v.messages[0];
    assert_eq!(m.version.as_ref().unwrap().tag, "v1.13.9");
    // No `features` without a v1alpha1 config, no metadata (srv Version).
    assert!(m.features.is_none() && m.metadata.is_none());
    for e in [
        within(
            "reboot",
            new.insecure_machine("cp1")
                .reboot(talstrap::proto::machine::RebootRequest::default()),
        )
        .await
        .unwrap_err(),
        within(
            "bootstrap",
            new.insecure_machine("cp1")
                .bootstrap(BootstrapRequest::default()),
        )
        .await
        .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert_eq!(e.message(), "not authorized");
    }
    let e = within(
        "members",
        new.insecure_machine("cp1")
            .etcd_member_list(talstrap::proto::machine::EtcdMemberListRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(
        e.message()
            .contains("only available on control plane nodes")
    );
}

#[tokio::test]
async fn maintenance_apply_replies_per_version() {
    for (version, reply_mode) in [
        ("v1.12.11", 0),
        ("v1.13.9", NO_REBOOT),
        ("v1.14.0-rc.1", NO_REBOOT),
    ] {
        let env = start_with(1, 1, "", on(version)).await;
        let cfg = env.config("cp1");
        let mut c = env.insecure_machine("cp1");
        let dry = within(
            "dry",
            c.apply_configuration(apply_req(cfg.clone(), AUTO, true)),
        )
        .await
        .unwrap()
        .into_inner();
        let details = &dry.messages[0].mode_details;
        if reply_mode == 0 {
            assert!(
                details.contains("does not have a config yet"),
                "{version}: {details}"
            );
        } else {
            // v1.13+: a diff against the empty config, every line added.
            assert!(
                details.contains("Config diff:\n\n--- a\n+++ b\n@@ -0,0 +1,"),
                "{version}: {details}"
            );
            let body: Vec<&str> = details.split("@@\n").nth(1).unwrap().lines().collect();
            assert!(
                !body.is_empty() && body.iter().all(|l| l.starts_with('+')),
                "{details}"
            );
        }
        // REBOOT is accepted in maintenance on every version.
        let r = within(
            "apply",
            c.apply_configuration(apply_req(cfg, REBOOT, false)),
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(r.messages[0].mode, reply_mode, "{version}");
        assert_eq!(
            r.messages[0].mode_details.is_empty(),
            reply_mode == 0,
            "{version}: {:?}",
            r.messages[0].mode_details
        );
        // STAGED: refused on v1.12, taken (node stays in maintenance) later.
        let w = env.config("w1");
        let staged = within(
            "staged",
            env.insecure_machine("w1")
                .apply_configuration(apply_req(w, STAGED, false)),
        )
        .await;
        if reply_mode == 0 {
            assert_eq!(staged.unwrap_err().code(), Code::Unimplemented);
        } else {
            assert_eq!(staged.unwrap().into_inner().messages[0].mode, STAGED);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(env.fleet.snapshot(env.ip("w1")).stage, Stage::Maintenance);
        }
        assert_eq!(
            env.fleet.stats(env.ip("cp1")).applies_with_mode("REBOOT"),
            1
        );
    }
}

#[tokio::test]
async fn v1_14_refuses_reboot_and_never_reboots_on_auto() {
    let env = start_with(
        1,
        0,
        "nodes: { cp1: { configured: true } }",
        on("v1.14.0-rc.1"),
    )
    .await;
    env.wait_ready_for_bootstrap("cp1").await;
    let cfg = env.config("cp1");
    let mut c = env.machine("cp1");
    for mode in [REBOOT, 0] {
        let e = within(
            "reboot",
            c.apply_configuration(apply_req(cfg.clone(), mode, false)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
        assert_eq!(
            e.message(),
            "the REBOOT mode is not supported, please use AUTO or NO_REBOOT modes instead"
        );
    }
    // A change v1.12/v1.13 reboot for (machine.type) is applied live.
    let before = env.fleet.snapshot(env.ip("cp1")).boot_time;
    let text = String::from_utf8(cfg).unwrap();
    let retyped = text
        .replacen("type: controlplane", "type: init", 1)
        .into_bytes();
    let r = within(
        "auto",
        c.apply_configuration(apply_req(retyped, AUTO, false)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].mode, NO_REBOOT);
    assert_eq!(
        r.messages[0].mode_details,
        "Applied configuration without a reboot"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = env.fleet.snapshot(env.ip("cp1"));
    assert_eq!(snap.boot_time, before, "AUTO must not reboot on v1.14");
    assert_eq!(env.fleet.stats(env.ip("cp1")).reboots, 0);
    let stats = env.fleet.stats(env.ip("cp1"));
    assert_eq!(stats.applies_with_mode("REBOOT"), 2);
    assert_eq!(stats.applies_with_mode("AUTO"), 1);
}

#[tokio::test]
async fn bootstrap_on_a_worker_per_version() {
    for (version, code) in [
        ("v1.12.11", Code::FailedPrecondition),
        ("v1.13.9", Code::Unimplemented),
        ("v1.14.0-rc.1", Code::Unimplemented),
    ] {
        let env = start_with(
            1,
            1,
            "nodes: { cp1: { configured: true }, w1: { configured: true } }",
            on(version),
        )
        .await;
        env.wait("w1", "worker apid", |s| {
            s.mode == NodeMode::Configured && s.stage != Stage::Installing
        })
        .await;
        env.wait("w1", "cri up", |s| {
            !s.unmet_conditions.iter().any(|(_, m)| m.contains("cri"))
        })
        .await;
        let e = within(
            "bootstrap",
            env.machine("w1").bootstrap(BootstrapRequest::default()),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), code, "{version}: {e:?}");
    }
}

#[tokio::test]
async fn unattended_install_runs_during_boot_and_gates_bootstrap() {
    // While the install runs, the node boots (no `installing` stage), apid
    // answers over mTLS, and Bootstrap is "not available yet".
    let stuck = start_with(
        1,
        0,
        "nodes: { cp1: { stuck_in: installing } }",
        on("v1.14.0-rc.1"),
    )
    .await;
    stuck.apply_all(&["cp1"]).await;
    let s = stuck
        .wait("cp1", "installing over mTLS", |s| {
            s.install_phase == Some(InstallPhase::Installing) && s.mode == NodeMode::Configured
        })
        .await;
    assert_eq!(s.stage, Stage::Booting);
    let e = within(
        "early bootstrap",
        stuck.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "bootstrap is not available yet")
    );

    let env = start_with(1, 0, "", on("v1.14.0-rc.1")).await;
    let cfg = env.config("cp1");
    assert!(String::from_utf8_lossy(&cfg).contains("kind: UnattendedInstallConfig"));
    env.apply_all(&["cp1"]).await;
    let mut seen_installing_stage = false;
    let mut phases = Vec::new();
    let done = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.fleet.snapshot(env.ip("cp1"));
        seen_installing_stage |= s.stage == Stage::Installing;
        if let Some(p) = s.install_phase
            && phases.last() != Some(&p)
        {
            phases.push(p);
        }
        if s.install_phase == Some(InstallPhase::Installed)
            && s.etcd.service == talstrap::sim::EtcdService::Preparing
        {
            break;
        }
        assert!(tokio::time::Instant::now() < done, "never installed: {s:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        !seen_installing_stage,
        "v1.14 unattended installs have no installing stage"
    );
    assert_eq!(
        phases.first(),
        Some(&InstallPhase::Installing),
        "{phases:?}"
    );
    assert_eq!(phases.last(), Some(&InstallPhase::Installed), "{phases:?}");
    // An installer image is set: the node rebooted after the install.
    assert_eq!(env.fleet.stats(env.ip("cp1")).reboots, 1);
    assert_eq!(
        env.fleet.snapshot(env.ip("cp1")).installed_disk.as_deref(),
        Some("/dev/nvme0n1")
    );
    within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_selector_that_matches_nothing_keeps_the_node_booting() {
    let env = start_with(1, 0, "", |spec| {
        spec.talos_version = "v1.14.0-rc.1".into();
        spec.install.insert(
            "cp1".into(),
            talstrap::sim::InstallTarget::Cel("disk.size > 100u * TB".into()),
        );
    })
    .await;
    // Nothing checks the selector at apply time.
    env.apply_all(&["cp1"]).await;
    let s = env
        .wait("cp1", "configured", |s| {
            s.mode == NodeMode::Configured && s.install_phase.is_some()
        })
        .await;
    assert_eq!(s.install_phase, Some(InstallPhase::Pending));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = env.fleet.snapshot(env.ip("cp1"));
    assert_eq!(s.stage, Stage::Booting);
    assert_eq!(s.install_phase, Some(InstallPhase::Pending));
    assert!(s.installed_disk.is_none());
    let e = within(
        "bootstrap",
        env.machine("cp1").bootstrap(BootstrapRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.message(), "bootstrap is not available yet");
    // The status resource says why.
    let mut st = env.state("cp1");
    let r = within(
        "status",
        st.get(talstrap::proto::cosi::resource::GetRequest {
            namespace: "runtime".into(),
            r#type: "UnattendedInstallStatuses.runtime.talos.dev".into(),
            id: "unattended-install".into(),
            options: None,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let yaml = &r.resource.unwrap().spec.unwrap().yaml_spec;
    assert!(
        yaml.contains("error: no disk matched the selector"),
        "{yaml}"
    );
}

#[tokio::test]
async fn mixed_fleet_versions_come_from_the_scenario() {
    let env = start_with(
        2,
        0,
        "nodes: { cp2: { talos_version: '1.13' } }",
        on("v1.12.11"),
    )
    .await;
    assert_eq!(env.fleet.talos_version("cp1").as_deref(), Some("v1.12.11"));
    assert_eq!(env.fleet.talos_version("cp2").as_deref(), Some("v1.13.9"));
    assert!(
        within("v1.12", env.insecure_machine("cp1").version(()))
            .await
            .is_err()
    );
    assert!(
        within("v1.13", env.insecure_machine("cp2").version(()))
            .await
            .is_ok()
    );
    let bad = talstrap::sim::Scenario::from_yaml("nodes: { cp1: { talos_version: '1.9' } }", "t")
        .unwrap();
    assert!(
        bad.talos_version("cp1", "v1.12.11")
            .unwrap_err()
            .to_string()
            .contains("1.12, 1.13, 1.14")
    );
}

#[tokio::test]
async fn a_v1alpha1_hostname_next_to_a_hostname_document_is_invalid_argument() {
    // Talos v1.12.11 / v1.13.9 pkg/machinery/config/types/network/hostname.go
    // `V1Alpha1ConflictValidate`, appended by the container's Validate.
    for (version, prefix) in [
        ("v1.12.11", "configuration validation failed: "),
        ("v1.13.9", ""),
        ("v1.14.0-rc.1", ""),
    ] {
        let env = start_with(1, 0, "", on(version)).await;
        let text = String::from_utf8(env.config("cp1")).unwrap();
        assert!(text.contains("kind: HostnameConfig"), "{version}: {text}");
        assert!(!text.contains("\n    hostname: cp1\n"), "{version}: {text}");
        let both = text.replacen("  network: {}\n", "  network:\n    hostname: cp1\n", 1);
        assert_ne!(both, text, "{version}");
        let e = within(
            "apply",
            env.insecure_machine("cp1").apply_configuration(apply_req(
                both.into_bytes(),
                AUTO,
                false,
            )),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{version}: {e:?}");
        assert_eq!(
            e.message(),
            format!(
                "{prefix}1 error occurred:\n\t* static hostname is already set in v1alpha1 config\n\n"
            ),
            "{version}"
        );
        // Nothing was taken: the node is still in maintenance.
        assert_eq!(env.fleet.snapshot(env.ip("cp1")).stage, Stage::Maintenance);
        // The generated file itself is accepted.
        within(
            "apply",
            env.insecure_machine("cp1").apply_configuration(apply_req(
                env.config("cp1"),
                AUTO,
                false,
            )),
        )
        .await
        .unwrap();
    }
}
