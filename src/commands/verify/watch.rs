//! verify's watch of one node, as a pure decision core: what was observed
//! (a probe, a reading over the open connection, a lost connection) and
//! when, in; the next state and a verdict (keep waiting, ready, failed with
//! a cause), out. The I/O driver in `verify.rs` turns the node into
//! [`Observation`]s and the verdicts into step results; every decision is
//! here, so it is tested with paused time.
//!
//! Two kinds of evidence never count on their own:
//! - a new maintenance certificate: Talos re-issues it within one boot (on
//!   address, hostname or time changes, every 12 h); only a new issuing CA
//!   (one per boot) or the node having gone away shows a reboot;
//! - a new boot time: NTP stepping the clock moves it; a reboot is
//!   confirmed by a new boot id, or, where the boot id cannot be read, by
//!   the node having gone away in between.

use std::time::Duration;

use tokio::time::Instant;

use crate::duration::format_duration;
use crate::talos::{InstallPhase, InstallStatus, MachineStatus, Stage};

/// Which state the nodes should reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    PreBootstrap,
    PostBootstrap,
}

/// What identifies one boot of a configured node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootIdentity {
    /// `SystemStat.boot_time` (Unix seconds, node clock): moves with clock steps.
    pub boot_time: u64,
    /// The kernel's boot id, when the node lets us read it (admin only).
    pub boot_id: Option<String>,
}

impl BootIdentity {
    /// Whether `later` is a different boot: `Some(true)` proven, `Some(false)`
    /// disproven (same boot id), `None` when only the boot time tells (and
    /// it differs): a clock step or a reboot.
    fn rebooted(&self, later: &BootIdentity) -> Option<bool> {
        match (&self.boot_id, &later.boot_id) {
            (Some(a), Some(b)) => Some(a != b),
            _ if self.boot_time == later.boot_time => Some(false),
            _ => None,
        }
    }
}

/// The maintenance certificate a node presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaintenanceCert {
    pub fingerprint: String,
    /// Key id of the per-boot CA that issued it (None if the leaf names none).
    pub ca_key_id: Option<String>,
}

/// A reboot verify must see before it may call the node ready: the apply
/// asked for one (REBOOT mode, or the node answered an AUTO apply with a
/// reboot). `since` is the boot the config was sent to, when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectReboot {
    pub since: Option<BootIdentity>,
}

/// How one node is watched.
#[derive(Debug, Clone)]
pub(crate) struct NodeWatch {
    pub phase: Phase,
    pub control_plane: bool,
    pub stuck_after: Duration,
    pub poll_interval: Duration,
    /// The config was sent in this run: maintenance again means the install failed.
    pub applied_now: bool,
    /// The maintenance certificate the config was sent to (this run).
    pub sent_to: Option<MaintenanceCert>,
    pub expect_reboot: Option<ExpectReboot>,
    /// `cluster.network.cni.name: none`.
    pub cni_none: bool,
    /// A worker whose apid stays closed until bootstrap, and why
    /// (see `trustd.rs`).
    pub trustd_wait: Option<String>,
    /// The v1.14 `UnattendedInstallConfig` selector of the node's config:
    /// the node installs while it boots, and its `UnattendedInstallStatus`
    /// is read while it is waited for.
    pub install_selector: Option<String>,
}

/// One thing the driver saw.
#[derive(Debug, Clone)]
pub(crate) enum Observation {
    /// The maintenance service answered.
    Maintenance(MaintenanceCert),
    /// Nothing answers: refused (the host is up, the port closed) or silent.
    Down { refused: bool, reason: String },
    /// Something answered that is no Talos API (yet).
    NotTalos,
    /// An mTLS connection to apid is open (again).
    Connected,
    /// The open connection broke, or a call on it failed.
    Lost,
    /// A control plane of the cluster has healthy etcd (its VIP can be up).
    ControlPlanesUp,
    /// The node's v1.14 `UnattendedInstallStatus`, read after a sample.
    Install(InstallStatus),
    /// A reading over the open connection: the newest status (None when it
    /// did not change) and the boot.
    Sample {
        status: Option<MachineStatus>,
        boot: BootIdentity,
        /// Our wall clock at the reading (Unix seconds).
        wall: u64,
    },
}

/// The node reached the goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reached {
    pub summary: String,
    pub stage: Stage,
    pub ready: bool,
    /// Reached as far as the node can get, with a caveat (no CNI yet).
    pub warning: Option<String>,
}

/// Why the node will not get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Back in maintenance after the config was applied.
    InstallFailed,
    /// v1.14: the unattended install says `failed`.
    UnattendedInstallFailed {
        error: String,
    },
    /// v1.14: the unattended install stays pending because the selector
    /// matches no disk; Talos waits for one forever.
    NoInstallDisk {
        selector: String,
        error: String,
    },
    /// Still in maintenance a while after the apply.
    NotTaken,
    /// In maintenance and nothing was applied in this run.
    NoConfig,
    /// A steady answer that is no Talos API; the driver words it.
    NotTalos,
    Unreachable {
        after: Duration,
        reason: String,
    },
    /// A worker's apid still closed a bound after the control planes came up.
    TrustdClosed {
        after: Duration,
        why: String,
    },
    RebootLoop {
        reboots: u32,
    },
    /// The apply asked for a reboot that did not come.
    RebootNotSeen {
        after: Duration,
        stage: Stage,
    },
    Stuck {
        status: MachineStatus,
        after: Duration,
        hint: String,
    },
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep watching; look again after `pause` (zero: at once).
    Wait {
        pause: Duration,
    },
    Ready(Reached),
    Failed(Failure),
}

/// A verdict and the progress lines it comes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Next {
    pub verdict: Verdict,
    pub notes: Vec<String>,
}

/// Re-probe pace while a node is between states (down, leaving maintenance).
const QUICK: Duration = Duration::from_millis(250);

/// Confirmed reboots, not asked for, that make a reboot loop.
const REBOOT_LOOP: u32 = 3;

/// The watch of one node.
#[derive(Debug)]
pub(crate) struct Watch {
    s: NodeWatch,
    started: Instant,
    /// Stage and unmet conditions last seen, and since when.
    signature: Option<(Stage, Vec<(String, String)>)>,
    since: Instant,
    status: Option<MachineStatus>,
    last_note: String,
    /// The boot last read, and whether the node went away after that.
    boot: Option<BootIdentity>,
    gone_since_boot: bool,
    reboots: u32,
    expected_reboot_seen: bool,
    left_maintenance: bool,
    last_cert: Option<MaintenanceCert>,
    unreachable_since: Option<Instant>,
    maintenance_since: Option<Instant>,
    not_talos_since: Option<Instant>,
    control_planes_up_at: Option<Instant>,
    /// The unattended install phase last read, and since when.
    install: Option<(InstallPhase, Instant)>,
}

impl Watch {
    pub(crate) fn new(s: NodeWatch, now: Instant) -> Self {
        let boot = s.expect_reboot.as_ref().and_then(|e| e.since.clone());
        Self {
            last_cert: s.sent_to.clone(),
            s,
            started: now,
            signature: None,
            since: now,
            status: None,
            last_note: String::new(),
            boot,
            gone_since_boot: false,
            reboots: 0,
            expected_reboot_seen: false,
            left_maintenance: false,
            unreachable_since: None,
            maintenance_since: None,
            not_talos_since: None,
            control_planes_up_at: None,
            install: None,
        }
    }

    /// Whether the driver should read the unattended install status: the
    /// config has an UnattendedInstallConfig and the install was not seen
    /// done yet.
    pub(crate) fn wants_install_status(&self) -> bool {
        self.s.install_selector.is_some()
            && !self
                .install
                .is_some_and(|(p, _)| p == InstallPhase::Installed)
    }

    /// Whether the driver should tell this watch when the control planes
    /// are up: a worker that waits for them, after bootstrap.
    pub(crate) fn wants_control_planes(&self) -> bool {
        self.s.trustd_wait.is_some()
            && self.s.phase == Phase::PostBootstrap
            && self.control_planes_up_at.is_none()
    }

    /// The last status read (for facts on a failure).
    pub(crate) fn status(&self) -> Option<&MachineStatus> {
        self.status.as_ref()
    }

    /// How long a state that may be a passing moment (maintenance right
    /// after an apply, a handshake cut by a reboot) must last to count.
    fn grace(&self) -> Duration {
        (self.s.poll_interval * 5).min(self.s.stuck_after)
    }

    fn awaiting_reboot(&self) -> bool {
        self.s.expect_reboot.is_some() && !self.expected_reboot_seen
    }

    /// Takes in one observation made at `now`.
    pub(crate) fn observe(&mut self, obs: Observation, now: Instant) -> Next {
        let mut notes = Vec::new();
        if !matches!(obs, Observation::NotTalos) {
            self.not_talos_since = None;
        }
        let verdict = match obs {
            Observation::Maintenance(cert) => self.maintenance(cert, now, &mut notes),
            Observation::Down { refused, reason } => self.down(refused, reason, now, &mut notes),
            Observation::NotTalos => {
                self.gone_since_boot = true;
                let since = *self.not_talos_since.get_or_insert(now);
                if now - since >= self.grace() {
                    Verdict::Failed(Failure::NotTalos)
                } else {
                    Verdict::Wait {
                        pause: self.s.poll_interval.min(QUICK),
                    }
                }
            }
            Observation::Connected => {
                self.left_maintenance = true;
                self.maintenance_since = None;
                self.unreachable_since = None;
                Verdict::Wait {
                    pause: Duration::ZERO,
                }
            }
            Observation::Lost => {
                self.gone_since_boot = true;
                Verdict::Wait {
                    pause: Duration::ZERO,
                }
            }
            Observation::ControlPlanesUp => {
                self.control_planes_up_at.get_or_insert(now);
                Verdict::Wait {
                    pause: Duration::ZERO,
                }
            }
            Observation::Sample { status, boot, wall } => {
                self.sample(status, boot, wall, now, &mut notes)
            }
            Observation::Install(status) => self.install_status(status, now, &mut notes),
        };
        Next { verdict, notes }
    }

    /// Report a state once, not at every poll.
    fn note(&mut self, notes: &mut Vec<String>, text: String) {
        if text != self.last_note {
            self.last_note = text.clone();
            notes.push(text);
        }
    }

    fn maintenance(
        &mut self,
        cert: MaintenanceCert,
        now: Instant,
        notes: &mut Vec<String>,
    ) -> Verdict {
        self.unreachable_since = None;
        let new_boot = match (&self.last_cert, &cert) {
            (
                Some(MaintenanceCert {
                    ca_key_id: Some(before),
                    ..
                }),
                MaintenanceCert {
                    ca_key_id: Some(now_ca),
                    ..
                },
            ) => before != now_ca,
            _ => false,
        };
        if self.left_maintenance || (self.s.applied_now && new_boot) {
            return Verdict::Failed(Failure::InstallFailed);
        }
        if let Some(before) = &self.last_cert
            && before.fingerprint != cert.fingerprint
        {
            notes.push(
                "maintenance certificate re-issued within the same boot (Talos renews it on address, hostname or time changes and every 12 h): not a reboot".into(),
            );
        }
        self.last_cert = Some(cert);
        let since = *self.maintenance_since.get_or_insert(now);
        if now - since >= self.grace() {
            return Verdict::Failed(if self.s.applied_now {
                Failure::NotTaken
            } else {
                Failure::NoConfig
            });
        }
        self.note(
            notes,
            "in maintenance mode, waiting for it to take its config".into(),
        );
        let pause = if self.s.applied_now {
            self.s.poll_interval.min(QUICK)
        } else {
            self.s.poll_interval
        };
        Verdict::Wait { pause }
    }

    fn down(
        &mut self,
        refused: bool,
        reason: String,
        now: Instant,
        notes: &mut Vec<String>,
    ) -> Verdict {
        self.left_maintenance = true;
        self.gone_since_boot = true;
        let since = *self.unreachable_since.get_or_insert(now);
        if refused && let Some(why) = self.s.trustd_wait.clone() {
            return self.waiting_for_trustd(why, since, now, notes);
        }
        if now - since >= self.s.stuck_after {
            return Verdict::Failed(Failure::Unreachable {
                after: now - since,
                reason,
            });
        }
        let why = if refused {
            "connection refused"
        } else {
            "no answer"
        };
        self.note(notes, format!("down ({why}): installing or rebooting"));
        Verdict::Wait {
            pause: self.s.poll_interval.min(QUICK),
        }
    }

    /// A worker whose port stays closed because its apid waits for trustd:
    /// before bootstrap that is as far as it gets; after it, the bound
    /// starts once the control planes are up.
    fn waiting_for_trustd(
        &mut self,
        why: String,
        since: Instant,
        now: Instant,
        notes: &mut Vec<String>,
    ) -> Verdict {
        let quick = Verdict::Wait {
            pause: self.s.poll_interval.min(QUICK),
        };
        if self.s.phase == Phase::PreBootstrap {
            // Give a node leaving maintenance or rebooting a few polls first.
            if now - since >= self.grace() {
                return Verdict::Ready(Reached {
                    summary: format!("waiting for the control plane: {why}"),
                    stage: Stage::Unknown,
                    ready: false,
                    warning: None,
                });
            }
            self.note(
                notes,
                "down (connection refused): installing, rebooting or waiting for trustd".into(),
            );
            return quick;
        }
        let Some(up) = self.control_planes_up_at else {
            self.note(notes, format!("waiting for the control plane: {why}"));
            return quick;
        };
        let from = since.max(up);
        if now - from >= self.s.stuck_after {
            return Verdict::Failed(Failure::TrustdClosed {
                after: now - from,
                why,
            });
        }
        self.note(
            notes,
            "the control planes are up; waiting for the worker's apid (trustd signs its certificate)".into(),
        );
        quick
    }

    /// A reading over the open connection: the boot first (a reboot loop
    /// outranks any status), then the status.
    fn sample(
        &mut self,
        status: Option<MachineStatus>,
        boot: BootIdentity,
        wall: u64,
        now: Instant,
        notes: &mut Vec<String>,
    ) -> Verdict {
        // How long this boot has run, when the node's clock and ours agree.
        let boot_age = wall
            .checked_sub(boot.boot_time)
            .filter(|age| *age < 30 * 24 * 3600)
            .map(Duration::from_secs);
        self.unreachable_since = None;
        if let Some(failure) = self.boot_changed(boot, notes) {
            return Verdict::Failed(failure);
        }
        if let Some(s) = status {
            self.status = Some(s);
        }
        let Some(status) = self.status.clone() else {
            return Verdict::Wait {
                pause: self.s.poll_interval,
            };
        };
        if self.awaiting_reboot() {
            if now - self.started >= self.s.stuck_after {
                return Verdict::Failed(Failure::RebootNotSeen {
                    after: now - self.started,
                    stage: status.stage,
                });
            }
            self.note(
                notes,
                format!(
                    "waiting for the reboot the apply asked for ({})",
                    describe(&status)
                ),
            );
            return Verdict::Wait {
                pause: self.s.poll_interval,
            };
        }
        let mut verdict = self.judge(status, now, notes);
        if self.s.control_plane {
            boot_timeout_warning(&mut verdict, boot_age);
        }
        verdict
    }

    /// The unattended install's status (Talos v1.14.0-rc.1
    /// internal/app/machined/pkg/controllers/runtime/unattended_install.go):
    /// `failed` ends the wait with the status's error; `pending` with an
    /// error is a selector that matches no disk, which Talos waits out
    /// forever (disks still being discovered get the grace); the other
    /// phases only say what the node does.
    fn install_status(
        &mut self,
        status: InstallStatus,
        now: Instant,
        notes: &mut Vec<String>,
    ) -> Verdict {
        let since = match self.install {
            Some((p, at)) if p == status.phase => at,
            _ => now,
        };
        self.install = Some((status.phase, since));
        let wait = Verdict::Wait {
            pause: self.s.poll_interval,
        };
        let selector = self.s.install_selector.clone().unwrap_or_default();
        match status.phase {
            InstallPhase::Failed => Verdict::Failed(Failure::UnattendedInstallFailed {
                error: status.error,
            }),
            InstallPhase::Pending if !status.error.is_empty() => {
                if now - since >= self.grace() {
                    return Verdict::Failed(Failure::NoInstallDisk {
                        selector,
                        error: status.error,
                    });
                }
                self.note(
                    notes,
                    format!("install pending: {} ({selector:?})", status.error),
                );
                wait
            }
            InstallPhase::Installing => {
                self.note(
                    notes,
                    format!(
                        "installing Talos to the disk {selector:?} picks (UnattendedInstallConfig)"
                    ),
                );
                wait
            }
            InstallPhase::WaitingForReboot => {
                self.note(
                    notes,
                    "installed; rebooting into the installed system".into(),
                );
                wait
            }
            InstallPhase::Pending | InstallPhase::Installed => wait,
        }
    }

    /// Compares `boot` with the boot last read; counts confirmed reboots.
    fn boot_changed(&mut self, boot: BootIdentity, notes: &mut Vec<String>) -> Option<Failure> {
        let gone = std::mem::replace(&mut self.gone_since_boot, false);
        let Some(before) = self.boot.replace(boot.clone()) else {
            // Nothing to compare with: going away and coming back is all
            // that shows the asked-for reboot.
            if gone && self.awaiting_reboot() {
                self.expected_reboot_seen = true;
                notes.push("went down and came back, as the apply asked".into());
            }
            return None;
        };
        let rebooted = match before.rebooted(&boot) {
            Some(proven) => proven,
            // Without a boot id, only the node's absence in between confirms it.
            None => gone,
        };
        if !rebooted {
            if before.boot_time != boot.boot_time {
                let why = if boot.boot_id.is_some() {
                    "same boot id"
                } else {
                    "the node never went away"
                };
                notes.push(format!(
                    "boot time moved {} → {} ({why}): the clock was stepped (NTP), not a reboot",
                    before.boot_time, boot.boot_time
                ));
            }
            return None;
        }
        let how = match (&before.boot_id, &boot.boot_id) {
            (Some(_), Some(_)) => "new boot id".to_string(),
            _ => format!("boot time {} → {}", before.boot_time, boot.boot_time),
        };
        if self.awaiting_reboot() {
            self.expected_reboot_seen = true;
            notes.push(format!("rebooted as the apply asked ({how})"));
            return None;
        }
        self.reboots += 1;
        notes.push(format!("rebooted ({how})"));
        (self.reboots >= REBOOT_LOOP).then_some(Failure::RebootLoop {
            reboots: self.reboots,
        })
    }

    /// The status against the goal: reached, stuck, or still moving.
    fn judge(&mut self, status: MachineStatus, now: Instant, notes: &mut Vec<String>) -> Verdict {
        if self.s.cni_none && waits_only_for_a_cni(&status, self.s.phase) {
            return Verdict::Ready(Reached {
                summary: NOT_READY_WITHOUT_CNI.into(),
                stage: status.stage,
                ready: false,
                warning: Some("the Kubernetes node stays NotReady until a CNI is installed (cluster.network.cni.name: none): install one (e.g. Cilium) next".into()),
            });
        }
        if let Some(summary) = goal_reached(&status, self.s.control_plane, self.s.phase) {
            return Verdict::Ready(Reached {
                summary,
                stage: status.stage,
                ready: status.ready,
                warning: None,
            });
        }
        let sig = (
            status.stage,
            status
                .unmet
                .iter()
                .map(|c| (c.name.clone(), c.reason.clone()))
                .collect::<Vec<_>>(),
        );
        if self.signature.as_ref() != Some(&sig) {
            self.note(notes, describe(&status));
            self.signature = Some(sig);
            self.since = now;
        } else if now - self.since >= self.s.stuck_after {
            let hint = stuck_hint(&status, self.s.control_plane, self.s.phase);
            return Verdict::Failed(Failure::Stuck {
                status,
                after: now - self.since,
                hint,
            });
        }
        Verdict::Wait {
            pause: self.s.poll_interval,
        }
    }
}

/// Talos reboots a node whose boot has not finished (on a control plane:
/// not bootstrapped) after `BootTimeout`, 70 minutes (v1.12.11
/// pkg/machinery/constants/constants.go; internal/app/machined/main.go).
const BOOT_TIMEOUT: Duration = Duration::from_secs(70 * 60);

/// From this boot age on, a control plane waiting for bootstrap is warned.
const BOOT_TIMEOUT_NEAR: Duration = Duration::from_secs(50 * 60);

/// What to say about the boot timeout to a control plane that has waited
/// `age` for bootstrap, once that nears the timeout.
fn boot_timeout_note(age: Duration) -> Option<String> {
    if age < BOOT_TIMEOUT_NEAR {
        return None;
    }
    let waited = format_duration(Duration::from_secs(age.as_secs() / 60 * 60));
    Some(match BOOT_TIMEOUT.checked_sub(age) {
        Some(left) if !left.is_zero() => format!(
            "this control plane has waited {waited} for bootstrap: Talos reboots a control plane that is not bootstrapped when its 70-minute boot timeout runs out, in about {}; run `talstrap bootstrap` before then",
            format_duration(Duration::from_secs(left.as_secs().div_ceil(60) * 60))
        ),
        _ => format!(
            "this control plane has waited {waited}, past Talos's 70-minute boot timeout: it reboots (and waits another 70 minutes) unless bootstrapped now"
        ),
    })
}

/// Adds the boot-timeout caveat to a control plane that is ready for
/// bootstrap, or stuck because etcd does not run.
fn boot_timeout_warning(verdict: &mut Verdict, age: Option<Duration>) {
    let Some(note) = age.and_then(boot_timeout_note) else {
        return;
    };
    match verdict {
        Verdict::Ready(r) if r.summary == "ready for bootstrap" && r.warning.is_none() => {
            r.warning = Some(note);
        }
        Verdict::Failed(Failure::Stuck { status, hint, .. })
            if status
                .unmet
                .iter()
                .any(|c| c.name == "services" && c.reason.contains("etcd")) =>
        {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        _ => {}
    }
}

impl Failure {
    /// Message and hint for the report (NotTalos is worded by the driver).
    pub(crate) fn message_and_hint(&self) -> (String, String) {
        match self {
            Failure::InstallFailed => (
                "back in maintenance mode after the config was applied: the install failed".into(),
                "Talos could not install: most often machine.install.disk / diskSelector matches no disk. Run `talstrap preflight` for this node to see its disks".into(),
            ),
            Failure::UnattendedInstallFailed { error } => (
                format!("the unattended install failed: {error} (UnattendedInstallStatus phase failed)"),
                "Talos could not install to the disk the UnattendedInstallConfig selector picked: check installer.image (or the Image Factory schematic the node booted from) and the disk, then fix the config and apply it again; `talosctl get unattendedinstallstatus` shows the status".into(),
            ),
            Failure::NoInstallDisk { selector, error } => (
                format!(
                    "the install waits forever: {error}: the UnattendedInstallConfig selector {selector:?} matches none of the node's disks"
                ),
                "Talos keeps the node booting (no CRI, Bootstrap \"not available yet\") until a disk matches: run `talstrap preflight` for this node to see its disks, fix provisioning.diskSelector.match and apply again".into(),
            ),
            Failure::NotTaken => (
                "still in maintenance mode after the apply: the node did not take its config".into(),
                "run `talstrap apply` for this node again and check its console".into(),
            ),
            Failure::NoConfig => (
                "node is in maintenance mode: it has no config".into(),
                "apply its config first: talstrap apply -n <node>".into(),
            ),
            Failure::NotTalos => ("not a Talos API".into(), String::new()),
            Failure::Unreachable { after, reason } => (
                format!("unreachable for {} ({reason})", format_duration(*after)),
                "the node did not come back: it may have crashed during install or reboot, or its address changed (DHCP). Check its console".into(),
            ),
            Failure::TrustdClosed { after, why } => (
                format!(
                    "apid still closed {} after the control planes came up ({why})",
                    format_duration(*after)
                ),
                "the worker cannot get its certificate from trustd (port 50001) through the cluster endpoint: check that the VIP or load balancer answers on 50001, or turn on cluster.discovery, and look at the worker's console".into(),
            ),
            Failure::RebootLoop { reboots } => (
                format!("reboot loop: the node rebooted {reboots} times while being watched"),
                "the node keeps rebooting: check its console for a kernel panic, a failing extension or a bad machine config".into(),
            ),
            Failure::RebootNotSeen { after, stage } => (
                format!(
                    "the reboot the apply asked for did not happen within {} (still {stage}, same boot)",
                    format_duration(*after)
                ),
                "the node took the config but has not rebooted: check its console and `talosctl dmesg`; a change that needs no reboot should be applied with --mode auto or no-reboot; raise --stuck-after if the node drains slowly".into(),
            ),
            Failure::Stuck {
                status,
                after,
                hint,
            } => (
                format!(
                    "stuck: {} unchanged for {}",
                    describe(status),
                    format_duration(*after)
                ),
                hint.clone(),
            ),
        }
    }
}

/// The summary of a node as far as it gets without a CNI.
pub(crate) const NOT_READY_WITHOUT_CNI: &str =
    "running; Kubernetes node NotReady until a CNI is installed";

/// After bootstrap, a node whose only unmet condition is its Kubernetes
/// node readiness is as far as it can get when the cluster has no CNI yet
/// (`cni: none`, the usual homelab setup that installs Cilium afterwards).
fn waits_only_for_a_cni(status: &MachineStatus, phase: Phase) -> bool {
    phase == Phase::PostBootstrap
        && status.stage == Stage::Running
        && !status.unmet.is_empty()
        && status.unmet.iter().all(|c| c.name == "nodeReady")
}

/// What the node looks like relative to the goal.
fn goal_reached(status: &MachineStatus, control_plane: bool, phase: Phase) -> Option<String> {
    if status.stage == Stage::Running && status.ready {
        return Some("running, ready".into());
    }
    if phase == Phase::PostBootstrap {
        return None;
    }
    // Before bootstrap only what depends on etcd (and the Kubernetes API it
    // carries) may be missing.
    let etcd_only = |reason: &str| {
        reason
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .all(|s| s.starts_with("etcd") || s.starts_with("kubelet"))
    };
    let waits_on_cluster = status.unmet.iter().all(|c| match c.name.as_str() {
        "services" => etcd_only(&c.reason),
        "staticPods" | "nodeReady" => true,
        _ => false,
    });
    if !waits_on_cluster {
        return None;
    }
    match (control_plane, status.stage) {
        (true, Stage::Booting) => status
            .unmet
            .iter()
            .any(|c| c.name == "services" && c.reason.contains("etcd"))
            .then(|| "ready for bootstrap".into()),
        (false, Stage::Booting | Stage::Running) if !status.unmet.is_empty() => {
            Some("waiting for the control plane".into())
        }
        _ => None,
    }
}

pub(crate) fn describe(status: &MachineStatus) -> String {
    if status.unmet.is_empty() {
        format!(
            "{}{}",
            status.stage,
            if status.ready { ", ready" } else { "" }
        )
    } else {
        let conds: Vec<String> = status
            .unmet
            .iter()
            .map(|c| format!("{}: {}", c.name, c.reason))
            .collect();
        format!("{} ({})", status.stage, conds.join("; "))
    }
}

/// A hint that matches why a node stopped moving.
fn stuck_hint(status: &MachineStatus, control_plane: bool, phase: Phase) -> String {
    for c in &status.unmet {
        match c.name.as_str() {
            "time" => {
                return "time is not in sync: make sure the node reaches its NTP servers (machine.time.servers)".into();
            }
            "network" => {
                return format!(
                    "network is not ready ({}): check addresses, routes and nameservers in the node's config",
                    c.reason
                );
            }
            "services"
                if c.reason.contains("etcd") && control_plane && phase == Phase::PostBootstrap =>
            {
                return "etcd is not running on this control plane: it may not have joined yet; check `talstrap bootstrap` ran and the other control planes are reachable".into();
            }
            "services" => {
                return format!(
                    "services not up: {}; see `talosctl services` / `talosctl logs` on the node",
                    c.reason
                );
            }
            "nodeReady" if phase == Phase::PostBootstrap => {
                return "the Kubernetes node is not Ready: with `cni: none` nodes stay NotReady until a CNI is installed".into();
            }
            _ => {}
        }
    }
    match status.stage {
        Stage::Installing => {
            "the install makes no progress: check the console; the installer image must be reachable".into()
        }
        Stage::Booting if phase == Phase::PostBootstrap => {
            "still booting after the bootstrap: check `talstrap bootstrap` succeeded".into()
        }
        _ => format!(
            "stage {} has not changed: check the node's console",
            status.stage
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::talos::UnmetCondition;

    fn st(stage: Stage, ready: bool, unmet: &[(&str, &str)]) -> MachineStatus {
        MachineStatus {
            stage,
            ready,
            unmet: unmet
                .iter()
                .map(|(n, r)| UnmetCondition {
                    name: n.to_string(),
                    reason: r.to_string(),
                })
                .collect(),
        }
    }

    fn settings() -> NodeWatch {
        NodeWatch {
            phase: Phase::PreBootstrap,
            control_plane: true,
            stuck_after: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            applied_now: false,
            sent_to: None,
            expect_reboot: None,
            cni_none: false,
            trustd_wait: None,
            install_selector: None,
        }
    }

    fn boot(t: u64, id: Option<&str>) -> BootIdentity {
        BootIdentity {
            boot_time: t,
            boot_id: id.map(str::to_string),
        }
    }

    fn sample(s: MachineStatus, b: BootIdentity) -> Observation {
        Observation::Sample {
            status: Some(s),
            boot: b,
            wall: 0,
        }
    }

    fn cert(fp: &str, ca: Option<&str>) -> MaintenanceCert {
        MaintenanceCert {
            fingerprint: fp.into(),
            ca_key_id: ca.map(str::to_string),
        }
    }

    fn booting() -> MachineStatus {
        st(Stage::Booting, false, &[("services", "cri not running")])
    }

    fn ready() -> MachineStatus {
        st(Stage::Running, true, &[])
    }

    fn is_wait(n: &Next) -> bool {
        matches!(n.verdict, Verdict::Wait { .. })
    }

    #[test]
    fn control_plane_waiting_only_for_etcd_is_ready_for_bootstrap() {
        let s = st(
            Stage::Booting,
            false,
            &[
                ("services", "etcd not running"),
                ("staticPods", "kube-apiserver-cp1 pending"),
                ("nodeReady", "node \"cp1\" status is not available yet"),
            ],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_some());
        assert!(goal_reached(&s, true, Phase::PostBootstrap).is_none());
    }

    #[test]
    fn other_unmet_conditions_are_not_ready_for_bootstrap() {
        let s = st(
            Stage::Booting,
            false,
            &[
                ("services", "etcd not running"),
                ("time", "time is not synced"),
            ],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
        let s = st(
            Stage::Booting,
            false,
            &[("services", "etcd not running, apid not healthy")],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
        let s = st(Stage::Installing, true, &[]);
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
    }

    #[test]
    fn running_and_ready_is_always_the_goal() {
        let s = ready();
        assert!(goal_reached(&s, false, Phase::PostBootstrap).is_some());
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_some());
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "node \"w1\" is not ready")],
        );
        assert!(goal_reached(&s, false, Phase::PostBootstrap).is_none());
    }

    #[test]
    fn without_a_cni_running_not_ready_is_as_far_as_a_node_gets() {
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "node \"w1\" is not ready")],
        );
        assert!(waits_only_for_a_cni(&s, Phase::PostBootstrap));
        assert!(!waits_only_for_a_cni(&s, Phase::PreBootstrap));
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "x"), ("staticPods", "y")],
        );
        assert!(!waits_only_for_a_cni(&s, Phase::PostBootstrap));
    }

    #[test]
    fn hints_follow_the_cause() {
        let s = st(Stage::Booting, false, &[("time", "time is not synced")]);
        assert!(stuck_hint(&s, true, Phase::PreBootstrap).contains("NTP"));
        let s = st(Stage::Booting, false, &[("services", "etcd not running")]);
        assert!(stuck_hint(&s, true, Phase::PostBootstrap).contains("etcd"));
    }

    fn install(phase: InstallPhase, error: &str) -> Observation {
        Observation::Install(InstallStatus {
            phase,
            error: error.into(),
            image: String::new(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_unattended_install_ends_the_wait_with_its_error() {
        let mut s = settings();
        s.install_selector = Some("disk.transport == \"nvme\"".into());
        let t0 = Instant::now();
        let mut w = Watch::new(s, t0);
        assert!(w.wants_install_status());
        let n = w.observe(install(InstallPhase::Installing, ""), t0);
        assert!(is_wait(&n), "{n:?}");
        assert!(n.notes.iter().any(|l| l.contains("installing")), "{n:?}");
        let n = w.observe(
            install(InstallPhase::Failed, "task \"upgrade\" failed: exit code 1"),
            t0 + Duration::from_secs(4),
        );
        let Verdict::Failed(f) = n.verdict else {
            panic!("{n:?}")
        };
        let (msg, hint) = f.message_and_hint();
        assert!(
            msg.contains("unattended install failed") && msg.contains("exit code 1"),
            "{msg}"
        );
        assert!(hint.contains("installer.image"), "{hint}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_selector_matching_no_disk_is_said_after_the_grace_not_at_stuck_after() {
        let mut s = settings();
        let expr = "disk.size > 100u * TB";
        s.install_selector = Some(expr.into());
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        let n = w.observe(
            install(InstallPhase::Pending, "no disk matched the selector"),
            t0,
        );
        assert!(is_wait(&n), "disks may still be discovered: {n:?}");
        assert!(n.notes.iter().any(|l| l.contains(expr)), "{n:?}");
        // Grace: five polls (10 s here), far below --stuck-after (300 s).
        let n = w.observe(
            install(InstallPhase::Pending, "no disk matched the selector"),
            t0 + Duration::from_secs(10),
        );
        let Verdict::Failed(f) = n.verdict else {
            panic!("{n:?}")
        };
        let (msg, hint) = f.message_and_hint();
        assert!(
            msg.contains("no disk matched the selector")
                && msg.contains(expr)
                && msg.contains("forever"),
            "{msg}"
        );
        assert!(hint.contains("preflight"), "{hint}");
        // A disk that shows up in time starts the install: no failure.
        let mut w = Watch::new(s, t0);
        w.observe(
            install(InstallPhase::Pending, "no disk matched the selector"),
            t0,
        );
        let n = w.observe(
            install(InstallPhase::Installing, ""),
            t0 + Duration::from_secs(6),
        );
        assert!(is_wait(&n));
        let n = w.observe(
            install(InstallPhase::Installed, ""),
            t0 + Duration::from_secs(20),
        );
        assert!(is_wait(&n));
        assert!(!w.wants_install_status(), "done: no more reads");
        // Pending without an error (phase not reported yet) never fails.
        let mut w = Watch::new(settings(), t0);
        let n = w.observe(
            install(InstallPhase::Pending, ""),
            t0 + Duration::from_secs(100),
        );
        assert!(is_wait(&n));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_maintenance_gets_a_few_polls_but_never_more_than_stuck_after() {
        let mut s = settings();
        s.applied_now = true;
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        assert!(is_wait(
            &w.observe(Observation::Maintenance(cert("A", Some("ca1"))), t0)
        ));
        let n = w.observe(
            Observation::Maintenance(cert("A", Some("ca1"))),
            t0 + Duration::from_secs(9),
        );
        assert!(is_wait(&n), "{n:?}");
        let n = w.observe(
            Observation::Maintenance(cert("A", Some("ca1"))),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(n.verdict, Verdict::Failed(Failure::NotTaken));
        s.stuck_after = Duration::from_secs(3);
        let mut w = Watch::new(s, t0);
        w.observe(Observation::Maintenance(cert("A", None)), t0);
        let n = w.observe(
            Observation::Maintenance(cert("A", None)),
            t0 + Duration::from_secs(3),
        );
        assert_eq!(n.verdict, Verdict::Failed(Failure::NotTaken));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_maintenance_ca_means_the_node_rebooted_into_maintenance() {
        let mut s = settings();
        s.applied_now = true;
        s.sent_to = Some(cert("A", Some("ca1")));
        let t0 = Instant::now();
        let mut w = Watch::new(s, t0);
        let n = w.observe(Observation::Maintenance(cert("B", Some("ca2"))), t0);
        assert_eq!(n.verdict, Verdict::Failed(Failure::InstallFailed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reissued_maintenance_certificate_is_not_a_reboot() {
        let mut s = settings();
        s.applied_now = true;
        s.sent_to = Some(cert("A", Some("ca1")));
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        let n = w.observe(Observation::Maintenance(cert("B", Some("ca1"))), t0);
        assert!(is_wait(&n), "{n:?}");
        assert!(n.notes.iter().any(|l| l.contains("re-issued")), "{n:?}");
        // A leaf without an issuer key id proves nothing either way.
        s.sent_to = Some(cert("A", None));
        let mut w = Watch::new(s.clone(), t0);
        let n = w.observe(Observation::Maintenance(cert("B", None)), t0);
        assert!(is_wait(&n), "{n:?}");
        // Then it leaves maintenance and boots into its config as usual.
        let n = w.observe(
            Observation::Down {
                refused: true,
                reason: "refused".into(),
            },
            t0 + Duration::from_secs(1),
        );
        assert!(is_wait(&n));
        w.observe(Observation::Connected, t0 + Duration::from_secs(2));
        let n = w.observe(
            sample(
                st(Stage::Booting, false, &[("services", "etcd not running")]),
                boot(100, Some("b1")),
            ),
            t0 + Duration::from_secs(2),
        );
        assert!(matches!(n.verdict, Verdict::Ready(_)), "{n:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn maintenance_after_the_node_went_away_is_a_failed_install() {
        let mut s = settings();
        s.applied_now = true;
        let t0 = Instant::now();
        let mut w = Watch::new(s, t0);
        w.observe(
            Observation::Down {
                refused: true,
                reason: "refused".into(),
            },
            t0,
        );
        let n = w.observe(
            Observation::Maintenance(cert("A", None)),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(n.verdict, Verdict::Failed(Failure::InstallFailed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_step_is_not_a_reboot_and_never_a_reboot_loop() {
        let t0 = Instant::now();
        // With a boot id: the same id proves the same boot.
        let mut w = Watch::new(settings(), t0);
        for i in 0..6u64 {
            let n = w.observe(
                sample(booting(), boot(1000 + i * 3600, Some("b1"))),
                t0 + Duration::from_secs(i),
            );
            assert!(is_wait(&n), "{n:?}");
            if i > 0 {
                assert!(
                    n.notes.iter().any(|l| l.contains("clock was stepped")),
                    "{n:?}"
                );
            }
        }
        // Without one: the node never went away, so it is a step, not a reboot.
        let mut w = Watch::new(settings(), t0);
        for i in 0..6u64 {
            let n = w.observe(
                sample(booting(), boot(1000 + i * 3600, None)),
                t0 + Duration::from_secs(i),
            );
            assert!(is_wait(&n), "{n:?}");
        }
        // Even after the connection dropped, the same boot id is the same boot.
        let mut w = Watch::new(settings(), t0);
        w.observe(sample(booting(), boot(1000, Some("b1"))), t0);
        for i in 1..6u64 {
            w.observe(Observation::Lost, t0 + Duration::from_secs(i));
            let n = w.observe(
                sample(booting(), boot(1000 + i, Some("b1"))),
                t0 + Duration::from_secs(i),
            );
            assert!(is_wait(&n), "{n:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn confirmed_reboots_make_a_reboot_loop() {
        let t0 = Instant::now();
        let mut w = Watch::new(settings(), t0);
        w.observe(sample(booting(), boot(1000, Some("b0"))), t0);
        let mut last = None;
        for i in 1..=3u64 {
            last = Some(w.observe(
                sample(booting(), boot(1000 + i, Some(&format!("b{i}")))),
                t0 + Duration::from_secs(i),
            ));
        }
        let n = last.unwrap();
        assert_eq!(
            n.verdict,
            Verdict::Failed(Failure::RebootLoop { reboots: 3 })
        );
        // Without a boot id, going away in between confirms each one.
        let mut w = Watch::new(settings(), t0);
        w.observe(sample(booting(), boot(1000, None)), t0);
        let mut last = None;
        for i in 1..=3u64 {
            w.observe(
                Observation::Down {
                    refused: true,
                    reason: "refused".into(),
                },
                t0 + Duration::from_secs(i),
            );
            last = Some(w.observe(
                sample(booting(), boot(1000 + i, None)),
                t0 + Duration::from_secs(i),
            ));
        }
        assert_eq!(
            last.unwrap().verdict,
            Verdict::Failed(Failure::RebootLoop { reboots: 3 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_expected_reboot_must_be_seen_before_ready() {
        let mut s = settings();
        s.phase = Phase::PostBootstrap;
        s.expect_reboot = Some(ExpectReboot {
            since: Some(boot(1000, Some("b0"))),
        });
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        // Still the old boot, running and ready: not yet.
        let n = w.observe(sample(ready(), boot(1000, Some("b0"))), t0);
        assert!(is_wait(&n), "{n:?}");
        assert!(n.notes.iter().any(|l| l.contains("waiting for the reboot")));
        // A clock step is not the reboot either.
        let n = w.observe(
            sample(ready(), boot(9000, Some("b0"))),
            t0 + Duration::from_secs(1),
        );
        assert!(is_wait(&n), "{n:?}");
        // Down, then back with a new boot: now ready, and the reboot is not a loop.
        w.observe(
            Observation::Down {
                refused: true,
                reason: "refused".into(),
            },
            t0 + Duration::from_secs(2),
        );
        let n = w.observe(
            sample(ready(), boot(1010, Some("b1"))),
            t0 + Duration::from_secs(3),
        );
        assert!(matches!(n.verdict, Verdict::Ready(_)), "{n:?}");
        assert!(
            n.notes
                .iter()
                .any(|l| l.contains("rebooted as the apply asked"))
        );

        // Without a boot id, a new boot time while the node never left is not enough.
        let mut s2 = s.clone();
        s2.expect_reboot = Some(ExpectReboot {
            since: Some(boot(1000, None)),
        });
        let mut w = Watch::new(s2, t0);
        let n = w.observe(sample(ready(), boot(1500, None)), t0);
        assert!(is_wait(&n), "{n:?}");
        w.observe(Observation::Lost, t0 + Duration::from_secs(1));
        let n = w.observe(
            sample(ready(), boot(1600, None)),
            t0 + Duration::from_secs(1),
        );
        assert!(matches!(n.verdict, Verdict::Ready(_)), "{n:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reboot_that_never_comes_has_its_own_cause() {
        let mut s = settings();
        s.phase = Phase::PostBootstrap;
        s.stuck_after = Duration::from_secs(60);
        s.expect_reboot = Some(ExpectReboot {
            since: Some(boot(1000, Some("b0"))),
        });
        let t0 = Instant::now();
        let mut w = Watch::new(s, t0);
        for i in 0..60u64 {
            let n = w.observe(
                sample(ready(), boot(1000, Some("b0"))),
                t0 + Duration::from_secs(i),
            );
            assert!(is_wait(&n), "{i}: {n:?}");
        }
        let n = w.observe(
            sample(ready(), boot(1000, Some("b0"))),
            t0 + Duration::from_secs(60),
        );
        let Verdict::Failed(f @ Failure::RebootNotSeen { .. }) = n.verdict else {
            panic!("{n:?}");
        };
        let (msg, hint) = f.message_and_hint();
        assert!(msg.contains("did not happen within 1m"), "{msg}");
        assert!(hint.contains("has not rebooted"), "{hint}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_waiting_for_trustd_is_expected_before_bootstrap_and_bounded_after() {
        let refused = || Observation::Down {
            refused: true,
            reason: "connection refused".into(),
        };
        let mut s = settings();
        s.control_plane = false;
        s.applied_now = true;
        s.stuck_after = Duration::from_secs(30);
        s.trustd_wait = Some("the cluster endpoint is a VIP".into());
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        assert!(is_wait(&w.observe(refused(), t0)));
        let n = w.observe(refused(), t0 + Duration::from_secs(10));
        let Verdict::Ready(r) = n.verdict else {
            panic!("{n:?}");
        };
        assert!(
            r.summary
                .starts_with("waiting for the control plane: the cluster endpoint is a VIP")
        );

        // After bootstrap: no bound while the control planes are not up...
        s.phase = Phase::PostBootstrap;
        let mut w = Watch::new(s.clone(), t0);
        assert!(w.wants_control_planes());
        for i in 0..10u64 {
            let n = w.observe(refused(), t0 + Duration::from_secs(i * 30));
            assert!(is_wait(&n), "{n:?}");
        }
        // ...then the bound runs from the moment they are.
        let up = t0 + Duration::from_secs(300);
        w.observe(Observation::ControlPlanesUp, up);
        assert!(!w.wants_control_planes());
        assert!(is_wait(&w.observe(refused(), up + Duration::from_secs(29))));
        let n = w.observe(refused(), up + Duration::from_secs(30));
        assert!(
            matches!(n.verdict, Verdict::Failed(Failure::TrustdClosed { .. })),
            "{n:?}"
        );
        // A silent worker (no answer at all) is not waiting for trustd.
        let mut w = Watch::new(s, t0);
        let silent = || Observation::Down {
            refused: false,
            reason: "timed out".into(),
        };
        w.observe(silent(), t0);
        let n = w.observe(silent(), t0 + Duration::from_secs(30));
        assert!(
            matches!(n.verdict, Verdict::Failed(Failure::Unreachable { .. })),
            "{n:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_control_plane_near_the_boot_timeout_is_told_so() {
        let etcd_only = st(Stage::Booting, false, &[("services", "etcd not running")]);
        let at = |age_min: u64| Observation::Sample {
            status: Some(etcd_only.clone()),
            boot: boot(1_000_000, None),
            wall: 1_000_000 + age_min * 60,
        };
        let t0 = Instant::now();
        let mut w = Watch::new(settings(), t0);
        let Verdict::Ready(r) = w.observe(at(10), t0).verdict else {
            panic!()
        };
        assert_eq!(r.warning, None, "far from the timeout");
        let mut w = Watch::new(settings(), t0);
        let Verdict::Ready(r) = w.observe(at(55), t0).verdict else {
            panic!()
        };
        let warning = r.warning.unwrap();
        assert!(warning.contains("70-minute boot timeout"), "{warning}");
        assert!(warning.contains("in about 15m"), "{warning}");
        let mut w = Watch::new(settings(), t0);
        let Verdict::Ready(r) = w.observe(at(75), t0).verdict else {
            panic!()
        };
        assert!(
            r.warning
                .unwrap()
                .contains("past Talos's 70-minute boot timeout")
        );
        // A node clock far from ours says nothing.
        let mut w = Watch::new(settings(), t0);
        let skewed = Observation::Sample {
            status: Some(etcd_only.clone()),
            boot: boot(2_000_000, None),
            wall: 1_000_000,
        };
        let Verdict::Ready(r) = w.observe(skewed, t0).verdict else {
            panic!()
        };
        assert_eq!(r.warning, None);
        // After bootstrap, a control plane stuck without etcd gets it in its hint.
        let mut s = settings();
        s.phase = Phase::PostBootstrap;
        s.stuck_after = Duration::from_secs(1);
        let mut w = Watch::new(s, t0);
        w.observe(at(60), t0);
        let Verdict::Failed(f) = w.observe(at(60), t0 + Duration::from_secs(1)).verdict else {
            panic!()
        };
        assert!(f.message_and_hint().1.contains("70-minute boot timeout"));
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_state_for_stuck_after_is_stuck_and_down_for_stuck_after_is_unreachable() {
        let mut s = settings();
        s.stuck_after = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut w = Watch::new(s.clone(), t0);
        let t = st(Stage::Booting, false, &[("time", "time is not synced")]);
        assert!(is_wait(&w.observe(sample(t.clone(), boot(1, None)), t0)));
        let n = w.observe(
            Observation::Sample {
                status: None,
                boot: boot(1, None),
                wall: 0,
            },
            t0 + Duration::from_secs(29),
        );
        assert!(is_wait(&n));
        let n = w.observe(
            Observation::Sample {
                status: None,
                boot: boot(1, None),
                wall: 0,
            },
            t0 + Duration::from_secs(30),
        );
        let Verdict::Failed(f @ Failure::Stuck { .. }) = n.verdict else {
            panic!("{n:?}");
        };
        assert!(f.message_and_hint().1.contains("NTP"));

        let mut w = Watch::new(s, t0);
        let down = || Observation::Down {
            refused: false,
            reason: "timed out".into(),
        };
        assert!(is_wait(&w.observe(down(), t0)));
        let n = w.observe(down(), t0 + Duration::from_secs(30));
        assert!(
            matches!(n.verdict, Verdict::Failed(Failure::Unreachable { .. })),
            "{n:?}"
        );
    }
}
