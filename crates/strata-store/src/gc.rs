//! `gc`: removes blobs that nothing in `index.json` reaches, and leftover temporary files.
//!
//! `gc` takes `locks/gc.lock` exclusively, so it waits until every [`WriteGuard`] is dropped and
//! no import or save is half done, then `locks/index.lock`, so no tag moves while it decides what
//! is reachable. If any tagged manifest or JSON config cannot be read, it removes nothing, because
//! it cannot tell which blobs that manifest needs.
//!
//! [`WriteGuard`]: crate::WriteGuard

use std::collections::HashSet;
use std::fs;

use crate::blobs::digest_of_blob_name;
use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::store::Store;

/// Removal counts of one `gc` run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Number of unreachable blobs removed.
    pub blobs_removed: usize,
    /// Bytes those blobs took, summed.
    pub bytes_freed: u64,
    /// Number of leftover temporary files removed.
    pub tmp_removed: usize,
}

impl Store {
    /// Removes every unreachable blob and every leftover temporary file; see the module
    /// documentation for the locks it waits for.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _gc = self.lock_gc_exclusive()?;
        let _index = self.lock_index()?;
        let reachable = self.reachable_blobs()?;
        let mut report = self.remove_unreachable(&reachable)?;
        report.tmp_removed = self.remove_leftover_tmp()?;
        tracing::info!(
            blobs_removed = report.blobs_removed,
            bytes_freed = report.bytes_freed,
            tmp_removed = report.tmp_removed,
            "gc finished"
        );
        Ok(report)
    }

    /// Returns the reachable digests, or an error naming the first manifest that cannot be walked.
    fn reachable_blobs(&self) -> Result<HashSet<Digest>, StoreError> {
        let walk = self.walk()?;
        if let Some(failure) = walk.failures.into_iter().next() {
            return Err(StoreError::Unwalkable {
                digest: failure.digest,
                reference: failure.root,
                source: Box::new(failure.error),
            });
        }
        Ok(walk
            .uses
            .into_iter()
            .map(|blob_use| blob_use.digest)
            .collect())
    }

    fn remove_unreachable(&self, reachable: &HashSet<Digest>) -> Result<GcReport, StoreError> {
        let dir = self.blobs_dir();
        let mut report = GcReport::default();
        for entry in fs::read_dir(&dir).context("list blobs", &dir)? {
            let entry = entry.context("list blobs", &dir)?;
            let Some(digest) = digest_of_blob_name(entry.file_name().as_ref()) else {
                continue;
            };
            if reachable.contains(&digest) || !entry.path().is_file() {
                continue;
            }
            let size = entry.metadata().context("stat blob", &entry.path())?.len();
            fs::remove_file(entry.path()).context("remove blob", &entry.path())?;
            tracing::debug!(%digest, size, "removed unreachable blob");
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        if report.blobs_removed > 0 {
            fsutil::sync_dir(&dir)?;
        }
        Ok(report)
    }

    fn remove_leftover_tmp(&self) -> Result<usize, StoreError> {
        let leftovers = self.leftover_tmp_files()?;
        for (path, _locked) in &leftovers {
            fs::remove_file(path).context("remove temporary file", path)?;
            tracing::debug!(path = %path.display(), "removed leftover temporary file");
        }
        Ok(leftovers.len())
    }
}
