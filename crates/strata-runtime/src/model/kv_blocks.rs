//! Cache blocks: a run of positions of every layer as one byte string, for snapshots.
//!
//! A block of `n` positions starting at `start` holds, for each layer in order, the keys and then
//! the values of those positions, each laid out `[num_kv_heads, n, head_dim]` in little-endian
//! f16 or f32. Encoding to f32 and decoding back is exact. Encoding to f16 rounds each element
//! once, so decoding an f16 block and encoding it again gives the same bytes.

#[cfg(target_endian = "big")]
compile_error!(
    "cache blocks are little-endian and decoded in place; big-endian hosts are not supported"
);

use candle_core::{DType, Device, Storage, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::error::{CacheError, Result};
use crate::model::kv_cache::{CacheLayout, KvCache};

/// Element type of a cache block on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockDtype {
    /// IEEE half precision: half the bytes, rounded.
    F16,
    /// IEEE single precision: the cache's own values, bit for bit.
    F32,
}

impl BlockDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            BlockDtype::F16 => 2,
            BlockDtype::F32 => 4,
        }
    }

    /// Lowercase name, as in snapshot configs: `f16` or `f32`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockDtype::F16 => "f16",
            BlockDtype::F32 => "f32",
        }
    }

    /// Parses `f16` or `f32`.
    pub fn parse(text: &str) -> Option<BlockDtype> {
        match text {
            "f16" => Some(BlockDtype::F16),
            "f32" => Some(BlockDtype::F32),
            _ => None,
        }
    }
}

/// One block handed to [`KvCache::from_blocks`]: how many positions it covers and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct BlockBytes<'a> {
    /// Positions in the block.
    pub tokens: usize,
    /// The encoded block.
    pub bytes: &'a [u8],
}

/// Size in bytes of a block of `tokens` positions.
pub fn block_len(layout: &CacheLayout, tokens: usize, dtype: BlockDtype) -> usize {
    layout.num_layers * 2 * layout.num_kv_heads * tokens * layout.head_dim * dtype.size()
}

impl KvCache {
    /// Encodes positions `start..start + tokens` as one block.
    pub fn encode_block(&self, start: usize, tokens: usize, dtype: BlockDtype) -> Result<Vec<u8>> {
        if start + tokens > self.len() {
            let error = CacheError::ContextLength {
                cached: self.len(),
                requested: start + tokens,
                max: self.len(),
            };
            return Err(error.into());
        }
        let layout = self.layout();
        let capacity = self.capacity();
        let mut out = Vec::with_capacity(block_len(&layout, tokens, dtype));
        for layer in 0..layout.num_layers {
            let (keys, values) = self.layer_tensors(layer);
            for tensor in [keys, values] {
                with_f32_slice(tensor, |data| {
                    for head in 0..layout.num_kv_heads {
                        let from = (head * capacity + start) * layout.head_dim;
                        let run = &data[from..from + tokens * layout.head_dim];
                        append_encoded(&mut out, run, dtype);
                    }
                })?;
            }
        }
        Ok(out)
    }

    /// Rebuilds a cache from blocks that cover positions `0..` in order, with room for
    /// `capacity` positions (at least the blocks' total, at most the context length).
    ///
    /// Every block's length is checked against its token count before anything is decoded.
    pub fn from_blocks(
        layout: CacheLayout,
        blocks: &[BlockBytes<'_>],
        dtype: BlockDtype,
        capacity: usize,
        device: &Device,
    ) -> Result<KvCache> {
        let total: usize = blocks.iter().map(|block| block.tokens).sum();
        if total > layout.max_positions {
            let error = CacheError::ContextLength {
                cached: 0,
                requested: total,
                max: layout.max_positions,
            };
            return Err(error.into());
        }
        check_block_sizes(&layout, blocks, dtype)?;
        let capacity = capacity.clamp(total.max(1), layout.max_positions.max(1));

        let layers = (0..layout.num_layers)
            .into_par_iter()
            .map(|layer| decode_layer(&layout, blocks, dtype, capacity, layer))
            .collect::<Vec<_>>();
        let mut tensors = Vec::with_capacity(layout.num_layers);
        for (keys, values) in layers {
            let shape = (layout.num_kv_heads, capacity, layout.head_dim);
            let keys = Tensor::from_vec(keys, shape, device)?;
            let values = Tensor::from_vec(values, shape, device)?;
            tensors.push((keys, values));
        }
        KvCache::from_allocated(layout, tensors, total, device)
    }
}

fn check_block_sizes(
    layout: &CacheLayout,
    blocks: &[BlockBytes<'_>],
    dtype: BlockDtype,
) -> Result<()> {
    let mut start = 0;
    for (index, block) in blocks.iter().enumerate() {
        let expected = block_len(layout, block.tokens, dtype);
        if block.bytes.len() != expected || block.tokens == 0 {
            let error = CacheError::BlockSize {
                block: index,
                start,
                end: start + block.tokens,
                expected,
                actual: block.bytes.len(),
            };
            return Err(error.into());
        }
        start += block.tokens;
    }
    Ok(())
}

/// Decodes one layer's keys and values from every block into `[heads, capacity, head_dim]`.
fn decode_layer(
    layout: &CacheLayout,
    blocks: &[BlockBytes<'_>],
    dtype: BlockDtype,
    capacity: usize,
    layer: usize,
) -> (Vec<f32>, Vec<f32>) {
    let plane = layout.num_kv_heads * capacity * layout.head_dim;
    let mut keys = vec![0f32; plane];
    let mut values = vec![0f32; plane];
    let mut start = 0;
    for block in blocks {
        let run = block.tokens * layout.head_dim;
        let half_layer = layout.num_kv_heads * run * dtype.size();
        let layer_offset = layer * 2 * half_layer;
        for (part, target) in [&mut keys, &mut values].into_iter().enumerate() {
            let from = layer_offset + part * half_layer;
            let bytes = &block.bytes[from..from + half_layer];
            for head in 0..layout.num_kv_heads {
                let source = &bytes[head * run * dtype.size()..(head + 1) * run * dtype.size()];
                let at = (head * capacity + start) * layout.head_dim;
                decode_into(source, &mut target[at..at + run], dtype);
            }
        }
        start += block.tokens;
    }
    (keys, values)
}

fn append_encoded(out: &mut Vec<u8>, run: &[f32], dtype: BlockDtype) {
    match dtype {
        BlockDtype::F32 => out.extend_from_slice(bytemuck::cast_slice(run)),
        BlockDtype::F16 => {
            let mut halves = vec![f16::ZERO; run.len()];
            halves.convert_from_f32_slice(run);
            out.extend_from_slice(bytemuck::cast_slice(&halves));
        }
    }
}

/// Converts little-endian elements in `source` into `target`, which has one slot per element.
fn decode_into(source: &[u8], target: &mut [f32], dtype: BlockDtype) {
    match dtype {
        BlockDtype::F32 => match bytemuck::try_cast_slice::<u8, f32>(source) {
            Ok(values) => target.copy_from_slice(values),
            Err(_) => {
                for (slot, chunk) in target.iter_mut().zip(source.chunks_exact(4)) {
                    *slot = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                }
            }
        },
        BlockDtype::F16 => match bytemuck::try_cast_slice::<u8, f16>(source) {
            Ok(halves) => halves.convert_to_f32_slice(target),
            Err(_) => {
                for (slot, chunk) in target.iter_mut().zip(source.chunks_exact(2)) {
                    *slot = f16::from_le_bytes([chunk[0], chunk[1]]).to_f32();
                }
            }
        },
    }
}

/// Runs `f` on the f32 elements of a contiguous CPU tensor's storage.
fn with_f32_slice<T>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        let what = "it is not in CPU memory".to_string();
        return Err(CacheError::Unsupported { what }.into());
    };
    if tensor.dtype() != DType::F32 || !layout.is_contiguous() {
        let what = format!("its tensors are {:?} or strided", tensor.dtype());
        return Err(CacheError::Unsupported { what }.into());
    }
    let data = cpu.as_slice::<f32>()?;
    Ok(f(&data[layout.start_offset()..]))
}
