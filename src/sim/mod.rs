//! The simulated Talos fleet: the server side of the same protos talstrap
//! speaks, on loopback, with fault injection. Every talstrap test talks to
//! it, and `talstrap demo` embeds it.
//!
//! Layout: [`pki`] and [`genconfig`] write a throwaway cluster in the
//! talhelper layout; [`fleet`] starts one simulated node per machine, each
//! on its own 127.x.y.z address and a shared port; [`scenario`] injects
//! faults; [`cli`] is the `talstrap sim` entry point.

pub mod genconfig;
pub mod machineconfig;
pub mod pki;
pub mod scenario;
pub mod state;
pub mod tls;
pub mod version;
