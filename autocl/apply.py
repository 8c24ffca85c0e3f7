"""Rebuild an exported configuration: ``autocl apply``.

The bundle's ``config.yaml`` is applied to the workload's teacher by ``Compressor``, exactly as the
search built it (Taylor importance ranks by the workload's own loss), and the bundle's weights are
loaded into that architecture; optionally the model is exported and quantized again and its metric
computed with onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autocl.config import CompressionConfig, load_yaml
from autocl.errors import ConfigError
from autocl.hardware import HardwareProfile, profile_from_dict
from autocl.runtime import cache_dir
from autocl.workloads import Workload, load_workload


@dataclass(frozen=True)
class AppliedModel:
    """A configuration applied to a workload's teacher: the rebuilt PyTorch model, and when asked
    its quantized ONNX model and that model's metric.

    ``parameters`` is the model's parameter count, ``weights`` the state dict loaded into it and
    ``layer_shapes`` the weight shape of each of the workload's layers the model still has.
    ``onnx_path`` and ``metric`` are set only when :func:`apply_config` was given ``out_dir``.
    """

    model: object
    config: CompressionConfig
    parameters: int
    weights: Path | None
    layer_shapes: dict[str, tuple[int, ...]]
    onnx_path: Path | None = None
    metric: float | None = None


def _load_weights(model, weights: Path, config: Path) -> None:
    import torch

    try:
        state = torch.load(weights, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ConfigError(
            f"cannot load the weights as a state dict with weights_only=True: {exc}", file=str(weights)
        ) from None
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in state:
            raise ConfigError(
                f"has no tensor {name!r}, which the architecture {config} builds has; the weights "
                "belong to another configuration or workload",
                file=str(weights),
            )
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"tensor {name!r} has shape {tuple(state[name].shape)} but pruning the teacher with "
                f"{config} gives {tuple(tensor.shape)}; the weights belong to another configuration "
                "or workload",
                file=str(weights),
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise ConfigError(
            f"has tensors the rebuilt architecture lacks ({', '.join(extra[:3])}); the weights belong "
            "to another configuration or workload",
            file=str(weights),
        )
    model.load_state_dict(state, strict=True)


def apply_config(
    config: str | Path,
    workload: Workload | str,
    *,
    weights: str | Path | None = None,
    out_dir: str | Path | None = None,
    profile: HardwareProfile | None = None,
) -> AppliedModel:
    """Rebuild a configuration (an exported ``config.yaml``) on ``workload``'s teacher.

    Everything is built by ``Compressor``, as in the search: the architecture comes from pruning
    the teacher with the stored PruneConfig (deterministic; Taylor importance ranks by the
    workload's own loss); the weights from ``weights`` (default: ``weights.pt`` beside the config),
    loaded with ``weights_only=True``, or, when there are none, from pruning and distilling again
    (the student cache is used when it has them). With ``out_dir``, the model is exported and
    quantized as the configuration says into ``out_dir/model.onnx`` and its metric computed with
    onnxruntime.

    Args:
        config: The configuration's YAML file (an exported bundle's ``config.yaml``).
        workload: A workload, or a workload spec (a built-in, a registered name or ``module:function``).
        weights: The state dict to load (default: ``weights.pt`` beside ``config``; when that default
            does not exist, the student is rebuilt or taken from the cache).
        out_dir: When given, where to export and quantize the model (``model.fp32.onnx``, ``model.onnx``).
        profile: The hardware profile the metric is computed with (default: a plain CPU profile named
            ``apply-cpu``); used only with ``out_dir``.

    Returns:
        The ``AppliedModel``, in eval mode; with ``out_dir``, with its ``onnx_path`` and ``metric``.

    Raises:
        ConfigError: The configuration cannot be read, the given ``weights`` file does not exist, or the
            weights cannot be loaded or do not fit the rebuilt architecture.
        WorkloadError: ``workload`` cannot be loaded.
    """
    from autocl.compress import Compressor, count_parameters
    from autocl.evaluate import evaluate_artifact

    config = Path(config)
    cfg = CompressionConfig.from_dict(load_yaml(config) or {}, source=str(config))
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    compressor = Compressor(wl, cache_dir())
    weights = Path(weights) if weights else (config.parent / "weights.pt")
    if not weights.is_file():
        if weights != config.parent / "weights.pt":
            raise ConfigError("file not found (give the weights.pt of the exported bundle)", file=str(weights))
        weights = compressor.student(cfg).weights_path
    model = compressor.architecture(cfg)
    _load_weights(model, weights, config)
    model.eval()
    modules = dict(model.named_modules())
    # a depth-pruned student lacks the removed blocks' layers
    shapes = {name: tuple(modules[name].weight.shape) for name in wl.layer_names() if name in modules}
    applied = AppliedModel(model, cfg, count_parameters(model), weights, shapes)
    if out_dir is None:
        return applied
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = compressor.quantize(compressor.export(model, out / "model.fp32.onnx"), cfg, out / "model.onnx")
    profile = profile or profile_from_dict({"name": "apply-cpu"})
    return AppliedModel(model, cfg, applied.parameters, weights, shapes, path, evaluate_artifact(path, wl, profile))


__all__ = ["AppliedModel", "apply_config"]
