//! Video files, read through the `ffmpeg` command: frames sampled at a fixed interval as RGB
//! images, and the sound track as mono samples.
//!
//! strata does not link a video decoder. `ffmpeg` (Debian package `ffmpeg`) reads every common
//! container and codec, and it writes the two things the embedders need to its standard output:
//! frames as a stream of binary PPM images, and sound as raw 32-bit float samples. A video
//! collection embeds the frames with the image embedder and the sound with the audio embedder,
//! each point carrying its time offset.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The program that decodes videos.
const FFMPEG: &str = "ffmpeg";

/// Errors reading a video file.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` is not installed.
    #[error(
        "{path}: reading a video needs the `ffmpeg` command, which was not found; install it (Debian: `apt-get install ffmpeg`)"
    )]
    MissingFfmpeg {
        /// The video.
        path: PathBuf,
    },

    /// `ffmpeg` could not read the file.
    #[error("{path}: ffmpeg could not read it as a video: {message}")]
    Decode {
        /// The video.
        path: PathBuf,
        /// ffmpeg's error output, trimmed.
        message: String,
    },

    /// The file decoded to no frame at all.
    #[error("{path}: the file has no video frames")]
    NoFrames {
        /// The video.
        path: PathBuf,
    },

    /// The frame interval is not a positive number of seconds.
    #[error(
        "frame interval {seconds} s is not a positive number of seconds; sample at least every second"
    )]
    Interval {
        /// The interval given.
        seconds: u64,
    },
}

/// One frame of a video, as 8-bit RGB pixels row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Seconds from the start of the video.
    pub offset_seconds: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// Samples one frame every `every_seconds` seconds of `path`, the first at 0 s.
///
/// Frames are scaled so that their shorter side is at most 256 pixels, which is all an image
/// embedder looks at, and keeps a long video's frames small in memory.
pub fn sample_frames(path: &Path, every_seconds: u64) -> Result<Vec<Frame>, VideoError> {
    if every_seconds == 0 {
        return Err(VideoError::Interval { seconds: 0 });
    }
    let filter = format!(
        "fps=1/{every_seconds},scale='if(gt(iw,ih),-2,min(256,iw))':'if(gt(iw,ih),min(256,ih),-2)'"
    );
    let args = [
        "-vf",
        filter.as_str(),
        "-f",
        "image2pipe",
        "-c:v",
        "ppm",
        "-",
    ];
    let output = run_ffmpeg(path, &args)?;

    let mut reader = BufReader::new(output.as_slice());
    let mut frames = Vec::new();
    while let Some((width, height, rgb)) =
        read_ppm(&mut reader).map_err(|message| decode(path, message))?
    {
        let offset_seconds = frames.len() as u64 * every_seconds;
        frames.push(Frame {
            offset_seconds,
            width,
            height,
            rgb,
        });
    }
    if frames.is_empty() {
        return Err(VideoError::NoFrames {
            path: path.to_path_buf(),
        });
    }
    Ok(frames)
}

/// Returns the sound track of `path` as mono samples at `sample_rate` Hz, or `None` when the
/// file has no sound.
pub fn sound_track(path: &Path, sample_rate: u32) -> Result<Option<Vec<f32>>, VideoError> {
    if !has_audio(path)? {
        return Ok(None);
    }
    let rate = sample_rate.to_string();
    let args = ["-vn", "-ac", "1", "-ar", rate.as_str(), "-f", "f32le", "-"];
    let output = run_ffmpeg(path, &args)?;
    let samples = output
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .collect();
    Ok(Some(samples))
}

/// Reports whether ffmpeg finds an audio stream in `path`.
fn has_audio(path: &Path) -> Result<bool, VideoError> {
    let args = ["-map", "0:a:0", "-t", "0", "-f", "null", "-"];
    match run_ffmpeg(path, &args) {
        Ok(_) => Ok(true),
        Err(VideoError::Decode { message, .. }) if names_missing_stream(&message) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Reports whether an ffmpeg message reports that a stream the command mapped does not exist.
fn names_missing_stream(message: &str) -> bool {
    message.contains("matches no streams") || message.contains("does not contain any stream")
}

/// Runs `ffmpeg -i PATH ARGS…` and returns its standard output.
fn run_ffmpeg(path: &Path, args: &[&str]) -> Result<Vec<u8>, VideoError> {
    let child = Command::new(FFMPEG)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(VideoError::MissingFfmpeg {
                path: path.to_path_buf(),
            });
        }
        Err(error) => return Err(decode(path, error.to_string())),
    };

    let output = child
        .wait_with_output()
        .map_err(|error| decode(path, error.to_string()))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(decode(path, message));
    }
    Ok(output.stdout)
}

fn decode(path: &Path, message: String) -> VideoError {
    VideoError::Decode {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads one binary PPM image (`P6`, maximum value 255) from `reader`; `None` at the end of
/// the stream.
fn read_ppm(reader: &mut impl BufRead) -> Result<Option<(u32, u32, Vec<u8>)>, String> {
    if reader.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let magic = header_token(reader)?;
    if magic != "P6" {
        return Err(format!("expected a P6 frame from ffmpeg, got `{magic}`"));
    }
    let width = header_number(reader)?;
    let height = header_number(reader)?;
    let max = header_number(reader)?;
    if max != 255 {
        return Err(format!(
            "expected 8-bit frames from ffmpeg, got maximum value {max}"
        ));
    }

    let mut rgb = vec![0; width as usize * height as usize * 3];
    reader
        .read_exact(&mut rgb)
        .map_err(|e| format!("frame of {width}x{height} cut short: {e}"))?;
    Ok(Some((width, height, rgb)))
}

/// Reads one whitespace-separated header token and the single whitespace byte after it.
fn header_token(reader: &mut impl BufRead) -> Result<String, String> {
    let mut token = String::new();
    let mut byte = [0u8; 1];
    loop {
        reader
            .read_exact(&mut byte)
            .map_err(|e| format!("frame header cut short: {e}"))?;
        let c = byte[0] as char;
        if c.is_ascii_whitespace() {
            if token.is_empty() {
                continue;
            }
            return Ok(token);
        }
        token.push(c);
    }
}

fn header_number(reader: &mut impl BufRead) -> Result<u32, String> {
    let token = header_token(reader)?;
    token
        .parse()
        .map_err(|_| format!("frame header value `{token}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_stream_splits_into_frames() {
        let mut stream = b"P6\n2 1\n255\n".to_vec();
        stream.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        stream.extend_from_slice(b"P6 1 1 255\n");
        stream.extend_from_slice(&[7, 8, 9]);
        let mut reader = BufReader::new(stream.as_slice());

        assert_eq!(
            read_ppm(&mut reader).unwrap(),
            Some((2, 1, vec![1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(read_ppm(&mut reader).unwrap(), Some((1, 1, vec![7, 8, 9])));
        assert_eq!(read_ppm(&mut reader).unwrap(), None);
    }

    #[test]
    fn cut_frame_is_an_error() {
        let stream = b"P6\n2 2\n255\n\x01\x02".to_vec();
        let error = read_ppm(&mut BufReader::new(stream.as_slice())).unwrap_err();
        assert!(error.contains("2x2 cut short"), "{error}");
    }

    #[test]
    fn zero_interval_is_refused() {
        let error = sample_frames(Path::new("clip.mp4"), 0).unwrap_err();
        assert!(matches!(error, VideoError::Interval { .. }));
    }
}
