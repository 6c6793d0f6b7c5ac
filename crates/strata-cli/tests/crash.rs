//! Crash test: `kill -9` an import at several moments, then check the store.
//!
//! Each round imports the real model under a new tag and kills the process after a different
//! delay. Afterwards `strata fsck` must pass and the tag imported before the crashes must still
//! resolve and load.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn strata(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .arg("--home")
        .arg(home)
        .env("NO_COLOR", "1")
        .env_remove("STRATA_HOME");
    command
}

#[test]
fn import_killed_midway_leaves_a_valid_store() {
    let Some(gguf) = std::env::var_os("STRATA_TEST_GGUF").map(PathBuf::from) else {
        eprintln!("skipped: set STRATA_TEST_GGUF to the SmolLM2 GGUF to run this test");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let base = strata(home.path())
        .args(["import", gguf.to_str().unwrap(), "--name", "base"])
        .output()
        .unwrap();
    assert!(
        base.status.success(),
        "{}",
        String::from_utf8_lossy(&base.stderr)
    );

    for (round, delay_ms) in [5u64, 40, 120, 250, 400, 700].into_iter().enumerate() {
        let tag = format!("crash:r{round}");
        let mut child = strata(home.path())
            .args(["import", gguf.to_str().unwrap(), "--name", &tag])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();

        let fsck = strata(home.path()).arg("fsck").output().unwrap();
        assert!(
            fsck.status.success(),
            "round {round} ({delay_ms} ms): {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        let show = strata(home.path()).args(["show", "base"]).output().unwrap();
        assert!(show.status.success(), "round {round}: base tag lost");
    }

    let gc = strata(home.path()).arg("gc").output().unwrap();
    assert!(gc.status.success());
    let fsck = strata(home.path()).arg("fsck").output().unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}
