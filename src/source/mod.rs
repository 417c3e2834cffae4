//! Where collectors get their data from: one module per source.

pub mod cgroup;
pub mod containerd;
pub mod debug;
pub mod host;
pub mod silence;
pub mod state;
pub mod ttrpc;

pub use containerd::{Containerd, ContainerdError, DaemonVersion, error_chain};
pub use silence::Silence;
