//! `bootstrap --kubeconfig PATH`: what to do with the file, decided before
//! any node is contacted where possible. A re-run must be safe: the same
//! cluster's kubeconfig already at PATH is kept (success, said so); another
//! cluster's is refused unless `--force`. "Same cluster" means the
//! kubeconfig's `certificate-authority-data` is the cluster CA
//! (`cluster.ca.crt` of the control plane configs; Talos signs the admin
//! kubeconfig with it), or, without a config to read it from, the CA of the
//! kubeconfig the node hands out.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::ops::secret_file::{Existing, check_target};

/// Largest kubeconfig read back from disk for the comparison.
const MAX_KUBECONFIG: u64 = 1 << 20;

/// What bootstrap does with `--kubeconfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KubeconfigPlan {
    /// Write PATH (create it, or replace a regular file with `--force`).
    Write { path: PathBuf, replace: bool },
    /// PATH already holds this cluster's kubeconfig: keep it, fetch nothing.
    Keep { path: PathBuf },
    /// PATH holds a kubeconfig and no config says which cluster is ours:
    /// fetch, then keep it if its CA is the fetched one, else refuse.
    KeepIfSame { path: PathBuf },
}

impl KubeconfigPlan {
    pub(crate) fn path(&self) -> &Path {
        match self {
            KubeconfigPlan::Write { path, .. }
            | KubeconfigPlan::Keep { path }
            | KubeconfigPlan::KeepIfSame { path } => path,
        }
    }
}

/// Decide up front. `cluster_ca`: the cluster CA certificate (PEM) from the
/// control plane configs, when the inventory has one.
pub(crate) fn plan(
    path: &Path,
    force: bool,
    cluster_ca: Option<&[u8]>,
) -> Result<KubeconfigPlan, String> {
    let existing = check_target(path)?;
    let path_buf = path.to_path_buf();
    if existing == Existing::Nothing || force {
        return Ok(KubeconfigPlan::Write {
            path: path_buf,
            replace: existing == Existing::Regular,
        });
    }
    let Some(ours) = cluster_ca else {
        return Ok(KubeconfigPlan::KeepIfSame { path: path_buf });
    };
    let theirs = read_cas(path)?;
    if theirs.iter().any(|ca| same_pem(ca, ours)) {
        Ok(KubeconfigPlan::Keep { path: path_buf })
    } else {
        Err(not_ours(path, theirs.is_empty()))
    }
}

/// After fetching: whether the file at `path` is for the cluster whose
/// kubeconfig is `fetched` (Err when it is another cluster's).
pub(crate) fn same_cluster(path: &Path, fetched: &[u8]) -> Result<(), String> {
    let ours = cas_of(fetched);
    let theirs = read_cas(path)?;
    if !ours.is_empty() && theirs.iter().any(|t| ours.iter().any(|o| same_pem(t, o))) {
        Ok(())
    } else {
        Err(not_ours(path, theirs.is_empty()))
    }
}

fn not_ours(path: &Path, unreadable: bool) -> String {
    let what = if unreadable {
        "is not a kubeconfig talstrap can read"
    } else {
        "is the kubeconfig of another cluster (its certificate-authority-data is not this cluster's CA)"
    };
    format!(
        "{} already exists and {what}; pass --force to replace it, or give another path",
        path.display()
    )
}

fn read_cas(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_KUBECONFIG)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(cas_of(&bytes))
}

/// Every `clusters[].cluster.certificate-authority-data`, decoded.
fn cas_of(yaml: &[u8]) -> Vec<Vec<u8>> {
    let Ok(doc) = yaml_serde::from_slice::<yaml_serde::Value>(yaml) else {
        return Vec::new();
    };
    doc.get("clusters")
        .and_then(|c| c.as_sequence())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.get("cluster")?
                .get("certificate-authority-data")?
                .as_str()
        })
        .filter_map(|b64| B64.decode(b64.split_whitespace().collect::<String>()).ok())
        .collect()
}

/// `cluster.ca.crt` (decoded PEM) of a machine config's v1alpha1 document.
pub(crate) fn cluster_ca_of_config(raw: &[u8]) -> Option<Vec<u8>> {
    let crt = config_string(raw, &["cluster", "ca", "crt"])?;
    B64.decode(crt.split_whitespace().collect::<String>()).ok()
}

/// Whether a control plane config carries the etcd CA (`cluster.etcd.ca.crt`),
/// without which Talos cannot bootstrap etcd (v1.14 refuses the call).
pub(crate) fn has_etcd_ca(raw: &[u8]) -> bool {
    config_string(raw, &["cluster", "etcd", "ca", "crt"]).is_some_and(|c| !c.trim().is_empty())
}

/// A string field of the first document that has it.
fn config_string(raw: &[u8], path: &[&str]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    yaml_docs(text).find_map(|doc| {
        let mut v: yaml_serde::Value = yaml_serde::from_str(doc).ok()?;
        for key in path {
            v = v.get(key)?.clone();
        }
        v.as_str().map(str::to_string)
    })
}

fn yaml_docs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n---").map(|d| d.trim_start_matches("---"))
}

fn same_pem(a: &[u8], b: &[u8]) -> bool {
    let norm = |x: &[u8]| -> Vec<u8> {
        x.iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CA1: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const CA2: &str = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";

    fn kubeconfig(ca: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: home\n    cluster:\n      server: https://127.0.0.10:6443\n      certificate-authority-data: {}\nusers: []\n",
            B64.encode(ca)
        )
    }

    #[test]
    fn same_clusters_kubeconfig_is_kept_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubeconfig");
        assert_eq!(
            plan(&p, false, Some(CA1.as_bytes())).unwrap(),
            KubeconfigPlan::Write {
                path: p.clone(),
                replace: false
            }
        );
        std::fs::write(&p, kubeconfig(CA1)).unwrap();
        assert_eq!(
            plan(&p, false, Some(CA1.as_bytes())).unwrap(),
            KubeconfigPlan::Keep { path: p.clone() }
        );
        let err = plan(&p, false, Some(CA2.as_bytes())).unwrap_err();
        assert!(
            err.contains("another cluster") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(
            plan(&p, true, Some(CA2.as_bytes())).unwrap(),
            KubeconfigPlan::Write {
                path: p.clone(),
                replace: true
            }
        );
        // No config to compare with: decided after fetching.
        assert_eq!(
            plan(&p, false, None).unwrap(),
            KubeconfigPlan::KeepIfSame { path: p.clone() }
        );
        assert!(same_cluster(&p, kubeconfig(CA1).as_bytes()).is_ok());
        assert!(same_cluster(&p, kubeconfig(CA2).as_bytes()).is_err());
        std::fs::write(&p, "not yaml: [").unwrap();
        assert!(
            plan(&p, false, Some(CA1.as_bytes()))
                .unwrap_err()
                .contains("not a kubeconfig")
        );
    }

    #[test]
    fn cluster_ca_is_read_from_the_v1alpha1_document() {
        let raw = format!(
            "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp1\n---\nversion: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  ca:\n    crt: {}\n    key: c2VjcmV0\n",
            B64.encode(CA1)
        );
        assert_eq!(
            cluster_ca_of_config(raw.as_bytes()).unwrap(),
            CA1.as_bytes()
        );
        assert_eq!(cluster_ca_of_config(b"machine: {}\n"), None);
        assert!(!has_etcd_ca(raw.as_bytes()));
        assert!(has_etcd_ca(
            b"cluster:\n  etcd:\n    ca:\n      crt: QUJD\n"
        ));
    }
}
