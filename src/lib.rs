//! rctr-diag collects a support bundle from a node running containerd.
//!
//! The flow is plan → collect → analyze → report: collector specs (data, in
//! [`spec`]) select collector kinds (Rust, in [`kinds`]); the [`engine`] runs
//! them concurrently under deadlines, streaming their entries into the
//! [`bundle`]; [`analyze`] turns the entries into findings; [`report`] writes
//! the summary. Sources of data (the containerd API, the host) live in
//! [`source`]. The upgrade [`audit`] reuses the sources and adds a table of
//! containerd's deprecations.

pub mod analyze;
pub mod audit;
pub mod bundle;
pub mod cli;
pub mod engine;
pub mod inspect;
pub mod kinds;
pub mod progress;
pub mod proto;
pub mod report;
pub mod source;
pub mod spec;
