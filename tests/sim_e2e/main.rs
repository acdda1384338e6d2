//! End-to-end tests of the simulated Talos fleet over real TLS on loopback.

#![allow(clippy::unwrap_used)]

mod apply;
mod cosi;
mod faults;
mod flow;
mod proxy;
mod support;
mod versions;
