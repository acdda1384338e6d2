//! The redacted per-document diff `apply --dry-run` shows: what would change
//! between the config a node runs and the one talstrap would send, per
//! document (kind and name), setting by setting.
//!
//! Secrets never leave this module in clear: a setting whose key names a
//! secret (keys, certificates, tokens, passwords, encryption secrets), or
//! whose value holds PEM, a long base64 run or a Talos token, is shown only
//! as changed / added / removed. Each changed setting is marked when Talos
//! reboots to apply it (its own `CanApplyImmediate` rule).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use yaml_serde::Value;

/// What a document or a setting went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    fn sign(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Changed => '~',
        }
    }
}

/// One changed setting, already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DiffLine {
    pub change: Change,
    /// `machine.install.extraKernelArgs` (map keys that look secret are redacted).
    pub path: String,
    /// `"+ machine.env.A: 1"`, `"~ machine.ca.key: <redacted> (changed)"`.
    pub text: String,
    /// The value is a secret and is not shown.
    pub redacted: bool,
    /// Talos (v1.12/v1.13 AUTO) reboots the node to apply this setting.
    pub reboot: bool,
}

/// The changes of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocDiff {
    /// `v1alpha1`, or `Kind` / `Kind name` for the other documents.
    pub document: String,
    pub change: Change,
    pub lines: Vec<DiffLine>,
}

/// The whole diff of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConfigDiff {
    pub documents: Vec<DocDiff>,
}

impl ConfigDiff {
    /// Some setting needs a reboot (by Talos's rule for AUTO).
    pub(crate) fn needs_reboot(&self) -> bool {
        self.documents
            .iter()
            .flat_map(|d| &d.lines)
            .any(|l| l.reboot)
    }

    pub(crate) fn changed_settings(&self) -> usize {
        self.documents.iter().map(|d| d.lines.len()).sum()
    }

    /// Human lines: one header per document, then its settings.
    pub(crate) fn render(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in &self.documents {
            out.push(format!("  {} {}", d.change.sign(), d.document));
            for l in &d.lines {
                let mark = if l.reboot { "  [reboot]" } else { "" };
                out.push(format!("      {}{mark}", l.text));
            }
        }
        out
    }
}

/// Diff two multi-document configs. Errors when one side is not YAML.
pub(crate) fn config_diff(current: &[u8], wanted: &[u8]) -> Result<ConfigDiff, String> {
    let old = documents(current)?;
    let new = documents(wanted)?;
    let mut out = ConfigDiff::default();
    for (id, new_doc) in &new {
        let v1alpha1 = id == V1ALPHA1;
        match old.get(id) {
            None => out.documents.push(DocDiff {
                document: id.clone(),
                change: Change::Added,
                lines: leaves_as(Change::Added, new_doc, v1alpha1 && !old.is_empty()),
            }),
            Some(old_doc) if old_doc != new_doc => out.documents.push(DocDiff {
                document: id.clone(),
                change: Change::Changed,
                lines: changed_leaves(old_doc, new_doc, v1alpha1),
            }),
            Some(_) => {}
        }
    }
    for (id, old_doc) in &old {
        if !new.contains_key(id) {
            out.documents.push(DocDiff {
                document: id.clone(),
                change: Change::Removed,
                lines: leaves_as(Change::Removed, old_doc, id == V1ALPHA1),
            });
        }
    }
    Ok(out)
}

const V1ALPHA1: &str = "v1alpha1";

/// Documents by identity: `v1alpha1`, `Kind`, or `Kind name`.
fn documents(raw: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "the config is not UTF-8".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = BTreeMap::new();
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("document {} is not valid YAML: {e}", i + 1))?;
        if v.is_null() {
            continue;
        }
        let kind = v.get("kind").and_then(Value::as_str);
        let id = match kind {
            None => V1ALPHA1.to_string(),
            Some(k) => match v.get("name").and_then(Value::as_str) {
                Some(n) => format!("{} {}", safe_segment(k), safe_segment(n)),
                None => safe_segment(k),
            },
        };
        out.insert(id, v);
    }
    Ok(out)
}

/// Scalar settings of a document, flattened: lists of scalars stay whole.
fn flatten(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = match k {
                    Value::String(s) => safe_segment(s),
                    other => safe_segment(&scalar_text(other)),
                };
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, &p, out);
            }
        }
        Value::Sequence(s) if !s.is_empty() && !s.iter().all(is_scalar) => {
            for (i, child) in s.iter().enumerate() {
                flatten(child, &format!("{path}[{i}]"), out);
            }
        }
        Value::Tagged(t) => flatten(&t.value, path, out),
        other => {
            out.insert(path.to_string(), other.clone());
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_))
}

fn leaves(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten(v, "", &mut out);
    out
}

fn leaves_as(change: Change, doc: &Value, reboot_rule: bool) -> Vec<DiffLine> {
    leaves(doc)
        .into_iter()
        .map(|(path, v)| line(change, path, None, Some(&v), reboot_rule))
        .collect()
}

fn changed_leaves(old: &Value, new: &Value, v1alpha1: bool) -> Vec<DiffLine> {
    let (a, b) = (leaves(old), leaves(new));
    let mut out = Vec::new();
    for (path, nv) in &b {
        match a.get(path) {
            None => out.push(line(Change::Added, path.clone(), None, Some(nv), v1alpha1)),
            Some(ov) if ov != nv => out.push(line(
                Change::Changed,
                path.clone(),
                Some(ov),
                Some(nv),
                v1alpha1,
            )),
            Some(_) => {}
        }
    }
    for (path, ov) in &a {
        if !b.contains_key(path) {
            out.push(line(
                Change::Removed,
                path.clone(),
                Some(ov),
                None,
                v1alpha1,
            ));
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

fn line(
    change: Change,
    path: String,
    old: Option<&Value>,
    new: Option<&Value>,
    reboot_rule: bool,
) -> DiffLine {
    let secret = secret_key(&path)
        || old.is_some_and(secret_value)
        || new.is_some_and(secret_value)
        || path.contains(REDACTED);
    let shown = |v: &Value| {
        if secret {
            REDACTED.to_string()
        } else {
            one_line(&scalar_text(v))
        }
    };
    let text = match (change, old, new) {
        (Change::Changed, _, _) if secret => format!("~ {path}: {REDACTED} (changed)"),
        (Change::Changed, Some(o), Some(n)) => format!("~ {path}: {} → {}", shown(o), shown(n)),
        (Change::Added, _, Some(n)) => format!("+ {path}: {}", shown(n)),
        (_, Some(o), _) => format!("- {path}: {}", shown(o)),
        _ => format!("{} {path}", change.sign()),
    };
    DiffLine {
        reboot: reboot_rule && needs_reboot(&path),
        change,
        path,
        text,
        redacted: secret,
    }
}

const REDACTED: &str = "<redacted>";

/// A map key as a path segment; one that looks like a secret is replaced.
fn safe_segment(key: &str) -> String {
    if looks_secret(key) {
        REDACTED.to_string()
    } else {
        one_line(key)
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 120 {
        let cut: String = flat.chars().take(117).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(s) => format!(
            "[{}]",
            s.iter().map(scalar_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Last path segments that name a secret (keys, certificates, tokens,
/// passwords, encryption secrets, registry auth, WireGuard keys).
fn secret_key(path: &str) -> bool {
    path.split(['.', '['])
        .map(|s| s.trim_end_matches(']').to_ascii_lowercase())
        .any(|seg| {
            matches!(
                seg.as_str(),
                "key" | "crt" | "cert" | "ca" | "token" | "auth" | "secret" | "password"
            ) || seg.ends_with("key")
                || seg.contains("secret")
                || seg.contains("token")
                || seg.contains("password")
                || seg.contains("passphrase")
                || seg.contains("credential")
        })
}

fn secret_value(v: &Value) -> bool {
    match v {
        Value::String(s) => looks_secret(s),
        Value::Sequence(s) => s.iter().any(secret_value),
        Value::Mapping(m) => m.iter().any(|(k, v)| secret_value(k) || secret_value(v)),
        Value::Tagged(t) => secret_value(&t.value),
        _ => false,
    }
}

/// PEM, a base64 run of 32+ characters, or a Talos/kubeadm token
/// (`[a-z0-9]{6}.[a-z0-9]{16}`) anywhere in the text.
pub(crate) fn looks_secret(s: &str) -> bool {
    if s.contains("-----BEGIN") || s.contains("PRIVATE KEY") {
        return true;
    }
    let b = s.as_bytes();
    b.split(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-')))
        .any(base64_like)
        || has_token(b)
}

/// A run of 32+ base64 characters. Paths and names (`/dev/disk/by-id/…`)
/// are told apart by their many separators; random base64 has few. A `+`
/// or trailing `=` is base64's alone (no path or name has them), so such a
/// run counts whatever its separators.
fn base64_like(run: &[u8]) -> bool {
    let separators = run
        .iter()
        .filter(|&&c| matches!(c, b'/' | b'_' | b'-'))
        .count();
    run.len() >= 32
        && (run.contains(&b'+') || run.ends_with(b"=") || separators * 100 <= run.len() * 15)
}

fn has_token(b: &[u8]) -> bool {
    let tok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (0..b.len()).any(|i| {
        i + 23 <= b.len()
            && (i == 0 || !tok(b[i - 1]))
            && b[i..i + 6].iter().all(|&c| tok(c))
            && b[i + 6] == b'.'
            && b[i + 7..i + 23].iter().all(|&c| tok(c))
    })
}

/// Subtrees of `.machine` Talos applies without a reboot: the list in
/// `CanApplyImmediate` (Talos v1.12.11
/// internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go; the same
/// in v1.13.9). `.debug` and `.cluster` are live too, as are all documents
/// other than v1alpha1. v1.14 dropped the check: AUTO never reboots there,
/// and these settings wait for the next reboot instead.
const LIVE_MACHINE_KEYS: &[&str] = &[
    "ca",
    "acceptedCAs",
    "time",
    "certSANs",
    "install",
    "network",
    "sysfs",
    "sysctls",
    "logging",
    "controlPlane",
    "kubelet",
    "kernel",
    "registries",
    "pods",
    "seccompProfiles",
    "nodeAnnotations",
    "nodeLabels",
    "nodeTaints",
];

const LIVE_FEATURE_KEYS: &[&str] = &[
    "kubernetesTalosAPIAccess",
    "kubePrism",
    "hostDNS",
    "imageCache",
    "nodeAddressSortAlgorithm",
];

/// Whether changing this v1alpha1 setting makes Talos reboot (AUTO on
/// v1.12/v1.13).
pub(crate) fn needs_reboot(path: &str) -> bool {
    let mut segs = path.split('.');
    match segs.next().map(|s| s.split('[').next().unwrap_or(s)) {
        Some("debug") | Some("cluster") => false,
        Some("machine") => {
            let Some(sub) = segs.next().map(|s| s.split('[').next().unwrap_or(s)) else {
                return true;
            };
            if LIVE_MACHINE_KEYS.contains(&sub) {
                return false;
            }
            if sub == "features" {
                let f = segs.next().map(|s| s.split('[').next().unwrap_or(s));
                return !f.is_some_and(|f| LIVE_FEATURE_KEYS.contains(&f));
            }
            true
        }
        // version, persist, anything new at the top.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: &str = "version: v1alpha1\nmachine:\n  type: controlplane\n  token: abcdef.0123456789abcdef\n  ca:\n    crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJQekNC\n    key: LS0tLS1CRUdJTiBFRDI1NTE5IFBSSVZBVEUgS0VZLS0tLS0K\n  install:\n    disk: /dev/sda\n    extraKernelArgs: [console=ttyS0]\ncluster:\n  clusterName: demo\n  secretboxEncryptionSecret: 9XgWsnJ5E4n9mB1rBq7g7K0qN2o9vZyq0vX1wqQ2a0c=\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp1\n";

    #[test]
    fn a_changed_setting_is_shown_with_old_and_new_value() {
        let new = BASE.replace("[console=ttyS0]", "[console=ttyS0, talstrap=1]");
        let d = config_diff(BASE.as_bytes(), new.as_bytes()).unwrap();
        assert_eq!(d.documents.len(), 1, "{d:#?}");
        assert_eq!(d.documents[0].document, "v1alpha1");
        let l = &d.documents[0].lines;
        assert_eq!(l.len(), 1, "{l:#?}");
        assert_eq!(
            l[0].text,
            "~ machine.install.extraKernelArgs: [console=ttyS0] → [console=ttyS0, talstrap=1]"
        );
        assert!(!l[0].reboot, "install is live-applicable in Talos");
        assert!(!d.needs_reboot());
    }

    #[test]
    fn identical_configs_have_no_diff_whatever_the_layout() {
        let flow = "version: v1alpha1\nmachine: {type: worker}\n---\n{kind: HostnameConfig, apiVersion: v1alpha1, hostname: w1}\n";
        let block = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: w1\n";
        assert!(
            config_diff(flow.as_bytes(), block.as_bytes())
                .unwrap()
                .documents
                .is_empty()
        );
    }

    #[test]
    fn documents_are_named_by_kind_and_name() {
        let new = format!(
            "{BASE}---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: tailscale\nenvironment: [TS_AUTHKEY=tskey-abcdef0123456789abcdef0123456789]\n"
        );
        let d = config_diff(BASE.as_bytes(), new.as_bytes()).unwrap();
        assert_eq!(d.documents.len(), 1);
        assert_eq!(d.documents[0].document, "ExtensionServiceConfig tailscale");
        assert_eq!(d.documents[0].change, Change::Added);
        let all = d.render().join("\n");
        assert!(!all.contains("tskey-abcdef"), "{all}");
        assert!(all.contains("environment: <redacted>"), "{all}");
    }

    #[test]
    fn secrets_show_only_that_they_changed() {
        let new = BASE
            .replace("abcdef.0123456789abcdef", "zyxwvu.9876543210zyxwvu")
            .replace(
                "9XgWsnJ5E4n9mB1rBq7g7K0qN2o9vZyq0vX1wqQ2a0c=",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            );
        let d = config_diff(BASE.as_bytes(), new.as_bytes()).unwrap();
        let text = d.render().join("\n");
        assert!(
            text.contains("~ machine.token: <redacted> (changed)"),
            "{text}"
        );
        assert!(
            text.contains("~ cluster.secretboxEncryptionSecret: <redacted> (changed)"),
            "{text}"
        );
        for s in ["abcdef.0123", "zyxwvu.9876", "9XgWsn", "AAAAAAAA"] {
            assert!(!text.contains(s), "{s} leaked: {text}");
        }
        // machine.token is not live-applicable: Talos reboots for it.
        assert!(d.needs_reboot());
    }

    #[test]
    fn talos_reboot_rule_follows_can_apply_immediate() {
        assert!(!needs_reboot("machine.network.hostname"));
        assert!(!needs_reboot("cluster.apiServer.extraArgs.foo"));
        assert!(!needs_reboot("machine.features.kubePrism.enabled"));
        assert!(needs_reboot("machine.features.rbac"));
        assert!(needs_reboot("machine.env.A"));
        assert!(needs_reboot("machine.type"));
        assert!(needs_reboot("machine.files[0].content"));
        assert!(!needs_reboot("machine.kernel.modules[0].name"));
    }

    #[test]
    fn secret_detection() {
        assert!(looks_secret("-----BEGIN EC PRIVATE KEY-----\nabc"));
        assert!(looks_secret("token abcdef.0123456789abcdef here"));
        assert!(looks_secret("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"));
        assert!(!looks_secret("/dev/disk/by-id/nvme-Samsung_SSD_980"));
        assert!(!looks_secret("ghcr.io/siderolabs/installer:v1.12.11"));
        assert!(!looks_secret("console=ttyS0"));
    }

    fn secret_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9+/]{32,64}={0,2}",
            "[a-z0-9]{6}\\.[a-z0-9]{16}",
            "[A-Za-z0-9]{8,20}".prop_map(|s| format!(
                "-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----"
            )),
        ]
    }

    fn place_strategy() -> impl Strategy<Value = usize> {
        0usize..8
    }

    /// A config with `secret` put in one of many places (secret keys, file
    /// contents, env values, map keys, list items, other documents).
    fn config_with(secret: &str, place: usize, plain: &str) -> String {
        let q = serde_json::to_string(secret).unwrap();
        match place {
            0 => format!("version: v1alpha1\nmachine:\n  token: {q}\n  env: {{A: {plain}}}\n"),
            1 => format!(
                "version: v1alpha1\nmachine:\n  ca: {{crt: {q}, key: {q}}}\n  env: {{A: {plain}}}\n"
            ),
            2 => format!(
                "version: v1alpha1\nmachine:\n  files:\n    - content: {q}\n      path: /var/{plain}\n"
            ),
            3 => format!("version: v1alpha1\nmachine:\n  env:\n    B: {q}\n    A: {plain}\n"),
            4 => format!("version: v1alpha1\nmachine:\n  env:\n    {q}: x\n    A: {plain}\n"),
            5 => format!(
                "version: v1alpha1\ncluster:\n  inlineManifests:\n    - name: m\n      contents: {q}\n  clusterName: {plain}\n"
            ),
            6 => format!(
                "version: v1alpha1\nmachine: {{type: worker}}\n---\napiVersion: v1alpha1\nkind: KubeAPIServerCAConfig\nissuingCA: {{cert: {q}, key: {q}}}\nx: {plain}\n"
            ),
            _ => format!(
                "version: v1alpha1\nmachine:\n  install:\n    extraKernelArgs: [a, {q}]\n  env: {{A: {plain}}}\n"
            ),
        }
    }

    proptest! {
        #[test]
        fn no_secret_survives_in_human_or_json_output(
            old_secret in secret_strategy(),
            new_secret in secret_strategy(),
            place in place_strategy(),
            plain in "[a-z]{3,8}",
        ) {
            let old = config_with(&old_secret, place, "before");
            let new = config_with(&new_secret, place, &plain);
            for (a, b) in [(&old, &new), (&new, &old), (&String::new(), &new), (&new, &String::new())] {
                let d = config_diff(a.as_bytes(), b.as_bytes()).unwrap();
                let human = d.render().join("\n");
                let json = serde_json::to_string(&d).unwrap();
                for s in [&old_secret, &new_secret] {
                    // The secret itself, and any 16-character piece of it
                    // (past the PEM armour).
                    let core = s.trim_start_matches("-----BEGIN PRIVATE KEY-----\n");
                    let piece: String = core.chars().take(16).collect();
                    prop_assert!(!human.contains(piece.as_str()), "{} leaked in {}", piece, human);
                    prop_assert!(!json.contains(piece.as_str()), "{} leaked in {}", piece, json);
                    let escaped = serde_json::to_string(s).unwrap();
                    prop_assert!(!json.contains(escaped.trim_matches('"')));
                }
            }
            // The plain value that changed is visible.
            if plain != "before" {
                let d = config_diff(old.as_bytes(), new.as_bytes()).unwrap();
                let human = d.render().join("\n");
                prop_assert!(human.contains(plain.as_str()), "{}", human);
            }
        }
    }
}
