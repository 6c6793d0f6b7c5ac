//! Collection names and the store tags they map to.
//!
//! A collection `NAME` is tagged `collection/NAME:latest`, so its name becomes part of an OCI
//! repository name (which is lowercase) and of a file name under `collections/`. The name is
//! therefore checked against both rules before it is used anywhere.

use std::fmt;

use strata_store::Reference;

use crate::error::{CollectionError, Result};

/// Repository prefix of every collection tag, which keeps collections apart from models and
/// sessions.
pub const TAG_PREFIX: &str = "collection/";

/// Tag every collection name points through.
const TAG: &str = "latest";

/// Maximum length of a collection name, in bytes. It leaves room for the `collection.` prefix of
/// the lock name, which the store caps at 128 bytes.
pub const MAX_NAME_LEN: usize = 100;

/// A checked collection name: lowercase letters and digits, separated by `.`, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionName(String);

impl CollectionName {
    /// Checks `name` and wraps it.
    pub fn parse(name: &str) -> Result<CollectionName> {
        let invalid = |reason: String| CollectionError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty".to_string()));
        }
        if name.len() > MAX_NAME_LEN {
            let reason = format!("it has {} bytes, more than {MAX_NAME_LEN}", name.len());
            return Err(invalid(reason));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
            return Err(invalid(format!("`{bad}` is not allowed")));
        }
        if name.contains("..") {
            return Err(invalid("`..` is not allowed".to_string()));
        }
        if let Some(upper) = name.chars().find(char::is_ascii_uppercase) {
            let reason = format!("`{upper}` is uppercase, and OCI repository names are lowercase");
            return Err(invalid(reason));
        }
        let edges = [name.chars().next(), name.chars().last()];
        if edges.iter().flatten().any(|c| !c.is_ascii_alphanumeric()) {
            let reason = "it must start and end with a letter or digit".to_string();
            return Err(invalid(reason));
        }
        if Reference::tagged(&format!("{TAG_PREFIX}{name}"), TAG).is_err() {
            let reason = "separators must not repeat, except `__` and dashes".to_string();
            return Err(invalid(reason));
        }
        Ok(CollectionName(name.to_string()))
    }

    /// Returns the name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the store tag of the collection, `collection/NAME:latest`.
    pub fn reference(&self) -> Reference {
        Reference::tagged(&format!("{TAG_PREFIX}{}", self.0), TAG)
            .expect("checked when the name was parsed")
    }

    /// Returns the collection name of a store tag, when it is a collection tag.
    pub fn from_reference(reference: &Reference) -> Option<CollectionName> {
        if reference.tag() != Some(TAG) {
            return None;
        }
        let name = reference.name.strip_prefix(TAG_PREFIX)?;
        CollectionName::parse(name).ok()
    }

    /// Returns the name of the store lock that orders every operation on this collection.
    pub(crate) fn lock_name(&self) -> String {
        format!("collection.{}", self.0)
    }

    /// Returns the file name of the payload database, `NAME.redb`.
    pub(crate) fn db_file_name(&self) -> String {
        format!("{}.redb", self.0)
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_collection_tags() {
        let name = CollectionName::parse("docs-v2.en").unwrap();
        assert_eq!(name.reference().to_string(), "collection/docs-v2.en:latest");
        assert_eq!(
            CollectionName::from_reference(&name.reference()),
            Some(name)
        );
    }

    #[test]
    fn bad_names_say_why() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for (name, reason) in [
            ("", "empty"),
            ("a/b", "`/` is not allowed"),
            ("..", "`..` is not allowed"),
            ("a..b", "`..` is not allowed"),
            ("docs!", "`!` is not allowed"),
            ("do cs", "` ` is not allowed"),
            ("Docs", "`D` is uppercase"),
            ("-docs", "start and end"),
            ("docs.", "start and end"),
            ("a._b", "separators"),
            (long.as_str(), "more than 100"),
        ] {
            let error = CollectionName::parse(name).unwrap_err().to_string();
            assert!(error.contains(reason), "{name}: {error}");
            assert!(error.contains(&format!("`{name}`")), "{error}");
        }
    }

    #[test]
    fn other_tags_are_not_collections() {
        for text in [
            "smollm2:latest",
            "session/notes:latest",
            "collection/docs:v1",
        ] {
            let reference = Reference::parse(text).unwrap();
            assert_eq!(CollectionName::from_reference(&reference), None, "{text}");
        }
    }
}
