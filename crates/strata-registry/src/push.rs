//! Pushing a model version or a snapshot: its subject first (a snapshot's model), then every
//! blob the registry lacks, then the manifest.

use std::fs::File;

use strata_store::{Digest, MANIFEST_MEDIA_TYPE, Manifest, Reference, Store};

use crate::MAX_MANIFEST_BYTES;
use crate::client::Client;
use crate::error::{RegistryError, Result};
use crate::remote::RemoteRef;
use crate::upload::Uploader;

/// Counts of what a push sent and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the pushed manifest.
    pub digest: Option<Digest>,
    /// Manifests pushed, the subject's included.
    pub manifests: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Bytes sent in blob uploads; a resumed upload counts only what it sent.
    pub bytes_uploaded: u64,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Blobs the registry mounted from another repository instead of receiving them.
    pub blobs_mounted: usize,
    /// Bytes of the blobs it already had.
    pub bytes_skipped: u64,
    /// Uploads that continued a session from where the registry had it, after a break here or
    /// in an earlier push.
    pub uploads_resumed: u32,
    /// Uploads that started over because the registry had dropped their session.
    pub uploads_restarted: u32,
}

/// Pushes the version or snapshot `local` names to `remote`. With `mount_from`, a blob the
/// repository lacks is first offered as a cross-repository mount from that repository of the
/// same registry; only a 201 response counts as mounted, otherwise the blob is uploaded.
pub fn push(
    store: &Store,
    local: &Reference,
    remote: &RemoteRef,
    client: &Client,
    mount_from: Option<&str>,
) -> Result<PushReport> {
    let descriptor = store.resolve(local)?;
    let mut report = PushReport::default();
    let uploader = Uploader::new(client, &remote.repository, store);
    let target = Target {
        remote,
        mount_from,
        uploader,
    };
    push_manifest(
        store,
        client,
        &target,
        &descriptor.digest,
        remote.reference(),
        &mut report,
    )?;
    report.digest = Some(descriptor.digest);
    Ok(report)
}

/// The destination of a push.
struct Target<'a> {
    remote: &'a RemoteRef,
    mount_from: Option<&'a str>,
    uploader: Uploader<'a>,
}

fn push_manifest(
    store: &Store,
    client: &Client,
    target: &Target<'_>,
    digest: &Digest,
    reference: &str,
    report: &mut PushReport,
) -> Result<()> {
    let bytes = store.read_blob(digest)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::Invalid(format!(
            "manifest {digest} is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit registries apply; nothing was pushed",
            bytes.len()
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|error| {
        RegistryError::Invalid(format!("manifest {digest} cannot be read: {error}"))
    })?;
    if let Some(subject) = &manifest.subject {
        push_manifest(
            store,
            client,
            target,
            &subject.digest,
            subject.digest.as_str(),
            report,
        )?;
    }

    let repository = &target.remote.repository;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if client.has_blob(repository, &blob.digest)? {
            report.blobs_skipped += 1;
            report.bytes_skipped += blob.size;
            continue;
        }
        if let Some(from) = target.mount_from
            && client.mount_blob(repository, from, &blob.digest)?
        {
            report.blobs_mounted += 1;
            continue;
        }
        let path = store.blob_path(&blob.digest);
        let mut file = File::open(&path).map_err(|source| RegistryError::Io {
            context: format!("cannot open blob {}", blob.digest),
            source,
        })?;
        tracing::debug!(digest = %blob.digest, size = blob.size, "uploading blob");
        let outcome = target.uploader.upload(&blob.digest, blob.size, &mut file)?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += outcome.bytes_sent;
        report.uploads_resumed += outcome.resumed;
        report.uploads_restarted += outcome.restarted;
    }
    client.put_manifest(repository, reference, &bytes, MANIFEST_MEDIA_TYPE)?;
    report.manifests += 1;
    Ok(())
}
