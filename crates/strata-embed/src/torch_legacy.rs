//! Reading PyTorch checkpoints in the legacy `torch.save` format, the one PyTorch wrote before
//! 1.6 switched to a zip archive.
//!
//! A legacy file is five pickles and a data section, all little-endian:
//!
//! 1. the magic number `0x1950a86a20f9469cfc6c`, pickled as a 10-byte `LONG1`;
//! 2. the protocol version, `1001`;
//! 3. `sys_info`, a dict with `little_endian` and the C type sizes;
//! 4. the saved object. Each tensor in it is a call to `torch._utils._rebuild_tensor_v2` whose
//!    first argument is a persistent id `("storage", torch.XStorage, key, location, numel,
//!    view)` naming a storage instead of holding its data;
//! 5. the list of storage keys;
//!
//! then, for each key of that list in order, the storage's element count as a `u64` and its raw
//! elements. Pickles 2 to 5 go through `candle_core::pickle`; the magic number is checked byte
//! for byte because candle's `LONG1` cannot hold 10 bytes. Tensors keep their storage offset
//! and strides, so a transposed or channels-last tensor, or several tensors sharing one storage
//! (as cuDNN's flattened LSTM weights do), come back with the values PyTorch would show.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

/// The magic number's pickle as `torch.save` writes it: protocol 2, `LONG1` of 10 bytes, stop.
const MAGIC_PICKLE: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// The protocol version that legacy files carry.
const PROTOCOL_VERSION: i64 = 1001;

/// The first bytes of a zip archive, the format of `torch.save` since PyTorch 1.6.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Errors reading a legacy `torch.save` file.
#[derive(Debug, thiserror::Error)]
pub enum TorchLegacyError {
    /// The file could not be read.
    #[error("read `{path}` failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a legacy checkpoint, or its framing is damaged.
    #[error("`{path}` is not a legacy torch.save file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The value found and the value expected.
        reason: String,
    },

    /// One of the pickles could not be read.
    #[error("`{path}`: unpickle the {part} failed")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// The pickle's role, for example `saved object`.
        part: &'static str,
        /// The unpickler's error.
        #[source]
        source: candle_core::Error,
    },

    /// A tensor is stored in a way this reader does not handle.
    #[error("`{path}`: tensor `{tensor}`: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name, its dict keys joined with dots.
        tensor: String,
        /// The unsupported or inconsistent part.
        reason: String,
    },
}

/// Reads every tensor of the legacy `torch.save` file at `path`.
///
/// Tensors are named by the dict keys that lead to them, joined with dots: a plain state dict
/// gives `conv.weight`, a checkpoint `{"model_state": state_dict}` gives
/// `model_state.conv.weight`. They come back sorted by name, on the CPU, in their stored
/// dtype: `FloatStorage` as f32, `DoubleStorage` f64, `HalfStorage` f16,
/// `BFloat16Storage` bf16, `LongStorage` i64, `IntStorage` i32, `ShortStorage` i16 and
/// `ByteStorage` u8. Any other storage is an error naming the tensor. Values that are not
/// tensors (step counters, hyperparameters) are skipped.
pub fn read_torch_legacy(path: &Path) -> Result<Vec<(String, Tensor)>, TorchLegacyError> {
    let bytes = fs::read(path).map_err(|source| TorchLegacyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_torch_legacy(&bytes, path)
}

/// Reads the tensors of a legacy `torch.save` file held in memory; `path` only names it in
/// errors. See [`read_torch_legacy`].
pub fn parse_torch_legacy(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<(String, Tensor)>, TorchLegacyError> {
    let reader = Reader { path, rest: bytes };
    reader.read_all()
}

/// The location of one tensor's values in its storage.
#[derive(Debug)]
struct TensorRecord {
    name: String,
    storage_key: String,
    dtype: DType,
    offset: usize,
    shape: Vec<usize>,
    strides: Vec<usize>,
}

/// The bytes not read yet, and the file they come from.
struct Reader<'a> {
    path: &'a Path,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn read_all(mut self) -> Result<Vec<(String, Tensor)>, TorchLegacyError> {
        self.check_magic()?;
        self.check_protocol_version()?;
        self.check_sys_info()?;

        let saved = self.unpickle("saved object")?;
        let mut records = Vec::new();
        collect_tensors(saved, String::new(), &mut records).map_err(|(tensor, reason)| {
            TorchLegacyError::Tensor {
                path: self.path.to_path_buf(),
                tensor,
                reason,
            }
        })?;
        // candle's unpickler adds a `SETITEMS` batch to a dict in reverse, so the pickled
        // order is lost; sorting gives callers a stable one.
        records.sort_by(|a, b| a.name.cmp(&b.name));

        let keys = self.read_storage_keys()?;
        let storages = self.read_storages(&keys, &records)?;
        records
            .iter()
            .map(|record| Ok((record.name.clone(), self.build_tensor(record, &storages)?)))
            .collect()
    }

    fn check_magic(&mut self) -> Result<(), TorchLegacyError> {
        if self.rest.starts_with(ZIP_MAGIC) {
            return Err(self.format_error(
                "it is a zip archive, the format of torch.save since PyTorch 1.6; read it with \
                 `candle_core::pickle::read_all`"
                    .to_string(),
            ));
        }
        if !self.rest.starts_with(&MAGIC_PICKLE) {
            return Err(self.format_error(
                "it does not start with the pickled magic number 0x1950a86a20f9469cfc6c"
                    .to_string(),
            ));
        }
        self.rest = &self.rest[MAGIC_PICKLE.len()..];
        Ok(())
    }

    fn check_protocol_version(&mut self) -> Result<(), TorchLegacyError> {
        let version = self.unpickle("protocol version")?;
        match version.int_or_long() {
            Ok(PROTOCOL_VERSION) => Ok(()),
            Ok(other) => Err(self.format_error(format!(
                "protocol version is {other}, expected {PROTOCOL_VERSION}"
            ))),
            Err(other) => Err(self.format_error(format!(
                "protocol version is {other:?}, expected the integer {PROTOCOL_VERSION}"
            ))),
        }
    }

    /// Checks that `sys_info` marks the data little-endian, the only byte order read here.
    fn check_sys_info(&mut self) -> Result<(), TorchLegacyError> {
        let sys_info = self.unpickle("sys_info")?;
        let little_endian = sys_info.dict().ok().and_then(|entries| {
            entries
                .into_iter()
                .find(|(key, _)| *key == Object::Unicode("little_endian".to_string()))
                .and_then(|(_, value)| value.bool().ok())
        });
        match little_endian {
            Some(true) => Ok(()),
            Some(false) => Err(self.format_error(
                "sys_info says the data is big-endian; only little-endian files are read"
                    .to_string(),
            )),
            None => {
                Err(self.format_error("sys_info has no boolean `little_endian` entry".to_string()))
            }
        }
    }

    fn read_storage_keys(&mut self) -> Result<Vec<String>, TorchLegacyError> {
        let keys = self.unpickle("storage keys")?;
        let Object::List(keys) = keys else {
            return Err(self.format_error(format!(
                "the storage keys are {keys:?}, expected a list of strings"
            )));
        };
        keys.into_iter()
            .map(|key| {
                key.unicode().map_err(|other| {
                    self.format_error(format!("storage key {other:?} is not a string"))
                })
            })
            .collect()
    }

    /// Reads the data section: each storage's element count and raw elements, in key order.
    fn read_storages(
        &mut self,
        keys: &[String],
        records: &[TensorRecord],
    ) -> Result<HashMap<String, &'a [u8]>, TorchLegacyError> {
        let dtypes: HashMap<&str, DType> = records
            .iter()
            .map(|record| (record.storage_key.as_str(), record.dtype))
            .collect();

        let mut storages = HashMap::with_capacity(keys.len());
        for key in keys {
            let dtype = *dtypes.get(key.as_str()).ok_or_else(|| {
                self.format_error(format!(
                    "storage `{key}` is used by no tensor, so its element size is unknown"
                ))
            })?;
            let count = self.take_u64(key)?;
            let length = usize::try_from(count)
                .ok()
                .and_then(|count| count.checked_mul(dtype.size_in_bytes()))
                .ok_or_else(|| {
                    self.format_error(format!("storage `{key}` claims {count} elements"))
                })?;
            let data = self.take(length, key)?;
            storages.insert(key.clone(), data);
        }
        Ok(storages)
    }

    /// Copies a tensor's elements out of its storage into a contiguous CPU tensor.
    fn build_tensor(
        &self,
        record: &TensorRecord,
        storages: &HashMap<String, &[u8]>,
    ) -> Result<Tensor, TorchLegacyError> {
        let tensor_error = |reason: String| TorchLegacyError::Tensor {
            path: self.path.to_path_buf(),
            tensor: record.name.clone(),
            reason,
        };
        let storage = storages.get(&record.storage_key).ok_or_else(|| {
            tensor_error(format!(
                "storage `{}` is missing from the storage key list",
                record.storage_key
            ))
        })?;

        let bytes = gather(record, storage).ok_or_else(|| {
            tensor_error(format!(
                "offset {} with shape {:?} and strides {:?} reaches past the {} elements of \
                 storage `{}`",
                record.offset,
                record.shape,
                record.strides,
                storage.len() / record.dtype.size_in_bytes(),
                record.storage_key
            ))
        })?;
        Tensor::from_raw_buffer(&bytes, record.dtype, &record.shape, &Device::Cpu)
            .map_err(|error| tensor_error(error.to_string()))
    }

    /// Unpickles the next pickle, stopping at its `STOP` opcode.
    fn unpickle(&mut self, part: &'static str) -> Result<Object, TorchLegacyError> {
        let mut stack = Stack::empty();
        stack
            .read_loop(&mut self.rest)
            .and_then(|()| stack.finalize())
            .map_err(|source| TorchLegacyError::Pickle {
                path: self.path.to_path_buf(),
                part,
                source,
            })
    }

    fn take_u64(&mut self, key: &str) -> Result<u64, TorchLegacyError> {
        let bytes = self.take(8, key)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
    }

    fn take(&mut self, length: usize, key: &str) -> Result<&'a [u8], TorchLegacyError> {
        if self.rest.len() < length {
            return Err(self.format_error(format!(
                "the file ends inside storage `{key}`: {length} more bytes expected, {} left",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(taken)
    }

    fn format_error(&self, reason: String) -> TorchLegacyError {
        TorchLegacyError::Format {
            path: self.path.to_path_buf(),
            reason,
        }
    }
}

/// Walks the saved object and records every tensor under its dotted name. A failure is the
/// tensor's name and the reason.
fn collect_tensors(
    object: Object,
    name: String,
    records: &mut Vec<TensorRecord>,
) -> Result<(), (String, String)> {
    match object {
        Object::Dict(entries) => {
            for (key, value) in entries {
                if let Some(key) = key_name(key) {
                    collect_tensors(value, join_name(&name, &key), records)?;
                }
            }
        }
        Object::List(items) | Object::Tuple(items) => {
            for (index, item) in items.into_iter().enumerate() {
                collect_tensors(item, join_name(&name, &index.to_string()), records)?;
            }
        }
        Object::Build { callable, .. } => collect_tensors(*callable, name, records)?,
        Object::Reduce { callable, args } => collect_reduce(*callable, *args, name, records)?,
        _ => {}
    }
    Ok(())
}

/// Handles a call in the saved object: a tensor, a parameter wrapping one, or something else,
/// whose arguments are searched for tensors.
fn collect_reduce(
    callable: Object,
    args: Object,
    name: String,
    records: &mut Vec<TensorRecord>,
) -> Result<(), (String, String)> {
    let Object::Class {
        module_name,
        class_name,
    } = callable
    else {
        return collect_tensors(args, name, records);
    };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2") => {
            let record = tensor_record(args, &name).map_err(|reason| (name, reason))?;
            records.push(record);
            Ok(())
        }
        ("torch._utils", "_rebuild_parameter") => {
            let first = args.tuple().ok().and_then(|args| args.into_iter().next());
            match first {
                Some(tensor) => collect_tensors(tensor, name, records),
                None => Err((name, "a parameter without its tensor".to_string())),
            }
        }
        ("torch._utils", rebuild) if rebuild.starts_with("_rebuild") => Err((
            name,
            format!("`torch._utils.{rebuild}` tensors are not supported, only dense tensors"),
        )),
        _ => collect_tensors(args, name, records),
    }
}

/// Reads the arguments of `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn tensor_record(args: Object, name: &str) -> Result<TensorRecord, String> {
    let args = args
        .tuple()
        .map_err(|other| format!("rebuild arguments are {other:?}, expected a tuple"))?;
    let [storage, offset, size, stride, ..] = args.as_slice() else {
        return Err(format!(
            "{} rebuild arguments, expected at least 4",
            args.len()
        ));
    };
    let (storage_key, dtype) = storage_id(storage)?;
    let offset = non_negative(offset, "storage offset")?;
    let shape = sizes(size, "size")?;
    let strides = sizes(stride, "stride")?;
    if shape.len() != strides.len() {
        return Err(format!(
            "size {shape:?} and stride {strides:?} have different lengths"
        ));
    }
    Ok(TensorRecord {
        name: name.to_string(),
        storage_key,
        dtype,
        offset,
        shape,
        strides,
    })
}

/// Reads a persistent id `("storage", torch.XStorage, key, location, numel, view)` and returns
/// the key and the element dtype.
fn storage_id(storage: &Object) -> Result<(String, DType), String> {
    let Object::PersistentLoad(id) = storage else {
        return Err(format!("storage is {storage:?}, expected a persistent id"));
    };
    let Object::Tuple(fields) = id.as_ref() else {
        return Err(format!("persistent id is {id:?}, expected a tuple"));
    };
    let [kind, class, key, _location, _numel, rest @ ..] = fields.as_slice() else {
        return Err(format!(
            "persistent id has {} fields, expected 6",
            fields.len()
        ));
    };
    if *kind != Object::Unicode("storage".to_string()) {
        return Err(format!(
            "persistent id kind is {kind:?}, expected \"storage\""
        ));
    }
    if let Some(view) = rest.first().filter(|view| **view != Object::None) {
        return Err(format!(
            "storage views ({view:?}) are not supported; load the checkpoint in PyTorch and \
             save it again"
        ));
    }
    let Object::Class { class_name, .. } = class else {
        return Err(format!(
            "storage type is {class:?}, expected a torch storage class"
        ));
    };
    let dtype = storage_dtype(class_name).ok_or_else(|| {
        format!(
            "storage type `{class_name}` is not supported; expected FloatStorage, \
             DoubleStorage, HalfStorage, BFloat16Storage, LongStorage, IntStorage, \
             ShortStorage or ByteStorage"
        )
    })?;
    let Object::Unicode(key) = key else {
        return Err(format!("storage key is {key:?}, expected a string"));
    };
    Ok((key.clone(), dtype))
}

fn storage_dtype(class_name: &str) -> Option<DType> {
    let dtype = match class_name {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ShortStorage" => DType::I16,
        "ByteStorage" => DType::U8,
        _ => return None,
    };
    Some(dtype)
}

fn sizes(object: &Object, what: &str) -> Result<Vec<usize>, String> {
    let Object::Tuple(items) = object else {
        return Err(format!("{what} is {object:?}, expected a tuple"));
    };
    items.iter().map(|item| non_negative(item, what)).collect()
}

fn non_negative(object: &Object, what: &str) -> Result<usize, String> {
    object
        .clone()
        .int_or_long()
        .ok()
        .and_then(|value| usize::try_from(value).ok())
        .ok_or_else(|| format!("{what} {object:?} is not a non-negative integer"))
}

/// Returns a dict key as a name part: strings as they are, integers in decimal.
fn key_name(key: Object) -> Option<String> {
    match key {
        Object::Unicode(key) => Some(key),
        Object::Int(key) => Some(key.to_string()),
        Object::Long(key) => Some(key.to_string()),
        _ => None,
    }
}

fn join_name(prefix: &str, part: &str) -> String {
    if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}.{part}")
    }
}

/// Copies the tensor's elements, in row-major order, out of `storage`. Returns `None` when an
/// element would lie outside the storage.
fn gather(record: &TensorRecord, storage: &[u8]) -> Option<Vec<u8>> {
    let element_size = record.dtype.size_in_bytes();
    let elements: usize = record.shape.iter().product();
    if elements == 0 {
        return Some(Vec::new());
    }
    let last = record
        .shape
        .iter()
        .zip(&record.strides)
        .try_fold(record.offset, |last, (size, stride)| {
            last.checked_add((size - 1).checked_mul(*stride)?)
        })?;
    if last.checked_add(1)?.checked_mul(element_size)? > storage.len() {
        return None;
    }

    let mut bytes = Vec::with_capacity(elements * element_size);
    let mut index = vec![0usize; record.shape.len()];
    for _ in 0..elements {
        let position: usize = record.offset
            + index
                .iter()
                .zip(&record.strides)
                .map(|(i, stride)| i * stride)
                .sum::<usize>();
        let start = position * element_size;
        bytes.extend_from_slice(&storage[start..start + element_size]);
        advance(&mut index, &record.shape);
    }
    Some(bytes)
}

/// Steps a row-major multi-index to the next element.
fn advance(index: &mut [usize], shape: &[usize]) {
    for dim in (0..index.len()).rev() {
        index[dim] += 1;
        if index[dim] < shape[dim] {
            return;
        }
        index[dim] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes pickle opcodes, enough to build a legacy checkpoint by hand.
    struct Pickle(Vec<u8>);

    impl Pickle {
        fn start() -> Pickle {
            Pickle(vec![0x80, 0x02])
        }

        fn op(mut self, op: u8) -> Pickle {
            self.0.push(op);
            self
        }

        fn text(mut self, text: &str) -> Pickle {
            self.0.push(b'X');
            self.0.extend_from_slice(&(text.len() as u32).to_le_bytes());
            self.0.extend_from_slice(text.as_bytes());
            self
        }

        fn int(mut self, value: u16) -> Pickle {
            self.0.push(b'M');
            self.0.extend_from_slice(&value.to_le_bytes());
            self
        }

        fn global(mut self, module: &str, name: &str) -> Pickle {
            self.0.push(b'c');
            self.0
                .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
            self
        }

        fn ints(self, values: &[u16]) -> Pickle {
            let mut pickle = self.op(b'(');
            for value in values {
                pickle = pickle.int(*value);
            }
            pickle.op(b't')
        }

        /// Writes a `_rebuild_tensor_v2` call on storage `key` of type `storage` with `numel`
        /// elements.
        fn tensor(self, storage: &str, key: &str, numel: u16, offset: u16) -> TensorArgs {
            let pickle = self
                .global("torch._utils", "_rebuild_tensor_v2")
                .op(b'(')
                .op(b'(')
                .text("storage")
                .global("torch", storage)
                .text(key)
                .text("cpu")
                .int(numel)
                .op(b'N')
                .op(b't')
                .op(b'Q')
                .int(offset);
            TensorArgs(pickle)
        }

        fn stop(self) -> Vec<u8> {
            self.op(b'.').0
        }
    }

    /// A tensor call waiting for its size and stride.
    struct TensorArgs(Pickle);

    impl TensorArgs {
        fn shape(self, size: &[u16], stride: &[u16]) -> Pickle {
            self.0
                .ints(size)
                .ints(stride)
                .op(0x89)
                .global("collections", "OrderedDict")
                .op(b')')
                .op(b'R')
                .op(b't')
                .op(b'R')
        }
    }

    fn header() -> Vec<u8> {
        let mut bytes = MAGIC_PICKLE.to_vec();
        bytes.extend(Pickle::start().int(1001).stop());
        let sys_info = Pickle::start()
            .op(b'}')
            .op(b'(')
            .text("protocol_version")
            .int(1001)
            .text("little_endian")
            .op(0x88)
            .op(b'u')
            .stop();
        bytes.extend(sys_info);
        bytes
    }

    fn storage_keys(keys: &[&str]) -> Vec<u8> {
        let mut pickle = Pickle::start().op(b']').op(b'(');
        for key in keys {
            pickle = pickle.text(key);
        }
        pickle.op(b'e').stop()
    }

    fn f32_storage(values: &[f32]) -> Vec<u8> {
        let mut bytes = (values.len() as u64).to_le_bytes().to_vec();
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// Builds a checkpoint `{"model": {"w": 2x3 tensor, "wt": its transpose, "tail": a view at
    /// offset 4}, "step": 7, "count": i64 scalar}` over one float storage and one long storage.
    fn checkpoint() -> Vec<u8> {
        let saved = Pickle::start()
            .op(b'}')
            .op(b'(')
            .text("model")
            .global("collections", "OrderedDict")
            .op(b')')
            .op(b'R')
            .op(b'(')
            .text("w")
            .tensor("FloatStorage", "10", 6, 0)
            .shape(&[2, 3], &[3, 1])
            .text("wt")
            .tensor("FloatStorage", "10", 6, 0)
            .shape(&[3, 2], &[1, 3])
            .text("tail")
            .tensor("FloatStorage", "10", 6, 4)
            .shape(&[2], &[1])
            .op(b'u')
            .text("step")
            .int(7)
            .text("count")
            .tensor("LongStorage", "20", 1, 0)
            .shape(&[], &[])
            .op(b'u')
            .stop();

        let mut bytes = header();
        bytes.extend(saved);
        bytes.extend(storage_keys(&["10", "20"]));
        bytes.extend(f32_storage(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(42i64.to_le_bytes());
        bytes
    }

    fn parse(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, TorchLegacyError> {
        parse_torch_legacy(bytes, Path::new("checkpoint.pt"))
    }

    fn tensor<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
        let found = tensors.iter().find(|(tensor_name, _)| tensor_name == name);
        &found.unwrap_or_else(|| panic!("no tensor `{name}`")).1
    }

    #[test]
    fn tensors_named_by_dict_path() {
        let tensors = parse(&checkpoint()).unwrap();

        let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["count", "model.tail", "model.w", "model.wt"]);
    }

    #[test]
    fn strides_and_offsets_are_applied() {
        let tensors = parse(&checkpoint()).unwrap();

        let w = tensor(&tensors, "model.w");
        assert_eq!(w.dtype(), DType::F32);
        assert_eq!(
            w.to_vec2::<f32>().unwrap(),
            [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        );
        let wt = tensor(&tensors, "model.wt");
        assert_eq!(
            wt.to_vec2::<f32>().unwrap(),
            [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
        );
        let tail = tensor(&tensors, "model.tail");
        assert_eq!(tail.to_vec1::<f32>().unwrap(), [4.0, 5.0]);
    }

    #[test]
    fn long_storage_is_read_as_i64() {
        let tensors = parse(&checkpoint()).unwrap();

        let count = tensor(&tensors, "count");
        assert_eq!(count.dtype(), DType::I64);
        assert_eq!(count.to_scalar::<i64>().unwrap(), 42);
    }

    #[test]
    fn truncated_data_names_the_storage() {
        let bytes = checkpoint();

        // Drops all of storage `20` (16 bytes) and the last 14 bytes of storage `10`.
        let error = parse(&bytes[..bytes.len() - 30]).unwrap_err();

        let message = error.to_string();
        assert!(message.contains("checkpoint.pt"), "{message}");
        assert!(message.contains("ends inside storage `10`"), "{message}");
    }

    #[test]
    fn unsupported_storage_names_the_tensor() {
        let mut bytes = checkpoint();
        let at = bytes
            .windows(11)
            .position(|window| window == b"LongStorage")
            .unwrap();
        bytes[at..at + 4].copy_from_slice(b"Bool");

        let error = parse(&bytes).unwrap_err();

        let message = error.to_string();
        assert!(message.contains("tensor `count`"), "{message}");
        assert!(
            message.contains("`BoolStorage` is not supported"),
            "{message}"
        );
    }

    #[test]
    fn view_past_the_storage_is_rejected() {
        let saved = Pickle::start()
            .op(b'}')
            .text("w")
            .tensor("FloatStorage", "1", 2, 1)
            .shape(&[2], &[1])
            .op(b's')
            .stop();
        let mut bytes = header();
        bytes.extend(saved);
        bytes.extend(storage_keys(&["1"]));
        bytes.extend(f32_storage(&[1.0, 2.0]));

        let error = parse(&bytes).unwrap_err();

        let message = error.to_string();
        assert!(message.contains("tensor `w`"), "{message}");
        assert!(message.contains("reaches past the 2 elements"), "{message}");
    }

    #[test]
    fn zip_checkpoint_is_rejected_with_a_hint() {
        let error = parse(b"PK\x03\x04rest of a zip").unwrap_err();

        let message = error.to_string();
        assert!(message.contains("zip archive"), "{message}");
        assert!(message.contains("read_all"), "{message}");
    }

    #[test]
    fn other_file_is_rejected() {
        let error = parse(b"\x89PNG\r\n\x1a\n").unwrap_err();

        assert!(
            matches!(error, TorchLegacyError::Format { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("magic number"), "{error}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.pt");

        let error = read_torch_legacy(&path).unwrap_err();

        assert!(error.to_string().contains("absent.pt"), "{error}");
    }
}
