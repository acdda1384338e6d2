//! apid's routing of a call by its `node` / `nodes` metadata, and the Go
//! error strings apid puts into aggregated replies.
//!
//! Rules (Talos `internal/app/apid/pkg/director`): a multi-valued `node` is
//! InvalidArgument; a worker (no forwarding) serves a single target that is
//! itself locally and refuses anything else with PermissionDenied "no request
//! forwarding"; `nodes` wins over `node`, and COSI methods refuse it; a target
//! with a port is `Internal "invalid target ..."`; no key means local.

use tonic::Status;
use tonic::metadata::MetadataMap;

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Served by the endpoint itself; reply untouched.
    Local,
    /// One-to-one proxy; reply untouched, errors are real statuses.
    One(String),
    /// One-to-many; replies aggregated with `metadata.hostname`.
    Many(Vec<String>),
}

fn values(md: &MetadataMap, key: &str) -> Option<Vec<String>> {
    let v: Vec<String> = md
        .get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    (md.get(key).is_some()).then_some(v)
}

/// Whether `target` carries a port (`host:port`, `[v6]:port`).
fn has_port(target: &str) -> bool {
    if target.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    target.contains(':')
}

fn check_target(target: &str) -> Result<(), Status> {
    if target.is_empty() || has_port(target) {
        return Err(Status::internal(format!("invalid target {target:?}")));
    }
    Ok(())
}

/// Decides the route of a call with metadata `md` for method `path` on an
/// endpoint that can (`forwarding`, a control plane) or cannot (a worker)
/// forward; `is_local` says whether a target names the endpoint itself.
pub fn route(
    md: &MetadataMap,
    path: &str,
    forwarding: bool,
    is_local: impl Fn(&str) -> bool,
) -> Result<Route, Status> {
    if md.get("proxyfrom").is_some() {
        return Ok(Route::Local);
    }
    let mut nodes = values(md, "nodes");
    let mut node = values(md, "node");
    if let Some(n) = &node
        && n.len() != 1
    {
        return Err(Status::invalid_argument(
            "node metadata must be single-valued",
        ));
    }
    if !forwarding {
        if node.as_ref().is_some_and(|n| is_local(&n[0])) {
            node = None;
        }
        if nodes
            .as_ref()
            .is_some_and(|n| n.len() == 1 && is_local(&n[0]))
        {
            nodes = None;
        }
    }
    if let Some(targets) = nodes {
        if path.starts_with("/cosi.") {
            return Err(Status::invalid_argument(
                "one-2-many proxying is not supported for COSI methods",
            ));
        }
        if !forwarding {
            return Err(Status::permission_denied("no request forwarding"));
        }
        for t in &targets {
            check_target(t)?;
        }
        return Ok(Route::Many(targets));
    }
    if let Some(mut n) = node {
        if !forwarding {
            return Err(Status::permission_denied("no request forwarding"));
        }
        let target = n.remove(0);
        check_target(&target)?;
        return Ok(Route::One(target));
    }
    Ok(Route::Local)
}

/// grpc-go's name of a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// The Go `err.Error()` of a gRPC status: `rpc error: code = X desc = Y`.
pub fn go_error(status: &Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        code_name(status.code()),
        status.message()
    )
}

/// `metadata.status` of an aggregated per-node failure.
pub fn rpc_status(status: &Status) -> crate::proto::google::rpc::Status {
    crate::proto::google::rpc::Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    const VERSION: &str = "/machine.MachineService/Version";
    const GET: &str = "/cosi.resource.State/Get";

    fn local(t: &str) -> bool {
        t == "127.1.1.11" || t == "cp1"
    }

    #[test]
    fn control_plane_routes() {
        assert_eq!(route(&md(&[]), VERSION, true, local).unwrap(), Route::Local);
        assert_eq!(
            route(&md(&[("node", "127.1.1.12")]), VERSION, true, local).unwrap(),
            Route::One("127.1.1.12".into())
        );
        assert_eq!(
            route(
                &md(&[("nodes", "127.1.1.11"), ("nodes", "w1")]),
                VERSION,
                true,
                local
            )
            .unwrap(),
            Route::Many(vec!["127.1.1.11".into(), "w1".into()])
        );
        // nodes wins over node.
        assert_eq!(
            route(&md(&[("node", "a"), ("nodes", "b")]), VERSION, true, local).unwrap(),
            Route::Many(vec!["b".into()])
        );
        let e = route(&md(&[("node", "a"), ("node", "b")]), VERSION, true, local).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (
                tonic::Code::InvalidArgument,
                "node metadata must be single-valued"
            )
        );
        let e = route(&md(&[("nodes", "a")]), GET, true, local).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "one-2-many proxying is not supported for COSI methods"
        );
        let e = route(&md(&[("node", "127.1.1.12:50000")]), VERSION, true, local).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::Internal, "invalid target \"127.1.1.12:50000\"")
        );
        assert_eq!(
            route(&md(&[("node", "::1")]), VERSION, true, local).unwrap(),
            Route::One("::1".into())
        );
        assert_eq!(
            route(
                &md(&[("node", "x"), ("proxyfrom", "y")]),
                VERSION,
                true,
                local
            )
            .unwrap(),
            Route::Local
        );
    }

    #[test]
    fn worker_routes() {
        assert_eq!(
            route(&md(&[("node", "cp1")]), VERSION, false, local).unwrap(),
            Route::Local
        );
        assert_eq!(
            route(&md(&[("nodes", "127.1.1.11")]), VERSION, false, local).unwrap(),
            Route::Local
        );
        let e = route(&md(&[("node", "other")]), VERSION, false, local).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::PermissionDenied, "no request forwarding")
        );
        let e = route(
            &md(&[("nodes", "cp1"), ("nodes", "other")]),
            VERSION,
            false,
            local,
        )
        .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn go_error_strings() {
        let s = Status::failed_precondition("time is not in sync yet");
        assert_eq!(
            go_error(&s),
            "rpc error: code = FailedPrecondition desc = time is not in sync yet"
        );
        assert_eq!(rpc_status(&s).code, 9);
    }
}
