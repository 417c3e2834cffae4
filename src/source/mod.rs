//! Where collectors get their data from: one module per source.

pub mod containerd;
pub mod debug;
pub mod host;

pub use containerd::{Containerd, ContainerdError, DaemonVersion, error_chain};
