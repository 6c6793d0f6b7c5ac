//! Pins the "Session snapshots" part of `docs/format.md` to the code: media types, annotation
//! keys, the tag prefix, the default block size and the bytes per position it states.

use strata_runtime::model::{BlockDtype, CacheLayout, block_len};
use strata_sessions::{DEFAULT_BLOCK_TOKENS, TAG_PREFIX, media};

fn session_part() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    let doc = std::fs::read_to_string(path).expect("read docs/format.md");
    let (_, part) = doc
        .split_once("\n# Session snapshots\n")
        .expect("docs/format.md has a `# Session snapshots` section");
    part.to_string()
}

#[test]
fn format_doc_names_session_constants() {
    let part = session_part();
    for text in [
        media::SNAPSHOT_ARTIFACT_TYPE,
        media::SNAPSHOT_CONFIG_MEDIA_TYPE,
        media::KV_BLOCK_MEDIA_TYPE,
        media::BLOCK_START_ANNOTATION,
        media::BLOCK_TOKENS_ANNOTATION,
    ] {
        assert!(
            part.contains(&format!("`{text}`")),
            "the session part does not mention `{text}`"
        );
    }
    assert!(part.contains(&format!("`{TAG_PREFIX}NAME:latest`")));
    assert!(part.contains(&format!("({DEFAULT_BLOCK_TOKENS} by default)")));
}

#[test]
fn format_doc_states_smollm2_block_sizes() {
    let layout = CacheLayout {
        dtype: candle_core::DType::F32,
        num_layers: 30,
        num_kv_heads: 3,
        head_dim: 64,
        max_positions: 8192,
        precision: BlockDtype::F16,
    };
    let part = session_part();
    for (dtype, words) in [(BlockDtype::F16, "in f16"), (BlockDtype::F32, "in f32")] {
        let bytes = block_len(&layout, 1, dtype);
        let grouped = format!("{},{:03}", bytes / 1000, bytes % 1000);
        let stated = format!("{grouped} bytes per position {words}");
        let stated_short = format!("{grouped} {words}");
        assert!(
            part.contains(&stated) || part.contains(&stated_short),
            "the session part does not state {stated:?}"
        );
    }
}
