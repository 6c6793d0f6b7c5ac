//! Saving a chat as a snapshot: blocks first, then the config, the manifest and the tag.
//!
//! Every blob is written crash-safely by the store before the manifest that names it, and the
//! tag moves last, so a save that fails or is killed leaves the name pointing where it did.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::Utc;
use strata_runtime::SamplingParams;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::model::BlockDtype;
use strata_store::{Descriptor, Manifest, RefTarget, Reference, Store, StoreError};

use crate::DEFAULT_BLOCK_TOKENS;
use crate::config::{KvInfo, ModelBinding, SnapshotConfig};
use crate::error::{Result, SessionError};
use crate::media::{
    BLOCK_START_ANNOTATION, BLOCK_TOKENS_ANNOTATION, KV_BLOCK_MEDIA_TYPE, SNAPSHOT_ARTIFACT_TYPE,
    SNAPSHOT_CONFIG_MEDIA_TYPE,
};
use crate::name::SessionName;
use crate::plan::{Planned, plan_blocks};
use crate::snapshot::{BlockRef, Snapshot};

/// How to save a snapshot.
#[derive(Clone, Debug)]
pub struct SaveOptions<'a> {
    /// Element type of the cache on disk.
    pub dtype: BlockDtype,
    /// Positions per full block.
    pub block_tokens: usize,
    /// The snapshot this session continues: recorded as the parent, and its blocks are reused
    /// where the tokens agree and the model and dtype are the same.
    pub parent: Option<&'a Snapshot>,
    /// Which current state of the name the save may replace.
    pub replace: Replace,
}

/// Rule for replacing the snapshot a name points to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Replace {
    /// Replace whatever the name points to.
    #[default]
    Any,
    /// Replace only this manifest (`None`: only create a new name), so a save does not
    /// overwrite a state another process saved meanwhile; a moved name fails with
    /// [`SessionError::Moved`].
    IfCurrent(Option<strata_store::Digest>),
}

impl Default for SaveOptions<'_> {
    /// f16 blocks of [`DEFAULT_BLOCK_TOKENS`] positions, no parent.
    fn default() -> Self {
        SaveOptions {
            dtype: BlockDtype::F16,
            block_tokens: DEFAULT_BLOCK_TOKENS,
            parent: None,
            replace: Replace::Any,
        }
    }
}

/// Summary of what a save wrote.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The new snapshot.
    pub snapshot: Snapshot,
    /// Blocks encoded and stored by this save.
    pub blocks_written: usize,
    /// Blocks referenced from the parent.
    pub blocks_reused: usize,
    /// Bytes of the blocks this save encoded.
    pub bytes_written: u64,
    /// The snapshot the name pointed to before, if any.
    pub replaced: Option<Descriptor>,
}

/// Saves `chat`, running on `engine`, as the snapshot `name`, replacing what `name` pointed to.
pub fn save(
    store: &Store,
    name: &SessionName,
    engine: &Engine,
    chat: &Chat,
    sampling: &SamplingParams,
    options: &SaveOptions<'_>,
) -> Result<Saved> {
    if options.block_tokens == 0 {
        let what = "block size of 0 positions".to_string();
        return Err(SessionError::Invalid { what });
    }
    let _guard = store.writer()?;
    let tokens = chat
        .sequence()
        .map_or(&[][..], |sequence| sequence.tokens());
    let layout = engine.model().cache_layout();
    let kv = KvInfo::new(&layout, options.dtype, options.block_tokens);

    // A parent removed by `gc` since it was read is neither reused nor recorded. A parent with
    // a missing or truncated block is recorded, but its blocks are encoded again.
    let parent = options
        .parent
        .filter(|parent| store.has_blob(parent.digest()));
    let reusable = parent.filter(|parent| {
        parent.config.model.manifest == *engine.manifest_digest()
            && parent.config.kv == kv
            && parent
                .blocks
                .iter()
                .all(|block| stored_intact(store, block))
    });
    let parent_ranges: Vec<Range<usize>> = reusable.map_or_else(Vec::new, |parent| {
        let blocks = parent.blocks.iter();
        blocks.map(|b| b.start..b.start + b.tokens).collect()
    });
    let shared = reusable.map_or(0, |parent| common_prefix(&parent.config.tokens, tokens));
    let plan = plan_blocks(&parent_ranges, shared, tokens.len(), options.block_tokens);

    let mut saved = Saved {
        snapshot: Snapshot {
            descriptor: Descriptor::new(
                SNAPSHOT_ARTIFACT_TYPE,
                engine.manifest_digest().clone(),
                0,
            ),
            config: snapshot_config(engine, chat, sampling, tokens, kv.clone(), parent),
            blocks: Vec::with_capacity(plan.len()),
        },
        blocks_written: 0,
        blocks_reused: 0,
        bytes_written: 0,
        replaced: None,
    };
    for planned in plan {
        let block = match planned {
            Planned::Reuse(index) => {
                saved.blocks_reused += 1;
                reusable
                    .expect("only a reusable parent is planned from")
                    .blocks[index]
                    .clone()
            }
            Planned::Encode(range) => {
                let block = encode_block(store, chat, range, options.dtype)?;
                saved.blocks_written += 1;
                saved.bytes_written += block.descriptor.size;
                block
            }
        };
        saved.snapshot.blocks.push(block);
    }

    saved.snapshot.descriptor = write_manifest(store, engine, &saved.snapshot)?;
    let (reference, descriptor) = (name.reference(), &saved.snapshot.descriptor);
    saved.replaced = match &options.replace {
        Replace::Any => store.set_tag(&reference, descriptor)?,
        Replace::IfCurrent(expected) => store
            .set_tag_if(&reference, descriptor, expected.as_ref())
            .map_err(|source| match source {
                StoreError::TagMoved { .. } => SessionError::Moved {
                    name: name.to_string(),
                    source,
                },
                other => other.into(),
            })?,
    };
    tracing::info!(
        session = %name,
        digest = %saved.snapshot.descriptor.digest,
        tokens = tokens.len(),
        written = saved.blocks_written,
        reused = saved.blocks_reused,
        "saved session"
    );
    Ok(saved)
}

/// True when `block`'s blob is stored with its declared size, so a save may reference it.
fn stored_intact(store: &Store, block: &BlockRef) -> bool {
    let stored = store.blob_size(&block.descriptor.digest);
    stored.is_ok_and(|size| size == block.descriptor.size)
}

fn snapshot_config(
    engine: &Engine,
    chat: &Chat,
    sampling: &SamplingParams,
    tokens: &[u32],
    kv: KvInfo,
    parent: Option<&Snapshot>,
) -> SnapshotConfig {
    let strata = &engine.config().strata;
    SnapshotConfig {
        created: Utc::now(),
        model: ModelBinding {
            reference: model_reference(engine, parent),
            manifest: engine.manifest_digest().clone(),
            tokenizer: strata.tokenizer.digest.clone(),
            chat_template: strata.chat_template.as_ref().map(|t| t.digest.clone()),
        },
        parent: parent.map(|parent| parent.digest().clone()),
        system: chat.system().map(str::to_string),
        messages: chat.messages().to_vec(),
        tokens: tokens.to_vec(),
        cached_tokens: tokens.len(),
        sampling: sampling.clone(),
        kv,
    }
}

/// Returns the reference to record for the engine's model. An engine loaded by digest, as a
/// restored session's is, keeps the parent's `name:tag` when the parent ran the same manifest.
fn model_reference(engine: &Engine, parent: Option<&Snapshot>) -> String {
    let by_digest = matches!(engine.reference().target, RefTarget::Digest(_));
    let inherited = parent
        .map(|parent| &parent.config.model)
        .filter(|model| by_digest && model.manifest == *engine.manifest_digest());
    match inherited {
        Some(model) => model.reference.clone(),
        None => engine.reference().to_string(),
    }
}

/// Encodes positions `range` of the chat's cache and stores them as one block blob.
fn encode_block(
    store: &Store,
    chat: &Chat,
    range: Range<usize>,
    dtype: BlockDtype,
) -> Result<BlockRef> {
    let sequence = chat
        .sequence()
        .expect("a plan with blocks comes from a non-empty sequence");
    let bytes = sequence
        .cache()
        .encode_block(range.start, range.len(), dtype)?;
    let digest = store.put_blob(&bytes)?;
    let mut descriptor = Descriptor::new(KV_BLOCK_MEDIA_TYPE, digest, bytes.len() as u64);
    let annotations = BTreeMap::from([
        (BLOCK_START_ANNOTATION.to_string(), range.start.to_string()),
        (BLOCK_TOKENS_ANNOTATION.to_string(), range.len().to_string()),
    ]);
    descriptor.annotations = annotations;
    Ok(BlockRef {
        start: range.start,
        tokens: range.len(),
        descriptor,
    })
}

/// Stores the config and the manifest, with the model manifest as its subject.
fn write_manifest(store: &Store, engine: &Engine, snapshot: &Snapshot) -> Result<Descriptor> {
    let config = serde_json::to_vec(&snapshot.config).map_err(|source| SessionError::Json {
        digest: "(unsaved)".to_string(),
        source,
    })?;
    let config_digest = store.put_blob(&config)?;
    let config = Descriptor::new(
        SNAPSHOT_CONFIG_MEDIA_TYPE,
        config_digest,
        config.len() as u64,
    );

    let layers = snapshot
        .blocks
        .iter()
        .map(|b| b.descriptor.clone())
        .collect();
    let mut manifest = Manifest::new(config, layers);
    manifest.artifact_type = Some(SNAPSHOT_ARTIFACT_TYPE.to_string());
    let model = Reference {
        name: "model".to_string(),
        target: RefTarget::Digest(engine.manifest_digest().clone()),
    };
    manifest.subject = Some(store.resolve(&model)?);
    Ok(store.put_manifest(&manifest)?)
}

fn common_prefix(left: &[u32], right: &[u32]) -> usize {
    left.iter().zip(right).take_while(|(a, b)| a == b).count()
}
