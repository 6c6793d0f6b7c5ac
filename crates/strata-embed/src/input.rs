//! What an embedder takes and returns: [`Input`], its [`Modality`], and [`Embedded`] vectors.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Characters of a text kept when an error message quotes it.
const QUOTED_TEXT_CHARS: usize = 60;

/// The kind of data an embedder embeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Text, as UTF-8.
    Text,
    /// A still image file.
    Image,
    /// An audio file.
    Audio,
    /// A video file.
    Video,
}

impl Modality {
    /// Returns the lowercase name, as stored in embedder configs.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Image => "image",
            Modality::Audio => "audio",
            Modality::Video => "video",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing to embed: a text, or the path of a media file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A text.
    Text(String),
    /// The path of an image file.
    Image(PathBuf),
    /// The path of an audio file.
    Audio(PathBuf),
    /// The path of a video file.
    Video(PathBuf),
}

impl Input {
    /// Returns the modality of the input.
    pub fn modality(&self) -> Modality {
        match self {
            Input::Text(_) => Modality::Text,
            Input::Image(_) => Modality::Image,
            Input::Audio(_) => Modality::Audio,
            Input::Video(_) => Modality::Video,
        }
    }

    /// Describes the input for an error message: the path, or the start of the text.
    pub fn describe(&self) -> String {
        match self {
            Input::Text(text) if text.chars().count() > QUOTED_TEXT_CHARS => {
                let start: String = text.chars().take(QUOTED_TEXT_CHARS).collect();
                format!("{start}…")
            }
            Input::Text(text) => text.clone(),
            Input::Image(path) | Input::Audio(path) | Input::Video(path) => {
                path.display().to_string()
            }
        }
    }
}

impl From<&str> for Input {
    fn from(text: &str) -> Input {
        Input::Text(text.to_string())
    }
}

impl From<String> for Input {
    fn from(text: String) -> Input {
        Input::Text(text)
    }
}

/// One embedding vector of an input.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedded {
    /// The vector, of the embedder's dimension.
    pub vector: Vec<f32>,
    /// Seconds from the start of a video or audio input to the part this vector embeds; `None`
    /// for a text or an image, which give one vector each.
    pub offset_seconds: Option<f64>,
}

impl Embedded {
    /// Wraps the single vector of a text or an image.
    pub fn whole(vector: Vec<f32>) -> Embedded {
        Embedded {
            vector,
            offset_seconds: None,
        }
    }
}
