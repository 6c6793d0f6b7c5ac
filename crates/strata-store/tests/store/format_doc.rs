//! Pins `docs/format.md` to the code: every name and constant it documents must be the one the
//! store uses.

use strata_store::{
    BLOBS_DIR, GC_LOCK, INDEX_FILE, INDEX_LOCK, INDEX_MEDIA_TYPE, LAYOUT_FILE, LAYOUT_VERSION,
    LOCKS_DIR, MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION, TMP_DIR,
};

#[test]
fn format_doc_names_store_constants() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    let doc = std::fs::read_to_string(path).expect("read docs/format.md");
    let layout_json = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
    let expected = [
        "# strata store format".to_string(),
        MANIFEST_MEDIA_TYPE.to_string(),
        INDEX_MEDIA_TYPE.to_string(),
        REF_NAME_ANNOTATION.to_string(),
        layout_json,
        format!("`{LAYOUT_FILE}`"),
        format!("`{INDEX_FILE}`"),
        format!("`{BLOBS_DIR}/"),
        format!("`{TMP_DIR}/"),
        format!("`{LOCKS_DIR}/{GC_LOCK}`"),
        format!("`{LOCKS_DIR}/{INDEX_LOCK}`"),
    ];

    for text in expected {
        assert!(
            doc.contains(&text),
            "docs/format.md does not mention {text}"
        );
    }
}
