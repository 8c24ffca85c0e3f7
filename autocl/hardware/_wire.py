"""The latency agent's wire format, shared by the agent and its client.

``POST /measure`` with ``Authorization: Bearer <token>`` and a JSON body::

    {"profile": {...HardwareProfile...}, "memory": true,
     "artifacts": [{"name": "model.onnx", "data": "<base64>"}, ...],
     "feed": {"input": {"dtype": "float32", "shape": [8, 1, 28, 28], "data": "<base64>"}}}

answered with ``{"device": {...}, "measurements": [Measurement.to_dict(), ...]}``, or a 4xx
``{"error": "<reason>"}``. ``GET /health`` answers ``{"ok": true, ...}`` without a token.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
MAX_ARTIFACTS = 64


class WireError(ValueError):
    """A request that does not follow the wire format; the message says which part."""


def encode_feed(feed: dict[str, np.ndarray]) -> dict[str, Any]:
    out = {}
    for name, arr in feed.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.name not in DTYPES:
            raise WireError(f"input {name!r} has dtype {arr.dtype.name}; the agent accepts {', '.join(DTYPES)}")
        out[name] = {
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
            "data": base64.b64encode(arr.tobytes()).decode(),
        }
    return out


def decode_feed(data: Any) -> dict[str, np.ndarray]:
    if not isinstance(data, dict) or not data:
        raise WireError("'feed' must be a non-empty object of input name -> {dtype, shape, data}")
    feed = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
            raise WireError(f"feed[{name!r}] must be an object with exactly dtype, shape and data")
        if spec["dtype"] not in DTYPES:
            raise WireError(f"feed[{name!r}].dtype {spec['dtype']!r} is not one of {', '.join(DTYPES)}")
        shape = spec["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise WireError(f"feed[{name!r}].shape must be a list of non-negative integers")
        raw = _b64(spec["data"], f"feed[{name!r}].data")
        dtype = np.dtype(spec["dtype"])
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(raw) != expected:
            raise WireError(f"feed[{name!r}] has {len(raw)} bytes but shape {shape} of {dtype.name} needs {expected}")
        feed[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return feed


def encode_artifacts(blobs: list[tuple[str, bytes]]) -> list[dict[str, str]]:
    return [{"name": name, "data": base64.b64encode(blob).decode()} for name, blob in blobs]


def decode_artifacts(data: Any) -> list[bytes]:
    if not isinstance(data, list) or not data:
        raise WireError("'artifacts' must be a non-empty list of {name, data}")
    if len(data) > MAX_ARTIFACTS:
        raise WireError(f"at most {MAX_ARTIFACTS} artifacts per request, got {len(data)}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "data" not in item:
            raise WireError(f"artifacts[{i}] must be an object with a base64 'data' field")
        out.append(_b64(item["data"], f"artifacts[{i}].data"))
    return out


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise WireError(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{where} is not valid base64") from None
