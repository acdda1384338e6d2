//! Talos v1.14's `UnattendedInstallConfig` install-disk selector, evaluated
//! locally the way the node will: a CEL boolean over each disk of the
//! node's `Disks` resources, in resource-ID order, first match wins, with
//! `system_disk` bound to false, `glob(pattern, string)` and the unsigned
//! size constants (`KiB`…`EiB`, `kB`…`EB`), and no implicit exclusion of
//! CD-ROMs or read-only disks (unlike the legacy `diskSelector`).
//! Sources: Talos v1.14.0-rc.1 pkg/machinery/cel/celenv/celenv.go
//! (`DiskLocator`), pkg/machinery/config/types/block/blockhelpers
//! (`MatchDisks`), internal/app/machined/pkg/controllers/runtime/unattended_install.go.

use std::collections::HashMap;
use std::sync::Arc;

use crate::disksel::DiskFacts;

const SIZE_CONSTANTS: [(&str, u64); 12] = [
    ("KiB", 1024),
    ("MiB", 1024 * 1024),
    ("GiB", 1024 * 1024 * 1024),
    ("TiB", 1024 * 1024 * 1024 * 1024),
    ("PiB", 1024 * 1024 * 1024 * 1024 * 1024),
    ("EiB", 1024 * 1024 * 1024 * 1024 * 1024 * 1024),
    ("kB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("TB", 1000 * 1000 * 1000 * 1000),
    ("PB", 1000 * 1000 * 1000 * 1000 * 1000),
    ("EB", 1000 * 1000 * 1000 * 1000 * 1000 * 1000),
];

/// `disk` as a CEL map with the DiskSpec protobuf field names.
fn disk_value(d: &DiskFacts) -> cel::Value {
    let s = |v: &str| cel::Value::String(Arc::new(v.to_string()));
    let list = |v: &[String]| cel::Value::List(Arc::new(v.iter().map(|x| s(x)).collect()));
    let fields: HashMap<String, cel::Value> = [
        ("size", cel::Value::UInt(d.size)),
        ("io_size", cel::Value::UInt(512)),
        ("sector_size", cel::Value::UInt(512)),
        ("readonly", cel::Value::Bool(d.readonly)),
        ("model", s(&d.model)),
        ("serial", s(&d.serial)),
        ("modalias", s(&d.modalias)),
        ("wwid", s(&d.wwid)),
        ("bus_path", s(&d.bus_path)),
        ("sub_system", s("/sys/class/block")),
        ("transport", s(&d.transport)),
        ("rotational", cel::Value::Bool(d.rotational)),
        ("cdrom", cel::Value::Bool(d.cdrom)),
        ("dev_path", s(&d.dev_path)),
        ("pretty_size", s("")),
        ("secondary_disks", list(&[])),
        ("uuid", s(&d.uuid)),
        ("symlinks", list(&d.symlinks)),
        ("firmware_version", s("")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    cel::Value::from(fields)
}

/// Glob with `*` as the only wildcard (Talos uses ryanuber/go-glob).
fn star_glob(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut middle = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for piece in &pieces[1..pieces.len() - 1] {
        match middle.find(piece) {
            Some(i) => middle = &middle[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Why a selector could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectorError(pub(crate) String);

/// The disks `expr` matches, in the order Talos tries them (the first one
/// is the install target). An expression that does not compile, does not
/// yield a boolean, or fails on some disk is an error, as on the node.
pub(crate) fn matching_disks<'a>(
    expr: &str,
    disks: &'a [DiskFacts],
) -> Result<Vec<&'a DiskFacts>, SelectorError> {
    let program = cel::Program::compile(expr).map_err(|e| SelectorError(e.to_string()))?;
    let mut ordered: Vec<&DiskFacts> = disks.iter().collect();
    ordered.sort_by(|a, b| {
        a.dev_path
            .trim_start_matches("/dev/")
            .cmp(b.dev_path.trim_start_matches("/dev/"))
    });
    let mut out = Vec::new();
    for d in ordered {
        let mut ctx = cel::Context::default();
        ctx.add_variable_from_value("disk", disk_value(d));
        ctx.add_variable_from_value("system_disk", false);
        for (name, value) in SIZE_CONSTANTS {
            ctx.add_variable_from_value(name, cel::Value::UInt(value));
        }
        ctx.add_function("glob", |p: Arc<String>, t: Arc<String>| star_glob(&p, &t))
            .map_err(|e| SelectorError(e.to_string()))?;
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(true)) => out.push(d),
            Ok(cel::Value::Bool(false)) => {}
            Ok(other) => {
                return Err(SelectorError(format!(
                    "the expression gives {other:?} for {}, not a boolean",
                    d.dev_path
                )));
            }
            Err(e) => {
                return Err(SelectorError(format!(
                    "evaluating it for {} fails: {e}",
                    d.dev_path
                )));
            }
        }
    }
    Ok(out)
}

/// The disk a path names on the node: its device path or one of its
/// `/dev/disk/by-*` links (the installer resolves links with
/// `filepath.EvalSymlinks`, Talos v1.12.11
/// internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go).
pub(crate) fn disk_for_path<'a>(path: &str, disks: &'a [DiskFacts]) -> Option<&'a DiskFacts> {
    disks
        .iter()
        .find(|d| d.dev_path == path)
        .or_else(|| disks.iter().find(|d| d.symlinks.iter().any(|l| l == path)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn disk(dev: &str, size: u64, transport: &str) -> DiskFacts {
        DiskFacts {
            dev_path: dev.into(),
            size,
            transport: transport.into(),
            ..DiskFacts::default()
        }
    }

    fn fleet() -> Vec<DiskFacts> {
        let mut nvme = disk("/dev/nvme0n1", 512_000_000_000, "nvme");
        nvme.symlinks = vec![
            "/dev/disk/by-id/nvme-Samsung_SSD_980_S1".into(),
            "/dev/disk/by-id/md-name-talos:boot".into(),
        ];
        let mut cd = disk("/dev/sr0", 700_000_000, "sata");
        cd.cdrom = true;
        cd.readonly = true;
        vec![
            disk("/dev/vda", 20 * 1024 * 1024 * 1024, "virtio"),
            cd,
            nvme,
            disk("/dev/sda", 2_000_000_000_000, "sata"),
        ]
    }

    fn names(expr: &str) -> Vec<String> {
        let disks = fleet();
        matching_disks(expr, &disks)
            .unwrap()
            .iter()
            .map(|d| d.dev_path.clone())
            .collect()
    }

    #[test]
    fn talos_example_selectors() {
        // Talos v1.14 testdata/stability/v1.14/overrides-controlplane.yaml.
        assert_eq!(names(r#"disk.dev_path == "/dev/vda""#), ["/dev/vda"]);
        // Talos hack/test/patches/md-boot-array.yaml.
        assert_eq!(
            names(r#""/dev/disk/by-id/md-name-talos:boot" in disk.symlinks"#),
            ["/dev/nvme0n1"]
        );
        // The example of the UnattendedInstallConfig docs.
        assert_eq!(names(r#"disk.transport == "nvme""#), ["/dev/nvme0n1"]);
    }

    #[test]
    fn one_several_none_and_a_cdrom() {
        assert_eq!(names("disk.size >= 1u * TB"), ["/dev/sda"]);
        // Resource-ID order: nvme0n1 < sda < sr0 < vda.
        assert_eq!(
            names("disk.size >= 1u * GiB"),
            ["/dev/nvme0n1", "/dev/sda", "/dev/vda"]
        );
        assert!(names("disk.size > 10u * TB").is_empty());
        // No implicit cdrom/read-only exclusion.
        assert_eq!(names("disk.size < 1u * GB"), ["/dev/sr0"]);
        assert_eq!(
            names(r#"glob("/dev/s*", disk.dev_path)"#),
            ["/dev/sda", "/dev/sr0"]
        );
        assert_eq!(names("!system_disk && disk.rotational").len(), 0);
    }

    #[test]
    fn bad_expressions_are_errors() {
        let disks = fleet();
        assert!(matching_disks("disk.size >=", &disks).is_err());
        // int × uint has no overload in Talos's environment either.
        assert!(matching_disks("disk.size >= 12 * GiB", &disks).is_err());
        assert!(matching_disks("disk.size", &disks).is_err());
    }

    #[test]
    fn globs_and_links() {
        assert!(star_glob("Samsung*", "Samsung SSD"));
        assert!(star_glob("*SSD*", "Samsung SSD 980"));
        assert!(!star_glob("a*c", "ab"));
        assert!(star_glob("*", ""));
        let disks = fleet();
        assert_eq!(
            disk_for_path("/dev/disk/by-id/nvme-Samsung_SSD_980_S1", &disks)
                .map(|d| d.dev_path.as_str()),
            Some("/dev/nvme0n1")
        );
        assert_eq!(
            disk_for_path("/dev/sda", &disks).map(|d| d.dev_path.as_str()),
            Some("/dev/sda")
        );
        assert!(disk_for_path("/dev/disk/by-id/gone", &disks).is_none());
    }

    #[test]
    fn v1_14_configs_without_flannel_run_no_cni() {
        use crate::inventory::machine_config::MachineConfig;
        let parse = |text: &str| {
            MachineConfig::parse(std::path::Path::new("n.yaml"), text.as_bytes().to_vec()).unwrap()
        };
        let base = "version: v1alpha1\nmachine: {type: worker}\ncluster: {}\n---\napiVersion: v1alpha1\nkind: KubeClusterConfig\nclusterName: c\nendpoint: https://127.0.0.1:6443\n";
        let without = parse(base);
        assert!(!without.flannel_configured);
        assert!(crate::commands::verify::runs_without_cni(&without));
        let with = parse(&format!(
            "{base}---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n"
        ));
        assert!(with.flannel_configured);
        assert!(!crate::commands::verify::runs_without_cni(&with));
        // A v1.12-shaped config without cluster.network gets Flannel by default.
        let legacy = parse(
            "version: v1alpha1\nmachine: {type: worker}\ncluster: {controlPlane: {endpoint: https://127.0.0.1:6443}}\n",
        );
        assert!(!crate::commands::verify::runs_without_cni(&legacy));
    }
}
