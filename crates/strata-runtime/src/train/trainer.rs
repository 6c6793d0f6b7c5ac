//! Training a LoRA adapter set with AdamW on answer tokens.

use candle_core::{D, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::adapter::{AdapterSet, AdapterWeights, LoraConfig};
use super::decoder::{Geometry, TrainLayer, causal_mask, rms_norm};
use super::frozen::FrozenMatmul;
use crate::error::{Error, Result};
use crate::model::{Llama, Projection};

/// Optimizer settings of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of the adapter initialization (and of the caller's shuffling).
    pub seed: u64,
}

/// A token sequence whose loss covers the tokens from `answer_start` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainExample {
    /// The whole rendered conversation.
    pub tokens: Vec<u32>,
    /// Index of the first answer token; the tokens before it are context only.
    pub answer_start: usize,
}

/// An example with the hidden states entering the first adapted layer already computed.
#[derive(Debug)]
pub struct PreparedExample {
    hidden: Tensor,
    targets: Tensor,
    answer_start: usize,
    /// Next-token probabilities to match instead of `targets`, `[answer tokens, vocab]`.
    soft_targets: Option<Tensor>,
}

/// Trains one adapter set over a loaded model.
pub struct Trainer {
    layers: Vec<TrainLayer>,
    norm: Tensor,
    norm_eps: f64,
    head: FrozenMatmul,
    cos: Tensor,
    sin: Tensor,
    geometry: Geometry,
    config: LoraConfig,
    optimizer: AdamW,
    device: Device,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Trainer {
    /// Builds the trainable copy of `model`'s layers from `config.first_layer` on, starting the
    /// adapters from `init` when given (a parent version's adapters) and from a seeded random
    /// `A` and zero `B` otherwise, so an untrained adapter changes nothing.
    pub fn new(
        model: &Llama,
        config: LoraConfig,
        init: Option<&AdapterSet>,
        settings: &TrainSettings,
    ) -> Result<Trainer> {
        let hyperparameters = model.config();
        config.check(hyperparameters.num_hidden_layers)?;
        if let Some(init) = init
            && init.config != config
        {
            let reason = format!(
                "the parent's adapters ({:?}) differ from the requested settings ({config:?})",
                init.config
            );
            return Err(Error::Lora { reason });
        }
        let device = model.device().clone();
        let mut rng = StdRng::seed_from_u64(settings.seed);
        let mut vars = Vec::new();
        let mut layers = Vec::new();
        for index in config.first_layer..hyperparameters.num_hidden_layers {
            let parts = model
                .layer_parts(index)
                .expect("index is below the layer count");
            let mut failure = None;
            let layer = TrainLayer::new(index, &parts, |projection| {
                if !config.targets.contains(&projection) {
                    return None;
                }
                let position = Projection::ALL.iter().position(|p| *p == projection)?;
                let linear = parts.projections[position];
                let start = initial_adapter(
                    init,
                    index,
                    projection,
                    linear.in_features(),
                    linear.out_features(),
                    config.rank,
                    &mut rng,
                    &device,
                );
                match start.and_then(|(a, b)| Ok((Var::from_tensor(&a)?, Var::from_tensor(&b)?))) {
                    Ok((a, b)) => {
                        vars.push(a.clone());
                        vars.push(b.clone());
                        Some((a, b))
                    }
                    Err(error) => {
                        failure = Some(error);
                        None
                    }
                }
            })?;
            if let Some(error) = failure {
                return Err(error);
            }
            layers.push(layer);
        }

        let params = ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: settings.weight_decay,
            ..ParamsAdamW::default()
        };
        let (cos, sin, rope_style) = model.rope_tables();
        Ok(Trainer {
            layers,
            norm: model.output_norm().clone(),
            norm_eps: hyperparameters.rms_norm_eps,
            head: FrozenMatmul::new(model.lm_head().dense_weight(&device)?)?,
            cos: cos.clone(),
            sin: sin.clone(),
            geometry: Geometry {
                num_heads: hyperparameters.num_attention_heads,
                num_kv_heads: hyperparameters.num_key_value_heads,
                head_dim: hyperparameters.head_dim,
                rope_style,
            },
            config,
            optimizer: AdamW::new(vars, params)?,
            device,
        })
    }

    /// Returns the adapter placement being trained.
    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// Runs the frozen layers below the adapters over `example` once.
    pub fn prepare(&self, model: &Llama, example: &TrainExample) -> Result<PreparedExample> {
        let len = example.tokens.len();
        if example.answer_start == 0 || example.answer_start >= len {
            let reason = format!(
                "an example of {len} tokens needs its answer to start between 1 and {}, not at {}",
                len.saturating_sub(1),
                example.answer_start
            );
            return Err(Error::Lora { reason });
        }
        let hidden = model
            .hidden_before(&example.tokens, self.config.first_layer)?
            .detach();
        let targets = Tensor::new(&example.tokens[example.answer_start..], &self.device)?;
        Ok(PreparedExample {
            hidden,
            targets,
            answer_start: example.answer_start,
            soft_targets: None,
        })
    }

    /// Makes `example` a distillation example: its loss becomes the cross-entropy against the
    /// next-token distributions the adapters give now (before any step, the starting
    /// adapters'), so training keeps the whole distribution there, not only the likeliest token.
    pub fn distill(&self, example: &mut PreparedExample) -> Result<()> {
        let logits = self.answer_logits(example)?;
        let probabilities = candle_nn::ops::softmax_last_dim(&logits)?.detach();
        example.soft_targets = Some(probabilities);
        Ok(())
    }

    /// Computes the mean cross-entropy of the answer tokens of `batch`.
    pub fn loss(&self, batch: &[PreparedExample]) -> Result<f32> {
        Ok(self.batch_loss(batch)?.to_scalar::<f32>()?)
    }

    /// Takes one AdamW step on the mean answer-token loss of `batch`; returns that loss.
    pub fn step(&mut self, batch: &[PreparedExample]) -> Result<f32> {
        let loss = self.batch_loss(batch)?;
        self.optimizer.backward_step(&loss)?;
        Ok(loss.to_scalar::<f32>()?)
    }

    /// Copies the current adapter matrices out.
    pub fn adapters(&self) -> Result<AdapterSet> {
        let mut entries = Vec::new();
        for layer in &self.layers {
            for (projection, linear) in Projection::ALL.into_iter().zip(&layer.projections) {
                if let Some((a, b)) = &linear.adapter {
                    entries.push(AdapterWeights {
                        layer: layer.index,
                        projection,
                        a: a.as_tensor().copy()?,
                        b: b.as_tensor().copy()?,
                    });
                }
            }
        }
        Ok(AdapterSet {
            config: self.config.clone(),
            entries,
        })
    }

    fn batch_loss(&self, batch: &[PreparedExample]) -> Result<Tensor> {
        if batch.is_empty() {
            let reason = "a training batch needs at least one example".to_string();
            return Err(Error::Lora { reason });
        }
        let mut total: Option<Tensor> = None;
        let mut tokens = 0;
        for example in batch {
            let summed = self.example_loss(example)?;
            tokens += example.targets.dim(0)?;
            total = Some(match total {
                Some(total) => (total + summed)?,
                None => summed,
            });
        }
        let total = total.expect("the batch is not empty");
        Ok((total / tokens as f64)?)
    }

    /// Sums the negative log-likelihood of one example's answer tokens, or the cross-entropy
    /// against its soft targets.
    fn example_loss(&self, example: &PreparedExample) -> Result<Tensor> {
        let logits = self.answer_logits(example)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = match &example.soft_targets {
            Some(probabilities) => (probabilities * log_probs)?,
            None => log_probs.gather(&example.targets.unsqueeze(1)?, 1)?,
        };
        Ok(picked.sum_all()?.neg()?)
    }

    /// Runs the adapted layers and returns the logits that predict the answer tokens.
    fn answer_logits(&self, example: &PreparedExample) -> Result<Tensor> {
        let (seq_len, _) = example.hidden.dims2()?;
        let mask = causal_mask(seq_len, &self.device)?;
        let scale = self.config.scale();
        let mut hidden = example.hidden.clone();
        for layer in &self.layers {
            hidden = layer.forward(&hidden, &mask, (&self.cos, &self.sin), self.geometry, scale)?;
        }
        let answer_len = seq_len - example.answer_start;
        let predicting = hidden.narrow(0, example.answer_start - 1, answer_len)?;
        let normed = rms_norm(&predicting, &self.norm, self.norm_eps)?;
        Ok(self.head.forward(&normed)?)
    }
}

/// Returns the starting matrices of one adapter: the parent's when it has them, else a seeded uniform
/// `A` in `±1/√in` and a zero `B`.
#[allow(clippy::too_many_arguments)]
fn initial_adapter(
    init: Option<&AdapterSet>,
    layer: usize,
    projection: Projection,
    in_features: usize,
    out_features: usize,
    rank: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let parent = init.and_then(|set| {
        set.entries
            .iter()
            .find(|entry| entry.layer == layer && entry.projection == projection)
    });
    if let Some(entry) = parent {
        return Ok((entry.a.copy()?, entry.b.copy()?));
    }
    let bound = 1.0 / (in_features as f32).sqrt();
    let values: Vec<f32> = (0..rank * in_features)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let a = Tensor::from_vec(values, (rank, in_features), device)?;
    let b = Tensor::zeros((out_features, rank), candle_core::DType::F32, device)?;
    Ok((a, b))
}
