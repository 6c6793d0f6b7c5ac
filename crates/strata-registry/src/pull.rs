//! Pulling a manifest and what it refers to into the store: every descriptor is checked before
//! anything is written, every blob is verified against its digest while it streams in, and the
//! tag moves only once everything is stored, so a pull that breaks leaves the store's tags as
//! they were, and a second pull skips the blobs the first one stored.

use std::time::Duration;

use strata_store::{
    Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, PartialBlob, Reference, Store, WriteGuard,
};

use crate::client::{Client, is_transient};
use crate::error::{RegistryError, Result};
use crate::remote::RemoteRef;

/// Annotation naming a layer's file, which must never be a path.
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Counts of what a pull fetched and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Digest of the pulled manifest.
    pub digest: Option<Digest>,
    /// Manifests pulled, the subject's included.
    pub manifests: usize,
    /// Blobs downloaded.
    pub blobs_fetched: usize,
    /// Bytes downloaded.
    pub bytes_fetched: u64,
    /// Blobs the store already had.
    pub blobs_skipped: usize,
    /// Downloads that continued from bytes an earlier break left in the store.
    pub downloads_resumed: u32,
}

/// Tries after the first failure of one blob before the pull gives up.
const RETRIES: u32 = 3;

/// Says whether strata understands a manifest's config and layer media types; the error names
/// the one it does not.
pub type KnownTypes<'a> = &'a dyn Fn(&Manifest) -> std::result::Result<(), String>;

/// Pulls `remote` into the store and tags it `local`. Every manifest, the subject's included,
/// must pass `known` before anything is written.
pub fn pull(
    store: &Store,
    remote: &RemoteRef,
    local: &Reference,
    client: &Client,
    known: KnownTypes<'_>,
) -> Result<PullReport> {
    let mut pulling = Pulling {
        store,
        client,
        remote,
        known,
        report: PullReport::default(),
        writing: None,
    };
    let descriptor = pulling.manifest(remote.reference())?;
    store.set_tag(local, &descriptor)?;
    let mut report = pulling.report;
    report.digest = Some(descriptor.digest);
    Ok(report)
}

/// One pull in progress. It takes the store's writer lock before its first write and holds it
/// until the tag has moved, so `gc` never sees the new blobs unreferenced.
struct Pulling<'a> {
    store: &'a Store,
    client: &'a Client,
    remote: &'a RemoteRef,
    known: KnownTypes<'a>,
    report: PullReport,
    writing: Option<WriteGuard>,
}

impl Pulling<'_> {
    /// Pulls the manifest `reference` names, its subject first, then its blobs.
    fn manifest(&mut self, reference: &str) -> Result<Descriptor> {
        let (store, client, remote) = (self.store, self.client, self.remote);
        let (bytes, media_type) = client.get_manifest(&remote.repository, reference)?;
        let manifest = parse_manifest(&bytes, &media_type, remote)?;
        (self.known)(&manifest).map_err(|reason| {
            RegistryError::Invalid(format!("{remote} cannot be pulled: {reason}"))
        })?;
        if let Some(subject) = &manifest.subject {
            self.manifest(subject.digest.as_str())?;
        }

        if self.writing.is_none() {
            self.writing = Some(store.writer()?);
        }
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if store.has_blob(&blob.digest) && store.blob_size(&blob.digest)? == blob.size {
                self.report.blobs_skipped += 1;
                continue;
            }
            let (partial, fetched) = download(store, client, &remote.repository, blob)?;
            partial.commit(store)?;
            self.report.downloads_resumed += fetched.resumed;
            self.report.bytes_fetched += fetched.bytes;
            self.report.blobs_fetched += 1;
        }

        let digest = store.put_blob(&bytes)?;
        self.report.manifests += 1;
        let mut descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest, bytes.len() as u64);
        descriptor.artifact_type = manifest.artifact_type.clone();
        Ok(descriptor)
    }
}

/// The byte counts of one blob's download.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// Bytes that crossed the wire.
    pub(crate) bytes: u64,
    /// Times it continued from bytes already in the partial file.
    pub(crate) resumed: u32,
}

/// Downloads one blob into its partial file in the store, continuing from the file's end after
/// a break (here or in an earlier pull) with a `Range` request, and returns the file once it
/// has the declared size, for the caller to verify and commit.
pub(crate) fn download(
    store: &Store,
    client: &Client,
    repository: &str,
    blob: &Descriptor,
) -> Result<(PartialBlob, Fetched)> {
    let mut partial = store.partial_blob(&blob.digest)?;
    let mut fetched = Fetched {
        bytes: 0,
        resumed: 0,
    };
    let mut failures = 0;
    loop {
        if partial.len() > blob.size {
            partial.restart()?;
        }
        if !partial.is_empty() {
            fetched.resumed += 1;
            tracing::info!(digest = %blob.digest, offset = partial.len(), "continuing a download");
        }
        let result = client
            .get_blob_from(repository, &blob.digest, partial.len())
            .and_then(|(mut response, start)| {
                if start != partial.len() {
                    partial.restart()?;
                }
                Ok(partial.append(&mut response)?)
            });
        match result {
            Ok(bytes) => {
                fetched.bytes += bytes;
                break;
            }
            Err(error) if !is_transient(&error) => return Err(error),
            Err(error) if failures == RETRIES => {
                return Err(RegistryError::Interrupted {
                    what: format!("the download of blob {}", blob.digest),
                    source: Box::new(error),
                });
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(digest = %blob.digest, %error, failures, "download broke; trying again");
                std::thread::sleep(Duration::from_millis(250 << failures));
            }
        }
    }
    if partial.len() != blob.size {
        let size = partial.len();
        partial.restart()?;
        return Err(RegistryError::Invalid(format!(
            "blob {} is {size} bytes, but the manifest declares {}",
            blob.digest, blob.size
        )));
    }
    Ok((partial, fetched))
}

/// Reads an OCI image manifest, rejecting other types and unsafe descriptors before any blob
/// is fetched. Digests are checked as the manifest is parsed.
fn parse_manifest(bytes: &[u8], media_type: &str, remote: &RemoteRef) -> Result<Manifest> {
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    if media_type != MANIFEST_MEDIA_TYPE {
        return Err(RegistryError::Invalid(format!(
            "{remote} is a `{media_type}`; strata pulls OCI image manifests (`{MANIFEST_MEDIA_TYPE}`)"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|error| {
        RegistryError::Invalid(format!("the manifest of {remote} is invalid: {error}"))
    })?;
    for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if let Some(title) = descriptor.annotations.get(TITLE_ANNOTATION)
            && (title.contains("..") || title.starts_with('/') || title.contains('\\'))
        {
            return Err(RegistryError::Invalid(format!(
                "layer {} of {remote} has the unsafe title `{title}`; nothing was pulled",
                descriptor.digest
            )));
        }
    }
    Ok(manifest)
}
