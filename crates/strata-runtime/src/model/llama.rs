//! The llama-family decoder: Llama, SmolLM2 and Qwen2.
//!
//! Weights are read by their GGUF names from a [`TensorSet`] and checked against the
//! hyperparameters before anything runs. The KV cache is not part of the model: every forward
//! pass takes a [`KvCache`] from the caller and continues at its length, so one loaded model can
//! serve many sequences and a sequence can be saved and restored. RMS norm, softmax and rotary
//! embedding use candle's fused kernels, each behind a small function so a training path can
//! swap in differentiable versions.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use strata_model::{Architecture, Hyperparameters, TensorSet, TensorView};

use super::kv_blocks::BlockDtype;
use super::kv_cache::{CacheLayout, KvCache};
use super::linear::{Kernel, Linear, float_tensor};
use super::rope::RotaryEmbedding;
use crate::error::{CacheError, Error, LoadError, Result};

/// A linear projection inside a decoder layer, for attaching LoRA adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Projection {
    /// Attention query projection, `attn_q`.
    Query,
    /// Attention key projection, `attn_k`.
    Key,
    /// Attention value projection, `attn_v`.
    Value,
    /// Attention output projection, `attn_output`.
    Output,
    /// Feed-forward gate projection, `ffn_gate`.
    Gate,
    /// Feed-forward up projection, `ffn_up`.
    Up,
    /// Feed-forward down projection, `ffn_down`.
    Down,
}

impl Projection {
    /// Every projection of a layer, attention first.
    pub const ALL: [Projection; 7] = [
        Projection::Query,
        Projection::Key,
        Projection::Value,
        Projection::Output,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ];

    /// Returns the tensor-name part GGUF files use for the projection, such as `attn_q`.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Projection::Query => "attn_q",
            Projection::Key => "attn_k",
            Projection::Value => "attn_v",
            Projection::Output => "attn_output",
            Projection::Gate => "ffn_gate",
            Projection::Up => "ffn_up",
            Projection::Down => "ffn_down",
        }
    }

    /// Returns the short name used on the command line: `q`, `k`, `v`, `o`, `gate`, `up` or `down`.
    pub fn short_name(self) -> &'static str {
        match self {
            Projection::Query => "q",
            Projection::Key => "k",
            Projection::Value => "v",
            Projection::Output => "o",
            Projection::Gate => "gate",
            Projection::Up => "up",
            Projection::Down => "down",
        }
    }

    /// Parses a short name or a GGUF name.
    pub fn parse(name: &str) -> Option<Projection> {
        Projection::ALL
            .into_iter()
            .find(|projection| projection.short_name() == name || projection.gguf_name() == name)
    }
}

impl serde::Serialize for Projection {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.short_name())
    }
}

impl<'de> serde::Deserialize<'de> for Projection {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Projection::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown projection `{name}`: expected q, k, v, o, gate, up or down"
            ))
        })
    }
}

/// Borrowed weights of one decoder layer, for the training path.
#[derive(Debug)]
pub struct LayerParts<'a> {
    /// Weight of the RMS norm before attention.
    pub attention_norm: &'a Tensor,
    /// Weight of the RMS norm before the feed-forward block.
    pub ffn_norm: &'a Tensor,
    /// Epsilon of both norms.
    pub rms_norm_eps: f64,
    /// The seven projections, in [`Projection::ALL`] order.
    pub projections: [&'a Linear; 7],
}

/// Normalizes the last dimension by its root mean square and scales it by `weight`.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    Ok(candle_nn::ops::rms_norm(x, weight, eps as f32)?)
}

fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::softmax_last_dim(x)?)
}

fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::silu(x)?)
}

/// Looks tensors up by name and checks their shapes against the hyperparameters.
struct Weights<'a> {
    tensors: &'a TensorSet,
    device: &'a Device,
}

impl Weights<'_> {
    fn view(&self, name: &str, expected: &[usize]) -> Result<&TensorView> {
        let Some(view) = self.tensors.get(name) else {
            let error = LoadError::MissingTensor {
                name: name.to_owned(),
                expected: expected.to_vec(),
            };
            return Err(error.into());
        };
        if view.shape != expected {
            let error = LoadError::ShapeMismatch {
                name: name.to_owned(),
                expected: expected.to_vec(),
                actual: view.shape.clone(),
            };
            return Err(error.into());
        }
        Ok(view)
    }

    fn linear(&self, name: &str, out_features: usize, in_features: usize) -> Result<Linear> {
        Linear::from_view(self.view(name, &[out_features, in_features])?, self.device)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Tensor> {
        float_tensor(self.view(name, &[len])?, self.device)
    }
}

#[derive(Clone, Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &Hyperparameters, biases: bool, prefix: &str, weights: &Weights) -> Result<Self> {
        let hidden_size = cfg.hidden_size;
        let query_width = cfg.num_attention_heads * cfg.head_dim;
        let kv_width = cfg.num_key_value_heads * cfg.head_dim;

        let mut q_proj =
            weights.linear(&format!("{prefix}.attn_q.weight"), query_width, hidden_size)?;
        let mut k_proj =
            weights.linear(&format!("{prefix}.attn_k.weight"), kv_width, hidden_size)?;
        let mut v_proj =
            weights.linear(&format!("{prefix}.attn_v.weight"), kv_width, hidden_size)?;
        if biases {
            q_proj =
                q_proj.with_bias(weights.vector(&format!("{prefix}.attn_q.bias"), query_width)?);
            k_proj = k_proj.with_bias(weights.vector(&format!("{prefix}.attn_k.bias"), kv_width)?);
            v_proj = v_proj.with_bias(weights.vector(&format!("{prefix}.attn_v.bias"), kv_width)?);
        }
        let o_proj = weights.linear(
            &format!("{prefix}.attn_output.weight"),
            hidden_size,
            query_width,
        )?;

        Ok(Attention {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            num_heads: cfg.num_attention_heads,
            num_kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
        })
    }

    /// Attends `x` (`[seq, hidden]`, positions `cache.len()..`) over the cached prefix and
    /// itself, writing this layer's keys and values into the cache.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        rope: &RotaryEmbedding,
        cache: &mut KvCache,
        layer: usize,
        kernel: Kernel,
    ) -> Result<Tensor> {
        let query_states = self.q_proj.forward_with(x, kernel)?;
        let key_states = self.k_proj.forward_with(x, kernel)?;
        let value_states = self.v_proj.forward_with(x, kernel)?;
        let attention = self.attend(
            &query_states,
            &key_states,
            &value_states,
            mask,
            rope,
            cache,
            layer,
        )?;
        self.o_proj.forward_with(&attention, kernel)
    }

    /// Attends one new position per sequence: row `i` of `x` (`[caches.len(), hidden]`)
    /// continues `caches[i]`. Each row's output is exactly what [`Attention::forward`] gives
    /// for that row alone.
    fn forward_batch(
        &self,
        x: &Tensor,
        rope: &RotaryEmbedding,
        caches: &mut [&mut KvCache],
        layer: usize,
    ) -> Result<Tensor> {
        let query_states = self.q_proj.forward_with(x, Kernel::Blocks)?;
        let key_states = self.k_proj.forward_with(x, Kernel::Blocks)?;
        let value_states = self.v_proj.forward_with(x, Kernel::Blocks)?;

        // Sequences attend over their own caches independently, so they run side by side on
        // the thread pool instead of splitting each small matmul across threads.
        let rows = caches
            .par_iter_mut()
            .enumerate()
            .map(|(row, cache)| {
                self.attend(
                    &query_states.narrow(0, row, 1)?,
                    &key_states.narrow(0, row, 1)?,
                    &value_states.narrow(0, row, 1)?,
                    None,
                    rope,
                    cache,
                    layer,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let attention = Tensor::cat(&rows, 0)?;
        self.o_proj.forward_with(&attention, Kernel::Blocks)
    }

    /// Applies rotary embedding to projected queries and keys (`[seq, width]`, positions
    /// `cache.len()..`), writes keys and values into the cache and returns the attention
    /// output before the output projection, `[seq, heads · head_dim]`.
    #[allow(clippy::too_many_arguments)]
    fn attend(
        &self,
        query_states: &Tensor,
        key_states: &Tensor,
        value_states: &Tensor,
        mask: Option<&Tensor>,
        rope: &RotaryEmbedding,
        cache: &mut KvCache,
        layer: usize,
    ) -> Result<Tensor> {
        let (seq_len, _width) = query_states.dims2()?;
        let start = cache.len();

        let query_states = query_states
            .reshape((1, seq_len, self.num_heads, self.head_dim))?
            .transpose(1, 2)?;
        let key_states = key_states
            .reshape((1, seq_len, self.num_kv_heads, self.head_dim))?
            .transpose(1, 2)?;
        let value_states = value_states
            .reshape((seq_len, self.num_kv_heads, self.head_dim))?
            .transpose(0, 1)?;

        let query_states = rope.apply(&query_states, start)?.squeeze(0)?;
        let key_states = rope.apply(&key_states, start)?.squeeze(0)?;

        let (key_states, value_states) = cache.write(layer, &key_states, &value_states)?;
        let total_len = key_states.dim(1)?;

        // Grouped-query attention without repeating keys: the query heads that share a key head
        // are adjacent, so folding them into the row dimension gives one matmul per key head.
        let num_kv_groups = self.num_heads / self.num_kv_heads;
        let grouped_queries =
            query_states.reshape((self.num_kv_heads, num_kv_groups * seq_len, self.head_dim))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (grouped_queries.matmul(&key_states.t()?)? * scale)?;
        let scores = scores.reshape((self.num_heads, seq_len, total_len))?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probabilities = softmax_last_dim(&scores)?.reshape((
            self.num_kv_heads,
            num_kv_groups * seq_len,
            total_len,
        ))?;
        let attention = probabilities.matmul(&value_states)?;

        Ok(attention
            .reshape((self.num_heads, seq_len, self.head_dim))?
            .transpose(0, 1)?
            .reshape((seq_len, self.num_heads * self.head_dim))?)
    }

    fn projection_mut(&mut self, projection: Projection) -> Option<&mut Linear> {
        match projection {
            Projection::Query => Some(&mut self.q_proj),
            Projection::Key => Some(&mut self.k_proj),
            Projection::Value => Some(&mut self.v_proj),
            Projection::Output => Some(&mut self.o_proj),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &Hyperparameters, prefix: &str, weights: &Weights) -> Result<Self> {
        let (hidden_size, intermediate_size) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: weights.linear(
                &format!("{prefix}.ffn_gate.weight"),
                intermediate_size,
                hidden_size,
            )?,
            up_proj: weights.linear(
                &format!("{prefix}.ffn_up.weight"),
                intermediate_size,
                hidden_size,
            )?,
            down_proj: weights.linear(
                &format!("{prefix}.ffn_down.weight"),
                hidden_size,
                intermediate_size,
            )?,
        })
    }

    /// SwiGLU: `down(silu(gate(x)) · up(x))`.
    fn forward(&self, x: &Tensor, kernel: Kernel) -> Result<Tensor> {
        let gate = silu(&self.gate_proj.forward_with(x, kernel)?)?;
        let up = self.up_proj.forward_with(x, kernel)?;
        self.down_proj.forward_with(&(gate * up)?, kernel)
    }

    fn projection_mut(&mut self, projection: Projection) -> Option<&mut Linear> {
        match projection {
            Projection::Gate => Some(&mut self.gate_proj),
            Projection::Up => Some(&mut self.up_proj),
            Projection::Down => Some(&mut self.down_proj),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct DecoderLayer {
    attention_norm: Tensor,
    attention: Attention,
    ffn_norm: Tensor,
    mlp: Mlp,
    rms_norm_eps: f64,
}

impl DecoderLayer {
    fn new(cfg: &Hyperparameters, biases: bool, index: usize, weights: &Weights) -> Result<Self> {
        let prefix = format!("blk.{index}");
        Ok(DecoderLayer {
            attention_norm: weights
                .vector(&format!("{prefix}.attn_norm.weight"), cfg.hidden_size)?,
            attention: Attention::new(cfg, biases, &prefix, weights)?,
            ffn_norm: weights.vector(&format!("{prefix}.ffn_norm.weight"), cfg.hidden_size)?,
            mlp: Mlp::new(cfg, &prefix, weights)?,
            rms_norm_eps: cfg.rms_norm_eps,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        rope: &RotaryEmbedding,
        cache: &mut KvCache,
        layer: usize,
        kernel: Kernel,
    ) -> Result<Tensor> {
        let residual = x;
        let hidden_states = rms_norm(x, &self.attention_norm, self.rms_norm_eps)?;
        let hidden_states =
            self.attention
                .forward(&hidden_states, mask, rope, cache, layer, kernel)?;
        let x = (hidden_states + residual)?;

        let residual = &x;
        let hidden_states = rms_norm(&x, &self.ffn_norm, self.rms_norm_eps)?;
        let hidden_states = self.mlp.forward(&hidden_states, kernel)?;
        Ok((hidden_states + residual)?)
    }

    /// One new position per sequence, row `i` of `x` continuing `caches[i]`.
    fn forward_batch(
        &self,
        x: &Tensor,
        rope: &RotaryEmbedding,
        caches: &mut [&mut KvCache],
        layer: usize,
    ) -> Result<Tensor> {
        let residual = x;
        let hidden_states = rms_norm(x, &self.attention_norm, self.rms_norm_eps)?;
        let hidden_states = self
            .attention
            .forward_batch(&hidden_states, rope, caches, layer)?;
        let x = (hidden_states + residual)?;

        let residual = &x;
        let hidden_states = rms_norm(&x, &self.ffn_norm, self.rms_norm_eps)?;
        let hidden_states = self.mlp.forward(&hidden_states, Kernel::Blocks)?;
        Ok((hidden_states + residual)?)
    }
}

/// A loaded llama-family decoder.
///
/// Cloning is cheap: the clone shares every weight, and attaching an adapter to it leaves the
/// original as it was.
#[derive(Clone, Debug)]
pub struct Llama {
    /// Token embedding dequantized to f32, `[vocab, hidden]`, for row lookups.
    embedding: Tensor,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    lm_head: Linear,
    rope: RotaryEmbedding,
    config: Hyperparameters,
    architecture: Architecture,
    device: Device,
    kv_precision: BlockDtype,
}

impl Llama {
    /// Builds the decoder from GGUF-named tensors, checking that every tensor is present with
    /// the shape the hyperparameters imply.
    pub fn load(
        config: &Hyperparameters,
        architecture: Architecture,
        tensors: &TensorSet,
        device: &Device,
    ) -> Result<Llama> {
        check_hyperparameters(config)?;
        let weights = Weights { tensors, device };
        let (vocab_size, hidden_size) = (config.vocab_size, config.hidden_size);

        let embedding_view = weights.view("token_embd.weight", &[vocab_size, hidden_size])?;
        let embedding = float_tensor(embedding_view, device)?;
        let lm_head = if config.tie_word_embeddings {
            Linear::from_view(embedding_view, device)?
        } else {
            weights.linear("output.weight", vocab_size, hidden_size)?
        };

        let biases = config.attention_bias || architecture == Architecture::Qwen2;
        tracing::debug!(
            ?architecture,
            biases,
            tied = config.tie_word_embeddings,
            "loading decoder"
        );
        let layers = (0..config.num_hidden_layers)
            .map(|index| DecoderLayer::new(config, biases, index, &weights))
            .collect::<Result<Vec<_>>>()?;
        let norm = weights.vector("output_norm.weight", hidden_size)?;
        let rope = RotaryEmbedding::new(
            config.head_dim,
            config.rope_theta,
            config.max_position_embeddings,
            config.rope_style,
            device,
        )?;

        Ok(Llama {
            embedding,
            layers,
            norm,
            lm_head,
            rope,
            config: config.clone(),
            architecture,
            device: device.clone(),
            kv_precision: BlockDtype::F32,
        })
    }

    /// The hyperparameters the model was loaded with.
    pub fn config(&self) -> &Hyperparameters {
        &self.config
    }

    /// The decoder variant.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Geometry of the caches this model reads and writes.
    pub fn cache_layout(&self) -> CacheLayout {
        CacheLayout {
            dtype: DType::F32,
            num_layers: self.config.num_hidden_layers,
            num_kv_heads: self.config.num_key_value_heads,
            head_dim: self.config.head_dim,
            max_positions: self.config.max_position_embeddings,
            precision: self.kv_precision,
        }
    }

    /// Sets the precision new caches keep keys and values in (f32 unless set).
    pub fn set_kv_precision(&mut self, precision: BlockDtype) {
        self.kv_precision = precision;
    }

    /// Creates an empty cache with room for `capacity` positions before it first grows.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        KvCache::new(self.cache_layout(), capacity, &self.device)
    }

    /// The linear layer `projection` of decoder layer `layer`, for attaching a LoRA adapter;
    /// `None` when `layer` is out of range.
    pub fn projection_mut(&mut self, layer: usize, projection: Projection) -> Option<&mut Linear> {
        let layer = self.layers.get_mut(layer)?;
        match projection {
            Projection::Query | Projection::Key | Projection::Value | Projection::Output => {
                layer.attention.projection_mut(projection)
            }
            Projection::Gate | Projection::Up | Projection::Down => {
                layer.mlp.projection_mut(projection)
            }
        }
    }

    /// Returns the weights of decoder layer `layer`, or `None` when it is out of range.
    pub fn layer_parts(&self, layer: usize) -> Option<LayerParts<'_>> {
        let decoder = self.layers.get(layer)?;
        let attention = &decoder.attention;
        let mlp = &decoder.mlp;
        Some(LayerParts {
            attention_norm: &decoder.attention_norm,
            ffn_norm: &decoder.ffn_norm,
            rms_norm_eps: decoder.rms_norm_eps,
            projections: [
                &attention.q_proj,
                &attention.k_proj,
                &attention.v_proj,
                &attention.o_proj,
                &mlp.gate_proj,
                &mlp.up_proj,
                &mlp.down_proj,
            ],
        })
    }

    /// Returns the weight of the final RMS norm.
    pub fn output_norm(&self) -> &Tensor {
        &self.norm
    }

    /// Returns the output projection from hidden states to logits.
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }

    /// Returns the rotary embedding tables, `[max_positions, head_dim / 2]` each, and their pairing.
    pub fn rope_tables(&self) -> (&Tensor, &Tensor, strata_model::RopeStyle) {
        self.rope.tables()
    }

    /// Runs the embedding and layers `0..layer` over `tokens` from position 0 and returns the
    /// hidden states entering layer `layer`, `[tokens.len(), hidden]`.
    pub fn hidden_before(&self, tokens: &[u32], layer: usize) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(Error::EmptyInput {
                op: "hidden_before",
            });
        }
        self.check_tokens(tokens)?;
        let mut cache = self.new_cache(tokens.len())?;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut hidden_states = self.embedding.index_select(&ids, 0)?;
        let mask = causal_mask(tokens.len(), 0, &self.device)?;
        for (index, decoder) in self.layers.iter().enumerate().take(layer) {
            hidden_states = decoder.forward(
                &hidden_states,
                mask.as_ref(),
                &self.rope,
                &mut cache,
                index,
                Kernel::ByRows,
            )?;
        }
        Ok(hidden_states)
    }

    /// Runs layers `layer..` over hidden states of positions `0..`, as
    /// [`hidden_before`](Self::hidden_before) returns them, and returns the logits of every
    /// position, `[positions, vocab]`.
    pub fn logits_from(&self, hidden_states: &Tensor, layer: usize) -> Result<Tensor> {
        let (positions, _) = hidden_states.dims2()?;
        let mut cache = self.new_cache(positions)?;
        let mask = causal_mask(positions, 0, &self.device)?;
        let mut hidden_states = hidden_states.clone();
        for (index, decoder) in self.layers.iter().enumerate().skip(layer) {
            hidden_states = decoder.forward(
                &hidden_states,
                mask.as_ref(),
                &self.rope,
                &mut cache,
                index,
                Kernel::ByRows,
            )?;
        }
        let hidden_states = rms_norm(&hidden_states, &self.norm, self.config.rms_norm_eps)?;
        self.lm_head.forward_dense(&hidden_states)
    }

    /// Feeds `tokens` at positions `cache.len()..` and returns the logits of the last one,
    /// `[vocab]` f32.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let hidden_states = self.forward_hidden(tokens, cache, Kernel::ByRows)?;
        let last = hidden_states.narrow(0, tokens.len() - 1, 1)?;
        // A prompt's hidden states came through f32 weights, so its logits do too: the first
        // answer token then matches an all-f32 run.
        let logits = if tokens.len() > 1 {
            self.lm_head.forward_dense(&last)?
        } else {
            self.lm_head.forward(&last)?
        };
        Ok(logits.squeeze(0)?)
    }

    /// Feeds prompt tokens like [`Llama::forward`], but through the f32 copies of quantized
    /// weights even for a single token, and returns the logits of the last one, `[vocab]`.
    ///
    /// A prompt whose every token but the last is cached then gets the logits a whole-prompt
    /// pass gives (up to float rounding), not those of the 8-bit decode kernels.
    pub fn forward_prompt(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let hidden_states = self.forward_hidden(tokens, cache, Kernel::Dense)?;
        let last = hidden_states.narrow(0, tokens.len() - 1, 1)?;
        Ok(self.lm_head.forward_dense(&last)?.squeeze(0)?)
    }

    /// Feeds `tokens` at positions `cache.len()..` and returns the logits of every one,
    /// `[tokens.len(), vocab]` f32.
    pub fn forward_all(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let hidden_states = self.forward_hidden(tokens, cache, Kernel::ByRows)?;
        self.lm_head.forward(&hidden_states)
    }

    /// Feeds one token to each of several sequences at once and returns their next-token
    /// logits, `[tokens.len(), vocab]`: `tokens[i]` goes at position `caches[i].len()`.
    ///
    /// The projections of all rows share one pass over the weights; attention runs per cache.
    /// Row `i` equals, bit for bit, what [`Llama::forward`] returns for `tokens[i]` on
    /// `caches[i]` alone, so batching never changes a sequence's tokens.
    pub fn forward_batch(&self, tokens: &[u32], caches: &mut [&mut KvCache]) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(Error::EmptyInput {
                op: "forward_batch",
            });
        }
        if tokens.len() != caches.len() {
            return Err(Error::BatchSize {
                tokens: tokens.len(),
                caches: caches.len(),
            });
        }
        self.check_tokens(tokens)?;
        for cache in caches.iter_mut() {
            self.check_cache(cache)?;
            cache.reserve(1)?;
        }

        let ids = Tensor::new(tokens, &self.device)?;
        let mut hidden_states = self.embedding.index_select(&ids, 0)?;
        for (index, layer) in self.layers.iter().enumerate() {
            hidden_states = layer.forward_batch(&hidden_states, &self.rope, caches, index)?;
        }
        for cache in caches.iter_mut() {
            cache.advance(1);
        }
        let hidden_states = rms_norm(&hidden_states, &self.norm, self.config.rms_norm_eps)?;
        self.lm_head.forward_with(&hidden_states, Kernel::Blocks)
    }

    /// Runs every layer and the final norm; returns `[tokens.len(), hidden]`.
    fn forward_hidden(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        kernel: Kernel,
    ) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(Error::EmptyInput { op: "forward" });
        }
        self.check_cache(cache)?;
        self.check_tokens(tokens)?;
        cache.reserve(tokens.len())?;

        let start = cache.len();
        let ids = Tensor::new(tokens, &self.device)?;
        let mut hidden_states = self.embedding.index_select(&ids, 0)?;
        let mask = causal_mask(tokens.len(), start, &self.device)?;
        for (index, layer) in self.layers.iter().enumerate() {
            hidden_states = layer.forward(
                &hidden_states,
                mask.as_ref(),
                &self.rope,
                cache,
                index,
                kernel,
            )?;
        }
        cache.advance(tokens.len());
        rms_norm(&hidden_states, &self.norm, self.config.rms_norm_eps)
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let vocab_size = self.config.vocab_size;
        match tokens.iter().find(|&&token| token as usize >= vocab_size) {
            Some(&token) => Err(Error::TokenOutOfRange { token, vocab_size }),
            None => Ok(()),
        }
    }

    fn check_cache(&self, cache: &KvCache) -> Result<()> {
        let expected = self.cache_layout();
        let actual = cache.layout();
        let fields = [
            ("layers", expected.num_layers, actual.num_layers),
            ("kv heads", expected.num_kv_heads, actual.num_kv_heads),
            ("head dim", expected.head_dim, actual.head_dim),
            (
                "max positions",
                expected.max_positions,
                actual.max_positions,
            ),
        ];
        for (field, expected, actual) in fields {
            if expected != actual {
                let error = CacheError::LayoutMismatch {
                    field,
                    expected,
                    actual,
                };
                return Err(error.into());
            }
        }
        Ok(())
    }
}

/// Builds the additive causal mask `[seq_len, start + seq_len]` for queries at positions
/// `start..start + seq_len`: a query attends to the whole cached prefix and itself, not to later
/// tokens. A single query attends to everything, so it needs no mask.
fn causal_mask(seq_len: usize, start: usize, device: &Device) -> Result<Option<Tensor>> {
    if seq_len <= 1 {
        return Ok(None);
    }
    let total_len = start + seq_len;
    let mask: Vec<f32> = (0..seq_len)
        .flat_map(|row| {
            (0..total_len).map(move |column| {
                if column > start + row {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Some(Tensor::from_vec(mask, (seq_len, total_len), device)?))
}

fn check_hyperparameters(cfg: &Hyperparameters) -> Result<()> {
    let reason = if cfg.num_key_value_heads == 0 || cfg.num_attention_heads == 0 {
        Some("num_attention_heads and num_key_value_heads must be positive".to_owned())
    } else if !cfg
        .num_attention_heads
        .is_multiple_of(cfg.num_key_value_heads)
    {
        Some(format!(
            "num_attention_heads {} is not a multiple of num_key_value_heads {}",
            cfg.num_attention_heads, cfg.num_key_value_heads
        ))
    } else if cfg.head_dim == 0 || !cfg.head_dim.is_multiple_of(2) {
        Some(format!(
            "head_dim {} must be even and positive for rotary embedding",
            cfg.head_dim
        ))
    } else if cfg.max_position_embeddings == 0 {
        Some("max_position_embeddings must be positive".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LoadError::Hyperparameters { reason }.into()),
        None => Ok(()),
    }
}
