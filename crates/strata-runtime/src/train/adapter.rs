//! LoRA adapter sets: where adapters sit, their matrices, and the tensor names they are stored
//! under (`blk.N.attn_q.lora_a` and `blk.N.attn_q.lora_b`, f32, behind a prefix such as
//! `lesson.3.` when a version contains one set per lesson).

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use strata_model::{AdapterInfo, GgmlType, TensorSet};

use crate::error::{Error, Result};
use crate::model::{Llama, LoraAdapter, Projection};

/// Placement and size of a model's adapters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank of every adapter.
    pub rank: usize,
    /// Scaling numerator: an adapter adds `alpha / rank · B·A`.
    pub alpha: f64,
    /// The first decoder layer with adapters; every layer from it to the last has them.
    pub first_layer: usize,
    /// Projections that carry an adapter in each of those layers.
    pub targets: Vec<Projection>,
}

impl LoraConfig {
    /// Reads the placement a version's config records.
    pub fn from_info(info: &AdapterInfo) -> Result<LoraConfig> {
        let targets = info
            .targets
            .iter()
            .map(|name| {
                Projection::parse(name).ok_or_else(|| Error::Lora {
                    reason: format!(
                        "unknown target projection `{name}`: expected q, k, v, o, gate, up or down"
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LoraConfig {
            rank: info.rank,
            alpha: info.alpha,
            first_layer: info.first_layer,
            targets,
        })
    }

    /// Converts the placement to the form a version's config records.
    pub fn to_info(&self) -> AdapterInfo {
        AdapterInfo {
            rank: self.rank,
            alpha: self.alpha,
            first_layer: self.first_layer,
            targets: self
                .targets
                .iter()
                .map(|t| t.short_name().to_string())
                .collect(),
        }
    }

    /// Factor applied to an adapter's output.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Checks the settings against a model with `layers` decoder layers.
    pub fn check(&self, layers: usize) -> Result<()> {
        let reason = if self.rank == 0 {
            Some("rank must be at least 1".to_string())
        } else if !(self.alpha.is_finite() && self.alpha > 0.0) {
            Some(format!("alpha {} must be a positive number", self.alpha))
        } else if self.first_layer >= layers {
            Some(format!(
                "first adapter layer {} is past the model's last layer {}",
                self.first_layer,
                layers.saturating_sub(1)
            ))
        } else if self.targets.is_empty() {
            Some("at least one target projection is needed".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::Lora { reason }),
            None => Ok(()),
        }
    }
}

/// One adapter's matrices.
#[derive(Clone, Debug)]
pub struct AdapterWeights {
    /// Decoder layer.
    pub layer: usize,
    /// Projection within the layer.
    pub projection: Projection,
    /// Down projection, `[rank, in]`.
    pub a: Tensor,
    /// Up projection, `[out, rank]`.
    pub b: Tensor,
}

/// Every adapter of a model version.
#[derive(Clone, Debug)]
pub struct AdapterSet {
    /// Placement and size.
    pub config: LoraConfig,
    /// One entry per adapted projection.
    pub entries: Vec<AdapterWeights>,
}

/// One adapter matrix ready to store: its name, shape and little-endian f32 bytes.
pub type StoredTensor = (String, Vec<usize>, Vec<u8>);

/// Returns the stored names of an adapter's `A` and `B` matrices.
pub fn tensor_names(layer: usize, projection: Projection) -> (String, String) {
    let stem = format!("blk.{layer}.{}", projection.gguf_name());
    (format!("{stem}.lora_a"), format!("{stem}.lora_b"))
}

/// True when `name` is the name of an adapter matrix.
pub fn is_adapter_tensor(name: &str) -> bool {
    name.ends_with(".lora_a") || name.ends_with(".lora_b")
}

impl AdapterSet {
    /// Reads every adapter `config` places from a version's tensors.
    pub fn from_tensors(
        config: LoraConfig,
        tensors: &TensorSet,
        device: &Device,
    ) -> Result<AdapterSet> {
        AdapterSet::from_prefixed(config, tensors, "", device)
    }

    /// Reads every adapter `config` places from the version's tensors whose names start with
    /// `prefix`, such as `lesson.3.`.
    pub fn from_prefixed(
        config: LoraConfig,
        tensors: &TensorSet,
        prefix: &str,
        device: &Device,
    ) -> Result<AdapterSet> {
        let names = |layer, projection| {
            let (a, b) = tensor_names(layer, projection);
            (format!("{prefix}{a}"), format!("{prefix}{b}"))
        };
        let mut entries = Vec::new();
        for layer in config.first_layer.. {
            let (first_a, _) = names(layer, config.targets[0]);
            if tensors.get(&first_a).is_none() {
                break;
            }
            for &projection in &config.targets {
                let (a_name, b_name) = names(layer, projection);
                let a = read_f32(tensors, &a_name, device)?;
                let b = read_f32(tensors, &b_name, device)?;
                entries.push(AdapterWeights {
                    layer,
                    projection,
                    a,
                    b,
                });
            }
        }
        if entries.is_empty() {
            let reason = format!(
                "the version's config names adapters `{prefix}blk.{}.*` but it has no such tensors",
                config.first_layer
            );
            return Err(Error::Lora { reason });
        }
        Ok(AdapterSet { config, entries })
    }

    /// Returns every matrix as `(name, shape, little-endian f32 bytes)`, in a stable order.
    pub fn to_tensors(&self) -> Result<Vec<StoredTensor>> {
        self.to_prefixed("")
    }

    /// Returns every matrix like [`AdapterSet::to_tensors`], each name behind `prefix`.
    pub fn to_prefixed(&self, prefix: &str) -> Result<Vec<StoredTensor>> {
        let mut tensors = Vec::with_capacity(self.entries.len() * 2);
        for entry in &self.entries {
            let (a_name, b_name) = tensor_names(entry.layer, entry.projection);
            let (a_name, b_name) = (format!("{prefix}{a_name}"), format!("{prefix}{b_name}"));
            tensors.push((a_name, entry.a.dims().to_vec(), f32_bytes(&entry.a)?));
            tensors.push((b_name, entry.b.dims().to_vec(), f32_bytes(&entry.b)?));
        }
        Ok(tensors)
    }

    /// Attaches every adapter to `model`, replacing adapters already attached there.
    pub fn attach(&self, model: &mut Llama) -> Result<()> {
        let scale = self.config.scale();
        for entry in &self.entries {
            let Some(linear) = model.projection_mut(entry.layer, entry.projection) else {
                let reason = format!(
                    "adapter for layer {} but the model has fewer layers",
                    entry.layer
                );
                return Err(Error::Lora { reason });
            };
            let adapter = LoraAdapter {
                a: entry.a.clone(),
                b: entry.b.clone(),
                scale,
            };
            linear.set_lora(adapter)?;
        }
        Ok(())
    }

    /// Computes the Frobenius norm of each adapter's update `scale · B·A`, by tensor stem.
    pub fn update_norms(&self) -> Result<Vec<(String, f64)>> {
        let scale = self.config.scale();
        let mut norms = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let update = (entry.b.matmul(&entry.a)? * scale)?;
            let norm = update.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt();
            let stem = format!("blk.{}.{}", entry.layer, entry.projection.gguf_name());
            norms.push((stem, f64::from(norm)));
        }
        Ok(norms)
    }
}

fn read_f32(tensors: &TensorSet, name: &str, device: &Device) -> Result<Tensor> {
    let Some(view) = tensors.get(name) else {
        let reason = format!("adapter tensor `{name}` is missing");
        return Err(Error::Lora { reason });
    };
    if view.dtype != GgmlType::F32 || view.bytes().len() != view.elements() * 4 {
        let reason = format!(
            "adapter tensor `{name}` must be f32 with {} elements",
            view.elements()
        );
        return Err(Error::Lora { reason });
    }
    let values: Vec<f32> = view
        .bytes()
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    Ok(Tensor::from_vec(values, view.shape.clone(), device)?)
}

fn f32_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let values = tensor
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect())
}
