//! Tags: the entries of `index.json`, each a manifest descriptor annotated with
//! `org.opencontainers.image.ref.name` = `name:tag`.
//!
//! Every change is a read-modify-write of the whole file under `locks/index.lock`, written to
//! `tmp/` and renamed over `index.json`, so concurrent writers never lose each other's tags and a
//! reader never sees a half-written index. Readers take no lock.

use std::fs;
use std::io;

use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::oci::{Descriptor, ImageIndex, MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION};
use crate::reference::{RefTarget, Reference};
use crate::store::Store;

/// One tag of the store and the manifest it points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagEntry {
    /// The tag, always a [`RefTarget::Tag`] reference.
    pub reference: Reference,
    /// The `index.json` entry, including its ref name annotation.
    pub descriptor: Descriptor,
}

impl Store {
    /// Points the tag `reference` at `manifest` and returns the descriptor it pointed to before.
    ///
    /// The manifest must be stored with the size the descriptor declares. The entry written to
    /// `index.json` is `manifest` plus the ref name annotation.
    pub fn set_tag(
        &self,
        reference: &Reference,
        manifest: &Descriptor,
    ) -> Result<Option<Descriptor>, StoreError> {
        self.move_tag(reference, manifest, None)
    }

    /// Points the tag `reference` at `manifest` only if it still points to `expected` (`None`:
    /// only if the tag does not exist), and returns the descriptor it pointed to before.
    ///
    /// The check and the move happen under the index lock, so of two writers that read the same
    /// tag and both try to move it, one fails with [`StoreError::TagMoved`].
    pub fn set_tag_if(
        &self,
        reference: &Reference,
        manifest: &Descriptor,
        expected: Option<&Digest>,
    ) -> Result<Option<Descriptor>, StoreError> {
        self.move_tag(reference, manifest, Some(expected))
    }

    fn move_tag(
        &self,
        reference: &Reference,
        manifest: &Descriptor,
        expected: Option<Option<&Digest>>,
    ) -> Result<Option<Descriptor>, StoreError> {
        let ref_name = tag_ref_name("set tag", reference)?;
        if manifest.media_type != MANIFEST_MEDIA_TYPE {
            let reason = format!(
                "set tag `{ref_name}`: descriptor media type is `{}`, expected `{MANIFEST_MEDIA_TYPE}`",
                manifest.media_type
            );
            return Err(StoreError::InvalidManifest {
                digest: manifest.digest.to_string(),
                reason,
            });
        }
        let mut entry = manifest.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), ref_name.clone());

        let _lock = self.lock_index()?;
        self.check_declared("set tag", manifest)?;
        let mut index = self.read_index()?;
        let previous = take_entry(&mut index, &ref_name);
        if let Some(expected) = expected {
            let actual = previous.as_ref().map(|entry| &entry.digest);
            if actual != expected {
                let describe = |digest: Option<&Digest>| {
                    digest.map_or_else(|| "nothing".to_string(), ToString::to_string)
                };
                return Err(StoreError::TagMoved {
                    reference: ref_name,
                    expected: describe(expected),
                    actual: describe(actual),
                });
            }
        }
        index.manifests.push(entry);
        self.write_index(index)?;
        tracing::debug!(tag = %ref_name, digest = %manifest.digest, "set tag");
        Ok(previous)
    }

    /// Returns the descriptor of the manifest `reference` selects.
    ///
    /// A tag is looked up in `index.json`. A digest must name a stored manifest, and its name
    /// part is not checked, because a manifest is not tied to one name.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        match &reference.target {
            RefTarget::Tag(_) => self.resolve_tag(reference),
            RefTarget::Digest(digest) => self.resolve_digest(digest),
        }
    }

    /// Lists every tag, sorted by `name:tag`.
    ///
    /// Entries of `index.json` without a `name:tag` ref name, such as those other OCI tools add
    /// with a bare tag, are left out here but still count for `fsck` and `gc`.
    pub fn list_tags(&self) -> Result<Vec<TagEntry>, StoreError> {
        let index = self.read_index()?;
        let entries = index.manifests.into_iter().filter_map(|descriptor| {
            let reference = parse_ref_name(ImageIndex::ref_name(&descriptor)?)?;
            Some(TagEntry {
                reference,
                descriptor,
            })
        });
        let mut tags: Vec<TagEntry> = entries.collect();
        tags.sort_by_key(|entry| entry.reference.to_string());
        Ok(tags)
    }

    /// Removes the tag `reference` and returns the descriptor it pointed to.
    ///
    /// The manifest and its blobs stay until `gc` finds them unreachable.
    pub fn remove_tag(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        let ref_name = tag_ref_name("remove tag", reference)?;
        let _lock = self.lock_index()?;
        let mut index = self.read_index()?;
        let Some(removed) = take_entry(&mut index, &ref_name) else {
            return Err(StoreError::TagNotFound {
                operation: "remove tag",
                reference: ref_name,
            });
        };
        self.write_index(index)?;
        tracing::debug!(tag = %ref_name, "removed tag");
        Ok(removed)
    }

    /// Reads `index.json`; a layout without one has no tags.
    pub(crate) fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(ImageIndex::default());
            }
            other => other.context("read", &path)?,
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path,
            expected: "an OCI image index",
            source,
        })
    }

    /// Sorts the entries and replaces `index.json` atomically; call with `locks/index.lock` held.
    fn write_index(&self, mut index: ImageIndex) -> Result<(), StoreError> {
        index
            .manifests
            .sort_by(|a, b| ImageIndex::ref_name(a).cmp(&ImageIndex::ref_name(b)));
        fsutil::write_atomic(&self.tmp_dir(), &self.index_path(), &index.to_json_bytes())
    }

    fn resolve_tag(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        let ref_name = reference.to_string();
        let index = self.read_index()?;
        let found = index
            .manifests
            .into_iter()
            .find(|entry| ImageIndex::ref_name(entry) == Some(ref_name.as_str()));
        found.ok_or(StoreError::TagNotFound {
            operation: "resolve",
            reference: ref_name,
        })
    }

    fn resolve_digest(&self, digest: &Digest) -> Result<Descriptor, StoreError> {
        let manifest = self.read_manifest(digest)?;
        let size = self.blob_size(digest)?;
        let mut descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest.clone(), size);
        descriptor.artifact_type = manifest.artifact_type;
        Ok(descriptor)
    }
}

/// Returns `name:tag` for a tag reference, rejecting a digest reference.
fn tag_ref_name(operation: &'static str, reference: &Reference) -> Result<String, StoreError> {
    match reference.target {
        RefTarget::Tag(_) => Ok(reference.to_string()),
        RefTarget::Digest(_) => Err(StoreError::NotATag {
            operation,
            reference: reference.to_string(),
        }),
    }
}

/// Removes the entry whose ref name is `ref_name` and returns it.
fn take_entry(index: &mut ImageIndex, ref_name: &str) -> Option<Descriptor> {
    let position = index
        .manifests
        .iter()
        .position(|entry| ImageIndex::ref_name(entry) == Some(ref_name))?;
    Some(index.manifests.remove(position))
}

/// Parses a ref name annotation written `name:tag`; other forms are not strata tags.
fn parse_ref_name(ref_name: &str) -> Option<Reference> {
    if !ref_name.contains(':') || ref_name.contains('@') {
        return None;
    }
    Reference::parse(ref_name).ok()
}
