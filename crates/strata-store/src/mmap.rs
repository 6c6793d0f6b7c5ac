//! Read-only memory maps of blobs, the one place in the crate that needs `unsafe`.
//!
//! Mapping a file is unsafe in Rust because another process may truncate or rewrite the file
//! while it is mapped, which changes memory that safe code treats as immutable. The store's write
//! protocol rules that out for blobs; see the `SAFETY` comment below.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use crate::error::{IoContext, StoreError};

/// Maps the whole of `file` (at `path`, used in errors) read-only.
///
/// A zero-length file cannot be mapped on Linux (`mmap` rejects a length of 0), so an empty
/// anonymous mapping is returned instead.
pub(crate) fn map_file(file: &File, path: &Path, len: u64) -> Result<Mmap, StoreError> {
    if len == 0 {
        let empty = MmapMut::map_anon(0).context("map empty blob", path)?;
        return empty.make_read_only().context("map empty blob", path);
    }
    // SAFETY: `path` is a blob under `blobs/sha256/`. Blobs are immutable once renamed into place:
    // the store writes a blob only into a fresh file in `tmp/` and renames it over a path that did
    // not exist, and never opens a blob for writing afterwards. A blob is deleted only by `gc`,
    // which never removes a reachable blob, and unlinking a mapped file keeps the mapping valid.
    // Only a process outside the store's protocol that rewrites files in place can break this.
    unsafe { Mmap::map(file) }.context("map blob", path)
}
