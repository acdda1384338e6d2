//! ApplyConfiguration on a configured node: modes, dry runs, concurrency.

use talstrap::sim::{NodeMode, Stage};
use tonic::Code;

use crate::support::*;

const AUTO: i32 = 1;
const NO_REBOOT: i32 = 2;
const STAGED: i32 = 3;
const TRY: i32 = 4;

#[tokio::test]
async fn configured_apply_modes() {
    let env = start(1, 0, "nodes: { cp1: { configured: true } }").await;
    env.wait_ready_for_bootstrap("cp1").await;
    let cfg = env.config("cp1");
    let mut c = env.machine("cp1");

    // Identical config: no reboot needed.
    let r = within(
        "same",
        c.apply_configuration(apply_req(cfg.clone(), AUTO, false)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].mode, NO_REBOOT);
    assert_eq!(
        r.messages[0].mode_details,
        "Applied configuration without a reboot"
    );

    // A live-applicable change (labels) also goes without a reboot.
    let text = String::from_utf8(cfg.clone()).unwrap();
    let labels = text
        .replacen("certSANs:", "nodeLabels:\n    zone: a\n  certSANs:", 1)
        .into_bytes();
    let dry = within(
        "dry",
        c.apply_configuration(apply_req(labels.clone(), AUTO, true)),
    )
    .await
    .unwrap()
    .into_inner();
    let details = &dry.messages[0].mode_details;
    assert!(
        details.starts_with("Dry run summary:\nApplied configuration without a reboot (skipped in dry-run).\nConfig diff:\n\n"),
        "{details}"
    );
    assert!(details.contains("+    zone: a"), "{details}");
    let same_dry = within(
        "dry same",
        c.apply_configuration(apply_req(cfg.clone(), AUTO, true)),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(
        same_dry.messages[0]
            .mode_details
            .ends_with("Config diff:\n\nNo changes.")
    );

    // A change to machine.type needs a reboot: NO_REBOOT and TRY refuse it.
    let retyped = text
        .replacen("type: controlplane", "type: init", 1)
        .into_bytes();
    for mode in [NO_REBOOT, TRY] {
        let e = within(
            "no-reboot",
            c.apply_configuration(apply_req(retyped.clone(), mode, false)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message()
                .starts_with("this config change can't be applied in immediate mode"),
            "{}",
            e.message()
        );
    }

    // STAGED keeps the running config and stages the new one.
    let r = within(
        "staged",
        c.apply_configuration(apply_req(labels.clone(), STAGED, false)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].mode, STAGED);
    assert_eq!(
        r.messages[0].mode_details,
        "Staged configuration to be applied after the next reboot"
    );
    assert!(env.fleet.snapshot(env.ip("cp1")).staged_config);

    // Invalid configs are InvalidArgument on a configured node.
    let e = within(
        "garbage",
        c.apply_configuration(apply_req(b"machine: [".to_vec(), AUTO, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let only_hostname = b"apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n".to_vec();
    let e = within(
        "no v1alpha1",
        c.apply_configuration(apply_req(only_hostname, AUTO, false)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("doesn't contain v1alpha1 config"));

    // AUTO with a reboot-needing change: REBOOT, then the node reboots.
    let before = env.fleet.snapshot(env.ip("cp1")).boot_time;
    let r = within(
        "auto reboot",
        c.apply_configuration(apply_req(retyped, AUTO, false)),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].mode, 0);
    assert!(
        r.messages[0]
            .mode_details
            .starts_with("Applied configuration with a reboot: this config change can't be applied in immediate mode"),
        "{}",
        r.messages[0].mode_details
    );
    env.wait("cp1", "rebooted", |s| {
        s.boot_time > before && s.mode == NodeMode::Configured
    })
    .await;
    assert_eq!(env.fleet.snapshot(env.ip("cp1")).stage, Stage::Booting);
}

#[tokio::test]
async fn concurrent_applies_are_refused() {
    // Latency holds the first apply long enough for the second to collide.
    let env = start(1, 0, "nodes: { cp1: { configured: true } }\ntiming: {}\n").await;
    env.wait_ready_for_bootstrap("cp1").await;
    let cfg = env.config("cp1");
    let mut a = env.machine("cp1");
    let mut b = env.machine("cp1");
    let mut outcomes = Vec::new();
    // Several rounds make a collision certain without timing assumptions on
    // any single pair: at least one round must see both in flight.
    for _ in 0..20 {
        let (x, y) = tokio::join!(
            a.apply_configuration(apply_req(cfg.clone(), AUTO, false)),
            b.apply_configuration(apply_req(cfg.clone(), AUTO, false))
        );
        outcomes.push(x.err());
        outcomes.push(y.err());
        if outcomes
            .iter()
            .flatten()
            .any(|e| e.code() == Code::FailedPrecondition)
        {
            break;
        }
    }
    let refused: Vec<_> = outcomes.iter().flatten().collect();
    assert!(!refused.is_empty(), "no apply was refused");
    assert!(refused.iter().all(|e| e.code() == Code::FailedPrecondition
        && e.message() == "another apply configuration is already in progress"));
}
