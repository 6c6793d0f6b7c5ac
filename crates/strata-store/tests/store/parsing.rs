//! Digest and reference parsing: strict enough that no text from a manifest, a command line or a
//! registry can become a path outside `blobs/sha256/`.

use strata_store::{Digest, DigestWriter, Manifest, RefTarget, Reference, StoreError};

use crate::common::{self, temp_store};

const HEX: &str = "45640291b1bd5c0b0b8e67a7e9ac10b7ee6ea7e1e0fe2f1dcb1d04a3c2ff4c1e";

/// Text that must never parse as a digest, with why.
fn bad_digests() -> Vec<(String, &'static str)> {
    vec![
        (
            "sha256-45640291".to_string(),
            "wrong separator and too short",
        ),
        (format!("sha256:{HEX}0123456789"), "64 hex plus 10 more"),
        (format!("../sha256-{}", &HEX[..61]), "path traversal prefix"),
        (format!("sha256:{}", HEX.to_uppercase()), "uppercase hex"),
        ("sha256:../../escape".to_string(), "path traversal"),
        (format!("sha512:{HEX}"), "other algorithm"),
        (format!("sha256:{}", &HEX[..63]), "63 hex"),
        (format!("sha256:{}g", &HEX[..63]), "non-hex character"),
        (String::new(), "empty"),
    ]
}

#[test]
fn valid_digest_parses() {
    let text = format!("sha256:{HEX}");

    let digest = Digest::parse(&text).unwrap();

    assert_eq!(digest.as_str(), text);
    assert_eq!(digest.hex(), HEX);
    assert_eq!(digest.short(), &HEX[..12]);
    assert_eq!(digest.to_string(), text);
    assert_eq!(text.parse::<Digest>().unwrap(), digest);
}

#[test]
fn uppercase_digest_is_rejected() {
    let text = format!("sha256:{}", HEX.to_uppercase());

    let error = Digest::parse(&text).unwrap_err();

    assert!(matches!(error, StoreError::InvalidDigest { .. }));
    assert!(error.to_string().contains(&text), "{error}");
    assert!(error.to_string().contains("lowercase"), "{error}");
}

#[test]
fn bad_digests_are_rejected_without_touching_store() {
    let (_dir, store) = temp_store();
    common::save_tagged(&store, "m:v", &[b"layer"]);
    let before = common::listing(store.root());

    for (text, why) in bad_digests() {
        let error = Digest::parse(&text).expect_err(why);
        assert!(
            error.to_string().contains(&format!("`{text}`")),
            "{why}: {error}"
        );
        assert!(error.to_string().contains("expected"), "{why}: {error}");

        let as_json = serde_json::to_string(&text).unwrap();
        assert!(
            serde_json::from_str::<Digest>(&as_json).is_err(),
            "{why}: deserialized"
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"a/b","digest":{as_json},"size":1}},"layers":[]}}"#
        );
        assert!(
            serde_json::from_str::<Manifest>(&manifest).is_err(),
            "{why}: manifest parsed"
        );
        assert!(
            Reference::parse(&format!("m@{text}")).is_err(),
            "{why}: reference parsed"
        );
    }

    assert_eq!(common::listing(store.root()), before);
}

#[test]
fn digest_writer_matches_digest_of() {
    let mut writer = DigestWriter::new();
    std::io::Write::write_all(&mut writer, b"hello ").unwrap();
    std::io::Write::write_all(&mut writer, b"world").unwrap();

    assert_eq!(writer.len(), 11);
    assert_eq!(writer.finalize(), Digest::of(b"hello world"));
    assert_eq!(
        Digest::of(b"").as_str(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn good_references_parse() {
    let digest = format!("sha256:{HEX}");
    let long_name = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    let long_tag = format!("_{}", "x".repeat(127));
    let cases: Vec<(String, &str, RefTarget)> = vec![
        ("smollm2".into(), "smollm2", RefTarget::Tag("latest".into())),
        (
            "smollm2:latest".into(),
            "smollm2",
            RefTarget::Tag("latest".into()),
        ),
        (
            "team/llama-3.2:Q4_1".into(),
            "team/llama-3.2",
            RefTarget::Tag("Q4_1".into()),
        ),
        (
            "a__b:v1.0-rc".into(),
            "a__b",
            RefTarget::Tag("v1.0-rc".into()),
        ),
        (
            "a---b.c_d".into(),
            "a---b.c_d",
            RefTarget::Tag("latest".into()),
        ),
        ("0:0".into(), "0", RefTarget::Tag("0".into())),
        (
            format!("m@{digest}"),
            "m",
            RefTarget::Digest(Digest::parse(&digest).unwrap()),
        ),
        (
            format!("{long_name}:{long_tag}"),
            &long_name,
            RefTarget::Tag(long_tag.clone()),
        ),
    ];

    for (text, name, target) in cases {
        let parsed = Reference::parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(parsed.name, name, "{text}");
        assert_eq!(parsed.target, target, "{text}");
        let displayed = parsed.to_string();
        assert_eq!(
            Reference::parse(&displayed).unwrap(),
            parsed,
            "{text} displayed as {displayed}"
        );
    }
}

#[test]
fn bad_references_are_rejected() {
    let digest = format!("sha256:{HEX}");
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("Smollm2".into(), "uppercase name"),
        ("smol LM".into(), "space"),
        ("m:".into(), "empty tag"),
        (":v1".into(), "empty name"),
        ("m:-v1".into(), "tag starting with a dash"),
        ("m:.v1".into(), "tag starting with a dot"),
        ("m:v1:v2".into(), "two tags"),
        ("m:v/1".into(), "slash in tag"),
        (format!("m:{}", "x".repeat(129)), "tag of 129 characters"),
        (format!("{}:v", "a".repeat(256)), "name of 256 characters"),
        ("a/".into(), "trailing slash"),
        ("/a".into(), "leading slash"),
        ("a//b".into(), "empty component"),
        ("a..b".into(), "double dot"),
        ("a._b".into(), "mixed separator"),
        ("a___b".into(), "three underscores"),
        ("-a".into(), "leading dash"),
        ("a-".into(), "trailing dash"),
        ("../a".into(), "path traversal"),
        (format!("m:v@{digest}"), "tag and digest"),
        ("m@sha256:abc".into(), "short digest"),
    ];

    for (text, why) in cases {
        let error = Reference::parse(&text).expect_err(why);
        assert!(
            matches!(error, StoreError::InvalidReference { .. }),
            "{why}: {error}"
        );
        assert!(
            error.to_string().contains(&format!("`{text}`")),
            "{why}: {error}"
        );
    }
}

#[test]
fn tagged_checks_both_parts() {
    assert_eq!(Reference::tagged("m", "v1").unwrap().to_string(), "m:v1");
    assert!(Reference::tagged("M", "v1").is_err());
    assert!(Reference::tagged("m", "v 1").is_err());
    assert!(Reference::tagged("m", "").is_err());
}
