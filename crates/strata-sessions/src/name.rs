//! Session names and the store tags they map to.

use std::fmt;

use strata_store::{Digest, Reference};

use crate::error::{Result, SessionError};

/// Repository prefix of every snapshot tag, which keeps sessions apart from models.
pub const TAG_PREFIX: &str = "session/";

/// Tag every snapshot name points through.
const TAG: &str = "latest";

/// A checked session name: lowercase letters and digits, separated by `.`, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionName(String);

impl SessionName {
    /// Checks `name` and wraps it.
    pub fn parse(name: &str) -> Result<SessionName> {
        let invalid = |reason: &str| SessionError::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > 128 {
            return Err(invalid("it is longer than 128 characters"));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
            return Err(invalid(&format!("`{bad}` is not allowed")));
        }
        let edges = [name.chars().next(), name.chars().last()];
        if edges.iter().flatten().any(|c| !c.is_ascii_alphanumeric()) {
            return Err(invalid("it must start and end with a letter or digit"));
        }
        let reference = Reference::tagged(&format!("{TAG_PREFIX}{name}"), TAG);
        reference.map_err(|_| invalid("separators must not repeat, except `__` and dashes"))?;
        Ok(SessionName(name.to_string()))
    }

    /// Returns the name as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the store tag this name points through, `session/NAME:latest`.
    pub fn reference(&self) -> Reference {
        Reference::tagged(&format!("{TAG_PREFIX}{}", self.0), TAG)
            .expect("checked when the name was parsed")
    }

    /// Returns the session name of a store tag, when it is a snapshot tag.
    pub fn from_reference(reference: &Reference) -> Option<SessionName> {
        let name = reference.name.strip_prefix(TAG_PREFIX)?;
        SessionName::parse(name).ok()
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A snapshot named by its session name, or by its manifest digest (an older state that only a
/// later snapshot's `parent` still names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotRef {
    /// The snapshot a session name points to.
    Name(SessionName),
    /// A snapshot manifest by digest.
    Digest(Digest),
}

impl SnapshotRef {
    /// Parses `sha256:<hex>` as a digest and anything else as a session name.
    pub fn parse(text: &str) -> Result<SnapshotRef> {
        if text.starts_with("sha256:") {
            let digest = Digest::parse(text).map_err(|error| SessionError::InvalidName {
                name: text.to_string(),
                reason: error.to_string(),
            })?;
            return Ok(SnapshotRef::Digest(digest));
        }
        Ok(SnapshotRef::Name(SessionName::parse(text)?))
    }

    /// Returns the session name, when the reference is one.
    pub fn name(&self) -> Option<&SessionName> {
        match self {
            SnapshotRef::Name(name) => Some(name),
            SnapshotRef::Digest(_) => None,
        }
    }
}

impl fmt::Display for SnapshotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotRef::Name(name) => name.fmt(f),
            SnapshotRef::Digest(digest) => digest.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_map_to_session_tags() {
        let name = SessionName::parse("work-notes.2").unwrap();
        assert_eq!(name.reference().to_string(), "session/work-notes.2:latest");
        assert_eq!(SessionName::from_reference(&name.reference()), Some(name));
    }

    #[test]
    fn bad_names_say_why() {
        for (name, reason) in [
            ("", "empty"),
            ("Secret", "`S` is not allowed"),
            ("a/b", "`/` is not allowed"),
            ("../x", "`/` is not allowed"),
            ("-x", "start and end"),
            ("a..b", "separators"),
        ] {
            let error = SessionName::parse(name).unwrap_err().to_string();
            assert!(error.contains(reason), "{name}: {error}");
            assert!(error.contains(&format!("`{name}`")), "{error}");
        }
    }

    #[test]
    fn digests_name_snapshots_too() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let parsed = SnapshotRef::parse(&digest).unwrap();
        assert_eq!(parsed.to_string(), digest);
        assert_eq!(parsed.name(), None);
        let error = SnapshotRef::parse("sha256:abc").unwrap_err().to_string();
        assert!(error.contains("sha256:abc"), "{error}");
        assert!(SnapshotRef::parse("notes").unwrap().name().is_some());
    }

    #[test]
    fn model_tags_are_not_sessions() {
        let model = Reference::parse("smollm2:latest").unwrap();
        assert_eq!(SessionName::from_reference(&model), None);
    }
}
