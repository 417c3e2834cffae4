//! Protobuf messages this project defines itself, from `proto/`, compiled by
//! `build.rs`: what containerd-client does not provide.

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
