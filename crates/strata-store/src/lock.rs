//! Advisory file locks under `locks/`, shared between threads and processes.
//!
//! The locks are `flock`-style locks taken with `File::lock` and `File::lock_shared`. They belong
//! to an open file, not to a process, so two threads of one process that each open the lock file
//! exclude each other exactly as two processes do. The operating system releases them when the
//! file is closed, including when a process is killed, so a crash never leaves a store locked.
//!
//! - `locks/gc.lock`: shared by every writer for the whole of an import or save
//!   ([`WriteGuard`]), exclusive for `gc`. `fsck` takes it shared, so it never races `gc`.
//! - `locks/index.lock`: exclusive around every read-modify-write of `index.json`, and for the
//!   whole of `gc`.
//!
//! Lock order is `gc.lock` before `index.lock`, everywhere, so the two cannot deadlock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, StoreError};

/// File name of the lock that writers share and `gc` holds exclusively.
pub const GC_LOCK: &str = "gc.lock";
/// File name of the lock around `index.json` updates.
pub const INDEX_LOCK: &str = "index.lock";

/// A held lock on one file of `locks/`; dropping it closes the file, which releases the lock.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is held.
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock, StoreError> {
        let file = open_lock_file(path)?;
        tracing::debug!(path = %path.display(), "waiting for exclusive lock");
        file.lock().context("lock exclusively", path)?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Blocks until a shared lock on `path` is held.
    pub(crate) fn shared(path: &Path) -> Result<FileLock, StoreError> {
        let file = open_lock_file(path)?;
        tracing::debug!(path = %path.display(), "waiting for shared lock");
        file.lock_shared().context("lock shared", path)?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        tracing::debug!(path = %self.path.display(), "released lock");
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    // The lock file is never written; it only needs to exist and be open.
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    options.open(path).context("open lock file", path)
}

/// A shared hold on `locks/gc.lock`, taken with [`Store::writer`](crate::Store::writer).
///
/// Hold one for the whole of an import or save: from the first blob written until the tag is
/// set. While any guard is held, in any process, `gc` waits, so it cannot remove a blob that is
/// written but not yet reachable from a tag. The lock is released on drop.
///
/// Do not call [`Store::gc`](crate::Store::gc) on a thread that holds a guard: it would wait for
/// that guard forever.
#[derive(Debug)]
pub struct WriteGuard {
    _lock: FileLock,
}

impl WriteGuard {
    pub(crate) fn new(lock: FileLock) -> WriteGuard {
        WriteGuard { _lock: lock }
    }
}

/// An exclusive hold on a named lock, taken with [`Store::named_lock`](crate::Store::named_lock)
/// and released on drop.
#[derive(Debug)]
pub struct NamedLock {
    _lock: FileLock,
}

impl NamedLock {
    pub(crate) fn new(lock: FileLock) -> NamedLock {
        NamedLock { _lock: lock }
    }
}
