"""Export a PyTorch model to ONNX, and map the model's layers to the graph's nodes.

The TorchScript exporter (``dynamo=False``) is used: it needs no extra packages and names every
node after the module scope it came from (``/stages/stages.0/conv1/Conv``), which is how a
per-layer precision chosen by module name finds its node in the graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from autocl.errors import WorkloadError

OUTPUT_NAME = "output"
OPSET = 17
LAYER_OPS = ("Conv", "Gemm", "MatMul")
"""The node types a layer's precision applies to: the compute nodes of Conv and Linear modules."""
EMBEDDING_OPS = ("Gather",)
"""The node type of an embedding table's lookup (``nn.Embedding``): a layer too, whose precision is
that of its table (weight-only: the rows are looked up in int8 and dequantized)."""


def export_onnx(
    model: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: tuple[str, ...] = ("input",),
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Write ``model`` (eval mode) to ``path`` as ONNX.

    Every input and the output get a dynamic batch axis unless ``dynamic_axes`` says otherwise.

    Args:
        model: The model to export (put in eval mode).
        example_inputs: Inputs to trace it with (one tensor is accepted too).
        path: The ONNX file to write (its directory is created).
        input_names: The graph's input names, in the order of ``example_inputs``.
        dynamic_axes: ``{input or output name: {axis: name}}`` (default: a ``batch`` axis 0 everywhere).

    Returns:
        The path written.

    Raises:
        WorkloadError: The model does not export to ONNX (e.g. its forward() is not traceable).
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    axes = dict(dynamic_axes or {name: {0: "batch"} for name in input_names})
    axes.setdefault(OUTPUT_NAME, {0: "batch"})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(example_inputs),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=list(input_names),
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
            )
        onnx.checker.check_model(str(tmp))
    except OSError:
        tmp.unlink(missing_ok=True)
        raise  # the disk, not the model: a full disk is reported as one (study._disk)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise WorkloadError(
            f"the model will not export to ONNX (opset {OPSET}, TorchScript exporter): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Make forward() traceable: no data-dependent "
            "Python control flow, tensor inputs and outputs only"
        ) from exc
    tmp.replace(path)
    return path


def module_of(node_name: str) -> str:
    """``/stages/stages.1/shortcut/shortcut.0/Conv`` -> ``stages.1.shortcut.0``;
    ``/bert/encoder/layer.0/attention/self/query/MatMul`` -> ``bert.encoder.layer.0.attention.self.query``.

    Each scope is a module's local name; a container's child repeats its parent's local name as a
    prefix (``shortcut`` -> ``shortcut.0``), which adds only the suffix.

    Args:
        node_name: An ONNX node's name, as the PyTorch exporter scopes it.

    Returns:
        The PyTorch module name.
    """
    parts = [p for p in node_name.split("/") if p][:-1]
    fqn, prev = "", ""
    for part in parts:
        if prev and part.startswith(prev + "."):
            fqn += part[len(prev) :]
        else:
            fqn = f"{fqn}.{part}" if fqn else part
        prev = part
    return fqn


def layer_nodes(model_path: str | Path | onnx.ModelProto, layer_names: list[str]) -> dict[str, list[str]]:
    """For each layer name, the names of its Conv/Gemm/MatMul nodes in the graph, and of its table
    lookup (a Gather reading a constant table) for an ``nn.Embedding``.

    An ``nn.Linear`` exports as Gemm on 2-D inputs and as MatMul (+ Add) on 3-D ones: both are found.

    Args:
        model_path: An ONNX file, or a loaded model.
        layer_names: The PyTorch module names of the layers.

    Returns:
        ``{layer: [node name, ...]}`` (possibly an empty list).
    """
    model = (
        model_path if isinstance(model_path, onnx.ModelProto) else onnx.load(str(model_path), load_external_data=False)
    )
    wanted = set(layer_names)
    found: dict[str, list[str]] = {name: [] for name in layer_names}
    tables = {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in LAYER_OPS or (node.op_type in EMBEDDING_OPS and node.input[0] in tables):
            owner = module_of(node.name)
            if owner in wanted:
                found[owner].append(node.name)
    return found


def output_channels(onnx_path: str | Path, layers: tuple[str, ...]) -> dict[str, int]:
    """Output channels of each layer's weight in an fp32 graph (Conv, Gemm or MatMul nodes).

    This is what pruning really kept, read from the exported graph.

    Args:
        onnx_path: The fp32 ONNX file.
        layers: The layers' names.

    Returns:
        ``{layer: output channels}`` for the layers found in the graph.
    """
    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = {init.name: tuple(init.dims) for init in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    out: dict[str, int] = {}
    for layer, names in layer_nodes(model, list(layers)).items():
        for name in names:
            node = nodes[name]
            weight = next((dims[i] for i in node.input[1:2] if i in dims), None)
            if not weight:
                continue
            if node.op_type == "Conv":
                out[layer] = weight[0]
            elif node.op_type == "Gemm":
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                out[layer] = weight[0] if trans_b else weight[-1]
            else:  # MatMul: x @ W with W [in, out]
                out[layer] = weight[-1]
            break
    return out


_module_of = module_of  # the name used before it was public
