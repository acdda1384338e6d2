//! End-to-end tests of the simulated Talos fleet over real TLS on loopback.

mod apply;
mod cosi;
mod faults;
mod flow;
mod proxy;
mod support;
