//! Integration tests of collections, run against real stores in temporary folders.
//!
//! One test binary keeps link time down; each module covers one family of behaviour.

mod bad_input;
mod common;
mod filters;
mod format_doc;
mod loaded;
mod payload_db;
mod recall;
mod versions;
