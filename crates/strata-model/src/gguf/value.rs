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
    Array(GgufArray),
}

/// A metadata array, stored by element type.
///
/// Numbers are kept in typed vectors rather than as one `GgufValue` each, so an array takes no
/// more memory than its bytes in the file; the worst case is an array of empty strings, 24 bytes
/// of `String` per 8 bytes of file.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<GgufArray>),
}

impl GgufArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::F64(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::String(v) => v.len(),
            GgufArray::Array(v) => v.len(),
        }
    }

    /// True when the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, when they are strings.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            GgufArray::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as signed integers, when they are integers that all fit in an `i64`.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        fn widen<T: Copy>(v: &[T], f: impl Fn(T) -> Option<i64>) -> Option<Vec<i64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            GgufArray::U8(v) => widen(v, |x| Some(x.into())),
            GgufArray::I8(v) => widen(v, |x| Some(x.into())),
            GgufArray::U16(v) => widen(v, |x| Some(x.into())),
            GgufArray::I16(v) => widen(v, |x| Some(x.into())),
            GgufArray::U32(v) => widen(v, |x| Some(x.into())),
            GgufArray::I32(v) => widen(v, |x| Some(x.into())),
            GgufArray::U64(v) => widen(v, |x| i64::try_from(x).ok()),
            GgufArray::I64(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Name of the array's type, for error messages: `array of i32`.
    pub fn type_name(&self) -> &'static str {
        match self {
            GgufArray::U8(_) => "array of u8",
            GgufArray::I8(_) => "array of i8",
            GgufArray::U16(_) => "array of u16",
            GgufArray::I16(_) => "array of i16",
            GgufArray::U32(_) => "array of u32",
            GgufArray::I32(_) => "array of i32",
            GgufArray::U64(_) => "array of u64",
            GgufArray::I64(_) => "array of i64",
            GgufArray::F32(_) => "array of f32",
            GgufArray::F64(_) => "array of f64",
            GgufArray::Bool(_) => "array of bool",
            GgufArray::String(_) => "array of string",
            GgufArray::Array(_) => "array of array",
        }
    }
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
    pub fn as_array(&self) -> Option<&GgufArray> {
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
            GgufValue::Array(array) => array.type_name(),
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
    read_typed(cursor, key, type_id)
}

fn read_typed(cursor: &mut Cursor<'_>, key: &str, type_id: u32) -> Result<GgufValue, GgufError> {
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
        9 => GgufValue::Array(read_array(cursor, key, 0)?),
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

fn read_array(cursor: &mut Cursor<'_>, key: &str, depth: u32) -> Result<GgufArray, GgufError> {
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
    // `check_count` bounds `count` by the bytes left, so each vector below is at most the size
    // of the bytes it is read from (strings and nested arrays: a small constant times that).
    let field = format!("element of key {key:?}");
    let n = count as usize;
    let array = match element_type {
        0 => GgufArray::U8(collect(n, || cursor.u8(&field))?),
        1 => GgufArray::I8(collect(n, || Ok(cursor.u8(&field)? as i8))?),
        2 => GgufArray::U16(collect(n, || cursor.u16(&field))?),
        3 => GgufArray::I16(collect(n, || Ok(cursor.u16(&field)? as i16))?),
        4 => GgufArray::U32(collect(n, || cursor.u32(&field))?),
        5 => GgufArray::I32(collect(n, || Ok(cursor.u32(&field)? as i32))?),
        6 => GgufArray::F32(collect(n, || Ok(f32::from_bits(cursor.u32(&field)?)))?),
        7 => GgufArray::Bool(collect(n, || read_bool(cursor, key, &field))?),
        8 => GgufArray::String(collect(n, || cursor.string(&field))?),
        9 => GgufArray::Array(collect(n, || read_array(cursor, key, depth + 1))?),
        10 => GgufArray::U64(collect(n, || cursor.u64(&field))?),
        11 => GgufArray::I64(collect(n, || Ok(cursor.u64(&field)? as i64))?),
        12 => GgufArray::F64(collect(n, || Ok(f64::from_bits(cursor.u64(&field)?)))?),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_string(),
                type_id: element_type,
            });
        }
    };
    Ok(array)
}

/// Calls `read` `n` times and collects the values.
fn collect<T>(
    n: usize,
    mut read: impl FnMut() -> Result<T, GgufError>,
) -> Result<Vec<T>, GgufError> {
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(read()?);
    }
    Ok(items)
}
