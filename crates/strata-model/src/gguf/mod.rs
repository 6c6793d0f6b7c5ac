//! A GGUF reader that trusts no field of the file.
//!
//! GGUF (versions 2 and 3, little-endian) is a header of typed key-value metadata, then tensor
//! descriptions (name, dimensions, type, offset), then aligned tensor data. Every count and
//! length read from the header is checked against the bytes left in the file before anything is
//! allocated, so memory use stays bounded by the file size whatever the header claims.

mod cursor;
mod model;
mod value;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::dtype::GgmlType;
use crate::error::GgufError;
use crate::mapped::{self, MappedRange};
use crate::tensor::{TensorSet, TensorView};
use cursor::Cursor;
pub use model::GgufModel;
pub use value::{GgufArray, GgufValue};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Most dimensions a tensor may have.
pub const MAX_DIMS: u32 = 4;
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor's description from the header.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensor {
    /// Tensor name, for example `blk.0.attn_q.weight`.
    pub name: String,
    /// Element type.
    pub dtype: GgmlType,
    /// Dimensions, outermost first (GGUF stores them innermost first).
    pub shape: Vec<usize>,
    /// Byte range of the tensor's data in the file.
    pub range: Range<usize>,
}

/// A parsed, validated GGUF file, memory-mapped.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Arc<Mmap>,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensor>,
}

impl GgufFile {
    /// Maps and parses the file at `path`, validating the header and every tensor description.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let map = mapped::map_file(path).map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (version, metadata, tensors) = parse(&map)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version,
            metadata,
            tensors,
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Format version: 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Metadata keys and values.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// Tensor descriptions, in file order.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// The bytes of `tensor`, borrowed from the map.
    pub fn tensor_bytes(&self, tensor: &GgufTensor) -> &[u8] {
        &self.map[tensor.range.clone()]
    }

    /// Size of the whole file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Views of every tensor sharing this file's map, so a GGUF runs without being imported.
    pub fn tensor_set(&self) -> TensorSet {
        let mut set = TensorSet::default();
        for tensor in &self.tensors {
            let bytes = MappedRange::new(self.map.clone(), tensor.range.clone());
            set.insert(TensorView::new(
                tensor.name.clone(),
                tensor.dtype,
                tensor.shape.clone(),
                Arc::new(bytes),
            ));
        }
        set
    }
}

type Parsed = (u32, BTreeMap<String, GgufValue>, Vec<GgufTensor>);

/// Parses the header, the metadata and the tensor table of `bytes`.
fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let mut cursor = Cursor::new(bytes);
    let magic = cursor.bytes(4, "magic")?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic {
            found: magic.to_vec(),
        });
    }
    let version = cursor.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count = cursor.u64("tensor count")?;
    let kv_count = cursor.u64("metadata key count")?;
    cursor.check_count(kv_count, value::MIN_KV_BYTES, "metadata key count")?;
    cursor.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor count")?;

    let metadata = read_metadata(&mut cursor, kv_count)?;
    let infos = (0..tensor_count)
        .map(|index| read_tensor_info(&mut cursor, index))
        .collect::<Result<Vec<_>, _>>()?;
    let alignment = alignment(&metadata)?;
    let data_start = cursor.position().next_multiple_of(alignment as usize);
    let tensors = place_tensors(infos, data_start, alignment, bytes.len())?;
    Ok((version, metadata, tensors))
}

/// Smallest encoding of a tensor description: name length, no name, n_dims, type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

fn read_metadata(
    cursor: &mut Cursor<'_>,
    count: u64,
) -> Result<BTreeMap<String, GgufValue>, GgufError> {
    let mut metadata = BTreeMap::new();
    for index in 0..count {
        let key = cursor.string(&format!("key #{index}"))?;
        let value = value::read_value(cursor, &key)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(GgufError::DuplicateKey { key });
        }
    }
    Ok(metadata)
}

/// A tensor description before its offset is checked against the data section.
struct TensorInfo {
    name: String,
    dtype: GgmlType,
    shape: Vec<usize>,
    offset: u64,
    byte_len: u64,
}

fn read_tensor_info(cursor: &mut Cursor<'_>, index: u64) -> Result<TensorInfo, GgufError> {
    let name = cursor.string(&format!("tensor #{index} name"))?;
    let n_dims = cursor.u32(&format!("dimension count of tensor {name:?}"))?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            tensor: name,
            dims: n_dims,
            max: MAX_DIMS,
        });
    }
    let mut ne = Vec::with_capacity(n_dims as usize);
    for dim in 0..n_dims {
        ne.push(cursor.u64(&format!("dimension {dim} of tensor {name:?}"))?);
    }
    let type_id = cursor.u32(&format!("type of tensor {name:?}"))?;
    let dtype = GgmlType::from_gguf_id(type_id).ok_or_else(|| GgufError::UnknownType {
        tensor: name.clone(),
        type_id,
    })?;
    let offset = cursor.u64(&format!("offset of tensor {name:?}"))?;

    let shape_u64: Vec<u64> = ne.iter().rev().copied().collect();
    let elements = ne
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
        .ok_or_else(|| GgufError::TooManyElements {
            tensor: name.clone(),
            shape: shape_u64.clone(),
        })?;
    let block = dtype.block_size();
    let byte_len = match dtype.byte_len(elements) {
        Some(byte_len) => byte_len,
        None if !elements.is_multiple_of(block as u64) => {
            return Err(GgufError::BadShape {
                tensor: name,
                shape: shape_u64,
                elements,
                dtype: dtype.name(),
                block,
            });
        }
        None => {
            return Err(GgufError::TooManyElements {
                tensor: name,
                shape: shape_u64,
            });
        }
    };
    let shape = ne.iter().rev().map(|&dim| dim as usize).collect();
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        offset,
        byte_len,
    })
}

fn alignment(metadata: &BTreeMap<String, GgufValue>) -> Result<u64, GgufError> {
    let Some(value) = metadata.get("general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match value.as_u64() {
        Some(alignment) if alignment > 0 && alignment.is_power_of_two() && alignment <= 1 << 20 => {
            Ok(alignment)
        }
        _ => Err(GgufError::BadAlignment {
            value: format!("{value:?}"),
        }),
    }
}

/// Checks every tensor's data lies inside the file, aligned, without overlapping another.
fn place_tensors(
    infos: Vec<TensorInfo>,
    data_start: usize,
    alignment: u64,
    file_len: usize,
) -> Result<Vec<GgufTensor>, GgufError> {
    let mut tensors = Vec::with_capacity(infos.len());
    for info in infos {
        if info.offset % alignment != 0 {
            return Err(GgufError::Misaligned {
                tensor: info.name,
                offset: info.offset,
                alignment,
            });
        }
        let start = (data_start as u64).checked_add(info.offset);
        let end = start.and_then(|start| start.checked_add(info.byte_len));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(GgufError::OutOfBounds {
                tensor: info.name,
                end: u64::MAX,
                file_len,
            });
        };
        if end > file_len as u64 {
            return Err(GgufError::OutOfBounds {
                tensor: info.name,
                end,
                file_len,
            });
        }
        tensors.push(GgufTensor {
            name: info.name,
            dtype: info.dtype,
            shape: info.shape,
            range: start as usize..end as usize,
        });
    }
    check_overlaps(&tensors)?;
    Ok(tensors)
}

fn check_overlaps(tensors: &[GgufTensor]) -> Result<(), GgufError> {
    let mut by_start: Vec<&GgufTensor> = tensors.iter().collect();
    by_start.sort_by_key(|tensor| tensor.range.start);
    for pair in by_start.windows(2) {
        if pair[1].range.start < pair[0].range.end {
            return Err(GgufError::Overlap {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
    }
    let mut names: Vec<&str> = tensors.iter().map(|tensor| tensor.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(GgufError::DuplicateTensor {
            tensor: pair[0].to_string(),
        });
    }
    Ok(())
}
