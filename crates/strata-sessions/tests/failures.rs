//! Snapshots at their edges and under damage, on the real SmolLM2: empty sessions, broken
//! restores, forks sharing blocks, `gc` and `fsck` over snapshots, and concurrent restores.
//!
//! A broken restore must fail with an error naming its cause: the block, its digest, the byte
//! counts, the model or the context length. It must also leave a live chat as it was, with the
//! same tokens, next reply and next logits as an identical chat recorded before the attempt.
//! Every test imports the model into its own temporary store and skips without
//! `STRATA_TEST_GGUF`.

mod common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Barrier;

use strata_runtime::engine::{Chat, Engine};
use strata_sessions::{
    Recompute, Replace, SaveOptions, Saved, SessionError, SessionName, Snapshot, check_all,
    recompute, remove, restore, save,
};
use strata_store::{Digest, FsckProblem, Manifest, Store};
use tempfile::TempDir;

use common::*;

/// Name the model is imported under.
const MODEL: &str = "smollm2";
const QUESTION: &str = "Name three colours of the rainbow.";
const FOLLOW_UP: &str = "Which of them is warmest?";
/// Token fed after a restore to compare the next logits.
const PROBE_TEXT: &str = " The";

/// A store with the model imported, the engine loaded on it, and the directory containing both.
struct Fixture {
    store: Store,
    engine: Engine,
    _home: TempDir,
}

/// Imports the model into a new store, or returns `None` when `STRATA_TEST_GGUF` is not set.
fn fixture() -> Option<Fixture> {
    let gguf = real_gguf()?;
    let home = tempfile::tempdir().unwrap();
    let store = import_model(home.path(), &gguf, MODEL);
    let engine = engine(&store, MODEL);
    Some(Fixture {
        store,
        engine,
        _home: home,
    })
}

fn name(text: &str) -> SessionName {
    SessionName::parse(text).unwrap()
}

/// Sends `text` with greedy sampling and returns the reply's text.
fn send_greedy(engine: &Engine, chat: &mut Chat, text: &str) -> String {
    let params = greedy(8);
    let reply = chat.send(engine, text, &params, &mut |_| ControlFlow::Continue(()));
    reply.unwrap().text
}

fn chat_tokens(chat: &Chat) -> Vec<u32> {
    chat.sequence()
        .map_or_else(Vec::new, |sequence| sequence.tokens().to_vec())
}

fn probe_token(engine: &Engine) -> u32 {
    engine.tokenizer().encode_text(PROBE_TEXT).unwrap()[0]
}

/// Feeds the probe token and returns the bits of the logits it produces.
fn probe_logits(engine: &Engine, chat: Chat) -> Vec<u32> {
    let mut sequence = sequence_of(chat);
    let logits = sequence
        .feed(engine.model(), &[probe_token(engine)])
        .unwrap();
    logits_vec(&logits).iter().map(|x| x.to_bits()).collect()
}

/// A chat that has replied to [`QUESTION`], with what an identical control chat did next.
///
/// The control chat replies to [`FOLLOW_UP`] and is probed when the fixture is built, so the record
/// is taken before any restore is attempted.
struct LiveChat {
    chat: Chat,
    tokens: Vec<u32>,
    next_reply: String,
    next_tokens: Vec<u32>,
    next_logits: Vec<u32>,
}

impl LiveChat {
    fn new(engine: &Engine) -> LiveChat {
        let mut chat = engine.new_chat(None);
        send_greedy(engine, &mut chat, QUESTION);
        let mut control = engine.new_chat(None);
        send_greedy(engine, &mut control, QUESTION);
        let tokens = chat_tokens(&chat);
        assert_eq!(
            chat_tokens(&control),
            tokens,
            "identical greedy chats agree"
        );

        let next_reply = send_greedy(engine, &mut control, FOLLOW_UP);
        let next_tokens = chat_tokens(&control);
        let next_logits = probe_logits(engine, control);
        LiveChat {
            chat,
            tokens,
            next_reply,
            next_tokens,
            next_logits,
        }
    }

    /// Checks that the chat kept its tokens and continues exactly like the control chat did.
    fn assert_untouched(mut self, engine: &Engine) {
        let tokens = chat_tokens(&self.chat);
        assert_eq!(tokens, self.tokens, "the live chat's tokens changed");

        let reply = send_greedy(engine, &mut self.chat, FOLLOW_UP);
        assert_eq!(reply, self.next_reply, "the live chat replies differently");
        let tokens = chat_tokens(&self.chat);
        assert_eq!(
            tokens, self.next_tokens,
            "the live chat cached other tokens"
        );
        let logits = probe_logits(engine, self.chat);
        assert!(
            logits == self.next_logits,
            "the live chat's next logits changed"
        );
    }
}

/// Saves `chat` as `text` with the default options.
fn save_chat(fixture: &Fixture, text: &str, chat: &Chat) -> Saved {
    let Fixture { store, engine, .. } = fixture;
    let options = SaveOptions::default();
    save(store, &name(text), engine, chat, &greedy(8), &options).unwrap()
}

fn block_path(store: &Store, snapshot: &Snapshot, index: usize) -> PathBuf {
    store.blob_path(&snapshot.blocks[index].descriptor.digest)
}

/// Stores `manifest` and points the session name `text` at it.
fn tag_manifest(store: &Store, text: &str, manifest: &Manifest) {
    let descriptor = store.put_manifest(manifest).unwrap();
    store.set_tag(&name(text).reference(), &descriptor).unwrap();
}

/// Token ids of a long plain-text document, cut to `count`.
fn document_tokens(engine: &Engine, count: usize) -> Vec<u32> {
    let text: String = (0..count)
        .map(|i| {
            format!(
                "Line {i} of the ledger records {} crates of pears.\n",
                i * 7 % 97
            )
        })
        .collect();
    let tokens = engine.tokenizer().encode_text(&text).unwrap();
    assert!(tokens.len() >= count, "the document is long enough");
    tokens[..count].to_vec()
}

/// `count` token ids that continue a session as fork `fork`, different for every fork.
fn fork_tokens(engine: &Engine, fork: usize, count: usize) -> Vec<u32> {
    let text: String = (0..count)
        .map(|i| format!(" Fork {fork} adds note {i}."))
        .collect();
    let tokens = engine.tokenizer().encode_text(&text).unwrap();
    tokens[..count].to_vec()
}

/// Restores `parent` and feeds `extra` after its tokens, as a session continued from it.
fn continue_from(store: &Store, engine: &Engine, parent: &Snapshot, extra: &[u32]) -> Chat {
    let restored = restore(store, parent, engine).unwrap();
    let (system, messages, sequence) = restored.chat.into_parts();
    let mut sequence = sequence.expect("the parent has cached tokens");
    sequence.feed(engine.model(), extra).unwrap();
    Chat::from_parts(system, messages, Some(sequence))
}

fn restored_tokens(store: &Store, engine: &Engine, text: &str) -> Vec<u32> {
    let snapshot = Snapshot::open(store, &name(text)).unwrap();
    let restored = restore(store, &snapshot, engine).unwrap();
    assert!(
        restored.recomputed.is_none(),
        "same model, nothing recomputed"
    );
    chat_tokens(&restored.chat)
}

#[test]
fn empty_sessions_round_trip_and_answer() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;

    for (text, system) in [
        ("empty", None),
        ("system-only", Some("You answer in one line.")),
    ] {
        let system = system.map(str::to_string);
        let chat = engine.new_chat(system.clone());
        let saved = save_chat(&fixture, text, &chat);
        assert_eq!(saved.blocks_written, 0, "{text}");

        let snapshot = Snapshot::open(store, &name(text)).unwrap();
        assert!(snapshot.blocks.is_empty(), "{text}: blocks");
        assert_eq!(snapshot.cache_bytes(), 0, "{text}: cache bytes");
        assert_eq!(snapshot.config.cached_tokens, 0, "{text}: cached tokens");
        assert!(snapshot.config.tokens.is_empty(), "{text}: token ids");
        assert_eq!(snapshot.config.system, system, "{text}: saved system");

        let restored = restore(store, &snapshot, engine).unwrap();
        assert!(restored.recomputed.is_none(), "{text}: recomputed");
        let mut chat = restored.chat;
        assert!(chat.sequence().is_none(), "{text}: a sequence appeared");
        assert_eq!(chat.system(), system.as_deref(), "{text}: system");
        assert!(chat.messages().is_empty(), "{text}: messages");

        let mut control = engine.new_chat(system.clone());
        let expected = send_greedy(engine, &mut control, QUESTION);
        let reply = send_greedy(engine, &mut chat, QUESTION);
        assert_eq!(
            reply, expected,
            "{text}: the restored chat replies differently"
        );
        assert_eq!(chat_tokens(&chat), chat_tokens(&control), "{text}: tokens");
    }
    let problems = check_all(store).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

/// A block layer of size 0, declared as such in the manifest or emptied on disk, is rejected.
#[test]
fn zero_length_block_is_rejected() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;
    let manifest = store.read_manifest(good.digest()).unwrap();
    let last = manifest.layers.len() - 1;
    let tokens = good.blocks[last].tokens;
    let expected = good.blocks[last].descriptor.size;
    let empty = store.put_blob(&[]).unwrap();

    // The layer keeps its token count but declares 0 bytes.
    let mut broken = manifest.clone();
    broken.layers[last].digest = empty.clone();
    broken.layers[last].size = 0;
    tag_manifest(store, "zero-bytes", &broken);
    let error = Snapshot::open(store, &name("zero-bytes")).unwrap_err();
    assert!(
        matches!(error, SessionError::BlockSize { index, actual: 0, .. } if index == last),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("cache block {last} ({empty})")),
        "{message}"
    );
    assert!(message.contains("holds 0 bytes"), "{message}");
    assert!(
        message.contains(&format!("{tokens} positions need {expected}")),
        "{message}"
    );

    // The layer declares 0 positions as well, so its size agrees but covers nothing.
    let key = strata_sessions::media::BLOCK_TOKENS_ANNOTATION;
    broken.layers[last]
        .annotations
        .insert(key.to_string(), "0".to_string());
    tag_manifest(store, "zero-positions", &broken);
    let error = Snapshot::open(store, &name("zero-positions")).unwrap_err();
    assert!(matches!(error, SessionError::Invalid { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("block {last} covers 0 positions")),
        "{message}"
    );

    // The manifest is intact but the blob file is emptied on disk.
    std::fs::write(block_path(store, &good, last), b"").unwrap();
    let error = restore(store, &good, engine).unwrap_err();
    assert!(
        matches!(error, SessionError::BlockSize { actual: 0, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("holds 0 bytes"), "{message}");
    assert!(
        message.contains(&good.blocks[last].descriptor.digest.to_string()),
        "{message}"
    );

    live.assert_untouched(engine);
}

#[test]
fn missing_block_is_named() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;

    std::fs::remove_file(block_path(store, &good, 0)).unwrap();
    let digest = &good.blocks[0].descriptor.digest;
    let error = restore(store, &good, engine).unwrap_err();
    assert!(
        matches!(&error, SessionError::MissingBlock { index: 0, digest: d, .. } if d == digest),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&digest.to_string()), "{message}");
    assert!(message.contains("missing"), "{message}");

    let problems = check_all(store).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].name, name("good"));
    let reported = problems[0].to_string();
    assert!(reported.contains(&digest.to_string()), "{reported}");

    live.assert_untouched(engine);
}

#[test]
fn short_block_is_rejected_with_sizes() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;

    let path = block_path(store, &good, 0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let (full, short) = (bytes.len() as u64, bytes.len() as u64 - 1);
    let error = restore(store, &good, engine).unwrap_err();
    assert!(
        matches!(error, SessionError::BlockSize { index: 0, expected, actual, .. }
            if expected == full && actual == short),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("holds {short} bytes")),
        "{message}"
    );
    assert!(message.contains(&format!("need {full}")), "{message}");
    assert!(
        message.contains(&good.blocks[0].descriptor.digest.to_string()),
        "{message}"
    );

    live.assert_untouched(engine);
}

/// A snapshot whose model manifest is gone from the store is reported by `check_all`.
///
/// Restoring it onto an engine that already runs that model version fails as well: `restore`
/// checks that the model's manifest is stored before it decodes any block.
#[test]
fn missing_model_is_reported() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;
    let model = engine.manifest_digest().clone();
    assert_eq!(good.config.model.manifest, model);

    std::fs::remove_file(store.blob_path(&model)).unwrap();
    let problems = check_all(store).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].name, name("good"));
    assert!(
        matches!(&problems[0].error, SessionError::ModelMissing { digest, .. } if *digest == model),
        "{:?}",
        problems[0].error
    );
    let reported = problems[0].to_string();
    assert!(reported.contains(&model.to_string()), "{reported}");
    assert!(reported.contains("not in the store"), "{reported}");

    let snapshot = Snapshot::open(store, &name("good")).unwrap();
    let error = restore(store, &snapshot, engine).unwrap_err();
    assert!(
        matches!(error, SessionError::ModelMissing { .. }),
        "{error:?}"
    );

    live.assert_untouched(engine);
}

/// A stored snapshot of one position more than the model's context is rejected with both
/// counts.
#[test]
fn session_past_context_is_rejected() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;
    let max = engine.model().config().max_position_embeddings;
    let total = max + 1;

    // Blocks of zeros: one blob of a full block, repeated, then a one-position block. Every
    // layer is stored with its true size, so only the length is wrong.
    let kv = &good.config.kv;
    let mut layers = Vec::new();
    let mut start = 0;
    while start < total {
        let tokens = kv.block_tokens.min(total - start);
        let bytes = vec![0u8; kv.block_bytes(tokens).unwrap() as usize];
        let digest = store.put_blob(&bytes).unwrap();
        let mut layer = good.blocks[0].descriptor.clone();
        layer.digest = digest;
        layer.size = bytes.len() as u64;
        layer.annotations = BTreeMap::from([
            (
                strata_sessions::media::BLOCK_START_ANNOTATION.to_string(),
                start.to_string(),
            ),
            (
                strata_sessions::media::BLOCK_TOKENS_ANNOTATION.to_string(),
                tokens.to_string(),
            ),
        ]);
        layers.push(layer);
        start += tokens;
    }
    let mut config = good.config.clone();
    config.tokens = vec![good.config.tokens[0]; total];
    config.cached_tokens = total;
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let mut manifest = store.read_manifest(good.digest()).unwrap();
    manifest.config.digest = store.put_blob(&config_bytes).unwrap();
    manifest.config.size = config_bytes.len() as u64;
    manifest.layers = layers;
    tag_manifest(store, "too-long", &manifest);

    let snapshot = Snapshot::open(store, &name("too-long")).unwrap();
    assert_eq!(snapshot.config.cached_tokens, total);
    let error = restore(store, &snapshot, engine).unwrap_err();
    assert!(
        matches!(error, SessionError::ContextLength { tokens, max: limit }
            if tokens == total && limit == max),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&format!("{total} tokens")), "{message}");
    assert!(message.contains(&format!("context is {max}")), "{message}");

    live.assert_untouched(engine);
}

/// A snapshot restored onto another version of the same weights recomputes its cache and then
/// continues like the original session on its own model.
#[test]
fn other_model_version_recomputes_cache() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let live = LiveChat::new(engine);
    let good = save_chat(&fixture, "good", &live.chat).snapshot;

    // A second import writes a new creation time into the config, so its manifest differs.
    let gguf = real_gguf().unwrap();
    let reference = strata_store::Reference::parse("smollm2-copy").unwrap();
    let import = strata_model::import::import_gguf(store, &gguf, &reference, &mut |_, _| {});
    import.unwrap();
    let other = common::engine(store, "smollm2-copy");
    assert_ne!(other.manifest_digest(), engine.manifest_digest());

    let restored = restore(store, &good, &other).unwrap();
    let expected = Recompute::OtherModel {
        saved: engine.manifest_digest().clone(),
        loaded: other.manifest_digest().clone(),
        retokenized: false,
    };
    assert_eq!(restored.recomputed, Some(expected));
    let mut chat = restored.chat;
    assert_eq!(
        chat_tokens(&chat),
        live.tokens,
        "the saved token ids are fed again"
    );
    assert_eq!(chat.messages(), live.chat.messages());

    let reply = send_greedy(&other, &mut chat, FOLLOW_UP);
    assert_eq!(
        reply, live.next_reply,
        "the recomputed session replies differently"
    );
    assert_eq!(chat_tokens(&chat), live.next_tokens);

    live.assert_untouched(engine);
}

/// Ten forks of a 1,000-token session, 50 tokens each, store little more than their new tokens.
#[test]
fn forks_share_parent_blocks() {
    const BASE_TOKENS: usize = 1000;
    const FORKS: usize = 10;
    const FORK_TOKENS: usize = 50;
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;

    let document = document_tokens(engine, BASE_TOKENS);
    let base_chat = chat_with(sequence_with(engine, &document), "Summarise the ledger.");
    let base = save_chat(&fixture, "ledger", &base_chat).snapshot;
    let mut snapshots = vec![base.clone()];
    let mut last_fork = None;
    for fork in 0..FORKS {
        let extra = fork_tokens(engine, fork, FORK_TOKENS);
        let chat = continue_from(store, engine, &base, &extra);
        let options = SaveOptions {
            parent: Some(&base),
            ..SaveOptions::default()
        };
        let fork_name = name(&format!("ledger-fork-{fork}"));
        let saved = save(store, &fork_name, engine, &chat, &greedy(8), &options).unwrap();
        assert_eq!(
            saved.blocks_reused,
            base.blocks.len(),
            "fork {fork} reuses every block"
        );
        assert_eq!(saved.snapshot.config.parent.as_ref(), Some(base.digest()));
        snapshots.push(saved.snapshot);
        last_fork = Some((fork_name, chat));
    }

    let mut distinct: BTreeMap<Digest, u64> = BTreeMap::new();
    for snapshot in &snapshots {
        for block in &snapshot.blocks {
            distinct.insert(block.descriptor.digest.clone(), block.descriptor.size);
        }
    }
    for digest in distinct.keys() {
        assert!(store.has_blob(digest), "block {digest} is stored");
    }
    let stored: u64 = distinct.values().sum();
    let per_token = base.config.kv.block_bytes(1).unwrap();
    let ideal = (BASE_TOKENS + FORKS * FORK_TOKENS) as u64 * per_token;
    let full_copies: u64 = snapshots[1..].iter().map(Snapshot::cache_bytes).sum();
    eprintln!(
        "forks: {} snapshots, {} distinct blocks, {stored} bytes stored; ideal {ideal} bytes \
         ({per_token} bytes per token), ratio {:.3}; {FORKS} full copies would take {full_copies}",
        snapshots.len(),
        distinct.len(),
        stored as f64 / ideal as f64,
    );
    assert!(
        stored * 10 <= ideal * 11,
        "{stored} bytes stored, ideal {ideal}"
    );
    assert!(
        stored * 5 < full_copies,
        "{stored} bytes is not far below {full_copies}"
    );

    // The last fork, read back through its parent's blocks, continues like the live one.
    let (fork_name, live_fork) = last_fork.unwrap();
    let snapshot = Snapshot::open(store, &fork_name).unwrap();
    let restored = restore(store, &snapshot, engine).unwrap();
    assert_eq!(chat_tokens(&restored.chat), chat_tokens(&live_fork));
    let restored_logits = probe_logits(engine, restored.chat);
    assert!(
        restored_logits == probe_logits(engine, live_fork),
        "fork logits differ"
    );
}

/// Saves a base session of two blocks, and a fork that reuses both and adds one.
fn base_and_fork(fixture: &Fixture) -> (Snapshot, Snapshot) {
    let Fixture { store, engine, .. } = fixture;
    let document = document_tokens(engine, 300);
    let chat = chat_with(sequence_with(engine, &document), "Read the ledger.");
    let base = save_chat(fixture, "base", &chat).snapshot;
    assert_eq!(base.blocks.len(), 2);

    let chat = continue_from(store, engine, &base, &fork_tokens(engine, 0, 40));
    let options = SaveOptions {
        parent: Some(&base),
        ..SaveOptions::default()
    };
    let fork = save(store, &name("fork"), engine, &chat, &greedy(8), &options).unwrap();
    assert_eq!((fork.blocks_reused, fork.blocks_written), (2, 1));
    (base, fork.snapshot)
}

fn block_digests(snapshots: &[&Snapshot]) -> Vec<Digest> {
    let blocks = snapshots.iter().flat_map(|snapshot| &snapshot.blocks);
    blocks
        .map(|block| block.descriptor.digest.clone())
        .collect()
}

/// `gc` keeps every blob a named snapshot or its parent uses, and removes the blocks once no
/// name reaches them.
#[test]
fn gc_keeps_blocks_snapshots_use() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let (base, fork) = base_and_fork(&fixture);
    let blocks = block_digests(&[&base, &fork]);
    let base_tokens = base.config.tokens.clone();
    let fork_tokens = fork.config.tokens.clone();

    let report = store.gc().unwrap();
    eprintln!("gc with both names: {report:?}");
    for digest in blocks.iter().chain([base.digest(), fork.digest()]) {
        assert!(store.has_blob(digest), "{digest} was removed");
    }
    assert_eq!(restored_tokens(store, engine, "base"), base_tokens);
    assert_eq!(restored_tokens(store, engine, "fork"), fork_tokens);

    // The fork's config names the base as its parent, which keeps the base's manifest alive.
    remove(store, &name("base")).unwrap();
    store.gc().unwrap();
    assert!(
        store.has_blob(base.digest()),
        "the parent manifest was removed"
    );
    assert_eq!(restored_tokens(store, engine, "fork"), fork_tokens);
    let error = Snapshot::open(store, &name("base")).unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }), "{error:?}");

    remove(store, &name("fork")).unwrap();
    let report = store.gc().unwrap();
    let block_bytes = base.cache_bytes() + fork.blocks[2].descriptor.size;
    assert!(report.bytes_freed >= block_bytes, "{report:?}");
    for digest in blocks.iter().chain([base.digest(), fork.digest()]) {
        assert!(!store.has_blob(digest), "{digest} was kept");
    }
    assert!(
        store.has_blob(engine.manifest_digest()),
        "the model was removed"
    );
    let fsck = store.fsck().unwrap();
    assert!(fsck.problems.is_empty(), "{:?}", fsck.problems);
}

/// `check_all` finds a truncated block, and the store's `fsck` a block with a flipped byte.
#[test]
fn damaged_blocks_are_reported() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let (base, fork) = base_and_fork(&fixture);
    assert!(check_all(store).unwrap().is_empty());
    assert!(store.fsck().unwrap().problems.is_empty());

    // The fork's own block, one byte short: only the fork is damaged.
    let path = block_path(store, &fork, 2);
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, &original[..original.len() - 1]).unwrap();
    let problems = check_all(store).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].name, name("fork"));
    assert!(
        matches!(problems[0].error, SessionError::BlockSize { index: 2, .. }),
        "{:?}",
        problems[0].error
    );
    std::fs::write(&path, &original).unwrap();
    assert!(check_all(store).unwrap().is_empty());

    // A shared block with one byte flipped keeps its size, so only hashing finds it.
    let digest = &base.blocks[0].descriptor.digest;
    let path = store.blob_path(digest);
    let original = std::fs::read(&path).unwrap();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    assert!(
        check_all(store).unwrap().is_empty(),
        "check_all does not hash blocks"
    );
    let problems = store.fsck().unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, FsckProblem::Corrupt { digest: d, .. } if d == digest)),
        "{problems:?}"
    );
    std::fs::write(&path, &original).unwrap();
    assert!(store.fsck().unwrap().problems.is_empty());
    assert_eq!(restored_tokens(store, engine, "fork"), fork.config.tokens);
}

/// Two threads restore one snapshot at once and get the same tokens and next logits as the
/// session that was saved.
#[test]
fn concurrent_restores_agree() {
    fn shared_between_threads<T: Sync>() {}
    shared_between_threads::<Engine>();
    shared_between_threads::<Store>();
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;

    let document = document_tokens(engine, 600);
    let chat = chat_with(sequence_with(engine, &document), "Read the ledger.");
    save_chat(&fixture, "shared", &chat);
    let live_logits = probe_logits(engine, chat);

    let barrier = Barrier::new(2);
    let results: Vec<(Vec<u32>, Vec<u32>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let snapshot = Snapshot::open(store, &name("shared")).unwrap();
                    let restored = restore(store, &snapshot, engine).unwrap();
                    let tokens = chat_tokens(&restored.chat);
                    (tokens, probe_logits(engine, restored.chat))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (tokens, logits) in &results {
        assert_eq!(*tokens, document, "a thread restored other tokens");
        assert!(*logits == live_logits, "a thread's next logits differ");
    }
}

/// A chat restored from a snapshot that was then removed and collected still saves: the gone
/// parent is neither reused nor recorded, so the new snapshot is complete on its own.
#[test]
fn save_after_parent_is_collected() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let mut chat = engine.new_chat(None);
    send_greedy(engine, &mut chat, QUESTION);
    let base = save_chat(&fixture, "base", &chat).snapshot;

    let mut restored = restore(store, &base, engine).unwrap().chat;
    remove(store, &name("base")).unwrap();
    store.gc().unwrap();
    assert!(
        !store.has_blob(base.digest()),
        "gc removed the untagged base"
    );
    send_greedy(engine, &mut restored, FOLLOW_UP);

    let options = SaveOptions {
        parent: Some(&base),
        ..SaveOptions::default()
    };
    let saved = save(
        store,
        &name("after"),
        engine,
        &restored,
        &greedy(8),
        &options,
    )
    .unwrap();
    assert_eq!(saved.snapshot.config.parent, None);
    assert_eq!(saved.blocks_reused, 0);
    assert!(check_all(store).unwrap().is_empty());
    assert!(store.fsck().unwrap().problems.is_empty());
    assert_eq!(
        restored_tokens(store, engine, "after"),
        chat_tokens(&restored)
    );
}

/// A save that expects the name to point to one state fails when another save moved it, and
/// the name keeps the other save's snapshot.
#[test]
fn save_expecting_a_state_detects_a_moved_name() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let mut chat = engine.new_chat(None);
    send_greedy(engine, &mut chat, QUESTION);
    let first = save_chat(&fixture, "shared", &chat).snapshot;
    send_greedy(engine, &mut chat, FOLLOW_UP);
    let second = save_chat(&fixture, "shared", &chat).snapshot;

    let options = SaveOptions {
        parent: Some(&first),
        replace: Replace::IfCurrent(Some(first.digest().clone())),
        ..SaveOptions::default()
    };
    let error = save(store, &name("shared"), engine, &chat, &greedy(8), &options).unwrap_err();
    assert!(matches!(error, SessionError::Moved { .. }), "{error}");
    assert!(error.to_string().contains("`shared`"), "{error}");
    let current = Snapshot::open(store, &name("shared")).unwrap();
    assert_eq!(current.digest(), second.digest());

    let fresh = SaveOptions {
        replace: Replace::IfCurrent(None),
        ..SaveOptions::default()
    };
    let error = save(store, &name("shared"), engine, &chat, &greedy(8), &fresh).unwrap_err();
    assert!(matches!(error, SessionError::Moved { .. }), "{error}");
    save(store, &name("other"), engine, &chat, &greedy(8), &fresh).unwrap();
}

/// A session whose block was truncated is recovered by recomputing its cache from the saved
/// token ids on the same model.
#[test]
fn recompute_recovers_a_damaged_session() {
    let Some(fixture) = fixture() else { return };
    let Fixture { store, engine, .. } = &fixture;
    let mut chat = engine.new_chat(None);
    send_greedy(engine, &mut chat, QUESTION);
    let snapshot = save_chat(&fixture, "damaged", &chat).snapshot;
    let path = block_path(store, &snapshot, 0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(restore(store, &snapshot, engine).is_err());

    let recovered = recompute(&snapshot, engine).unwrap();
    assert_eq!(recovered.recomputed, Some(Recompute::Requested));
    assert_eq!(chat_tokens(&recovered.chat), chat_tokens(&chat));
    // Recomputing feeds every token in one pass, where the live chat decoded its answer one
    // token at a time through other kernels, so the logits agree closely rather than bit for bit.
    let as_floats = |bits: Vec<u32>| bits.into_iter().map(f32::from_bits).collect::<Vec<_>>();
    let recovered = as_floats(probe_logits(engine, recovered.chat));
    let live = as_floats(probe_logits(engine, chat));
    assert_eq!(argmax(&recovered), argmax(&live));
    let worst = recovered
        .iter()
        .zip(&live)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1.0, "recomputed logits differ by {worst}");
}
