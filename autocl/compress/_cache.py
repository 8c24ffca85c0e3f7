"""Where one workload's compression cache lives: the one definition of its layout.

``<cache root>/<workload name>-<workload key>/`` holds

* ``baseline.onnx``: the teacher exported as is (fp32, unpruned);
* ``students/<student key>/``: ``student.onnx`` (fp32), ``student.pt`` (state dict), ``info.json``;
* ``artifacts/<student key>-<quantization key>.onnx``: the quantized models that were measured;
* ``checkpoints/<ladder key>/<steps>.pt``: a student of a fidelity ladder where a rung left it
  (weights, optimizer and schedule state, data order, learning curve), which a promoted student
  resumes from; the ladder key is the key of the student at the ladder's last rung.

Every file is sealed by a ``<file>.sha256`` beside it (see ``pipeline``). The pipeline writes this
layout; the report, export and re-measurement read it, all through ``CacheLayout``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, read in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        The hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheLayout:
    """The paths of one workload's cache (see the module docstring)."""

    folder: Path

    @classmethod
    def of(cls, cache_root: str | Path, workload_name: str, workload_key: str) -> CacheLayout:
        """The layout of workload ``workload_name`` with key ``workload_key`` under ``cache_root``.

        Args:
            cache_root: The artifact cache's root.
            workload_name: The workload's name.
            workload_key: The workload's key.

        Returns:
            The layout of ``<cache_root>/<workload_name>-<workload_key>``.
        """
        return cls(Path(cache_root) / f"{workload_name}-{workload_key}")

    @property
    def baseline(self) -> Path:
        """The teacher's fp32 export (``baseline.onnx``)."""
        return self.folder / "baseline.onnx"

    def student_folder(self, student_key: str) -> Path:
        """The folder of a cached student.

        Args:
            student_key: The student's key (see ``Compressor.student_key``).

        Returns:
            ``<cache>/students/<student_key>``.
        """
        return self.folder / "students" / student_key

    def student_onnx(self, student_key: str) -> Path:
        """The fp32 graph of a student.

        Args:
            student_key: The student's key, or ``''`` for the teacher.

        Returns:
            The student's ``student.onnx``; the teacher's export (``baseline``) for ``''``.
        """
        return self.student_folder(student_key) / "student.onnx" if student_key else self.baseline

    def student_weights(self, student_key: str) -> Path:
        """The state dict of a cached student.

        Args:
            student_key: The student's key.

        Returns:
            The student's ``student.pt``.
        """
        return self.student_folder(student_key) / "student.pt"

    def student_info(self, student_key: str) -> Path:
        """The facts of a cached student (parameters, sparsity, config, ...).

        Args:
            student_key: The student's key.

        Returns:
            The student's ``info.json``.
        """
        return self.student_folder(student_key) / "info.json"

    @property
    def artifacts(self) -> Path:
        """The folder of the quantized artifacts."""
        return self.folder / "artifacts"

    def artifact(self, student_key: str, quant_key: str) -> Path:
        """The path of a quantized artifact.

        Args:
            student_key: The student's key.
            quant_key: The hash of the quantization settings.

        Returns:
            ``<cache>/artifacts/<student_key>-<quant_key>.onnx``.
        """
        return self.artifacts / f"{student_key}-{quant_key}.onnx"

    def checkpoint(self, ladder_key: str, steps: int) -> Path:
        """Where a fidelity ladder's student is kept after ``steps`` distillation steps.

        Args:
            ladder_key: The key of the student at the ladder's last rung (``Compressor.ladder_key``).
            steps: The rung's cumulative steps.

        Returns:
            ``<cache>/checkpoints/<ladder_key>/<steps>.pt``.
        """
        return self.folder / "checkpoints" / ladder_key / f"{steps}.pt"

    def checkpoints(self, ladder_key: str) -> dict[int, Path]:
        """The checkpoints kept of one ladder student.

        Args:
            ladder_key: The key of the student at the ladder's last rung.

        Returns:
            steps -> checkpoint path, for every ``<steps>.pt`` present (sealed or not: callers verify).
        """
        folder = self.folder / "checkpoints" / ladder_key
        found = {}
        for path in folder.glob("*.pt"):
            if path.stem.isdigit():
                found[int(path.stem)] = path
        return dict(sorted(found.items()))

    def find_artifact(self, student_key: str, sha256: str) -> Path | None:
        """The cached artifact of ``student_key`` whose content has ``sha256``.

        Args:
            student_key: The student's key.
            sha256: The artifact's sha256.

        Returns:
            The artifact's path, or None when it is gone (or either argument is empty).
        """
        if not student_key or not sha256:
            return None
        for path in sorted(self.artifacts.glob(f"{student_key}-*.onnx")):
            if file_sha256(path) == sha256:
                return path
        return None


__all__ = ["CacheLayout", "file_sha256"]
