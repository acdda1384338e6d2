//! Regenerates `examples/talhelper-cluster/clusterconfig/`: the files
//! `talhelper genconfig` would write for `examples/talhelper-cluster/talconfig.yaml`,
//! made with talstrap's simulator generator (fresh, throwaway keys).
//!
//! ```text
//! cargo run --example gen_talhelper_example
//! ```
//!
//! Cluster name, versions, endpoint and nodes are read from talconfig.yaml
//! (with the values of talenv.yaml); `tests/cli/docs.rs` checks that the
//! generated files still agree with it. Nothing here touches the network:
//! the addresses only end up as text in the files.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, bail};
use talstrap::disksel::DiskSelector;
use talstrap::sim::{ClusterSpec, InstallTarget, NodeSpec, generate_cluster};
use talstrap::testing::{Environment, LoadOptions, Variables, load_env_for};
use yaml_serde::Value;

/// talhelper-style `${name}` substitution (enough for this example).
fn substitute(text: &str, vars: &Variables<'_>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').context("talconfig.yaml: unclosed ${")?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .with_context(|| format!("talenv.yaml has no value for ${{{name}}}"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn text<'a>(v: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("talconfig.yaml: {field} is missing or not text"))
}

fn spec_from_talconfig(talconfig: &Path) -> anyhow::Result<ClusterSpec> {
    let vars_env = Environment::from_vars(Vec::<(String, String)>::new());
    let vars = load_env_for(&LoadOptions::new(talconfig), &vars_env)?;
    let raw = std::fs::read_to_string(talconfig)
        .with_context(|| format!("reading {}", talconfig.display()))?;
    let doc: Value = yaml_serde::from_str(&substitute(&raw, &vars)?)?;

    // endpoint: https://<address>:6443
    let endpoint = text(&doc, "endpoint")?;
    let host = endpoint
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map(|(h, _)| h)
        .context("talconfig.yaml: endpoint has no port")?;
    let mut nodes = Vec::new();
    for n in doc["nodes"]
        .as_sequence()
        .context("talconfig.yaml: no nodes")?
    {
        let hostname = text(n, "hostname")?;
        let selector: DiskSelector = match n.get("installDiskSelector") {
            Some(sel) => yaml_serde::from_value(sel.clone())
                .with_context(|| format!("{hostname}: installDiskSelector"))?,
            None => bail!("{hostname}: this example uses installDiskSelector on every node"),
        };
        nodes.push(NodeSpec {
            hostname: hostname.to_string(),
            ip: text(n, "ipAddress")?
                .parse::<IpAddr>()
                .with_context(|| format!("{hostname}: ipAddress"))?,
            control_plane: n["controlPlane"].as_bool().unwrap_or(false),
            install: InstallTarget::Selector(selector),
        });
    }
    Ok(ClusterSpec {
        cluster_name: text(&doc, "clusterName")?.to_string(),
        talos_version: text(&doc, "talosVersion")?.to_string(),
        kubernetes_version: text(&doc, "kubernetesVersion")?.to_string(),
        endpoint_ip: host
            .parse()
            .context("talconfig.yaml: endpoint is not an address")?,
        network: Default::default(),
        nodes,
    })
}

fn main() -> anyhow::Result<()> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/talhelper-cluster");
    let spec = spec_from_talconfig(&example.join("talconfig.yaml"))?;

    let scratch = tempfile::tempdir()?;
    let generated = generate_cluster(&spec, &scratch.path().join("cluster"))?;

    // Only what genconfig writes into clusterconfig/: the hand-written
    // talconfig.yaml stays, the secrets bundle is left out on purpose, and so
    // is the generated .gitignore (it would hide these files from git).
    let out = example.join("clusterconfig");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut files: Vec<&Path> = generated
        .nodes
        .iter()
        .map(|n| n.config_path.as_path())
        .collect();
    files.push(&generated.talosconfig);
    for from in files {
        let name = from.file_name().context("generated file without a name")?;
        let to = out.join(name);
        std::fs::copy(from, &to).with_context(|| format!("writing {}", to.display()))?;
        println!("wrote {}", to.display());
    }
    Ok(())
}
