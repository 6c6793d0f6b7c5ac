//! A bounds-checked little-endian reader over the mapped file.

use crate::error::GgufError;

/// Reads values from `bytes`, failing with the field's name when the file ends too early.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, position: 0 }
    }

    /// Offset of the next unread byte.
    pub(super) fn position(&self) -> usize {
        self.position
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.position) as u64
    }

    /// Takes `len` bytes, or fails naming `field` when fewer are left.
    pub(super) fn bytes(&mut self, len: u64, field: &str) -> Result<&'a [u8], GgufError> {
        if len > self.remaining() {
            return Err(GgufError::Truncated {
                field: field.to_string(),
                needed: len,
                left: self.remaining(),
                offset: self.position as u64,
            });
        }
        let start = self.position;
        self.position += len as usize;
        Ok(&self.bytes[start..self.position])
    }

    /// Fails unless `count` items of at least `min_item_bytes` each fit in the bytes left.
    pub(super) fn check_count(
        &self,
        count: u64,
        min_item_bytes: u64,
        field: &str,
    ) -> Result<(), GgufError> {
        let needed = count.saturating_mul(min_item_bytes);
        if needed > self.remaining() {
            return Err(GgufError::CountTooLarge {
                field: field.to_string(),
                count,
                left: self.remaining(),
                item_bytes: min_item_bytes,
            });
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], GgufError> {
        let bytes = self.bytes(N as u64, field)?;
        Ok(bytes.try_into().expect("slice has the requested length"))
    }

    pub(super) fn u8(&mut self, field: &str) -> Result<u8, GgufError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(super) fn u16(&mut self, field: &str) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(super) fn u32(&mut self, field: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(super) fn u64(&mut self, field: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// Reads a length-prefixed UTF-8 string; the length is checked before anything is copied.
    pub(super) fn string(&mut self, field: &str) -> Result<String, GgufError> {
        let len = self.u64(&format!("{field} length"))?;
        if len > self.remaining() {
            return Err(GgufError::LengthTooLarge {
                field: field.to_string(),
                len,
                left: self.remaining(),
            });
        }
        let bytes = self.bytes(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            field: field.to_string(),
        })
    }
}
