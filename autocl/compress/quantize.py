"""Per-layer quantization of an fp32 ONNX graph with onnxruntime.quantization.

``int8`` layers get static QDQ: per-channel symmetric int8 weights and uint8 activations
calibrated on training data, with ``reduce_range`` (7-bit weights) so AVX2 CPUs without VNNI
do not saturate; measured here as the fast int8 path for convolutions. ``fp32`` layers are left
untouched: no QuantizeLinear/DequantizeLinear pair is placed on them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from autocl.config import QuantConfig
from autocl.errors import ConfigError


class _QuietPreprocessHint(logging.Filter):
    # quantize_static logs a generic "consider pre-processing" hint on every call; the exported
    # graph is already shape-inferred and BN-folded, so the hint is noise in a search's output.
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


logging.getLogger().addFilter(_QuietPreprocessHint())


class _FeedReader(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._i = 0

    def get_next(self):
        if self._i >= len(self._feeds):
            return None
        self._i += 1
        return self._feeds[self._i - 1]

    def rewind(self) -> None:
        self._i = 0


def quantize_model(fp32_path: str | Path, out_path: str | Path, cfg: QuantConfig,
                   nodes: dict[str, list[str]], calibration: list[dict[str, np.ndarray]]) -> Path:
    """Write the quantized model to ``out_path`` (a copy when every layer stays fp32).

    ``nodes`` maps each quantizable layer to its graph nodes (see ``layer_nodes``); ``calibration``
    is a list of onnxruntime feeds (``Workload.calibration_feeds``).
    """
    out_path = Path(out_path)
    unknown = sorted(set(cfg.layers) - set(nodes))
    if unknown:
        raise ConfigError(f"unknown layer(s) {unknown}; known layers: {sorted(nodes)}", field="quant.layers")
    int8_nodes = [n for layer, names in nodes.items() if cfg.precision_of(layer) == "int8" for n in names]
    if not int8_nodes:
        shutil.copyfile(fp32_path, out_path)
        return out_path
    with tempfile.TemporaryDirectory(prefix="autocl-quant-") as tmp:
        # calibration writes an augmented model next to a temp path; keep it out of the cache folder
        staged = Path(tmp) / "model.onnx"
        quantize_static(
            str(fp32_path), str(staged), _FeedReader(calibration),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_quantize=int8_nodes, calibrate_method=CalibrationMethod.MinMax,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        onnx.checker.check_model(str(staged))
        shutil.move(str(staged), out_path)
    return out_path


def quantized_nodes(model_path: str | Path) -> set[str]:
    """Names of the Conv/Gemm/MatMul nodes whose weight input comes through a DequantizeLinear of
    an int8 initializer, i.e. the nodes that run with int8 weights."""
    model = onnx.load(str(model_path))
    int8_inits = {i.name for i in model.graph.initializer if i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_inits}
    return {n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1
            and n.input[1] in dq_out}
