//! Blobs: crash-safe writes into `blobs/sha256/<hex>`, reads and memory maps.
//!
//! A blob is written to a fresh file in `tmp/`, checked against its digest, fsynced and renamed
//! into place, then `blobs/sha256/` is fsynced. A blob path therefore either does not exist or
//! contains the complete, verified content, and it never changes after the rename.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::digest::{Digest, DigestWriter};
use crate::error::{IoContext, StoreError};
use crate::fsutil::{self, TempFile};
use crate::mmap;
use crate::store::Store;

/// Size of the buffer used to stream blobs in and out, in bytes.
const COPY_BUFFER: usize = 1 << 20;

impl Store {
    /// Stores `bytes` and returns their digest; does nothing but fsync the blob directory when an
    /// identical blob is already stored. A stored blob of that digest whose size is wrong (a
    /// truncated file) is replaced by the new, verified bytes.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) && self.blob_present(&digest)? == bytes.len() as u64 {
            return Ok(digest);
        }
        self.put_blob_from_reader(&mut &bytes[..], None)?;
        Ok(digest)
    }

    /// Streams `reader` into a new blob and returns its digest and size in bytes.
    ///
    /// With `expected` given, a content mismatch is an error and leaves nothing behind, and when
    /// that blob is already stored the reader is not read at all. Without it, the digest is
    /// whatever the content hashes to.
    pub fn put_blob_from_reader(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        if let Some(digest) = expected
            && self.has_blob(digest)
        {
            return Ok((digest.clone(), self.blob_present(digest)?));
        }
        let mut temp = TempFile::create(&self.tmp_dir(), "blob-", "")?;
        let (digest, size) = copy_hashing(reader, &mut temp)?;
        if let Some(expected) = expected
            && *expected != digest
        {
            let (expected, actual) = (expected.clone(), digest);
            return Err(StoreError::DigestMismatch {
                operation: "put blob",
                expected,
                actual,
            });
        }
        let target = self.blob_path(&digest);
        let stored = match target.exists() {
            true => Some(self.blob_present(&digest)?),
            false => None,
        };
        if stored == Some(size) {
            return Ok((digest, size));
        }
        if let Some(stored) = stored {
            tracing::warn!(%digest, stored, size, "replacing a stored blob of the wrong size");
        }
        temp.persist(&target)?;
        tracing::debug!(%digest, size, "stored blob");
        Ok((digest, size))
    }

    /// True when the blob `digest` is stored.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Returns the size in bytes of the blob `digest`.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(digest);
        let metadata = fs::metadata(&path).map_err(|e| self.blob_error("stat blob", digest, e))?;
        Ok(metadata.len())
    }

    /// Reads the whole blob `digest` into memory.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        fs::read(self.blob_path(digest)).map_err(|e| self.blob_error("read blob", digest, e))
    }

    /// Maps the blob `digest` read-only; an empty blob gives an empty mapping.
    pub fn map_blob(&self, digest: &Digest) -> Result<Arc<Mmap>, StoreError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| self.blob_error("map blob", digest, e))?;
        let len = file.metadata().context("stat blob", &path)?.len();
        Ok(Arc::new(mmap::map_file(&file, &path, len)?))
    }

    /// Hashes the blob file `digest` and returns its actual digest and size in bytes.
    pub(crate) fn hash_blob(&self, digest: &Digest) -> Result<(Digest, u64), StoreError> {
        let path = self.blob_path(digest);
        let mut file = File::open(&path).map_err(|e| self.blob_error("hash blob", digest, e))?;
        let mut hasher = DigestWriter::new();
        io::copy(&mut file, &mut hasher).context("hash blob", &path)?;
        let size = hasher.len();
        Ok((hasher.finalize(), size))
    }

    /// Makes sure the rename of an already stored blob is durable and returns its size.
    ///
    /// The writer that renamed it fsynced the directory right after, unless it crashed in
    /// between, so one more fsync of the directory closes that gap.
    fn blob_present(&self, digest: &Digest) -> Result<u64, StoreError> {
        fsutil::sync_dir(&self.blobs_dir())?;
        self.blob_size(digest)
    }

    /// Maps "not found" to [`StoreError::NotFound`] and anything else to an IO error.
    pub(crate) fn blob_error(
        &self,
        operation: &'static str,
        digest: &Digest,
        error: io::Error,
    ) -> StoreError {
        if error.kind() == io::ErrorKind::NotFound {
            return StoreError::NotFound {
                operation,
                digest: digest.clone(),
            };
        }
        StoreError::io(operation, &self.blob_path(digest), error)
    }
}

/// Copies `reader` into `temp` while hashing, and returns the digest and length.
fn copy_hashing(reader: &mut dyn Read, temp: &mut TempFile) -> Result<(Digest, u64), StoreError> {
    let mut hasher = DigestWriter::new();
    let mut buffer = vec![0; COPY_BUFFER];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(StoreError::io("read blob source into", &temp.path, error)),
        };
        hasher.update(&buffer[..read]);
        temp.file
            .write_all(&buffer[..read])
            .context("write", &temp.path)?;
    }
    let size = hasher.len();
    Ok((hasher.finalize(), size))
}

/// True when `name`, a file name in `blobs/sha256/`, is a well-formed sha256 hex digest.
pub(crate) fn digest_of_blob_name(name: &Path) -> Option<Digest> {
    let name = name.to_str()?;
    Digest::parse(&format!("sha256:{name}")).ok()
}
