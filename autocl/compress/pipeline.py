"""One configuration, end to end: prune -> distill -> sparsify -> export ONNX -> quantize per layer.

Students (pruned and distilled; their weights, see ``CacheLayout``) are cached on disk by
``CompressionConfig.student_key``, so trials that differ only in bit-widths, and resumed searches,
never train the same student twice; a student's fp32 graph is re-exported from its weights when needed.
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from autocl.compress._budget import CacheBudget
from autocl.compress._cache import ARTIFACT, CHECKPOINT, STUDENT, CacheLayout, checkpoint_key, file_sha256
from autocl.compress.adaptive_bn import adapt_batchnorm
from autocl.compress.depth import feature_map, prune_depth
from autocl.compress.distill import (
    TeacherFeatureCache,
    TrainingState,
    distill,
    held_out_split,
    task_loss,
    teacher_logits,
)
from autocl.compress.onnx_export import export_onnx, layer_nodes, output_channels
from autocl.compress.prune import (
    achieved_fractions,
    apply_masks,
    count_ops,
    count_parameters,
    prune_model,
    resolve_layers,
    sparsify,
    weight_sparsity,
)
from autocl.compress.quantize import QUANTIZER_VERSION, precision_in_graph, quantize_model, reduce_range_default
from autocl.compress.size import compressed_size
from autocl.config import CompressionConfig
from autocl.techniques import BuildContext, Hold
from autocl.workloads import Workload, input_tuple

StageCallback = Callable[[str], None]


@dataclass(frozen=True)
class Student:
    key: str
    onnx_path: Path | None
    """The fp32 graph when this process has it at hand (None: re-exported when needed, see
    ``Compressor.student_graph``)."""
    weights_path: Path
    parameters: int
    reused: bool
    sparsity: float = 0.0
    achieved: dict[str, float] | None = None
    """What pruning really kept: ``params`` and ``macs`` as fractions of the teacher's."""
    structure: dict | None = None
    """Depth pruning's kept blocks and low-rank factorization's plan (ranks, layers left whole and why)."""
    qat_ranges: dict[str, dict] | None = None
    """Activation ranges learned by quantization-aware training, per static int8 layer."""
    fidelity: dict | None = None
    """On a fidelity ladder: the rung's ``steps``, its ``metric`` on held-out training rows, the
    learning ``curve`` ([steps, metric] from step 0, after adaptive batch norm), ``resumed_from``
    (the steps of the checkpoint it continued, or None) and ``pruned_metric`` / ``adapted_metric``
    (before and after adaptive batch norm)."""


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
        """What the artifact is made of, for the study record.

        Returns:
            Layers per precision, the share of zero weights, and the size once deflated (where
            unstructured sparsity shows).
        """
        return {
            "precisions": dict(self.precisions or {}),
            "sparsity": round(self.student.sparsity, 4),
            "compressed_size_bytes": self.compressed_size_bytes,
            "compressed_with": "palettes of <= 256 values, then deflate level 1",
            "kept": dict(self.student.achieved or {"params": 1.0, "macs": 1.0}),
            **({"structure": self.student.structure} if self.student.structure else {}),
        }


def _seal(*paths: Path) -> None:
    """Record each file's sha256 beside it (``<file>.sha256``), so a damaged cache file is found."""
    for path in paths:
        path.with_name(path.name + ".sha256").write_text(file_sha256(path))


def _shipped_size(path: Path, sha256: str) -> int:
    """``compressed_size`` of a cached artifact, computed once (seconds on a transformer) and kept
    beside it (``<file>.size``) with the sha256 of the content it was computed on."""
    record = path.with_name(path.name + ".size")
    try:
        digest, stored = record.read_text().split()
        if digest == sha256:
            return int(stored)
    except (OSError, ValueError):
        pass
    size = compressed_size(path)
    tmp = _tmp(record)
    tmp.write_text(f"{sha256} {size}")
    tmp.replace(record)
    return size


def _verified(*paths: Path) -> bool:
    """Whether every file exists and still has the sha256 recorded when it was written. A file
    without a record (an older cache) or with another hash is rebuilt, never reused."""
    for path in paths:
        record = path.with_name(path.name + ".sha256")
        if not (path.is_file() and record.is_file()) or record.read_text().strip() != file_sha256(path):
            return False
    return True


def _first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path`` private to this process: workers on one host share the cache."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


class Compressor:
    """Applies configurations to one workload, caching students under ``cache_root``.

    The cache is laid out as ``CacheLayout`` says. This is the only path that prunes, distills,
    exports and quantizes: the search, re-measurement, export and ``autocl apply`` all build through it.

    Args:
        workload: The workload whose teacher is compressed.
        cache_root: The artifact cache's root (e.g. ``autocl.runtime.cache_dir()``).
        seed: Seeds the student's training.
        budget: Keeps the cache under a size: enforced after every student and artifact written
            (None: the cache grows without bound).
    """

    def __init__(
        self, workload: Workload, cache_root: Path, *, seed: int = 0, budget: CacheBudget | None = None
    ) -> None:
        self.workload = workload
        self.seed = seed
        self.cache_root = Path(cache_root)
        self.cache = CacheLayout.of(cache_root, workload.name, workload.key)
        self.budget = budget
        self._holds: ExitStack | None = None
        self._graph: Path | None = None  # this process's scratch fp32 graph (see student_graph)
        for stale in self.cache.stale_scratch():  # left by a process that died
            stale.unlink(missing_ok=True)
        self.layers = workload.layer_names()
        self.tables = {n for n, m in workload.model.named_modules() if isinstance(m, torch.nn.Embedding)}
        self._x = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in input_tuple(workload.train[0]))
        y = np.asarray(workload.train[1])
        self._y = torch.from_numpy(y).long() if np.issubdtype(y.dtype, np.integer) else torch.from_numpy(y)
        self._soft: torch.Tensor | None = None
        self._teacher_ops: tuple[float, float] | None = None
        self._features = (
            TeacherFeatureCache(workload.model, workload.feature_layers) if workload.feature_layers else None
        )
        self.structure: dict = {}
        """What the last :meth:`build_student` did to the model's structure (depth, low rank)."""
        self.fidelity: dict | None = None
        """What the last :meth:`build_student` on a fidelity ladder reached (see ``Student.fidelity``)."""

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Within the block, every student and artifact this compressor uses is held
        (:meth:`CacheLayout.hold`): eviction, by this process or another, leaves them alone until
        the block ends. A trial runs inside one."""
        outer = self._holds
        with ExitStack() as stack:
            self._holds = stack
            try:
                yield
            finally:
                self._holds = outer

    def _hold(self, kind: str, key: str) -> None:
        if self._holds is not None:
            self._holds.enter_context(self.cache.hold(kind, key))

    def _written(self) -> None:
        """An entry was written: evict what the budget says (never what this trial holds)."""
        if self.budget is not None:
            self.budget.enforce(self.cache_root)

    def _teacher_outputs(self) -> torch.Tensor:
        if self._soft is None:
            # the workload's targets are the teacher's outputs already: a large unlabeled set is not run again
            self._soft = self._y if self.workload.teacher_targets else teacher_logits(self.workload.model, self._x)
        return self._soft

    def _taylor_loss(self, model: torch.nn.Module, rows: int = 64) -> torch.Tensor:
        """The workload's task loss on the first training rows: what Taylor importance ranks by."""
        w = self.workload
        targets = self._teacher_outputs()[:rows] if w.output_kind == "embedding" else self._y[:rows]
        return task_loss(w.output_kind, model(*(a[:rows] for a in self._x)), targets)

    def architecture(self, cfg: CompressionConfig) -> torch.nn.Module:
        """The teacher pruned as ``cfg.prune`` says: the student's architecture.

        Only the structured part is applied (depth, width with the workload's loss for Taylor
        importance, low rank), before any sparsity or distillation.

        Args:
            cfg: The configuration.

        Returns:
            The pruned model.

        Raises:
            ConfigError: The prune settings name unknown layers or cannot be applied to this workload.
        """
        return self._architecture(cfg)[0]

    def _architecture(self, cfg: CompressionConfig) -> tuple[torch.nn.Module, dict[str, str] | None]:
        """:meth:`architecture`, and which teacher feature layer each student feature layer stands for."""
        w = self.workload
        structured = cfg.prune.model_copy(update={"unstructured": 0.0})
        student, features = self._prune_depth(cfg)
        student = prune_model(
            student, w.example_inputs(), structured, ignored_layers=w.ignored_layers, loss_fn=self._taylor_loss
        )
        self._apply_techniques(student, cfg, "structure")  # low rank, ...
        return student, features

    def _context(self, cfg: CompressionConfig) -> BuildContext:
        ignored = tuple(self.workload.ignored_layers) + tuple(cfg.prune.ignored_layers)
        return BuildContext(cfg, self.workload, list(self.layers), ignored, self.precisions(cfg))

    def _apply_techniques(self, student: torch.nn.Module, cfg: CompressionConfig, phase: str) -> list[Hold]:
        """Apply the registry's techniques of ``phase`` that ``cfg`` turns on, in order; what each
        did is kept in :attr:`structure` under its name."""
        holds = []
        for t, conf in cfg.techniques_on():
            if t.phase != phase:
                continue
            context = self._context(cfg)
            hold = t.apply(student, conf, context)
            if context.facts is not None:
                self.structure[t.name] = context.facts
            if hold is not None:
                holds.append(hold)
        return holds

    def build_student(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None) -> torch.nn.Module:
        """Prune, sparsify and distill a PyTorch student for ``cfg`` (no cache).

        An unchanged student is the teacher itself: distilling it from itself has nothing to recover.

        Args:
            cfg: The configuration.
            stage: Called with a short description of each stage as it starts.

        Returns:
            The student model.
        """
        w = self.workload
        stage("pruning")
        self.fidelity = None
        student, features = self._architecture(cfg)
        on_ladder = cfg.trains and cfg.distill.ladder_steps is not None
        below = self._checkpoint_below(cfg) if on_ladder else None
        # step 0 of the ladder: adaptive batch norm right after pruning (a resumed student has its own)
        ladder = self._adapt(cfg, student) if on_ladder and below is None else {} if on_ladder else None
        masks = []
        if cfg.prune.unstructured > 0:
            keep = resolve_layers(
                student, tuple(w.ignored_layers) + tuple(cfg.prune.ignored_layers), field="prune.ignored_layers"
            )
            masks = sparsify(student, cfg.prune.unstructured, keep)
        holds = self._apply_techniques(student, cfg, "train")

        def on_step(step: int, total: int) -> None:
            for hold in holds:  # clustering snaps its shared values, N:M sparsity zeroes its masks, ...
                if hold.step is not None:
                    hold.step(step, total)
            apply_masks(masks)  # after the snap: pruned weights stay zero

        resume: TrainingState | None = None
        if ladder is not None and below is not None:
            saved = torch.load(below[1], weights_only=True)  # autocl's own sealed file, still no pickled code
            student.load_state_dict(saved["model"])
            resume, ladder = TrainingState.from_dict(saved["training"]), {**saved["facts"], "resumed_from": below[0]}
        if cfg.trains:
            stage("distilling" if resume is None else f"distilling from step {resume.step}")
            distill(
                student,
                self._x,
                self._y,
                self._teacher_outputs(),
                cfg.distill,
                seed=self.seed,
                loss_fn=w.distill_loss,
                output_kind=w.output_kind,
                teacher_features=self._features,
                on_step=on_step,
                feature_map=features,
                resume=resume,
                on_end=None if ladder is None else lambda state: self._ladder_end(cfg, student, state, ladder),
            )
        for hold in holds:  # QAT puts the layers back and leaves the learned ranges on student.qat_ranges
            if hold.end is not None:
                hold.end()
        return student

    def ladder_key(self, cfg: CompressionConfig) -> str:
        """The key a fidelity ladder's student is kept under at every rung: its key at the last rung.

        Args:
            cfg: A configuration on a ladder (``cfg.distill.ladder_steps`` set).

        Returns:
            ``student_key`` of ``cfg`` distilled for the ladder's whole schedule.
        """
        top = cfg.distill.model_copy(update={"steps": cfg.distill.ladder_steps})
        return self.student_key(cfg.model_copy(update={"distill": top}))

    def held_out_metric(self, student: torch.nn.Module, batch_size: int = 256) -> float:
        """The workload's metric of a PyTorch student on the training rows a ladder holds out.

        Args:
            student: The student (evaluated in eval mode, under no_grad).
            batch_size: Rows per forward pass.

        Returns:
            ``workload.metric`` on the rows of :func:`autocl.compress.distill.held_out_split`.
        """
        held, _ = held_out_split(len(self._x[0]), self.seed)
        student.eval()
        with torch.no_grad():
            out = torch.cat(
                [
                    torch.as_tensor(_first_output(student(*(a[held[i : i + batch_size]] for a in self._x))))
                    for i in range(0, len(held), batch_size)
                ]
            )
        targets = np.asarray(self.workload.train[1])[held.numpy()]
        return float(self.workload.metric(out.numpy(), targets))

    def _checkpoint_below(self, cfg: CompressionConfig) -> tuple[int, Path] | None:
        """The latest sealed checkpoint of ``cfg``'s ladder student below its rung, or None.

        It is held before it is checked, so eviction cannot remove it before it is read."""
        ladder = self.ladder_key(cfg)
        for steps, path in reversed(self.cache.checkpoints(ladder).items()):
            if steps < cfg.distill.steps:
                self._hold(CHECKPOINT, checkpoint_key(ladder, steps))
                if _verified(path):
                    return steps, path
        return None

    def _adapt(self, cfg: CompressionConfig, student: torch.nn.Module) -> dict:
        """A ladder student's step 0: adaptive batch norm right after pruning, scored before and after."""
        if not cfg.prune.changes_model:
            return {
                "pruned_metric": None,
                "adapted_metric": None,
                "curve": [[0, self.held_out_metric(student)]],
                "resumed_from": None,
            }
        pruned = self.held_out_metric(student)
        _, train_rows = held_out_split(len(self._x[0]), self.seed)
        adapted = (
            self.held_out_metric(student) if adapt_batchnorm(student, tuple(a[train_rows] for a in self._x)) else None
        )
        start = pruned if adapted is None else adapted
        return {"pruned_metric": pruned, "adapted_metric": adapted, "curve": [[0, start]], "resumed_from": None}

    def _ladder_end(self, cfg: CompressionConfig, student: torch.nn.Module, state: TrainingState, facts: dict) -> None:
        """Score the rung on the held-out rows and keep the student there (``CacheLayout.checkpoint``)."""
        metric = self.held_out_metric(student)
        facts["curve"] = [*facts.get("curve", []), [state.step, metric]]
        facts.update(steps=state.step, metric=metric)
        ladder = self.ladder_key(cfg)
        facts["ladder_key"] = ladder  # the study keeps this ladder's checkpoints while a promotion waits
        self.fidelity = dict(facts)
        path = self.cache.checkpoint(ladder, state.step)
        self._hold(CHECKPOINT, checkpoint_key(ladder, state.step))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp(path)
        record = {k: v for k, v in facts.items() if k != "resumed_from"}
        torch.save({"model": student.state_dict(), "training": state.to_dict(), "facts": record}, tmp)
        _seal(tmp)
        tmp.with_name(tmp.name + ".sha256").replace(path.with_name(path.name + ".sha256"))
        tmp.replace(path)
        self._written()

    def _prune_depth(self, cfg: CompressionConfig) -> tuple[torch.nn.Module, dict[str, str] | None]:
        """The teacher without ``cfg.prune.depth`` of its blocks, and which teacher feature layer each
        student feature layer now stands for (None: depth unchanged, names map to themselves)."""
        self.structure = {}
        if cfg.prune.depth <= 0:
            return self.workload.model, None
        out = prune_depth(self.workload.model, self.workload.example_inputs(), cfg.prune, loss_fn=self._taylor_loss)
        self.structure["depth"] = {"kept": out.kept, "removed": out.removed, "criterion": cfg.prune.depth_criterion}
        return out.model, feature_map(out.kept, tuple(self.workload.feature_layers or ()))

    def qat_layers(self, cfg: CompressionConfig) -> list[str]:
        """The layers quantization-aware training fake-quantizes: the static int8 ones, with QAT on.

        Args:
            cfg: The configuration.

        Returns:
            The layers' names; empty when QAT is off.
        """
        return [n for n, p in self.precisions(cfg).items() if p == "int8"] if cfg.qat_key() else []

    @staticmethod
    def _reduce_range(cfg: CompressionConfig) -> bool:
        return reduce_range_default() if cfg.quant.reduce_range is None else cfg.quant.reduce_range

    def student_key(self, cfg: CompressionConfig) -> str:
        """The cache key of ``cfg``'s student.

        When the student is not trained, the distillation settings do not enter the key.

        Args:
            cfg: The configuration.

        Returns:
            The key (see ``CompressionConfig.student_key``).
        """
        if not cfg.trains:  # no distillation happens, so its knobs do not matter
            cfg = CompressionConfig(prune=cfg.prune)
        return cfg.student_key(self.workload.key)

    def student(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None) -> Student:
        """``cfg``'s student from the cache, or built (see :meth:`build_student`), exported and cached.

        Args:
            cfg: The configuration.
            stage: Called with a short description of each stage as it starts.

        Returns:
            The ``Student``: its key, fp32 ONNX graph, weights, parameter count and build facts
            (``reused`` says whether it came from the cache).
        """
        key = self.student_key(cfg)
        self._hold(STUDENT, key)  # before looking: an entry found is not evicted while used
        folder = self.cache.student_folder(key)
        onnx_path, weights_path, info_path = (
            self.cache.student_onnx(key),
            self.cache.student_weights(key),
            self.cache.student_info(key),
        )
        if info_path.is_file() and _verified(weights_path):
            CacheLayout.touch(info_path)  # its last use, for least-recently-used eviction
            info = json.loads(info_path.read_text())
            return Student(
                key,
                onnx_path if onnx_path.is_file() else None,  # an older cache's stored graph (checked when used)
                weights_path,
                info["parameters"],
                reused=True,
                sparsity=info.get("sparsity", 0.0),
                achieved=info.get("achieved"),
                structure=info.get("structure"),
                qat_ranges=info.get("qat_ranges"),
                fidelity=info.get("fidelity"),
            )
        student = self.build_student(cfg, stage)
        stage("exporting")
        graph = self._scratch(key)
        tmp = _tmp(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        try:  # a failed write (a full disk) leaves nothing behind
            self.export(student, graph)
            tmp.mkdir(parents=True)
            torch.save(student.state_dict(), tmp / weights_path.name)
            params, sparsity = count_parameters(student), weight_sparsity(student)
            if self._teacher_ops is None:  # counted once per search, not once per student
                self._teacher_ops = count_ops(self.workload.model, self.workload.example_inputs())
            achieved = achieved_fractions(self._teacher_ops, student, self.workload.example_inputs())
            ranges = getattr(student, "qat_ranges", None)
            (tmp / info_path.name).write_text(
                json.dumps(
                    {
                        "parameters": params,
                        "sparsity": sparsity,
                        "achieved": achieved,
                        "config": cfg.to_dict(),
                        "structure": self.structure,
                        "qat_ranges": ranges,
                        "channels": output_channels(graph, tuple(self.layers)),
                        "fidelity": self.fidelity,
                    }
                )
            )
            _seal(tmp / weights_path.name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self._drop_scratch()
            raise
        shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.replace(folder)
        except OSError:  # another worker put the same student there meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        self._written()
        return Student(
            key,
            graph,
            weights_path,
            params,
            reused=False,
            sparsity=sparsity,
            achieved=achieved,
            structure=self.structure or None,
            qat_ranges=ranges,
            fidelity=self.fidelity,
        )

    def _scratch(self, key: str) -> Path:
        """This process's scratch graph path for ``key``; the previous student's scratch is deleted
        (one per process: the graph is re-exported when another student comes back)."""
        if self._graph is not None and self._graph.stem.split(".")[0] != key:
            self._drop_scratch()
        path = self.cache.scratch_graph(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._graph = path
        return path

    def _drop_scratch(self) -> None:
        if self._graph is not None:
            self._graph.unlink(missing_ok=True)
            self._graph = None

    def student_graph(self, student: Student, cfg: CompressionConfig) -> Path:
        """The fp32 ONNX graph of a cached student, to quantize.

        The graph an older cache stored when it is still whole, else this process's scratch copy,
        else re-exported from the student's weights: the architecture is rebuilt from ``cfg`` (no
        training) and the weights are loaded into it (see ``CacheLayout``'s docstring).

        Args:
            student: The student (from :meth:`student`).
            cfg: Its configuration.

        Returns:
            The graph's path.
        """
        if student.onnx_path is not None and student.onnx_path.is_file():
            stored = student.onnx_path == self.cache.student_onnx(student.key)
            if not stored or _verified(student.onnx_path):
                return student.onnx_path
        path = self._scratch(student.key)
        if path.is_file():
            return path
        model = self.architecture(cfg)
        model.load_state_dict(torch.load(student.weights_path, weights_only=True, map_location="cpu"))
        try:
            return self.export(model, path)
        except BaseException:
            self._drop_scratch()
            raise

    def precisions(self, cfg: CompressionConfig) -> dict[str, str]:
        """Each layer's precision in the artifact (``quantize.precision_in_graph``: an embedding table
        not named in the config stays fp32 under a default it cannot take)."""
        ops = {name: ["Gather"] if name in self.tables else [] for name in self.layers}
        return {name: precision_in_graph(cfg.quant, name, ops[name]) for name in self.layers}

    def artifact(self, cfg: CompressionConfig, stage: StageCallback = lambda s: None, *, size: bool = True) -> Artifact:
        """The quantized ONNX model for ``cfg``: what would ship, and what is evaluated and measured.

        The student and the quantized model are taken from the cache when there, else built and cached.

        Args:
            cfg: The configuration.
            stage: Called with a short description of each stage as it starts.
            size: Compute the shipped size (``Artifact.compressed_size_bytes``; seconds on a
                transformer, once per artifact): False leaves it None, for artifacts that are only
                evaluated and thrown away (the sensitivity pre-pass).

        Returns:
            The ``Artifact``: its path, sha256, size, student and per-layer precisions.

        Raises:
            ConfigError: The configuration cannot be applied (see :meth:`quantize`).
        """
        student = self.student(cfg, stage)
        precisions = self.precisions(cfg)
        q = cfg.quant
        knobs = [precisions, q.calibration_samples]
        if q.uses("int8", self.layers):
            # QUANTIZER_VERSION: artifacts of an older int8 pass (no glue ops, always 7-bit) are not reused
            knobs += [QUANTIZER_VERSION, q.reduce_range if q.reduce_range is not None else reduce_range_default()]
            if q.calibration != "minmax":
                knobs.append(q.calibration)
        if q.uses("int4", self.layers):
            knobs.append(q.int4_block_size)
        if q.fuse_first:
            knobs.append("fuse_first:3")  # 2: without BiasGelu/SkipLayerNorm fusions, 3: nor MatMulAdd (NOT_FUSED)
        qkey = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:16]
        path = self.cache.artifact(student.key, qkey)
        self._hold(ARTIFACT, path.stem)
        if _verified(path):
            CacheLayout.touch(path)
        else:
            stage("quantizing")
            graph = self.student_graph(student, cfg)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp(path).with_suffix(".onnx")  # the quantizer picks its writer by the suffix
            try:  # a failed write (a full disk) leaves nothing behind
                self.quantize(graph, cfg, tmp, student.qat_ranges)
                _seal(tmp)
            except BaseException:
                for leftover in (tmp, tmp.with_name(tmp.name + ".sha256"), tmp.with_name(tmp.name + ".data")):
                    leftover.unlink(missing_ok=True)
                raise
            tmp.with_name(tmp.name + ".sha256").replace(path.with_name(path.name + ".sha256"))
            tmp.replace(path)
            student = replace(student, onnx_path=graph)
            self._written()
        int8 = tuple(n for n, p in precisions.items() if p == "int8")
        counts: dict[str, int] = {}
        for p in precisions.values():
            counts[p] = counts.get(p, 0) + 1
        sha = file_sha256(path)
        shipped = _shipped_size(path, sha) if size else None
        return Artifact(path, sha, path.stat().st_size, student, int8, counts, shipped)

    def baseline(self) -> Path:
        """The teacher exported as is (fp32, unpruned): the reference every trial is compared with.

        Returns:
            The cached fp32 ONNX file (exported on first use).
        """
        path = self.cache.baseline
        if not _verified(path):
            tmp = _tmp(path).with_suffix(".onnx")
            self.export(self.workload.model, tmp)
            _seal(tmp)
            tmp.with_name(tmp.name + ".sha256").replace(path.with_name(path.name + ".sha256"))
            tmp.replace(path)
        return path

    def export(self, model: torch.nn.Module, path: Path) -> Path:
        """Export ``model`` (a student of this workload) to an fp32 ONNX file at ``path``.

        Args:
            model: The model.
            path: The ONNX file to write.

        Returns:
            ``path``.
        """
        w = self.workload
        return export_onnx(model, w.example_inputs(), path, input_names=w.input_names, dynamic_axes=w.dynamic_axes)

    def quantize(
        self, fp32_path: Path, cfg: CompressionConfig, path: Path, qat_ranges: dict[str, dict] | None = None
    ) -> Path:
        """Quantize an exported fp32 student per layer as ``cfg.quant`` says, into ``path``.

        It is calibrated on the workload's data (and on the activation ranges QAT learned, where given).

        Args:
            fp32_path: The exported fp32 student.
            cfg: The configuration (its ``quant`` part is used).
            path: The quantized ONNX file to write.
            qat_ranges: The activation ranges a quantization-aware-trained student learned.

        Returns:
            ``path``.

        Raises:
            ConfigError: See :func:`autocl.compress.quantize_model`.
        """
        return quantize_model(
            fp32_path,
            path,
            cfg.quant,
            layer_nodes(fp32_path, self.layers),
            self.workload.calibration_feeds(cfg.quant.calibration_samples),
            qat_ranges,
        )
