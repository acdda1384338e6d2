//! Errors for everything the inventory reads: talconfig.yaml, talenv files,
//! machine configs and `--node`/`-n` flags.
//!
//! Every variant is an *input* error: the operator has to fix a file or a
//! flag, and no node has been contacted. Each message names the file and the
//! field, or the node, so it can be acted on without a debugger. No message
//! ever carries a value read from a secret-bearing file (keys, tokens,
//! decrypted env values); only field names, hostnames, addresses and paths.

use std::path::PathBuf;

/// A problem with operator-supplied input (files or flags).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read (missing, permission denied, a directory…).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The machine config a talconfig node refers to does not exist.
    #[error(
        "node {node}: machine config {} does not exist (run `talhelper genconfig` first?)",
        path.display()
    )]
    ConfigMissing { node: String, path: PathBuf },

    /// The rendered config of a topf.yaml node does not exist.
    #[error(
        "node {node}: rendered config {} does not exist (run `topf render -o DIR` and pass \
         --config-dir DIR)",
        path.display()
    )]
    TopfConfigMissing { node: String, path: PathBuf },

    /// The file is not UTF-8 text.
    #[error("{}: not valid UTF-8 text (first bad byte at offset {offset}, line {line})", path.display())]
    NotUtf8 {
        path: PathBuf,
        offset: usize,
        line: usize,
    },

    /// The file holds no YAML document at all.
    #[error("{}: file is empty (no YAML document)", path.display())]
    Empty { path: PathBuf },

    /// The YAML parser rejected the file.
    #[error("{}:{line}:{column}: malformed YAML: {message}", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// A required field is absent.
    #[error("{}: required field `{field}` is missing", path.display())]
    MissingField { path: PathBuf, field: String },

    /// A field is present but its value is unusable.
    #[error("{}: field `{field}`: {reason}", path.display())]
    InvalidField {
        path: PathBuf,
        field: String,
        reason: String,
    },

    /// `${NAME}` in talconfig.yaml refers to a variable that is unset or empty.
    #[error(
        "{}: variable ${{{name}}} is not set (line {line}); define it in a talenv file or the environment",
        path.display()
    )]
    UnsetVariable {
        path: PathBuf,
        name: String,
        line: usize,
    },

    /// A `${...}` expression talstrap cannot evaluate.
    #[error("{}: line {line}: {reason}", path.display())]
    BadSubstitution {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// A line of a talenv file is neither `KEY: value` nor `KEY=value`.
    #[error("{}: line {line}: {reason}", path.display())]
    EnvFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// An env file is sops-encrypted and no `sops` binary is available.
    #[error(
        "{} is encrypted with sops (it has a top-level `sops:` key) but `{program}` was not found on PATH; \
         install sops (and its age/PGP key) to read it, or pass the variables through the environment",
        path.display()
    )]
    SopsMissing { path: PathBuf, program: String },

    /// `sops -d` ran but failed.
    #[error("{}: `{program} -d` failed ({status}): {stderr}", path.display())]
    SopsFailed {
        path: PathBuf,
        program: String,
        status: String,
        stderr: String,
    },

    /// talconfig.yaml lists no nodes.
    #[error("{}: `nodes` is empty; list at least one node", path.display())]
    NoNodes { path: PathBuf },

    /// A per-node field of talconfig.yaml is wrong.
    #[error("{}: node {node}: field `{field}`: {reason}", path.display())]
    NodeField {
        path: PathBuf,
        node: String,
        field: String,
        reason: String,
    },

    /// Two nodes share a hostname.
    #[error("{source_name}: hostname {hostname} is used by two nodes ({first} and {second})")]
    DuplicateHostname {
        source_name: String,
        hostname: String,
        first: String,
        second: String,
    },

    /// Two nodes (or one node twice) share an IP address.
    #[error("{source_name}: address {address} is listed for {first} and for {second}")]
    DuplicateAddress {
        source_name: String,
        address: std::net::IpAddr,
        first: String,
        second: String,
    },

    /// The talconfig role and the machine config role disagree.
    #[error(
        "node {node}: {} says controlPlane: {talconfig_cp} but {} has machine.type {config_type} \
         (stale clusterconfig? run `talhelper genconfig` again)",
        talconfig.display(),
        config.display()
    )]
    RoleMismatch {
        node: String,
        talconfig: PathBuf,
        config: PathBuf,
        talconfig_cp: bool,
        config_type: String,
    },

    /// A machine config without the main (v1alpha1) document.
    #[error(
        "{}: no v1alpha1 document (one with `machine:`/`cluster:` keys); this is not a Talos machine config",
        path.display()
    )]
    NoV1alpha1 { path: PathBuf },

    /// A machine config with several v1alpha1 documents.
    #[error("{}: documents {first} and {second} are both v1alpha1 documents; Talos accepts only one", path.display())]
    MultipleV1alpha1 {
        path: PathBuf,
        first: usize,
        second: usize,
    },

    /// A non-v1alpha1 document lacks `kind` or `apiVersion`.
    #[error("{}: document {index} has no `{field}` (and is not a v1alpha1 document)", path.display())]
    DocumentWithoutKind {
        path: PathBuf,
        index: usize,
        field: &'static str,
    },

    /// Two documents with the same kind and name.
    #[error("{}: documents {first} and {second} are both {kind}{}; Talos rejects duplicates",
        path.display(), name.as_ref().map(|n| format!(" named {n}")).unwrap_or_default())]
    DuplicateDocument {
        path: PathBuf,
        kind: String,
        name: Option<String>,
        first: usize,
        second: usize,
    },

    /// A worker config carries the OS CA private key.
    #[error(
        "{}: field `machine.ca.key` is set on a worker config; Talos rejects a CA key on workers",
        path.display()
    )]
    WorkerWithCaKey { path: PathBuf },

    /// A control-plane config lacks the OS CA private key.
    #[error(
        "{}: field `machine.ca.key` is missing on a {machine_type} config; control planes need the OS CA key",
        path.display()
    )]
    ControlPlaneWithoutCaKey { path: PathBuf, machine_type: String },

    /// A filenameTmpl could not be rendered.
    #[error("{}: node {node}: filenameTmpl {template:?}: {reason}", path.display())]
    Template {
        path: PathBuf,
        node: String,
        template: String,
        reason: String,
    },

    /// `--node` inventory requested with no flags at all.
    #[error("no nodes given: pass --node IP=path/to/config.yaml (repeatable) or a talconfig.yaml")]
    NoNodeFlags,

    /// A `--node IP=path` flag is malformed.
    #[error("--node {flag}: {reason}")]
    NodeFlag { flag: String, reason: String },

    /// A `-n` value matches no node.
    #[error("-n {value}: no such node; known nodes: {}", known.join(", "))]
    UnknownNode { value: String, known: Vec<String> },

    /// The filters leave no node to work on.
    #[error("no node matches {filter}; known nodes: {}", known.join(", "))]
    EmptySelection { filter: String, known: Vec<String> },

    /// An error about a file, raised while loading a particular node.
    #[error("node {node}: {source}")]
    ForNode {
        node: String,
        #[source]
        source: Box<InputError>,
    },
}

impl InputError {
    /// The innermost error, looking through [`InputError::ForNode`] wrappers.
    pub fn innermost(&self) -> &InputError {
        match self {
            InputError::ForNode { source, .. } => source.innermost(),
            other => other,
        }
    }

    pub(crate) fn for_node(node: &str, err: InputError) -> InputError {
        match err {
            // These already name the node.
            e @ (InputError::ConfigMissing { .. }
            | InputError::TopfConfigMissing { .. }
            | InputError::RoleMismatch { .. }
            | InputError::ForNode { .. }) => e,
            e => InputError::ForNode {
                node: node.to_string(),
                source: Box::new(e),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn unset_variable_message_matches_the_documented_shape() {
        let e = InputError::UnsetVariable {
            path: PathBuf::from("talconfig.yaml"),
            name: "VIP".into(),
            line: 7,
        };
        assert!(
            e.to_string()
                .starts_with("talconfig.yaml: variable ${VIP} is not set (line 7)"),
            "{e}"
        );
    }

    #[test]
    fn for_node_wraps_once_and_innermost_unwraps() {
        let inner = InputError::Empty {
            path: PathBuf::from("c/x.yaml"),
        };
        let e = InputError::for_node("cp1", inner);
        assert_eq!(
            e.to_string(),
            "node cp1: c/x.yaml: file is empty (no YAML document)"
        );
        let again = InputError::for_node("cp2", e);
        assert!(again.to_string().starts_with("node cp1: "));
        assert!(matches!(again.innermost(), InputError::Empty { .. }));
    }

    #[test]
    fn duplicate_document_names_kind_and_name() {
        let e = InputError::DuplicateDocument {
            path: PathBuf::from("w.yaml"),
            kind: "UserVolumeConfig".into(),
            name: Some("data".into()),
            first: 2,
            second: 3,
        };
        assert_eq!(
            e.to_string(),
            "w.yaml: documents 2 and 3 are both UserVolumeConfig named data; Talos rejects duplicates"
        );
    }
}
