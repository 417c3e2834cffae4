//! Protobuf messages this project defines itself, from `proto/`, compiled by
//! `build.rs`: what containerd-client does not provide.
