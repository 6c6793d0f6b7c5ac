//! End-to-end tests of the `strata` binary: import, show, run, fsck, gc and bad input.
//!
//! Tests that need the real SmolLM2 GGUF read its path from `STRATA_TEST_GGUF` and skip with a
//! notice when it is unset; `scripts/test.sh` sets it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{listing, real_gguf, stderr, stdout, strata};

/// A store with the real model imported as `smollm2:latest`.
fn home_with_model(gguf: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let output = strata(
        home.path(),
        &["import", gguf.to_str().unwrap(), "--name", "smollm2"],
    );
    assert!(
        output.status.success(),
        "import failed: {}",
        stderr(&output)
    );
    home
}

#[test]
fn magic_only_gguf_is_rejected_without_changing_the_store() {
    let home = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let file = inputs.path().join("magic.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    assert!(strata(home.path(), &["list"]).status.success());
    let before = listing(home.path());

    let output = strata(
        home.path(),
        &["import", file.to_str().unwrap(), "--name", "bad"],
    );

    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.starts_with("strata: error: "), "{message}");
    assert!(message.contains("magic.gguf"), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert_eq!(listing(home.path()), before);
}

#[test]
fn invalid_name_is_rejected_before_touching_disk() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("store");
    let file = home.path().join("x.gguf");
    std::fs::write(&file, b"GGUF").unwrap();

    for name in ["UPPER", "../escape", "a:b:c", "x@sha256:ABC"] {
        let output = strata(&store, &["import", file.to_str().unwrap(), "--name", name]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            stderr(&output).contains(name),
            "{name}: {}",
            stderr(&output)
        );
    }
    assert!(!store.exists(), "the store was created for a rejected name");
}

#[test]
fn unknown_model_names_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let output = strata(home.path(), &["run", "nosuchmodel", "hi"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("nosuchmodel"), "{message}");
    assert!(message.contains("strata list"), "{message}");
}

#[test]
fn invalid_sampling_flags_are_rejected() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("--temperature=-1", "--temperature"),
        ("--temperature=nan", "--temperature"),
        ("--top-p=2", "--top-p"),
        ("--repeat-penalty=0", "--repeat-penalty"),
        ("--max-tokens=0", "--max-tokens"),
    ];
    for (flag, name) in cases {
        let output = strata(home.path(), &["run", "smollm2", flag, "hi"]);
        assert_eq!(output.status.code(), Some(1), "{flag}");
        assert!(
            stderr(&output).contains(name),
            "{flag}: {}",
            stderr(&output)
        );
    }
    assert!(
        !home.path().join("cache").exists(),
        "a rejected flag started a download"
    );
}

#[test]
fn empty_store_lists_only_the_header() {
    let home = tempfile::tempdir().unwrap();
    let output = strata(home.path(), &["list"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output).lines().count(), 1);
    assert!(home.path().join("oci-layout").is_file());
    assert!(home.path().join("index.json").is_file());
}

#[test]
fn real_model_answers_paris() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);

    let output = strata(
        home.path(),
        &["run", "smollm2", "What is the capital of France?"],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Paris"),
        "answer: {}",
        stdout(&output)
    );
}

#[test]
fn show_lists_every_tensor_with_its_digest() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);

    let output = strata(home.path(), &["show", "smollm2", "--tensors"]);

    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let tensor_lines: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("TENSOR"))
        .filter(|line| line.contains(" sha256:"))
        .collect();
    assert_eq!(tensor_lines.len(), 272, "{text}");
    assert!(text.contains("blk.0.attn_q.weight"), "{text}");
    assert!(text.contains("q4_1"), "{text}");
}

#[test]
fn fsck_passes_and_gc_keeps_a_fresh_import() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);

    let gc = strata(home.path(), &["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(stderr(&gc).contains("removed 0 blobs"), "{}", stderr(&gc));

    let fsck = strata(home.path(), &["fsck"]);
    assert!(fsck.status.success(), "{}", stderr(&fsck));
}

#[test]
fn removed_model_is_collected_by_gc() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);

    assert!(strata(home.path(), &["rm", "smollm2"]).status.success());
    let gc = strata(home.path(), &["gc"]);

    assert!(gc.status.success(), "{}", stderr(&gc));
    let blobs = std::fs::read_dir(home.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

#[test]
fn reimport_stores_identical_tensors_once() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let blobs_before = std::fs::read_dir(home.path().join("blobs/sha256"))
        .unwrap()
        .count();

    let output = strata(
        home.path(),
        &["import", gguf.to_str().unwrap(), "--name", "copy:v2"],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let blobs_after = std::fs::read_dir(home.path().join("blobs/sha256"))
        .unwrap()
        .count();
    // The second import adds only a manifest and a config with a new creation time.
    assert!(
        blobs_after <= blobs_before + 2,
        "{blobs_before} -> {blobs_after}"
    );
}

#[test]
fn skopeo_reads_the_store_as_an_oci_layout() {
    let Some(gguf) = real_gguf() else { return };
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let home = home_with_model(&gguf);
    let target = format!("oci:{}:smollm2:latest", home.path().display());

    let output = Command::new("skopeo")
        .args(["inspect", "--raw", &target])
        .output()
        .unwrap();

    assert!(output.status.success(), "{}", stderr(&output));
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    assert!(manifest["layers"].as_array().unwrap().len() >= 272);

    // skopeo copies the model into a layout of its own, which strata then verifies.
    let copy = tempfile::tempdir().unwrap();
    let destination = format!("oci:{}:smollm2:copy", copy.path().display());
    let output = Command::new("skopeo")
        .args(["copy", "-q", &target, &destination])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let fsck = strata(copy.path(), &["fsck"]);
    assert!(fsck.status.success(), "{}", stderr(&fsck));
}
