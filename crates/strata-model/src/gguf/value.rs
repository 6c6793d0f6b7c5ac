//! Typed metadata values.

use super::cursor::Cursor;
use crate::error::GgufError;

/// Smallest encoding of one metadata entry: key length, no key, type id, a one-byte value.
pub(super) const MIN_KV_BYTES: u64 = 8 + 4 + 1;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float, when it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(v) => Some(v),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(v) => Some(v),
            _ => None,
        }
    }

    /// Name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            GgufValue::U8(_) => "u8",
            GgufValue::I8(_) => "i8",
            GgufValue::U16(_) => "u16",
            GgufValue::I16(_) => "i16",
            GgufValue::U32(_) => "u32",
            GgufValue::I32(_) => "i32",
            GgufValue::U64(_) => "u64",
            GgufValue::I64(_) => "i64",
            GgufValue::F32(_) => "f32",
            GgufValue::F64(_) => "f64",
            GgufValue::Bool(_) => "bool",
            GgufValue::String(_) => "string",
            GgufValue::Array(_) => "array",
        }
    }
}

/// Fewest bytes one value of GGUF type `type_id` takes; `None` for an unknown type.
fn min_value_bytes(type_id: u32) -> Option<u64> {
    let bytes = match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 4 + 8,
        10..=12 => 8,
        _ => return None,
    };
    Some(bytes)
}

/// Reads the type id and value of metadata key `key`.
pub(super) fn read_value(cursor: &mut Cursor<'_>, key: &str) -> Result<GgufValue, GgufError> {
    let type_id = cursor.u32(&format!("type of key {key:?}"))?;
    read_typed(cursor, key, type_id, 0)
}

fn read_typed(
    cursor: &mut Cursor<'_>,
    key: &str,
    type_id: u32,
    depth: u32,
) -> Result<GgufValue, GgufError> {
    let field = format!("value of key {key:?}");
    let value = match type_id {
        0 => GgufValue::U8(cursor.u8(&field)?),
        1 => GgufValue::I8(cursor.u8(&field)? as i8),
        2 => GgufValue::U16(cursor.u16(&field)?),
        3 => GgufValue::I16(cursor.u16(&field)? as i16),
        4 => GgufValue::U32(cursor.u32(&field)?),
        5 => GgufValue::I32(cursor.u32(&field)? as i32),
        6 => GgufValue::F32(f32::from_bits(cursor.u32(&field)?)),
        7 => GgufValue::Bool(read_bool(cursor, key, &field)?),
        8 => GgufValue::String(cursor.string(&field)?),
        9 => read_array(cursor, key, depth)?,
        10 => GgufValue::U64(cursor.u64(&field)?),
        11 => GgufValue::I64(cursor.u64(&field)? as i64),
        12 => GgufValue::F64(f64::from_bits(cursor.u64(&field)?)),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_string(),
                type_id,
            });
        }
    };
    Ok(value)
}

fn read_bool(cursor: &mut Cursor<'_>, key: &str, field: &str) -> Result<bool, GgufError> {
    match cursor.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(GgufError::BadBool {
            key: key.to_string(),
            value: other,
        }),
    }
}

/// Arrays nest at most this deep; GGUF writers use one level.
const MAX_ARRAY_DEPTH: u32 = 2;

fn read_array(cursor: &mut Cursor<'_>, key: &str, depth: u32) -> Result<GgufValue, GgufError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::NestedTooDeep {
            key: key.to_string(),
        });
    }
    let element_type = cursor.u32(&format!("element type of key {key:?}"))?;
    let count = cursor.u64(&format!("length of key {key:?}"))?;
    let min_bytes = min_value_bytes(element_type).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_string(),
        type_id: element_type,
    })?;
    cursor.check_count(count, min_bytes, &format!("length of key {key:?}"))?;
    let mut items = Vec::with_capacity(count as usize);
    for _ in 0..count {
        items.push(read_typed(cursor, key, element_type, depth + 1)?);
    }
    Ok(GgufValue::Array(items))
}
