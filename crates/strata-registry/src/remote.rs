//! `oci://HOST[:PORT]/REPO[:TAG]` and `oci://HOST[:PORT]/REPO@sha256:…` references.

use std::fmt;

use strata_store::Digest;

use crate::error::{RegistryError, Result};

/// A manifest in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// `HOST` or `HOST:PORT`.
    pub registry: String,
    /// Repository path, such as `team/smollm2`.
    pub repository: String,
    /// Tag or digest.
    pub target: RemoteTarget,
}

/// The tag or digest a [`RemoteRef`] points at inside its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteTarget {
    /// A tag (`latest` when none is given).
    Tag(String),
    /// A manifest digest.
    Digest(Digest),
}

impl RemoteRef {
    /// Parses `oci://HOST[:PORT]/REPO[:TAG]` or `oci://HOST[:PORT]/REPO@sha256:…`.
    pub fn parse(text: &str) -> Result<RemoteRef> {
        let reject = |reason: &str| RegistryError::InvalidReference {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text.strip_prefix("oci://").ok_or_else(|| {
            reject("it must start with oci://, as in oci://localhost:5000/smollm2:latest")
        })?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| reject("it needs a repository after the host, as in oci://HOST/REPO"))?;
        check_registry(registry).map_err(|reason| reject(&reason))?;

        let (repository, target) = if let Some((repository, digest)) = path.split_once('@') {
            let digest = Digest::parse(digest).map_err(|error| reject(&error.to_string()))?;
            (repository, RemoteTarget::Digest(digest))
        } else {
            match path.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => {
                    check_tag(tag).map_err(|reason| reject(&reason))?;
                    (repository, RemoteTarget::Tag(tag.to_owned()))
                }
                _ => (path, RemoteTarget::Tag("latest".to_owned())),
            }
        };
        check_repository(repository).map_err(|reason| reject(&reason))?;
        Ok(RemoteRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            target,
        })
    }

    /// Returns the tag or digest as the distribution API takes it in a manifest URL.
    pub fn reference(&self) -> &str {
        match &self.target {
            RemoteTarget::Tag(tag) => tag,
            RemoteTarget::Digest(digest) => digest.as_str(),
        }
    }

    /// Returns the same repository at `digest`.
    pub fn at_digest(&self, digest: &Digest) -> RemoteRef {
        RemoteRef {
            target: RemoteTarget::Digest(digest.clone()),
            ..self.clone()
        }
    }
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            RemoteTarget::Tag(tag) => {
                write!(f, "oci://{}/{}:{tag}", self.registry, self.repository)
            }
            RemoteTarget::Digest(digest) => {
                write!(f, "oci://{}/{}@{digest}", self.registry, self.repository)
            }
        }
    }
}

fn check_registry(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !host_ok {
        return Err(format!("`{registry}` is not a host name"));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |port| port == 0)
    {
        return Err(format!("`{port}` is not a port number"));
    }
    Ok(())
}

/// Repository paths: lowercase components of `[a-z0-9]` joined by `.`, `_`, `__` or `-`, as the
/// distribution spec defines them, which also rules out `..` and absolute paths.
fn check_repository(repository: &str) -> std::result::Result<(), String> {
    let valid_component = |component: &str| {
        !component.is_empty()
            && component
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric()
            && !component.contains("..")
    };
    if repository.len() > 255 || !repository.split('/').all(valid_component) {
        return Err(format!(
            "repository `{repository}` must be lowercase letters and digits, separated by `.`, `_`, `-` or `/`"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must be up to 128 letters, digits, `_`, `.` or `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_repository_and_tag() {
        let remote = RemoteRef::parse("oci://localhost:5000/team/smollm2:v1").unwrap();
        assert_eq!(remote.registry, "localhost:5000");
        assert_eq!(remote.repository, "team/smollm2");
        assert_eq!(remote.reference(), "v1");
        assert_eq!(remote.to_string(), "oci://localhost:5000/team/smollm2:v1");
    }

    #[test]
    fn tag_defaults_to_latest() {
        let remote = RemoteRef::parse("oci://127.0.0.1:5000/smollm2").unwrap();
        assert_eq!(remote.reference(), "latest");
    }

    #[test]
    fn rejects_unsafe_and_malformed_references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for bad in [
            "localhost:5000/smollm2".to_owned(),
            "oci://localhost:5000".to_owned(),
            "oci://localhost:5000/../escape".to_owned(),
            "oci://localhost:5000//abs".to_owned(),
            "oci://localhost:5000/UPPER".to_owned(),
            "oci://localhost:99999/repo".to_owned(),
            "oci://localhost:5000/repo:bad/tag".to_owned(),
            "oci://localhost:5000/repo@sha256:45640291".to_owned(),
            format!(
                "oci://localhost:5000/repo@{}",
                digest.to_uppercase().replace("SHA256", "sha256")
            ),
        ] {
            assert!(RemoteRef::parse(&bad).is_err(), "{bad} was accepted");
        }
        assert!(RemoteRef::parse(&format!("oci://localhost:5000/repo@{digest}")).is_ok());
    }
}
