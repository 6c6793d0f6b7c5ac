//! Pins the collections part of docs/format.md to the constants of the code.

use strata_collections::media::{
    COLLECTION_ARTIFACT_TYPE, COLLECTION_CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE, PAYLOADS_MEDIA_TYPE,
    POINTS_ANNOTATION, SEGMENT_ANNOTATION, VECTORS_MEDIA_TYPE,
};
use strata_collections::{
    COUNT_OFFSET, DEFAULT_CONNECTIVITY, DEFAULT_EXPANSION_ADD, DEFAULT_SEGMENT_POINTS, DIM_OFFSET,
    HEADER_LEN, IDS_LEN_OFFSET, MAX_DIM, MAX_NAME_LEN, VECTORS_MAGIC, VECTORS_VERSION,
    VERSION_OFFSET,
};

fn format_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn format_doc_names_every_media_type() {
    let doc = format_doc();
    for name in [
        COLLECTION_ARTIFACT_TYPE,
        COLLECTION_CONFIG_MEDIA_TYPE,
        VECTORS_MEDIA_TYPE,
        PAYLOADS_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        SEGMENT_ANNOTATION,
        POINTS_ANNOTATION,
    ] {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/format.md lacks {name}"
        );
    }
}

#[test]
fn format_doc_matches_vectors_header() {
    let doc = format_doc();
    let magic = std::str::from_utf8(&VECTORS_MAGIC).unwrap();
    assert!(doc.contains(&format!("| 0 | 8 | magic `{magic}` |")));
    let rows = [
        format!("| {VERSION_OFFSET} | 4 | format version, `{VECTORS_VERSION}` (u32) |"),
        format!("| {DIM_OFFSET} | 4 | `dim` (u32) |"),
        format!("| {COUNT_OFFSET} | 4 | `count`, points in the segment (u32) |"),
        format!("| {IDS_LEN_OFFSET} | 4 | `ids_len`, bytes of the id section (u32) |"),
        format!("| {HEADER_LEN} | 8 × count | index key of each point (u64) |"),
    ];
    for row in rows {
        assert!(doc.contains(&row), "docs/format.md lacks the row {row}");
    }
}

#[test]
fn format_doc_matches_defaults() {
    let doc = format_doc();
    assert!(doc.contains(&format!(
        "({DEFAULT_SEGMENT_POINTS} unless set at creation)"
    )));
    assert!(doc.contains(&format!(
        "({DEFAULT_CONNECTIVITY} and {DEFAULT_EXPANSION_ADD} by default)"
    )));
    assert!(doc.contains(&format!("values per vector, 1 to {MAX_DIM}")));
    assert!(doc.contains(&format!("1 to {MAX_NAME_LEN} characters")));
}
