//! A restored snapshot continues exactly like the session that was saved (issue cases K1 and the
//! f32 logits requirement), checked on the real SmolLM2 in a separate process.
//!
//! The writer saves snapshots, then runs a fixed set of requests (`probe`) on its live sequences.
//! A child process, this same test binary running `child_probes_restored_snapshots`, restores the
//! snapshots from the store and runs the same requests. Snapshots give the same logits bit for
//! bit: f32 blocks always, f16 blocks when the cache keeps f16 precision (the engine's default).
//! f16 blocks of an f32-precision cache stay within the tolerance stated in `F16_TOLERANCE`.

mod common;

use std::path::Path;
use std::process::Command;

use strata_runtime::Sequence;
use strata_runtime::engine::Engine;
use strata_runtime::model::BlockDtype;
use strata_sessions::{SaveOptions, SessionName, Snapshot, restore, save};
use strata_store::Store;

use common::*;

/// Largest difference of a next-token logit between the live session and a restore from f16
/// blocks, when the session's cache keeps full f32 precision (not the default). Measured on this
/// prompt at 0.49 (logits range about ±26); the engine's default f16-precision cache restores
/// from f16 blocks exactly instead.
const F16_TOLERANCE: f32 = 1.0;

const CHILD_ENV: &str = "STRATA_SNAPSHOT_CHILD_HOME";
const OUT_ENV: &str = "STRATA_SNAPSHOT_CHILD_OUT";
const SECRET: &str = "Remember this: the secret word is pineapple. Reply with OK.";

/// Runs the same requests on a live or a restored sequence and returns their logits. The
/// requests are the next token, a greedy continuation (positions after the restore), a prompt
/// equal to the cached tokens (its last logits are produced again), a strict prefix of them,
/// and an extension fed in one pass.
fn probe(engine: &Engine, sequence: &mut Sequence, next: u32) -> Vec<Vec<f32>> {
    let model = engine.model();
    let saved = sequence.tokens().to_vec();
    let n = saved.len();
    let mut runs = Vec::new();

    let first = logits_vec(&sequence.feed(model, &[next]).unwrap());
    runs.push(first.clone());
    let continuation = continue_greedy(engine, sequence, &first, 12);
    runs.push(continuation.iter().map(|&t| t as f32).collect());
    assert_eq!(
        sequence.len(),
        n + 13,
        "positions continue after the saved ones"
    );

    runs.push(logits_vec(&sequence.feed_prompt(model, &saved).unwrap()));
    assert_eq!(sequence.len(), n);
    if n >= 2 {
        runs.push(logits_vec(
            &sequence.feed_prompt(model, &saved[..n - 1]).unwrap(),
        ));
    }
    let mut extended = saved.clone();
    extended.extend([next, next, next]);
    runs.push(logits_vec(&sequence.feed_prompt(model, &extended).unwrap()));
    runs
}

fn bits(runs: &[Vec<f32>]) -> Vec<Vec<u32>> {
    runs.iter()
        .map(|run| run.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn restored_sequence(store: &Store, engine: &Engine, name: &str) -> (Snapshot, Sequence) {
    let snapshot = Snapshot::open(store, &SessionName::parse(name).unwrap()).unwrap();
    let restored = restore(store, &snapshot, engine).unwrap();
    assert!(
        restored.recomputed.is_none(),
        "same model, so nothing is recomputed"
    );
    (snapshot, sequence_of(restored.chat))
}

#[test]
fn snapshots_restore_bit_for_bit_in_a_fresh_process() {
    let Some(gguf) = real_gguf() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = import_model(home.path(), &gguf, "smollm2");
    let engine = engine(&store, "smollm2");

    // A session after a real exchange: prefill in one pass, then decoded positions.
    let mut chat = engine.new_chat(None);
    let params = greedy(12);
    chat.send(&engine, SECRET, &params, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let f32_options = SaveOptions {
        dtype: BlockDtype::F32,
        ..SaveOptions::default()
    };
    let exact = SessionName::parse("exact").unwrap();
    save(&store, &exact, &engine, &chat, &params, &f32_options).unwrap();
    let approx = SessionName::parse("approx").unwrap();
    save(
        &store,
        &approx,
        &engine,
        &chat,
        &params,
        &SaveOptions::default(),
    )
    .unwrap();

    // Case K1: a 3-token prompt saved after its first 2 positions.
    let k1_tokens = prompt_tokens(&engine, "Hi")[..3].to_vec();
    let k1_chat = chat_with(sequence_with(&engine, &k1_tokens[..2]), "Hi");
    let k1 = SessionName::parse("k1").unwrap();
    save(&store, &k1, &engine, &k1_chat, &params, &f32_options).unwrap();

    let out = home.path().join("child.json");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_probes_restored_snapshots",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, home.path())
        .env(OUT_ENV, &out)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&child.stderr)
    );

    let mut live = sequence_of(chat);
    let saved = live.tokens().to_vec();
    let next = argmax(&logits_vec(
        &live.feed_prompt(engine.model(), &saved).unwrap(),
    ));
    let live_runs = probe(&engine, &mut live, next);
    let mut k1_live = sequence_of(k1_chat);
    let k1_runs = probe(&engine, &mut k1_live, k1_tokens[2]);

    let child: Vec<Vec<Vec<u32>>> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        child[0],
        bits(&live_runs),
        "f32 restore differs from the live session"
    );
    assert_eq!(
        child[1],
        bits(&live_runs),
        "f16 restore differs from the f16-precision session"
    );
    assert_eq!(
        child[2],
        bits(&k1_runs),
        "K1: the restored 2-position session differs"
    );
}

/// A session whose cache keeps full f32 precision restores exactly from f32 blocks, and within
/// `F16_TOLERANCE` from f16 blocks.
#[test]
fn f16_blocks_of_an_f32_precision_session_stay_within_the_tolerance() {
    let Some(gguf) = real_gguf() else { return };
    let home = tempfile::tempdir().unwrap();
    let store = import_model(home.path(), &gguf, "smollm2");
    let mut engine = engine(&store, "smollm2");
    engine.model_mut().set_kv_precision(BlockDtype::F32);

    let mut chat = engine.new_chat(None);
    let params = greedy(12);
    chat.send(&engine, SECRET, &params, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let f32_options = SaveOptions {
        dtype: BlockDtype::F32,
        ..SaveOptions::default()
    };
    for (name, options) in [("full", f32_options), ("half", SaveOptions::default())] {
        let name = SessionName::parse(name).unwrap();
        save(&store, &name, &engine, &chat, &params, &options).unwrap();
    }

    let mut live = sequence_of(chat);
    let tokens = live.tokens().to_vec();
    let next = argmax(&logits_vec(
        &live.feed_prompt(engine.model(), &tokens).unwrap(),
    ));
    let live_runs = probe(&engine, &mut live, next);
    let (_, mut full) = restored_sequence(&store, &engine, "full");
    assert_eq!(bits(&probe(&engine, &mut full, next)), bits(&live_runs));

    let (_, mut half) = restored_sequence(&store, &engine, "half");
    let half_runs = probe(&engine, &mut half, next);
    let next_logits = (&live_runs[0], &half_runs[0]);
    let worst = next_logits
        .0
        .iter()
        .zip(next_logits.1)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("f16 blocks of an f32 cache: largest next-token logit difference {worst}");
    assert!(worst <= F16_TOLERANCE, "f16 logits differ by {worst}");
    assert_eq!(argmax(next_logits.0), argmax(next_logits.1));
}

/// Runs the child half of the test above, and does nothing unless that test starts it.
#[test]
#[ignore = "run by snapshots_restore_bit_for_bit_in_a_fresh_process"]
fn child_probes_restored_snapshots() {
    let Some(home) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let out = std::env::var_os(OUT_ENV).expect("output path");
    let store = Store::open(Path::new(&home)).unwrap();
    let engine = engine(&store, "smollm2");

    let (_, mut exact) = restored_sequence(&store, &engine, "exact");
    let tokens = exact.tokens().to_vec();
    let next = argmax(&logits_vec(
        &exact.feed_prompt(engine.model(), &tokens).unwrap(),
    ));
    let exact_runs = probe(&engine, &mut exact, next);

    let (snapshot, mut k1) = restored_sequence(&store, &engine, "k1");
    assert_eq!(snapshot.config.cached_tokens, 2);
    assert_eq!(snapshot.config.tokens.len(), 2);
    assert_eq!(k1.len(), 2, "the restored cache holds positions 0 and 1");
    let third = prompt_tokens(&engine, "Hi")[2];
    let k1_runs = probe(&engine, &mut k1, third);

    let (_, mut approx) = restored_sequence(&store, &engine, "approx");
    let approx_runs = probe(&engine, &mut approx, next);

    let result = vec![bits(&exact_runs), bits(&approx_runs), bits(&k1_runs)];
    std::fs::write(out, serde_json::to_vec(&result).unwrap()).unwrap();
}
