//! Content digests: `sha256:` followed by 64 lowercase hex characters.
//!
//! A [`Digest`] can only be built by hashing bytes or by [`Digest::parse`], which accepts nothing
//! but that exact shape. The hex part becomes a file name under `blobs/sha256/`, so the strict
//! check is what keeps text such as `sha256:../../x` from ever turning into a path.

use std::fmt::{self, Write as _};
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// The only digest algorithm the store writes and reads.
pub const ALGORITHM: &str = "sha256";

/// Number of hex characters in a sha256 digest.
pub const HEX_LEN: usize = 64;

/// Number of hex characters [`Digest::short`] returns.
pub const SHORT_LEN: usize = 12;

const PREFIX: &str = "sha256:";

/// A validated sha256 content digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`, rejecting every other algorithm, length and character.
    pub fn parse(s: &str) -> Result<Digest, StoreError> {
        let reject = |expected: String| StoreError::InvalidDigest {
            value: s.to_string(),
            expected,
        };
        let Some(hex) = s.strip_prefix(PREFIX) else {
            return Err(reject(format!("the algorithm prefix `{PREFIX}`")));
        };
        if hex.len() != HEX_LEN {
            let found = hex.len();
            return Err(reject(format!(
                "{HEX_LEN} hex characters after `{PREFIX}`, found {found}"
            )));
        }
        if let Some(bad) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(reject(format!(
                "only lowercase hex characters 0-9 a-f, found `{bad}`"
            )));
        }
        Ok(Digest(s.to_string()))
    }

    /// Returns the sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(&Sha256::digest(bytes))
    }

    /// Returns the 64 hex characters, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// Returns the whole digest, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        &self.hex()[..SHORT_LEN]
    }

    fn from_hash(hash: &[u8]) -> Digest {
        let mut text = String::with_capacity(PREFIX.len() + HEX_LEN);
        text.push_str(PREFIX);
        for byte in hash {
            // Writing into a String cannot fail.
            let _ = write!(text, "{byte:02x}");
        }
        Digest(text)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Digest, StoreError> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An [`io::Write`] that hashes everything written to it and counts the bytes.
///
/// Wrap it around nothing (it discards the bytes) or use [`DigestWriter::update`] next to a copy
/// into a file, then call [`DigestWriter::finalize`].
#[derive(Clone, Debug, Default)]
pub struct DigestWriter {
    hasher: Sha256,
    len: u64,
}

impl DigestWriter {
    /// Starts an empty hash.
    pub fn new() -> DigestWriter {
        DigestWriter::default()
    }

    /// Adds `bytes` to the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Returns the number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the digest of everything written.
    pub fn finalize(self) -> Digest {
        Digest::from_hash(&self.hasher.finalize())
    }
}

impl io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
