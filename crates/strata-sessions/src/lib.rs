//! Session snapshots: a conversation saved as a layer over the model version it ran on.
//!
//! This crate owns the snapshot format: an OCI manifest whose config contains the messages, token
//! ids and sampling settings, whose layers are the KV cache in blocks of positions, and whose
//! subject is the model manifest. It saves a chat as a snapshot, restores a chat from one (or
//! recomputes its cache when the model differs), and lists, removes and checks snapshots. A
//! snapshot continued from another references the parent's blocks instead of copying them.

mod config;
mod error;
mod name;
mod plan;
mod restore;
mod save;
mod snapshot;

pub mod media;

pub use config::{KvInfo, ModelBinding, SnapshotConfig};
pub use error::{Result, SessionError};
pub use name::{SessionName, SnapshotRef, TAG_PREFIX};
pub use restore::{Recompute, Restored, recompute, restore};
pub use save::{Replace, SaveOptions, Saved, save};
pub use snapshot::{BlockRef, Snapshot, SnapshotProblem, check_all, list, remove};

/// Positions per cache block unless the save options set another size.
pub const DEFAULT_BLOCK_TOKENS: usize = 256;
