//! What `talstrap sim` needs from the simulator besides the fleet: the
//! guide it prints once the fleet is up (where the files are, which nodes
//! exist, what to run next). Argument parsing, the fleet's settings,
//! serving and printing live in talstrap's CLI and settings layers.

use super::fleet::Fleet;
use std::fmt::Write as _;

/// The guide printed once the fleet is up.
pub fn guide(fleet: &Fleet) -> String {
    let p = fleet.paths();
    let port = fleet.port();
    let talconfig = p.talconfig.display();
    let config_dir = p.config_dir.display();
    let mut out = String::new();
    let nodes = fleet.nodes();
    let cps = nodes
        .iter()
        .filter(|n| n.role == super::Role::ControlPlane)
        .count();
    let _ = writeln!(
        out,
        "talstrap sim: {} simulated Talos nodes ({} control planes, {} workers) on loopback, port {port}",
        nodes.len(),
        cps,
        nodes.len() - cps
    );
    let _ = writeln!(out, "Talos {}", fleet.talos_versions().join(", "));
    let _ = writeln!(out, "cluster files in {}", p.dir.display());
    let _ = writeln!(out, "  talconfig    {talconfig}");
    let _ = writeln!(out, "  configs      {config_dir}");
    let _ = writeln!(out, "  talosconfig  {}", p.talosconfig.display());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<10} {:<13} {:<24} STAGE",
        "NODE", "ROLE", "ADDRESS"
    );
    for n in &nodes {
        let snap = fleet.snapshot(n.ip);
        let stage = if snap.powered {
            snap.stage.as_str()
        } else {
            "powered off"
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<13} {:<24} {stage}",
            n.hostname,
            n.role.as_str(),
            n.addr.to_string()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Try next:");
    let common = format!("--talconfig {talconfig} --config-dir {config_dir} --port {port}");
    let _ = writeln!(out, "  talstrap preflight {common}");
    let _ = writeln!(out, "  talstrap apply {common} --wait");
    let _ = writeln!(out, "  export TALOSCONFIG={}", p.talosconfig.display());
    let _ = writeln!(
        out,
        "  talstrap bootstrap {common} --kubeconfig {}",
        p.dir.join("kubeconfig").display()
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Serving until interrupted (Ctrl-C).");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fleet::FleetSpec;

    #[tokio::test]
    async fn guide_names_nodes_and_next_commands() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = FleetSpec::new(1, 1, tmp.path().join("c"));
        spec.time_scale = 0.02;
        spec.talos_version = "v1.13.9".into();
        let fleet = Fleet::start(spec).await.unwrap();
        let text = guide(&fleet);
        assert!(text.contains("Talos v1.13.9"), "{text}");
        let port = fleet.port();
        assert!(text.contains(&format!("--port {port}")), "{text}");
        assert!(text.contains("talstrap preflight --talconfig"));
        assert!(text.contains("export TALOSCONFIG="));
        for n in fleet.nodes() {
            assert!(text.contains(&n.addr.to_string()), "{text}");
        }
        assert!(text.contains("maintenance"));
        fleet.shutdown().await;
    }
}
