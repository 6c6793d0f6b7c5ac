//! OCI registries for strata: push a model version or a session snapshot from the store to any
//! registry that speaks the OCI distribution API, and pull one back into a store.
//!
//! This crate owns the `oci://HOST[:PORT]/REPO[:TAG]` references, credentials (Docker's
//! `config.json`, environment variables, basic and bearer-token auth), the HTTP client for the
//! distribution API, and the push and pull walks over a manifest and what it refers to. Only
//! blobs the other side lacks cross the wire, and every pulled byte is checked against its
//! digest before it enters the store.

pub mod archive;
pub mod auth;
pub mod client;
pub mod error;
pub mod foreign;
pub mod pull;
pub mod push;
pub mod remote;
pub mod upload;

pub use error::RegistryError;
pub use pull::{PullReport, pull};
pub use push::{PushReport, push};
pub use remote::RemoteRef;

/// Largest manifest strata writes or reads, as registries commonly limit them.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
