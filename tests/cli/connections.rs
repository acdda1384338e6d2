//! What `apply --wait` costs each node in connections: the probe's TLS
//! connection carries the maintenance apply, verify watches it until the
//! node closes it, then opens the one mTLS connection it watches the node
//! over. Two handshakes per node, counted by the simulated nodes.

use std::net::IpAddr;

use crate::support::*;

const ALL: [&str; 6] = ["cp1", "cp2", "cp3", "w1", "w2", "w3"];

fn ip(c: &Cluster, host: &str) -> IpAddr {
    c.ip(host).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_costs_each_node_two_handshakes_at_most() {
    let c = cluster(3, 3, None).await;
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    assert_eq!(apply.report()["summary"]["ok"], 6, "{}", apply.dump());
    for n in ALL {
        let stats = c.fleet.stats(ip(&c, n));
        assert_eq!(stats.calls("ApplyConfiguration"), 1, "{n}");
        assert!(
            stats.handshakes <= 2,
            "{n}: {} TLS handshakes (probe + apply on one, mTLS watch on the other)",
            stats.handshakes
        );
        assert!(
            stats.connections <= 2,
            "{n}: {} connections accepted",
            stats.connections
        );
    }

    // verify of the configured nodes dials mTLS first, no probe: one
    // handshake each for the watch, and the control planes one more for
    // the question whether the cluster is bootstrapped.
    let before: Vec<u64> = ALL
        .iter()
        .map(|n| c.fleet.stats(ip(&c, n)).handshakes)
        .collect();
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    for (n, was) in ALL.iter().zip(before) {
        let took = c.fleet.stats(ip(&c, n)).handshakes - was;
        let want = if n.starts_with("cp") { 2 } else { 1 };
        assert_eq!(took, want, "{n}: verify took {took} handshakes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sends_each_config_over_the_probes_connection() {
    let c = cluster(1, 2, None).await;
    let apply = c.json("apply", &[]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    for n in ["cp1", "w1", "w2"] {
        let stats = c.fleet.stats(ip(&c, n));
        assert_eq!(stats.calls("ApplyConfiguration"), 1, "{n}");
        assert_eq!(
            stats.handshakes, 1,
            "{n}: probe and apply share one connection"
        );
    }
}
