//! Pulling a manifest and what it refers to into the store: every descriptor is checked before
//! anything is written, every blob is verified against its digest while it streams in, and the
//! tag moves only once everything is stored, so a pull that breaks leaves the store's tags as
//! they were, and a second pull skips the blobs the first one stored.

use strata_store::{Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, Reference, Store};

use crate::client::Client;
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
}

/// Pulls `remote` into the store and tags it `local`.
pub fn pull(
    store: &Store,
    remote: &RemoteRef,
    local: &Reference,
    client: &Client,
) -> Result<PullReport> {
    let mut report = PullReport::default();
    let descriptor = pull_manifest(store, client, remote, remote.reference(), &mut report)?;
    store.set_tag(local, &descriptor)?;
    report.digest = Some(descriptor.digest);
    Ok(report)
}

fn pull_manifest(
    store: &Store,
    client: &Client,
    remote: &RemoteRef,
    reference: &str,
    report: &mut PullReport,
) -> Result<Descriptor> {
    let (bytes, media_type) = client.get_manifest(&remote.repository, reference)?;
    let manifest = parse_manifest(&bytes, &media_type, remote)?;
    if let Some(subject) = &manifest.subject {
        pull_manifest(store, client, remote, subject.digest.as_str(), report)?;
    }

    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if store.has_blob(&blob.digest) && store.blob_size(&blob.digest)? == blob.size {
            report.blobs_skipped += 1;
            continue;
        }
        let mut response = client.get_blob(&remote.repository, &blob.digest)?;
        let (_, size) = store.put_blob_from_reader(&mut response, Some(&blob.digest))?;
        if size != blob.size {
            return Err(RegistryError::Invalid(format!(
                "blob {} is {size} bytes, but the manifest declares {}",
                blob.digest, blob.size
            )));
        }
        report.blobs_fetched += 1;
        report.bytes_fetched += size;
    }

    let digest = store.put_blob(&bytes)?;
    report.manifests += 1;
    let mut descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest, bytes.len() as u64);
    descriptor.artifact_type = manifest.artifact_type.clone();
    Ok(descriptor)
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
