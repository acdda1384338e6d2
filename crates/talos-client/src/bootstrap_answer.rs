//! What a failed Bootstrap call means, decided here, on top of the client's
//! classifier (`error.rs`), so the bootstrap command asks one question
//! instead of reading gRPC codes or error text.
//!
//! Talos's Bootstrap handler (v1.12.11 and v1.13.9
//! `internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go`
//! `Bootstrap`; v1.14 adds `IsBootstrapAllowed` and the etcd CA check) answers,
//! in order: FailedPrecondition "bootstrap is not available yet" (CRI not up,
//! install or reboot pending); on a worker FailedPrecondition "bootstrap can
//! only be performed on a control plane node" (v1.12) or Unimplemented
//! "bootstrap is only available on control plane nodes" (v1.13+);
//! InvalidArgument "etcd is not configured" (v1.14, no `cluster.etcd.ca`);
//! FailedPrecondition "time is not in sync yet"; AlreadyExists "etcd data
//! directory is not empty". In maintenance mode (v1.13+ apid) it is
//! PermissionDenied.

use tonic::Code;

use super::error::{ErrorClass, TalosError};

/// The meaning of one failed Bootstrap call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapAnswer {
    /// etcd data exists on the node: bootstrapped (or joined) before.
    AlreadyExists,
    /// No reply, but the request may have reached the node and been carried
    /// out (our deadline, the server's, or the connection dropped after the
    /// request could have been sent).
    MaybeLanded,
    /// The node is not ready yet (booting, installing, time not in sync,
    /// unavailable): the same call may succeed later.
    NotYet,
    /// The node is a worker: never retried.
    NotControlPlane,
    /// The node's config has no etcd CA (v1.14): an input error.
    NoEtcdCa,
    /// Any other refusal, permanent (trust, permission, unknown).
    Refused,
}

/// Classify a failed Bootstrap call.
pub fn bootstrap_answer(e: &TalosError) -> BootstrapAnswer {
    let message = e.message().to_ascii_lowercase();
    if e.already_exists() {
        return BootstrapAnswer::AlreadyExists;
    }
    if e.reply_may_be_lost() {
        return BootstrapAnswer::MaybeLanded;
    }
    match e.code() {
        Some(Code::Unimplemented) if message.contains("control plane") => {
            BootstrapAnswer::NotControlPlane
        }
        Some(Code::FailedPrecondition)
            if message.contains("only be performed on a control plane") =>
        {
            BootstrapAnswer::NotControlPlane
        }
        Some(Code::InvalidArgument) if message.contains("etcd is not configured") => {
            BootstrapAnswer::NoEtcdCa
        }
        Some(Code::FailedPrecondition) => BootstrapAnswer::NotYet,
        _ if e.class() == ErrorClass::Retryable => BootstrapAnswer::NotYet,
        _ => BootstrapAnswer::Refused,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> TalosError {
        TalosError::Status {
            addr: "127.0.0.1:50000".parse().unwrap(),
            rpc: "Bootstrap",
            code,
            message: message.into(),
        }
    }

    #[test]
    fn every_talos_answer_has_its_meaning() {
        use BootstrapAnswer::*;
        let cases = [
            (
                Code::AlreadyExists,
                "etcd data directory is not empty",
                AlreadyExists,
            ),
            (
                Code::FailedPrecondition,
                "bootstrap is not available yet",
                NotYet,
            ),
            (Code::FailedPrecondition, "time is not in sync yet", NotYet),
            (
                Code::FailedPrecondition,
                "bootstrap can only be performed on a control plane node",
                NotControlPlane,
            ),
            (
                Code::Unimplemented,
                "bootstrap is only available on control plane nodes",
                NotControlPlane,
            ),
            (
                Code::InvalidArgument,
                "etcd is not configured, bootstrap is not possible",
                NoEtcdCa,
            ),
            (Code::Unavailable, "node is shutting down", NotYet),
            (Code::DeadlineExceeded, "deadline", MaybeLanded),
            (Code::Cancelled, "context canceled", MaybeLanded),
            (Code::PermissionDenied, "not authorized", Refused),
        ];
        for (code, msg, want) in cases {
            assert_eq!(bootstrap_answer(&status(code, msg)), want, "{code:?} {msg}");
        }
        let lost = TalosError::Transport {
            addr: "127.0.0.1:50000".parse().unwrap(),
            detail: "connection reset by peer".into(),
            class: ErrorClass::Retryable,
            code: Some(Code::Unavailable),
            cause: crate::error::Cause::Dropped,
        };
        assert_eq!(bootstrap_answer(&lost), MaybeLanded);
        let refused = TalosError::Unreachable {
            addr: "127.0.0.1:50000".parse().unwrap(),
            reason: "connection refused".into(),
        };
        assert_eq!(bootstrap_answer(&refused), NotYet);
    }
}
