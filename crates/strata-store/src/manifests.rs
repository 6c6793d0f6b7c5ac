//! Manifests: storing one after checking that every blob it names is stored, and reading one
//! back with its digest verified.

use crate::digest::Digest;
use crate::error::StoreError;
use crate::oci::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest, SCHEMA_VERSION};
use crate::store::Store;

impl Store {
    /// Stores `manifest` and returns a descriptor of it.
    ///
    /// The config, every layer and the subject, when there is one, must already be stored with
    /// exactly the size their descriptors declare. The descriptor returned has the manifest media
    /// type and the manifest's `artifactType`.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<Descriptor, StoreError> {
        check_header(manifest, "(unsaved)")?;
        let named = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .chain(&manifest.subject);
        for descriptor in named {
            self.check_declared("put manifest", descriptor)?;
        }
        let bytes = manifest.to_json_bytes();
        let digest = self.put_blob(&bytes)?;
        tracing::debug!(%digest, layers = manifest.layers.len(), "stored manifest");
        let mut descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest, bytes.len() as u64);
        descriptor.artifact_type = manifest.artifact_type.clone();
        Ok(descriptor)
    }

    /// Reads the manifest `digest`, checking that its bytes hash to `digest`.
    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest, StoreError> {
        let bytes = self.read_blob(digest)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            let expected = digest.clone();
            return Err(StoreError::DigestMismatch {
                operation: "read manifest",
                expected,
                actual,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: self.blob_path(digest),
                expected: "an OCI image manifest",
                source,
            })?;
        check_header(&manifest, digest.as_str())?;
        Ok(manifest)
    }

    /// Checks that the blob a descriptor names is stored with the size it declares.
    pub(crate) fn check_declared(
        &self,
        operation: &'static str,
        descriptor: &Descriptor,
    ) -> Result<(), StoreError> {
        let digest = &descriptor.digest;
        let actual = self.blob_size(digest).map_err(|error| match error {
            StoreError::NotFound { digest, .. } => StoreError::NotFound { operation, digest },
            other => other,
        })?;
        if actual != descriptor.size {
            let (digest, expected) = (digest.clone(), descriptor.size);
            return Err(StoreError::SizeMismatch {
                operation,
                digest,
                expected,
                actual,
            });
        }
        Ok(())
    }
}

/// Checks `schemaVersion` and `mediaType`, the fields that identify an image manifest.
fn check_header(manifest: &Manifest, digest: &str) -> Result<(), StoreError> {
    let reason = if manifest.schema_version != SCHEMA_VERSION {
        format!(
            "schemaVersion is {}, expected {SCHEMA_VERSION}",
            manifest.schema_version
        )
    } else if manifest.media_type != MANIFEST_MEDIA_TYPE {
        format!(
            "mediaType is `{}`, expected `{MANIFEST_MEDIA_TYPE}`",
            manifest.media_type
        )
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidManifest {
        digest: digest.to_string(),
        reason,
    })
}
