"""Search jobs: records on disk, worker processes, and one supervisor thread that moves them along.

A job lives in ``<AUTOCL_HOME>/service/jobs/<id>/``: ``job.json`` (the record, written only by the
server, atomically), the space and profile it runs, and what its worker writes (``log.txt``,
``status.json``, ``exit.json``). States::

    queued -> running -> done | failed | stopped | interrupted
    stopped, interrupted, failed --resume--> queued (with what is left of its budgets)

A restarted server reads every record back. A job recorded as running whose worker is still alive
is followed again; one whose worker finished meanwhile is closed from its ``exit.json``; one whose
worker is gone without an outcome is marked interrupted, with the reason. Stopping the server
interrupts its running jobs (SIGINT: finished trials are kept) and records that, so nothing is
forgotten and everything can be resumed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from autocl.runtime import home_dir
from autocl.service import _studies
from autocl.service._inputs import InputError, ResolvedFile, check_study_name
from autocl.service._worker import EXIT_FILE, RUN_FILE, STATUS_FILE, STOPPED, now, write_json

ACTIVE = ("queued", "running")
RESUMABLE = ("stopped", "interrupted", "failed")
STATES = (*ACTIVE, "done", *RESUMABLE)
SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else ()
"""No script folder on the worker's ``sys.path`` (its job folder holds only the job's files anyway)."""
MAX_QUEUED = 32
"""Jobs waiting at once; one more is refused (429) until some start or are stopped."""
JOB_ID = r"^[0-9a-f]{12}$"
STOP_GRACE_S = (20.0, 40.0)  # after SIGINT: SIGTERM, then SIGKILL


@dataclass
class Job:
    id: str
    study: str
    workload: str
    space: str  # shipped name or "inline"
    space_name: str
    profile: str  # shipped name or "inline"
    profile_name: str
    trials: int | None
    time_budget_s: float | None
    seed: int
    state: str = "queued"
    reason: str = ""
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    finished_at: str | None = None
    runs: int = 0
    run_seconds: float = 0.0
    trials_before: int | None = None
    pid: int | None = None
    stop_requested: bool = False

    @staticmethod
    def load(path: Path) -> Job:
        """The record in ``path``; ValueError when it is not one this server wrote (wrong types, text
        that cannot be encoded, a name that is not a job's): such a record would break every listing."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        job = Job(**{k: v for k, v in data.items() if k in Job.__dataclass_fields__})
        for name, kind in _FIELD_TYPES.items():
            value = getattr(job, name)
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise ValueError(f"field {name!r} is {type(value).__name__}")
            if isinstance(value, str):
                value.encode("utf-8")  # UnicodeEncodeError is a ValueError
        if not re.fullmatch(JOB_ID, job.id) or path.parent.name != job.id or job.state not in STATES:
            raise ValueError(f"id {job.id!r} or state {job.state!r} is not a job's")
        try:
            check_study_name(job.study)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return job


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    **{f: str for f in ("id", "study", "workload", "space", "space_name", "profile", "profile_name", "state")},
    **{f: str for f in ("reason", "created_at")},
    **{f: (str, type(None)) for f in ("started_at", "finished_at")},
    "trials": (int, type(None)),
    "time_budget_s": (int, float, type(None)),
    "seed": int,
    "runs": int,
    "run_seconds": (int, float),
    "trials_before": (int, type(None)),
    "pid": (int, type(None)),
    "stop_requested": bool,
}


def jobs_dir() -> Path:
    return home_dir() / "service" / "jobs"


def _disk_full_reason(folder: Path) -> str:
    """The reason of a worker that could not write its outcome because ``AUTOCL_HOME``'s disk is full;
    "" when the disk has room."""
    import shutil

    from autocl.compress import format_size
    from autocl.study import ADVICE

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if free >= 1 << 20:
        return ""
    return (
        f"the worker could not write its outcome: no space left on device under {folder} ({format_size(free)} "
        f"free); finished trials are saved: {ADVICE}, then resume the job"
    )


def _since(iso: str | None) -> float:
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(iso)).total_seconds() if iso else 0.0


def _pid_runs(pid: int | None, job_dir: Path) -> bool:
    """The worker ``pid`` is alive and is this job's (not a recycled pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(job_dir).encode() in cmdline and b"autocl.service._worker" in cmdline


def _worker_env() -> dict[str, str]:
    """The worker imports the very autocl this server runs, whatever folder the server was started
    in: it runs in its job folder with ``python -P`` (``SAFE_PATH``), and the folder
    holding this server's ``autocl`` package comes first on ``PYTHONPATH``. An ``autocl/`` folder in
    the server's working directory can neither shadow nor inject code. Relative ``AUTOCL_HOME`` is
    made absolute, since the worker's working directory differs."""
    import autocl

    code = str(Path(autocl.__file__).resolve().parents[1])
    path = [code, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != code)]
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(path),
        "AUTOCL_HOME": str(home_dir().resolve()),
    }


class JobService:
    """The jobs of one server; ``max_running`` workers at a time (0 keeps jobs queued)."""

    def __init__(self, max_running: int = 1, tick_s: float = 0.5) -> None:
        self.max_running = max_running
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.signalled: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- records -------------------------------------------------------------------------------
    def _dir(self, job_id: str) -> Path:
        return jobs_dir() / job_id

    def _save(self, job: Job) -> None:
        self.jobs[job.id] = job
        write_json(self._dir(job.id) / "job.json", asdict(job))

    def _read(self, job_id: str, name: str) -> dict | None:
        try:
            return json.loads((self._dir(job_id) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def recover(self) -> None:
        """Read every record back and settle the ones that were running when the server stopped."""
        root = jobs_dir()
        for path in sorted(root.glob("*/job.json")) if root.is_dir() else []:
            try:
                job = Job.load(path)
            except (OSError, ValueError, TypeError) as exc:
                # skipped, not fatal: one unreadable record must not hide every other job
                print(f"autocl serve: skipping the job record {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            self.jobs[job.id] = job
            if job.state == "running" and not _pid_runs(job.pid, self._dir(job.id)):
                self._finish(job, None)

    # --- the supervisor ------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            self.recover()
        self._thread = threading.Thread(target=self._loop, name="autocl-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception as exc:
                print(f"autocl serve: job supervisor: {type(exc).__name__}: {exc}", file=sys.stderr)

    def tick(self) -> None:
        with self.lock:
            for job in [j for j in self.jobs.values() if j.state == "running"]:
                proc = self.procs.get(job.id)
                ended = proc.poll() is not None if proc else not _pid_runs(job.pid, self._dir(job.id))
                if ended:
                    self._finish(job, proc.returncode if proc else None)
                elif job.id in self.signalled:
                    self._escalate(job)
            running = [j for j in self.jobs.values() if j.state == "running"]
            for job in sorted((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: j.created_at):
                if len(running) >= self.max_running:
                    break
                if any(r.study == job.study for r in running):
                    continue  # one worker per study at a time
                self._launch(job)
                running.append(job)

    def _launch(self, job: Job) -> None:
        d = self._dir(job.id)
        if job.trials_before is None:
            job.trials_before = _studies.trial_count(job.study)
        done = _studies.progress(job.study, job.trials_before)
        n_trials = None if job.trials is None else job.trials - done.screened
        timeout = None if job.time_budget_s is None else job.time_budget_s - job.run_seconds
        if (n_trials is not None and n_trials <= 0) or (timeout is not None and timeout <= 0):
            job.state, job.reason, job.finished_at = "done", "its trial or time budget is used up", now()
            self._save(job)
            return
        write_json(
            d / RUN_FILE,
            {
                "study": job.study,
                "workload": job.workload,
                "storage": f"sqlite:///{_studies.study_path(job.study).resolve()}",  # the worker runs elsewhere
                "n_trials": n_trials,
                "timeout_s": timeout,
                "seed": job.seed + job.runs,
            },
        )
        for name in (EXIT_FILE, STATUS_FILE):
            (d / name).unlink(missing_ok=True)
        with open(d / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *SAFE_PATH, "-m", "autocl.service._worker", str(d.resolve())],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=d,
                env=_worker_env(),
            )
        self.procs[job.id] = proc
        job.state, job.reason, job.pid, job.stop_requested = "running", "", proc.pid, False
        job.started_at, job.finished_at, job.runs = now(), None, job.runs + 1
        self._save(job)

    def _finish(self, job: Job, returncode: int | None, *, shutting_down: bool = False) -> None:
        """Close a run whose worker ended: its exit.json says how; without one, say what is known."""
        outcome = self._read(job.id, EXIT_FILE)
        self.procs.pop(job.id, None)
        self.signalled.pop(job.id, None)
        job.run_seconds += _since(job.started_at)
        job.pid, job.finished_at = None, now()
        code = outcome.get("code") if outcome else None
        job.reason = str(outcome.get("reason", "")) if outcome else ""
        # a worker we sent SIGINT may end in anything the interrupt broke (an import, say): a stop
        interrupted = code not in (0, 2)
        if job.stop_requested and interrupted:
            job.state = "stopped"
            how = f"status {returncode}" if code is None else job.reason
            job.reason = job.reason if code == STOPPED else f"stopped by request (the worker ended: {how})"
        elif shutting_down and interrupted:
            job.state = "interrupted"
            job.reason = "the server shut down while this job ran; finished trials are saved: resume it to continue"
        elif outcome is None and returncode is None:
            job.state = "interrupted"
            job.reason = (
                "the server stopped while this job ran and its worker is gone; finished trials are saved: "
                "resume it to continue"
            )
        elif outcome is None:
            job.state = "failed"
            job.reason = (
                f"the worker ended with status {returncode} before writing its outcome; see "
                f"{self._dir(job.id) / 'log.txt'}"
            )
            full = _disk_full_reason(self._dir(job.id))
            if full:  # the outcome could not be written because the disk is full: say that
                job.reason = full
        else:
            job.state = {0: "done", STOPPED: "interrupted"}.get(code, "failed") if isinstance(code, int) else "failed"
        self._save(job)

    def _signal(self, job: Job, sig: int) -> None:
        if job.pid is None:  # not running: nothing to signal
            return
        try:
            os.killpg(job.pid, sig)  # the worker leads its own session
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def _escalate(self, job: Job) -> None:
        waited = time.monotonic() - self.signalled[job.id]
        if waited > STOP_GRACE_S[1]:
            self._signal(job, signal.SIGKILL)
        elif waited > STOP_GRACE_S[0]:
            self._signal(job, signal.SIGTERM)

    # --- requests ------------------------------------------------------------------------------
    def create(
        self,
        *,
        study: str,
        workload: str,
        space: ResolvedFile,
        profile: ResolvedFile,
        trials: int | None,
        time_budget_s: float | None,
        seed: int,
    ) -> Job:
        with self.lock:
            busy = [j.id for j in self.jobs.values() if j.study == study and j.state in ACTIVE]
            if busy:
                raise InputError(
                    409,
                    f"study {study!r} already has an active job ({busy[0]}); stop it or wait, or "
                    "choose another study name",
                )
            queued = sum(j.state == "queued" for j in self.jobs.values())
            if queued >= MAX_QUEUED:
                raise InputError(
                    429,
                    f"{queued} jobs are queued already (the limit is {MAX_QUEUED}); wait for some to start, or stop some",
                )
            job = Job(
                id=uuid.uuid4().hex[:12],
                study=study,
                workload=workload,
                space=space.source,
                space_name=space.name,
                profile=profile.source,
                profile_name=profile.name,
                trials=trials,
                time_budget_s=time_budget_s,
                seed=seed,
            )
            d = self._dir(job.id)
            d.mkdir(parents=True)
            (d / "space.yaml").write_text(space.text, encoding="utf-8")
            (d / "profile.yaml").write_text(profile.text, encoding="utf-8")
            self._save(job)
            return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            if job_id not in self.jobs:
                raise InputError(404, f"no job {job_id!r}; GET /api/jobs lists them")
            return replace(self.jobs[job_id])

    def all(self) -> list[Job]:
        with self.lock:
            return [replace(j) for j in sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)]

    def stop(self, job_id: str) -> Job:
        with self.lock:
            job = self.get(job_id)
            job = self.jobs[job_id]
            if job.state == "queued":
                job.state, job.reason, job.finished_at = "stopped", "stopped before it started", now()
            elif job.state == "running":
                job.stop_requested, job.reason = True, "stopping: the trial in progress ends the run"
                self.signalled.setdefault(job_id, time.monotonic())
                self._signal(job, signal.SIGINT)
            else:
                raise InputError(409, f"job {job_id} is {job.state}, not queued or running; nothing to stop")
            self._save(job)
            return replace(job)

    def resume(self, job_id: str) -> Job:
        with self.lock:
            job = self.get(job_id)
            job = self.jobs[job_id]
            if job.state not in RESUMABLE:
                raise InputError(
                    409, f"job {job_id} is {job.state}; only a stopped, interrupted or failed job can be resumed"
                )
            busy = [j.id for j in self.jobs.values() if j.study == job.study and j.state in ACTIVE]
            if busy:
                raise InputError(409, f"study {job.study!r} already has an active job ({busy[0]})")
            job.state, job.reason, job.stop_requested = "queued", "resumed", False
            self._save(job)
            return replace(job)

    def shutdown(self, wait_s: float = 30.0) -> None:
        """Interrupt running workers (finished trials are kept) and record why, then stop supervising."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self.lock:
            running = [j for j in self.jobs.values() if j.state == "running"]
            for job in running:
                self._signal(job, signal.SIGINT)
            deadline = time.monotonic() + wait_s
            for job in running:
                proc = self.procs.get(job.id)
                if proc is None:  # a worker followed again after a restart: not our child, poll it
                    while _pid_runs(job.pid, self._dir(job.id)) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    if _pid_runs(job.pid, self._dir(job.id)):
                        self._signal(job, signal.SIGKILL)
                    self._finish(job, None, shutting_down=True)
                    continue
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._signal(job, signal.SIGKILL)
                    proc.wait()
                self._finish(job, proc.returncode, shutting_down=True)


__all__ = ["ACTIVE", "JOB_ID", "RESUMABLE", "Job", "JobService", "jobs_dir"]
