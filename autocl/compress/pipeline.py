"""One configuration, end to end: prune -> distill -> sparsify -> export ONNX -> quantize per layer.

Students (pruned and distilled, exported fp32) are cached on disk by ``CompressionConfig.student_key``,
so trials that differ only in bit-widths, and resumed searches, never train the same student twice.
Quantized artifacts are cached by student and precision map (and calibration, int4 block size).
Unstructured magnitude sparsity is applied before distillation and held during it (the zeroed
weights are zeroed again after every step): it makes the file compress smaller, and that is how it
is reported (``Artifact.compressed_size_bytes``), not as speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from autocl.compress import qat
from autocl.compress.cluster import cluster_layers
from autocl.compress.distill import TeacherFeatureCache, distill, task_loss, teacher_logits
from autocl.compress.onnx_export import export_onnx, layer_nodes
from autocl.compress.prune import (
    achieved_fractions, apply_masks, count_ops, count_parameters, prune_model, resolve_layers, sparsify, weight_sparsity,
)
from autocl.compress.quantize import QUANTIZER_VERSION, quantize_model, reduce_range_default
from autocl.compress.size import compressed_size
from autocl.config import CompressionConfig
from autocl.workloads import Workload, input_tuple

StageCallback = Callable[[str], None]


@dataclass(frozen=True)
class Student:
    key: str
    onnx_path: Path
    weights_path: Path
    parameters: int
    reused: bool
    sparsity: float = 0.0
    achieved: dict[str, float] | None = None
    """What pruning really kept: ``params`` and ``macs`` as fractions of the teacher's."""
    qat_ranges: dict[str, dict] | None = None
    """Activation ranges learned by quantization-aware training, per static int8 layer."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    size_bytes: int
    student: Student
    int8_layers: tuple[str, ...]
    precisions: dict[str, int] | None = None
    compressed_size_bytes: int | None = None

    def details(self) -> dict:
        """What the artifact is made of, for the study record: layers per precision, the share of
        zero weights, and the size once deflated (where unstructured sparsity shows)."""
        return {"precisions": dict(self.precisions or {}), "sparsity": round(self.student.sparsity, 4),
                "compressed_size_bytes": self.compressed_size_bytes,
                "compressed_with": "palettes of <= 256 values, then deflate level 1",
                "kept": dict(self.student.achieved or {"params": 1.0, "macs": 1.0})}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _seal(*paths: Path) -> None:
    """Record each file's sha256 beside it (``<file>.sha256``), so a damaged cache file is found."""
    for path in paths:
        path.with_name(path.name + ".sha256").write_text(file_sha256(path))


def _verified(*paths: Path) -> bool:
    """Whether every file exists and still has the sha256 recorded when it was written. A file
    without a record (an older cache) or with another hash is rebuilt, never reused."""
    for path in paths:
        record = path.with_name(path.name + ".sha256")
        if not (path.is_file() and record.is_file()) or record.read_text().strip() != file_sha256(path):
            return False
    return True


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path`` private to this process: workers on one host share the cache."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def cache_folder(cache_root: str | Path, workload_name: str, workload_key: str) -> Path:
    """Where one workload's cache lives: ``students/<student key>/student.onnx``, ``artifacts/`` and
    ``baseline.onnx``. The one definition of the layout; the report reads the cache through it."""
    return Path(cache_root) / f"{workload_name}-{workload_key}"


class Compressor:
    """Applies configurations to one workload, caching students under ``cache_root``."""

    def __init__(self, workload: Workload, cache_root: Path, *, seed: int = 0) -> None:
        self.workload = workload
        self.seed = seed
        self.root = cache_folder(cache_root, workload.name, workload.key)
        self.layers = workload.layer_names()
        self._x = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in input_tuple(workload.train[0]))
        y = np.asarray(workload.train[1])
        self._y = torch.from_numpy(y).long() if np.issubdtype(y.dtype, np.integer) else torch.from_numpy(y)
        self._soft: torch.Tensor | None = None
        self._teacher_ops: tuple[float, float] | None = None
        self._features = (TeacherFeatureCache(workload.model, workload.feature_layers)
                          if workload.feature_layers else None)

    def _teacher_outputs(self) -> torch.Tensor:
        if self._soft is None:
            self._soft = teacher_logits(self.workload.model, self._x)
        return self._soft

    def _taylor_loss(self, model: torch.nn.Module, rows: int = 64) -> torch.Tensor:
        """The workload's task loss on the first training rows: what Taylor importance ranks by."""
        w = self.workload
        targets = self._teacher_outputs()[:rows] if w.output_kind == "embedding" else self._y[:rows]
        return task_loss(w.output_kind, model(*(a[:rows] for a in self._x)), targets)

    def build_student(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None) -> torch.nn.Module:
        """Prune, sparsify and distill a PyTorch student for ``cfg`` (no cache). An unchanged student
        is the teacher itself: distilling it from itself has nothing to recover."""
        w = self.workload
        stage("pruning")
        structured = cfg.prune.model_copy(update={"unstructured": 0.0})
        student = prune_model(w.model, w.example_inputs(), structured, ignored_layers=w.ignored_layers,
                              loss_fn=self._taylor_loss)
        masks = []
        if cfg.prune.unstructured > 0:
            keep = resolve_layers(student, tuple(w.ignored_layers) + tuple(cfg.prune.ignored_layers),
                                  field="prune.ignored_layers")
            masks = sparsify(student, cfg.prune.unstructured, keep)
        clusters = cluster_layers(student, self.layers, cfg.cluster.clusters) if cfg.cluster.clusters else None
        fake_quantized = qat.wrap(student, self.qat_layers(cfg), self._reduce_range(cfg)) if cfg.qat_key() else []

        def on_step(step: int, total: int) -> None:
            if clusters is not None:
                clusters.snap()
            apply_masks(masks)  # after the snap: pruned weights stay zero
            qat.freeze_observers(student, step, total)

        if self.trains(cfg):
            stage("distilling")
            distill(student, self._x, self._y, self._teacher_outputs(), cfg.distill, seed=self.seed,
                    loss_fn=w.distill_loss, output_kind=w.output_kind, teacher_features=self._features,
                    on_step=on_step)
        if fake_quantized:
            student.qat_ranges = qat.unwrap(student)  # read by student(), stored beside the weights
        return student

    def trains(self, cfg: CompressionConfig) -> bool:
        """Whether ``cfg``'s student is fine-tuned: pruned, clustered or quantization-aware trained."""
        return cfg.prune.changes_model or bool(cfg.cluster.clusters) or bool(self.qat_layers(cfg))

    def qat_layers(self, cfg: CompressionConfig) -> list[str]:
        """The layers quantization-aware training fake-quantizes: the static int8 ones, with QAT on."""
        return [n for n in self.layers if cfg.quant.precision_of(n) == "int8"] if cfg.qat_key() else []

    @staticmethod
    def _reduce_range(cfg: CompressionConfig) -> bool:
        return reduce_range_default() if cfg.quant.reduce_range is None else cfg.quant.reduce_range

    def student_key(self, cfg: CompressionConfig) -> str:
        if not self.trains(cfg):  # no distillation happens, so its knobs do not matter
            cfg = CompressionConfig(prune=cfg.prune)
        return cfg.student_key(self.workload.key)

    def student(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None) -> Student:
        key = self.student_key(cfg)
        folder = self.root / "students" / key
        onnx_path, weights_path, info_path = folder / "student.onnx", folder / "student.pt", folder / "info.json"
        if info_path.is_file() and _verified(onnx_path, weights_path):
            info = json.loads(info_path.read_text())
            return Student(key, onnx_path, weights_path, info["parameters"], reused=True,
                           sparsity=info.get("sparsity", 0.0), achieved=info.get("achieved"),
                           qat_ranges=info.get("qat_ranges"))
        student = self.build_student(cfg, stage)
        stage("exporting")
        tmp = _tmp(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        self._export(student, tmp / "student.onnx")
        torch.save(student.state_dict(), tmp / "student.pt")
        params, sparsity = count_parameters(student), weight_sparsity(student)
        if self._teacher_ops is None:  # counted once per search, not once per student
            self._teacher_ops = count_ops(self.workload.model, self.workload.example_inputs())
        achieved = achieved_fractions(self._teacher_ops, student, self.workload.example_inputs())
        ranges = getattr(student, "qat_ranges", None)
        (tmp / "info.json").write_text(json.dumps({"parameters": params, "sparsity": sparsity, "achieved": achieved,
                                                   "config": cfg.to_dict(), "qat_ranges": ranges}))
        _seal(tmp / "student.onnx", tmp / "student.pt")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.replace(folder)
        except OSError:  # another worker put the same student there meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        return Student(key, onnx_path, weights_path, params, reused=False, sparsity=sparsity, achieved=achieved,
                       qat_ranges=ranges)

    def artifact(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None) -> Artifact:
        """The quantized ONNX model for ``cfg``: what would ship, and what is evaluated and measured."""
        student = self.student(cfg, stage)
        precisions = {name: cfg.quant.precision_of(name) for name in self.layers}
        q = cfg.quant
        knobs = [precisions, q.calibration_samples]
        if q.uses("int8", self.layers):
            # QUANTIZER_VERSION: artifacts of an older int8 pass (no glue ops, always 7-bit) are not reused
            knobs += [QUANTIZER_VERSION, q.reduce_range if q.reduce_range is not None else reduce_range_default()]
            if q.calibration != "minmax":
                knobs.append(q.calibration)
        if q.uses("int4", self.layers):
            knobs.append(q.int4_block_size)
        qkey = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:16]
        path = self.root / "artifacts" / f"{student.key}-{qkey}.onnx"
        if not _verified(path):
            stage("quantizing")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp(path).with_suffix(".onnx")  # the quantizer picks its writer by the suffix
            quantize_model(student.onnx_path, tmp, cfg.quant, layer_nodes(student.onnx_path, self.layers),
                           self.workload.calibration_feeds(cfg.quant.calibration_samples), student.qat_ranges)
            _seal(tmp)
            tmp.with_name(tmp.name + ".sha256").replace(path.with_name(path.name + ".sha256"))
            tmp.replace(path)
        int8 = tuple(n for n, p in precisions.items() if p == "int8")
        counts: dict[str, int] = {}
        for p in precisions.values():
            counts[p] = counts.get(p, 0) + 1
        return Artifact(path, file_sha256(path), path.stat().st_size, student, int8, counts, compressed_size(path))

    def baseline(self) -> Path:
        """The teacher exported as is (fp32, unpruned): the reference every trial is compared with."""
        path = self.root / "baseline.onnx"
        if not _verified(path):
            tmp = _tmp(path).with_suffix(".onnx")
            self._export(self.workload.model, tmp)
            _seal(tmp)
            tmp.with_name(tmp.name + ".sha256").replace(path.with_name(path.name + ".sha256"))
            tmp.replace(path)
        return path

    def _export(self, model: torch.nn.Module, path: Path) -> Path:
        w = self.workload
        return export_onnx(model, w.example_inputs(), path, input_names=w.input_names, dynamic_axes=w.dynamic_axes)
