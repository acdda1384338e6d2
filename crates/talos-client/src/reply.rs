//! The Talos reply convention: every unary reply is `XResponse { messages }`
//! and each message starts with `common.Metadata`. When apid proxies, a
//! failed node comes back as a message whose `metadata.error` is set while
//! the gRPC status itself is OK, so every message must be checked.

use std::net::SocketAddr;

use super::error::{TalosError, one_line};
use crate::proto::common::{Data, Metadata};
use crate::proto::{machine, storage};

/// A reply message with `common.Metadata` as field 1.
pub(crate) trait Reply {
    fn metadata(&self) -> Option<&Metadata>;
}

macro_rules! impl_reply {
    ($($ty:ty),* $(,)?) => {
        $(impl Reply for $ty {
            fn metadata(&self) -> Option<&Metadata> {
                self.metadata.as_ref()
            }
        })*
    };
}

impl_reply!(
    machine::Version,
    machine::ApplyConfiguration,
    machine::Bootstrap,
    machine::EtcdMembers,
    machine::EtcdStatus,
    machine::Hostname,
    machine::Reboot,
    machine::ServiceList,
    machine::SystemStat,
    storage::Disks,
    Data,
);

/// The failure recorded in `metadata`, if any.
pub(crate) fn node_error(
    meta: Option<&Metadata>,
    addr: SocketAddr,
    rpc: &'static str,
) -> Option<TalosError> {
    let meta = meta?;
    if meta.error.is_empty() {
        return None;
    }
    let status = meta.status.as_ref();
    let code = status.map(|s| tonic::Code::from_i32(s.code));
    let message = status
        .map(|s| s.message.as_str())
        .filter(|m| !m.is_empty())
        .unwrap_or(&meta.error);
    Some(TalosError::Node {
        addr,
        rpc,
        node: if meta.hostname.is_empty() {
            addr.ip().to_string()
        } else {
            meta.hostname.clone()
        },
        code,
        message: one_line(message),
    })
}

/// The one message of a reply to a single node: any message that carries
/// an error fails the call; no message at all is an error too.
pub(crate) fn single<T: Reply>(
    addr: SocketAddr,
    rpc: &'static str,
    messages: Vec<T>,
) -> Result<T, TalosError> {
    if let Some(err) = messages
        .iter()
        .find_map(|m| node_error(m.metadata(), addr, rpc))
    {
        return Err(err);
    }
    messages
        .into_iter()
        .next()
        .ok_or(TalosError::EmptyReply { addr, rpc })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ErrorClass;
    use crate::proto::google::rpc::Status;

    fn addr() -> SocketAddr {
        "127.9.9.1:50000".parse().unwrap()
    }

    fn ok(hostname: &str) -> machine::Hostname {
        machine::Hostname {
            metadata: None,
            hostname: hostname.into(),
        }
    }

    #[test]
    fn first_message_is_returned() {
        let got = single(addr(), "Hostname", vec![ok("cp-1")]).unwrap();
        assert_eq!(got.hostname, "cp-1");
    }

    #[test]
    fn empty_reply_is_an_error() {
        let err = single::<machine::Hostname>(addr(), "Hostname", vec![]).unwrap_err();
        assert!(matches!(err, TalosError::EmptyReply { .. }));
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn metadata_error_fails_with_the_embedded_code() {
        let failed = machine::Hostname {
            metadata: Some(Metadata {
                hostname: "cp-2".into(),
                error: "rpc error: code = FailedPrecondition desc = time is not in sync yet".into(),
                status: Some(Status {
                    code: 9,
                    message: "time is not in sync yet".into(),
                    details: vec![],
                }),
            }),
            hostname: String::new(),
        };
        let err = single(addr(), "Bootstrap", vec![ok("cp-1"), failed]).unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition));
        assert_eq!(err.message(), "time is not in sync yet");
        assert!(err.to_string().contains("node cp-2"), "{err}");
    }

    #[test]
    fn metadata_error_without_status_uses_the_error_text() {
        let failed = machine::Hostname {
            metadata: Some(Metadata {
                hostname: String::new(),
                error: "dial failed".into(),
                status: None,
            }),
            hostname: String::new(),
        };
        let err = single(addr(), "Hostname", vec![failed]).unwrap_err();
        assert_eq!(err.code(), None);
        assert_eq!(err.message(), "dial failed");
        assert_eq!(err.class(), ErrorClass::Permanent);
    }
}
