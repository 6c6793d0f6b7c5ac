//! Pins the "Model versions" part of `docs/format.md` to the code: every media type, annotation
//! key and dtype name it documents must be the one the crate writes.

use strata_model::dtype::ALL;
use strata_model::media;

#[test]
fn format_doc_names_model_constants() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    let doc = std::fs::read_to_string(path).expect("read docs/format.md");
    let model_part = doc
        .split_once("\n# Model versions\n")
        .expect("docs/format.md has a `# Model versions` section")
        .1;
    let mut expected = vec![
        media::MODEL_ARTIFACT_TYPE,
        media::MODEL_CONFIG_MEDIA_TYPE,
        media::WEIGHT_MEDIA_TYPE,
        media::TOKENIZER_MEDIA_TYPE,
        media::CHAT_TEMPLATE_MEDIA_TYPE,
        media::TENSOR_NAME,
        media::TENSOR_DTYPE,
        media::TENSOR_SHAPE,
    ];
    expected.extend(ALL.iter().map(|dtype| dtype.name()));
    for text in expected {
        assert!(
            model_part.contains(&format!("`{text}`")),
            "the model part of docs/format.md does not mention `{text}`"
        );
    }
}

#[test]
fn format_doc_states_reader_limits() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    let text = std::fs::read_to_string(path).expect("read docs/format.md");
    // Lines wrap anywhere, so compare with every run of whitespace made one space.
    let doc = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let header_limit = strata_model::hf::MAX_HEADER_BYTES
        .to_string()
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|digits| std::str::from_utf8(digits).unwrap())
        .collect::<Vec<_>>()
        .join(",");
    let expected = [
        format!("{header_limit}-byte limit"),
        format!("at most {} dimensions", strata_model::gguf::MAX_DIMS),
        format!(
            "`general.alignment`, default {}",
            strata_model::gguf::DEFAULT_ALIGNMENT
        ),
    ];
    for text in expected {
        assert!(
            doc.contains(&text),
            "docs/format.md does not state {text:?}"
        );
    }
}
