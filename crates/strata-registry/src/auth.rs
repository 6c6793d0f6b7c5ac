//! Credentials for a registry and the bearer-token exchange.
//!
//! Credentials come from `STRATA_REGISTRY_USERNAME` and `STRATA_REGISTRY_PASSWORD`, else from
//! Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), whose
//! `auths` entry for the registry contains `base64(user:password)` or `username` and `password`.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{RegistryError, Result};

/// A user name and password (or token) for basic auth and token requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"…")
            .finish()
    }
}

impl Credentials {
    /// Returns the `Authorization` value for basic auth.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Finds credentials for `registry` (`HOST[:PORT]`), or `None` to go anonymous.
pub fn credentials_for(registry: &str) -> Result<Option<Credentials>> {
    if let (Ok(username), Ok(password)) = (
        std::env::var("STRATA_REGISTRY_USERNAME"),
        std::env::var("STRATA_REGISTRY_PASSWORD"),
    ) {
        return Ok(Some(Credentials { username, password }));
    }
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            let context = format!("cannot read {}", path.display());
            return Err(RegistryError::Io { context, source });
        }
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|error| {
        RegistryError::Invalid(format!(
            "{} is not a Docker config: {error}",
            path.display()
        ))
    })?;
    let entry = config.auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key.trim_end_matches('/') == registry
    });
    let Some((_, auth)) = entry else {
        return Ok(None);
    };
    decode_entry(auth, &path)
}

fn decode_entry(auth: &DockerAuth, path: &std::path::Path) -> Result<Option<Credentials>> {
    if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }));
    }
    let Some(encoded) = &auth.auth else {
        return Ok(None);
    };
    let invalid = || {
        RegistryError::Invalid(format!(
            "an `auth` entry in {} is not base64 of USER:PASSWORD",
            path.display()
        ))
    };
    let decoded = STANDARD.decode(encoded).map_err(|_| invalid())?;
    let pair = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (username, password) = pair.split_once(':').ok_or_else(invalid)?;
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    }))
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter, when given.
        service: Option<String>,
        /// `scope` parameter, when given.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let (mut service, mut scope) = (None, None);
    for (key, value) in challenge_params(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// Splits `key="value",key2="value, with comma"` into pairs.
fn challenge_params(params: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        pairs.push((key, value.to_owned()));
        rest = remaining.trim_start_matches(',').trim();
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_keeps_commas_inside_quotes() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".to_owned(),
                service: Some("registry.example".to_owned()),
                scope: Some("repository:a/b:pull,push".to_owned()),
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_auth_entries_decode() {
        let path = std::path::Path::new("config.json");
        let entry = DockerAuth {
            auth: Some(STANDARD.encode("ada:s3cret:x")),
            username: None,
            password: None,
        };
        let credentials = decode_entry(&entry, path).unwrap().unwrap();
        assert_eq!(credentials.username, "ada");
        assert_eq!(credentials.password, "s3cret:x");
        let broken = DockerAuth {
            auth: Some("!!".to_owned()),
            username: None,
            password: None,
        };
        assert!(decode_entry(&broken, path).is_err());
    }
}
