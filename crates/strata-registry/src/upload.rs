//! Resumable blob uploads.
//!
//! A blob goes up in chunks of [`CHUNK_BYTES`]. After each accepted chunk the session's URL is
//! noted in the store's `tmp/` as `upload-<key>`, so that a failure, in this process or a later
//! one, continues from what the registry reports holding (`GET` on the session answers with
//! `Range: 0-END`) rather than from the start. Registries drop a session whose last chunk
//! arrived broken; then the blob starts over in a new session. Only a broken connection, a 5xx,
//! 408 or 429 is tried again; a refusal is returned at once.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use strata_store::{Digest, Store, TMP_DIR};

use crate::client::{Client, UploadSession, is_transient};
use crate::error::{RegistryError, Result};

/// Bytes sent per `PATCH` of a chunked upload.
pub const CHUNK_BYTES: usize = 8 << 20;

/// Tries after the first failure of one blob before the push gives up.
const RETRIES: u32 = 3;

/// The outcome of one blob's upload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadOutcome {
    /// Bytes sent in chunks, counting any sent twice.
    pub bytes_sent: u64,
    /// Times the upload continued a session from the offset the registry reported.
    pub resumed: u32,
    /// Times the registry had dropped the session, so the blob started over.
    pub restarted: u32,
}

/// Uploads blobs for one registry and repository, keeping notes of unfinished sessions.
#[derive(Debug)]
pub struct Uploader<'a> {
    client: &'a Client,
    repository: &'a str,
    notes: PathBuf,
}

impl<'a> Uploader<'a> {
    /// Creates an uploader that keeps its session notes in `store`'s `tmp/`.
    pub fn new(client: &'a Client, repository: &'a str, store: &Store) -> Uploader<'a> {
        Uploader {
            client,
            repository,
            notes: store.root().join(TMP_DIR),
        }
    }

    /// Uploads the blob `digest` of `size` bytes from `file`, continuing a session an earlier
    /// attempt left when the registry still has it.
    pub fn upload(&self, digest: &Digest, size: u64, file: &mut File) -> Result<UploadOutcome> {
        let mut outcome = UploadOutcome::default();
        let mut session = self
            .open_session(digest, &mut outcome)
            .map_err(|error| interrupted(error, digest))?;
        let mut failures = 0;
        loop {
            let mut error = match self.send_from(&session, digest, size, file, &mut outcome) {
                Ok(finished) => {
                    self.client.finish_upload(&finished, digest)?;
                    self.forget(digest);
                    return Ok(outcome);
                }
                Err((error, last)) => {
                    session = last;
                    error
                }
            };
            loop {
                if !retryable(&error) || failures == RETRIES {
                    return Err(interrupted(error, digest));
                }
                failures += 1;
                tracing::warn!(%digest, %error, failures, "upload broke; trying again");
                std::thread::sleep(Duration::from_millis(250 << failures));
                match self.recover(&session, &error, &mut outcome) {
                    Ok(next) => {
                        session = next;
                        break;
                    }
                    Err(next_error) => error = next_error,
                }
            }
        }
    }

    /// After a failed chunk: the same session from the offset the registry reports, or a new
    /// one when the registry dropped it or placed the chunk elsewhere (416).
    fn recover(
        &self,
        last: &UploadSession,
        error: &RegistryError,
        outcome: &mut UploadOutcome,
    ) -> Result<UploadSession> {
        let reported = match error {
            RegistryError::Status { status: 416, .. } => None,
            _ => self.client.upload_status(&last.location)?,
        };
        match reported {
            Some(session) => {
                outcome.resumed += 1;
                Ok(session)
            }
            None => {
                let session = self.client.start_upload(self.repository)?;
                outcome.restarted += 1;
                Ok(session)
            }
        }
    }

    /// Continues the noted session of `digest` when the registry still has it, else starts one.
    fn open_session(&self, digest: &Digest, outcome: &mut UploadOutcome) -> Result<UploadSession> {
        let noted = fs::read_to_string(self.note_path(digest)).ok();
        if let Some(session) = noted.and_then(|location| self.status(location.trim())) {
            tracing::info!(%digest, offset = session.offset, "continuing an earlier upload");
            outcome.resumed += 1;
            return Ok(session);
        }
        self.client.start_upload(self.repository)
    }

    /// Returns the session as the registry reports it, or `None` when it cannot say.
    fn status(&self, location: &str) -> Option<UploadSession> {
        match self.client.upload_status(location) {
            Ok(session) => session,
            Err(error) => {
                tracing::debug!(%error, "cannot check the upload");
                None
            }
        }
    }

    /// Sends the chunks from the session's offset to the end. On failure returns the error and
    /// the last session the registry accepted.
    fn send_from(
        &self,
        session: &UploadSession,
        digest: &Digest,
        size: u64,
        file: &mut File,
        outcome: &mut UploadOutcome,
    ) -> std::result::Result<UploadSession, (RegistryError, UploadSession)> {
        let mut session = session.clone();
        let fail = |error, session: &UploadSession| Err((error, session.clone()));
        if let Err(source) = file.seek(SeekFrom::Start(session.offset)) {
            return fail(read_error(digest, source), &session);
        }
        let mut chunk = vec![0u8; CHUNK_BYTES];
        while session.offset < size {
            let filled = match read_up_to(file, &mut chunk) {
                Ok(0) => {
                    let error = RegistryError::Invalid(format!(
                        "blob {digest} ended after {} of {size} bytes",
                        session.offset
                    ));
                    return fail(error, &session);
                }
                Ok(filled) => filled,
                Err(source) => return fail(read_error(digest, source), &session),
            };
            session = match self.client.upload_chunk(&session, &chunk[..filled]) {
                Ok(next) => next,
                Err(error) => return fail(error, &session),
            };
            outcome.bytes_sent += filled as u64;
            self.note(digest, &session.location);
        }
        Ok(session)
    }

    /// Notes the session's URL, replacing the note atomically; a note that cannot be written
    /// costs only the chance to resume.
    fn note(&self, digest: &Digest, location: &str) {
        let written = tempfile::NamedTempFile::with_prefix_in("upload-note-", &self.notes)
            .and_then(|mut temp| {
                temp.write_all(location.as_bytes())?;
                temp.persist(self.note_path(digest))
                    .map_err(|error| error.error)?;
                Ok(())
            });
        if let Err(error) = written {
            tracing::debug!(%error, "cannot note the upload session");
        }
    }

    fn forget(&self, digest: &Digest) {
        let _ = fs::remove_file(self.note_path(digest));
    }

    /// `tmp/upload-<sha256 of registry, repository and blob>`.
    fn note_path(&self, digest: &Digest) -> PathBuf {
        let key = format!("{}/{}@{digest}", self.client.base(), self.repository);
        self.notes
            .join(format!("upload-{}", Digest::of(key.as_bytes()).hex()))
    }
}

/// True for a transient failure, or a chunk the registry placed elsewhere (416), which a new session
/// gets past.
fn retryable(error: &RegistryError) -> bool {
    is_transient(error) || matches!(error, RegistryError::Status { status: 416, .. })
}

/// Says what to do after the tries ran out, keeping the cause.
fn interrupted(error: RegistryError, digest: &Digest) -> RegistryError {
    if !is_transient(&error) {
        return error;
    }
    RegistryError::Interrupted {
        what: format!("the upload of blob {digest}"),
        source: Box::new(error),
    }
}

fn read_error(digest: &Digest, source: std::io::Error) -> RegistryError {
    RegistryError::Io {
        context: format!("cannot read blob {digest}"),
        source,
    }
}

/// Fills `buffer` from `reader` as far as it goes; returns the bytes read.
fn read_up_to(reader: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}
