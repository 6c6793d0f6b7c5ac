//! End-to-end tests of saved sessions through the `strata` binary: `run --save`, `--from` and
//! `--session`, the REPL's session commands, and `strata session list`, `show`, `rm` and `rebase`,
//! together with `gc` and `fsck`.
//!
//! Every process is a fresh `strata`, so each test checks that state survives a process boundary.
//! The tests need the real SmolLM2 GGUF, read its path from `STRATA_TEST_GGUF` and skip with a
//! notice when it is unset. Answers are sampled at temperature 0 (the default), so a prompt gives
//! the same answer every run. The prompts are ones the 135M model gets right. With many other
//! phrasings of the same facts it loses them even within one process.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{
    home_with_model, import, listing, real_gguf, stderr, stdout, strata, strata_command, strata_ok,
    strata_with_input,
};

/// First message of the saved session most tests start from.
const SECRET_PROMPT: &str = "Remember this: the secret word is pineapple.";

/// Question whose answer shows that the session restored the secret.
const SECRET_QUESTION: &str = "What is the secret word?";

/// Creates a store with the real model and the session `secret`, saved after [`SECRET_PROMPT`].
fn home_with_secret(gguf: &Path) -> tempfile::TempDir {
    let home = home_with_model(gguf);
    let output = strata(
        home.path(),
        &["run", "smollm2", "--save", "secret", SECRET_PROMPT],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("saved session `secret`"),
        "{}",
        stderr(&output)
    );
    home
}

/// Returns the value of the `label` line of `strata session show` output.
fn show_field(show: &str, label: &str) -> String {
    show.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == label).then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{show}"))
}

/// Returns the `tokens` count of `strata session show` output.
fn show_tokens(show: &str) -> usize {
    show_field(show, "tokens").parse().unwrap()
}

/// Returns the block digests listed by `strata session show`, in position order.
fn show_blocks(show: &str) -> Vec<String> {
    show.lines()
        .skip_while(|line| *line != "blocks:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.split_whitespace().last().unwrap().to_string())
        .collect()
}

/// Returns the path of the blob `digest` (`sha256:HEX`) in the store at `home`.
fn blob_path(home: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    home.join("blobs/sha256").join(hex)
}

/// Returns the manifest digest `strata show MODEL` prints.
fn model_digest(home: &Path, model: &str) -> String {
    let show = strata_ok(home, &["show", model]);
    show_field(&show, "digest")
}

/// Returns the session names that `strata session list` prints.
fn session_names(home: &Path) -> Vec<String> {
    let list = strata_ok(home, &["session", "list"]);
    list.lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Shortens the file at `path` by its last byte, as a torn write or a bad disk would.
fn truncate_by_one_byte(path: &Path) {
    let size = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(size - 1).unwrap();
}

fn contains_ignoring_case(text: &str, word: &str) -> bool {
    text.to_lowercase().contains(&word.to_lowercase())
}

#[test]
fn from_answers_and_leaves_session_unchanged() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let before = strata_ok(home.path(), &["session", "show", "secret"]);

    let output = strata(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);

    assert!(output.status.success(), "{}", stderr(&output));
    let answer = stdout(&output);
    assert!(
        contains_ignoring_case(&answer, "pineapple"),
        "answer: {answer}"
    );
    assert!(
        !stderr(&output).contains("saved session"),
        "{}",
        stderr(&output)
    );
    // The same model restores the stored blocks instead of recomputing them.
    assert!(
        !stderr(&output).contains("recomputed"),
        "{}",
        stderr(&output)
    );
    let after = strata_ok(home.path(), &["session", "show", "secret"]);
    assert_eq!(after, before);
}

#[test]
fn session_flag_resumes_and_keeps_parent() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let first_message = "Remember this: the secret word is pineapple.";
    let second_message = "What is the secret word?";

    // `--max-tokens` is stored in the session, so the resumed run generates with the same cap.
    let first_args = [
        "run",
        "smollm2",
        "--max-tokens",
        "50",
        "--session",
        "work",
        first_message,
    ];
    let first = strata(home.path(), &first_args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("starting a new session `work`"),
        "{}",
        stderr(&first)
    );
    let first_show = strata_ok(home.path(), &["session", "show", "work"]);
    assert_eq!(show_field(&first_show, "parent"), "-");

    let second = strata(home.path(), &["run", "--session", "work", second_message]);
    assert!(second.status.success(), "{}", stderr(&second));
    let answer = stdout(&second);
    assert!(
        answer.to_lowercase().contains("pineapple"),
        "answer: {answer}"
    );

    let second_show = strata_ok(home.path(), &["session", "show", "work"]);
    let first_snapshot = show_field(&first_show, "snapshot");
    assert_ne!(show_field(&second_show, "snapshot"), first_snapshot);
    assert_eq!(show_field(&second_show, "parent"), first_snapshot);
    assert_eq!(show_field(&second_show, "messages"), "4");
    assert!(
        show_tokens(&second_show) > show_tokens(&first_show),
        "{first_show}\n{second_show}"
    );
    // The blocks the parent stored are referenced again, not written twice.
    let first_blocks = show_blocks(&first_show);
    let second_blocks = show_blocks(&second_show);
    assert!(second_blocks.starts_with(&first_blocks), "{second_show}");

    // One uninterrupted chat gives the same answers, so the restore lost nothing.
    let chat_input = format!("{first_message}\n{second_message}\n/bye\n");
    let chat = strata_with_input(
        home.path(),
        &["run", "smollm2", "--max-tokens", "50"],
        &chat_input,
    );
    assert!(chat.status.success(), "{}", stderr(&chat));
    assert_eq!(stdout(&chat), stdout(&first) + &answer);

    let gc = strata(home.path(), &["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    let fsck = strata(home.path(), &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    let parent_manifest = blob_path(home.path(), &first_snapshot);
    assert!(parent_manifest.is_file(), "gc removed the parent manifest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&parent_manifest).unwrap()).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert!(blob_path(home.path(), config_digest).is_file());
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            blob_path(home.path(), digest).is_file(),
            "gc removed {digest}"
        );
    }
}

#[test]
fn concurrent_forks_give_the_same_answer() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let before = strata_ok(home.path(), &["session", "show", "secret"]);

    let spawn = || {
        strata_command(home.path(), &["run", "--from", "secret", SECRET_QUESTION])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata binary starts")
    };
    let children = [spawn(), spawn()];
    let outputs = children.map(|child| child.wait_with_output().unwrap());

    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
        let answer = stdout(output);
        assert!(
            contains_ignoring_case(&answer, "pineapple"),
            "answer: {answer}"
        );
    }
    assert_eq!(stdout(&outputs[0]), stdout(&outputs[1]));
    let after = strata_ok(home.path(), &["session", "show", "secret"]);
    assert_eq!(after, before);
}

/// Two chats resuming one session at once both keep their turn: the first save moves the name,
/// the second finds it moved and saves under `NAME-2`.
#[test]
fn concurrent_resumes_lose_no_turn() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let spawn = |text: &str| {
        strata_command(home.path(), &["run", "--session", "secret", text])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata binary starts")
    };
    let children = [spawn("First follow-up."), spawn("Second follow-up.")];
    let outputs = children.map(|child| child.wait_with_output().unwrap());
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }

    assert_eq!(session_names(home.path()), ["secret", "secret-2"]);
    let notes: String = outputs.iter().map(stderr).collect();
    assert!(notes.contains("was saved as `secret-2`"), "{notes}");
    let mut users = Vec::new();
    for name in ["secret", "secret-2"] {
        let show = strata_ok(home.path(), &["session", "show", name]);
        assert_eq!(show_field(&show, "messages"), "4", "{show}");
        users.extend(
            show.lines()
                .filter(|line| line.contains("follow-up"))
                .map(str::to_string),
        );
    }
    users.sort();
    assert_eq!(
        users,
        ["  [user] First follow-up.", "  [user] Second follow-up."]
    );
}

/// `session rebase` onto the session's own model recomputes a cache whose block was damaged.
#[test]
fn rebase_repairs_a_damaged_block() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    truncate_by_one_byte(&blob_path(home.path(), &show_blocks(&show)[0]));
    let broken = strata(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);
    assert_eq!(broken.status.code(), Some(1));

    let rebase = strata(
        home.path(),
        &["session", "rebase", "secret", "--onto", "smollm2"],
    );
    assert!(rebase.status.success(), "{}", stderr(&rebase));
    assert!(
        stderr(&rebase).contains("recomputed"),
        "{}",
        stderr(&rebase)
    );
    let answer = strata_ok(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);
    assert!(
        contains_ignoring_case(&answer, "pineapple"),
        "answer: {answer}"
    );
}

#[test]
fn removed_session_is_collected_by_gc() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);

    assert_eq!(session_names(home.path()), ["secret"]);
    let models = strata_ok(home.path(), &["list"]);
    assert!(!models.contains("secret"), "{models}");
    assert!(!models.contains("session/"), "{models}");
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    let snapshot = show_field(&show, "snapshot");
    let blocks = show_blocks(&show);
    assert!(!blocks.is_empty(), "{show}");

    let rm = strata(home.path(), &["session", "rm", "secret"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(
        stderr(&rm).contains("removed session `secret`"),
        "{}",
        stderr(&rm)
    );
    assert!(session_names(home.path()).is_empty());
    let show_removed = strata(home.path(), &["session", "show", "secret"]);
    assert_eq!(show_removed.status.code(), Some(1));
    assert!(
        stderr(&show_removed).contains("no saved session named `secret`"),
        "{}",
        stderr(&show_removed)
    );

    let gc = strata(home.path(), &["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    // The snapshot manifest, its config and every block are removed, and the model stays.
    let expected = format!("removed {} blobs", blocks.len() + 2);
    assert!(stderr(&gc).contains(&expected), "{}", stderr(&gc));
    assert!(!blob_path(home.path(), &snapshot).exists());
    for block in &blocks {
        assert!(!blob_path(home.path(), block).exists(), "{block} kept");
    }
    let fsck = strata(home.path(), &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    assert!(strata_ok(home.path(), &["list"]).contains("smollm2:latest"));

    let rm_again = strata(home.path(), &["session", "rm", "secret"]);
    assert_eq!(rm_again.status.code(), Some(1));
    assert!(
        stderr(&rm_again).contains("no saved session named `secret`"),
        "{}",
        stderr(&rm_again)
    );
}

#[test]
fn unknown_session_is_named_without_changes() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let before = listing(home.path());

    let cases: [&[&str]; 4] = [
        &["run", "--from", "nosuch", SECRET_QUESTION],
        &["session", "show", "nosuch"],
        &["session", "rm", "nosuch"],
        &["session", "rebase", "nosuch", "--onto", "smollm2"],
    ];
    for args in cases {
        let output = strata(home.path(), args);
        let command = args.join(" ");
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert!(
            stderr(&output).contains("no saved session named `nosuch`"),
            "{command}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{command}: {}", stdout(&output));
    }
    assert_eq!(listing(home.path()), before);
}

#[test]
fn invalid_session_names_rejected_before_writing() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let before = listing(home.path());

    let cases: [&[&str]; 7] = [
        &["run", "smollm2", "--save", "../x", SECRET_PROMPT],
        &["run", "--from", "../x", SECRET_QUESTION],
        &["run", "smollm2", "--session", "../x", SECRET_PROMPT],
        &["session", "show", "../x"],
        &["session", "rm", "../x"],
        &["session", "rebase", "../x", "--onto", "smollm2"],
        &[
            "session", "rebase", "secret", "--onto", "smollm2", "--as", "../x",
        ],
    ];
    for args in cases {
        let output = strata(home.path(), args);
        let command = args.join(" ");
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert!(
            stderr(&output).contains("invalid session name `../x`"),
            "{command}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{command}: {}", stdout(&output));
    }
    assert_eq!(listing(home.path()), before);
}

#[test]
fn truncated_block_fails_restore_and_fsck() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    let block = show_blocks(&show)[0].clone();
    truncate_by_one_byte(&blob_path(home.path(), &block));
    let before = listing(home.path());

    let output = strata(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);

    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("cannot restore session `secret`"),
        "{message}"
    );
    assert!(
        message.contains(&format!("cache block 0 ({block})")),
        "{message}"
    );
    assert!(message.contains("truncated"), "{message}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert_eq!(listing(home.path()), before);
    assert_eq!(strata_ok(home.path(), &["session", "show", "secret"]), show);

    let fsck = strata(home.path(), &["fsck"]);
    assert_eq!(fsck.status.code(), Some(3), "{}", stderr(&fsck));
    let report = stdout(&fsck);
    assert!(report.contains(&block), "{report}");
    assert!(report.contains("session `secret`"), "{report}");
}

#[test]
fn missing_model_suggests_rebase() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let model = model_digest(home.path(), "smollm2");
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    assert!(show_field(&show, "model").contains(&model), "{show}");
    std::fs::remove_file(blob_path(home.path(), &model)).unwrap();
    let before = listing(home.path());

    let output = strata(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);

    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains(&model), "{message}");
    assert!(message.contains("not in the store"), "{message}");
    assert!(message.contains("strata session rebase"), "{message}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert_eq!(listing(home.path()), before);
}

#[test]
fn repl_failed_load_keeps_the_conversation() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let input = format!(
        "{SECRET_PROMPT}\n/save secret\n/load nosuch\n{SECRET_QUESTION}\n/history\n/sessions\n/bye\n"
    );

    let output = strata_with_input(home.path(), &["run", "smollm2"], &input);

    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(log.contains("saved session `secret`"), "{log}");
    assert!(log.contains("no saved session named `nosuch`"), "{log}");
    assert!(
        log.contains("(the conversation goes on as it was)"),
        "{log}"
    );

    // Without a terminal the REPL prints no prompts, so stdout is the two answers, the
    // history and the session list.
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2 + 4 + 2, "{text}");
    assert!(contains_ignoring_case(lines[1], "pineapple"), "{text}");
    let history: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with('['))
        .collect();
    assert_eq!(history.len(), 4, "{text}");
    assert_eq!(history[0], format!("[user] {SECRET_PROMPT}"));
    assert_eq!(history[1], format!("[assistant] {}", lines[0]));
    assert_eq!(history[2], format!("[user] {SECRET_QUESTION}"));
    assert_eq!(history[3], format!("[assistant] {}", lines[1]));
    let table_start = lines
        .iter()
        .position(|line| line.starts_with("NAME"))
        .unwrap_or_else(|| panic!("no session list in:\n{text}"));
    assert!(lines[table_start + 1].starts_with("secret "), "{text}");

    // `/save` ran after the first answer and nothing saved on `/bye`.
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    assert_eq!(show_field(&show, "messages"), "2");
}

#[test]
fn repl_fork_answers_from_the_saved_state() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let before = strata_ok(home.path(), &["session", "show", "secret"]);
    let input = format!(
        "Remember this: the secret word is banana.\n{SECRET_QUESTION}\n/fork secret\n\
         {SECRET_QUESTION}\n/save\n/bye\n"
    );

    let output = strata_with_input(home.path(), &["run", "smollm2"], &input);

    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let answers: Vec<&str> = text.lines().collect();
    assert_eq!(answers.len(), 3, "{text}");
    assert!(contains_ignoring_case(answers[1], "banana"), "{text}");
    assert!(contains_ignoring_case(answers[2], "pineapple"), "{text}");
    assert!(!contains_ignoring_case(answers[2], "banana"), "{text}");
    let log = stderr(&output);
    assert!(log.contains("forked session `secret`"), "{log}");
    // A fork is not attached to the name it came from, so a plain `/save` has no target.
    assert!(log.contains("this session has no name yet"), "{log}");
    let after = strata_ok(home.path(), &["session", "show", "secret"]);
    assert_eq!(after, before);
}

#[test]
fn repl_damaged_load_changes_nothing() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let show = strata_ok(home.path(), &["session", "show", "secret"]);
    let block = show_blocks(&show)[0].clone();
    truncate_by_one_byte(&blob_path(home.path(), &block));
    let banana = "Remember this: the secret word is banana.";

    // The input ends without `/bye`, because end of input also leaves the chat and saves
    // `--session`.
    let damaged_input = format!("{banana}\n/load secret\n/save ../x\n{SECRET_QUESTION}\n");
    let damaged = strata_with_input(
        home.path(),
        &["run", "smollm2", "--session", "live"],
        &damaged_input,
    );
    let control_input = format!("{banana}\n{SECRET_QUESTION}\n");
    let control = strata_with_input(home.path(), &["run", "smollm2"], &control_input);

    assert!(damaged.status.success(), "{}", stderr(&damaged));
    assert!(control.status.success(), "{}", stderr(&control));
    let log = stderr(&damaged);
    assert!(log.contains("cannot restore session `secret`"), "{log}");
    assert!(log.contains(&format!("cache block 0 ({block})")), "{log}");
    assert!(log.contains("invalid session name `../x`"), "{log}");
    assert_eq!(
        log.matches("(the conversation goes on as it was)").count(),
        2,
        "{log}"
    );
    assert_eq!(stdout(&damaged), stdout(&control));
    assert!(contains_ignoring_case(&stdout(&damaged), "banana"));

    let live = strata_ok(home.path(), &["session", "show", "live"]);
    assert_eq!(show_field(&live, "messages"), "4");
    assert_eq!(show_field(&live, "parent"), "-");
}

#[test]
fn rebase_recomputes_onto_another_version() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_secret(&gguf);
    let old_show = strata_ok(home.path(), &["session", "show", "secret"]);
    let old_snapshot = show_field(&old_show, "snapshot");
    let old_blocks = show_blocks(&old_show);
    import(home.path(), &gguf, "smollm2:v2");
    let v1 = model_digest(home.path(), "smollm2:latest");
    let v2 = model_digest(home.path(), "smollm2:v2");
    assert_ne!(v1, v2, "the second import has its own creation time");

    let rebase = strata(
        home.path(),
        &["session", "rebase", "secret", "--onto", "smollm2:v2"],
    );

    assert!(rebase.status.success(), "{}", stderr(&rebase));
    let log = stderr(&rebase);
    assert!(log.contains("note: "), "{log}");
    assert!(log.contains("cache was recomputed"), "{log}");
    let new_show = strata_ok(home.path(), &["session", "show", "secret"]);
    assert_eq!(show_field(&new_show, "model"), format!("smollm2:v2 ({v2})"));
    assert_eq!(show_field(&new_show, "parent"), old_snapshot);
    assert_eq!(show_tokens(&new_show), show_tokens(&old_show));

    let output = strata(home.path(), &["run", "--from", "secret", SECRET_QUESTION]);
    assert!(output.status.success(), "{}", stderr(&output));
    let answer = stdout(&output);
    assert!(
        contains_ignoring_case(&answer, "pineapple"),
        "answer: {answer}"
    );

    // The old snapshot stays readable as the parent, so gc keeps its blocks and fsck is clean.
    strata_ok(home.path(), &["gc"]);
    for block in &old_blocks {
        assert!(
            blob_path(home.path(), block).is_file(),
            "gc removed {block}"
        );
    }
    let fsck = strata(home.path(), &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
}
