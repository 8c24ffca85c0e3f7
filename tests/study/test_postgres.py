"""Many workers, one study, a real PostgreSQL server.

The server is Debian's ``postgresql`` (``make test`` installs it when missing): initdb and pg_ctl
from PATH or /usr/lib/postgresql/*/bin, started in a temporary folder on 127.0.0.1 and a free port,
as the ``postgres`` system user when the tests run as root (initdb refuses root). The worker
processes share one AUTOCL_HOME, so one cache and one teacher.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import ROOT
from tests.conftest import TINY_PROFILE_YAML

SPACE = """
name: tiny
prune: {ratio: [0.0, 0.5]}
distill: {temperature: [2.0, 4.0], alpha: 0.5, steps: 8, batch_size: 32, polish: {epochs: 0.2, every: 4}}
quant: {precisions: [fp32, int8], calibration_samples: 32}
"""
PROFILE = TINY_PROFILE_YAML
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin) and the "
                    "Makefile's set-up step could not install it: run `make postgres-server` as root")
    root = Path(tempfile.mkdtemp(prefix="autocl-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' system user to run initdb as")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        out = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120, cwd=root)
        assert out.returncode == 0, f"{' '.join(cmd)}: {out.stdout[-1500:]}{out.stderr[-1500:]}"
        return out

    run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "-t", "60", "start")
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE autocl")
        yield f"postgresql://postgres@127.0.0.1:{port}/autocl"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True,
                       timeout=60, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits):  # digits: the teacher is trained once, into the shared AUTOCL_HOME
    d = tmp_path_factory.mktemp("workers")
    (d / "space.yaml").write_text(SPACE)
    (d / "profile.yaml").write_text(PROFILE)
    return d


def _autocl(files, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autocl", *args], cwd=files, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"})


def _search(files, url, study, trials) -> subprocess.Popen:
    return _autocl(files, "search", "--workload", "digits", "--space", "space.yaml", "--profile", "profile.yaml",
                   "--study", study, "--storage", url, "--trials", str(trials), "--no-sensitivity")


def _finish(proc, timeout=240) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    return out, err


def _check_accounted(study: optuna.Study, url: str) -> None:
    """Numbers 0..n-1 once each, nothing left RUNNING or WAITING, recipes and polished twins
    enqueued once, and autocl's stored front equal to the one recomputed from Optuna's trials."""
    from autocl.space import SearchSpace, recipe_params
    from autocl.study import front_records, read_front

    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state in DONE for t in trials), [(t.number, t.state) for t in trials if t.state not in DONE]
    assert all("worker" in t.user_attrs for t in trials)
    layers = study.user_attrs["workload"]["layers"]
    recipes = recipe_params(SearchSpace.model_validate(study.user_attrs["space"]), layers)
    # a retried recipe keeps its origin (issue 20): count the enqueued ones, not their retries
    first = [t for t in trials if t.user_attrs.get("recipe") and "failed_trial" not in t.system_attrs]
    assert len(first) == len(recipes)
    twins = [t.user_attrs["polish_of"] for t in trials if "polish_of" in t.user_attrs]
    assert len(twins) == len(set(twins))
    front = front_records(study, "tiny-cpu")
    stored = read_front(url, study.study_name, "tiny-cpu")
    assert front and [r["trial"] for r in stored] == [r.number for r in front]
    assert [r["metric"] for r in stored] == [r.metric for r in front]


def test_two_searches_at_once_share_one_study(files, postgres_url):
    procs = [_search(files, postgres_url, "two", 3) for _ in range(2)]
    outs = [_finish(p) for p in procs]
    study = optuna.load_study(study_name="two", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    _check_accounted(study, postgres_url)
    pids = {p.pid for p in procs}
    by_worker = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"]["pid"], []).append(t.number)
    assert set(by_worker) == pids  # both did work, and no one else
    for (out, _), p in zip(outs, procs):  # each counts its own trials
        assert f"{len(by_worker[p.pid])} new trial(s)" in out, out[-2000:]


def _wait_running(url, study, pid, procs, timeout=180):
    """Until worker ``pid`` runs a trial past sampling (compressing, evaluating or measuring)."""
    end = time.time() + timeout
    while time.time() < end and all(p.poll() is None for p in procs):
        s = optuna.load_study(study_name=study, storage=url)
        if any(t.user_attrs.get("worker", {}).get("pid") == pid and "config" in t.user_attrs
               for t in s.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
            return
        time.sleep(0.2)
    raise AssertionError("the worker to kill never ran a trial: "
                         + "; ".join(p.stderr.read()[-800:] for p in procs if p.poll() is not None))


@pytest.mark.slow  # a minute of three worker processes; fast: tests/study/test_interrupt_retry.py (a live worker
# reaps and retries a killed worker's trial), tests/cli/test_stops.py (a killed search process), and
# test_two_searches_at_once_share_one_study above (workers sharing a PostgreSQL study)
def test_three_workers_one_killed_mid_trial(files, postgres_url):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    _finish(_search(files, postgres_url, "three", 1))  # makes the study; workers join it
    workers = [_autocl(files, "worker", "--study", "three", "--storage", postgres_url, "--trials", "3")
               for _ in range(3)]
    victim = workers[0]
    _wait_running(url, "three", victim.pid, workers)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    for w in workers[1:]:
        out, _ = _finish(w)
        assert "trial(s) of its own" in out and "Pareto front of 'three'" in out
    study = optuna.load_study(study_name="three", storage=url)
    _check_accounted(study, postgres_url)
    unfinished = [t for t in study.trials if t.user_attrs["worker"]["pid"] == victim.pid
                  and t.state != optuna.trial.TrialState.COMPLETE]
    assert len(unfinished) == 1, [(t.number, t.state) for t in unfinished]
    dead = unfinished[0]
    assert dead.state == optuna.trial.TrialState.FAIL
    # failed by a worker of this host seeing the process gone (at once), or, on a very slow machine whose
    # workers start no trial for 40 s, by Optuna's stale-heartbeat check: both retry it once
    error = dead.user_attrs.get("error")  # the stale-heartbeat check stores none
    assert error is None or "died while the trial ran" in error, error
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE
    assert retries[0].user_attrs["worker"]["pid"] in {w.pid for w in workers[1:]}
