//! Points of media files for a collection: an image gives one point, an audio clip one point per
//! segment, and a video one point per sampled frame and per segment of its sound track.
//!
//! Every point's payload has `file`, `kind` (`image`, `frame` or `sound`) and, for the parts of
//! a clip or a video, `offset_seconds`, so a search can be filtered to one kind or one stretch of
//! time (`--filter 'kind = "frame" and offset_seconds < 60'`).

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};
use strata_collections::Point;
use strata_embed::video;
use strata_embed::{AudioEmbedder, Embedded, Embedder, ImageEmbedder, Input};

/// Seconds between the frames sampled from a video.
pub(crate) const FRAME_EVERY_SECONDS: u64 = 2;

/// Rate at which a video's sound track is decoded for the audio embedder.
const SOUND_RATE: u32 = 16_000;

/// File extensions read as videos; any other file is read as an image or an audio clip.
const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mkv", "webm", "mov", "avi", "mpg", "mpeg", "ogv", "flv", "wmv", "ts",
];

/// Reports whether `path` names a video by its extension.
pub(crate) fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| {
            VIDEO_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
        })
}

/// Embeds an image as one point, or a video as one point per sampled frame.
pub(crate) fn image_points(embedder: &ImageEmbedder, file: &Path) -> anyhow::Result<Vec<Point>> {
    if is_video(file) {
        return frame_points(embedder, file);
    }
    let vector = single(embedder.embed(&Input::Image(file.to_path_buf()))?, file)?;
    let payload = payload(file, "image", None);
    Ok(vec![
        Point::new(file.display().to_string(), vector).with_payload(payload),
    ])
}

/// Embeds the frames of a video sampled every [`FRAME_EVERY_SECONDS`].
pub(crate) fn frame_points(embedder: &ImageEmbedder, file: &Path) -> anyhow::Result<Vec<Point>> {
    let frames = video::sample_frames(file, FRAME_EVERY_SECONDS)?;
    let mut points = Vec::with_capacity(frames.len());
    for frame in frames {
        let vector = embedder
            .embed_rgb8(frame.width, frame.height, &frame.rgb)
            .with_context(|| format!("frame at {} s", frame.offset_seconds))?;
        let offset = frame.offset_seconds as f64;
        points.push(part_point(file, "frame", offset, vector));
    }
    Ok(points)
}

/// Embeds an audio clip, or a video's sound track, as one point per segment.
pub(crate) fn audio_points(embedder: &AudioEmbedder, file: &Path) -> anyhow::Result<Vec<Point>> {
    let embedded = if is_video(file) {
        match video::sound_track(file, SOUND_RATE)? {
            Some(samples) => embedder.embed_samples(&samples, SOUND_RATE)?,
            None => return Ok(Vec::new()),
        }
    } else {
        embedder.embed(&Input::Audio(file.to_path_buf()))?
    };
    Ok(embedded
        .into_iter()
        .map(|part| {
            let offset = part.offset_seconds.unwrap_or(0.0);
            part_point(file, "sound", offset, part.vector)
        })
        .collect())
}

/// Embeds an image or an audio clip given as a search query into one vector.
pub(crate) fn query_vector(embedder: &dyn Embedder, input: Input) -> anyhow::Result<Vec<f32>> {
    let path = input.describe();
    let embedded = embedder.embed(&input)?;
    single(embedded, Path::new(&path))
}

/// Returns the one vector of an input that should give one, or the mean of a clip's segments
/// scaled to unit length.
fn single(embedded: Vec<Embedded>, file: &Path) -> anyhow::Result<Vec<f32>> {
    let Some(first) = embedded.first() else {
        anyhow::bail!("{}: the embedder found nothing to embed", file.display());
    };
    let mut mean = vec![0f32; first.vector.len()];
    for part in &embedded {
        for (sum, value) in mean.iter_mut().zip(&part.vector) {
            *sum += value;
        }
    }
    let norm = mean.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|value| *value /= norm);
    }
    Ok(mean)
}

/// Builds the point of the part of `file` at `offset` seconds, with the id `FILE@OFFSETs`.
fn part_point(file: &Path, kind: &str, offset: f64, vector: Vec<f32>) -> Point {
    let id = format!("{}@{offset}s", file.display());
    Point::new(id, vector).with_payload(payload(file, kind, Some(offset)))
}

fn payload(file: &Path, kind: &str, offset: Option<f64>) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("file".into(), Value::from(file.display().to_string()));
    payload.insert("kind".into(), Value::from(kind));
    if let Some(offset) = offset {
        payload.insert("offset_seconds".into(), Value::from(offset));
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_are_told_by_extension() {
        assert!(is_video(Path::new("clips/holiday.MP4")));
        assert!(is_video(Path::new("a.webm")));
        assert!(!is_video(Path::new("photo.png")));
        assert!(!is_video(Path::new("speech.wav")));
        assert!(!is_video(Path::new("no-extension")));
    }

    #[test]
    fn single_averages_to_unit_length() {
        let one = vec![Embedded::whole(vec![0.6, 0.8])];
        assert_eq!(single(one, Path::new("x")).unwrap(), [0.6, 0.8]);

        let parts = vec![
            Embedded::whole(vec![1.0, 0.0]),
            Embedded::whole(vec![0.0, 1.0]),
        ];
        let mean = single(parts, Path::new("x")).unwrap();
        assert!((mean[0] - mean[1]).abs() < 1e-6);
        assert!((mean[0].hypot(mean[1]) - 1.0).abs() < 1e-6);

        let error = single(Vec::new(), Path::new("clip.wav")).unwrap_err();
        assert!(error.to_string().contains("clip.wav"));
    }
}
