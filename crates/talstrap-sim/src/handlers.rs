//! What a simulated node answers to each unary MachineService/StorageService
//! call, in maintenance mode and once configured. Routing (`node`/`nodes`),
//! latency and flaky faults happen before these run (see `services.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tonic::Status;

use super::applied_config::{self, AppliedConfig, ConfigError};
use super::kubeconfig;
use super::node::SimNode;
use super::rbac::{self, Roles};
use super::scenario::scale_duration;
use super::server::ConnInfo;
use super::state::{EtcdService, Health, Lifecycle, Role};
use super::version;
use crate::proto::common::{Data, Metadata};
use crate::proto::machine::apply_configuration_request::Mode;
use crate::proto::machine::*;
use crate::proto::storage::{Disk, Disks, DisksResponse, disk::DiskType};

pub const P_APPLY: &str = "/machine.MachineService/ApplyConfiguration";
pub const P_BOOTSTRAP: &str = "/machine.MachineService/Bootstrap";
pub const P_MEMBERS: &str = "/machine.MachineService/EtcdMemberList";
pub const P_ETCD_STATUS: &str = "/machine.MachineService/EtcdStatus";
pub const P_HOSTNAME: &str = "/machine.MachineService/Hostname";
pub const P_KUBECONFIG: &str = "/machine.MachineService/Kubeconfig";
pub const P_REBOOT: &str = "/machine.MachineService/Reboot";
pub const P_SERVICES: &str = "/machine.MachineService/ServiceList";
pub const P_SYSTEMSTAT: &str = "/machine.MachineService/SystemStat";
pub const P_READ: &str = "/machine.MachineService/Read";
pub const P_VERSION: &str = "/machine.MachineService/Version";
pub const P_DISKS: &str = "/storage.StorageService/Disks";

/// Who is calling and over what.
#[derive(Debug, Clone)]
pub struct Caller {
    pub roles: Roles,
    /// The client's own connection; `None` when apid proxied the call.
    pub conn: Option<ConnInfo>,
}

/// A unary request.
#[derive(Debug, Clone)]
pub enum Call {
    Apply(ApplyConfigurationRequest),
    Bootstrap(BootstrapRequest),
    EtcdMemberList(EtcdMemberListRequest),
    EtcdStatus,
    Hostname,
    Reboot(RebootRequest),
    ServiceList,
    SystemStat,
    Version,
    Disks,
}

/// A unary reply.
#[derive(Debug, Clone)]
pub enum Reply {
    Apply(ApplyConfigurationResponse),
    Bootstrap(BootstrapResponse),
    EtcdMemberList(EtcdMemberListResponse),
    EtcdStatus(EtcdStatusResponse),
    Hostname(HostnameResponse),
    Reboot(RebootResponse),
    ServiceList(ServiceListResponse),
    SystemStat(SystemStatResponse),
    Version(VersionResponse),
    Disks(DisksResponse),
}

macro_rules! each_reply {
    ($value:expr, $r:ident => $body:expr) => {
        match $value {
            Reply::Apply($r) => $body,
            Reply::Bootstrap($r) => $body,
            Reply::EtcdMemberList($r) => $body,
            Reply::EtcdStatus($r) => $body,
            Reply::Hostname($r) => $body,
            Reply::Reboot($r) => $body,
            Reply::ServiceList($r) => $body,
            Reply::SystemStat($r) => $body,
            Reply::Version($r) => $body,
            Reply::Disks($r) => $body,
        }
    };
}

impl Call {
    pub fn path(&self) -> &'static str {
        match self {
            Call::Apply(_) => P_APPLY,
            Call::Bootstrap(_) => P_BOOTSTRAP,
            Call::EtcdMemberList(_) => P_MEMBERS,
            Call::EtcdStatus => P_ETCD_STATUS,
            Call::Hostname => P_HOSTNAME,
            Call::Reboot(_) => P_REBOOT,
            Call::ServiceList => P_SERVICES,
            Call::SystemStat => P_SYSTEMSTAT,
            Call::Version => P_VERSION,
            Call::Disks => P_DISKS,
        }
    }

    /// The reply apid builds for a failed node in a `nodes` call: one
    /// message carrying only `metadata`.
    pub fn error_reply(&self, metadata: Metadata) -> Reply {
        let m = Some(metadata);
        match self {
            Call::Apply(_) => Reply::Apply(ApplyConfigurationResponse {
                messages: vec![ApplyConfiguration {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::Bootstrap(_) => Reply::Bootstrap(BootstrapResponse {
                messages: vec![Bootstrap { metadata: m }],
            }),
            Call::EtcdMemberList(_) => Reply::EtcdMemberList(EtcdMemberListResponse {
                messages: vec![EtcdMembers {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::EtcdStatus => Reply::EtcdStatus(EtcdStatusResponse {
                messages: vec![EtcdStatus {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::Hostname => Reply::Hostname(HostnameResponse {
                messages: vec![Hostname {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::Reboot(_) => Reply::Reboot(RebootResponse {
                messages: vec![Reboot {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::ServiceList => Reply::ServiceList(ServiceListResponse {
                messages: vec![ServiceList {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::SystemStat => Reply::SystemStat(SystemStatResponse {
                messages: vec![SystemStat {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::Version => Reply::Version(VersionResponse {
                messages: vec![Version {
                    metadata: m,
                    ..Default::default()
                }],
            }),
            Call::Disks => Reply::Disks(DisksResponse {
                messages: vec![Disks {
                    metadata: m,
                    ..Default::default()
                }],
            }),
        }
    }
}

impl Reply {
    /// Sets `metadata.hostname` on every message (apid's AppendInfo).
    pub fn tag(&mut self, hostname: &str) {
        each_reply!(self, r => for m in &mut r.messages {
            m.metadata.get_or_insert_with(Metadata::default).hostname = hostname.to_string();
        })
    }

    /// Appends `other`'s messages (concatenated `XResponse` encodings).
    pub fn merge(&mut self, other: Reply) {
        match (self, other) {
            (Reply::Apply(a), Reply::Apply(b)) => a.messages.extend(b.messages),
            (Reply::Bootstrap(a), Reply::Bootstrap(b)) => a.messages.extend(b.messages),
            (Reply::EtcdMemberList(a), Reply::EtcdMemberList(b)) => a.messages.extend(b.messages),
            (Reply::EtcdStatus(a), Reply::EtcdStatus(b)) => a.messages.extend(b.messages),
            (Reply::Hostname(a), Reply::Hostname(b)) => a.messages.extend(b.messages),
            (Reply::Reboot(a), Reply::Reboot(b)) => a.messages.extend(b.messages),
            (Reply::ServiceList(a), Reply::ServiceList(b)) => a.messages.extend(b.messages),
            (Reply::SystemStat(a), Reply::SystemStat(b)) => a.messages.extend(b.messages),
            (Reply::Version(a), Reply::Version(b)) => a.messages.extend(b.messages),
            (Reply::Disks(a), Reply::Disks(b)) => a.messages.extend(b.messages),
            _ => {}
        }
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn mode_name(mode: i32) -> String {
    Mode::try_from(mode)
        .map(|m| m.as_str_name().to_string())
        .unwrap_or_else(|_| mode.to_string())
}

/// Go's `time.Duration.String()` for whole seconds and minutes.
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    let ms = d.subsec_millis();
    if s >= 3600 {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else if ms > 0 {
        format!("{}.{:03}", s, ms).trim_end_matches('0').to_string() + "s"
    } else {
        format!("{s}s")
    }
}

/// The reply-lost faults: the request took effect, then the client's
/// connection is reset before any reply. Never returns normally when the
/// caller came on its own connection.
async fn lose_reply(caller: &Caller) -> Status {
    if let Some(conn) = &caller.conn {
        conn.kill.reset();
        // The connection is gone; hyper drops this future soon. Should it
        // not, the error below cannot reach the client anyway.
        tokio::time::sleep(Duration::from_secs(5)).await;
        return Status::unavailable("connection reset by peer");
    }
    Status::unavailable("error reading from server: EOF")
}

/// Unary calls in maintenance mode (no roles beyond reader).
pub async fn maintenance(
    node: &Arc<SimNode>,
    conn: &ConnInfo,
    call: Call,
) -> Result<Reply, Status> {
    node.lock().stats.record_apply_mode(&call);
    if version::maintenance_in_apid(&node.id.talos_version) {
        return maintenance_apid(node, conn, call).await;
    }
    // Talos v1.12.11 internal/app/machined/internal/server/v1alpha1 maintenance
    // service: its own gRPC server with only a few methods.
    match call {
        Call::Apply(req) => maintenance_apply(node, conn, req).await.map(Reply::Apply),
        Call::Version => Err(Status::unimplemented(
            "API is not implemented in maintenance mode",
        )),
        Call::Disks => Ok(Reply::Disks(disks(node))),
        other => {
            let name = other.path().rsplit('/').next().unwrap_or_default();
            Err(Status::unimplemented(format!(
                "method {name} not implemented"
            )))
        }
    }
}

/// v1.13+ maintenance: apid serves machined's normal API with the reader
/// role for every caller (Talos v1.13.9 internal/app/apid/service.go,
/// pkg/grpc/middleware/authz/injector.go). Reads answer, admin-only calls are
/// PermissionDenied, ApplyConfiguration checks maintenance itself, and the
/// control-plane-only etcd calls see MachineType `unknown`
/// (internal/app/internal/machinehelper/machinehelper.go).
async fn maintenance_apid(
    node: &Arc<SimNode>,
    conn: &ConnInfo,
    call: Call,
) -> Result<Reply, Status> {
    match call {
        Call::Apply(req) => maintenance_apply(node, conn, req).await.map(Reply::Apply),
        Call::Version => {
            let mut v = version(node);
            // `features` needs a v1alpha1 config (srv `Version`).
            for m in &mut v.messages {
                m.features = None;
            }
            Ok(Reply::Version(v))
        }
        Call::Hostname => Ok(Reply::Hostname(HostnameResponse {
            messages: vec![Hostname {
                metadata: None,
                hostname: node.lock().hostname(&node.id),
            }],
        })),
        Call::ServiceList => Ok(Reply::ServiceList(service_list(node))),
        Call::SystemStat => Ok(Reply::SystemStat(system_stat(node))),
        Call::Disks => Ok(Reply::Disks(disks(node))),
        Call::EtcdMemberList(_) => Err(Status::unimplemented(
            "member list is only available on control plane nodes",
        )),
        Call::EtcdStatus => Err(Status::unimplemented(
            "etcd status is only available on control plane nodes",
        )),
        Call::Bootstrap(_) | Call::Reboot(_) => Err(Status::permission_denied("not authorized")),
    }
}

async fn maintenance_apply(
    node: &Arc<SimNode>,
    conn: &ConnInfo,
    req: ApplyConfigurationRequest,
) -> Result<ApplyConfigurationResponse, Status> {
    let apid = version::maintenance_in_apid(&node.id.talos_version);
    let Some(accepted) = maintenance_check(node, &req, apid)? else {
        // v1.13+: a config without a v1alpha1 document is taken, and the
        // node stays in maintenance (Talos v1.13.9 srv `ApplyConfiguration`).
        return Ok(ApplyConfigurationResponse {
            messages: vec![maintenance_reply(&req, apid, Vec::new(), None)],
        });
    };
    let (cfg, warnings) = accepted;
    if req.dry_run {
        return Ok(ApplyConfigurationResponse {
            messages: vec![maintenance_reply(&req, apid, warnings, Some(&cfg))],
        });
    }
    let staged = apid && Mode::try_from(req.mode) == Ok(Mode::Staged);
    {
        let mut st = node.lock();
        if !matches!(
            st.lifecycle,
            Lifecycle::Maintenance | Lifecycle::LeavingMaintenance { .. }
        ) {
            return Err(Status::unavailable("maintenance service is shutting down"));
        }
        if staged {
            // Persisted only: the node stays in maintenance (inferred from
            // Talos v1.13.9 srv `ApplyConfiguration`, STAGED branch).
            st.stats.applies_accepted += 1;
        } else {
            st.accept_maintenance_config(&node.id, Instant::now(), Arc::new(cfg));
        }
    }
    node.touch();
    if node.id.faults.apply_reply_lost {
        let caller = Caller {
            roles: conn.roles.clone(),
            conn: Some(conn.clone()),
        };
        return Err(lose_reply(&caller).await);
    }
    Ok(ApplyConfigurationResponse {
        messages: vec![maintenance_reply(&req, apid, warnings, None)],
    })
}

/// Mode, parse and validation checks of a maintenance apply, in Talos's
/// order. `Ok(None)`: v1.13+ took a config without a v1alpha1 document.
fn maintenance_check(
    node: &SimNode,
    req: &ApplyConfigurationRequest,
    apid: bool,
) -> Result<Option<(AppliedConfig, Vec<String>)>, Status> {
    let v = &node.id.talos_version;
    // v1.12.11: only AUTO, REBOOT and TRY; v1.13+: every mode.
    if !apid
        && !matches!(
            Mode::try_from(req.mode),
            Ok(Mode::Auto | Mode::Reboot | Mode::Try)
        )
    {
        return Err(Status::unimplemented(format!(
            "apply configuration --mode='{}' is not supported in maintenance mode",
            mode_name(req.mode).to_lowercase().replace('_', "-")
        )));
    }
    if apid && Mode::try_from(req.mode).is_err() {
        return Err(Status::invalid_argument(format!(
            "incorrect mode '{}' specified for the apply config call",
            req.mode
        )));
    }
    // v1.13+ returns the raw errors as InvalidArgument; v1.12 a plain
    // "failed to parse config" error (code Unknown) and prefixed validation.
    let invalid = |errs: &[String], runtime: bool| {
        let text = applied_config::multierror(errs);
        match (apid, runtime) {
            (true, _) => Status::invalid_argument(text),
            (false, false) => {
                Status::invalid_argument(format!("configuration validation failed: {text}"))
            }
            (false, true) => {
                Status::invalid_argument(format!("runtime configuration validation failed: {text}"))
            }
        }
    };
    let cfg = match applied_config::parse(&req.data, v) {
        Ok(c) => c,
        Err(ConfigError::Parse(e)) if apid => return Err(Status::invalid_argument(e)),
        Err(ConfigError::Parse(e)) => {
            return Err(Status::unknown(format!("failed to parse config: {e}")));
        }
        Err(ConfigError::NoV1Alpha1) if apid => return Ok(None),
        Err(ConfigError::NoV1Alpha1) => {
            return Err(invalid(
                &["machine instructions are required".to_string()],
                false,
            ));
        }
        Err(ConfigError::Invalid(errs)) => return Err(invalid(&errs, false)),
    };
    let warnings = applied_config::validate(&cfg, true, v).map_err(|errs| invalid(&errs, false))?;
    applied_config::runtime_validate(&cfg, &node.id.disks).map_err(|errs| invalid(&errs, true))?;
    Ok(Some((cfg, warnings)))
}

/// The reply to a maintenance apply. v1.12.11 answers mode 0 with no
/// details; v1.13+ answers the effective mode (REBOOT and AUTO become
/// NO_REBOOT) with details, and a dry run carries a diff against the empty
/// config (Talos v1.13.9 srv `ApplyConfiguration`, `generateDiff`;
/// pkg/machinery/textdiff/textdiff.go).
fn maintenance_reply(
    req: &ApplyConfigurationRequest,
    apid: bool,
    warnings: Vec<String>,
    dry_run_of: Option<&AppliedConfig>,
) -> ApplyConfiguration {
    if !apid {
        let mode_details = if req.dry_run {
            "Dry run summary:\nNode is running in maintenance mode and does not have a config yet."
                .to_string()
        } else {
            String::new()
        };
        return ApplyConfiguration {
            warnings,
            mode_details,
            ..Default::default()
        };
    }
    let (mode, mut details) = match Mode::try_from(req.mode) {
        Ok(Mode::Try) => (
            Mode::Try,
            "Applied configuration without a reboot".to_string(),
        ),
        Ok(Mode::Staged) => (
            Mode::Staged,
            "Staged configuration to be applied after the next reboot".to_string(),
        ),
        _ => (
            Mode::NoReboot,
            "Applied configuration without a reboot".to_string(),
        ),
    };
    if req.dry_run {
        let diff = dry_run_of
            .map(applied_config::diff_from_empty)
            .unwrap_or_default();
        details = dry_run_summary(&details, diff);
    } else if mode == Mode::Try {
        details.push_str(&try_mode_note(try_mode_timeout(req)));
    }
    ApplyConfiguration {
        metadata: None,
        warnings,
        mode: mode as i32,
        mode_details: details,
    }
}

/// Unary calls on a configured node, after routing, with RBAC.
pub async fn configured(node: &Arc<SimNode>, caller: &Caller, call: Call) -> Result<Reply, Status> {
    node.lock().stats.record_apply_mode(&call);
    rbac::authorize(&caller.roles, call.path())?;
    match call {
        Call::Apply(req) => apply(node, caller, req).await.map(Reply::Apply),
        Call::Bootstrap(_) => bootstrap(node, caller).await.map(Reply::Bootstrap),
        Call::EtcdMemberList(r) => etcd_members(node, r.query_local).map(Reply::EtcdMemberList),
        Call::EtcdStatus => etcd_status(node).map(Reply::EtcdStatus),
        Call::Hostname => Ok(Reply::Hostname(HostnameResponse {
            messages: vec![Hostname {
                metadata: None,
                hostname: node.lock().hostname(&node.id),
            }],
        })),
        Call::Reboot(_) => Ok(Reply::Reboot(reboot(node))),
        Call::ServiceList => Ok(Reply::ServiceList(service_list(node))),
        Call::SystemStat => Ok(Reply::SystemStat(system_stat(node))),
        Call::Version => Ok(Reply::Version(version(node))),
        Call::Disks => Ok(Reply::Disks(disks(node))),
    }
}

/// Clears the "apply in progress" flag however the handler ends.
struct ApplyGuard<'a>(&'a SimNode);

impl Drop for ApplyGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().apply_busy = false;
    }
}

async fn apply(
    node: &Arc<SimNode>,
    caller: &Caller,
    req: ApplyConfigurationRequest,
) -> Result<ApplyConfigurationResponse, Status> {
    let _guard = begin_apply(node)?;
    // Validating and persisting a config takes a moment on a real node.
    tokio::time::sleep(scale_duration(
        Duration::from_millis(200),
        node.id.time_scale,
    ))
    .await;
    let new = parse_applied(&req.data, &node.id.talos_version)?;
    let v14 = version::reboot_mode_removed(&node.id.talos_version);
    let requested = configured_mode(req.mode, v14)?;
    let warnings = applied_config::validate(&new, false, &node.id.talos_version)
        .map_err(|errs| Status::invalid_argument(applied_config::multierror(&errs)))?;
    let current: Arc<AppliedConfig> = node
        .lock()
        .config
        .clone()
        .ok_or_else(|| Status::unavailable("node has no active configuration"))?;
    let (mode, mut details, reason) = effective_mode(requested, v14, &current, &new)?;
    if req.dry_run {
        return Ok(dry_run_reply(&current, &new, mode, &details));
    }
    let try_timeout = try_mode_timeout(&req);
    if mode == Mode::Try {
        details.push_str(&try_mode_note(try_timeout));
    }
    take_config(node, mode, Arc::new(new), try_timeout);
    node.touch();
    if node.id.faults.apply_reply_lost {
        return Err(lose_reply(caller).await);
    }
    Ok(ApplyConfigurationResponse {
        messages: vec![ApplyConfiguration {
            metadata: None,
            warnings,
            mode: mode as i32,
            mode_details: details + &reason,
        }],
    })
}

/// Marks the node busy with an apply, unless one is running or an applied
/// config already has the node rebooting.
fn begin_apply(node: &SimNode) -> Result<ApplyGuard<'_>, Status> {
    let mut st = node.lock();
    if st.apply_busy {
        return Err(Status::failed_precondition(
            "another apply configuration is already in progress",
        ));
    }
    if st.apply_rebooting && version::apply_reboot_guard(&node.id.talos_version) {
        return Err(Status::failed_precondition(
            "configuration was already applied and node is rebooting, cannot apply more configuration changes until next reboot",
        ));
    }
    st.apply_busy = true;
    Ok(ApplyGuard(node))
}

/// A configured node's reading of the applied bytes, as Talos words its refusals.
fn parse_applied(data: &[u8], talos_version: &str) -> Result<AppliedConfig, Status> {
    match applied_config::parse(data, talos_version) {
        Ok(c) => Ok(c),
        Err(ConfigError::Parse(e)) => Err(Status::invalid_argument(e)),
        Err(ConfigError::NoV1Alpha1) => Err(Status::invalid_argument(
            "the applied machine configuration doesn't contain v1alpha1 config, did you mean to patch the machine config instead?",
        )),
        Err(ConfigError::Invalid(errs)) => {
            Err(Status::invalid_argument(applied_config::multierror(&errs)))
        }
    }
}

/// The mode an apply takes effect in, its details text and the reason
/// appended for a reboot AUTO fell back to.
fn effective_mode(
    requested: Mode,
    v14: bool,
    current: &AppliedConfig,
    new: &AppliedConfig,
) -> Result<(Mode, String, String), Status> {
    let live = || "Applied configuration without a reboot".to_string();
    let reboot = || "Applied configuration with a reboot".to_string();
    Ok(match requested {
        // v1.14: AUTO is NO_REBOOT, and nothing checks whether the change
        // can be applied live (`CanApplyImmediate` was deleted); settings
        // read at boot wait for the next reboot.
        Mode::Auto if v14 => (Mode::NoReboot, live(), String::new()),
        Mode::NoReboot | Mode::Try if v14 => (requested, live(), String::new()),
        Mode::Try | Mode::NoReboot => {
            applied_config::can_apply_immediate(current, new).map_err(Status::invalid_argument)?;
            (requested, live(), String::new())
        }
        Mode::Staged => (
            Mode::Staged,
            "Staged configuration to be applied after the next reboot".to_string(),
            String::new(),
        ),
        Mode::Auto => match applied_config::can_apply_immediate(current, new) {
            Ok(()) => (Mode::NoReboot, live(), String::new()),
            Err(why) => (Mode::Reboot, reboot(), format!(": {why}")),
        },
        Mode::Reboot => (Mode::Reboot, reboot(), String::new()),
    })
}

/// A dry run's answer: what would happen and the config diff, nothing kept.
fn dry_run_reply(
    current: &AppliedConfig,
    new: &AppliedConfig,
    mode: Mode,
    details: &str,
) -> ApplyConfigurationResponse {
    ApplyConfigurationResponse {
        messages: vec![ApplyConfiguration {
            metadata: None,
            warnings: Vec::new(),
            mode: mode as i32,
            mode_details: dry_run_summary(details, applied_config::config_diff(current, new)),
        }],
    }
}

/// Talos's dry-run summary: what the apply would have done, then the diff
/// ("No changes." when there is none).
fn dry_run_summary(details: &str, diff: String) -> String {
    let diff = if diff.is_empty() {
        "No changes.".to_string()
    } else {
        diff
    };
    format!("Dry run summary:\n{details} (skipped in dry-run).\nConfig diff:\n\n{diff}")
}

/// A TRY apply's timeout (one minute unless the request says).
fn try_mode_timeout(req: &ApplyConfigurationRequest) -> Duration {
    req.try_mode_timeout
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::from_secs(60))
}

/// What Talos adds to a TRY apply's details.
fn try_mode_note(timeout: Duration) -> String {
    format!(
        "\nThe config is applied in 'try' mode and will be automatically reverted back in {}",
        go_duration(timeout)
    )
}

/// Keeps an accepted config the way its mode says: live (TRY with a
/// rollback at the timeout), staged for the next boot, or staged with a
/// reboot.
fn take_config(node: &SimNode, mode: Mode, new: Arc<AppliedConfig>, try_timeout: Duration) {
    let now = Instant::now();
    let mut st = node.lock();
    st.stats.applies_accepted += 1;
    match mode {
        Mode::Try => {
            let previous = st.config.replace(new);
            if let Some(prev) = previous {
                st.try_rollback =
                    Some((now + scale_duration(try_timeout, node.id.time_scale), prev));
            }
        }
        Mode::NoReboot => {
            st.try_rollback = None;
            st.config = Some(new);
        }
        Mode::Staged => {
            st.try_rollback = None;
            st.staged = Some(new);
        }
        Mode::Reboot | Mode::Auto => {
            st.try_rollback = None;
            st.staged = Some(new);
            st.apply_rebooting = true;
            st.boot.reboot_at = Some(now + reboot_grace(node));
        }
    }
}

/// The requested mode of a configured apply. Talos v1.14.0-rc.1 srv
/// `ApplyConfiguration`: REBOOT (also an unset mode, which is 0) is refused
/// before validation, and an unknown number is InvalidArgument; earlier
/// releases treat an unknown number as REBOOT.
fn configured_mode(mode: i32, v14: bool) -> Result<Mode, Status> {
    match Mode::try_from(mode) {
        Ok(Mode::Reboot) if v14 => Err(Status::unimplemented(
            "the REBOOT mode is not supported, please use AUTO or NO_REBOOT modes instead",
        )),
        Ok(m) => Ok(m),
        Err(_) if v14 => Err(Status::invalid_argument(format!(
            "incorrect mode '{mode}' specified for the apply config call"
        ))),
        Err(_) => Ok(Mode::Reboot),
    }
}

/// The reply leaves before the reboot starts.
/// From a reboot being asked for until the node goes down (`timing.shutdown`,
/// already scaled; never under 20 ms so the reply can leave first).
fn reboot_grace(node: &SimNode) -> Duration {
    Duration::from_millis(20).max(node.id.timing.shutdown)
}

/// Bootstrap on a worker: Talos v1.12.11
/// `internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go`
/// answers FailedPrecondition; v1.13.9 checks the role with
/// `internal/app/internal/machinehelper/machinehelper.go` `CheckControlplane`,
/// which answers Unimplemented.
fn not_a_control_plane(version: &str) -> Status {
    if super::version::worker_bootstrap_unimplemented(version) {
        Status::unimplemented("bootstrap is only available on control plane nodes")
    } else {
        Status::failed_precondition("bootstrap can only be performed on a control plane node")
    }
}

async fn bootstrap(node: &Arc<SimNode>, caller: &Caller) -> Result<BootstrapResponse, Status> {
    {
        let mut st = node.lock();
        st.stats.bootstrap_calls += 1;
        // Talos's checks, in order (machined's Bootstrap handler).
        // v1.14 also waits for the unattended install and any pending
        // reboot request (`IsBootstrapAllowed`, Talos v1.14.0-rc.1
        // internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go).
        if !st.boot.cri_up
            || st.lifecycle != Lifecycle::Configured
            || !st.bootstrap_allowed(&node.id)
        {
            return Err(Status::failed_precondition(
                "bootstrap is not available yet",
            ));
        }
        let v = &node.id.talos_version;
        if st.role(&node.id) != Role::ControlPlane {
            return Err(not_a_control_plane(v));
        }
        // Talos v1.14.0-rc.1 srv `Bootstrap` (commit 9ffa772ba): a terminal
        // refusal when the config carries no etcd CA.
        if version::unattended_install(v) && !st.config.as_ref().is_some_and(|c| c.has_etcd_ca) {
            return Err(Status::invalid_argument(
                "etcd is not configured, bootstrap is not possible",
            ));
        }
        if !st.boot.time_synced {
            return Err(Status::failed_precondition("time is not in sync yet"));
        }
        if st.etcd.has_data {
            return Err(Status::already_exists("etcd data directory is not empty"));
        }
        let fleet = node
            .fleet()
            .ok_or_else(|| Status::unavailable("node is shutting down"))?;
        let mut registry = fleet.etcd();
        st.bootstrap(&node.id, Instant::now(), &mut registry);
    }
    node.touch();
    if node.id.faults.bootstrap_reply_lost {
        return Err(lose_reply(caller).await);
    }
    Ok(BootstrapResponse {
        messages: vec![Bootstrap { metadata: None }],
    })
}

/// `query_local` asks the local etcd; otherwise the node asks etcd through
/// the control planes it knows, so a control plane that has not joined yet
/// still sees the cluster of its CA.
fn etcd_members(node: &Arc<SimNode>, query_local: bool) -> Result<EtcdMemberListResponse, Status> {
    let (role, cluster, ca_id) = {
        let st = node.lock();
        let usable = st.etcd.service == EtcdService::Running && !st.etcd.health_failed;
        let ca_id = st
            .config
            .as_ref()
            .and_then(|c| c.ca_id().map(str::to_string));
        (
            st.role(&node.id),
            usable.then_some(st.etcd.cluster).flatten(),
            ca_id,
        )
    };
    if role != Role::ControlPlane {
        return Err(Status::unimplemented(
            "member list is only available on control plane nodes",
        ));
    }
    let fleet = node
        .fleet()
        .ok_or_else(|| Status::unavailable("node is shutting down"))?;
    let cluster = match (cluster, query_local) {
        (Some(c), _) => c,
        (None, false) => healthy_cluster_of(&fleet, ca_id.as_deref())
            .ok_or_else(|| Status::unavailable("etcdserver: no leader"))?,
        (None, true) => return Err(Status::unavailable("etcdserver: no leader")),
    };
    let registry = fleet.etcd();
    let rec = registry
        .cluster(cluster)
        .ok_or_else(|| Status::unavailable("etcdserver: no leader"))?;
    let members = rec
        .members
        .iter()
        .map(|m| EtcdMember {
            id: m.member_id,
            hostname: m.hostname.clone(),
            peer_urls: vec![format!("https://{}", super::fleet::host_port(m.ip, 2380))],
            client_urls: vec![format!("https://{}", super::fleet::host_port(m.ip, 2379))],
            is_learner: false,
        })
        .collect();
    Ok(EtcdMemberListResponse {
        messages: vec![EtcdMembers {
            metadata: None,
            legacy_members: Vec::new(),
            members,
        }],
    })
}

/// A cluster of this CA with a member whose etcd runs healthy.
fn healthy_cluster_of(fleet: &super::fleet::FleetShared, ca_id: Option<&str>) -> Option<u64> {
    let ca_id = ca_id?;
    fleet.nodes.iter().find_map(|n| {
        let st = n.lock();
        let same_ca = st.config.as_ref().and_then(|c| c.ca_id()) == Some(ca_id);
        (same_ca && st.etcd.service == EtcdService::Running && st.etcd.healthy)
            .then_some(st.etcd.cluster)
            .flatten()
    })
}

fn etcd_status(node: &Arc<SimNode>) -> Result<EtcdStatusResponse, Status> {
    let (role, usable, cluster, member_id) = {
        let st = node.lock();
        (
            st.role(&node.id),
            st.etcd.service == EtcdService::Running && !st.etcd.health_failed,
            st.etcd.cluster,
            st.etcd.member_id,
        )
    };
    if role != Role::ControlPlane {
        return Err(Status::unimplemented(
            "etcd status is only available on control plane nodes",
        ));
    }
    let (Some(cluster), true) = (cluster, usable) else {
        return Err(Status::unavailable("etcdserver: no leader"));
    };
    let fleet = node
        .fleet()
        .ok_or_else(|| Status::unavailable("node is shutting down"))?;
    let leader = fleet
        .etcd()
        .cluster(cluster)
        .and_then(|c| c.members.first().map(|m| m.member_id))
        .unwrap_or(0);
    Ok(EtcdStatusResponse {
        messages: vec![EtcdStatus {
            metadata: None,
            member_status: Some(EtcdMemberStatus {
                protocol_version: "3.6.0".to_string(),
                db_size: 20 << 20,
                db_size_in_use: 12 << 20,
                leader,
                raft_index: 1000,
                raft_term: 2,
                raft_applied_index: 1000,
                errors: Vec::new(),
                is_learner: false,
                member_id,
                storage_version: "3.6.0".to_string(),
            }),
        }],
    })
}

fn reboot(node: &Arc<SimNode>) -> RebootResponse {
    {
        let mut st = node.lock();
        st.boot.reboot_at = Some(Instant::now() + reboot_grace(node));
    }
    node.touch();
    let mut raw = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let actor = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    RebootResponse {
        messages: vec![Reboot {
            metadata: None,
            actor_id: actor,
        }],
    }
}

fn service_list(node: &Arc<SimNode>) -> ServiceListResponse {
    let services = node.lock().services(&node.id);
    let now = timestamp(SystemTime::now());
    ServiceListResponse {
        messages: vec![ServiceList {
            metadata: None,
            services: services
                .into_iter()
                .map(|s| ServiceInfo {
                    id: s.id.to_string(),
                    state: s.state.to_string(),
                    events: Some(ServiceEvents {
                        events: s
                            .events
                            .iter()
                            .map(|e| ServiceEvent {
                                msg: e.msg.clone(),
                                state: e.state.to_string(),
                                ts: Some(timestamp(e.ts)),
                            })
                            .collect(),
                    }),
                    health: Some(ServiceHealth {
                        unknown: s.health == Health::Unknown,
                        healthy: s.health == Health::Healthy,
                        last_message: s.last_message,
                        last_change: Some(now),
                    }),
                })
                .collect(),
        }],
    }
}

/// The one file the simulator can read: this boot's id.
pub fn read_file(node: &Arc<SimNode>, path: &str) -> Result<Vec<u8>, Status> {
    match path {
        "/proc/sys/kernel/random/boot_id" => Ok(format!("{}\n", node.lock().boot_id).into_bytes()),
        _ => Err(Status::not_found(format!(
            "open {path}: no such file or directory"
        ))),
    }
}

fn system_stat(node: &Arc<SimNode>) -> SystemStatResponse {
    let boot_time = node.lock().boot_time;
    let cpu = CpuStat {
        user: 120.5,
        system: 40.25,
        idle: 9000.0,
        ..Default::default()
    };
    SystemStatResponse {
        messages: vec![SystemStat {
            metadata: None,
            boot_time,
            cpu_total: Some(cpu),
            cpu: vec![cpu; 2],
            context_switches: 100_000,
            process_created: 2_000,
            process_running: 3,
            ..Default::default()
        }],
    }
}

fn version(node: &Arc<SimNode>) -> VersionResponse {
    VersionResponse {
        messages: vec![Version {
            metadata: None,
            version: Some(VersionInfo {
                tag: node.id.talos_version.clone(),
                sha: "simulated".to_string(),
                built: String::new(),
                go_version: "go1.24.0".to_string(),
                os: "linux".to_string(),
                arch: "amd64".to_string(),
            }),
            platform: Some(PlatformInfo {
                name: "metal".to_string(),
                mode: "metal".to_string(),
            }),
            features: Some(FeaturesInfo { rbac: true }),
        }],
    }
}

/// `storage.Disk.type` from the Disks resource facts.
fn disk_type(d: &crate::disksel::DiskFacts) -> DiskType {
    if d.cdrom {
        DiskType::Cd
    } else if d.transport == "nvme" {
        DiskType::Nvme
    } else if d.transport == "mmc" {
        DiskType::Sd
    } else if d.rotational {
        DiskType::Hdd
    } else {
        DiskType::Ssd
    }
}

/// `/storage.StorageService/Disks`.
pub fn disks(node: &Arc<SimNode>) -> DisksResponse {
    let system = node.lock().installed_disk.clone();
    DisksResponse {
        messages: vec![Disks {
            metadata: None,
            disks: node
                .id
                .disks
                .iter()
                .map(|d| Disk {
                    size: d.size,
                    model: d.model.clone(),
                    device_name: d.dev_path.clone(),
                    name: d.model.clone(),
                    serial: d.serial.clone(),
                    modalias: d.modalias.clone(),
                    uuid: d.uuid.clone(),
                    wwid: d.wwid.clone(),
                    r#type: disk_type(d) as i32,
                    bus_path: d.bus_path.clone(),
                    system_disk: system.as_deref() == Some(d.dev_path.as_str()),
                    subsystem: "/sys/class/block".to_string(),
                    readonly: d.readonly,
                })
                .collect(),
        }],
    }
}

/// `Kubeconfig` on one node: a single `common.Data`.
pub fn kubeconfig(node: &Arc<SimNode>, roles: &Roles) -> Result<Vec<Data>, Status> {
    rbac::authorize(roles, P_KUBECONFIG)?;
    let (role, cfg) = {
        let st = node.lock();
        (st.role(&node.id), st.config.clone())
    };
    if role != Role::ControlPlane {
        return Err(Status::unimplemented(
            "kubeconfig is only available on control plane nodes",
        ));
    }
    let cfg = cfg.ok_or_else(|| Status::unavailable("node has no configuration"))?;
    let yaml = kubeconfig::kubeconfig_yaml(&cfg)
        .map_err(|e| Status::internal(format!("failed to generate kubeconfig: {e}")))?;
    let bytes = kubeconfig::pack(yaml.as_bytes(), super::pki::unix_now())
        .map_err(|e| Status::internal(format!("failed to pack kubeconfig: {e}")))?;
    Ok(vec![Data {
        metadata: None,
        bytes,
    }])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3700)), "1h1m40s");
    }

    #[test]
    fn aggregation_tags_and_merges() {
        let mut a = Reply::Hostname(HostnameResponse {
            messages: vec![Hostname {
                metadata: None,
                hostname: "cp1".into(),
            }],
        });
        a.tag("127.0.0.11");
        let mut b = Call::Hostname.error_reply(Metadata {
            hostname: "w9".into(),
            error: "rpc error: code = Unavailable desc = x".into(),
            status: None,
        });
        b.tag("w9");
        a.merge(b);
        let Reply::Hostname(h) = a else {
            panic!("wrong variant")
        };
        assert_eq!(h.messages.len(), 2);
        assert_eq!(
            h.messages[0].metadata.as_ref().unwrap().hostname,
            "127.0.0.11"
        );
        assert_eq!(h.messages[1].hostname, "");
        assert!(
            h.messages[1]
                .metadata
                .as_ref()
                .unwrap()
                .error
                .contains("Unavailable")
        );
    }
}
