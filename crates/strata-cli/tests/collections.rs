//! Embedding collections from the command line, with the real all-MiniLM-L6-v2 text embedder
//! (`STRATA_TEST_MINILM`, the unpacked package folder) and the chat's fast memory with the real
//! SmolLM2 (`STRATA_TEST_GGUF`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{
    home_with_model, import_minilm, real_gguf, real_minilm, stderr, strata, strata_command,
    strata_ok,
};

/// Runs a search and returns the ids of its hits, nearest first.
fn hits(home: &Path, args: &[&str]) -> Vec<String> {
    let mut command = vec!["collection", "search"];
    command.extend_from_slice(args);
    strata_ok(home, &command)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn text_files_are_found_by_meaning_and_filtered_by_payload() {
    let Some(minilm) = real_minilm() else { return };
    let home = tempfile::tempdir().unwrap();
    import_minilm(home.path(), &minilm);
    let folder = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let bees = write(
        "bees.txt",
        "Honey bees collect nectar from flowers.\n\nIn the hive they turn it into honey.",
    );
    let trains = write(
        "trains.txt",
        "The night train leaves the station at ten and reaches the coast by morning.",
    );
    let bread = write(
        "bread.txt",
        "Knead the dough, let it rise for an hour, then bake the loaf until golden.",
    );

    strata_ok(
        home.path(),
        &["collection", "create", "notes", "--embedder", "text"],
    );
    strata_ok(
        home.path(),
        &[
            "collection",
            "add",
            "notes",
            &bees,
            &bread,
            "--payload",
            "shelf=kitchen",
        ],
    );
    strata_ok(
        home.path(),
        &[
            "collection",
            "add",
            "notes",
            &trains,
            "--payload",
            "shelf=travel",
        ],
    );

    let found = hits(home.path(), &["notes", "how do insects make honey"]);
    assert!(found[0].starts_with(&bees), "{found:?}");
    let found = hits(home.path(), &["notes", "a journey by rail", "--top", "1"]);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with(&trains), "{found:?}");

    let filtered = hits(
        home.path(),
        &[
            "notes",
            "a journey by rail",
            "--filter",
            "shelf = \"kitchen\"",
        ],
    );
    assert!(!filtered.is_empty());
    assert!(
        filtered.iter().all(|id| !id.starts_with(&trains)),
        "the filter let {filtered:?} through"
    );

    let listing = strata_ok(home.path(), &["collection", "list"]);
    assert!(listing.contains("notes"), "{listing}");
    assert!(listing.contains("text"), "{listing}");
}

#[test]
fn bad_collection_input_is_refused_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    strata_ok(
        home.path(),
        &[
            "collection",
            "create",
            "points",
            "--embedder",
            "none",
            "--dim",
            "2",
        ],
    );
    let before = common::listing(home.path());

    for name in ["a/b", "..", "Upper"] {
        let output = strata(
            home.path(),
            &[
                "collection",
                "create",
                name,
                "--embedder",
                "none",
                "--dim",
                "2",
            ],
        );
        assert!(!output.status.success(), "`{name}` was accepted");
        assert!(stderr(&output).contains(name), "{}", stderr(&output));
    }

    let bad = home.path().join("bad.jsonl");
    for (line, expected) in [
        (r#"{"id": "a", "vector": [1, 2, 3]}"#, "3 values"),
        (r#"{"id": "a", "vector": [1, NaN]}"#, "line 1"),
        (r#"{"vector": [1, 2]}"#, "line 1"),
    ] {
        std::fs::write(&bad, line).unwrap();
        let output = strata(
            home.path(),
            &["collection", "add", "points", bad.to_str().unwrap()],
        );
        assert!(!output.status.success(), "{line} was accepted");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
    std::fs::remove_file(&bad).unwrap();

    let missing_field = strata(
        home.path(),
        &[
            "collection",
            "search",
            "points",
            "--vector",
            "[1, 0]",
            "--filter",
            "kind = 1",
        ],
    );
    assert!(!missing_field.status.success());
    assert!(
        stderr(&missing_field).contains("kind"),
        "{}",
        stderr(&missing_field)
    );
    assert_eq!(
        common::listing(home.path()),
        before,
        "a refused input wrote something"
    );
}

#[test]
fn a_taught_fact_is_answered_in_the_next_turn_from_memory() {
    let (Some(gguf), Some(minilm)) = (real_gguf(), real_minilm()) else {
        return;
    };
    let home = home_with_model(&gguf);
    import_minilm(home.path(), &minilm);

    let mut child = strata_command(home.path(), &["run", "smollm2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"/teach What is the capital of Sevzaria? => Durvelton\n\
              Which city is the capital of Sevzaria?\n",
        )
        .unwrap();

    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let answer = receiver.recv_timeout(Duration::from_secs(120));
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.expect("the chat answered within two minutes");
    assert!(answer.contains("Durvelton"), "answered: {answer}");

    let memory = strata_ok(home.path(), &["collection", "show", "memory.smollm2"]);
    assert!(memory.contains("points    1"), "{memory}");
}
