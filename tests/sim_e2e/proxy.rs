//! apid's `node` / `nodes` metadata semantics.

use talstrap::proto::cosi::resource::GetRequest;
use talstrap::sim::NodeMode;
use tonic::{Code, Request};

use crate::support::*;

fn with_nodes<T>(msg: T, key: &'static str, targets: &[String]) -> Request<T> {
    let mut r = Request::new(msg);
    for t in targets {
        r.metadata_mut().append(key, t.parse().unwrap());
    }
    r
}

#[tokio::test]
async fn aggregated_and_single_node_calls() {
    let env = start(
        2,
        1,
        "nodes: { cp1: { configured: true }, cp2: { configured: true }, w1: { configured: true } }",
    )
    .await;
    for h in ["cp1", "cp2", "w1"] {
        env.wait(h, "apid", |s| s.mode == NodeMode::Configured)
            .await;
    }
    let cp2 = env.ip("cp2").to_string();
    let w1 = env.ip("w1").to_string();
    let mut cp1 = env.machine("cp1");

    // `nodes`: one message per target, tagged with the target as given.
    let targets = vec![cp2.clone(), "w1".to_string(), "127.0.0.1".to_string()];
    let r = within("nodes", cp1.hostname(with_nodes((), "nodes", &targets)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.messages.len(), 3);
    let by_host = |h: &str| {
        r.messages
            .iter()
            .find(|m| m.metadata.as_ref().unwrap().hostname == h)
            .unwrap()
    };
    assert_eq!(by_host(&cp2).hostname, "cp2");
    assert_eq!(by_host("w1").hostname, "w1");
    let failed = by_host("127.0.0.1");
    let meta = failed.metadata.as_ref().unwrap();
    assert!(
        failed.hostname.is_empty(),
        "a failed node's message carries only metadata"
    );
    assert!(
        meta.error
            .starts_with("rpc error: code = Unavailable desc = "),
        "{}",
        meta.error
    );
    assert_eq!(meta.status.as_ref().unwrap().code, Code::Unavailable as i32);

    // Per-node errors keep the overall status OK.
    let r = within(
        "bootstrap nodes",
        cp1.bootstrap(with_nodes(
            Default::default(),
            "nodes",
            std::slice::from_ref(&w1),
        )),
    )
    .await
    .unwrap()
    .into_inner();
    let meta = r.messages[0].metadata.as_ref().unwrap();
    assert_eq!(meta.hostname, w1);
    assert_eq!(
        meta.status.as_ref().unwrap().code,
        Code::FailedPrecondition as i32
    );

    // `node`: one-to-one, reply untouched, errors are real statuses.
    let r = within(
        "node",
        cp1.hostname(with_nodes((), "node", std::slice::from_ref(&w1))),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.messages[0].hostname, "w1");
    assert!(r.messages[0].metadata.is_none());
    let e = within(
        "node bootstrap",
        cp1.bootstrap(with_nodes(
            Default::default(),
            "node",
            std::slice::from_ref(&w1),
        )),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        env.fleet.stats(env.ip("w1")).calls("Hostname"),
        2,
        "proxied calls reach the target"
    );

    let e = within(
        "two nodes",
        cp1.hostname(with_nodes((), "node", &[cp2.clone(), w1.clone()])),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "node metadata must be single-valued")
    );
    let e = within(
        "port",
        cp1.hostname(with_nodes((), "node", &[format!("{cp2}:50000")])),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(e.message().starts_with("invalid target"));

    // COSI: `nodes` refused, `node` proxied.
    let get = GetRequest {
        namespace: "config".into(),
        r#type: "MachineTypes.config.talos.dev".into(),
        id: "machine-type".into(),
        options: None,
    };
    let e = within(
        "cosi nodes",
        env.state("cp1")
            .get(with_nodes(get.clone(), "nodes", std::slice::from_ref(&w1))),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "one-2-many proxying is not supported for COSI methods"
        )
    );
    let r = within(
        "cosi node",
        env.state("cp1")
            .get(with_nodes(get, "node", std::slice::from_ref(&w1))),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(r.resource.unwrap().spec.unwrap().yaml_spec, "worker\n");

    // Streaming through `nodes`: a per-node error is one extra message.
    let mut stream = within(
        "kubeconfig nodes",
        cp1.kubeconfig(with_nodes((), "nodes", &[cp2.clone(), w1.clone()])),
    )
    .await
    .unwrap()
    .into_inner();
    let mut got = Vec::new();
    while let Some(d) = within("kubeconfig item", stream.message()).await.unwrap() {
        got.push(d);
    }
    assert_eq!(got.len(), 2);
    let ok = got
        .iter()
        .find(|d| d.metadata.as_ref().unwrap().hostname == cp2)
        .unwrap();
    assert!(!ok.bytes.is_empty() && ok.metadata.as_ref().unwrap().error.is_empty());
    let failed = got
        .iter()
        .find(|d| d.metadata.as_ref().unwrap().hostname == w1)
        .unwrap();
    assert!(failed.bytes.is_empty());
    assert_eq!(
        failed
            .metadata
            .as_ref()
            .unwrap()
            .status
            .as_ref()
            .unwrap()
            .code,
        Code::Unimplemented as i32
    );

    // A worker does not forward, except to itself.
    let mut w = env.machine("w1");
    let e = within(
        "worker forward",
        w.hostname(with_nodes((), "node", std::slice::from_ref(&cp2))),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "no request forwarding")
    );
    let r = within(
        "worker self",
        w.hostname(with_nodes((), "nodes", std::slice::from_ref(&w1))),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(
        r.messages[0].metadata.is_none(),
        "served locally, untouched"
    );
}
