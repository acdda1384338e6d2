//! Talos API roles and who may call what (machined's authorizer rules).
//!
//! Roles come from the client certificate's Subject O values (`os:admin`,
//! `os:operator`, `os:reader`, `os:etcd:backup`, ...). A denied call fails
//! with `PermissionDenied "not authorized"`. Methods not in the table are
//! admin-only.

use tonic::Status;

/// The caller's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(pub Vec<String>);

impl Roles {
    pub fn from_orgs(orgs: Vec<String>) -> Self {
        Roles(orgs.into_iter().filter(|o| !o.is_empty()).collect())
    }

    fn has(&self, role: &str) -> bool {
        self.0.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has("os:admin")
    }
}

/// Minimum role a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Admin,
    /// admin or operator.
    Operator,
    /// admin, operator or reader.
    Reader,
    /// reader and up, or etcd:backup.
    EtcdRead,
}

/// The rule for a full gRPC method path.
pub fn need(path: &str) -> Need {
    match path {
        "/machine.MachineService/Reboot"
        | "/machine.MachineService/Shutdown"
        | "/machine.MachineService/Restart" => Need::Operator,
        "/machine.MachineService/Version"
        | "/machine.MachineService/ServiceList"
        | "/machine.MachineService/SystemStat"
        | "/machine.MachineService/Hostname"
        | "/machine.MachineService/Memory"
        | "/machine.MachineService/Events"
        | "/machine.MachineService/List"
        | "/cosi.resource.State/Get"
        | "/cosi.resource.State/List"
        | "/cosi.resource.State/Watch"
        | "/storage.StorageService/Disks"
        | "/cluster.ClusterService/HealthCheck" => Need::Reader,
        "/machine.MachineService/EtcdMemberList" | "/machine.MachineService/EtcdStatus" => {
            Need::EtcdRead
        }
        _ => Need::Admin,
    }
}

/// Whether `roles` satisfy `need`.
pub fn allowed(roles: &Roles, need: Need) -> bool {
    let admin = roles.has("os:admin");
    let operator = admin || roles.has("os:operator");
    let reader = operator || roles.has("os:reader");
    match need {
        Need::Admin => admin,
        Need::Operator => operator,
        Need::Reader => reader,
        Need::EtcdRead => reader || roles.has("os:etcd:backup"),
    }
}

/// `Ok` or `PermissionDenied "not authorized"`.
pub fn authorize(roles: &Roles, path: &str) -> Result<(), Status> {
    if allowed(roles, need(path)) {
        Ok(())
    } else {
        Err(Status::permission_denied("not authorized"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(list: &[&str]) -> Roles {
        Roles(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn table_matches_talos() {
        let apply = "/machine.MachineService/ApplyConfiguration";
        let reboot = "/machine.MachineService/Reboot";
        let version = "/machine.MachineService/Version";
        let members = "/machine.MachineService/EtcdMemberList";
        assert!(authorize(&r(&["os:admin"]), apply).is_ok());
        let denied = authorize(&r(&["os:reader"]), apply).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(denied.message(), "not authorized");
        assert!(!allowed(
            &r(&["os:operator"]),
            need("/machine.MachineService/Bootstrap")
        ));
        assert!(!allowed(
            &r(&["os:operator"]),
            need("/machine.MachineService/Kubeconfig")
        ));
        assert!(allowed(&r(&["os:operator"]), need(reboot)));
        assert!(!allowed(&r(&["os:reader"]), need(reboot)));
        assert!(allowed(&r(&["os:reader"]), need(version)));
        assert!(allowed(
            &r(&["os:reader"]),
            need("/cosi.resource.State/Watch")
        ));
        assert!(allowed(&r(&["os:etcd:backup"]), need(members)));
        assert!(!allowed(&r(&["os:etcd:backup"]), need(version)));
        assert!(!allowed(&r(&[]), need(version)));
        assert!(!allowed(
            &r(&["os:reader"]),
            need("/machine.MachineService/Unlisted")
        ));
    }
}
