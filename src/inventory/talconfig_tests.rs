//! Tests for talconfig loading: realistic fixtures written into temporary
//! directories, file naming, env substitution, anchors, and malformed input.
//! Private addresses appear here only as text; nothing is dialled.

use super::*;
use crate::inventory::Environment;
use crate::inventory::error::InputError;
use crate::inventory::machine_config::tests::config_yaml;

/// A temporary talhelper project directory.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, body: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
        self
    }

    fn cp(&self, file: &str, hostname: &str) -> &Self {
        self.write(
            &format!("clusterconfig/{file}"),
            &config_yaml("controlplane", hostname, true),
        )
    }

    fn worker(&self, file: &str, hostname: &str) -> &Self {
        self.write(
            &format!("clusterconfig/{file}"),
            &config_yaml("worker", hostname, false),
        )
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions::new(self.path("talconfig.yaml"))
    }

    fn load_with(&self, vars: &[(&str, &str)]) -> Result<Inventory, InputError> {
        let env = Environment::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        load_talconfig_in(&self.opts(), &env)
    }

    fn load(&self) -> Result<Inventory, InputError> {
        self.load_with(&[])
    }
}

/// A talconfig shaped like the ones in public homelab repos: VIP through
/// env, disk selectors, group sections with schematics, patch files.
const REALISTIC: &str = r#"# yaml-language-server: $schema=https://raw.githubusercontent.com/budimanjojo/talhelper/master/pkg/config/schemas/talconfig.json
---
clusterName: home
talosVersion: "${talosVersion}"
kubernetesVersion: "${kubernetesVersion}"
endpoint: https://${clusterEndpointIP}:6443   # the VIP: text only, never dialled
allowSchedulingOnControlPlanes: true
additionalApiServerCertSans: &sans
  - "${clusterEndpointIP}"
  - 127.0.0.1 # KubePrism
additionalMachineCertSans: *sans
clusterPodNets: ["10.69.0.0/16"]
cniConfig:
  name: none
patches:
  - "@./patches/global/cluster-discovery.yaml"
  - |-
    - op: remove
      path: /cluster/apiServer/admissionControl
nodes:
  - hostname: k8s-0.lab.example.com
    ipAddress: "10.0.0.11 ,  10.0.1.11"
    controlPlane: true
    installDiskSelector:
      size: ">= 400GB"
      model: "Samsung SSD*"
    networkInterfaces:
      - deviceSelector:
          hardwareAddr: "aa:bb:cc:00:00:11"
        dhcp: true
        vip:
          ip: "${clusterEndpointIP}"
  - hostname: k8s-1.lab.example.com
    ipAddress: 10.0.0.12
    controlPlane: true
    installDisk: /dev/sda
  - hostname: w1
    ipAddress: 10.0.0.21
    installDiskSelector: {model: "WDC*"}
    patches:
      - "@./patches/w1.yaml"
controlPlane:
  schematic:
    customization:
      extraKernelArgs: [mitigations=off]
      systemExtensions:
        officialExtensions: [siderolabs/intel-ucode]
  patches:
    - "@./patches/controller/api-access.yaml"
worker:
  nodeLabels:
    role: worker
  schematic:
    customization:
      systemExtensions:
        officialExtensions: [siderolabs/i915]
"#;

fn realistic() -> Project {
    let p = Project::new();
    p.write("talconfig.yaml", REALISTIC)
        .write(
            "talenv.yaml",
            "---\ntalosVersion: v1.12.4\nkubernetesVersion: v1.35.0\nclusterEndpointIP: 10.0.0.10\n",
        )
        .cp("home-k8s-0.lab.example.com.yaml", "k8s-0.lab.example.com")
        .cp("home-k8s-1.lab.example.com.yaml", "k8s-1.lab.example.com")
        .worker("home-w1.yaml", "w1");
    p
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn realistic_talconfig_loads_in_order() {
    let p = realistic();
    let inv = p.load().unwrap();
    assert_eq!(inv.cluster_name.as_deref(), Some("home"));
    assert_eq!(inv.endpoint.as_deref(), Some("https://10.0.0.10:6443"));
    assert_eq!(
        inv.source,
        InventorySource::Talconfig {
            path: p.path("talconfig.yaml"),
            config_dir: p.path("clusterconfig"),
        }
    );
    let summary: Vec<(&str, Role, Vec<IpAddr>)> = inv
        .nodes
        .iter()
        .map(|n| (n.hostname.as_str(), n.role, n.addresses.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "k8s-0.lab.example.com",
                Role::ControlPlane,
                vec![ip("10.0.0.11"), ip("10.0.1.11")]
            ),
            (
                "k8s-1.lab.example.com",
                Role::ControlPlane,
                vec![ip("10.0.0.12")]
            ),
            ("w1", Role::Worker, vec![ip("10.0.0.21")]),
        ]
    );
    assert_eq!(
        inv.nodes[0].config_path,
        p.path("clusterconfig/home-k8s-0.lab.example.com.yaml")
    );
    assert_eq!(
        inv.nodes[2].config_path,
        p.path("clusterconfig/home-w1.yaml")
    );
    assert_eq!(
        inv.bootstrap_target().unwrap().primary_ip(),
        ip("10.0.0.11")
    );
    assert_eq!(inv.control_planes().count(), 2);
    let raw = std::fs::read(p.path("clusterconfig/home-w1.yaml")).unwrap();
    assert_eq!(inv.nodes[2].config.raw(), raw.as_slice());
    assert!(inv.warnings().is_empty(), "{:?}", inv.warnings());
}

#[test]
fn talenv_overrides_the_environment_and_env_fills_the_rest() {
    let p = realistic();
    // talenv sets clusterEndpointIP; the environment's value must lose.
    let inv = p
        .load_with(&[("clusterEndpointIP", "10.9.9.9"), ("unused", "x")])
        .unwrap();
    assert_eq!(inv.endpoint.as_deref(), Some("https://10.0.0.10:6443"));

    // Without talenv, the environment supplies the values.
    std::fs::remove_file(p.path("talenv.yaml")).unwrap();
    let inv = p
        .load_with(&[
            ("clusterEndpointIP", "10.9.9.9"),
            ("talosVersion", "v1.12.0"),
            ("kubernetesVersion", "v1.35.0"),
        ])
        .unwrap();
    assert_eq!(inv.endpoint.as_deref(), Some("https://10.9.9.9:6443"));
}

#[test]
fn explicit_env_files_replace_the_defaults() {
    let p = realistic();
    p.write(
        "env/ci.env",
        "talosVersion=v1.12.4\nkubernetesVersion=v1.35.0\nclusterEndpointIP=10.0.0.50\n",
    );
    let mut opts = p.opts();
    opts.env_files = vec![p.path("env/ci.env")];
    let inv = load_talconfig_in(&opts, &Environment::from_vars([("a", "b")])).unwrap();
    assert_eq!(inv.endpoint.as_deref(), Some("https://10.0.0.50:6443"));

    opts.env_files = vec![p.path("env/missing.env")];
    let err = load_talconfig_in(&opts, &Environment::from_vars([("a", "b")])).unwrap_err();
    assert!(matches!(err, InputError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.env"), "{err}");
}

#[test]
fn env_files_in_the_working_directory_are_read_before_the_talconfig_dir() {
    let p = realistic();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("talenv.sops.yml"),
        "clusterEndpointIP: 10.0.0.99\nfromCwd: yes\n",
    )
    .unwrap();
    let env = Environment::from_vars(Vec::<(String, String)>::new())
        .with_cwd(Some(cwd.path().to_path_buf()));
    let vars = load_env_for(&p.opts(), &env).unwrap();
    assert_eq!(vars.files().len(), 2);
    // The talconfig directory's talenv.yaml is read last and wins.
    assert_eq!(vars.get("clusterEndpointIP").as_deref(), Some("10.0.0.10"));
    assert_eq!(vars.get("fromCwd").as_deref(), Some("yes"));
}

#[test]
fn unset_variable_is_reported_with_its_line() {
    let p = realistic();
    std::fs::remove_file(p.path("talenv.yaml")).unwrap();
    let err = p
        .load_with(&[("talosVersion", "v1"), ("kubernetesVersion", "v1")])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("talconfig.yaml: variable ${clusterEndpointIP} is not set (line 6)"),
        "{msg}"
    );
}

#[test]
fn defaults_dollar_escapes_and_comments() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        "clusterName: ${CLUSTER:-home}   # ${NOT_SET_IN_COMMENT}\n\
         endpoint: https://${VIP}:6443\n\
         # - hostname: ${COMMENTED_OUT}\n\
         patches:\n  - |-\n    cluster:\n      $$patch: delete\n\
         nodes:\n  - hostname: cp1\n    ipAddress: ${CP1_IP:-10.0.0.11}\n    controlPlane: true\n",
    )
    .cp("home-cp1.yaml", "cp1");
    let inv = p.load_with(&[("VIP", "10.0.0.10")]).unwrap();
    assert_eq!(inv.cluster_name.as_deref(), Some("home"));
    assert_eq!(inv.nodes[0].addresses, vec![ip("10.0.0.11")]);
    assert_eq!(inv.endpoint.as_deref(), Some("https://10.0.0.10:6443"));
}

#[test]
fn group_and_node_filename_templates() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        r#"clusterName: lab
endpoint: https://k8s.lab.example.com:6443
controlPlane:
  filenameTmpl: "{{ .Role }}-{{ .Hostname }}.yaml"
worker:
  filenameTmpl: "{{.ClusterName}}-{{ .IPAddress }}.yaml"
nodes:
  - hostname: cp1
    ipAddress: 10.0.0.11
    controlPlane: true
  - hostname: w1
    ipAddress: "10.0.0.21, 10.0.0.22"
  - hostname: w2
    ipAddress: 10.0.0.23
    filenameTmpl: "custom/{{- .Hostname -}}.yaml"
"#,
    )
    .cp("controlplane-cp1.yaml", "cp1")
    .worker("lab-10.0.0.21, 10.0.0.22.yaml", "w1")
    .worker("custom/w2.yaml", "w2");
    let inv = p.load().unwrap();
    let files: Vec<PathBuf> = inv.nodes.iter().map(|n| n.config_path.clone()).collect();
    assert_eq!(
        files,
        vec![
            p.path("clusterconfig/controlplane-cp1.yaml"),
            p.path("clusterconfig/lab-10.0.0.21, 10.0.0.22.yaml"),
            p.path("clusterconfig/custom/w2.yaml"),
        ]
    );
    // The configs say cluster "home": a warning, not an error.
    assert!(
        inv.warnings()
            .iter()
            .any(|w| w.starts_with("node cp1: ") && w.contains("clusterName is lab")),
        "{:?}",
        inv.warnings()
    );
}

#[test]
fn explicit_config_dir_is_used() {
    let p = realistic();
    let other = tempfile::tempdir().unwrap();
    for (file, kind, host, key) in [
        (
            "home-k8s-0.lab.example.com.yaml",
            "controlplane",
            "k8s-0.lab.example.com",
            true,
        ),
        (
            "home-k8s-1.lab.example.com.yaml",
            "controlplane",
            "k8s-1.lab.example.com",
            true,
        ),
        ("home-w1.yaml", "worker", "w1", false),
    ] {
        std::fs::write(other.path().join(file), config_yaml(kind, host, key)).unwrap();
    }
    let mut opts = p.opts();
    opts.config_dir = Some(other.path().to_path_buf());
    let inv = load_talconfig_in(&opts, &Environment::from_vars([("x", "y")])).unwrap();
    assert_eq!(inv.nodes[2].config_path, other.path().join("home-w1.yaml"));
}

#[test]
fn yaml_1_1_booleans_and_no_env_needed_without_variables() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        &format!(
            "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: yes\n"
        ),
    )
    // Encrypted and unreadable without sops, but nothing refers to it.
    .write(
        "talenv.sops.yaml",
        "X: ENC[AES256_GCM,data:xx]\nsops:\n  version: 3.9.0\n",
    )
    .cp("home-cp1.yaml", "cp1");
    let env = Environment::from_vars([("a", "b")]).with_sops_program("talstrap-test-no-such-sops");
    let inv = load_talconfig_in(&p.opts(), &env).unwrap();
    assert_eq!(inv.nodes[0].role, Role::ControlPlane);

    // Once a variable is used, the encrypted file must be read.
    p.write(
        "talconfig.yaml",
        &format!("{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: ${{CP1:-10.0.0.11}}\n    controlPlane: on\n"),
    );
    let err = load_talconfig_in(&p.opts(), &env).unwrap_err();
    assert!(matches!(err, InputError::SopsMissing { .. }), "{err}");
    assert!(err.to_string().contains("talenv.sops.yaml"), "{err}");
}

#[test]
fn anchors_and_merge_keys_work() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        r#"clusterName: home
endpoint: &ep https://10.0.0.10:6443
x-controller: &controller
  controlPlane: true
  installDiskSelector: &disk
    model: "Samsung*"
x-worker: &worker
  controlPlane: false
  installDiskSelector: *disk
nodes:
  - <<: *controller
    hostname: cp1
    ipAddress: 10.0.0.11
  - <<: [*worker]
    hostname: w1
    ipAddress: 10.0.0.21
  - <<: *worker
    hostname: cp2
    controlPlane: true
    ipAddress: 10.0.0.12
"#,
    )
    .cp("home-cp1.yaml", "cp1")
    .worker("home-w1.yaml", "w1")
    .cp("home-cp2.yaml", "cp2");
    let inv = p.load().unwrap();
    let roles: Vec<Role> = inv.nodes.iter().map(|n| n.role).collect();
    // The node's own key overrides the merged one.
    assert_eq!(
        roles,
        vec![Role::ControlPlane, Role::Worker, Role::ControlPlane]
    );
}

#[test]
fn stale_clusterconfig_gives_warnings() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        "clusterName: home\nendpoint: https://10.0.0.10:6443\nnodes:\n  - hostname: w1\n    ipAddress: 10.0.0.21\n    installDisk: /dev/nvme0n1\n",
    )
    .write(
        "clusterconfig/home-w1.yaml",
        &config_yaml("worker", "old-name", false).replace(
            "    diskSelector:\n      size: '>= 400GB'\n      model: Samsung*\n",
            "    disk: /dev/sda\n",
        ),
    );
    let inv = p.load().unwrap();
    let warnings = inv.warnings().join("\n");
    assert!(warnings.contains("sets hostname old-name"), "{warnings}");
    assert!(warnings.contains("installs to /dev/sda"), "{warnings}");
}

/// A minimal valid talconfig body, for the malformed-input table.
const MIN_NODES: &str =
    "nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: true\n";
const HEAD: &str = "clusterName: home\nendpoint: https://10.0.0.10:6443\n";

#[test]
fn malformed_talconfigs_name_file_field_and_node() {
    let two_nodes = |a: &str, b: &str| {
        format!(
            "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: true\n{a}  - hostname: {b}\n"
        )
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("endpoint: https://10.0.0.10:6443\n{MIN_NODES}"),
            vec!["talconfig.yaml", "`clusterName`", "missing"],
        ),
        (
            format!("clusterName: home\n{MIN_NODES}"),
            vec!["talconfig.yaml", "`endpoint`", "missing"],
        ),
        (
            format!("clusterName: home\nendpoint: http://10.0.0.10:6443\n{MIN_NODES}"),
            vec!["talconfig.yaml", "field `endpoint`", "https"],
        ),
        (
            format!("clusterName: home\nendpoint: 10.0.0.10:6443\n{MIN_NODES}"),
            vec!["talconfig.yaml", "field `endpoint`", "not a URL"],
        ),
        (
            format!("clusterName: [a]\nendpoint: https://h:6443\n{MIN_NODES}"),
            vec!["talconfig.yaml", "`clusterName`", "a list"],
        ),
        (
            HEAD.to_string(),
            vec!["talconfig.yaml", "`nodes`", "missing"],
        ),
        (
            format!("{HEAD}nodes: []\n"),
            vec!["talconfig.yaml", "`nodes` is empty"],
        ),
        (
            format!("{HEAD}nodes:\n  cp1: 10.0.0.11\n"),
            vec!["talconfig.yaml", "`nodes`", "list"],
        ),
        (
            format!("{HEAD}nodes:\n  - ipAddress: 10.0.0.11\n"),
            vec!["talconfig.yaml", "node nodes[0]", "`hostname`"],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp_1\n    ipAddress: 10.0.0.11\n"),
            vec!["talconfig.yaml", "node nodes[0]", "`hostname`", "'_'"],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp1\n"),
            vec!["talconfig.yaml", "node cp1", "`ipAddress`", "missing"],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: cp1.lan\n"),
            vec![
                "talconfig.yaml",
                "node cp1",
                "`ipAddress`",
                "DNS name",
                "IP",
            ],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.1.1\n"),
            vec![
                "talconfig.yaml",
                "node cp1",
                "`ipAddress`",
                "not an IP address",
            ],
        ),
        (
            format!(
                "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: maybe\n"
            ),
            vec!["talconfig.yaml", "node cp1", "`controlPlane`", "\"maybe\""],
        ),
        (
            format!(
                "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: [true]\n"
            ),
            vec!["talconfig.yaml", "node cp1", "`controlPlane`", "a list"],
        ),
        (
            two_nodes("", "CP1\n    ipAddress: 10.0.0.12"),
            vec!["talconfig.yaml", "hostname CP1", "nodes[0] and nodes[1]"],
        ),
        (
            two_nodes("", "cp2\n    ipAddress: 10.0.0.13, 10.0.0.11"),
            vec![
                "talconfig.yaml",
                "address 10.0.0.11",
                "node cp1",
                "node cp2",
            ],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11, 10.0.0.11\n"),
            vec!["talconfig.yaml", "address 10.0.0.11", "node cp1"],
        ),
        (
            format!(
                "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: true\n    filenameTmpl: \"{{{{ .Node }}}}.yaml\"\n"
            ),
            vec!["talconfig.yaml", "node cp1", "filenameTmpl", ".Node"],
        ),
        (
            format!(
                "{HEAD}nodes:\n  - hostname: cp1\n    ipAddress: 10.0.0.11\n    controlPlane: true\n    filenameTmpl: /etc/x.yaml\n"
            ),
            vec!["talconfig.yaml", "node cp1", "absolute"],
        ),
        (
            format!("{HEAD}controlPlane: [x]\n{MIN_NODES}"),
            vec!["talconfig.yaml", "field `controlPlane`", "mapping"],
        ),
        (
            format!("{HEAD}nodes:\n  - hostname: cp1\n   ipAddress: 10.0.0.11\n"),
            vec!["talconfig.yaml:", "malformed YAML"],
        ),
        (
            format!("{HEAD}nodes:\n  - <<: *missing\n    hostname: cp1\n"),
            vec!["talconfig.yaml:", "malformed YAML"],
        ),
        (
            "- a\n- b\n".to_string(),
            vec!["talconfig.yaml", "top level", "a list"],
        ),
        (
            "# nothing but a comment ${X}\n\n".to_string(),
            vec!["talconfig.yaml", "empty"],
        ),
        ("".to_string(), vec!["talconfig.yaml", "empty"]),
        (
            format!("{HEAD}nodes:\n  - hostname: ${{CP_NAME}}\n"),
            vec!["talconfig.yaml: variable ${CP_NAME} is not set (line 4)"],
        ),
        (
            format!("{HEAD}nodes: ${{NODES\n"),
            vec!["talconfig.yaml: line 3", "closing"],
        ),
    ];
    assert!(cases.len() >= 15);
    for (text, needles) in cases {
        let p = Project::new();
        p.write("talconfig.yaml", &text).cp("home-cp1.yaml", "cp1");
        let err = p.load().expect_err(&text);
        let msg = err.to_string();
        for n in needles {
            assert!(msg.contains(n), "{n:?} not in {msg:?}\ninput:\n{text}");
        }
    }
}

#[test]
fn yaml_error_points_at_the_line_in_the_operators_file() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        "# header\nclusterName: home\nendpoint: [oops\nnodes: []\n",
    );
    match p.load().unwrap_err() {
        InputError::Yaml {
            line, column, path, ..
        } => {
            assert!(path.ends_with("talconfig.yaml"));
            assert!((3..=5).contains(&line), "line {line}");
            assert!(column >= 1);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn non_utf8_and_missing_talconfig() {
    let p = Project::new();
    p.write("talconfig.yaml", "clusterName: home\n");
    std::fs::write(p.path("talconfig.yaml"), b"clusterName: h\xc3\x28me\n").unwrap();
    let err = p.load().unwrap_err();
    assert!(matches!(err, InputError::NotUtf8 { line: 1, .. }), "{err}");
    assert!(err.to_string().contains("talconfig.yaml"));

    let q = Project::new();
    let err = q.load().unwrap_err();
    assert!(matches!(err, InputError::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    assert!(err.to_string().contains("talconfig.yaml"), "{err}");
}

#[test]
fn missing_machine_config_suggests_genconfig() {
    let p = Project::new();
    p.write("talconfig.yaml", &format!("{HEAD}{MIN_NODES}"));
    let err = p.load().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, InputError::ConfigMissing { .. }), "{msg}");
    assert!(msg.starts_with("node cp1: machine config "), "{msg}");
    assert!(msg.contains("clusterconfig/home-cp1.yaml"), "{msg}");
    assert!(msg.contains("talhelper genconfig"), "{msg}");
}

#[test]
fn role_contradiction_names_node_and_both_files() {
    let p = Project::new();
    p.write("talconfig.yaml", &format!("{HEAD}{MIN_NODES}"))
        .worker("home-cp1.yaml", "cp1");
    let err = p.load().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, InputError::RoleMismatch { .. }), "{msg}");
    assert!(msg.starts_with("node cp1: "), "{msg}");
    assert!(msg.contains("controlPlane: true"), "{msg}");
    assert!(
        msg.contains("home-cp1.yaml has machine.type worker"),
        "{msg}"
    );

    // And the other way round.
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        &format!("{HEAD}nodes:\n  - hostname: w1\n    ipAddress: 10.0.0.21\n"),
    )
    .cp("home-w1.yaml", "w1");
    let msg = p.load().unwrap_err().to_string();
    assert!(
        msg.contains("controlPlane: false") && msg.contains("controlplane"),
        "{msg}"
    );
}

#[test]
fn broken_machine_config_errors_name_the_node_and_file() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "machine:\n  type: controlplane\n bad\n".into(),
            vec!["node cp1: ", "home-cp1.yaml:", "malformed YAML"],
        ),
        ("".into(), vec!["node cp1: ", "home-cp1.yaml", "empty"]),
        (
            "apiVersion: v1alpha1\nkind: HostnameConfig\n".into(),
            vec!["node cp1: ", "no v1alpha1"],
        ),
        (
            config_yaml("controlplane", "cp1", false),
            vec!["node cp1: ", "home-cp1.yaml", "machine.ca.key", "missing"],
        ),
    ];
    for (body, needles) in cases {
        let p = Project::new();
        p.write("talconfig.yaml", &format!("{HEAD}{MIN_NODES}"))
            .write("clusterconfig/home-cp1.yaml", &body);
        let msg = p.load().unwrap_err().to_string();
        for n in needles {
            assert!(msg.contains(n), "{n:?} not in {msg:?}");
        }
    }
}

#[test]
fn worker_with_ca_key_is_rejected_by_node() {
    let p = Project::new();
    p.write(
        "talconfig.yaml",
        &format!("{HEAD}nodes:\n  - hostname: w1\n    ipAddress: 10.0.0.21\n"),
    )
    .write(
        "clusterconfig/home-w1.yaml",
        &config_yaml("worker", "w1", true),
    );
    let msg = p.load().unwrap_err().to_string();
    assert!(msg.starts_with("node w1: "), "{msg}");
    assert!(
        msg.contains("machine.ca.key") && msg.contains("worker"),
        "{msg}"
    );
}

#[cfg(unix)]
#[test]
fn unreadable_config_reports_the_os_error() {
    let p = Project::new();
    p.write("talconfig.yaml", &format!("{HEAD}{MIN_NODES}"));
    // A directory where the file should be: reading it fails with an OS error.
    std::fs::create_dir_all(p.path("clusterconfig/home-cp1.yaml")).unwrap();
    let err = p.load().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err.innermost(), InputError::Io { .. }), "{msg}");
    assert!(msg.starts_with("node cp1: cannot read "), "{msg}");
    assert!(msg.contains("home-cp1.yaml"), "{msg}");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(96))]

    #[test]
    fn load_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let p = Project::new();
        p.write("talconfig.yaml", &text);
        let _ = p.load_with(&[("VIP", "10.0.0.10")]);
    }

    #[test]
    fn load_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let p = Project::new();
        std::fs::write(p.path("talconfig.yaml"), &bytes).unwrap();
        let _ = p.load_with(&[("VIP", "10.0.0.10")]);
    }

    #[test]
    fn load_never_panics_on_talconfig_like_text(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "clusterName: home\n", "endpoint: https://10.0.0.10:6443\n", "nodes:\n", "  - ",
                "hostname: cp1\n", "    ipAddress: 10.0.0.11\n", "    controlPlane: true\n",
                "filenameTmpl: \"{{ .Role }}\"\n", "{{", "}}", "${VIP}", "${X:-", "$$", "#", "'", "\"",
                "&a ", "*a", "<<: ", "controlPlane:\n", "worker:\n", "  ", "\n", "---\n", ",", ": ",
                "|\n", "[", "]", "{", "}",
            ]),
            0..40,
        )
    ) {
        let p = Project::new();
        p.write("talconfig.yaml", &parts.concat()).cp("home-cp1.yaml", "cp1");
        let _ = p.load_with(&[("VIP", "10.0.0.10")]);
    }
}
