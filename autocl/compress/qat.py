"""Quantization-aware training (QAT) of the layers chosen as static int8.

During distillation each static-int8 layer is wrapped (:class:`FakeQuantLayer`) so that it computes
what onnxruntime's static QDQ quantizer will make of it (``autocl.compress.quantize``):

* weights: per output channel, symmetric int8 (the range ORT uses: [-127, 127], or [-64, 64] with
  ``reduce_range``), scale = max|w| / qmax, zero point 0, recomputed from the weights every step;
* the layer's input and output activations: per tensor, asymmetric uint8 over [min(lo, 0), max(hi, 0)],
  with lo and hi the running min and max over the training batches (what ORT's min-max calibrator
  computes over its rows; a moving average of each batch's range clipped MiniLM's outliers and
  measured worse than PTQ), frozen for the last quarter of the steps so the weights settle on fixed scales;
* the output is taken where ORT quantizes it: a ``Gemm`` or ``Conv`` output includes the bias, a
  ``MatMul`` (an ``nn.Linear`` on 3-D input) is quantized before its bias ``Add``.

Rounding and clamping are ``torch.fake_quantize_per_*_affine`` (round half to even, like numpy), with
the straight-through estimator for gradients. After training the wrappers are removed and the observed
ranges are kept (:func:`unwrap`); the export passes them to ``quantize_static`` as
``TensorQuantOverrides`` (``rmin``/``rmax`` of each layer's input and output tensor), so ORT computes
the same scales and zero points with its own formula and writes the same QDQ graph as PTQ. Tensors
the observers did not see (glue ops between int8 layers) are calibrated as in PTQ.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

FREEZE_AT = 0.75
"""Fraction of the distillation steps after which the activation ranges stop moving."""


def weight_qrange(reduce_range: bool) -> tuple[int, int]:
    """The int8 weight range ORT's quantizer uses for symmetric per-channel weights."""
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import get_qmin_qmax_for_qType

    lo, hi = get_qmin_qmax_for_qType(TensorProto.INT8, reduce_range=reduce_range, symmetric=True)
    return int(lo), int(hi)


def fake_quant_weight(w: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Per-output-channel symmetric int8 fake quantization (ORT's ``compute_scale_zp``, symmetric)."""
    absmax = w.detach().abs().flatten(1).amax(1)
    scale = (2 * absmax / (qmax - qmin)).float()
    scale = torch.where(scale < torch.finfo(torch.float32).tiny, torch.ones_like(scale), scale)
    zero = torch.zeros(len(scale), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, qmin, qmax)


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Scale and zero point of asymmetric uint8 over [lo, hi] as ORT computes them (0 always inside)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(torch.tensor((hi - lo) / 255.0, dtype=torch.float32))
    if scale < torch.finfo(torch.float32).tiny:
        return 1.0, 0
    return scale, round(-lo / scale)


class RangeObserver(nn.Module):
    """Tracks an activation's range and fake-quantizes it to uint8 with that range."""

    lo: torch.Tensor
    hi: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))
        self.frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.frozen:
            with torch.no_grad():
                lo, hi = torch.aminmax(x.detach())
                self.lo.copy_(torch.minimum(self.lo, lo))
                self.hi.copy_(torch.maximum(self.hi, hi))
        if torch.isinf(self.lo):
            return x
        scale, zero = activation_qparams(float(self.lo), float(self.hi))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)

    def range(self) -> list[float] | None:
        return None if torch.isinf(self.lo) else [float(self.lo), float(self.hi)]


class FakeQuantLayer(nn.Module):
    """An ``nn.Linear`` or ``nn.Conv2d`` computing as its static int8 QDQ kernel will."""

    def __init__(self, layer: nn.Module, qmin: int, qmax: int) -> None:
        super().__init__()
        self.layer, self.qmin, self.qmax = layer, qmin, qmax
        self.input_range, self.output_range = RangeObserver(), RangeObserver()
        self.output_has_bias = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = cast("nn.Linear | nn.Conv2d", self.layer)
        x = self.input_range(x)
        w = fake_quant_weight(layer.weight, self.qmin, self.qmax)
        if isinstance(layer, nn.Linear):
            if x.dim() == 2 or layer.bias is None:  # exported as Gemm: the bias is inside the op
                self.output_has_bias = layer.bias is not None
                return self.output_range(F.linear(x, w, layer.bias))
            self.output_has_bias = False  # MatMul, then the bias Add in fp32
            return self.output_range(F.linear(x, w)) + layer.bias
        return self.output_range(layer._conv_forward(x, w, layer.bias))


def wrap(model: nn.Module, layer_names: list[str], reduce_range: bool) -> list[str]:
    """Replace each named Linear/Conv2d of ``model`` by a :class:`FakeQuantLayer`, in place; returns
    the names wrapped (other module types are left as they are and run fp32 in training)."""
    qmin, qmax = weight_qrange(reduce_range)
    modules = dict(model.named_modules())
    done = []
    for name in layer_names:
        layer = modules.get(name)
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, attr, FakeQuantLayer(layer, qmin, qmax))
        done.append(name)
    return done


def freeze_observers(model: nn.Module, step: int, total: int) -> None:
    """Stop moving the activation ranges once ``step`` reaches :data:`FREEZE_AT` of ``total``."""
    if step >= FREEZE_AT * total:
        for m in model.modules():
            if isinstance(m, RangeObserver):
                m.frozen = True


def unwrap(model: nn.Module) -> dict[str, dict]:
    """Put the original layers back; returns per layer its observed ``input`` and ``output`` ranges
    ([lo, hi]) and whether the output range includes the bias (``Gemm``/``Conv``) or not (``MatMul``)."""
    ranges: dict[str, dict] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, FakeQuantLayer):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, module.layer)
            ranges[name] = {
                "input": module.input_range.range(),
                "output": module.output_range.range(),
                "output_has_bias": module.output_has_bias,
            }
    return ranges


__all__ = [
    "FakeQuantLayer",
    "RangeObserver",
    "activation_qparams",
    "fake_quant_weight",
    "freeze_observers",
    "unwrap",
    "weight_qrange",
    "wrap",
]
