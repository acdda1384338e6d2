//! Settings of the commands that run a simulated fleet (`sim`, `demo`), and
//! the settings `demo` composes for the commands it runs against it.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{DemoArgs, SimArgs, SimLayout};
use crate::sim::{FleetSpec, Scenario};
use crate::talos::ApplyMode;

use super::{
    ApplySettings, BootstrapSettings, InventorySettings, PacingSettings, PreflightSettings,
    VerifySettings,
};

/// `talstrap sim`.
#[derive(Debug, Clone)]
pub(crate) struct SimSettings {
    /// The fleet to start (its `dir` is set when the run picks it).
    pub(crate) spec: FleetSpec,
    /// `--dir`; `None`: a fresh private directory under the temp dir.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) layout: SimLayout,
}

impl SimSettings {
    /// `port`: `--port`, which the fleet tries first.
    pub(crate) fn resolve(a: SimArgs, port: u16) -> Result<Self, String> {
        check_fleet_shape(a.time_scale, a.control_planes)?;
        let subnet = loopback_subnet(a.subnet.as_deref())?;
        if let Some(s) = &a.scenario
            && !s.exists()
        {
            return Err(format!("scenario file {} does not exist", s.display()));
        }
        let mut spec = fleet_spec(
            a.control_planes,
            a.workers,
            a.time_scale,
            &a.talos_version,
            a.scenario.as_deref(),
        )?;
        spec.port = port;
        spec.subnet = subnet;
        spec.check()?;
        Ok(SimSettings {
            spec,
            dir: a.dir,
            layout: a.layout,
        })
    }
}

/// `talstrap demo`.
#[derive(Debug, Clone)]
pub(crate) struct DemoSettings {
    /// The fleet to start, on a free port (its `dir` is set by the run).
    pub(crate) spec: FleetSpec,
    /// `--dir`; `None`: a private temp directory, removed unless `keep`.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) keep: bool,
}

impl DemoSettings {
    pub(crate) fn resolve(a: DemoArgs) -> Result<Self, String> {
        check_fleet_shape(a.time_scale, a.control_planes)?;
        crate::sim::version::resolve(&a.talos_version)
            .map_err(|e| format!("--talos-version: {e}"))?;
        if let Some(d) = &a.dir
            && d.join("kubeconfig").exists()
        {
            return Err(format!(
                "{} already holds a kubeconfig from an earlier demo: pick another --dir",
                d.display()
            ));
        }
        let mut spec = fleet_spec(
            a.control_planes,
            a.workers,
            a.time_scale,
            &a.talos_version,
            a.scenario.as_deref(),
        )?;
        spec.port = 0;
        spec.check()?;
        Ok(DemoSettings {
            spec,
            dir: a.dir,
            keep: a.keep,
        })
    }

    /// Simulated durations are seconds × time scale: the demo polls and
    /// retries a little faster than that.
    fn pacing(&self) -> PacingSettings {
        let tick = Duration::from_secs_f64((0.5 * self.spec.time_scale).clamp(0.02, 0.5));
        PacingSettings {
            connect_timeout: Duration::from_secs(2),
            rpc_timeout: Duration::from_secs(10),
            attempts: 5,
            retry_delay: tick,
            poll_interval: tick,
        }
    }

    /// How long a node may show no progress: a minute of simulated time.
    fn stuck_after(&self) -> Duration {
        Duration::from_secs_f64((60.0 * self.spec.time_scale).max(5.0))
    }

    /// Stage 1: preflight, with the nodes' own dry run.
    pub(crate) fn preflight(&self, inventory: &InventorySettings) -> PreflightSettings {
        PreflightSettings {
            server_dry_run: true,
            inventory: inventory.clone(),
            pacing: self.pacing(),
        }
    }

    /// Stage 2: apply every node, then wait until ready for bootstrap.
    pub(crate) fn apply(&self, inventory: &InventorySettings) -> ApplySettings {
        ApplySettings {
            mode: ApplyMode::Auto,
            try_timeout: Duration::from_secs(60),
            dry_run: false,
            wait: true,
            max_unavailable: 1,
            allow_degraded_etcd: false,
            stuck_after: self.stuck_after(),
            inventory: inventory.clone(),
            pacing: self.pacing(),
        }
    }

    /// Stage 3: bootstrap the first control plane, wait for every member,
    /// write the kubeconfig to `kubeconfig`.
    pub(crate) fn bootstrap(
        &self,
        inventory: &InventorySettings,
        kubeconfig: PathBuf,
    ) -> BootstrapSettings {
        BootstrapSettings {
            auto: false,
            cidr: Vec::new(),
            quorum: None,
            wait_members: true,
            allow_unreachable_control_planes: false,
            etcd_timeout: self.stuck_after() * 2,
            kubeconfig: Some(kubeconfig),
            force: false,
            resend_after: Duration::from_secs_f64((300.0 * self.spec.time_scale).max(5.0)),
            inventory: inventory.clone(),
            pacing: self.pacing(),
        }
    }

    /// Stage 4: every node running and ready.
    pub(crate) fn verify(&self, inventory: &InventorySettings) -> VerifySettings {
        VerifySettings {
            phase: Some(crate::commands::verify::Phase::PostBootstrap),
            stuck_after: self.stuck_after(),
            inventory: inventory.clone(),
            pacing: self.pacing(),
        }
    }
}

/// What clap's ranges already hold, checked again for settings built any
/// other way.
fn check_fleet_shape(time_scale: f64, control_planes: usize) -> Result<(), String> {
    if time_scale <= 0.0 || !time_scale.is_finite() {
        return Err("--time-scale must be a positive number".into());
    }
    if control_planes == 0 {
        return Err("--control-planes must be at least 1".into());
    }
    Ok(())
}

/// The fleet of `--control-planes`, `--workers`, `--time-scale`,
/// `--talos-version` and `--scenario` (read here); `dir` is set by the run.
fn fleet_spec(
    control_planes: usize,
    workers: usize,
    time_scale: f64,
    talos_version: &str,
    scenario: Option<&std::path::Path>,
) -> Result<FleetSpec, String> {
    let mut spec = FleetSpec::new(control_planes, workers, PathBuf::new());
    spec.time_scale = time_scale;
    spec.talos_version =
        crate::sim::version::resolve(talos_version).map_err(|e| format!("--talos-version: {e}"))?;
    if let Some(path) = scenario {
        spec.scenario = Scenario::from_file(path).map_err(|e| format!("{e:#}"))?;
    }
    Ok(spec)
}

/// `--subnet`: a /16 to /24 inside 127.0.0.0/8 (the simulator only binds
/// loopback).
fn loopback_subnet(text: Option<&str>) -> Result<Option<ipnet::Ipv4Net>, String> {
    let Some(text) = text else { return Ok(None) };
    let net: ipnet::Ipv4Net = text
        .parse()
        .map_err(|e| format!("--subnet {text:?}: {e}"))?;
    if net.network().octets()[0] != 127 || !(16..=24).contains(&net.prefix_len()) {
        return Err(format!(
            "--subnet {text}: the simulator only runs on loopback: a /16 to /24 inside 127.0.0.0/8, e.g. 127.0.42.0/24"
        ));
    }
    Ok(Some(net))
}

#[cfg(test)]
mod tests {
    use super::super::CommandSettings;
    use super::super::tests::resolve_line;
    use super::*;

    #[test]
    fn sim_subnets_stay_on_loopback() {
        assert_eq!(loopback_subnet(None), Ok(None));
        assert!(loopback_subnet(Some("127.0.42.0/24")).unwrap().is_some());
        // A non-loopback subnet is the input under test: it is refused before
        // the simulator binds or anything dials it.
        let err = loopback_subnet(Some("10.0.0.0/24")).unwrap_err();
        assert!(err.contains("only runs on loopback"), "{err}");
        assert!(loopback_subnet(Some("127.0.0.0/8")).is_err());
        assert!(
            loopback_subnet(Some("nonsense"))
                .unwrap_err()
                .starts_with("--subnet \"nonsense\"")
        );
    }

    #[test]
    fn sim_checks_its_fleet_before_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let want = dir.path().join("never-created");
        let line = format!("talstrap sim --dir {} --talos-version 0.9", want.display());
        let err = resolve_line(&line).err().expect("refused");
        assert!(err.starts_with("--talos-version: "), "{err}");
        assert!(!want.exists());
        let Ok(CommandSettings::Sim(s)) =
            resolve_line("talstrap --port 50123 sim --workers 0 --subnet 127.0.42.0/24")
        else {
            panic!("sim")
        };
        assert_eq!(
            (s.spec.port, s.spec.control_planes, s.spec.workers),
            (50123, 3, 0)
        );
        assert_eq!(
            s.spec.subnet.map(|n| n.to_string()).as_deref(),
            Some("127.0.42.0/24")
        );
    }

    #[test]
    fn demo_composes_each_stage_from_its_own_settings() {
        let Ok(CommandSettings::Demo(d)) = resolve_line("talstrap demo --time-scale 0.1") else {
            panic!("demo")
        };
        assert_eq!(d.spec.port, 0, "the demo always picks a free port");
        let cluster = InventorySettings {
            talconfig: Some(PathBuf::from("/d/talconfig.yaml")),
            talosconfig: Some(PathBuf::from("/d/clusterconfig/talosconfig")),
            ..InventorySettings::default()
        };
        let pre = d.preflight(&cluster);
        assert!(pre.server_dry_run);
        assert_eq!(pre.inventory.talconfig, cluster.talconfig);
        assert_eq!(pre.pacing.poll_interval, Duration::from_millis(50));
        let apply = d.apply(&cluster);
        assert!(apply.wait && !apply.dry_run);
        assert_eq!(apply.stuck_after, Duration::from_secs(6));
        let boot = d.bootstrap(&cluster, PathBuf::from("/d/kubeconfig"));
        assert!(boot.wait_members && !boot.auto && !boot.force);
        assert_eq!(boot.etcd_timeout, Duration::from_secs(12));
        assert_eq!(boot.resend_after, Duration::from_secs(30));
        let verify = d.verify(&cluster);
        assert_eq!(
            verify.phase,
            Some(crate::commands::verify::Phase::PostBootstrap)
        );
        assert_eq!(verify.inventory.talosconfig, cluster.talosconfig);
    }

    #[test]
    fn demo_refuses_a_dir_with_an_earlier_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), "x").unwrap();
        let err = resolve_line(&format!("talstrap demo --dir {}", dir.path().display()))
            .err()
            .expect("refused");
        assert!(
            err.ends_with("already holds a kubeconfig from an earlier demo: pick another --dir")
        );
    }
}
