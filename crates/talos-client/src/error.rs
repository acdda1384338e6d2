//! Errors of the Talos protocol layer, and the one place that decides how
//! each failure is classified (retry it, give up, distrust the peer, or blame
//! the input).
//!
//! Classification matters more than wording here: the pipeline retries only
//! [`ErrorClass::Retryable`] errors, and never retries a trust failure (a
//! node that presents a foreign certificate, or rejects ours, will not change
//! its mind). Errors that tonic synthesises locally carry their cause in the
//! `source()` chain (hyper → io → rustls), so that chain is walked to find
//! what really happened.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};
use tonic::Code;

use super::talosconfig::TalosconfigError;

/// How a caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: the same call may succeed later (node booting, rebooting,
    /// busy, or the network dropped the connection).
    Retryable,
    /// The node answered and the answer will not change by retrying.
    Permanent,
    /// TLS trust failed in either direction, or the node refused our
    /// credentials.
    Trust,
    /// Our own input is wrong (bad talosconfig, invalid argument).
    Input,
}

/// What happened below gRPC, decided once from the error chain (io kinds,
/// rustls and hyper errors) when the error is made, and kept as data so that
/// no caller has to read an error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The connection was refused, or closed while it was being set up
    /// (before any request went out): nothing was sent.
    Refused,
    /// An open connection was reset, closed or hit EOF: a request in
    /// flight may have reached the node.
    Dropped,
    /// An open connection gave no answer in time.
    TimedOut,
    /// TLS failed for a reason other than trust (protocol error, alert).
    Tls,
    /// The peer does not speak the Talos API (no HTTP/2, garbage), or
    /// HTTP/2 itself broke.
    Protocol,
}

/// Why trust failed, for the hint the operator gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustKind {
    /// The node's certificate is not signed by the talosconfig CA.
    ForeignIssuer,
    /// The node is in maintenance mode (self-signed maintenance certificate).
    MaintenanceMode,
    /// The certificate does not name the dialled address.
    WrongName,
    /// The certificate has expired or is not valid yet: a clock problem.
    Clock,
    /// The maintenance certificate does not match a `--cert-fingerprint` pin.
    PinMismatch,
    /// The node refused our client certificate (or wants one we lack).
    ClientCertRejected,
    /// The node refused the call for our credentials' roles.
    Denied,
    /// Anything else the verifier refused.
    Other,
}

/// A failure talking to one Talos node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TalosError {
    /// The TCP connection could not be opened (refused, timed out,
    /// unreachable).
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },

    /// TCP connected but the TLS handshake did not finish in time.
    #[error("{addr}: TLS handshake did not finish within {after:?}")]
    TlsTimeout { addr: SocketAddr, after: Duration },

    /// TLS trust failed: the server certificate is not ours, or the node
    /// rejected our client certificate. `detail` is a complete sentence that
    /// names the address and, when known, the issuer.
    #[error("{detail}")]
    Trust {
        addr: SocketAddr,
        detail: String,
        kind: TrustKind,
    },

    /// The connection failed below gRPC (reset, EOF, TLS protocol error).
    #[error("{addr}: {detail}")]
    Transport {
        addr: SocketAddr,
        detail: String,
        class: ErrorClass,
        code: Option<Code>,
        cause: Cause,
    },

    /// Our own deadline for the call expired.
    #[error("{rpc} on {addr}: no answer within {after:?}")]
    Timeout {
        addr: SocketAddr,
        rpc: &'static str,
        after: Duration,
    },

    /// The node answered the call with a gRPC error status.
    #[error("{rpc} on {addr}: {code:?}: {message}")]
    Status {
        addr: SocketAddr,
        rpc: &'static str,
        code: Code,
        message: String,
    },

    /// The gRPC call succeeded but a reply message carries
    /// `metadata.error`: that node failed (apid proxy convention).
    #[error("{rpc} on {addr} (node {node}): {message}")]
    Node {
        addr: SocketAddr,
        rpc: &'static str,
        node: String,
        code: Option<Code>,
        message: String,
    },

    /// The reply had no messages at all.
    #[error("{rpc} on {addr}: the reply carried no messages")]
    EmptyReply { addr: SocketAddr, rpc: &'static str },

    /// The reply could not be understood.
    #[error("{rpc} on {addr}: unexpected reply: {detail}")]
    BadReply {
        addr: SocketAddr,
        rpc: &'static str,
        detail: String,
    },

    /// The talosconfig could not be used.
    #[error(transparent)]
    Talosconfig(Arc<TalosconfigError>),

    /// A local argument is invalid (e.g. a node name that cannot be sent as
    /// gRPC metadata).
    #[error("{0}")]
    Input(String),
}

impl From<TalosconfigError> for TalosError {
    fn from(e: TalosconfigError) -> Self {
        TalosError::Talosconfig(Arc::new(e))
    }
}

/// The message Talos (v1.12.x patch releases) uses when a second
/// ApplyConfiguration races a first one; worth retrying.
const APPLY_IN_PROGRESS: &str = "another apply configuration is already in progress";

/// Class of a gRPC status code sent by a node.
pub(crate) fn class_of_code(code: Code, message: &str) -> ErrorClass {
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted => {
            ErrorClass::Retryable
        }
        Code::FailedPrecondition if message.contains(APPLY_IN_PROGRESS) => ErrorClass::Retryable,
        Code::Unauthenticated | Code::PermissionDenied => ErrorClass::Trust,
        Code::InvalidArgument => ErrorClass::Input,
        _ => ErrorClass::Permanent,
    }
}

impl TalosError {
    /// How the caller should react.
    pub fn class(&self) -> ErrorClass {
        match self {
            TalosError::Unreachable { .. } | TalosError::TlsTimeout { .. } => ErrorClass::Retryable,
            TalosError::Timeout { .. } => ErrorClass::Retryable,
            TalosError::Trust { .. } => ErrorClass::Trust,
            TalosError::Transport { class, .. } => *class,
            TalosError::Status { code, message, .. } => class_of_code(*code, message),
            TalosError::Node { code, message, .. } => match code {
                Some(code) => class_of_code(*code, message),
                None => ErrorClass::Permanent,
            },
            TalosError::EmptyReply { .. } | TalosError::BadReply { .. } => ErrorClass::Permanent,
            TalosError::Talosconfig(_) | TalosError::Input(_) => ErrorClass::Input,
        }
    }

    /// The gRPC code, when there is one: the node's status (also when it came
    /// inside `metadata.status`), `Unavailable` for connection failures and
    /// `DeadlineExceeded` for our own deadline, as a gRPC client would say.
    /// Crate-private: callers ask the predicates below instead.
    pub(crate) fn code(&self) -> Option<Code> {
        match self {
            TalosError::Unreachable { .. } | TalosError::TlsTimeout { .. } => {
                Some(Code::Unavailable)
            }
            TalosError::Timeout { .. } => Some(Code::DeadlineExceeded),
            TalosError::Transport { code, .. } => *code,
            TalosError::Status { code, .. } => Some(*code),
            TalosError::Node { code, .. } => *code,
            TalosError::Trust { .. }
            | TalosError::EmptyReply { .. }
            | TalosError::BadReply { .. }
            | TalosError::Talosconfig(_)
            | TalosError::Input(_) => None,
        }
    }

    /// The server's message or the local cause, on one line.
    pub fn message(&self) -> String {
        let text = match self {
            TalosError::Unreachable { reason, .. } => reason.clone(),
            TalosError::TlsTimeout { after, .. } => {
                format!("TLS handshake did not finish within {after:?}")
            }
            TalosError::Trust { detail, .. } => detail.clone(),
            TalosError::Transport { detail, .. } => detail.clone(),
            TalosError::Timeout { after, .. } => format!("no answer within {after:?}"),
            TalosError::Status { message, .. } | TalosError::Node { message, .. } => {
                message.clone()
            }
            TalosError::EmptyReply { .. } => "the reply carried no messages".to_string(),
            TalosError::BadReply { detail, .. } => detail.clone(),
            TalosError::Talosconfig(e) => e.to_string(),
            TalosError::Input(m) => m.clone(),
        };
        one_line(&text)
    }

    /// Shorthand for `class() == Retryable`.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// The gRPC code's name (`"FailedPrecondition"`), for reports.
    pub fn code_name(&self) -> Option<String> {
        self.code().map(|c| format!("{c:?}"))
    }

    /// The request may have reached the node although no reply came back:
    /// our deadline expired, the node's own deadline did (some servers say
    /// Cancelled), or an open connection dropped. A refused connection, a
    /// TLS failure or a status the node chose to send mean it was not
    /// carried out. Callers use this to never resend a request that is not
    /// safe to send twice.
    pub fn reply_may_be_lost(&self) -> bool {
        match self {
            TalosError::Timeout { .. } => true,
            TalosError::Transport { cause, .. } => {
                matches!(cause, Cause::Dropped | Cause::TimedOut | Cause::Protocol)
            }
            TalosError::Status { code, .. }
            | TalosError::Node {
                code: Some(code), ..
            } => {
                matches!(code, Code::DeadlineExceeded | Code::Cancelled)
            }
            _ => false,
        }
    }

    /// Nothing answers at the transport level: the node is down, booting or
    /// rebooting (as opposed to a node that answered with an error).
    pub fn node_down(&self) -> bool {
        matches!(
            self,
            TalosError::Unreachable { .. }
                | TalosError::TlsTimeout { .. }
                | TalosError::Transport { .. }
        )
    }

    /// The TCP connect itself failed (nothing answered, or the port is
    /// closed): no TLS handshake happened. `Some(refused)`: whether it was
    /// actively refused (the host is up, nothing listens), as
    /// [`crate::ProbeResult::refused`] tells it for a probe.
    pub fn connect_failed(&self) -> Option<bool> {
        match self {
            TalosError::Unreachable { reason, .. } => {
                Some(reason.to_ascii_lowercase().contains("refused"))
            }
            _ => None,
        }
    }

    /// No answer at all: [`node_down`](Self::node_down), or our own
    /// deadline ran out on a silent node (a hung or powered-off machine
    /// whose connection is still open answers nothing, not even an error).
    pub fn not_answering(&self) -> bool {
        self.node_down() || matches!(self, TalosError::Timeout { .. })
    }

    /// The node says the thing already exists (Bootstrap: etcd data present).
    pub fn already_exists(&self) -> bool {
        self.code() == Some(Code::AlreadyExists)
    }

    /// The node does not implement the call (older Talos, maintenance mode,
    /// or a role that does not serve it).
    pub fn unimplemented(&self) -> bool {
        self.code() == Some(Code::Unimplemented)
    }

    /// The node authenticated us and refused the call for the roles in our
    /// client certificate (PermissionDenied, Talos's RBAC "not authorized",
    /// e.g. `os:reader` calling ApplyConfiguration): not a trust problem.
    pub fn not_authorized(&self) -> bool {
        self.code() == Some(Code::PermissionDenied)
    }

    /// The node refused the call in its current state (FailedPrecondition):
    /// often "not yet", sometimes "never on this node".
    pub fn precondition_failed(&self) -> bool {
        self.code() == Some(Code::FailedPrecondition)
    }

    /// Talos's refusal of an apply while another one is being processed
    /// (machined's apply handler, v1.12.9+ / v1.13.3+): someone else is
    /// changing the node right now.
    pub fn apply_in_progress(&self) -> bool {
        self.precondition_failed() && self.message().contains(APPLY_IN_PROGRESS)
    }

    /// Talos's refusal of an apply while it reboots for one it already took
    /// (machined's apply handler, v1.12: "configuration already applied and
    /// node is rebooting"): the earlier request landed.
    pub fn rebooting_for_applied_config(&self) -> bool {
        self.precondition_failed()
            && self
                .message()
                .contains("already applied and node is rebooting")
    }

    /// Why trust failed, when it did.
    pub fn trust_kind(&self) -> Option<TrustKind> {
        match self {
            TalosError::Trust { kind, .. } => Some(*kind),
            _ if self.class() == ErrorClass::Trust => Some(TrustKind::Denied),
            _ => None,
        }
    }

    /// The node address this error is about, when there is one.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            TalosError::Unreachable { addr, .. }
            | TalosError::TlsTimeout { addr, .. }
            | TalosError::Trust { addr, .. }
            | TalosError::Transport { addr, .. }
            | TalosError::Timeout { addr, .. }
            | TalosError::Status { addr, .. }
            | TalosError::Node { addr, .. }
            | TalosError::EmptyReply { addr, .. }
            | TalosError::BadReply { addr, .. } => Some(*addr),
            TalosError::Talosconfig(_) | TalosError::Input(_) => None,
        }
    }

    /// Turns a status returned by a tonic call into a classified error.
    ///
    /// A status the node sent has no `source()`; one that tonic made up
    /// locally (connection dropped, TLS alert, our deadline) carries the real
    /// cause in its source chain.
    pub(crate) fn from_status(status: tonic::Status, addr: SocketAddr, rpc: &'static str) -> Self {
        if let Some(source) = std::error::Error::source(&status) {
            if let Some(found) = from_chain(source, addr, Some(rpc)) {
                return found;
            }
            if let Some(cause) = dropped_connection_cause(source) {
                return TalosError::Transport {
                    addr,
                    detail: format!("{rpc}: connection lost: {}", chain_text(source)),
                    class: ErrorClass::Retryable,
                    code: Some(Code::Unavailable),
                    cause,
                };
            }
        }
        TalosError::Status {
            addr,
            rpc,
            code: status.code(),
            message: one_line(status.message()),
        }
    }

    /// Our deadline for `rpc` expired.
    /// The trust error one of our verifiers' refusals becomes.
    pub(crate) fn from_trust(addr: SocketAddr, failure: &TrustFailure) -> Self {
        TalosError::Trust {
            addr,
            detail: failure.to_string(),
            kind: failure.kind(),
        }
    }

    pub(crate) fn timeout(addr: SocketAddr, rpc: &'static str, after: Duration) -> Self {
        TalosError::Timeout { addr, rpc, after }
    }
}

/// Wraps a [`TalosError`] so that it can travel through tonic's connector as
/// a boxed error and be recovered intact on the other side.
#[derive(Debug, Clone)]
pub(crate) struct DialError(pub(crate) TalosError);

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for DialError {}

/// Why a server certificate was refused by one of our verifiers. It rides
/// inside `rustls::CertificateError::Other` so that the final error can say
/// which CA did not match.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TrustFailure {
    #[error(
        "server certificate for {ip} is not signed by the talosconfig CA (issuer: {issuer}); \
         the node belongs to another cluster or the talosconfig is for another cluster"
    )]
    ForeignIssuer { ip: String, issuer: String },
    #[error(
        "{ip} is in maintenance mode (no config yet): it presents the self-signed maintenance \
         certificate, not one from the talosconfig CA; apply its config first"
    )]
    MaintenanceMode { ip: String },
    #[error("server certificate for {ip} is not valid for that address (it names: {names})")]
    WrongName { ip: String, names: String },
    #[error("server certificate for {ip} has expired (not after {not_after}); check the clocks")]
    Expired { ip: String, not_after: String },
    #[error(
        "server certificate for {ip} is not valid yet (not before {not_before}); check the clocks"
    )]
    NotYetValid { ip: String, not_before: String },
    #[error(
        "server certificate for {ip} has SPKI fingerprint {actual}, which is not one of the \
         pinned fingerprints (a pin goes stale whenever the node re-issues its maintenance \
         certificate)"
    )]
    PinMismatch { ip: String, actual: String },
    #[error("server certificate for {ip} was rejected: {detail}")]
    Other { ip: String, detail: String },
}

impl TrustFailure {
    fn kind(&self) -> TrustKind {
        match self {
            TrustFailure::ForeignIssuer { .. } => TrustKind::ForeignIssuer,
            TrustFailure::MaintenanceMode { .. } => TrustKind::MaintenanceMode,
            TrustFailure::WrongName { .. } => TrustKind::WrongName,
            TrustFailure::Expired { .. } | TrustFailure::NotYetValid { .. } => TrustKind::Clock,
            TrustFailure::PinMismatch { .. } => TrustKind::PinMismatch,
            TrustFailure::Other { .. } => TrustKind::Other,
        }
    }
}

/// Walks an error's `source()` chain for a cause we recognise.
///
/// `io::Error` hides the error it wraps from `source()` (it returns the
/// wrapped error's *source*), so wrapped errors are reached with
/// `get_ref()`. `rpc` names the call the chain belongs to, if any.
pub(crate) fn from_chain(
    err: &(dyn StdError + 'static),
    addr: SocketAddr,
    rpc: Option<&'static str>,
) -> Option<TalosError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(dial) = e.downcast_ref::<DialError>() {
            return Some(dial.0.clone());
        }
        if let Some(trust) = e.downcast_ref::<TrustFailure>() {
            return Some(TalosError::from_trust(addr, trust));
        }
        if e.is::<tonic::TimeoutExpired>() {
            // The client layer turns this into TalosError::Timeout with
            // the configured deadline.
            return Some(TalosError::Transport {
                addr,
                detail: format!("{}: deadline expired", rpc.unwrap_or("call")),
                class: ErrorClass::Retryable,
                code: Some(Code::DeadlineExceeded),
                cause: Cause::TimedOut,
            });
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(from_rustls(tls, addr));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn StdError + 'static) = inner;
                if let Some(found) = from_chain(inner, addr, rpc) {
                    return Some(found);
                }
            }
            if let Some(found) = alert_from_text(&io.to_string(), addr) {
                return Some(found);
            }
            if let Some(found) = from_io_kind(io, addr, rpc) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// I/O error kinds that mean "the connection went away": the node is
/// rebooting, restarting apid, or the network blinked.
fn from_io_kind(io: &std::io::Error, addr: SocketAddr, rpc: Option<&str>) -> Option<TalosError> {
    use std::io::ErrorKind as K;
    let cause = match io.kind() {
        K::ConnectionRefused | K::NotConnected => Cause::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            Cause::Dropped
        }
        K::TimedOut => Cause::TimedOut,
        _ => return None,
    };
    Some(TalosError::Transport {
        addr,
        detail: match rpc {
            Some(rpc) => format!("{rpc}: connection lost: {io}"),
            None => format!("connection lost: {io}"),
        },
        class: ErrorClass::Retryable,
        code: Some(Code::Unavailable),
        cause,
    })
}

/// A TLS alert known only by its text. hyper's HTTP/2 layer keeps I/O
/// errors as kind + message, so once the connection is up (TLS 1.3: the
/// client-certificate verdict arrives after the handshake) the rustls error
/// type is gone and only rustls's wording, "received fatal alert: <Name>",
/// is left.
fn alert_from_text(text: &str, addr: SocketAddr) -> Option<TalosError> {
    const CLIENT_CERT_ALERTS: [&str; 8] = [
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "AccessDenied",
        "CertificateUnknown",
        "CertificateExpired",
        "CertificateRevoked",
        "UnsupportedCertificate",
    ];
    let (_, rest) = text.split_once("received fatal alert: ")?;
    let name: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    Some(if CLIENT_CERT_ALERTS.contains(&name.as_str()) {
        TalosError::Trust {
            addr,
            detail: client_cert_rejected(addr, &name),
            kind: TrustKind::ClientCertRejected,
        }
    } else {
        TalosError::Transport {
            addr,
            detail: format!("TLS failed: received fatal alert {name}"),
            class: ErrorClass::Permanent,
            code: None,
            cause: Cause::Tls,
        }
    })
}

fn client_cert_rejected(addr: SocketAddr, alert: &str) -> String {
    format!(
        "{addr} rejected our client certificate (TLS alert {alert}); the node does not trust the \
         talosconfig client certificate, or it is not in maintenance mode and needs one"
    )
}

/// TLS alerts a server sends when it does not accept our client certificate
/// (Talos apid: `certificate_required` in TLS 1.3, `bad_certificate` in 1.2).
fn is_client_cert_alert(alert: &AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
    )
}

fn from_rustls(err: &rustls::Error, addr: SocketAddr) -> TalosError {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            let (detail, kind) = match other.0.downcast_ref::<TrustFailure>() {
                Some(trust) => (trust.to_string(), trust.kind()),
                None => (
                    format!("server certificate for {} was rejected: {other}", addr.ip()),
                    TrustKind::Other,
                ),
            };
            TalosError::Trust { addr, detail, kind }
        }
        rustls::Error::InvalidCertificate(cert) => TalosError::Trust {
            addr,
            detail: format!(
                "server certificate for {} was rejected: {}",
                addr.ip(),
                describe_cert_error(cert)
            ),
            kind: cert_error_kind(cert),
        },
        rustls::Error::AlertReceived(alert) if is_client_cert_alert(alert) => TalosError::Trust {
            addr,
            detail: client_cert_rejected(addr, &format!("{alert:?}")),
            kind: TrustKind::ClientCertRejected,
        },
        other => TalosError::Transport {
            addr,
            detail: format!("TLS failed: {other}"),
            class: ErrorClass::Permanent,
            code: None,
            cause: Cause::Tls,
        },
    }
}

fn cert_error_kind(err: &CertificateError) -> TrustKind {
    match err {
        CertificateError::UnknownIssuer => TrustKind::ForeignIssuer,
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => TrustKind::Clock,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TrustKind::WrongName
        }
        _ => TrustKind::Other,
    }
}

/// Short words for the certificate errors webpki reports.
pub(crate) fn describe_cert_error(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => "not signed by a trusted CA".to_string(),
        CertificateError::BadSignature => "bad signature".to_string(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_string()
        }
        CertificateError::NotValidForName => "not valid for the dialled address".to_string(),
        CertificateError::NotValidForNameContext { presented, .. } => {
            format!(
                "not valid for the dialled address (it names: {})",
                presented.join(", ")
            )
        }
        other => format!("{other:?}"),
    }
}

/// Text-level fallback for drops that surface only as hyper/h2 messages
/// (hyper keeps some causes as text only). This is the one place where
/// error text is read; everything else asks [`TalosError`]'s predicates.
fn dropped_connection_cause(err: &(dyn StdError + 'static)) -> Option<Cause> {
    const DROPPED: [&str; 7] = [
        "connection reset",
        "broken pipe",
        "unexpected eof",
        "connection closed",
        "early eof",
        "connection error",
        "operation was canceled",
    ];
    let text = chain_text(err).to_ascii_lowercase();
    if text.contains("connection refused") {
        Some(Cause::Refused)
    } else if DROPPED.iter().any(|m| text.contains(m)) {
        Some(Cause::Dropped)
    } else if text.contains("h2 protocol") {
        Some(Cause::Protocol)
    } else {
        None
    }
}

/// rustls words some errors with a link into its own manual, which means
/// nothing to an operator: say what happened instead.
pub(crate) fn own_words(text: &str) -> String {
    const EOF_WITHOUT_CLOSE_NOTIFY: &str =
        "peer closed connection without sending TLS close_notify";
    if text.contains(EOF_WITHOUT_CLOSE_NOTIFY) {
        return "the node closed the connection in the middle of TLS (no close_notify)".to_string();
    }
    match text.find(" https://docs.rs/rustls") {
        Some(at) => text[..at].trim_end_matches([':', ' ']).to_string(),
        None => text.to_string(),
    }
}

/// The messages of an error chain, joined with ": ".
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = own_words(&e.to_string());
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => {
                let inner: &(dyn StdError + 'static) = inner;
                // The io::Error displays its inner error already.
                inner.source()
            }
            None => e.source(),
        };
    }
    parts.join(": ")
}

/// Collapses whitespace runs (newlines included) so a message fits one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn rustls_manual_links_never_reach_operators() {
        let eof = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        let outer = std::io::Error::other(eof);
        let text = chain_text(&outer);
        assert!(!text.contains("https://"), "{text}");
        assert!(text.contains("closed the connection"), "{text}");
        assert_eq!(own_words("x: see https://docs.rs/rustls/y"), "x: see");
        assert_eq!(own_words("connection refused"), "connection refused");
    }
    use super::*;

    fn addr() -> SocketAddr {
        "127.1.2.3:50000".parse().unwrap()
    }

    fn class_of(code: Code, msg: &str) -> ErrorClass {
        TalosError::from_status(tonic::Status::new(code, msg), addr(), "Test").class()
    }

    #[test]
    fn lost_replies_and_reboot_refusals_are_told_apart_from_answers() {
        let addr: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let dropped = TalosError::Transport {
            addr,
            detail: "connection lost: unexpected EOF".into(),
            class: ErrorClass::Retryable,
            code: Some(Code::Unavailable),
            cause: Cause::Dropped,
        };
        let status = |code, message: &str| TalosError::Status {
            addr,
            rpc: "ApplyConfiguration",
            code,
            message: message.into(),
        };
        assert!(dropped.reply_may_be_lost());
        assert!(
            TalosError::Timeout {
                addr,
                rpc: "ApplyConfiguration",
                after: std::time::Duration::from_secs(15),
            }
            .reply_may_be_lost()
        );
        // A status is an answer: the node did not take the request.
        assert!(!status(Code::Unavailable, "busy").reply_may_be_lost());
        assert!(
            TalosError::Unreachable {
                addr,
                reason: "connection refused".into()
            }
            .node_down()
        );
        assert!(!status(Code::Unavailable, "busy").node_down());
        assert!(status(
            Code::FailedPrecondition,
            "configuration was already applied and node is rebooting, cannot apply more configuration changes until next reboot"
        )
        .rebooting_for_applied_config());
        assert!(
            !status(
                Code::FailedPrecondition,
                "another apply configuration is already in progress"
            )
            .rebooting_for_applied_config()
        );
    }

    #[test]
    fn a_refused_connection_was_not_sent_and_a_dropped_one_may_have_been() {
        let addr = addr();
        let transport = |cause| TalosError::Transport {
            addr,
            detail: "x".into(),
            class: ErrorClass::Retryable,
            code: Some(Code::Unavailable),
            cause,
        };
        assert!(!transport(Cause::Refused).reply_may_be_lost());
        assert!(!transport(Cause::Tls).reply_may_be_lost());
        assert!(transport(Cause::Dropped).reply_may_be_lost());
        assert!(transport(Cause::TimedOut).reply_may_be_lost());
        assert!(transport(Cause::Protocol).reply_may_be_lost());
        for code in [Code::DeadlineExceeded, Code::Cancelled] {
            let answered =
                TalosError::from_status(tonic::Status::new(code, "x"), addr, "Bootstrap");
            assert!(answered.reply_may_be_lost(), "{code:?}");
        }
        let refused = TalosError::from_status(
            tonic::Status::new(Code::Unavailable, "not ready"),
            addr,
            "Bootstrap",
        );
        assert!(!refused.reply_may_be_lost());
        let exists = TalosError::from_status(
            tonic::Status::new(Code::AlreadyExists, "etcd data directory is not empty"),
            addr,
            "Bootstrap",
        );
        assert!(exists.already_exists() && !exists.unimplemented());
        assert_eq!(exists.code_name().as_deref(), Some("AlreadyExists"));
    }

    #[test]
    fn dropped_connections_known_only_by_text_get_their_cause() {
        let io = |text: &str| std::io::Error::other(text.to_string());
        assert_eq!(
            dropped_connection_cause(&io("tcp connect error: Connection refused (os error 111)")),
            Some(Cause::Refused)
        );
        assert_eq!(
            dropped_connection_cause(&io("connection reset by peer")),
            Some(Cause::Dropped)
        );
        assert_eq!(
            dropped_connection_cause(&io("error reading a body from connection: unexpected EOF")),
            Some(Cause::Dropped)
        );
        assert_eq!(
            dropped_connection_cause(&io("http2 error: h2 protocol error: GOAWAY")),
            Some(Cause::Protocol)
        );
        assert_eq!(dropped_connection_cause(&io("something else")), None);
    }

    #[test]
    fn server_status_codes_are_classified() {
        assert_eq!(class_of(Code::Unavailable, "x"), ErrorClass::Retryable);
        assert_eq!(class_of(Code::DeadlineExceeded, "x"), ErrorClass::Retryable);
        assert_eq!(class_of(Code::Aborted, "x"), ErrorClass::Retryable);
        assert_eq!(
            class_of(Code::ResourceExhausted, "x"),
            ErrorClass::Retryable
        );
        assert_eq!(class_of(Code::Unauthenticated, "x"), ErrorClass::Trust);
        assert_eq!(
            class_of(Code::PermissionDenied, "not authorized"),
            ErrorClass::Trust
        );
        assert_eq!(class_of(Code::InvalidArgument, "bad"), ErrorClass::Input);
        for code in [
            Code::Unimplemented,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Internal,
            Code::Unknown,
        ] {
            assert_eq!(class_of(code, "x"), ErrorClass::Permanent, "{code:?}");
        }
    }

    #[test]
    fn failed_precondition_is_retryable_only_for_concurrent_apply() {
        assert_eq!(
            class_of(
                Code::FailedPrecondition,
                "another apply configuration is already in progress"
            ),
            ErrorClass::Retryable
        );
        assert_eq!(
            class_of(Code::FailedPrecondition, "bootstrap is not available yet"),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn code_and_message_come_from_the_status() {
        let err = TalosError::from_status(
            tonic::Status::new(Code::AlreadyExists, "etcd data directory\nis not empty"),
            addr(),
            "Bootstrap",
        );
        assert_eq!(err.code(), Some(Code::AlreadyExists));
        assert_eq!(err.message(), "etcd data directory is not empty");
        assert!(err.to_string().contains("Bootstrap on 127.1.2.3:50000"));
    }

    #[test]
    fn io_errors_inside_a_status_are_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let status = tonic::Status::from_error(Box::new(io));
        let err = TalosError::from_status(status, addr(), "ApplyConfiguration");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(err.code(), Some(Code::Unavailable));
    }

    #[test]
    fn certificate_required_alert_behind_io_is_trust() {
        // tokio-rustls wraps rustls errors in io::Error(InvalidData); tonic
        // then wraps that again.
        let tls = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let status = tonic::Status::from_error(Box::new(io));
        let err = TalosError::from_status(status, addr(), "Version");
        assert_eq!(err.class(), ErrorClass::Trust);
        assert!(err.message().contains("rejected our client certificate"));
    }

    #[test]
    fn alert_that_lost_its_type_is_still_trust() {
        // What arrives through hyper's HTTP/2 layer: kind + message only.
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired).to_string(),
        );
        let status = tonic::Status::from_error(Box::new(io));
        let err = TalosError::from_status(status, addr(), "Version");
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        assert!(err.message().contains("TLS alert CertificateRequired"));

        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: DecodeError",
        );
        let err = from_chain(&io, addr(), None).unwrap();
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn invalid_certificate_is_trust_and_names_the_issuer() {
        let failure = TrustFailure::ForeignIssuer {
            ip: "127.1.2.3".into(),
            issuer: "O=talos".into(),
        };
        let tls = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(failure),
        )));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let err = from_chain(&io, addr(), None).unwrap();
        assert_eq!(err.class(), ErrorClass::Trust);
        assert!(
            err.to_string()
                .contains("server certificate for 127.1.2.3 is not signed by the talosconfig CA (issuer: O=talos)"),
            "{err}"
        );
    }

    #[test]
    fn plain_invalid_certificate_is_trust() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        let err = from_chain(&tls, addr(), None).unwrap();
        assert_eq!(err.class(), ErrorClass::Trust);
        assert!(err.message().contains("bad signature"));
    }

    #[test]
    fn other_tls_failures_are_permanent() {
        let tls = rustls::Error::NoApplicationProtocol;
        let err = from_chain(&tls, addr(), None).unwrap();
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn unrelated_alert_is_not_trust() {
        let tls = rustls::Error::AlertReceived(AlertDescription::ProtocolVersion);
        let err = from_chain(&tls, addr(), None).unwrap();
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn local_deadline_is_retryable_deadline_exceeded() {
        // What tonic's timeout layer produces.
        let status = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        let err = TalosError::from_status(status, addr(), "Version");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(err.code(), Some(Code::DeadlineExceeded));
    }

    #[test]
    fn dial_error_survives_the_chain() {
        let inner = TalosError::Unreachable {
            addr: addr(),
            reason: "connection refused".into(),
        };
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(DialError(inner));
        let status = tonic::Status::from_error(boxed);
        let err = TalosError::from_status(status, addr(), "Version");
        assert!(matches!(err, TalosError::Unreachable { .. }), "{err:?}");
        assert!(err.is_retryable());
    }

    #[test]
    fn unknown_transport_text_falls_back_to_string_markers() {
        #[derive(Debug)]
        struct Opaque;
        impl std::fmt::Display for Opaque {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("connection closed before message completed")
            }
        }
        impl StdError for Opaque {}
        let status = tonic::Status::from_error(Box::new(Opaque));
        let err = TalosError::from_status(status, addr(), "ApplyConfiguration");
        assert_eq!(err.class(), ErrorClass::Retryable);
    }

    #[test]
    fn input_errors_are_input() {
        assert_eq!(TalosError::Input("x".into()).class(), ErrorClass::Input);
    }

    #[test]
    fn error_class_serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&ErrorClass::Retryable).unwrap(),
            "\"retryable\""
        );
    }
}
