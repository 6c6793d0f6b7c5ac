//! Filesystem steps that the write protocol is built from: temporary files in `tmp/`, fsync of
//! files and directories, and atomic replacement by rename.
//!
//! `tmp/` sits on the same filesystem as `blobs/` and `index.json`, so `rename` moves a finished
//! file into place atomically: a reader sees the old file or the whole new one, never a part.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, StoreError};

/// A file in `tmp/`, created with `create_new` and locked exclusively while it is written.
///
/// The lock marks the file as in use for `gc` and `fsck`; a process that dies releases it, which marks the
/// file as a leftover. The file is removed on drop unless [`TempFile::persist`] renamed it.
#[derive(Debug)]
pub(crate) struct TempFile {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates `dir/<prefix><random hex><suffix>`, retrying on the rare name collision.
    pub(crate) fn create(dir: &Path, prefix: &str, suffix: &str) -> Result<TempFile, StoreError> {
        loop {
            let path = dir.join(format!("{prefix}{:016x}{suffix}", rand::random::<u64>()));
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path);
            let file = match opened {
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other.context("create temporary file", &path)?,
            };
            file.lock().context("lock temporary file", &path)?;
            return Ok(TempFile {
                file,
                path,
                persisted: false,
            });
        }
    }

    /// Flushes the contents to disk, then renames the file to `target` and fsyncs its directory.
    pub(crate) fn persist(mut self, target: &Path) -> Result<(), StoreError> {
        self.file
            .sync_all()
            .context("fsync temporary file", &self.path)?;
        fs::rename(&self.path, target).context("rename temporary file into", target)?;
        self.persisted = true;
        sync_parent(target)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: a file that cannot be removed now is a leftover that `gc` removes.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Fsyncs a directory, so that renames and creations inside it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .context("fsync directory", dir)
}

/// Fsyncs the directory that contains `path`.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => sync_dir(Path::new(".")),
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes `bytes` to a new file in `tmp_dir`, fsyncs it and renames it over `target`.
pub(crate) fn write_atomic(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let name = target
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    let suffix = if extension.is_empty() {
        String::new()
    } else {
        format!(".{extension}")
    };
    let mut temp = TempFile::create(tmp_dir, &format!("{stem}-"), &suffix)?;
    temp.file
        .write_all(bytes)
        .context("write temporary file", &temp.path)?;
    temp.persist(target)
}

/// Creates `dir` and its parents if they are missing.
pub(crate) fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).context("create directory", dir)
}
