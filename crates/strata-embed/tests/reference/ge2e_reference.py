#!/usr/bin/env python3
"""Reference values for strata's GE2E audio embedder, computed in float64.

Writes the fixture `tests/reference/ge2e_reference.json` that `tests/audio.rs` checks
the Rust mel spectrogram and embedding against. It follows Resemblyzer 0.1.4 (`audio.py`,
`voice_encoder.py`, `hparams.py`) step by step, except that it skips the webrtcvad silence trim,
as the Rust embedder does.

Needs numpy and librosa 0.9.1 (the lowest version Resemblyzer 0.1.4 accepts), not torch: the
legacy (pre-1.6) `torch.save` file is read with a custom unpickler. Run once:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy librosa==0.9.1
    /tmp/venv/bin/python ge2e_reference.py PATH/TO/resemblyzer/pretrained.pt OUT.json
"""

import collections
import json
import pickle
import sys

import librosa
import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 40
PARTIAL_FRAMES = 160
RATE = 1.3
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
INT16_MAX = 2**15 - 1

# The test signal: a voiced-like tone whose pitch glides from F_START to F_END Hz, eight
# harmonics of amplitude 1/k, a 3 Hz syllable envelope and a little LCG noise, scaled down so
# that volume normalisation raises it.
SIGNAL_SAMPLES = 40000
F_START, F_END = 110.0, 190.0
HARMONICS = 8
ENVELOPE_HZ = 3.0
NOISE = 0.05
SCALE = 0.01
MEL_FRAMES_KEPT = [0, 1, 2, 50, 125, 200, 249, 250]


def lcg_noise(count):
    """Uniform noise in [-0.5, 0.5) from the 64-bit LCG of Knuth's MMIX, seeded with 1."""
    state, mask, out = 1, (1 << 64) - 1, np.empty(count)
    for n in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        out[n] = (state >> 11) / float(1 << 53) - 0.5
    return out


def test_signal():
    t = np.arange(SIGNAL_SAMPLES) / SAMPLE_RATE
    duration = SIGNAL_SAMPLES / SAMPLE_RATE
    phase = 2 * np.pi * (F_START * t + (F_END - F_START) * t * t / (2 * duration))
    voice = sum(np.sin(k * phase) / k for k in range(1, HARMONICS + 1))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * ENVELOPE_HZ * t)
    return SCALE * (envelope * voice + NOISE * lcg_noise(SIGNAL_SAMPLES))


def load_legacy_state(path):
    """Reads `model_state` from a legacy torch.save file: five pickles, then the storages."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *rest: (storage, offset, size, stride)
            if module == "torch" and name.endswith("Storage"):
                return name
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, saved_id):
            kind, storage_type, key, _location, size, view = saved_id
            assert kind == "storage" and view is None
            return (key, storage_type, size)

    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            Unpickler(f).load()
        checkpoint = Unpickler(f).load()
        keys = Unpickler(f).load()
        storages = {}
        for key in keys:
            count = int(np.frombuffer(f.read(8), "<i8")[0])
            storages[key] = np.frombuffer(f.read(4 * count), "<f4").astype(np.float64)

    state = {}
    for name, ((key, kind, _), offset, size, stride) in checkpoint["model_state"].items():
        assert kind == "FloatStorage"
        data = storages[key]
        state[name] = np.lib.stride_tricks.as_strided(
            data[offset:], shape=size, strides=[s * 8 for s in stride]
        ).copy()
    return state


def normalize_volume(wav):
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    change = TARGET_DBFS - 20 * np.log10(rms / INT16_MAX)
    return wav if change < 0 else wav * 10 ** (change / 20)


def mel_spectrogram(wav):
    """librosa 0.9.1 defaults: centred frames, zero padding, periodic Hann, slaney mels."""
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float64)
    spectrum = np.abs(librosa.stft(wav, n_fft=N_FFT, hop_length=HOP, dtype=np.complex128)) ** 2
    return (basis @ spectrum).T


def partial_slices(n_samples):
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE / RATE / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_final_hidden(state, frames):
    x = frames
    for layer in range(3):
        w_ih, w_hh = state[f"lstm.weight_ih_l{layer}"], state[f"lstm.weight_hh_l{layer}"]
        bias = state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]
        h, c, outputs = np.zeros(256), np.zeros(256), []
        for step in x:
            gates = w_ih @ step + w_hh @ h + bias
            i, f, g, o = np.split(gates, 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            outputs.append(h)
        x = np.array(outputs)
    return h


def embed_partial(state, frames):
    raw = np.maximum(state["linear.weight"] @ lstm_final_hidden(state, frames) + state["linear.bias"], 0)
    return raw / np.linalg.norm(raw)


def main(weights, out):
    state = load_legacy_state(weights)
    wav = normalize_volume(test_signal())
    starts = partial_slices(len(wav))
    stop = (starts[-1] + PARTIAL_FRAMES) * HOP
    if stop >= len(wav):
        wav = np.pad(wav, (0, stop - len(wav)))
    mel = mel_spectrogram(wav)
    partials = np.array([embed_partial(state, mel[s : s + PARTIAL_FRAMES]) for s in starts])
    mean = partials.mean(axis=0)
    fixture = {
        "librosa": librosa.__version__,
        "samples": SIGNAL_SAMPLES,
        "gain": float(wav[100] / test_signal()[100]),
        "mel_frames": len(mel),
        "mel": {str(i): mel[i].tolist() for i in MEL_FRAMES_KEPT},
        "partial_starts": starts,
        "partials": partials.tolist(),
        "embedding": (mean / np.linalg.norm(mean)).tolist(),
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
