//! Turning logits into the next token: repeat penalty, temperature, top-k, top-p.
//!
//! A [`Sampler`] owns its random generator, seeded from [`SamplingParams::seed`] when one is
//! given, so the same model, prompt and seed give the same tokens. Temperature 0 is greedy.

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;

/// Settings for choosing the next token and for ending generation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// Divisor of the logits before the softmax; 0 picks the most likely token (greedy).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens; `None` or 0 keeps all.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least `p`;
    /// `None` or 1.0 keeps all.
    pub top_p: Option<f64>,
    /// Penalty on tokens among the last `repeat_last_n`: positive logits are divided by it,
    /// negative ones multiplied, as llama.cpp does; 1.0 turns it off.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Seed of the random generator; `None` seeds from the operating system.
    pub seed: Option<u64>,
    /// Maximum number of tokens to generate for one request.
    pub max_tokens: usize,
}

impl Default for SamplingParams {
    /// Temperature 0.7, top-k 40, top-p 0.9, no repeat penalty (1.0, over the last 64 tokens), no
    /// seed, at most 512 new tokens.
    fn default() -> Self {
        SamplingParams {
            temperature: 0.7,
            top_k: Some(40),
            top_p: Some(0.9),
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: None,
            max_tokens: 512,
        }
    }
}

impl SamplingParams {
    /// Parameters that always pick the most likely token, with no penalty.
    pub fn greedy() -> Self {
        SamplingParams {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..SamplingParams::default()
        }
    }
}

/// Picks tokens from logits according to [`SamplingParams`].
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    /// Creates a sampler; its generator starts from `params.seed` when set.
    pub fn new(params: SamplingParams) -> Sampler {
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Sampler { params, rng }
    }

    /// The parameters this sampler applies.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits` (`[vocab]`), penalizing tokens among the last
    /// `repeat_last_n` of `history`.
    pub fn sample(&mut self, logits: &Tensor, history: &[u32]) -> Result<u32> {
        let mut logits: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let recent_start = history.len().saturating_sub(self.params.repeat_last_n);
        apply_repeat_penalty(
            &mut logits,
            &history[recent_start..],
            self.params.repeat_penalty,
        );
        Ok(self.sample_from(&logits))
    }

    /// Picks a token from plain logits after any penalty was applied.
    pub fn sample_from(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 || logits.is_empty() {
            return argmax(logits);
        }

        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(token, &logit)| (token as u32, logit))
            .collect();
        candidates.sort_by(|left, right| right.1.total_cmp(&left.1));
        if let Some(top_k) = self.params.top_k.filter(|&k| k > 0) {
            candidates.truncate(top_k);
        }

        let probabilities = softmax_with_temperature(&candidates, self.params.temperature);
        let nucleus_size = match self.params.top_p {
            Some(top_p) if top_p < 1.0 => nucleus_len(&probabilities, top_p),
            _ => probabilities.len(),
        };
        let total: f32 = probabilities[..nucleus_size].iter().sum();
        let mut threshold = self.rng.random::<f32>() * total;
        for (index, &probability) in probabilities[..nucleus_size].iter().enumerate() {
            if threshold < probability {
                return candidates[index].0;
            }
            threshold -= probability;
        }
        // Rounding can leave the threshold just above the last probability.
        candidates[nucleus_size - 1].0
    }
}

/// Applies the llama.cpp repeat penalty in place: each distinct token of `recent` has its
/// logit divided by `penalty` when positive and multiplied by it when negative.
pub fn apply_repeat_penalty(logits: &mut [f32], recent: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for &token in recent {
        if !seen.insert(token) {
            continue;
        }
        if let Some(logit) = logits.get_mut(token as usize) {
            *logit = if *logit >= 0.0 {
                *logit / penalty
            } else {
                *logit * penalty
            };
        }
    }
}

/// Returns the index of the largest logit, the first one on ties, or 0 for no logits.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, logit) in logits.iter().enumerate() {
        if logit.total_cmp(&logits[best]).is_gt() {
            best = index;
        }
    }
    best as u32
}

/// Softmax of the candidates' logits divided by `temperature`; candidates are sorted
/// descending, so the first one is the maximum.
fn softmax_with_temperature(candidates: &[(u32, f32)], temperature: f64) -> Vec<f32> {
    let max = candidates[0].1;
    let inverse_temperature = (1.0 / temperature) as f32;
    let weights: Vec<f32> = candidates
        .iter()
        .map(|&(_, logit)| ((logit - max) * inverse_temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    weights.into_iter().map(|weight| weight / total).collect()
}

/// Length of the shortest prefix of descending `probabilities` whose sum reaches `top_p`;
/// at least 1.
fn nucleus_len(probabilities: &[f32], top_p: f64) -> usize {
    let mut cumulative = 0.0f64;
    for (index, &probability) in probabilities.iter().enumerate() {
        cumulative += probability as f64;
        if cumulative >= top_p {
            return index + 1;
        }
    }
    probabilities.len()
}
