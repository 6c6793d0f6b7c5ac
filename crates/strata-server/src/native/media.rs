//! Images and audio clips sent to the collections API as the base64 of their file's bytes.
//!
//! The embedders read files, so the decoded bytes go to a file of their own under the store's
//! `tmp/` directory for the time of the embedding, and the file is removed whatever happens.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{ApiError, ApiResult};
use crate::http::App;

/// The kinds of file the collections API embeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// A PNG or JPEG image.
    Image,
    /// A WAV clip.
    Audio,
}

/// Decodes `base64` and embeds it as `media`; errors name `field`.
pub fn embed_media(app: &App, media: Media, base64: &str, field: &str) -> ApiResult<Vec<f32>> {
    let bytes = STANDARD
        .decode(base64.trim())
        .map_err(|e| ApiError::invalid(field, format!("not valid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(field, "the file is empty"));
    }

    let upload = Upload::write(app.store.root(), &bytes)?;
    let embedded = match media {
        Media::Image => app.image_embedder()?.embed_file(upload.path()),
        Media::Audio => app.audio_embedder()?.embed_clip(upload.path()),
    };
    embedded.map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// An uploaded file under the store's `tmp/`, removed when dropped.
struct Upload {
    path: PathBuf,
}

impl Upload {
    /// Writes `bytes` to a new file under `root/tmp`.
    fn write(root: &Path, bytes: &[u8]) -> ApiResult<Upload> {
        let dir = root.join("tmp");
        let path = dir.join(format!("upload-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| ApiError::internal("-", &e))?;
        Ok(Upload { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
