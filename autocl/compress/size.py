"""The compressed size of an artifact: the one definition the study's size objective and budget use.

An ONNX file stores every weight densely, so neither zeroed weights (unstructured sparsity) nor
shared weights (clustering) make it smaller. What would ship is the file compressed, and that is
what :func:`compressed_size` counts, with two steps anyone can reproduce:

1. every weight tensor with at most 256 distinct values, in the whole tensor or in each slice along
   one axis (per output channel: int8 per-channel weights of a clustered layer), is written as a
   palette: its distinct values plus bit-packed indices of ``ceil(log2(distinct))`` bits (the
   encoding that costs least is taken; other tensors are written as they are);
2. those bytes, then the rest of the model (graph, attributes) without the weights, are deflated
   with zlib at level 1, so zeros and repeats shrink too.

Decoding gives back the same ONNX model; onnxruntime's CPU kernels then run dense weights, so the
size falls and the latency does not change.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

PALETTE_MAX = 256
MIN_ELEMENTS = 256
"""Tensors smaller than this are written as they are (a palette would not pay for itself)."""


def _pack(index: np.ndarray, bits: int) -> bytes:
    unpacked = np.unpackbits(index.astype(np.uint8).reshape(-1, 1), axis=1)[:, 8 - bits :]
    return np.packbits(unpacked.reshape(-1)).tobytes()


def _whole(arr: np.ndarray) -> bytes | None:
    values, index = np.unique(arr.reshape(-1), return_inverse=True)
    if len(values) > PALETTE_MAX:
        return None
    return values.tobytes() + _pack(index, max(1, math.ceil(math.log2(len(values)))))


def _sliced(arr: np.ndarray, axis: int) -> bytes | None:
    rows = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)
    ordered = np.sort(rows, axis=1)
    distinct = int(((np.diff(ordered, axis=1) != 0).sum(1) + 1).max())
    if distinct > PALETTE_MAX:
        return None
    bits = max(1, math.ceil(math.log2(distinct)))
    palettes, indices = [], []
    for row in rows:
        values, index = np.unique(row, return_inverse=True)
        palettes.append(np.resize(values, distinct).tobytes())  # fixed-size palettes: the index width is shared
        indices.append(index)
    return b"".join(palettes) + _pack(np.concatenate(indices), bits)


def encode_tensor(arr: np.ndarray) -> bytes:
    """The cheapest of: the raw bytes, one palette, or one palette per slice along an axis."""
    raw = arr.tobytes()
    if arr.size < MIN_ELEMENTS or arr.dtype.kind not in "fiu":
        return raw
    options = [raw, _whole(arr)]
    if arr.ndim >= 2:
        options += [_sliced(arr, 0), _sliced(arr, 1)]
    return min((o for o in options if o is not None), key=len)


def compressed_size(path: str | Path) -> int:
    """Bytes of the artifact at ``path`` palettized and deflated (see the module docstring)."""
    model = onnx.load(str(path))
    c = zlib.compressobj(1)
    n = 0
    for init in model.graph.initializer:
        n += len(c.compress(encode_tensor(numpy_helper.to_array(init))))
        placeholder = onnx.TensorProto(name=init.name, data_type=init.data_type, dims=init.dims)
        init.CopyFrom(placeholder)
    n += len(c.compress(model.SerializeToString()))
    return n + len(c.flush())


__all__ = ["compressed_size", "encode_tensor"]
