"""The strongest recipes a user writes by hand, with the libraries alone (no autocl code).

What an ML engineer does in a couple of minutes with onnxruntime and torch-pruning:

* ``int8_static``: ``quantize_static`` on the whole fp32 model in the fastest int8 format here: QDQ,
  U8S8 (uint8 activations, int8 weights), per-channel weights, 7-bit weights (``reduce_range``)
  only on a CPU without int8 dot products (VNNI). Not the function's defaults (per-tensor).
* ``int8_s8s8``: the same with int8 activations, to show which format is fastest here.
* ``int8_dynamic``: ``quantize_dynamic`` on the whole model (per-channel int8 weights).
* ``ort_fused_dynamic`` (transformers): onnxruntime's transformer optimizer (``optimize_model``,
  ``model_type='bert'``: fused attention, embedding layer norm, bias + GELU, skip layer norm), then
  ``quantize_dynamic`` per-channel on the fused ops; ``FUSED_OP_SETS`` are the variants a user tries
  (with and without the embeddings), and the caller keeps the fastest within its bound.
* ``prune_kd_int8(ratio)``: torch-pruning's MetaPruner (L2 magnitude, channel counts rounded to 8,
  the classifier kept), then 4 epochs of knowledge distillation from the unpruned model (T=4,
  alpha 0.5, Adam, cosine decay), ONNX export, then ``int8_static``.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch_pruning as tp
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static


class _Reader(CalibrationDataReader):
    def __init__(self, feeds: list[dict]) -> None:
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


def has_vnni() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp"))


def int8_static(fp32: Path, out: Path, feeds: list[dict], *, activations: str = "u8") -> Path:
    with tempfile.TemporaryDirectory() as tmp:  # keep ORT's augmented calibration model out of the results
        staged = Path(tmp) / "q.onnx"
        quantize_static(str(fp32), str(staged), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=not has_vnni(),
                        activation_type=QuantType.QUInt8 if activations == "u8" else QuantType.QInt8,
                        weight_type=QuantType.QInt8)
        staged.replace(out)
    return out


def int8_dynamic(fp32: Path, out: Path) -> Path:
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    return out


# quantize_dynamic's op types on the fused graph: every fused op it can quantize (the embedding tables sit
# in EmbedLayerNormalization once fused, in Gather if not), or the MatMuls and attention alone
FUSED_OP_SETS = {
    "MatMul, Attention, Gather, EmbedLayerNormalization": ["MatMul", "Attention", "Gather", "EmbedLayerNormalization"],
    "MatMul, Attention": ["MatMul", "Attention"],
}


def ort_fused_dynamic(fp32: Path, out_dir: Path, *, num_heads: int, hidden_size: int) -> dict[str, dict]:
    """``optimize_model`` (bert) then ``quantize_dynamic`` with each of ``FUSED_OP_SETS``: variant name ->
    {"path", "seconds", "fused": the optimizer's counts of fused operators}."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    t0 = time.time()
    opt = optimize_model(str(fp32), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    fused_path = out_dir / f"{fp32.stem}-ort-optimized.onnx"
    opt.save_model_to_file(str(fused_path))
    base = time.time() - t0
    out = {}
    for name, ops in FUSED_OP_SETS.items():
        t1 = time.time()
        path = out_dir / f"{fp32.stem}-ort-optimized-dynamic-{len(ops)}ops.onnx"
        # the fused ops are in the com.microsoft domain, where ONNX shape inference finds no output types
        quantize_dynamic(str(fused_path), str(path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=ops, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        out[name] = {"path": path, "seconds": base + time.time() - t1, "fused": fused}
    return out


def prune_kd(teacher: torch.nn.Module, example: torch.Tensor, x: np.ndarray, y: np.ndarray, ratio: float, *,
             classifier: str = "fc", epochs: int = 4, batch: int = 64, lr: float = 2e-3, temperature: float = 4.0,
             alpha: float = 0.5, seed: int = 0) -> torch.nn.Module:
    """Prune ``ratio`` of every layer's channels, then distill from ``teacher`` for ``epochs``."""
    torch.manual_seed(seed)
    student = copy.deepcopy(teacher).eval()
    keep = [dict(student.named_modules())[classifier]]
    pruner = tp.pruner.MetaPruner(student, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=keep, round_to=8)
    pruner.step()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    with torch.no_grad():
        soft = torch.cat([teacher.eval()(xt[i:i + 256]) for i in range(0, len(xt), 256)])
    steps = epochs * math.ceil(len(xt) / batch)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            out = student(xt[idx])
            kd = F.kl_div(F.log_softmax(out / temperature, 1), F.softmax(soft[idx] / temperature, 1),
                          reduction="batchmean") * temperature ** 2
            loss = alpha * kd + (1 - alpha) * F.cross_entropy(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return student.eval()


def export(model: torch.nn.Module, example: torch.Tensor, out: Path) -> Path:
    torch.onnx.export(model, (example,), str(out), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    return out


def prune_kd_int8(teacher, example, x, y, feeds, ratio: float, out_dir: Path) -> tuple[Path, float]:
    """The pruned, distilled, whole-model static int8 artifact, and the seconds it took."""
    t0 = time.time()
    student = prune_kd(teacher, example, x, y, ratio)
    fp32 = export(student, example, out_dir / f"hand-prune{int(ratio * 100)}-fp32.onnx")
    art = int8_static(fp32, out_dir / f"hand-prune{int(ratio * 100)}-kd-int8.onnx", feeds)
    return art, time.time() - t0


__all__ = ["FUSED_OP_SETS", "export", "has_vnni", "int8_dynamic", "int8_static", "ort_fused_dynamic", "prune_kd",
           "prune_kd_int8"]
