//! Helpers shared by the end-to-end tests: running the `strata` binary against a temporary
//! store, and the real SmolLM2 GGUF named by `STRATA_TEST_GGUF`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Returns a `strata --home HOME ARGS…` command with the environment pinned.
pub(crate) fn strata_command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("STRATA_HOME")
        .env("NO_COLOR", "1");
    command
}

/// Runs `strata --home HOME ARGS…` with no input and returns its output.
pub(crate) fn strata(home: &Path, args: &[&str]) -> Output {
    strata_command(home, args)
        .stdin(Stdio::null())
        .output()
        .expect("strata binary runs")
}

/// Runs `strata --home HOME ARGS…` with `input` piped to its stdin and returns its output.
pub(crate) fn strata_with_input(home: &Path, args: &[&str], input: &str) -> Output {
    let mut child = strata_command(home, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().expect("strata binary runs")
}

/// Runs `strata --home HOME ARGS…`, checks that it succeeded and returns its stdout.
pub(crate) fn strata_ok(home: &Path, args: &[&str]) -> String {
    let output = strata(home, args);
    assert!(
        output.status.success(),
        "`strata {}` failed: {}",
        args.join(" "),
        stderr(&output)
    );
    stdout(&output)
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Lists every path under `dir`, relative to it, with its size.
pub(crate) fn listing(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let size = entry
                .metadata()
                .map(|m| if m.is_dir() { 0 } else { m.len() })
                .unwrap_or(0);
            found.insert((path.strip_prefix(dir).unwrap().to_path_buf(), size));
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found
}

pub(crate) fn real_gguf() -> Option<PathBuf> {
    match std::env::var_os("STRATA_TEST_GGUF") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("skipped: set STRATA_TEST_GGUF to the SmolLM2 GGUF to run this test");
            None
        }
    }
}

/// Returns the unpacked all-MiniLM-L6-v2 folder `STRATA_TEST_MINILM` names.
pub(crate) fn real_minilm() -> Option<PathBuf> {
    match std::env::var_os("STRATA_TEST_MINILM") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("skipped: set STRATA_TEST_MINILM to the all-MiniLM-L6-v2 folder");
            None
        }
    }
}

/// Imports all-MiniLM-L6-v2 into `home` as the default text embedder, which the fast memory
/// and lesson routing load.
pub(crate) fn import_minilm(home: &Path, minilm: &Path) {
    let args = [
        "import",
        minilm.to_str().unwrap(),
        "--name",
        "embedder/minilm",
    ];
    strata_ok(home, &args);
}

/// Imports the real model into `home` as `name`.
pub(crate) fn import(home: &Path, gguf: &Path, name: &str) {
    strata_ok(home, &["import", gguf.to_str().unwrap(), "--name", name]);
}

/// Creates a store with the real model imported as `smollm2:latest`.
pub(crate) fn home_with_model(gguf: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    import(home.path(), gguf, "smollm2");
    home
}
