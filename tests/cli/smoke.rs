//! The main path end to end: maintenance → applied → ready for bootstrap →
//! bootstrapped → running, read from the JSON report.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_plus_two_cluster_from_maintenance_to_running() {
    let c = cluster(3, 2, None).await;

    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 0, "{}", pre.dump());
    assert_eq!(pre.report()["summary"]["ok"], 5, "{}", pre.dump());
    assert_eq!(pre.node("cp1")["facts"]["mode"], "maintenance");

    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    for n in ["cp1", "cp2", "cp3"] {
        let s = apply.node(n)["summary"].as_str().unwrap().to_string();
        assert!(s.contains("ready for bootstrap"), "{n}: {s}");
    }

    let kubeconfig = c.tmp.path().join("kubeconfig");
    let kc = kubeconfig.display().to_string();
    let boot = c
        .json("bootstrap", &["--kubeconfig", &kc, "--wait-members"])
        .await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
    assert_eq!(c.fleet.etcd_clusters()[0].len(), 3);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains("clusters:"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let verify = c.json("verify", &["--phase", "post-bootstrap"]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    assert_eq!(verify.report()["summary"]["ok"], 5);
}
