//! Tensors as the runtime receives them: a name, a dtype, a shape and borrowed bytes.
//!
//! Loaded from the store, the bytes are a read-only memory map of the tensor's blob; tests and
//! importers may also hand over owned bytes. Shapes are outermost dimension first (a linear
//! weight is `[out_features, in_features]`), the reverse of GGUF's `ne` order.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::dtype::GgmlType;

/// Bytes shared between tensor views: a memory map or an owned buffer.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// One tensor's metadata and bytes.
#[derive(Clone)]
pub struct TensorView {
    /// Tensor name in GGUF convention (`token_embd.weight`, `blk.3.ffn_up.weight`).
    pub name: String,
    /// Element type of the bytes.
    pub dtype: GgmlType,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    data: SharedBytes,
}

impl TensorView {
    /// Wraps `data`; the caller has checked that its length matches `dtype` and `shape`.
    pub fn new(name: String, dtype: GgmlType, shape: Vec<usize>, data: SharedBytes) -> Self {
        TensorView {
            name,
            dtype,
            shape,
            data,
        }
    }

    /// The raw bytes in the stored dtype.
    pub fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// Shared handle to the bytes, for kernels that keep them beyond this view.
    pub fn shared_bytes(&self) -> SharedBytes {
        self.data.clone()
    }

    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

impl fmt::Debug for TensorView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

/// The tensors of one model version, by name.
#[derive(Clone, Debug, Default)]
pub struct TensorSet {
    tensors: BTreeMap<String, TensorView>,
}

impl TensorSet {
    /// Adds or replaces a tensor.
    pub fn insert(&mut self, view: TensorView) {
        self.tensors.insert(view.name.clone(), view);
    }

    /// Looks a tensor up by name.
    pub fn get(&self, name: &str) -> Option<&TensorView> {
        self.tensors.get(name)
    }

    /// Iterates over the tensors in name order.
    pub fn iter(&self) -> impl Iterator<Item = &TensorView> {
        self.tensors.values()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the set holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}
