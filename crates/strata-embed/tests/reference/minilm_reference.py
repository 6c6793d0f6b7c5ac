"""Compute reference embeddings of all-MiniLM-L6-v2 with numpy, for the Rust tests to compare.

This is an independent implementation of the sentence-transformers pipeline that the package's
`modules.json` lists: a BERT encoder, mean pooling over the attention mask, then L2
normalisation. It runs in float64 from the shipped `model.safetensors`, one sentence at a time,
so no padding is involved. Token ids come from the Python `tokenizers` package reading the
shipped `tokenizer.json`, truncated to `max_seq_length` from `sentence_bert_config.json`.

Usage (needs numpy, tokenizers and safetensors):

    python3 minilm_reference.py PACKAGE_DIR > minilm_reference.json

PyTorch is not used because its PyPI wheels pull in gigabytes of CUDA libraries.
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply on Monday.",
    "Quantum computers use qubits instead of bits.",
    "Café crème brûlée, naïve façade — ünïcödé and 中文 text.",
    "x",
    # 400 words, well past the 256 word pieces the model reads, to pin truncation.
    " ".join(["the quick brown fox jumps over the lazy dog"] * 45)[:1800],
]

HEADS = 12
LAYER_NORM_EPS = 1e-12


def layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPS) * weight + bias


def linear(x, weights, prefix):
    return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]


def gelu(x):
    """The exact (erf) GELU, which BERT's `hidden_act: gelu` means."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def attention(x, weights, prefix):
    seq_len, hidden = x.shape
    head_dim = hidden // HEADS

    def split_heads(t):
        return t.reshape(seq_len, HEADS, head_dim).transpose(1, 0, 2)

    query = split_heads(linear(x, weights, prefix + ".self.query"))
    key = split_heads(linear(x, weights, prefix + ".self.key"))
    value = split_heads(linear(x, weights, prefix + ".self.value"))

    scores = query @ key.transpose(0, 2, 1) / math.sqrt(head_dim)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    context = (probs @ value).transpose(1, 0, 2).reshape(seq_len, hidden)

    output = linear(context, weights, prefix + ".output.dense")
    return layer_norm(
        output + x,
        weights[prefix + ".output.LayerNorm.weight"],
        weights[prefix + ".output.LayerNorm.bias"],
    )


def encoder_layer(x, weights, index):
    prefix = f"encoder.layer.{index}"
    x = attention(x, weights, prefix + ".attention")

    intermediate = gelu(linear(x, weights, prefix + ".intermediate.dense"))
    output = linear(intermediate, weights, prefix + ".output.dense")
    return layer_norm(
        output + x,
        weights[prefix + ".output.LayerNorm.weight"],
        weights[prefix + ".output.LayerNorm.bias"],
    )


def embed(ids, weights, layers):
    positions = np.arange(len(ids))
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][positions]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(
        x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"]
    )
    for index in range(layers):
        x = encoder_layer(x, weights, index)

    # Every token is real (no padding), so the masked mean is the plain mean.
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def main():
    package = Path(sys.argv[1])
    config = json.loads((package / "config.json").read_text())
    max_seq_length = json.loads((package / "sentence_bert_config.json").read_text())[
        "max_seq_length"
    ]
    weights_path = package / "model.safetensors"
    weights = {
        name: tensor.astype(np.float64)
        for name, tensor in load_file(str(weights_path)).items()
    }

    tokenizer = Tokenizer.from_file(str(package / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_length)

    cases = []
    for text in SENTENCES:
        ids = tokenizer.encode(text).ids
        vector = embed(np.array(ids), weights, config["num_hidden_layers"])
        cases.append(
            {
                "text": text,
                "token_ids": ids,
                "embedding": [float(f"{value:.8g}") for value in vector],
            }
        )

    fixture = {
        "generator": "minilm_reference.py (numpy float64, one sentence at a time)",
        "model_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "max_seq_length": max_seq_length,
        "cases": cases,
    }
    json.dump(fixture, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
