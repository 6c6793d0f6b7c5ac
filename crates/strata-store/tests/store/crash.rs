//! Crash safety: a writer process killed with SIGKILL at random moments must leave a store that
//! `fsck` finds healthy, with `a:latest` on a completely written manifest.
//!
//! The writer is this test binary run again with only [`crash_writer_child`] selected and
//! `STRATA_CRASH_WRITER_ROOT` set. It prints `tagged <digest>` after each `set_tag` returns.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use strata_store::{Descriptor, Digest, Manifest, Reference, Store};

use crate::common::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE};

const ROOT_VARIABLE: &str = "STRATA_CRASH_WRITER_ROOT";
const TAGGED_PREFIX: &str = "tagged ";
const KILLS: usize = 8;

/// The writer loop of the crash test; returns at once when run as an ordinary test.
#[test]
fn crash_writer_child() {
    let Some(root) = std::env::var_os(ROOT_VARIABLE) else {
        return;
    };
    let store = Store::open(root).unwrap();
    let tag = Reference::parse("a:latest").unwrap();
    let mut stdout = std::io::stdout();
    for round in 0u64.. {
        let _guard = store.writer().unwrap();
        let manifest = write_random_model(&store, round);
        store.set_tag(&tag, &manifest).unwrap();
        writeln!(stdout, "{TAGGED_PREFIX}{}", manifest.digest).unwrap();
        stdout.flush().unwrap();
    }
}

/// Writes a model of one to three random layers of up to 256 KiB and a config naming a blob.
fn write_random_model(store: &Store, round: u64) -> Descriptor {
    let mut rng = rand::rng();
    let mut layers = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let mut bytes = vec![0u8; rng.random_range(0..256 * 1024)];
        rng.fill(&mut bytes[..]);
        let (digest, size) = store.put_blob_from_reader(&mut &bytes[..], None).unwrap();
        layers.push(Descriptor::new(LAYER_MEDIA_TYPE, digest, size));
    }
    let extra = store
        .put_blob(format!("extra blob of round {round}").as_bytes())
        .unwrap();
    let config = json!({ "round": round, "extra": { "digest": extra } });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = store.put_blob(&config_bytes).unwrap();
    let config = Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, config_bytes.len() as u64);
    store.put_manifest(&Manifest::new(config, layers)).unwrap()
}

fn spawn_writer(root: &Path) -> Child {
    let test_binary = std::env::current_exe().unwrap();
    Command::new(test_binary)
        .args([
            "--exact",
            "crash::crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOT_VARIABLE, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs the writer until it has tagged once, kills it after a random delay and returns the
/// manifest digests it reported as tagged, oldest first.
fn run_and_kill(root: &Path) -> Vec<Digest> {
    let mut child = spawn_writer(root);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut tagged = Vec::new();
    for line in lines.by_ref() {
        if let Some(digest) = line.unwrap().strip_prefix(TAGGED_PREFIX) {
            tagged.push(Digest::parse(digest).unwrap());
            break;
        }
    }
    assert!(!tagged.is_empty(), "the writer exited before its first tag");
    thread::sleep(Duration::from_millis(rand::rng().random_range(0..300)));
    child.kill().unwrap();
    child.wait().unwrap();
    let rest = lines.map_while(Result::ok);
    tagged.extend(rest.filter_map(|line| Digest::parse(line.strip_prefix(TAGGED_PREFIX)?).ok()));
    tagged
}

#[test]
fn killed_writer_leaves_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let tag = Reference::parse("a:latest").unwrap();
    let mut reported: HashSet<Digest> = HashSet::new();

    for kill in 0..KILLS {
        let tagged = run_and_kill(&root);
        reported.extend(tagged.iter().cloned());
        let last = tagged.last().unwrap();

        let store = Store::open(&root).unwrap();
        let report = store.fsck().unwrap();
        assert!(
            report.problems.is_empty(),
            "kill {kill}: {:?}",
            report.problems
        );
        let current = store.resolve(&tag).unwrap().digest;
        store.read_manifest(&current).unwrap();
        // A tag the writer reported must not be lost: the tag is the last one reported, or a
        // newer one whose `set_tag` finished after the last report.
        let older = reported.contains(&current) && current != *last;
        assert!(!older, "kill {kill}: a:latest went back to {current}");
    }

    let store = Store::open(&root).unwrap();
    store.gc().unwrap();
    let report = store.fsck().unwrap();
    assert!(
        report.problems.is_empty(),
        "after gc: {:?}",
        report.problems
    );
    assert!(report.notes.is_empty(), "after gc: {:?}", report.notes);
    assert_eq!(store.list_tags().unwrap().len(), 1);
}
