//! Read-only memory maps of source files being imported, the one place here that needs `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

/// Maps the whole file at `path` read-only; an empty file maps to an empty slice.
pub(crate) fn map_file(path: &Path) -> std::io::Result<Arc<Mmap>> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        let empty = memmap2::MmapMut::map_anon(0)?;
        return Ok(Arc::new(empty.make_read_only()?));
    }
    // SAFETY: the map is only read. If another process truncates or rewrites the file while it
    // is mapped, reads may see the new bytes or fault; the store re-hashes every blob it writes,
    // so changed bytes make the import fail with a digest mismatch instead of storing them.
    let map = unsafe { Mmap::map(&file)? };
    Ok(Arc::new(map))
}

/// A byte range of a shared map, usable as tensor bytes without copying.
#[derive(Debug)]
pub(crate) struct MappedRange {
    map: Arc<Mmap>,
    range: Range<usize>,
}

impl MappedRange {
    /// Wraps `range` of `map`; the caller has checked that it lies inside the map.
    pub(crate) fn new(map: Arc<Mmap>, range: Range<usize>) -> MappedRange {
        debug_assert!(range.end <= map.len());
        MappedRange { map, range }
    }
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}
