//! The [`Store`] handle: opening or creating the layout under a root directory, the paths inside
//! it, and the writer lock.
//!
//! The blob, tag, `fsck` and `gc` operations are `impl Store` blocks in their own modules; this one
//! owns only what they share.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::lock::{self, FileLock, NamedLock, WriteGuard};
use crate::oci::ImageIndex;

/// The `imageLayoutVersion` the store writes and accepts.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// Name of the file that marks a directory as an OCI image layout.
pub const LAYOUT_FILE: &str = "oci-layout";
/// Name of the image index that contains the tags.
pub const INDEX_FILE: &str = "index.json";
/// Directory of sha256 blobs, relative to the root.
pub const BLOBS_DIR: &str = "blobs/sha256";
/// Directory of temporary files, relative to the root.
pub const TMP_DIR: &str = "tmp";
/// Directory of lock files, relative to the root.
pub const LOCKS_DIR: &str = "locks";

/// Top-level entries a half-created store may already contain; creation resumes over them.
const OWN_ENTRIES: [&str; 4] = ["blobs", TMP_DIR, LOCKS_DIR, INDEX_FILE];

/// The `oci-layout` file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

/// A handle on the store under one root directory; cheap to clone.
///
/// Every operation works on the files directly, so any number of handles, threads and processes
/// may use one store at once. The locks described in `docs/format.md` order their writes.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating the layout if the directory is missing or empty.
    ///
    /// Rejects a directory whose `oci-layout` names another version, and a non-empty directory
    /// without `oci-layout`. Creates `blobs/sha256/`, `tmp/` and `locks/` when they are missing,
    /// so a layout written by another OCI tool works too.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        match store.read_layout_version()? {
            Some(found) if found != LAYOUT_VERSION => {
                return Err(StoreError::UnsupportedLayout {
                    path: store.root,
                    found,
                });
            }
            Some(_) => store.create_dirs()?,
            None => store.create_layout()?,
        }
        tracing::debug!(root = %store.root.display(), "opened store");
        Ok(store)
    }

    /// Returns the root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes a shared hold on the writer lock, waiting while `gc` runs.
    ///
    /// See [`WriteGuard`] for when to hold one.
    pub fn writer(&self) -> Result<WriteGuard, StoreError> {
        Ok(WriteGuard::new(self.lock_gc_shared()?))
    }

    /// Blocks until this thread holds the exclusive lock `locks/NAME.lock`, which callers use to
    /// queue work such as lessons on one model lineage. `name` may use ASCII letters, digits,
    /// `-`, `_` and `.`, and must not start with `.`.
    pub fn named_lock(&self, name: &str) -> Result<NamedLock, StoreError> {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name.len() <= 128
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        if !valid || name == lock::GC_LOCK.trim_end_matches(".lock") || name == "index" {
            return Err(StoreError::InvalidReference {
                value: name.to_string(),
                reason:
                    "a lock name uses letters, digits, `-`, `_` and `.`, and is not `gc` or `index`"
                        .to_string(),
            });
        }
        let path = self.root.join(LOCKS_DIR).join(format!("{name}.lock"));
        Ok(NamedLock::new(FileLock::exclusive(&path)?))
    }

    /// Returns the path of the blob `digest`, whether or not it exists.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    pub(crate) fn lock_gc_shared(&self) -> Result<FileLock, StoreError> {
        FileLock::shared(&self.root.join(LOCKS_DIR).join(lock::GC_LOCK))
    }

    pub(crate) fn lock_gc_exclusive(&self) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.root.join(LOCKS_DIR).join(lock::GC_LOCK))
    }

    pub(crate) fn lock_index(&self) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.root.join(LOCKS_DIR).join(lock::INDEX_LOCK))
    }

    /// Returns the `imageLayoutVersion` of `oci-layout`, or `None` when the file is missing.
    fn read_layout_version(&self) -> Result<Option<String>, StoreError> {
        let path = self.root.join(LAYOUT_FILE);
        let bytes = match fs::read(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other.context("read", &path)?,
        };
        let layout: LayoutFile =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path,
                expected: "an oci-layout document",
                source,
            })?;
        Ok(Some(layout.image_layout_version))
    }

    /// Creates a fresh layout. `oci-layout` is written last, so a crash part way leaves a
    /// directory that the next `open` recognizes as half-created and finishes.
    fn create_layout(&self) -> Result<(), StoreError> {
        self.check_empty()?;
        self.create_dirs()?;
        fsutil::sync_dir(&self.root.join("blobs"))?;
        fsutil::sync_dir(&self.root)?;
        fsutil::sync_parent(&self.root)?;
        if !self.index_path().exists() {
            let index = ImageIndex::default().to_json_bytes();
            fsutil::write_atomic(&self.tmp_dir(), &self.index_path(), &index)?;
        }
        let layout = LayoutFile {
            image_layout_version: LAYOUT_VERSION.to_string(),
        };
        let bytes = serde_json::to_vec(&layout).expect("the layout file always serializes");
        fsutil::write_atomic(&self.tmp_dir(), &self.root.join(LAYOUT_FILE), &bytes)?;
        tracing::info!(root = %self.root.display(), "created store");
        Ok(())
    }

    /// Rejects a root that contains anything other than a half-created store's own entries.
    fn check_empty(&self) -> Result<(), StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other.context("list store directory", &self.root)?,
        };
        for entry in entries {
            let entry = entry.context("list store directory", &self.root)?;
            let name = entry.file_name();
            if !OWN_ENTRIES.iter().any(|own| name == *own) {
                return Err(StoreError::NotAStore {
                    path: self.root.clone(),
                });
            }
        }
        Ok(())
    }

    fn create_dirs(&self) -> Result<(), StoreError> {
        for dir in [BLOBS_DIR, TMP_DIR, LOCKS_DIR] {
            fsutil::create_dir_all(&self.root.join(dir))?;
        }
        Ok(())
    }
}
