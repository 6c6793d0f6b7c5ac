//! Reading videos through `ffmpeg`: a clip the test makes with ffmpeg's own test sources, read
//! back as sampled frames and a sound track. Skips when `ffmpeg` is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_embed::video::{self, VideoError};

fn have_ffmpeg() -> bool {
    Command::new("ffmpeg").arg("-version").output().is_ok()
}

/// Makes a 5-second 320x240 clip at `path`, with a 440 Hz tone when `sound` is set.
fn make_clip(path: &Path, sound: bool) {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"]);
    command.arg("testsrc=duration=5:size=320x240:rate=10");
    if sound {
        command.args(["-f", "lavfi", "-i", "sine=frequency=440:duration=5"]);
    }
    command.args(["-c:v", "mpeg4", "-shortest"]).arg(path);
    let status = command.status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made no clip");
}

fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn frames_are_sampled_every_interval_and_scaled_down() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let (_dir, clip) = scratch("clip.mp4");
    make_clip(&clip, true);

    let frames = video::sample_frames(&clip, 2).unwrap();
    let offsets: Vec<u64> = frames.iter().map(|frame| frame.offset_seconds).collect();
    assert_eq!(offsets, [0, 2, 4]);
    for frame in &frames {
        assert_eq!((frame.width, frame.height), (320, 240));
        assert_eq!(frame.rgb.len(), 320 * 240 * 3);
    }
    assert_ne!(
        frames[0].rgb, frames[1].rgb,
        "the test source moves between frames"
    );
}

#[test]
fn sound_track_is_mono_at_the_asked_rate() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let (_dir, clip) = scratch("clip.mp4");
    make_clip(&clip, true);

    let samples = video::sound_track(&clip, 16_000)
        .unwrap()
        .expect("a sound track");
    let seconds = samples.len() as f64 / 16_000.0;
    assert!((seconds - 5.0).abs() < 0.1, "{seconds} s of sound");
    let peak = samples.iter().fold(0f32, |peak, s| peak.max(s.abs()));
    assert!(peak > 0.05, "the tone is audible: peak {peak}");
}

#[test]
fn silent_clip_has_no_sound_track() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let (_dir, clip) = scratch("silent.mp4");
    make_clip(&clip, false);

    assert_eq!(video::sound_track(&clip, 16_000).unwrap(), None);
}

#[test]
fn non_video_error_names_file() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let (_dir, path) = scratch("notes.mp4");
    std::fs::write(&path, b"these are not frames").unwrap();

    let error = video::sample_frames(&path, 1).unwrap_err();
    assert!(matches!(error, VideoError::Decode { .. }), "{error:?}");
    assert!(error.to_string().contains("notes.mp4"), "{error}");
}
