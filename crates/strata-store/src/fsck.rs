//! `fsck`: checks that every reachable blob is stored, has the declared size and hashes to its
//! digest, and that every tagged manifest and JSON config parses.
//!
//! `fsck` takes `locks/gc.lock` shared, so it runs alongside writers but never alongside `gc`.
//! Leftover temporary files and unreachable blobs are notes, not problems: `gc` removes both.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::path::PathBuf;

use crate::blobs::digest_of_blob_name;
use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::store::Store;
use crate::walk::{BlobUse, Walk};

/// Counts and findings of one `fsck` run.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Number of distinct blobs hashed.
    pub blobs_checked: usize,
    /// Bytes hashed, summed over those blobs.
    pub bytes_checked: u64,
    /// Damage found; empty for a healthy store.
    pub problems: Vec<FsckProblem>,
    /// Harmless findings, such as leftover temporary files, each a sentence for people.
    pub notes: Vec<String>,
}

/// One piece of damage found by `fsck`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsckProblem {
    /// A reachable blob is not stored.
    Missing {
        /// The missing blob.
        digest: Digest,
        /// Use of the blob, for example "layer 3 of `a:latest`".
        role: String,
    },
    /// A blob's size differs from what a descriptor declares.
    WrongSize {
        /// The blob.
        digest: Digest,
        /// Use of the blob.
        role: String,
        /// Declared size in bytes.
        expected: u64,
        /// Size on disk in bytes.
        actual: u64,
    },
    /// A blob's content does not hash to its digest.
    Corrupt {
        /// The digest the blob is stored under.
        digest: Digest,
        /// The sha256 of its content.
        actual: Digest,
    },
    /// A blob is stored but cannot be read, or a manifest or config does not parse.
    Unreadable {
        /// The blob.
        digest: Digest,
        /// The error, with its causes, as one line.
        reason: String,
    },
}

impl fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckProblem::Missing { digest, role } => {
                write!(f, "{digest}: missing, needed as {role}")
            }
            FsckProblem::WrongSize {
                digest,
                role,
                expected,
                actual,
            } => write!(
                f,
                "{digest}: has {actual} bytes, expected {expected} as declared for {role}"
            ),
            FsckProblem::Corrupt { digest, actual } => {
                write!(f, "{digest}: corrupt, content hashes to {actual}")
            }
            FsckProblem::Unreadable { digest, reason } => write!(f, "{digest}: {reason}"),
        }
    }
}

/// The outcome of hashing one blob, kept so a blob used twice is hashed once.
#[derive(Clone, Copy)]
enum Hashed {
    /// Hashes to its digest; the size in bytes.
    Sound(u64),
    /// Does not hash to its digest; the size in bytes.
    Corrupt(u64),
    Missing,
    Unreadable,
}

impl Store {
    /// Checks every blob reachable from `index.json`; see the module documentation.
    pub fn fsck(&self) -> Result<FsckReport, StoreError> {
        let _gc = self.lock_gc_shared()?;
        let walk = self.walk()?;
        let mut report = FsckReport::default();
        let mut hashed: HashMap<Digest, Hashed> = HashMap::new();
        for blob_use in &walk.uses {
            self.check_use(blob_use, &mut hashed, &mut report);
        }
        report_failures(&walk, &hashed, &mut report);
        self.note_unreachable(&walk, &mut report)?;
        self.note_leftover_tmp(&mut report)?;
        tracing::debug!(
            blobs = report.blobs_checked,
            problems = report.problems.len(),
            "fsck"
        );
        Ok(report)
    }

    fn check_use(
        &self,
        blob_use: &BlobUse,
        hashed: &mut HashMap<Digest, Hashed>,
        report: &mut FsckReport,
    ) {
        let digest = &blob_use.digest;
        let outcome = match hashed.get(digest) {
            Some(outcome) => *outcome,
            None => {
                let outcome = self.hash_and_check(digest, report);
                hashed.insert(digest.clone(), outcome);
                outcome
            }
        };
        let role = blob_use.role.clone();
        match (outcome, blob_use.size) {
            (Hashed::Missing, _) => report.problems.push(FsckProblem::Missing {
                digest: digest.clone(),
                role,
            }),
            (Hashed::Sound(actual) | Hashed::Corrupt(actual), Some(expected))
                if actual != expected =>
            {
                let digest = digest.clone();
                report.problems.push(FsckProblem::WrongSize {
                    digest,
                    role,
                    expected,
                    actual,
                });
            }
            _ => {}
        }
    }

    /// Hashes one blob, adding it to the counts and reporting corruption or read errors.
    fn hash_and_check(&self, digest: &Digest, report: &mut FsckReport) -> Hashed {
        let (actual, size) = match self.hash_blob(digest) {
            Ok(hashed) => hashed,
            Err(StoreError::NotFound { .. }) => return Hashed::Missing,
            Err(error) => {
                let reason = error_chain(&error);
                report.problems.push(FsckProblem::Unreadable {
                    digest: digest.clone(),
                    reason,
                });
                return Hashed::Unreadable;
            }
        };
        report.blobs_checked += 1;
        report.bytes_checked += size;
        if actual != *digest {
            report.problems.push(FsckProblem::Corrupt {
                digest: digest.clone(),
                actual,
            });
            return Hashed::Corrupt(size);
        }
        Hashed::Sound(size)
    }

    fn note_unreachable(&self, walk: &Walk, report: &mut FsckReport) -> Result<(), StoreError> {
        let reachable: BTreeSet<&Digest> = walk.uses.iter().map(|u| &u.digest).collect();
        let (mut count, mut bytes) = (0usize, 0u64);
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).context("list blobs", &dir)? {
            let entry = entry.context("list blobs", &dir)?;
            match digest_of_blob_name(entry.file_name().as_ref()) {
                Some(digest) if reachable.contains(&digest) => {}
                Some(_) => {
                    count += 1;
                    bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                }
                None => report.notes.push(format!(
                    "{}: not a sha256 blob name; fsck and gc leave it alone",
                    entry.path().display()
                )),
            }
        }
        if count > 0 {
            report.notes.push(format!(
                "{count} unreachable blobs ({bytes} bytes); gc removes them"
            ));
        }
        Ok(())
    }

    fn note_leftover_tmp(&self, report: &mut FsckReport) -> Result<(), StoreError> {
        for (path, _file) in self.leftover_tmp_files()? {
            let note = format!("{}: leftover temporary file; gc removes it", path.display());
            report.notes.push(note);
        }
        Ok(())
    }

    /// Lists the files in `tmp/` that no live writer holds locked, each returned open with the
    /// lock now held by the caller.
    pub(crate) fn leftover_tmp_files(&self) -> Result<Vec<(PathBuf, File)>, StoreError> {
        let dir = self.tmp_dir();
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(&dir).context("list temporary files", &dir)? {
            let path = entry.context("list temporary files", &dir)?.path();
            if !path.is_file() {
                continue;
            }
            // A writer holds its temporary file locked until it renames or removes it.
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(_) => continue, // renamed or removed since the listing
            };
            match file.try_lock() {
                Ok(()) => leftovers.push((path, file)),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(error)) => {
                    return Err(StoreError::io("lock temporary file", &path, error));
                }
            }
        }
        Ok(leftovers)
    }
}

/// Reports manifests and configs that could not be walked, unless their blob is already reported.
fn report_failures(walk: &Walk, hashed: &HashMap<Digest, Hashed>, report: &mut FsckReport) {
    for failure in &walk.failures {
        if matches!(
            hashed.get(&failure.digest),
            Some(Hashed::Missing | Hashed::Corrupt(_) | Hashed::Unreadable)
        ) {
            continue;
        }
        let reason = format!(
            "cannot walk it for `{}`: {}",
            failure.root,
            error_chain(&failure.error)
        );
        report.problems.push(FsckProblem::Unreadable {
            digest: failure.digest.clone(),
            reason,
        });
    }
}

/// Formats an error and its sources as one line, joined by `: `.
fn error_chain(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
