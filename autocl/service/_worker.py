"""One run of a job, in its own process: ``python -m autocl.service._worker JOB_DIR``.

It runs :func:`autocl.study.run_search`, the function ``autocl search`` runs, on the job's copies
of its space and profile (``space.yaml``, ``profile.yaml``) and the run's trial and time budgets
(``run.json``; the time budget is run_search's ``timeout``),
on the study storage. It writes where it is to ``status.json`` as it goes and, whatever happens,
its outcome to ``exit.json`` (exit code and one line of reason), which the server reads even when
it was restarted in between. SIGINT stops it the way Ctrl-C stops ``autocl search``: finished
trials are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import traceback
from pathlib import Path

EXIT_FILE, STATUS_FILE, RUN_FILE = "exit.json", "status.json", "run.json"
STOPPED = 130


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
    tmp.replace(path)


class _StatusReporter:
    """The search's reporter: each event is a line in the log and the latest is ``status.json``."""

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / STATUS_FILE
        self.done = self.failed = 0

    def _write(self, stage: str) -> None:
        print(f"{now()} {stage}", flush=True)
        write_json(self.path, {"stage": stage, "done": self.done, "failed": self.failed, "updated_at": now()})

    def trial_started(self, number: int) -> None:
        self._write(f"trial {number}: sampling")

    def stage(self, number: int, stage: str) -> None:
        self._write(stage if number < 0 else f"trial {number}: {stage}")

    def trial_finished(self, trial) -> None:
        import optuna

        if trial.state == optuna.trial.TrialState.FAIL:
            self.failed += 1
            self._write(trial.user_attrs.get("error", f"trial {trial.number} failed"))
        else:
            self.done += 1
            from autocl.study import trial_summary

            m, lat, _, size = trial_summary(trial)  # the raw median, not the comparable objective value
            self._write(f"trial {trial.number}: metric {m:.4f}, latency {lat:.3f} ms, size {size:.1f} KB")


def _search(job_dir: Path, run: dict, reporter: _StatusReporter) -> str:
    from autocl.hardware import load_profile
    from autocl.space import load_space
    from autocl.study import run_search, sigterm_as_interrupt
    from autocl.workloads import load_workload

    space = load_space(job_dir / "space.yaml")
    profile = load_profile(job_dir / "profile.yaml")
    workload = load_workload(run["workload"])
    with sigterm_as_interrupt():
        result = run_search(
            workload,
            space,
            [profile],
            study_name=run["study"],
            storage=run["storage"],
            n_trials=run["n_trials"],
            timeout=run.get("timeout_s"),
            seed=run.get("seed", 0),
            reporter=reporter,
            workload_spec=run["workload"],
        )
    return f"{len(result.new_trials)} new trial(s) in this run: {reporter.done} complete, {reporter.failed} failed"


def main(job_dir: Path) -> int:
    run = json.loads((job_dir / RUN_FILE).read_text(encoding="utf-8"))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as `autocl search`: autocl's lines, not Optuna's INFO
    reporter = _StatusReporter(job_dir)
    print(f"{now()} worker {os.getpid()}: {json.dumps(run)}", flush=True)
    try:
        code, reason = 0, _search(job_dir, run, reporter)
    except KeyboardInterrupt:  # SIGINT (stop, shutdown) or SIGTERM (autocl.study.Interrupted)
        code, reason = STOPPED, f"stopped: {reporter.done} trial(s) complete in this run are saved"
    except Exception as exc:
        from autocl.errors import AutoclError

        if isinstance(exc, AutoclError):
            code, reason = 2, str(exc)
        else:
            traceback.print_exc()
            code, reason = 1, f"{type(exc).__name__}: {exc}"
    try:
        print(f"{now()} exit {code}: {reason}", flush=True)
        write_json(
            job_dir / EXIT_FILE,
            {"code": code, "reason": reason, "finished_at": now(), "done": reporter.done, "failed": reporter.failed},
        )
    except OSError:  # a full disk: the server says so from the free space it finds (see _jobs)
        return code or 2
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
