//! Protobuf messages this project defines itself, from `proto/`, compiled by
//! `build.rs`: what containerd-client does not provide.

/// Task metrics from cgroup v1 hosts (`io.containerd.cgroups.v1.Metrics`).
pub mod cgroups_v1 {
    include!(concat!(env!("OUT_DIR"), "/io.containerd.cgroups.v1.rs"));
}

/// Task metrics from cgroup v2 hosts (`io.containerd.cgroups.v2.Metrics`).
pub mod cgroups_v2 {
    include!(concat!(env!("OUT_DIR"), "/io.containerd.cgroups.v2.rs"));
}

/// The runc shim's runtime options (`containerd.runc.v1.Options`).
pub mod runc_options {
    include!(concat!(env!("OUT_DIR"), "/containerd.runc.v1.rs"));
}

/// The ttrpc request and response envelope.
pub mod ttrpc {
    include!(concat!(env!("OUT_DIR"), "/ttrpc.rs"));
}

/// Google's common types, nested as prost's cross-package paths expect.
pub mod google {
    /// The call status carried in a ttrpc response.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// The shim task API messages (Connect, State, Pids).
pub mod shim {
    pub mod task {
        include!(concat!(env!("OUT_DIR"), "/shim.task.rs"));
    }
}
