//! `bootstrap --kubeconfig PATH`: only a regular file (or nothing) is ever
//! replaced, bad paths are refused before any node is contacted, and a
//! re-run keeps the same cluster's kubeconfig while refusing another's.

use crate::support::*;

const READY: &str = "nodes: { cp1: { configured: true } }";

/// `bootstrap --kubeconfig PATH [extra]`, asserting exit 2 and no contact.
async fn refused_up_front(c: &Cluster, path: &str, extra: &[&str], needle: &str) {
    let before = c.fleet.total_connections();
    let mut args = vec!["--kubeconfig", path];
    args.extend_from_slice(extra);
    let run = c.json("bootstrap", &args).await;
    assert_eq!(run.code, 2, "{path}: {}", run.dump());
    assert_eq!(
        c.fleet.total_connections(),
        before,
        "{path}: a node was contacted"
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains(needle),
        "{path}: {needle:?} not said:\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_regular_file_or_nothing_is_replaced_even_with_force() {
    let c = cluster(1, 0, Some(READY)).await;
    let dir = c.tmp.path();
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let real = dir.join("real");
    std::fs::write(&real, "keep\n").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    for (path, needle) in [
        (&fifo, "FIFO"),
        (&link, "symbolic link"),
        (&dangling, "dangling"),
        (&sub, "directory"),
    ] {
        let p = path.display().to_string();
        refused_up_front(&c, &p, &["--force"], needle).await;
    }
    // Without --force, the dangling link is refused too (it was followed).
    refused_up_front(&c, &dangling.display().to_string(), &[], "dangling").await;
    assert!(!dir.join("nowhere").exists());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "keep\n");
    // A trailing slash names a directory.
    refused_up_front(
        &c,
        &format!("{}/", dir.join("new").display()),
        &[],
        "ends with '/'",
    )
    .await;
    // A missing directory.
    refused_up_front(
        &c,
        &dir.join("no/such/kubeconfig").display().to_string(),
        &[],
        "does not exist",
    )
    .await;
    assert_eq!(
        c.fleet.etcd_clusters().len(),
        0,
        "bootstrapped despite bad input"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_keeps_the_same_clusters_kubeconfig_and_refuses_another() {
    let c = cluster(1, 0, Some(READY)).await;
    let kc = c.tmp.path().join("kubeconfig");
    let p = kc.display().to_string();
    let first = c.json("bootstrap", &["--kubeconfig", &p]).await;
    assert_eq!(first.code, 0, "{}", first.dump());
    let written = std::fs::read(&kc).unwrap();

    // Same cluster, no --force: success, file kept byte for byte, and said.
    let again = c.json("bootstrap", &["--kubeconfig", &p]).await;
    assert_eq!(again.code, 0, "{}", again.dump());
    assert_eq!(std::fs::read(&kc).unwrap(), written);
    let messages = again.report()["messages"].to_string();
    assert!(messages.contains("kubeconfig kept"), "{}", again.dump());
    assert_eq!(c.fleet.etcd_clusters().len(), 1);

    // Another cluster's kubeconfig at the path: refused up front, exit 2.
    let other = cluster(1, 0, Some(READY)).await;
    let okc = other.tmp.path().join("kubeconfig");
    let op = okc.display().to_string();
    let made = other.json("bootstrap", &["--kubeconfig", &op]).await;
    assert_eq!(made.code, 0, "{}", made.dump());
    std::fs::copy(&okc, &kc).unwrap();
    let foreign = std::fs::read(&kc).unwrap();
    refused_up_front(&c, &p, &[], "another cluster").await;
    assert_eq!(std::fs::read(&kc).unwrap(), foreign);
    // ... unless --force.
    let forced = c.json("bootstrap", &["--kubeconfig", &p, "--force"]).await;
    assert_eq!(forced.code, 0, "{}", forced.dump());
    assert_ne!(std::fs::read(&kc).unwrap(), foreign);
}
