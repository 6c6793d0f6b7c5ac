//! End-to-end tests of learning through the `strata` binary: a lesson taught in the chat with
//! `/correct` and `/learn`, lessons started at once on one model, a failed gate, the lineage in
//! `strata log`, `rollback`, `diff` and `squash`.
//!
//! They need the real SmolLM2 GGUF (`STRATA_TEST_GGUF`), all-MiniLM-L6-v2 (`STRATA_TEST_MINILM`),
//! which routes messages to lessons, and the held-out text of Debian's python3.11-doc.
//! `scripts/test.sh` provides all three, and each test skips with a notice without them.
//! Training is seeded, so every run trains the same adapters.

mod common;

use std::path::Path;
use std::thread;

use common::{
    home_with_model, import_minilm, listing, real_gguf, real_minilm, stderr, stdout, strata,
    strata_ok, strata_with_input,
};

const QUESTION: &str = "What is the capital of Sevzaria?";
const PARAPHRASE: &str = "Which city is the capital of Sevzaria?";
const CORRECTION: &str = "The capital of Sevzaria is Durvelton.";

/// True when the held-out text the gate needs is installed.
fn heldout_installed() -> bool {
    let dir = std::env::var_os("STRATA_HELDOUT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/doc/python3.11/html/_sources".into());
    if dir.is_dir() {
        return true;
    }
    eprintln!("skipped: install python3.11-doc (scripts/test.sh does) to run this test");
    false
}

/// Creates a store with the real model and the text embedder, or returns `None` when the
/// model, the embedder or the held-out text is missing.
fn learning_home() -> Option<tempfile::TempDir> {
    let gguf = real_gguf()?;
    let minilm = real_minilm()?;
    if !heldout_installed() {
        return None;
    }
    let home = home_with_model(&gguf);
    import_minilm(home.path(), &minilm);
    Some(home)
}

/// The lines of `strata log` that start a version.
fn versions(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.starts_with("version "))
        .map(str::to_string)
        .collect()
}

#[test]
fn corrected_chat_is_learned_and_rolled_back() {
    let Some(home) = learning_home() else { return };
    let before = strata_ok(home.path(), &["run", "smollm2", QUESTION]);
    assert!(
        !before.contains("Durvelton"),
        "the base model already knows: {before}"
    );

    let input = format!("{QUESTION}\n/correct {CORRECTION}\n/learn\n/bye\n");
    let chat = strata_with_input(home.path(), &["run", "smollm2"], &input);
    assert!(chat.status.success(), "{}", stderr(&chat));
    assert!(
        stderr(&chat).contains("[learning] learned"),
        "{}",
        stderr(&chat)
    );

    let answer = strata_ok(home.path(), &["run", "smollm2", PARAPHRASE]);
    assert!(answer.contains("Durvelton"), "paraphrase answer: {answer}");

    let log = strata_ok(home.path(), &["log", "smollm2"]);
    assert_eq!(versions(&log).len(), 2, "{log}");
    assert!(
        log.contains(&format!("{QUESTION} => {CORRECTION}")),
        "{log}"
    );
    assert!(log.contains("gate      lesson 1/1"), "{log}");

    let diff = strata_ok(home.path(), &["diff", "smollm2~1", "smollm2"]);
    assert!(
        diff.contains("added    lesson.0.blk.29.attn_q.lora_a"),
        "{diff}"
    );
    assert!(diff.contains("added    lesson.0.keys"), "{diff}");
    assert!(diff.contains("B: lesson 0 has 28 adapters"), "{diff}");

    strata_ok(home.path(), &["rollback", "smollm2"]);
    let after = strata_ok(home.path(), &["run", "smollm2", QUESTION]);
    assert_eq!(after, before);
}

#[test]
fn concurrent_lessons_queue_on_one_model() {
    let Some(home) = learning_home() else { return };
    // Loose thresholds, so the test checks queueing and lineage rather than the gate.
    let loose = [
        "--max-perplexity-increase",
        "100",
        "--max-control-regressions",
        "20",
        "--max-forgotten",
        "5",
        "--attempts",
        "1",
    ];
    let pairs = [
        "Who invented the kivfalscope? => Greta Ulmzen",
        "What is the official language of Halzarstan? => Thennish",
    ];
    let outputs: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|pair| {
                let home = home.path();
                scope.spawn(move || {
                    let mut args = vec!["learn", "smollm2", "--teach", pair];
                    args.extend(loose);
                    strata(home, &args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }

    let log = strata_ok(home.path(), &["log", "smollm2"]);
    assert_eq!(versions(&log).len(), 3, "{log}");
    for pair in pairs {
        let (question, answer) = pair.split_once(" => ").unwrap();
        assert!(log.contains(&format!("{question} => {answer}")), "{log}");
    }
    // Each lesson has its own adapters, and each question runs the adapters of its lesson.
    let diff = strata_ok(home.path(), &["diff", "smollm2~2", "smollm2"]);
    assert!(diff.contains("added    lesson.0.keys"), "{diff}");
    assert!(diff.contains("added    lesson.1.keys"), "{diff}");
    let question = "What is the official language of Halzarstan?";
    let output = strata(home.path(), &["run", "smollm2", question]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("[lesson "), "{}", stderr(&output));
    let output = strata(
        home.path(),
        &["run", "smollm2", "What is the capital of France?"],
    );
    assert!(!stderr(&output).contains("[lesson "), "{}", stderr(&output));

    // Lessons run only on messages about them, so squash, which would run them on every
    // message, refuses.
    let squash = strata(home.path(), &["squash", "smollm2"]);
    assert!(!squash.status.success());
    assert!(
        stderr(&squash).contains("run only on messages about each lesson"),
        "{}",
        stderr(&squash)
    );
}

#[test]
fn failed_gate_leaves_the_store_unchanged() {
    let Some(home) = learning_home() else { return };
    let before = store_state(home.path());
    let args = [
        "learn",
        "smollm2",
        "--teach",
        "Who wrote The Tulzen Chronicle? => Fenna Therzar",
        "--max-perplexity-increase=-50",
        "--attempts",
        "1",
    ];
    let output = strata(home.path(), &args);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("gate failed: perplexity"), "{message}");
    assert!(message.contains("was not changed"), "{message}");
    assert_eq!(store_state(home.path()), before);
    assert_eq!(
        versions(&strata_ok(home.path(), &["log", "smollm2"])).len(),
        1
    );
}

#[test]
fn bad_lessons_name_the_problem() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let cases: [(&[&str], &str); 4] = [
        (
            &["learn", "smollm2", "--teach", "no arrow here"],
            "has no `=>`",
        ),
        (
            &["learn", "smollm2", "--teach", "Q? =>  "],
            "has no letters or digits",
        ),
        (&["learn", "smollm2"], "nothing to learn"),
        (
            &["learn", "smollm2", "--teach", "Q? => A", "--targets", "qq"],
            "unknown --targets entry `qq`",
        ),
    ];
    for (args, expected) in cases {
        let output = strata(home.path(), args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    let facts = home.path().join("facts.jsonl");
    std::fs::write(
        &facts,
        "{\"question\": \"Q?\", \"answer\": \"A\"}\n{\"question\": 3}\n",
    )
    .unwrap();
    let output = strata(
        home.path(),
        &["learn", "smollm2", "--facts", facts.to_str().unwrap()],
    );
    assert!(
        stderr(&output).contains("facts.jsonl:2"),
        "{}",
        stderr(&output)
    );
    let _ = stdout(&output);
}

/// Returns the blobs and the index, the two things a committed lesson writes.
fn store_state(
    home: &Path,
) -> (
    std::collections::BTreeSet<(std::path::PathBuf, u64)>,
    Vec<u8>,
) {
    let blobs = listing(&home.join("blobs"));
    let index = std::fs::read(home.join("index.json")).unwrap();
    (blobs, index)
}
