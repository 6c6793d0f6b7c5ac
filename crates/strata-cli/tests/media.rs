//! Images, speech and a video in collections, from the command line, with the real
//! EfficientNet-Lite0 and GE2E embedders. The wheels named by `STRATA_TEST_EFFICIENTNET_WHEEL`
//! and `STRATA_TEST_RESEMBLYZER_WHEEL` are put in the store's wheel cache, so the embedders are
//! imported the way a first use imports them, without a download. Photos come from
//! `STRATA_TEST_IMAGES`; speech is made with `espeak-ng` and the video with `ffmpeg`. Skips
//! when any of them is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, strata, strata_ok};

/// The assets this test needs, or `None` (after saying what is missing) to skip.
struct Assets {
    photos: PathBuf,
    wheels: Vec<PathBuf>,
}

fn assets() -> Option<Assets> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let (Some(photos), Some(image_wheel), Some(audio_wheel)) = (
        var("STRATA_TEST_IMAGES"),
        var("STRATA_TEST_EFFICIENTNET_WHEEL"),
        var("STRATA_TEST_RESEMBLYZER_WHEEL"),
    ) else {
        eprintln!(
            "skipped: set STRATA_TEST_IMAGES, STRATA_TEST_EFFICIENTNET_WHEEL and STRATA_TEST_RESEMBLYZER_WHEEL"
        );
        return None;
    };
    for tool in ["ffmpeg", "espeak-ng"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("skipped: `{tool}` is not installed");
            return None;
        }
    }
    Some(Assets {
        photos,
        wheels: vec![image_wheel, audio_wheel],
    })
}

/// Creates a store whose wheel cache contains the embedders' wheels.
fn home(assets: &Assets) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    strata_ok(home.path(), &["collection", "list"]);
    let cache = home.path().join("cache/pypi-v1");
    std::fs::create_dir_all(&cache).unwrap();
    for wheel in &assets.wheels {
        std::fs::copy(wheel, cache.join(wheel.file_name().unwrap())).unwrap();
    }
    home
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn speak(dir: &Path, name: &str, voice: &str, text: &str) -> String {
    let path = dir.join(name);
    run(
        "espeak-ng",
        &["-v", voice, "-w", path.to_str().unwrap(), text],
    );
    path.to_str().unwrap().to_owned()
}

/// Runs a search and returns each hit's id and payload text, nearest first.
fn hits(home: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut command = vec!["collection", "search"];
    command.extend_from_slice(args);
    strata_ok(home, &command)
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, "  ");
            let _score = parts.next()?;
            Some((
                parts.next()?.to_owned(),
                parts.next().unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn media_found_by_image_and_audio() {
    let Some(assets) = assets() else { return };
    let home = home(&assets);
    let home = home.path();
    let scratch = tempfile::tempdir().unwrap();
    let photo = |name: &str| assets.photos.join(name).to_str().unwrap().to_owned();
    let (cat, coffee, astronaut, rocket) = (
        photo("chelsea.png"),
        photo("coffee.png"),
        photo("astronaut.png"),
        photo("rocket.jpg"),
    );

    // Photos: a crop of the cat finds the cat; a filter keeps to the other album.
    strata_ok(
        home,
        &["collection", "create", "pics", "--embedder", "image"],
    );
    strata_ok(
        home,
        &[
            "collection",
            "add",
            "pics",
            &cat,
            &coffee,
            "--payload",
            "album=pets",
        ],
    );
    strata_ok(
        home,
        &[
            "collection",
            "add",
            "pics",
            &astronaut,
            &rocket,
            "--payload",
            "album=space",
        ],
    );
    let crop = scratch.path().join("cat-crop.png");
    run(
        "ffmpeg",
        &[
            "-loglevel",
            "error",
            "-i",
            &cat,
            "-vf",
            "crop=300:250:60:20,scale=200:-1",
            path_str(&crop),
        ],
    );
    let found = hits(home, &["pics", "--image", path_str(&crop), "--top", "2"]);
    assert_eq!(found[0].0, cat, "{found:?}");
    let filtered = hits(
        home,
        &[
            "pics",
            "--image",
            path_str(&crop),
            "--filter",
            "album = \"space\"",
        ],
    );
    assert_eq!(filtered.len(), 2, "{filtered:?}");
    assert!(
        filtered
            .iter()
            .all(|(id, _)| *id == astronaut || *id == rocket)
    );

    // Speech: another sentence in the same voice finds that voice's clip.
    let dir = scratch.path();
    let first = speak(
        dir,
        "a1.wav",
        "en-us",
        "The morning train to the coast was full of people going to the sea.",
    );
    let second = speak(
        dir,
        "a2.wav",
        "en-us",
        "Please remember to water the plants on the balcony every evening.",
    );
    let other = speak(
        dir,
        "b1.wav",
        "en-us+f3",
        "The library closes early on Sundays during the summer months.",
    );
    strata_ok(
        home,
        &["collection", "create", "voices", "--embedder", "audio"],
    );
    strata_ok(home, &["collection", "add", "voices", &first, &other]);
    let found = hits(home, &["voices", "--audio", &second, "--top", "1"]);
    assert_eq!(found[0].0, format!("{first}@0s"), "{found:?}");

    // A video: 4 s of coffee then 4 s of the cat, with the first voice as its sound track.
    let clip = dir.join("holiday.mp4");
    let scale =
        "[0:v]scale=320:240,setsar=1[a];[1:v]scale=320:240,setsar=1[b];[a][b]concat=n=2:v=1:a=0[v]";
    run(
        "ffmpeg",
        &[
            "-loglevel",
            "error",
            "-loop",
            "1",
            "-t",
            "4",
            "-i",
            &coffee,
            "-loop",
            "1",
            "-t",
            "4",
            "-i",
            &cat,
            "-i",
            &first,
            "-filter_complex",
            scale,
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-af",
            "apad",
            "-t",
            "8",
            "-r",
            "10",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            path_str(&clip),
        ],
    );
    strata_ok(
        home,
        &["collection", "create", "clips", "--embedder", "video"],
    );
    let added = strata(
        home,
        &[
            "collection",
            "add",
            "clips",
            path_str(&clip),
            "--payload",
            "trip=2026",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("points of sound to `clips.sound`"),
        "{}",
        stderr(&added)
    );

    let clip_id = |offset: u32| format!("{}@{offset}s", path_str(&clip));
    let found = hits(home, &["clips", "--image", &coffee, "--top", "1"]);
    assert!([clip_id(0), clip_id(2)].contains(&found[0].0), "{found:?}");
    let found = hits(
        home,
        &[
            "clips",
            "--image",
            &cat,
            "--top",
            "1",
            "--filter",
            "offset_seconds >= 4 and trip = 2026",
        ],
    );
    assert!([clip_id(4), clip_id(6)].contains(&found[0].0), "{found:?}");
    assert!(found[0].1.contains("kind=frame"), "{found:?}");

    let found = hits(home, &["clips", "--audio", &second, "--top", "1"]);
    assert_eq!(found[0].0, clip_id(0), "{found:?}");
    assert!(found[0].1.contains("kind=sound"), "{found:?}");

    // A text query on a video collection, and a damaged image, are refused by name.
    let refused = strata(home, &["collection", "search", "clips", "a cat"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--image FILE"),
        "{}",
        stderr(&refused)
    );
    let broken = dir.join("broken.png");
    std::fs::write(&broken, &std::fs::read(&cat).unwrap()[..200]).unwrap();
    let refused = strata(home, &["collection", "add", "pics", path_str(&broken)]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("broken.png"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("nothing was added"),
        "{}",
        stderr(&refused)
    );

    strata_ok(home, &["collection", "rm", "clips"]);
    let listed = strata_ok(home, &["collection", "list"]);
    assert!(!listed.contains("clips"), "{listed}");
}
