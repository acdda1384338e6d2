//! The simulator's own reading of Talos's install-disk rules, written from
//! the Talos source and independent of the client's `disksel`, so that a
//! disk-selection bug on either side shows up as a disagreement in tests.
//!
//! Both forms end in one CEL boolean evaluated per `Disks` resource:
//! - v1alpha1 `machine.install.diskSelector` is turned into an expression
//!   (Talos v1.12.11 pkg/machinery/config/types/v1alpha1/v1alpha1_provider.go
//!   `DiskMatchExpression`), which adds `disk.transport != ""`,
//!   `!disk.readonly` and `!disk.cdrom` to the fields given;
//! - v1.14 `UnattendedInstallConfig` `provisioning.diskSelector.match` is
//!   evaluated as written, with no implicit exclusion.
//!
//! Evaluation (Talos v1.14.0-rc.1
//! pkg/machinery/config/types/block/blockhelpers/blockhelpers.go
//! `MatchDisks`, pkg/machinery/cel/celenv/celenv.go `DiskLocator`): every
//! disk in resource-ID order, `disk` is the DiskSpec, `system_disk` is
//! false, `glob(pattern, s)` and the uint size constants KiB…EiB and kB…EB
//! exist, an evaluation error on any disk fails the whole match. The first
//! match is the target. A legacy `machine.install.disk` is used as written
//! and resolved like `filepath.EvalSymlinks` just before the installer
//! (Talos v1.12.11 internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go
//! `Install`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde::Serialize;
use yaml_serde::Value;

use crate::disksel::DiskFacts;

/// Size constants of the DiskLocator environment (all `uint`).
const UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("PB", 1_000_000_000_000_000),
    ("EB", 1_000_000_000_000_000_000),
];

/// The `disk` variable: `talos.resource.definitions.block.DiskSpec` field
/// names (protobuf names, as CEL sees the message).
#[derive(Serialize)]
struct DiskVar<'a> {
    size: u64,
    io_size: u64,
    sector_size: u64,
    readonly: bool,
    model: &'a str,
    serial: &'a str,
    modalias: &'a str,
    wwid: &'a str,
    bus_path: &'a str,
    sub_system: &'a str,
    transport: &'a str,
    rotational: bool,
    cdrom: bool,
    dev_path: &'a str,
    pretty_size: String,
    secondary_disks: Vec<String>,
    uuid: &'a str,
    symlinks: &'a [String],
    firmware_version: &'a str,
}

/// `ryanuber/go-glob` `Glob`: only `*` is special.
pub fn glob(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject == pattern;
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading = !pattern.starts_with('*');
    let trailing = !pattern.ends_with('*');
    let end = parts.len() - 1;
    let mut rest = subject;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 && leading {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
            continue;
        }
        if i == end {
            return !trailing || rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// `go-humanize` `ParseBytes`: a number (commas allowed) and an optional
/// unit, SI (`GB`, `G`) or IEC (`GiB`, `Gi`), case-insensitive.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .replace(',', "")
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    let unit = unit.trim().to_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        other => return Err(format!("unhandled size name: {other}")),
    };
    let bytes = num * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("too large: {t}"));
    }
    Ok(bytes as u64)
}

/// `InstallDiskSizeMatcher.UnmarshalYAML`: `[>=|<=|>|<|==]<size>`.
fn size_condition(text: &str) -> Result<(&'static str, u64), String> {
    let t = text.trim();
    let (op, rest) = [">=", "<=", "==", ">", "<"]
        .iter()
        .find_map(|op| t.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("==", t));
    let size = parse_bytes(rest).map_err(|e| format!("failed to parse disk size {rest}: {e}"))?;
    Ok((op, size))
}

fn quoted(s: &str) -> String {
    format!("{:?}", s)
}

/// The CEL expression Talos builds from a v1alpha1 `diskSelector` mapping.
pub fn legacy_expression(selector: &Value) -> Result<String, String> {
    let field = |k: &str| -> Option<String> {
        match selector.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut parts = Vec::new();
    if let Some(size) = field("size") {
        let (op, n) = size_condition(&size)?;
        parts.push(format!("disk.size {op} {n}u"));
    }
    for (key, attr) in [("uuid", "uuid"), ("wwid", "wwid"), ("model", "model")] {
        if let Some(p) = field(key) {
            parts.push(format!("glob({}, disk.{attr})", quoted(&p)));
        }
    }
    if field("name").is_some() {
        return Err("selector on name is not supported".to_string());
    }
    for (key, attr) in [("serial", "serial"), ("modalias", "modalias")] {
        if let Some(p) = field(key) {
            parts.push(format!("glob({}, disk.{attr})", quoted(&p)));
        }
    }
    parts.push("disk.transport != \"\"".to_string());
    if let Some(kind) = field("type") {
        parts.push(
            match kind.as_str() {
                "nvme" => "disk.transport == \"nvme\"",
                "sd" => "disk.transport == \"mmc\"",
                "hdd" => "disk.rotational",
                "ssd" => "!disk.rotational",
                other => return Err(format!("unsupported disk type {other:?}")),
            }
            .to_string(),
        );
    }
    if let Some(p) = field("busPath") {
        parts.push(format!("glob({}, disk.bus_path)", quoted(&p)));
    }
    parts.push("!disk.readonly".to_string());
    parts.push("!disk.cdrom".to_string());
    Ok(parts.join(" && "))
}

/// The CEL standard environment every evaluation runs in. Building it
/// registers the whole standard library, so it is built once per process;
/// it holds no variables (each evaluation has its own context).
static STDLIB: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// Most distinct expressions [`DiskMatcher::cached`] keeps; beyond it the
/// cache starts over (a fleet has a handful: one per selector written).
const CACHE_LIMIT: usize = 256;

type Compiled = Result<Arc<DiskMatcher>, String>;

/// Compiled expressions by their text, for the whole process.
static COMPILED: LazyLock<Mutex<HashMap<String, Compiled>>> = LazyLock::new(Mutex::default);

/// A compiled install-disk expression.
pub struct DiskMatcher {
    program: cel::Program,
    text: String,
}

impl DiskMatcher {
    /// Compiles `expr` (a syntax error is the config's fault).
    pub fn compile(expr: &str) -> Result<Self, String> {
        let program = cel::Program::compile(expr).map_err(|e| e.to_string())?;
        Ok(Self {
            program,
            text: expr.to_string(),
        })
    }

    /// [`DiskMatcher::compile`], parsed once per distinct text: every node of
    /// a fleet shares its selectors, and the answer (the program or the
    /// syntax error) depends on the text alone.
    pub fn cached(expr: &str) -> Compiled {
        let mut map = COMPILED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = map.get(expr) {
            return hit.clone();
        }
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        let compiled = Self::compile(expr).map(Arc::new);
        map.insert(expr.to_string(), compiled.clone());
        compiled
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `disk` matches; a non-boolean result or an evaluation error
    /// (no such field, mixed int/uint arithmetic, ...) is an error.
    pub fn matches(&self, disk: &DiskFacts) -> Result<bool, String> {
        let mut ctx = cel::Context::with_env(STDLIB.clone());
        for (name, value) in UNITS {
            ctx.add_variable_from_value(*name, cel::Value::UInt(*value));
        }
        ctx.add_variable_from_value("system_disk", cel::Value::Bool(false));
        let var = DiskVar {
            size: disk.size,
            io_size: 512,
            sector_size: 512,
            readonly: disk.readonly,
            model: &disk.model,
            serial: &disk.serial,
            modalias: &disk.modalias,
            wwid: &disk.wwid,
            bus_path: &disk.bus_path,
            sub_system: "/sys/class/block",
            transport: &disk.transport,
            rotational: disk.rotational,
            cdrom: disk.cdrom,
            dev_path: &disk.dev_path,
            pretty_size: String::new(),
            secondary_disks: Vec::new(),
            uuid: &disk.uuid,
            symlinks: &disk.symlinks,
            firmware_version: "",
        };
        ctx.add_variable("disk", var).map_err(|e| e.to_string())?;
        ctx.add_function("glob", |pattern: Arc<String>, subject: Arc<String>| {
            glob(&pattern, &subject)
        })
        .map_err(|e| e.to_string())?;
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("expression did not return a boolean: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Every matching disk, in resource-ID order (the ID is the kernel name,
    /// `dev_path` without `/dev/`).
    pub fn matching<'a>(&self, disks: &'a [DiskFacts]) -> Result<Vec<&'a DiskFacts>, String> {
        let mut ordered: Vec<&DiskFacts> = disks.iter().collect();
        ordered.sort_by(|a, b| disk_id(a).cmp(disk_id(b)));
        let mut out = Vec::new();
        for d in ordered {
            if self.matches(d)? {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// The `Disks` resource ID of a disk.
pub fn disk_id(d: &DiskFacts) -> &str {
    d.dev_path.trim_start_matches("/dev/")
}

/// `filepath.EvalSymlinks` on the node: the disk a path names, either its
/// device path or one of its `/dev/disk/*` links.
pub fn resolve_path<'a>(path: &str, disks: &'a [DiskFacts]) -> Option<&'a DiskFacts> {
    disks
        .iter()
        .find(|d| d.dev_path == path || d.symlinks.iter().any(|l| l == path))
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

    #[test]
    fn go_glob_rules() {
        assert!(glob("Samsung*", "Samsung SSD 980"));
        assert!(!glob("Samsung*", "WD Blue"));
        assert!(glob("*SSD*", "Samsung SSD 980"));
        assert!(glob("a*c", "abc") && !glob("a*c", "abd"));
        assert!(glob("*", "") && glob("", "") && !glob("", "x"));
        // `?` and `[` are literal for go-glob.
        assert!(!glob("sd?", "sda") && glob("sd?", "sd?"));
    }

    #[test]
    fn humanized_sizes() {
        assert_eq!(parse_bytes("400GB").unwrap(), 400_000_000_000);
        assert_eq!(parse_bytes("1 TiB").unwrap(), 1 << 40);
        assert_eq!(parse_bytes("1.5gb").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("1,000").unwrap(), 1000);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(size_condition(">= 400GB").unwrap(), (">=", 400_000_000_000));
        assert_eq!(size_condition("4GB").unwrap(), ("==", 4_000_000_000));
    }

    #[test]
    fn legacy_selectors_become_talos_expressions() {
        let sel: Value =
            yaml_serde::from_str("size: '>= 400GB'\nmodel: Samsung*\ntype: ssd\n").unwrap();
        assert_eq!(
            legacy_expression(&sel).unwrap(),
            "disk.size >= 400000000000u && glob(\"Samsung*\", disk.model) && disk.transport != \"\" && !disk.rotational && !disk.readonly && !disk.cdrom"
        );
        let name: Value = yaml_serde::from_str("name: foo\n").unwrap();
        assert!(legacy_expression(&name).unwrap_err().contains("name"));
        let bad: Value = yaml_serde::from_str("type: floppy\n").unwrap();
        assert!(legacy_expression(&bad).is_err());
    }

    #[test]
    fn legacy_rules_exclude_cdrom_readonly_and_transportless_disks() {
        let mut cd = disk("/dev/sr0", 4_000_000_000, "sata");
        cd.cdrom = true;
        let mut ro = disk("/dev/sdb", 4_000_000_000, "sata");
        ro.readonly = true;
        let dm = disk("/dev/dm-0", 4_000_000_000, "");
        let ok = disk("/dev/sdc", 4_000_000_000, "sata");
        let disks = vec![cd, ro, dm, ok];
        let sel: Value = yaml_serde::from_str("size: 4GB\n").unwrap();
        let m = DiskMatcher::compile(&legacy_expression(&sel).unwrap()).unwrap();
        let found: Vec<&str> = m
            .matching(&disks)
            .unwrap()
            .iter()
            .map(|d| d.dev_path.as_str())
            .collect();
        assert_eq!(found, ["/dev/sdc"]);
    }

    #[test]
    fn cel_selectors_as_talos_writes_them() {
        let mut nvme = disk("/dev/nvme0n1", 512_000_000_000, "nvme");
        nvme.symlinks = vec!["/dev/disk/by-id/md-name-talos:boot".into()];
        let mut cd = disk("/dev/sr0", 700_000_000, "sata");
        cd.cdrom = true;
        let disks = vec![disk("/dev/vda", 20 << 30, "virtio"), nvme, cd];
        let names = |expr: &str| -> Vec<String> {
            DiskMatcher::compile(expr)
                .unwrap()
                .matching(&disks)
                .unwrap()
                .iter()
                .map(|d| d.dev_path.clone())
                .collect()
        };
        // Talos v1.14 stability testdata and hack/test/patches/md-boot-array.yaml.
        assert_eq!(names(r#"disk.dev_path == "/dev/vda""#), ["/dev/vda"]);
        assert_eq!(
            names(r#""/dev/disk/by-id/md-name-talos:boot" in disk.symlinks"#),
            ["/dev/nvme0n1"]
        );
        assert_eq!(names(r#"disk.transport == "nvme""#), ["/dev/nvme0n1"]);
        // ID order (nvme0n1 < sr0 < vda), no implicit cdrom exclusion.
        assert_eq!(
            names("disk.size >= 100u * MiB"),
            ["/dev/nvme0n1", "/dev/sr0", "/dev/vda"]
        );
        assert_eq!(names("disk.cdrom"), ["/dev/sr0"]);
        assert!(names("disk.size > 10u * TB").is_empty());
        assert_eq!(names(r#"glob("/dev/v*", disk.dev_path)"#), ["/dev/vda"]);
        assert_eq!(names("!system_disk && disk.rotational == false").len(), 3);
    }

    #[test]
    fn cel_errors_are_errors() {
        assert!(DiskMatcher::compile("disk.size >=").is_err());
        let m = DiskMatcher::compile("disk.size").unwrap();
        assert!(m.matches(&disk("/dev/sda", 1, "sata")).is_err());
        // Talos's environment has no int × uint overload: `12 * GiB` is an
        // error there, so it must not quietly match here.
        let m = DiskMatcher::compile("disk.size >= 12 * GiB").unwrap();
        assert!(m.matches(&disk("/dev/sda", 20 << 30, "sata")).is_err());
        let m = DiskMatcher::compile("disk.no_such_field == 1").unwrap();
        assert!(m.matches(&disk("/dev/sda", 1, "sata")).is_err());
    }

    #[test]
    fn a_cached_program_answers_as_a_fresh_compile_does() {
        let disks = vec![
            disk("/dev/vda", 20 << 30, "virtio"),
            disk("/dev/nvme0n1", 512_000_000_000, "nvme"),
        ];
        let answer = |m: &DiskMatcher| -> Result<Vec<String>, String> {
            m.matching(&disks)
                .map(|f| f.iter().map(|d| d.dev_path.clone()).collect())
        };
        for expr in [
            r#"disk.transport == "nvme""#,
            r#"glob("/dev/v*", disk.dev_path)"#,
            "disk.size > 10u * TB",
            "disk.size >= 12 * GiB",
            "disk.no_such_field == 1",
        ] {
            let fresh = answer(&DiskMatcher::compile(expr).unwrap());
            for _ in 0..2 {
                assert_eq!(answer(&DiskMatcher::cached(expr).unwrap()), fresh, "{expr}");
            }
        }
        assert_eq!(
            answer(&DiskMatcher::cached(r#"disk.transport == "nvme""#).unwrap()).unwrap(),
            ["/dev/nvme0n1"]
        );
        // A syntax error is the same error, from the cache too.
        let bad = "disk.size >=";
        let fresh = DiskMatcher::compile(bad).err().unwrap();
        assert_eq!(DiskMatcher::cached(bad).err().unwrap(), fresh);
        assert_eq!(DiskMatcher::cached(bad).err().unwrap(), fresh);
        // Compiled once: the second lookup is the same program.
        let a = DiskMatcher::cached("disk.cdrom").unwrap();
        let b = DiskMatcher::cached("disk.cdrom").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.text(), "disk.cdrom");
    }

    #[test]
    fn paths_resolve_through_symlinks() {
        let mut d = disk("/dev/sda", 1, "sata");
        d.symlinks = vec!["/dev/disk/by-id/ata-X_1".into()];
        let disks = vec![d];
        assert_eq!(
            resolve_path("/dev/disk/by-id/ata-X_1", &disks).map(|d| d.dev_path.as_str()),
            Some("/dev/sda")
        );
        assert!(resolve_path("/dev/disk/by-id/ata-Y", &disks).is_none());
    }
}
