//! Partial blobs: a download kept in `tmp/partial-<hex>` across failures, so that the next
//! attempt continues where the last one stopped instead of starting over.
//!
//! The file is named after the digest it should hash to, so any later pull of the same blob
//! finds it. Its holder keeps it locked, which tells `gc` and a second pull that it is in use;
//! once nobody holds it, `gc` removes it like any leftover temporary file. Nothing in `blobs/`
//! changes until [`PartialBlob::commit`] has hashed the whole file and found the expected digest.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestWriter};
use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::store::Store;

/// Prefix of partial blob files in `tmp/`.
const PARTIAL_PREFIX: &str = "partial-";

/// Size of the buffer used to append and hash, in bytes.
const BUFFER: usize = 1 << 20;

/// A blob being written in pieces; see the module documentation.
#[derive(Debug)]
pub struct PartialBlob {
    file: File,
    path: PathBuf,
    digest: Digest,
    len: u64,
}

impl Store {
    /// Opens the partial download of `digest`, creating it empty when there is none, and locks
    /// it. Fails when another process or thread holds it.
    pub fn partial_blob(&self, digest: &Digest) -> Result<PartialBlob, StoreError> {
        let path = self
            .tmp_dir()
            .join(format!("{PARTIAL_PREFIX}{}", digest.hex()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .context("open partial blob", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::io(
                    "lock partial blob",
                    &path,
                    io::Error::other("another pull is downloading this blob; wait for it"),
                ));
            }
            Err(TryLockError::Error(error)) => {
                return Err(StoreError::io("lock partial blob", &path, error));
            }
        }
        let len = file
            .seek(SeekFrom::End(0))
            .context("seek partial blob", &path)?;
        Ok(PartialBlob {
            file,
            path,
            digest: digest.clone(),
            len,
        })
    }
}

impl PartialBlob {
    /// Bytes already stored, where the next piece starts.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing is stored yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops what is stored, for a source that cannot continue from the middle.
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .context("truncate partial blob", &self.path)?;
        self.file
            .seek(SeekFrom::Start(0))
            .context("seek partial blob", &self.path)?;
        self.len = 0;
        Ok(())
    }

    /// Appends everything `reader` gives. What arrived before a read error stays stored, and
    /// the error is returned after it is flushed to the file.
    pub fn append(&mut self, reader: &mut dyn Read) -> Result<u64, StoreError> {
        let mut buffer = vec![0; BUFFER];
        let mut appended = 0;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => return Ok(appended),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(StoreError::io("download into", &self.path, error)),
            };
            self.file
                .write_all(&buffer[..read])
                .context("write partial blob", &self.path)?;
            self.len += read as u64;
            appended += read as u64;
        }
    }

    /// Returns the file path, for a caller that reads the bytes without storing them as a blob.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hashes the whole file and checks it against the digest. On a mismatch the file is
    /// emptied, so the next attempt starts over.
    pub fn verify(&mut self) -> Result<(), StoreError> {
        let actual = self.hash()?;
        if actual == self.digest {
            return Ok(());
        }
        self.restart()?;
        Err(StoreError::DigestMismatch {
            operation: "verify downloaded blob",
            expected: self.digest.clone(),
            actual,
        })
    }

    /// Hashes the whole file and, when it matches the digest, moves it into `blobs/` and
    /// returns its size. On a mismatch the file is emptied, so the next attempt starts over.
    pub fn commit(mut self, store: &Store) -> Result<u64, StoreError> {
        self.verify()?;
        self.file
            .sync_all()
            .context("fsync partial blob", &self.path)?;
        let target = store.blob_path(&self.digest);
        fs::rename(&self.path, &target).context("rename partial blob into", &target)?;
        fsutil::sync_parent(&target)?;
        tracing::debug!(digest = %self.digest, size = self.len, "stored downloaded blob");
        Ok(self.len)
    }

    /// Removes the file, for bytes that were used and are not to be stored.
    pub fn discard(self) -> Result<(), StoreError> {
        fs::remove_file(&self.path).context("remove partial blob", &self.path)
    }

    fn hash(&mut self) -> Result<Digest, StoreError> {
        self.file
            .seek(SeekFrom::Start(0))
            .context("seek partial blob", &self.path)?;
        let mut hasher = DigestWriter::new();
        let mut buffer = vec![0; BUFFER];
        loop {
            let read = self
                .file
                .read(&mut buffer)
                .context("hash partial blob", &self.path)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        (dir, store)
    }

    /// A reader that gives `data` and then fails, like a dropped connection.
    struct Breaks<'a>(&'a [u8]);

    impl Read for Breaks<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "dropped"));
            }
            let n = buffer.len().min(self.0.len());
            buffer[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_broken_download_continues_where_it_stopped() {
        let (_dir, store) = store();
        let content = b"0123456789abcdefghij".repeat(1000);
        let digest = Digest::of(&content);

        let mut first = store.partial_blob(&digest).unwrap();
        assert!(first.append(&mut Breaks(&content[..7000])).is_err());
        drop(first);
        assert!(!store.has_blob(&digest));

        let mut second = store.partial_blob(&digest).unwrap();
        assert_eq!(second.len(), 7000);
        second.append(&mut &content[7000..]).unwrap();
        assert_eq!(second.commit(&store).unwrap(), content.len() as u64);
        assert_eq!(store.read_blob(&digest).unwrap(), content);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_bytes_are_dropped_and_never_stored() {
        let (_dir, store) = store();
        let digest = Digest::of(b"the real content");
        let mut partial = store.partial_blob(&digest).unwrap();
        partial.append(&mut &b"something else"[..]).unwrap();
        assert!(matches!(
            partial.commit(&store),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!store.has_blob(&digest));
        assert!(store.partial_blob(&digest).unwrap().is_empty());
    }

    #[test]
    fn a_verified_file_can_be_read_in_place_and_discarded() {
        let (_dir, store) = store();
        let digest = Digest::of(b"GGUF bytes");
        let mut partial = store.partial_blob(&digest).unwrap();
        partial.append(&mut &b"GGUF bytes"[..]).unwrap();
        partial.verify().unwrap();
        assert_eq!(fs::read(partial.path()).unwrap(), b"GGUF bytes");
        partial.discard().unwrap();
        assert!(!store.has_blob(&digest));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_held_partial_blob_is_refused_and_kept_from_gc() {
        let (_dir, store) = store();
        let digest = Digest::of(b"content");
        let mut held = store.partial_blob(&digest).unwrap();
        held.append(&mut &b"cont"[..]).unwrap();
        assert!(store.partial_blob(&digest).is_err());
        assert_eq!(store.gc().unwrap().tmp_removed, 0);
        drop(held);
        assert_eq!(store.gc().unwrap().tmp_removed, 1);
    }

    #[test]
    fn restart_empties_the_file() {
        let (_dir, store) = store();
        let digest = Digest::of(b"abc");
        let mut partial = store.partial_blob(&digest).unwrap();
        partial.append(&mut &b"xyz"[..]).unwrap();
        partial.restart().unwrap();
        partial.append(&mut &b"abc"[..]).unwrap();
        assert_eq!(partial.commit(&store).unwrap(), 3);
    }
}
