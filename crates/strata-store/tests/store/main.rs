//! Integration tests of the store, run against real directories in temporary folders.
//!
//! One test binary keeps link time down; each module covers one family of operations. The crash
//! test runs this same binary again as the writer it kills.

mod blobs;
mod common;
mod crash;
mod format_doc;
mod gc_fsck;
mod locks;
mod parsing;
mod tags;
