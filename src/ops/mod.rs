//! Operations on nodes and clusters that several subcommands share: probing
//! and connecting to a node the right way and turning client errors into
//! step errors with hints ([`node`]), cluster-wide etcd facts ([`cluster`]),
//! writing credential files ([`secret_file`]) and Talos's unattended
//! install-disk selector evaluated locally ([`unattended`]).

pub(crate) mod cluster;
pub(crate) mod node;
pub(crate) mod secret_file;
pub(crate) mod unattended;
