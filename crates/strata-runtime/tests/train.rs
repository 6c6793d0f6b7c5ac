//! LoRA training on the tiny model: the training path agrees with inference, a step lowers the
//! loss, a run is reproducible, and bad settings are rejected.

mod common;

use candle_core::{D, Tensor};
use common::{TOKENS, tiny_float_model_with, tiny_model_with};
use strata_model::{Architecture, RopeStyle};
use strata_runtime::Llama;
use strata_runtime::model::Projection;
use strata_runtime::train::{AdapterSet, LoraConfig, TrainExample, TrainSettings, Trainer};

fn config(first_layer: usize) -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        first_layer,
        targets: Projection::ALL.to_vec(),
    }
}

fn settings(seed: u64) -> TrainSettings {
    TrainSettings {
        learning_rate: 1e-2,
        weight_decay: 0.0,
        seed,
    }
}

fn example() -> TrainExample {
    TrainExample {
        tokens: TOKENS.to_vec(),
        answer_start: 8,
    }
}

/// Mean negative log-likelihood of the answer tokens through the inference path.
fn inference_loss(model: &Llama, example: &TrainExample) -> f32 {
    let mut cache = model.new_cache(example.tokens.len()).unwrap();
    let logits = model.forward_all(&example.tokens, &mut cache).unwrap();
    let start = example.answer_start;
    let count = example.tokens.len() - start;
    let log_probs =
        candle_nn::ops::log_softmax(&logits.narrow(0, start - 1, count).unwrap(), D::Minus1)
            .unwrap();
    let targets = Tensor::new(&example.tokens[start..], model.device()).unwrap();
    let picked = log_probs.gather(&targets.unsqueeze(1).unwrap(), 1).unwrap();
    -picked.mean_all().unwrap().to_scalar::<f32>().unwrap()
}

fn train(model: &Llama, first_layer: usize, seed: u64, steps: usize) -> (Vec<f32>, AdapterSet) {
    let mut trainer = Trainer::new(model, config(first_layer), None, &settings(seed)).unwrap();
    let prepared = [trainer.prepare(model, &example()).unwrap()];
    let losses = (0..steps)
        .map(|_| trainer.step(&prepared).unwrap())
        .collect();
    (losses, trainer.adapters().unwrap())
}

#[test]
fn untrained_adapter_matches_inference_loss() {
    for style in [RopeStyle::Interleaved, RopeStyle::Half] {
        let model = tiny_float_model_with(style);
        let trainer = Trainer::new(&model, config(0), None, &settings(1)).unwrap();
        let prepared = [trainer.prepare(&model, &example()).unwrap()];
        let trained = trainer.loss(&prepared).unwrap();
        let reference = inference_loss(&model, &example());
        assert!(
            (trained - reference).abs() < 1e-4,
            "{style:?}: {trained} vs {reference}"
        );
    }
}

#[test]
fn trained_adapters_attach_with_the_same_loss() {
    let mut model = tiny_float_model_with(RopeStyle::Interleaved);
    let (losses, adapters) = train(&model, 1, 3, 5);
    let mut trainer = Trainer::new(&model, config(1), Some(&adapters), &settings(3)).unwrap();
    let prepared = [trainer.prepare(&model, &example()).unwrap()];
    let trained = trainer.loss(&prepared).unwrap();
    assert!(
        trained < losses[0],
        "loss {trained} did not fall below {}",
        losses[0]
    );

    adapters.attach(&mut model).unwrap();
    let reference = inference_loss(&model, &example());
    assert!(
        (trained - reference).abs() < 1e-4,
        "{trained} vs {reference}"
    );
    let _ = trainer.step(&prepared).unwrap();
}

#[test]
fn steps_lower_the_loss_on_quantized_weights() {
    let model = tiny_model_with(RopeStyle::Interleaved, Architecture::Qwen2);
    let (losses, _) = train(&model, 0, 5, 20);
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < first * 0.5, "loss went from {first} to {last}");
}

#[test]
fn same_seed_gives_the_same_adapters() {
    let model = tiny_float_model_with(RopeStyle::Interleaved);
    let (first, _) = train(&model, 0, 9, 4);
    let (second, _) = train(&model, 0, 9, 4);
    let (other, _) = train(&model, 0, 10, 4);
    assert_eq!(first, second);
    assert_ne!(first, other);
}

#[test]
fn stored_tensors_round_trip() {
    let model = tiny_float_model_with(RopeStyle::Interleaved);
    let (_, adapters) = train(&model, 1, 2, 2);
    let mut set = strata_model::TensorSet::default();
    for (name, shape, bytes) in adapters.to_tensors().unwrap() {
        let view = common::view(
            &name,
            shape,
            strata_model::GgmlType::F32,
            bytemuck_f32(&bytes),
        );
        set.insert(view);
    }
    let read = AdapterSet::from_tensors(config(1), &set, model.device()).unwrap();
    assert_eq!(read.entries.len(), adapters.entries.len());
    for (left, right) in read.entries.iter().zip(&adapters.entries) {
        assert_eq!(common::values(&left.a), common::values(&right.a));
        assert_eq!(common::values(&left.b), common::values(&right.b));
    }
}

#[test]
fn bad_settings_are_rejected() {
    let model = tiny_float_model_with(RopeStyle::Interleaved);
    let cases = [
        (
            LoraConfig {
                rank: 0,
                ..config(0)
            },
            "rank",
        ),
        (
            LoraConfig {
                first_layer: 2,
                ..config(0)
            },
            "last layer",
        ),
        (
            LoraConfig {
                targets: Vec::new(),
                ..config(0)
            },
            "target",
        ),
    ];
    for (bad, expected) in cases {
        let error = Trainer::new(&model, bad, None, &settings(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
    let trainer = Trainer::new(&model, config(0), None, &settings(1)).unwrap();
    let whole = TrainExample {
        tokens: TOKENS.to_vec(),
        answer_start: 0,
    };
    let error = trainer.prepare(&model, &whole).unwrap_err().to_string();
    assert!(error.contains("answer to start"), "{error}");
}

fn bytemuck_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect()
}
