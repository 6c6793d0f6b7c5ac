//! Sampler behaviour on fixed logits: greedy, seeding, top-k, top-p and the repeat penalty.

use candle_core::{Device, Tensor};
use strata_runtime::sampling::{apply_repeat_penalty, argmax};
use strata_runtime::{Sampler, SamplingParams};

const LOGITS: [f32; 8] = [0.5, 2.0, -1.0, 1.9, 0.0, 1.5, -3.0, 1.0];

fn logits_tensor() -> Tensor {
    Tensor::new(&LOGITS, &Device::Cpu).unwrap()
}

fn draw(params: SamplingParams, count: usize) -> Vec<u32> {
    let mut sampler = Sampler::new(params);
    (0..count)
        .map(|_| sampler.sample(&logits_tensor(), &[]).unwrap())
        .collect()
}

fn seeded(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 1.5,
        top_k: None,
        top_p: None,
        repeat_penalty: 1.0,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}

#[test]
fn greedy_picks_argmax() {
    let tokens = draw(SamplingParams::greedy(), 5);
    assert_eq!(tokens, vec![1; 5]);
}

#[test]
fn argmax_prefers_first_on_ties() {
    assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    assert_eq!(argmax(&[]), 0);
}

#[test]
fn seed_reproduces_draws() {
    let first = draw(seeded(42), 50);
    let second = draw(seeded(42), 50);
    assert_eq!(first, second);
}

#[test]
fn seeded_draws_vary() {
    let tokens = draw(seeded(42), 50);
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert!(distinct.len() > 2, "temperature 1.5 drew only {distinct:?}");
}

#[test]
fn different_seeds_differ() {
    assert_ne!(draw(seeded(1), 50), draw(seeded(2), 50));
}

#[test]
fn top_k_one_is_greedy() {
    let params = SamplingParams {
        top_k: Some(1),
        ..seeded(7)
    };
    assert_eq!(draw(params, 20), vec![1; 20]);
}

#[test]
fn top_k_limits_candidates() {
    let params = SamplingParams {
        top_k: Some(2),
        ..seeded(7)
    };
    let tokens = draw(params, 200);
    assert!(
        tokens.iter().all(|&token| token == 1 || token == 3),
        "drew {tokens:?}"
    );
    assert!(tokens.contains(&1));
    assert!(tokens.contains(&3));
}

#[test]
fn small_top_p_is_greedy() {
    let params = SamplingParams {
        top_p: Some(0.01),
        ..seeded(7)
    };
    assert_eq!(draw(params, 20), vec![1; 20]);
}

#[test]
fn repeat_penalty_lowers_repeated_token() {
    let mut logits = LOGITS.to_vec();
    apply_repeat_penalty(&mut logits, &[1, 1, 2], 2.0);

    assert_eq!(logits[1], 1.0, "a positive logit is divided");
    assert_eq!(
        logits[2], -2.0,
        "a negative logit is multiplied, once for a repeated id"
    );
    assert_eq!(logits[3], LOGITS[3], "other tokens are unchanged");
}

#[test]
fn repeat_penalty_changes_greedy_choice() {
    let params = SamplingParams {
        repeat_penalty: 1.5,
        ..SamplingParams::greedy()
    };
    let mut sampler = Sampler::new(params);

    let token = sampler.sample(&logits_tensor(), &[9, 1]).unwrap();

    assert_eq!(token, 3);
}

#[test]
fn repeat_penalty_looks_at_last_n_only() {
    let params = SamplingParams {
        repeat_penalty: 1.5,
        repeat_last_n: 2,
        ..SamplingParams::greedy()
    };
    let mut sampler = Sampler::new(params);

    let token = sampler.sample(&logits_tensor(), &[1, 4, 5]).unwrap();

    assert_eq!(token, 1);
}
