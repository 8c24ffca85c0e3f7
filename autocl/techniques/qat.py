"""Quantization-aware training as a technique: the static int8 layers are fake-quantized while the
student distils, and their learned activation ranges go to the quantizer (``autocl.compress.qat``).

Its knob predates the registry and stays in the quant section (``QuantConfig.qat``, parameter
``quant.qat``, sampled only for trials with static int8 layers), and its key entry stays ``q``
(:meth:`QuantConfig.qat_key`: which layers are static int8, and the weight range).
"""

from __future__ import annotations

from pydantic import BaseModel
from torch import nn

from autocl.compress import qat
from autocl.compress.quantize import reduce_range_default
from autocl.config import QuantConfig
from autocl.space._space import QuantSpace
from autocl.techniques import BaseTechnique, BuildContext, Hold


class QuantizationAwareTraining(BaseTechnique):
    """Fake-quantized distillation of the static int8 layers (see the module docstring)."""

    name = "qat"
    section = "quant"
    own_section = False
    key_name = "q"
    phase = "train"
    order = 90  # last: it wraps the layers the techniques before it changed
    config_type = QuantConfig
    space_type = QuantSpace
    legend = "QAT = the 8 layers were quantization-aware trained (else post-training calibrated)"

    def is_on(self, config: BaseModel) -> bool:
        assert isinstance(config, QuantConfig)
        return config.qat_key() is not None

    def cache_key(self, config: BaseModel) -> dict:
        assert isinstance(config, QuantConfig)
        return config.qat_key() or {}

    def apply(self, student: nn.Module, config: BaseModel, context: BuildContext) -> Hold:
        assert isinstance(config, QuantConfig)
        layers = [n for n, p in context.precisions.items() if p == "int8"]
        reduce_range = reduce_range_default() if config.reduce_range is None else config.reduce_range
        qat.wrap(student, layers, reduce_range)

        def end() -> None:
            # read by Compressor.student(), stored beside the weights
            student.qat_ranges = qat.unwrap(student)  # type: ignore[assignment]

        return Hold(step=lambda step, total: qat.freeze_observers(student, step, total), end=end)

    def notes(self, config: BaseModel) -> list[str]:
        return ["QAT"]

    def card(self, config: BaseModel) -> str:
        return (
            "Quantization-aware training: the static int8 layers were fake-quantized during distillation, and "
            "their learned activation ranges calibrate the int8 model"
        )

    def recipe_params(self, space: BaseModel) -> dict:
        return {}  # the recipes pin quant.qat off with the quant section's knobs


TECHNIQUE = QuantizationAwareTraining()
