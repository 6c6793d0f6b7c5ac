//! Model references: `NAME`, `NAME:TAG` and `NAME@sha256:<hex>`.
//!
//! Names and tags follow the OCI distribution specification's grammar, so every reference strata
//! accepts is also one a registry and `skopeo` accept. A name has no registry host part: the store
//! is local, and a `:` in a reference always starts the tag.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::StoreError;

/// Tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// Maximum length of a name, in bytes (OCI distribution specification).
pub const MAX_NAME_LEN: usize = 255;

/// Maximum length of a tag, in bytes (OCI distribution specification).
pub const MAX_TAG_LEN: usize = 128;

const NAME_RULE: &str = "a name is lowercase path components separated by `/`, each matching \
                         [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*, at most 255 characters in all";

const TAG_RULE: &str = "a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";

/// A model name with the tag or digest that selects one version of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// Repository name, for example `smollm2` or `team/llama-3.2`.
    pub name: String,
    /// The tag or the manifest digest.
    pub target: RefTarget,
}

/// Tag or digest that selects one manifest of a name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefTarget {
    /// A tag, moved by `set_tag`.
    Tag(String),
    /// A manifest digest, which never changes.
    Digest(Digest),
}

impl Reference {
    /// Parses `NAME` (tag `latest`), `NAME:TAG` or `NAME@sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Reference, StoreError> {
        let reject = |reason: String| StoreError::InvalidReference {
            value: s.to_string(),
            reason,
        };
        if let Some((name, digest)) = s.split_once('@') {
            if name.contains(':') {
                return Err(reject("expected a tag or a digest, not both".to_string()));
            }
            check_name(name).map_err(reject)?;
            let digest = Digest::parse(digest).map_err(|error| reject(error.to_string()))?;
            return Ok(Reference {
                name: name.to_string(),
                target: RefTarget::Digest(digest),
            });
        }
        let (name, tag) = s.split_once(':').unwrap_or((s, DEFAULT_TAG));
        check_name(name).map_err(reject)?;
        check_tag(tag).map_err(reject)?;
        Ok(Reference {
            name: name.to_string(),
            target: RefTarget::Tag(tag.to_string()),
        })
    }

    /// Builds `name:tag`, checking both parts.
    pub fn tagged(name: &str, tag: &str) -> Result<Reference, StoreError> {
        let reject = |reason: String| StoreError::InvalidReference {
            value: format!("{name}:{tag}"),
            reason,
        };
        check_name(name).map_err(reject)?;
        check_tag(tag).map_err(reject)?;
        Ok(Reference {
            name: name.to_string(),
            target: RefTarget::Tag(tag.to_string()),
        })
    }

    /// Builds `name@digest`, checking the name.
    pub fn digested(name: &str, digest: Digest) -> Result<Reference, StoreError> {
        check_name(name).map_err(|reason| StoreError::InvalidReference {
            value: format!("{name}@{digest}"),
            reason,
        })?;
        Ok(Reference {
            name: name.to_string(),
            target: RefTarget::Digest(digest),
        })
    }

    /// Returns the tag, or `None` for a digest reference.
    pub fn tag(&self) -> Option<&str> {
        match &self.target {
            RefTarget::Tag(tag) => Some(tag),
            RefTarget::Digest(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            RefTarget::Tag(tag) => write!(f, "{}:{tag}", self.name),
            RefTarget::Digest(digest) => write!(f, "{}@{digest}", self.name),
        }
    }
}

impl FromStr for Reference {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Reference, StoreError> {
        Reference::parse(s)
    }
}

/// Checks `name` against the OCI distribution name grammar.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the name is empty; {NAME_RULE}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name has {} characters; {NAME_RULE}",
            name.len()
        ));
    }
    for component in name.split('/') {
        check_component(component).map_err(|problem| format!("{problem}; {NAME_RULE}"))?;
    }
    Ok(())
}

/// Checks one `/`-separated part of a name: runs of `[a-z0-9]` joined by `.`, `_`, `__` or `-+`.
fn check_component(component: &str) -> Result<(), String> {
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if component.is_empty() {
        return Err("a path component is empty".to_string());
    }
    if !component.starts_with(is_alnum) || !component.ends_with(is_alnum) {
        return Err(format!(
            "path component `{component}` must start and end with [a-z0-9]"
        ));
    }
    for separator in component.split(is_alnum).filter(|run| !run.is_empty()) {
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(dashes || matches!(separator, "." | "_" | "__")) {
            return Err(format!(
                "path component `{component}` contains `{separator}`"
            ));
        }
    }
    Ok(())
}

/// Checks `tag` against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if !tag.starts_with(is_word) {
        return Err(format!(
            "tag `{tag}` must start with [a-zA-Z0-9_]; {TAG_RULE}"
        ));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("tag has {} characters; {TAG_RULE}", tag.len()));
    }
    if let Some(bad) = tag.chars().find(|&c| !(is_word(c) || c == '.' || c == '-')) {
        return Err(format!("tag `{tag}` contains `{bad}`; {TAG_RULE}"));
    }
    Ok(())
}
