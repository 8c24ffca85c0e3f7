"""OpenVINO's own runtime as a target: the same ONNX artifact, read and compiled by OpenVINO.

A profile with ``execution_provider: OpenVINO`` is measured, evaluated and probed with OpenVINO
(the ``openvino`` package) instead of an onnxruntime execution provider. onnxruntime's OpenVINO
execution provider plugin (``onnxruntime-ep-openvino`` 1.8.1, for onnxruntime 1.32) installs too,
but offers no device on a non-Intel CPU (its factory skips CPUs whose vendor is not Intel), and the
machines autocl runs on are AMD EPYC as often as Xeon; OpenVINO's runtime reads the ONNX file on
both. :class:`OpenVINOSession` has the two methods of an onnxruntime session the measurement and
evaluation use (``run`` and ``get_inputs``), so the protocol times both runtimes with one loop.

Settings (``provider_options`` of the profile) are OpenVINO properties, passed to
``compile_model``; ``device`` picks the OpenVINO device (default ``CPU``). autocl sets what keeps
the comparison with onnxruntime fair unless the profile says otherwise: ``INFERENCE_NUM_THREADS``
from ``threads``, one stream, the latency hint, no thread pinning, and ``INFERENCE_PRECISION_HINT:
f32``: OpenVINO would otherwise compute an fp32 artifact in bf16 on a CPU with bf16 instructions,
changing its outputs (and its metric) without the artifact asking for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OPENVINO = "OpenVINO"
"""The ``execution_provider`` of a profile measured with OpenVINO's runtime (not an onnxruntime
provider name: onnxruntime's plugin calls itself ``OpenVINOExecutionProvider``)."""

OPENVINO_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4")
"""What OpenVINO's CPU plugin runs in low precision from autocl's artifacts (measured on OpenVINO
2026.4): static int8 QDQ becomes u8/i8 convolutions and fully-connected layers, weight-only int4
(MatMulNBits) u4 fully-connected layers. Dynamic int8 (``DynamicQuantizeLinear`` +
``MatMulInteger``/``ConvInteger``) computes its Conv/MatMul in f32 there, and fp16 weights are
decompressed to f32 under the f32 precision hint; ``autocl.compress.support`` probes it per op."""

_DEFAULTS: dict[str, Any] = {
    "NUM_STREAMS": 1,
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_PRECISION_HINT": "f32",
    "ENABLE_CPU_PINNING": False,
}


def openvino_missing() -> str | None:
    """Why OpenVINO's runtime cannot be used here.

    Returns:
        The reason (the package is not installed), or None.
    """
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        return (
            f"OpenVINO's runtime is not installed ({exc}); install it with `pip install openvino` "
            "(or `make install`), or use a profile for onnxruntime's CPU provider"
        )
    return None


@functools.cache
def _core() -> Any:
    import openvino as ov

    return ov.Core()


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None when it is not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return str(ov.get_version())


def compile_config(options: dict[str, Any], threads: int) -> tuple[str, dict[str, Any]]:
    """The OpenVINO device and ``compile_model`` properties for a profile's options.

    Args:
        options: The profile's ``provider_options`` (``device`` and OpenVINO properties).
        threads: The inference threads.

    Returns:
        ``(device, properties)``.
    """
    config = {**_DEFAULTS, "INFERENCE_NUM_THREADS": threads, **options}
    device = str(config.pop("device", "CPU"))
    return device, config


@dataclass(frozen=True)
class _Arg:
    name: str
    shape: list


class OpenVINOSession:
    """An ONNX artifact compiled by OpenVINO, run like an onnxruntime session.

    Args:
        path: The ONNX artifact.
        options: The profile's ``provider_options`` (see :func:`compile_config`).
        threads: The inference threads.
    """

    def __init__(self, path: str | Path, options: dict[str, Any], threads: int) -> None:
        device, config = compile_config(options, threads)
        self.compiled = _core().compile_model(str(path), device, config)
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one inference, as ``onnxruntime.InferenceSession.run``: the outputs are copies.

        Args:
            output_names: Ignored: every output is returned, in the model's order.
            feed: ``{input name: array}``.

        Returns:
            The outputs.
        """
        result = self._request.infer(feed, share_inputs=True, share_outputs=False)
        return [result[o] for o in self._outputs]

    def get_inputs(self) -> list[_Arg]:
        return [_Arg(i.get_any_name(), [str(d) for d in i.get_partial_shape()]) for i in self.compiled.inputs]

    def get_outputs(self) -> list[_Arg]:
        return [_Arg(o.get_any_name(), [str(d) for d in o.get_partial_shape()]) for o in self._outputs]

    def runtime_precisions(self) -> list[tuple[str, str]]:
        """``(layer type, runtime precision)`` of every node OpenVINO compiled (its execution graph)."""
        out = []
        for node in self.compiled.get_runtime_model().get_ordered_ops():
            info = node.get_rt_info()
            out.append((str(info["layerType"].astype(str)), str(info["runtimePrecision"].astype(str))))
        return out
