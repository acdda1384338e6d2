//! Talos install-disk selection rules, evaluated locally.
//!
//! `machine.install.diskSelector` is compiled by Talos into a CEL expression
//! over `Disks.block.talos.dev` resources. This module reproduces those rules
//! so that preflight can say, before anything is written, which disk a node
//! would install to; the simulator uses the same rules as its server side.

use serde::{Deserialize, Serialize};

/// `machine.install.diskSelector` as written in a machine config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiskSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_path: Option<String>,
}

/// One disk as Talos reports it in `Disks.block.talos.dev` (the fields the
/// selector rules read). Deserializes from the resource's YAML spec, whose
/// keys are these snake_case names; a key Talos leaves out is its zero value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskFacts {
    /// Device path, e.g. `/dev/sda`.
    pub dev_path: String,
    pub size: u64,
    pub model: String,
    pub serial: String,
    pub modalias: String,
    pub uuid: String,
    pub wwid: String,
    pub bus_path: String,
    pub transport: String,
    pub rotational: bool,
    pub readonly: bool,
    pub cdrom: bool,
    /// Every `/dev/disk/*` link to the device (`symlinks`, field 18).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<String>,
}

/// A `Disks.block.talos.dev` spec as it arrives in protobuf form.
impl From<crate::talos::resource::definitions::DiskSpec> for DiskFacts {
    fn from(d: crate::talos::resource::definitions::DiskSpec) -> Self {
        DiskFacts {
            dev_path: d.dev_path,
            size: d.size,
            model: d.model,
            serial: d.serial,
            modalias: d.modalias,
            uuid: d.uuid,
            wwid: d.wwid,
            bus_path: d.bus_path,
            transport: d.transport,
            rotational: d.rotational,
            readonly: d.readonly,
            cdrom: d.cdrom,
            symlinks: d.symlinks,
        }
    }
}

use thiserror::Error;

/// Why a selector could not be evaluated. Each variant names the field at
/// fault so callers can point the operator at `machine.install.diskSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiskSelError {
    /// `size` is not `[op]<humanized size>`.
    #[error("diskSelector.size {input:?}: {reason}")]
    BadSize { input: String, reason: String },
    /// `name` was set; Talos refuses it.
    #[error("selector on name is not supported")]
    NameNotSupported,
    /// `type` is not one of ssd, hdd, nvme, sd.
    #[error("unsupported disk type {0:?}")]
    UnknownType(String),
}

/// Comparison operator of a `size` selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeOp {
    Eq,
    Ge,
    Le,
    Gt,
    Lt,
}

impl SizeOp {
    /// Applies `disk_size <op> wanted`.
    pub fn holds(self, disk_size: u64, wanted: u64) -> bool {
        match self {
            SizeOp::Eq => disk_size == wanted,
            SizeOp::Ge => disk_size >= wanted,
            SizeOp::Le => disk_size <= wanted,
            SizeOp::Gt => disk_size > wanted,
            SizeOp::Lt => disk_size < wanted,
        }
    }

    /// The operator as written in a selector and in Talos's CEL rendering.
    pub fn as_str(self) -> &'static str {
        match self {
            SizeOp::Eq => "==",
            SizeOp::Ge => ">=",
            SizeOp::Le => "<=",
            SizeOp::Gt => ">",
            SizeOp::Lt => "<",
        }
    }
}

/// Parses a `size` selector such as `4GB`, `> 1TB`, `<= 256GB` or `>=400GB`.
///
/// Talos trims the text, takes an optional leading operator (`>=`, `<=`,
/// `>`, `<`, `==`; none means `==`), then hands the trimmed rest to
/// go-humanize's `ParseBytes`: digits, `.` and `,` form the number, and the
/// case-insensitive unit after it (spaces allowed) picks the multiplier,
/// decimal (`kB`, `MB`, ...) or binary (`KiB`, `MiB`, ...).
pub fn parse_size_expr(s: &str) -> Result<(SizeOp, u64), DiskSelError> {
    let bad = |reason: &str| DiskSelError::BadSize {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    let text = s.trim();
    // Longest operators first, so ">=" is not read as ">" followed by "=".
    let (op, rest) = [
        (">=", SizeOp::Ge),
        ("<=", SizeOp::Le),
        ("==", SizeOp::Eq),
        (">", SizeOp::Gt),
        ("<", SizeOp::Lt),
    ]
    .iter()
    .find_map(|(tok, op)| text.strip_prefix(tok).map(|rest| (*op, rest)))
    .unwrap_or((SizeOp::Eq, text));
    let size = parse_humanized_bytes(rest.trim()).map_err(|reason| bad(&reason))?;
    Ok((op, size))
}

/// go-humanize `ParseBytes` semantics (see [`parse_size_expr`]).
fn parse_humanized_bytes(s: &str) -> Result<u64, String> {
    let digits_end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(s.len(), |(i, _)| i);
    let number: String = s[..digits_end].chars().filter(|c| *c != ',').collect();
    if number.is_empty() {
        return Err(format!("no number in {s:?}"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid number {number:?}"))?;
    let unit = s[digits_end..].trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1_000_000_000_000_000,
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1_000_000_000_000_000_000,
        "ei" | "eib" => 1 << 60,
        other => return Err(format!("unhandled size name: {other}")),
    };
    let bytes = value * multiplier as f64;
    if bytes >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    // Truncation toward zero, as Go's float-to-uint conversion does.
    Ok(bytes as u64)
}

/// Talos's `glob()` for disk selectors (ryanuber/go-glob): `*` matches any
/// run of characters, `/` included; every other character, `?` and `[`
/// too, is literal. A pattern without `*` must equal the subject.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == subject;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Talos always adds these conditions: a disk with an empty transport
/// (device-mapper, loop, md...), a read-only disk or a CD-ROM never matches.
fn eligible(d: &DiskFacts) -> bool {
    !d.transport.is_empty() && !d.readonly && !d.cdrom
}

/// A selector field counts only when it is set to a non-empty string, as in
/// Talos where the Go fields are plain strings.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

/// Checks the selector itself (independent of any disk): `name` is refused,
/// `type` must be known and `size` must parse.
fn compile(sel: &DiskSelector) -> Result<Option<(SizeOp, u64)>, DiskSelError> {
    if given(&sel.name).is_some() {
        return Err(DiskSelError::NameNotSupported);
    }
    if let Some(t) = given(&sel.disk_type)
        && !matches!(t, "nvme" | "sd" | "hdd" | "ssd")
    {
        return Err(DiskSelError::UnknownType(t.to_string()));
    }
    sel.size.as_deref().map(parse_size_expr).transpose()
}

/// Whether disk `d` satisfies every field of `sel` (ANDed) and the implicit
/// filters. Errors describe a selector Talos would reject.
pub fn disk_matches(sel: &DiskSelector, d: &DiskFacts) -> Result<bool, DiskSelError> {
    let size = compile(sel)?;
    Ok(matches_compiled(sel, size, d))
}

fn matches_compiled(sel: &DiskSelector, size: Option<(SizeOp, u64)>, d: &DiskFacts) -> bool {
    if !eligible(d) {
        return false;
    }
    if let Some((op, wanted)) = size
        && !op.holds(d.size, wanted)
    {
        return false;
    }
    let globs = [
        (&sel.uuid, &d.uuid),
        (&sel.wwid, &d.wwid),
        (&sel.model, &d.model),
        (&sel.serial, &d.serial),
        (&sel.modalias, &d.modalias),
        (&sel.bus_path, &d.bus_path),
    ];
    if globs
        .iter()
        .any(|(pat, value)| given(pat).is_some_and(|p| !glob_match(p, value)))
    {
        return false;
    }
    // `ssd` is "not rotational", so it deliberately matches NVMe disks too.
    match given(&sel.disk_type) {
        Some("nvme") => d.transport == "nvme",
        Some("sd") => d.transport == "mmc",
        Some("hdd") => d.rotational,
        Some("ssd") => !d.rotational,
        _ => true,
    }
}

/// The disks matching `sel`, in input order.
pub fn select_disks<'a>(
    sel: &DiskSelector,
    disks: &'a [DiskFacts],
) -> Result<Vec<&'a DiskFacts>, DiskSelError> {
    let size = compile(sel)?;
    Ok(disks
        .iter()
        .filter(|d| matches_compiled(sel, size, d))
        .collect())
}

/// Whether `machine.install.disk` (a device path) names one of `disks`.
pub fn install_disk_exists(path: &str, disks: &[DiskFacts]) -> bool {
    disks.iter().any(|d| d.dev_path == path)
}

/// Renders the selector the way Talos prints its compiled CEL expression
/// (e.g. in "no disks matched the expression: ..."), on one line.
pub fn cel_expression(sel: &DiskSelector) -> Result<String, DiskSelError> {
    let size = compile(sel)?;
    let mut terms = Vec::new();
    if let Some((op, n)) = size {
        terms.push(format!("disk.size {} {n}u", op.as_str()));
    }
    for (pat, field) in [
        (&sel.uuid, "uuid"),
        (&sel.wwid, "wwid"),
        (&sel.model, "model"),
        (&sel.serial, "serial"),
        (&sel.modalias, "modalias"),
    ] {
        if let Some(p) = given(pat) {
            terms.push(format!("glob({p:?}, disk.{field})"));
        }
    }
    terms.push("disk.transport != \"\"".to_string());
    match given(&sel.disk_type) {
        Some("nvme") => terms.push("disk.transport == \"nvme\"".to_string()),
        Some("sd") => terms.push("disk.transport == \"mmc\"".to_string()),
        Some("hdd") => terms.push("disk.rotational".to_string()),
        Some("ssd") => terms.push("!disk.rotational".to_string()),
        _ => {}
    }
    if let Some(p) = given(&sel.bus_path) {
        terms.push(format!("glob({p:?}, disk.bus_path)"));
    }
    terms.push("!disk.readonly".to_string());
    terms.push("!disk.cdrom".to_string());
    Ok(terms.join(" && "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn disk(dev: &str, size: u64, transport: &str, rotational: bool) -> DiskFacts {
        DiskFacts {
            dev_path: dev.to_string(),
            size,
            transport: transport.to_string(),
            rotational,
            ..DiskFacts::default()
        }
    }

    fn fleet_disks() -> Vec<DiskFacts> {
        vec![
            DiskFacts {
                model: "Samsung SSD 980".into(),
                serial: "S1".into(),
                wwid: "eui.0025".into(),
                bus_path: "/pci0000:00/0000:00:1d.0/nvme".into(),
                ..disk("/dev/nvme0n1", 512_000_000_000, "nvme", false)
            },
            DiskFacts {
                model: "WDC WD20".into(),
                serial: "WD-1".into(),
                ..disk("/dev/sda", 2_000_000_000_000, "sata", true)
            },
            disk("/dev/sdb", 256_000_000_000, "sata", false),
            disk("/dev/mmcblk0", 64_000_000_000, "mmc", false),
            DiskFacts {
                cdrom: true,
                readonly: true,
                ..disk("/dev/sr0", 1_000_000, "sata", false)
            },
            disk("/dev/loop0", 512_000_000_000, "", false),
            DiskFacts {
                readonly: true,
                ..disk("/dev/sdc", 512_000_000_000, "usb", false)
            },
        ]
    }

    fn names(sel: &DiskSelector) -> Vec<String> {
        select_disks(sel, &fleet_disks())
            .unwrap()
            .into_iter()
            .map(|d| d.dev_path.clone())
            .collect()
    }

    #[test]
    fn size_expressions_parse_like_talos() {
        assert_eq!(parse_size_expr("4GB").unwrap(), (SizeOp::Eq, 4_000_000_000));
        assert_eq!(
            parse_size_expr("> 1TB").unwrap(),
            (SizeOp::Gt, 1_000_000_000_000)
        );
        assert_eq!(
            parse_size_expr("<= 256GB").unwrap(),
            (SizeOp::Le, 256_000_000_000)
        );
        assert_eq!(
            parse_size_expr(">=400GB").unwrap(),
            (SizeOp::Ge, 400_000_000_000)
        );
        assert_eq!(parse_size_expr("== 1 GiB").unwrap(), (SizeOp::Eq, 1 << 30));
        assert_eq!(parse_size_expr("<10kib").unwrap(), (SizeOp::Lt, 10 * 1024));
        assert_eq!(
            parse_size_expr("1.5TB").unwrap(),
            (SizeOp::Eq, 1_500_000_000_000)
        );
        assert_eq!(parse_size_expr("  2tib ").unwrap(), (SizeOp::Eq, 2 << 40));
        assert_eq!(
            parse_size_expr("1,000 MB").unwrap(),
            (SizeOp::Eq, 1_000_000_000)
        );
        assert_eq!(parse_size_expr("512").unwrap(), (SizeOp::Eq, 512));
        assert_eq!(parse_size_expr("3k").unwrap(), (SizeOp::Eq, 3000));
        assert_eq!(
            parse_size_expr("1PB").unwrap(),
            (SizeOp::Eq, 1_000_000_000_000_000)
        );
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_input_named() {
        for bad in [
            "",
            "big",
            "=4GB",
            "=> 1TB",
            "<>4",
            "4 parsecs",
            "GB",
            ">= ",
            "1.2.3GB",
        ] {
            let err = parse_size_expr(bad).unwrap_err();
            assert!(
                matches!(&err, DiskSelError::BadSize { input, .. } if input == bad),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn glob_only_star_is_special() {
        assert!(glob_match("Samsung*", "Samsung SSD"));
        assert!(glob_match("*SSD*", "Samsung SSD 980"));
        assert!(glob_match(
            "/pci-0000:00:1f.2/*",
            "/pci-0000:00:1f.2/ata1/host0"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("a**b", "ab"));
        assert!(!glob_match("WDC*", "xWDC"));
        // `?` and `[...]` are literal characters in Talos's glob.
        assert!(!glob_match("sd?", "sda"));
        assert!(glob_match("sd?", "sd?"));
        assert!(!glob_match("sd[a-z]", "sda"));
        // `*` crosses `/`.
        assert!(glob_match("/pci*/nvme", "/pci0000:00/0000:00:1d.0/nvme"));
    }

    #[test]
    fn selector_fields_are_anded_and_typed() {
        let sel = |f: &dyn Fn(&mut DiskSelector)| {
            let mut s = DiskSelector::default();
            f(&mut s);
            s
        };
        assert_eq!(
            names(&sel(&|_| {})),
            ["/dev/nvme0n1", "/dev/sda", "/dev/sdb", "/dev/mmcblk0"]
        );
        assert_eq!(
            names(&sel(&|s| s.disk_type = Some("nvme".into()))),
            ["/dev/nvme0n1"]
        );
        assert_eq!(
            names(&sel(&|s| s.disk_type = Some("hdd".into()))),
            ["/dev/sda"]
        );
        assert_eq!(
            names(&sel(&|s| s.disk_type = Some("sd".into()))),
            ["/dev/mmcblk0"]
        );
        // ssd = not rotational, so NVMe and eMMC match too.
        assert_eq!(
            names(&sel(&|s| s.disk_type = Some("ssd".into()))),
            ["/dev/nvme0n1", "/dev/sdb", "/dev/mmcblk0"]
        );
        assert_eq!(
            names(&sel(&|s| {
                s.size = Some(">= 500GB".into());
                s.disk_type = Some("ssd".into());
            })),
            ["/dev/nvme0n1"]
        );
        assert_eq!(
            names(&sel(&|s| s.model = Some("WDC*".into()))),
            ["/dev/sda"]
        );
        assert_eq!(
            names(&sel(&|s| s.serial = Some("S1".into()))),
            ["/dev/nvme0n1"]
        );
        assert_eq!(
            names(&sel(&|s| s.wwid = Some("eui.*".into()))),
            ["/dev/nvme0n1"]
        );
        assert_eq!(
            names(&sel(&|s| s.bus_path = Some("/pci0000:00/*".into()))),
            ["/dev/nvme0n1"]
        );
        assert!(
            names(&sel(&|s| {
                s.model = Some("WDC*".into());
                s.disk_type = Some("ssd".into());
            }))
            .is_empty()
        );
        // Empty strings count as unset.
        assert_eq!(names(&sel(&|s| s.model = Some(String::new()))).len(), 4);
    }

    #[test]
    fn name_and_unknown_type_are_errors() {
        let by_name = DiskSelector {
            name: Some("sda".into()),
            ..DiskSelector::default()
        };
        assert_eq!(
            select_disks(&by_name, &fleet_disks())
                .unwrap_err()
                .to_string(),
            "selector on name is not supported"
        );
        let floppy = DiskSelector {
            disk_type: Some("floppy".into()),
            ..DiskSelector::default()
        };
        assert_eq!(
            disk_matches(&floppy, &fleet_disks()[0]).unwrap_err(),
            DiskSelError::UnknownType("floppy".into())
        );
    }

    #[test]
    fn install_disk_path_lookup() {
        assert!(install_disk_exists("/dev/sda", &fleet_disks()));
        assert!(!install_disk_exists("/dev/sdz", &fleet_disks()));
    }

    #[test]
    fn cel_rendering_matches_talos_order() {
        let sel = DiskSelector {
            size: Some("<= 256KiB".into()),
            modalias: Some("pci:1234:5678*".into()),
            disk_type: Some("hdd".into()),
            ..DiskSelector::default()
        };
        assert_eq!(
            cel_expression(&sel).unwrap(),
            "disk.size <= 262144u && glob(\"pci:1234:5678*\", disk.modalias) && disk.transport != \"\" && disk.rotational && !disk.readonly && !disk.cdrom"
        );
    }

    fn arb_disk() -> impl Strategy<Value = DiskFacts> {
        (
            0u64..4_000_000_000_000,
            prop::sample::select(vec!["", "nvme", "sata", "mmc", "usb"]),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            "[a-zA-Z0-9 ]{0,8}",
        )
            .prop_map(
                |(size, transport, rotational, readonly, cdrom, model)| DiskFacts {
                    dev_path: format!("/dev/{model}"),
                    size,
                    transport: transport.to_string(),
                    rotational,
                    readonly,
                    cdrom,
                    model,
                    ..DiskFacts::default()
                },
            )
    }

    fn arb_selector() -> impl Strategy<Value = DiskSelector> {
        (
            prop::option::of((
                prop::sample::select(vec!["", ">", "<", ">=", "<=", "=="]),
                0u64..4000,
            )),
            prop::option::of(prop::sample::select(vec!["nvme", "sd", "hdd", "ssd"])),
            prop::option::of("[a-zA-Z*]{0,4}"),
        )
            .prop_map(|(size, t, model)| DiskSelector {
                size: size.map(|(op, gb)| format!("{op}{gb}GB")),
                disk_type: t.map(str::to_string),
                model,
                ..DiskSelector::default()
            })
    }

    proptest! {
        #[test]
        fn size_ops_agree_with_integer_comparison(n in 0u64..1_000_000, d in 0u64..1_000_000_000_000) {
            let want = n * 1_000_000;
            for (text, cmp) in [
                (format!("{n}MB"), d == want),
                (format!(">{n}MB"), d > want),
                (format!("< {n} MB"), d < want),
                (format!(">= {n}mb"), d >= want),
                (format!("<={n}M"), d <= want),
                (format!("== {n}MB"), d == want),
            ] {
                let (op, size) = parse_size_expr(&text).unwrap();
                prop_assert_eq!(size, want);
                prop_assert_eq!(op.holds(d, size), cmp);
            }
        }

        #[test]
        fn implicit_exclusions_always_hold(sel in arb_selector(), disks in prop::collection::vec(arb_disk(), 0..8)) {
            for d in select_disks(&sel, &disks).unwrap() {
                prop_assert!(!d.transport.is_empty() && !d.readonly && !d.cdrom);
            }
        }

        #[test]
        fn select_is_a_filter(sel in arb_selector(), disks in prop::collection::vec(arb_disk(), 0..8)) {
            let picked = select_disks(&sel, &disks).unwrap();
            let expected: Vec<&DiskFacts> = disks.iter().filter(|d| disk_matches(&sel, d).unwrap()).collect();
            prop_assert_eq!(picked, expected);
        }

        #[test]
        fn glob_without_star_is_equality(p in "[a-z?\\[\\]]{0,6}", s in "[a-z?\\[\\]]{0,6}") {
            prop_assert_eq!(glob_match(&p, &s), p == s);
        }

        #[test]
        fn star_glob_matches_its_own_pieces(a in "[a-z/]{0,5}", b in "[a-z/]{0,5}", c in "[a-z/]{0,5}") {
            let subject = format!("{a}{b}{c}");
            let pattern = format!("{a}*{c}");
            prop_assert!(glob_match(&pattern, &subject));
        }
    }
}
