//! Reading snapshots back: by name or digest, listing, removing and checking them.

use std::fmt;

use strata_store::{
    Descriptor, Digest, MANIFEST_MEDIA_TYPE, RefTarget, Reference, Store, StoreError,
};

use crate::config::SnapshotConfig;
use crate::error::{Result, SessionError};
use crate::media::{
    BLOCK_START_ANNOTATION, BLOCK_TOKENS_ANNOTATION, KV_BLOCK_MEDIA_TYPE, SNAPSHOT_ARTIFACT_TYPE,
    SNAPSHOT_CONFIG_MEDIA_TYPE,
};
use crate::name::{SessionName, SnapshotRef};

/// One cache block of a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockRef {
    /// First position the block covers.
    pub start: usize,
    /// Positions it covers.
    pub tokens: usize,
    /// The layer descriptor: digest and size of the block blob.
    pub descriptor: Descriptor,
}

/// A snapshot read from the store, with its config parsed and its block list checked.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Descriptor of the snapshot manifest.
    pub descriptor: Descriptor,
    /// The config document.
    pub config: SnapshotConfig,
    /// The cache blocks in position order, covering `0..config.cached_tokens`.
    pub blocks: Vec<BlockRef>,
}

impl Snapshot {
    /// Reads the snapshot `name` points to.
    pub fn open(store: &Store, name: &SessionName) -> Result<Snapshot> {
        let descriptor = match store.resolve(&name.reference()) {
            Ok(descriptor) => descriptor,
            Err(StoreError::TagNotFound { .. }) => {
                let name = name.to_string();
                return Err(SessionError::NotFound { name });
            }
            Err(error) => return Err(error.into()),
        };
        Snapshot::read(store, descriptor)
    }

    /// Reads the snapshot a name or digest points to.
    pub fn open_ref(store: &Store, reference: &SnapshotRef) -> Result<Snapshot> {
        match reference {
            SnapshotRef::Name(name) => Snapshot::open(store, name),
            SnapshotRef::Digest(digest) => {
                let size = match store.blob_size(digest) {
                    Ok(size) => size,
                    Err(error) if error.is_not_found() => {
                        let name = digest.to_string();
                        return Err(SessionError::NotFound { name });
                    }
                    Err(error) => return Err(error.into()),
                };
                let descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest.clone(), size);
                Snapshot::read(store, descriptor)
            }
        }
    }

    /// Reads the snapshot manifest `descriptor` names.
    pub fn read(store: &Store, descriptor: Descriptor) -> Result<Snapshot> {
        let manifest = store.read_manifest(&descriptor.digest)?;
        if manifest.artifact_type.as_deref() != Some(SNAPSHOT_ARTIFACT_TYPE)
            || manifest.config.media_type != SNAPSHOT_CONFIG_MEDIA_TYPE
        {
            let what = format!(
                "manifest {} is not a session snapshot (artifact type {:?})",
                descriptor.digest, manifest.artifact_type
            );
            return Err(SessionError::Invalid { what });
        }
        let bytes = store.read_blob(&manifest.config.digest)?;
        let config: SnapshotConfig =
            serde_json::from_slice(&bytes).map_err(|source| SessionError::Json {
                digest: manifest.config.digest.to_string(),
                source,
            })?;
        config.check()?;
        if manifest.subject.as_ref().map(|s| &s.digest) != Some(&config.model.manifest) {
            let what = "the manifest's subject is not the model the config names".to_string();
            return Err(SessionError::Invalid { what });
        }

        let blocks = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| block_ref(index, layer))
            .collect::<Result<Vec<_>>>()?;
        check_coverage(&config, &blocks)?;
        Ok(Snapshot {
            descriptor,
            config,
            blocks,
        })
    }

    /// Digest of the snapshot manifest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// Bytes of all cache blocks together.
    pub fn cache_bytes(&self) -> u64 {
        self.blocks.iter().map(|block| block.descriptor.size).sum()
    }

    /// Returns a reference that loads exactly the model the snapshot was computed with.
    pub fn model_reference(&self) -> Reference {
        let recorded = Reference::parse(&self.config.model.reference);
        let name = recorded.map_or_else(|_| "model".to_string(), |reference| reference.name);
        Reference {
            name,
            target: RefTarget::Digest(self.config.model.manifest.clone()),
        }
    }
}

/// Parses a layer into a block, checking its media type and annotations.
fn block_ref(index: usize, layer: &Descriptor) -> Result<BlockRef> {
    let invalid = |what: String| SessionError::Invalid {
        what: format!("layer {index} ({}): {what}", layer.digest),
    };
    if layer.media_type != KV_BLOCK_MEDIA_TYPE {
        let found = &layer.media_type;
        return Err(invalid(format!(
            "media type is `{found}`, expected `{KV_BLOCK_MEDIA_TYPE}`"
        )));
    }
    let number = |key: &str| -> Result<usize> {
        let value = layer.annotations.get(key);
        let parsed = value.and_then(|text| text.parse().ok());
        parsed.ok_or_else(|| invalid(format!("annotation `{key}` is {value:?}, expected a count")))
    };
    Ok(BlockRef {
        start: number(BLOCK_START_ANNOTATION)?,
        tokens: number(BLOCK_TOKENS_ANNOTATION)?,
        descriptor: layer.clone(),
    })
}

/// Checks that the blocks tile `0..cached_tokens` and declare the sizes their tokens need.
fn check_coverage(config: &SnapshotConfig, blocks: &[BlockRef]) -> Result<()> {
    let mut end = 0;
    for (index, block) in blocks.iter().enumerate() {
        if block.start != end || block.tokens == 0 {
            let what = format!(
                "block {index} covers {} positions from {}, expected a non-empty block from {end}",
                block.tokens, block.start
            );
            return Err(SessionError::Invalid { what });
        }
        let expected = config.kv.block_bytes(block.tokens)?;
        if block.descriptor.size != expected {
            return Err(SessionError::BlockSize {
                index,
                digest: block.descriptor.digest.clone(),
                tokens: block.tokens,
                expected,
                actual: block.descriptor.size,
            });
        }
        end += block.tokens;
    }
    if end != config.cached_tokens {
        let cached = config.cached_tokens;
        let what = format!("the blocks cover {end} positions but cached_tokens is {cached}");
        return Err(SessionError::Invalid { what });
    }
    Ok(())
}

/// Lists every snapshot tag with the snapshot it points to, or the error reading it.
pub fn list(store: &Store) -> Result<Vec<(SessionName, Result<Snapshot>)>> {
    let mut snapshots = Vec::new();
    for entry in store.list_tags()? {
        let Some(name) = SessionName::from_reference(&entry.reference) else {
            continue;
        };
        let snapshot = Snapshot::read(store, entry.descriptor);
        snapshots.push((name, snapshot));
    }
    Ok(snapshots)
}

/// Removes the name `name`; blocks no other snapshot uses go at the next `gc`.
pub fn remove(store: &Store, name: &SessionName) -> Result<Descriptor> {
    match store.remove_tag(&name.reference()) {
        Ok(descriptor) => Ok(descriptor),
        Err(StoreError::TagNotFound { .. }) => {
            let name = name.to_string();
            Err(SessionError::NotFound { name })
        }
        Err(error) => Err(error.into()),
    }
}

/// A snapshot that `check_all` found damaged.
#[derive(Debug)]
pub struct SnapshotProblem {
    /// The session name.
    pub name: SessionName,
    /// The fault found.
    pub error: SessionError,
}

impl fmt::Display for SnapshotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session `{}`: {}", self.name, self.error)
    }
}

/// Checks every snapshot: its config and block list, each block's stored size, and that its
/// model is in the store. Block contents are hashed by the store's own `fsck`.
pub fn check_all(store: &Store) -> Result<Vec<SnapshotProblem>> {
    let mut problems = Vec::new();
    for (name, snapshot) in list(store)? {
        let checked = snapshot.and_then(|snapshot| check_stored(store, &snapshot));
        if let Err(error) = checked {
            problems.push(SnapshotProblem { name, error });
        }
    }
    Ok(problems)
}

/// Checks that every block is stored with its declared size and that the model is stored.
pub(crate) fn check_stored(store: &Store, snapshot: &Snapshot) -> Result<()> {
    for (index, block) in snapshot.blocks.iter().enumerate() {
        let digest = &block.descriptor.digest;
        let actual = store
            .blob_size(digest)
            .map_err(|source| SessionError::MissingBlock {
                index,
                digest: digest.clone(),
                source,
            })?;
        if actual != block.descriptor.size {
            return Err(SessionError::BlockSize {
                index,
                digest: digest.clone(),
                tokens: block.tokens,
                expected: block.descriptor.size,
                actual,
            });
        }
    }
    let model = &snapshot.config.model;
    if !store.has_blob(&model.manifest) {
        return Err(SessionError::ModelMissing {
            reference: model.reference.clone(),
            digest: model.manifest.clone(),
        });
    }
    Ok(())
}
