"""Where one workload's compression cache lives: the one definition of its layout.

``<cache root>/<workload name>-<workload key>/`` holds

* ``baseline.onnx``: the teacher exported as is (fp32, unpruned);
* ``students/<student key>/``: ``student.pt`` (state dict) and ``info.json`` (see below);
* ``artifacts/<student key>-<quantization key>.onnx``: the quantized models that were measured,
  each with ``.sha256`` and ``.size`` records beside it;
* ``holds/``: one lock file per entry that a running trial holds (see :meth:`CacheLayout.hold`);
* ``graphs/<student key>.<pid>.onnx``: a process's scratch fp32 graph of the student it quantizes.
* ``checkpoints/<ladder key>/<steps>.pt``: a student of a fidelity ladder where a rung left it
  (weights, optimizer and schedule state, data order, learning curve), which a promoted student
  resumes from; the ladder key is the key of the student at the ladder's last rung.

Every file is sealed by a ``<file>.sha256`` beside it (see ``pipeline``). The pipeline writes this
layout; the report, export, re-measurement and eviction read it, all through ``CacheLayout``.

**What a student stores, and what it does not.** A student entry keeps what a rebuild or an export
needs and no more: its weights as a state dict (``student.pt``: what an export bundle ships, what
``autocl apply`` loads, what a further distillation starts from) and ``info.json`` (its facts, and
the output channels each layer kept, for the report). A student used to keep its fp32 graph too
(``student.onnx``): the same weights a second time, and no optimizer state, which is why a student was
about twice its fp32 weights (measured: a MiniLM student with 12.5% of FFN neurons and 25% of heads
pruned, 83.2 MB of fp32 weights, took 83.3 MB of graph + 83.2 MB of state dict; the built-in CNN at
prune 0.5, 311 KB of weights, 314 + 331 KB). The graph is now derived: re-exported from the weights
when an artifact is quantized (the architecture is rebuilt from the configuration, no training; for
the CNN byte for byte the graph that was built), and kept only as one process-private scratch file
(:meth:`CacheLayout.scratch_graph`) while that process quantizes the student. Re-exporting that
MiniLM student took 9.8 s inside a search, 101 s in a fresh process that must first compute the
teacher's outputs (2 shared cores); under a budget, twice as many students fit, and a student
evicted costs a retraining. A
``student.onnx`` an older cache holds is still used.

It keeps no optimizer state: a finished student is never trained again. A ladder's checkpoint
(``checkpoints/``) is what keeps optimizer state, since a promoted student resumes from it.

**Entries and eviction.** Students, artifacts and ladder checkpoints are *entries*
(:class:`CacheEntry`): each can be deleted and is rebuilt on demand, verified by its sha256 like any
rebuild (a promoted student whose checkpoint was evicted resumes from a lower rung's, or distils
from the start). The baseline, the
teachers (``<cache root>/teachers``) and data files are not entries and are never evicted. An
entry's last use is the modification time of its primary file (``info.json``, the ``.onnx``),
which the pipeline touches on every reuse. Only the files named here are ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from autocl.compress._holds import EntryHold, alive

STUDENT, ARTIFACT, CHECKPOINT = "student", "artifact", "checkpoint"

STUDENT_FILES = (
    "student.onnx",
    "student.onnx.sha256",
    "student.pt",
    "student.pt.sha256",
    "info.json",
)
"""The files of a student's folder that autocl writes, and the only ones eviction deletes."""

ARTIFACT_RECORDS = (".sha256", ".size")
"""The records kept beside an artifact (``<artifact>.sha256``, ``<artifact>.size``)."""


def checkpoint_key(ladder_key: str, steps: int) -> str:
    """The entry key of a ladder checkpoint (what holds and eviction name it by).

    Args:
        ladder_key: The ladder student's key (``Compressor.ladder_key``).
        steps: The rung's cumulative steps.

    Returns:
        ``<ladder key>-<steps>``.
    """
    return f"{ladder_key}-{steps}"


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


def teacher_files(cache_root: str | Path) -> list[Path]:
    """The trained teachers of built-in workloads (``<cache root>/teachers/``): never evicted.

    Args:
        cache_root: The artifact cache's root.

    Returns:
        The files, by name.
    """
    folder = Path(cache_root) / "teachers"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


@dataclass(frozen=True)
class CacheEntry:
    """One evictable entry of a workload's cache: a student, a quantized artifact or a ladder checkpoint.

    ``key`` is the student's key, the artifact's file stem (``<student key>-<quantization key>``),
    or a checkpoint's ``<ladder key>-<steps>``;
    ``files`` are the entry's own files that exist (only those are ever deleted); ``last_used`` is
    the modification time of its primary file (the pipeline touches it on every reuse).
    """

    layout: CacheLayout
    kind: str
    key: str
    files: tuple[Path, ...]
    size: int
    last_used: float

    @property
    def student_key(self) -> str:
        """The key of the student this entry is, was quantized from, or (a checkpoint) the ladder key."""
        return self.key if self.kind == STUDENT else self.key.split("-", 1)[0]

    def describe(self) -> str:
        """``student <key>`` or ``artifact <stem>``, with the workload's folder name."""
        return f"{self.layout.folder.name}: {self.kind} {self.key}"


@dataclass(frozen=True)
class CacheLayout:
    """The paths of one workload's cache (see the module docstring)."""

    folder: Path

    @classmethod
    def all_under(cls, cache_root: str | Path) -> list[CacheLayout]:
        """Every workload cache under ``cache_root``: the folders holding a baseline, students or artifacts.

        Args:
            cache_root: The artifact cache's root.

        Returns:
            Their layouts, by folder name.
        """
        root = Path(cache_root)
        if not root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and "-" in p.name):
            layout = cls(folder)
            if layout.baseline.is_file() or (folder / "students").is_dir() or layout.artifacts.is_dir():
                out.append(layout)
        return out

    @property
    def workload_name(self) -> str:
        """The workload's name, read from the folder's name."""
        return self.folder.name.rsplit("-", 1)[0]

    @property
    def workload_key(self) -> str:
        """The workload's key, read from the folder's name."""
        return self.folder.name.rsplit("-", 1)[-1]

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
        """The stored fp32 graph of a student (older caches; new students store none, see the module docstring).

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

    def scratch_graph(self, student_key: str, pid: int | None = None) -> Path:
        """This process's scratch copy of a student's fp32 graph (re-exported from its weights).

        Args:
            student_key: The student's key.
            pid: The process (default: this one).

        Returns:
            ``<cache>/graphs/<student_key>.<pid>.onnx``.
        """
        return self.folder / "graphs" / f"{student_key}.{pid or os.getpid()}.onnx"

    def stale_scratch(self) -> list[Path]:
        """Scratch graphs left by processes of this machine that are gone (a crash, a kill)."""
        folder = self.folder / "graphs"
        out = []
        for path in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
            pid = path.stem.rsplit(".", 1)[-1]
            if pid.isdigit() and not alive(int(pid)):
                out.append(path)
        return out

    def student_channels(self, student_key: str) -> dict[str, int]:
        """The output channels each layer of a cached student kept (stored in its ``info.json``).

        Args:
            student_key: The student's key.

        Returns:
            Layer -> channels; empty when the student is not cached or predates the record.
        """
        try:
            return dict(json.loads(self.student_info(student_key).read_text()).get("channels") or {})
        except (OSError, ValueError):
            return {}

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

    @property
    def pinned_files(self) -> tuple[Path, ...]:
        """The files that are never evicted: the baseline and its record."""
        return tuple(p for p in (self.baseline, self.baseline.with_name(self.baseline.name + ".sha256")) if p.is_file())

    def entries(self) -> list[CacheEntry]:
        """The students, artifacts and ladder checkpoints of this cache, as they are on disk now.

        Returns:
            One ``CacheEntry`` per student folder, per artifact file and per checkpoint (temporary
            files of a writer are not entries).
        """
        out = []
        students = self.folder / "students"
        for folder in sorted(students.iterdir()) if students.is_dir() else []:
            if folder.is_dir() and "." not in folder.name:  # "<key>.<pid>.tmp": being written
                entry = self._entry(STUDENT, folder.name, [folder / n for n in STUDENT_FILES], folder / "info.json")
                if entry.files:  # a folder left with only a user's own files is not an entry
                    out.append(entry)
        for path in sorted(self.artifacts.glob("*.onnx")) if self.artifacts.is_dir() else []:
            if path.stem.count(".") == 0:  # not "<stem>.<pid>.tmp.onnx"
                files = [path, *(path.with_name(path.name + r) for r in ARTIFACT_RECORDS)]
                out.append(self._entry(ARTIFACT, path.stem, files, path))
        ladders = self.folder / "checkpoints"
        for folder in sorted(ladders.iterdir()) if ladders.is_dir() else []:
            for steps, path in self.checkpoints(folder.name).items() if folder.is_dir() else []:
                files = [path, path.with_name(path.name + ".sha256")]
                out.append(self._entry(CHECKPOINT, checkpoint_key(folder.name, steps), files, path))
        return out

    def _entry(self, kind: str, key: str, candidates: list[Path], primary: Path) -> CacheEntry:
        files, size, times = [], 0, {}
        for path in candidates:
            try:
                st = path.stat()
            except OSError:
                continue
            files.append(path)
            size += st.st_size
            times[path] = st.st_mtime
        used = times.get(primary, max(times.values(), default=0.0))
        return CacheEntry(self, kind, key, tuple(files), size, used)

    def _hold_path(self, kind: str, key: str) -> Path:
        return self.folder / "holds" / f"{kind}-{key}.lock"

    def hold(self, kind: str, key: str) -> EntryHold:
        """A hold on an entry (``STUDENT`` with its key, ``ARTIFACT`` with its file stem): while it
        is held, eviction leaves the entry alone. Use it as a context manager.

        Args:
            kind: ``"student"`` or ``"artifact"``.
            key: The student's key, or the artifact's file stem.

        Returns:
            The (not yet entered) hold.
        """
        return EntryHold(self._hold_path(kind, key))

    @staticmethod
    def touch(path: Path) -> None:
        """Mark an entry's primary file as used now (its modification time; the content is unchanged)."""
        with contextlib.suppress(OSError):  # another user's cache file: the order is only a hint
            os.utime(path)

    def remove(self, entry: CacheEntry) -> int:
        """Delete ``entry``'s own files, unless a trial holds it.

        The entry's lock is taken exclusively (without waiting) for the deletion, so no trial starts
        using it meanwhile. A student's folder is removed once empty; a file autocl did not write
        stays, and so does its folder.

        Args:
            entry: An entry of this layout.

        Returns:
            The bytes freed; 0 when the entry is held.
        """
        lock = self._hold_path(entry.kind, entry.key)
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            freed = 0
            for path in entry.files:
                try:
                    size = path.stat().st_size
                    path.unlink()
                    freed += size
                except FileNotFoundError:
                    continue
            with contextlib.suppress(OSError):  # the entry's folder, once empty
                if entry.kind == STUDENT:
                    self.student_folder(entry.key).rmdir()
                elif entry.kind == CHECKPOINT:
                    self.checkpoint(entry.student_key, 0).parent.rmdir()
            return freed
        finally:
            os.close(fd)

    def is_held(self, entry: CacheEntry) -> bool:
        """Whether a trial holds ``entry`` now (see :meth:`hold`)."""
        lock = self._hold_path(entry.kind, entry.key)
        if not lock.is_file():
            return False
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        finally:
            os.close(fd)
        return False


__all__ = [
    "ARTIFACT",
    "CHECKPOINT",
    "STUDENT",
    "STUDENT_FILES",
    "CacheEntry",
    "CacheLayout",
    "EntryHold",
    "checkpoint_key",
    "file_sha256",
    "teacher_files",
]
