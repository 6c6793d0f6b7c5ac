//! The KV cache as a value the caller owns, so a session can be saved and restored.
//!
//! Each layer keeps keys and values in preallocated f32 tensors of shape
//! `[num_kv_heads, capacity, head_dim]`. A forward pass writes its positions in place with
//! `slice_set` instead of concatenating. The capacity doubles when a pass needs more room, up to
//! the model's context length. Positions `0..len` are valid, later ones are scratch.

use candle_core::{DType, Device, Tensor};

use crate::error::{CacheError, Result};
use crate::model::kv_blocks::BlockDtype;

/// Geometry of a cache: dtype, layer count, heads, head width and context length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLayout {
    /// Element type of keys and values (f32).
    pub dtype: DType,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Key and value heads per layer.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Context length: the most positions the cache may hold.
    pub max_positions: usize,
    /// Precision of the values: with [`BlockDtype::F16`] every key and value is rounded to the
    /// nearest f16 as it is written (and kept in f32), as llama.cpp's default f16 cache does, so
    /// f16 snapshot blocks hold the cache exactly.
    pub precision: BlockDtype,
}

/// Keys and values of every layer for the positions fed so far.
///
/// Not `Clone`: candle tensors share their storage, and the cache writes into it in place, so a
/// shallow copy would see the other's writes. Copy a cache through `layer_kv` and `from_layers`.
#[derive(Debug)]
pub struct KvCache {
    layout: CacheLayout,
    /// Per layer `(keys, values)`, each `[num_kv_heads, capacity, head_dim]`.
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
    device: Device,
}

impl KvCache {
    /// Creates an empty cache with room for `capacity` positions (clamped to the context length)
    /// before its first growth.
    pub fn new(layout: CacheLayout, capacity: usize, device: &Device) -> Result<KvCache> {
        let capacity = capacity.clamp(1, layout.max_positions.max(1));
        let layers = (0..layout.num_layers)
            .map(|_| allocate_pair(&layout, capacity, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layout,
            layers,
            len: 0,
            device: device.clone(),
        })
    }

    /// Rebuilds a cache from per-layer keys and values of shape `[num_kv_heads, len, head_dim]`,
    /// as [`KvCache::layer_kv`] returns them.
    pub fn from_layers(
        layout: CacheLayout,
        layers: Vec<(Tensor, Tensor)>,
        len: usize,
        device: &Device,
    ) -> Result<KvCache> {
        if layers.len() != layout.num_layers {
            let error = CacheError::LayoutMismatch {
                field: "layers",
                expected: layout.num_layers,
                actual: layers.len(),
            };
            return Err(error.into());
        }
        if len > layout.max_positions {
            let error = CacheError::ContextLength {
                cached: 0,
                requested: len,
                max: layout.max_positions,
            };
            return Err(error.into());
        }
        let mut cache = KvCache::new(layout, len, device)?;
        let expected = vec![layout.num_kv_heads, len, layout.head_dim];
        for (layer, (keys, values)) in layers.iter().enumerate() {
            check_layer_shape(layer, "keys", keys, &expected)?;
            check_layer_shape(layer, "values", values, &expected)?;
            if len > 0 {
                cache.write(layer, keys, values)?;
            }
        }
        cache.len = len;
        Ok(cache)
    }

    /// Wraps per-layer tensors `[num_kv_heads, capacity, head_dim]` whose first `len` positions
    /// are filled, as [`KvCache::from_blocks`] builds them.
    pub(crate) fn from_allocated(
        layout: CacheLayout,
        layers: Vec<(Tensor, Tensor)>,
        len: usize,
        device: &Device,
    ) -> Result<KvCache> {
        let cache = KvCache {
            layout,
            layers,
            len,
            device: device.clone(),
        };
        if cache.capacity() < len {
            let error = CacheError::ContextLength {
                cached: 0,
                requested: len,
                max: cache.capacity(),
            };
            return Err(error.into());
        }
        Ok(cache)
    }

    /// Returns the allocated keys and values of `layer`, `[num_kv_heads, capacity, head_dim]`.
    pub(crate) fn layer_tensors(&self, layer: usize) -> (&Tensor, &Tensor) {
        let (keys, values) = &self.layers[layer];
        (keys, values)
    }

    /// Returns the cache's dtype and geometry.
    pub fn layout(&self) -> CacheLayout {
        self.layout
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the current allocation can hold before growing.
    pub fn capacity(&self) -> usize {
        self.layers.first().map_or(0, |(keys, _)| keys.dims()[1])
    }

    /// Drops every position from `len` on; a larger `len` leaves the cache unchanged.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Drops every position, keeping the allocation.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Copies out the keys and values of `layer`, each `[num_kv_heads, len, head_dim]`.
    ///
    /// The result is a copy, so later writes to the cache do not change it.
    ///
    /// # Panics
    ///
    /// Panics when `layer` is not below the layer count.
    pub fn layer_kv(&self, layer: usize) -> Result<(Tensor, Tensor)> {
        let (keys, values) = &self.layers[layer];
        let keys = keys.narrow(1, 0, self.len)?.copy()?;
        let values = values.narrow(1, 0, self.len)?.copy()?;
        Ok((keys, values))
    }

    /// Checks that `additional` positions fit the context and grows the buffers to hold them.
    pub(crate) fn reserve(&mut self, additional: usize) -> Result<()> {
        let needed = self.len + additional;
        if needed > self.layout.max_positions {
            let error = CacheError::ContextLength {
                cached: self.len,
                requested: additional,
                max: self.layout.max_positions,
            };
            return Err(error.into());
        }
        let capacity = self.capacity();
        if needed <= capacity {
            return Ok(());
        }

        let new_capacity = needed.max(capacity * 2).min(self.layout.max_positions);
        tracing::debug!(from = capacity, to = new_capacity, "growing kv cache");
        for (keys, values) in self.layers.iter_mut() {
            let (new_keys, new_values) = allocate_pair(&self.layout, new_capacity, &self.device)?;
            if self.len > 0 {
                new_keys.slice_set(&keys.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                new_values.slice_set(&values.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
            }
            *keys = new_keys;
            *values = new_values;
        }
        Ok(())
    }

    /// Writes `keys` and `values` (`[num_kv_heads, n, head_dim]`) of `layer` at positions
    /// `len..len + n` and returns that layer's keys and values for positions `0..len + n`.
    ///
    /// The caller has reserved room; `len` moves only in [`KvCache::advance`], once every layer
    /// has been written.
    pub(crate) fn write(
        &mut self,
        layer: usize,
        keys: &Tensor,
        values: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let new_positions = keys.dim(1)?;
        let (keys, values) = match self.layout.precision {
            BlockDtype::F32 => (keys.clone(), values.clone()),
            BlockDtype::F16 => (round_to_f16(keys)?, round_to_f16(values)?),
        };
        let (cached_keys, cached_values) = &self.layers[layer];
        cached_keys.slice_set(&keys.contiguous()?, 1, self.len)?;
        cached_values.slice_set(&values.contiguous()?, 1, self.len)?;

        let total = self.len + new_positions;
        Ok((
            cached_keys.narrow(1, 0, total)?,
            cached_values.narrow(1, 0, total)?,
        ))
    }

    /// Marks `n` more positions as cached after every layer was written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}

/// Rounds every element to the nearest f16, keeping the f32 dtype.
fn round_to_f16(tensor: &Tensor) -> Result<Tensor> {
    Ok(tensor.to_dtype(DType::F16)?.to_dtype(DType::F32)?)
}

fn allocate_pair(
    layout: &CacheLayout,
    capacity: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let shape = (layout.num_kv_heads, capacity, layout.head_dim);
    let keys = Tensor::zeros(shape, layout.dtype, device)?;
    let values = Tensor::zeros(shape, layout.dtype, device)?;
    Ok((keys, values))
}

fn check_layer_shape(
    layer: usize,
    name: &'static str,
    tensor: &Tensor,
    expected: &[usize],
) -> Result<()> {
    if tensor.dims() == expected {
        return Ok(());
    }
    let error = CacheError::LayerShape {
        layer,
        tensor: name,
        expected: expected.to_vec(),
        actual: tensor.dims().to_vec(),
    };
    Err(error.into())
}
