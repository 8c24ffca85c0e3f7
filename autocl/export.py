"""Ship exactly what was measured: one trial of a study as a verified bundle, and rebuilding it.

``export_trial`` writes a directory with

* ``model.onnx``: the quantized artifact the study evaluated and timed (its sha256 is checked
  against the trial's ``artifact_sha256``);
* ``weights.pt``: the pruned and distilled PyTorch student, a ``torch.save`` state dict that loads
  with ``torch.load(..., weights_only=True)``;
* ``config.yaml``: the trial's ``CompressionConfig``; ``autocl apply --config config.yaml
  --workload NAME`` rebuilds the architecture and loads the weights (``autocl.apply``);
* ``MODEL_CARD.md``: measured metric, latency (median, spread, profile), size, per-layer precision
  and pruning, the teacher, versions and date;
* ``export.json``: the same facts for programs.

Before anything is written, the bundle's ``model.onnx`` is verified in a fresh onnxruntime session:
the metric must equal the study's (it is deterministic; ``metric_tolerance``), and the median
latency must fall inside the study's interquartile band for that trial widened on both sides by
``latency_tolerance`` x the study's median (measured twice at most, since a busy machine can spike
once). A failure refuses the export with both sets of numbers and leaves no directory behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import optuna
import yaml

import autocl
from autocl.config import CompressionConfig
from autocl.errors import ConfigError, ProfileError, StudyError, TrialError, WorkloadError, redact
from autocl.hardware import HardwareProfile, device_description, measure_latency, profile_from_dict
from autocl.layer_latency import artifact_layer_shares
from autocl.report import (
    DOMINATED,
    FAILED,
    FRONT,
    Pick,
    StudyData,
    TrialInfo,
    layer_rows,
    model_card,
    pick,
    pruning_map,
    study_data,
)
from autocl.runtime import cache_dir
from autocl.workloads import Workload, load_workload

BUNDLE_FILES = ("model.onnx", "weights.pt", "config.yaml", "MODEL_CARD.md", "export.json")
LATENCY_TOLERANCE = 0.5
METRIC_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Verification:
    """The bundle's model re-evaluated and re-timed, next to what the study stored."""

    study_metric: float
    metric: float
    metric_tolerance: float
    study_median_ms: float
    study_q25_ms: float
    study_q75_ms: float
    band_ms: tuple[float, float]
    median_ms: float
    iqr_ms: float
    p90_ms: float
    latency_tolerance: float
    attempts: int
    sha256: str
    study_sha256: str

    @property
    def metric_ok(self) -> bool:
        """Whether the re-computed metric is within ``metric_tolerance`` of the study's."""
        return abs(self.metric - self.study_metric) <= self.metric_tolerance

    @property
    def latency_ok(self) -> bool:
        """Whether the re-measured median latency falls inside ``band_ms``."""
        return self.band_ms[0] <= self.median_ms <= self.band_ms[1]

    @property
    def sha_ok(self) -> bool:
        """Whether the bundle's artifact is the one the study measured (same sha256)."""
        return self.sha256 == self.study_sha256


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_trial` wrote: the bundle's directory, the trial, the profile it was verified
    on, the pick that chose it (None for an explicit trial number), the verification and the bundle's
    file names."""

    directory: Path
    trial: TrialInfo
    profile: str
    pick: Pick | None
    verification: Verification
    files: tuple[str, ...] = BUNDLE_FILES


def resolve_workload(data: StudyData, workload: Workload | str | None, storage: str | None = None) -> Workload:
    """The study's workload (by its stored spec, else name, unless given), refused if its teacher or data changed.

    With the study's ``storage``, the study's copy of its teacher is first written back into the
    cache where the cached file is missing or damaged, as ``autocl search`` does: a damaged cache
    costs recomputation, never the study.

    Args:
        data: The study on one profile.
        workload: A workload, a workload spec (a built-in, a registered name or ``module:function``), or
            None to load the one the study records.
        storage: The study's database URL (its teacher copy is restored from there), or None.

    Returns:
        The workload, whose key matches the one the study was searched with (when the study stores it).

    Raises:
        StudyError: No workload is given and the study does not record one.
        WorkloadError: The workload cannot be loaded, or its key differs from the study's.
    """
    if not isinstance(workload, Workload):
        if storage:
            from autocl.study import restore_teacher

            restore_teacher(storage, data.study_name)
        spec = workload or data.workload.get("spec") or data.workload.get("name")
        if not spec:
            raise StudyError(f"study {data.study_name!r} does not record its workload; pass --workload")
        try:
            workload = load_workload(spec)
        except WorkloadError as exc:
            raise WorkloadError(
                f"{exc} (study {data.study_name!r} was searched on workload "
                f"{data.workload.get('name')!r}; pass --workload package.module:function for a "
                "user workload)"
            ) from None
    want = data.fingerprint.get("workload_key")
    if want and workload.key != want:
        raise WorkloadError(
            f"workload {workload.name!r} now has key {workload.key} but study {data.study_name!r} was "
            f"searched with key {want}: its teacher weights or data changed, so the study's numbers "
            "do not describe what would be built now. Use the original workload"
        )
    return workload


def resolve_profile(data: StudyData, profile: HardwareProfile | None) -> HardwareProfile:
    """The hardware profile to verify on: ``profile`` when given, else the settings the study stores.

    Args:
        data: The study on one profile.
        profile: A profile to use instead of the stored one.

    Returns:
        ``profile``, or the profile rebuilt from the study's stored settings for ``data.profile``.

    Raises:
        ProfileError: ``profile`` is None and the study does not store the profile's settings (or they
            are invalid).
    """
    if profile is not None:
        return profile
    if not data.profile_settings:
        raise ProfileError(
            f"study {data.study_name!r} does not store the settings of profile {data.profile!r}; "
            "pass its YAML file as --profile PATH"
        )
    return profile_from_dict(data.profile_settings, source=f"study {data.study_name!r}: profile")


def choose_trial(data: StudyData, trial: int | None, spec: str | None) -> tuple[TrialInfo, Pick | None]:
    """The trial to export, by number or by a pick spec.

    Give exactly one of ``trial`` or ``spec``; a trial must be completed, feasible and measured on the
    profile of ``data``.

    Args:
        data: The study on one profile.
        trial: A trial number.
        spec: A pick spec (see ``autocl.report.pick``).

    Returns:
        ``(trial, pick)``: the trial, and the ``Pick`` that chose it (None when ``trial`` was given).

    Raises:
        ConfigError: Not exactly one of ``trial`` and ``spec``, or ``spec`` cannot be read.
        StudyError: No front member satisfies ``spec`` (or the front is empty), or there is no trial
            ``trial``.
        TrialError: Trial ``trial`` failed or is not on or behind the feasible front (infeasible,
            unmeasured or pending).
    """
    if (trial is None) == (spec is None):
        raise ConfigError("give exactly one of --trial N or --pick SPEC", field="--trial/--pick")
    if spec is not None:
        chosen = pick(data, spec)
        return chosen.trial, chosen
    t = data.trial(trial)  # type: ignore[arg-type]
    if t.status not in (FRONT, DOMINATED):
        what = "failed" if t.status == FAILED else f"is {t.status}"
        raise TrialError(
            f"{what} on profile {data.profile!r}, so there is nothing verified to ship: {t.reason}. "
            f"Choose a front member ('autocl front --study {data.study_name}')",
            trial=t.number,
            stage="export",
        )
    return t, None


def _band(t: TrialInfo, tolerance: float) -> tuple[float, float, float, float, tuple[float, float]]:
    m = t.measurement or {}
    samples = np.asarray(m.get("samples_ms") or [], dtype=float)
    median = float(m["median_ms"])
    if samples.size >= 3:
        q25, q75 = (float(q) for q in np.percentile(samples, [25, 75]))
    else:  # no raw samples stored: the IQR around the median is all we know
        half = float(m.get("iqr_ms") or 0.0) / 2
        q25, q75 = median - half, median + half
    width = tolerance * median
    return median, q25, q75, width, (max(0.0, q25 - width), q75 + width)


def verify(
    path: Path,
    t: TrialInfo,
    workload: Workload,
    profile: HardwareProfile,
    *,
    sha256: str,
    latency_tolerance: float = LATENCY_TOLERANCE,
    metric_tolerance: float = METRIC_TOLERANCE,
    metric_profile: HardwareProfile | None = None,
) -> Verification:
    """Re-evaluate and re-time ``path`` in fresh onnxruntime sessions and compare with trial ``t``.

    The latency is measured at most twice: a second time only when the first median falls outside the
    band (the study's interquartile range widened on both sides by ``latency_tolerance`` x its median).

    Args:
        path: The ONNX artifact to verify.
        t: The trial whose stored metric, latency and sha256 it is compared with.
        workload: Gives the validation split and the inputs to time.
        profile: How the sessions run.
        sha256: The sha256 of ``path``.
        latency_tolerance: The band's widening on each side, as a fraction of the study's median.
        metric_tolerance: The largest accepted difference from the study's metric.
        metric_profile: The profile whose runtime computed the study's metric (default: ``profile``):
            the metric is verified through the same runtime, whatever the profile timed.

    Returns:
        The ``Verification``; its ``metric_ok`` and ``latency_ok`` say whether it passed. Nothing is
        raised on a failure.
    """
    from autocl.evaluate import evaluate_artifact

    metric = evaluate_artifact(path, workload, metric_profile or profile)
    median, q25, q75, _, band = _band(t, latency_tolerance)
    feed = workload.sample_feed(profile.batch_size)
    attempts, m = 0, None
    while attempts < 2:
        attempts += 1
        m = measure_latency(path, profile, feed)
        if band[0] <= m.median_ms <= band[1]:
            break
    assert m is not None
    return Verification(
        study_metric=t.objectives[0],
        metric=float(metric),
        metric_tolerance=metric_tolerance,
        study_median_ms=median,
        study_q25_ms=q25,
        study_q75_ms=q75,
        band_ms=band,
        median_ms=m.median_ms,
        iqr_ms=m.iqr_ms,
        p90_ms=m.p90_ms,
        latency_tolerance=latency_tolerance,
        attempts=attempts,
        sha256=sha256,
        study_sha256=t.artifact_sha256,
    )


def _metric_profile(study: optuna.Study) -> HardwareProfile:
    """The profile whose runtime computed the study's metric (onnxruntime's CPU provider when unknown)."""
    from autocl.study import metric_profile

    stored = metric_profile(study)
    if stored is None:
        return HardwareProfile(name="cpu-eval")
    return profile_from_dict(stored, source=f"study {study.study_name!r}: metric_profile")


def _refusal(v: Verification, t: TrialInfo, data: StudyData, profile: HardwareProfile) -> TrialError:
    problems = []
    if not v.metric_ok:
        problems.append(
            f"{data.metric_name} is {v.metric:.6f} in a fresh onnxruntime session but the study stored "
            f"{v.study_metric:.6f} (tolerance {v.metric_tolerance:g})"
        )
    if not v.latency_ok:
        problems.append(
            f"median latency is {v.median_ms:.4f} ms on profile {profile.name!r} (best of {v.attempts} runs) but the "
            f"study measured {v.study_median_ms:.4f} ms; allowed band [{v.band_ms[0]:.4f}, {v.band_ms[1]:.4f}] ms = "
            f"the study's IQR [{v.study_q25_ms:.4f}, {v.study_q75_ms:.4f}] widened by {v.latency_tolerance:g} x the "
            "study's median"
        )
    stored = (t.measurement or {}).get("device") or {}
    here = device_description(profile)
    changed = [
        f"{k} {stored.get(k)!r} -> {here.get(k)!r}"
        for k in ("cpu", "onnxruntime", "threads")
        if k in stored and stored.get(k) != here.get(k)
    ]
    if changed:
        problems.append("the device differs from the study's: " + ", ".join(changed))
    return TrialError(
        "refusing to export, the model does not reproduce the study: "
        + "; ".join(problems)
        + ". Nothing was written. Re-run on the machine and profile of the study (an idle one), or "
        "raise --latency-tolerance if this machine is known to be noisy",
        trial=t.number,
        stage="verifying",
    )


def _check_out_dir(out: Path, overwrite: bool) -> Path:
    """The resolved bundle folder, or a one-line refusal. ``--overwrite`` replaces only an earlier
    bundle: a folder holding anything else (a study database, the user's files) is never touched."""
    shown = str(out)
    out = out.expanduser().resolve()
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents or out.parent == out:
        raise ConfigError(
            f"{shown} is the current directory or one above it; export into a new folder, e.g. -o bundle/",
            field="--out",
        )
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{shown}: {above} is a file, not a directory; choose another --out", field="--out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{shown} is a file; choose a new directory", field="--out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{shown} exists and is not empty; choose a new directory or pass --overwrite", field="--out"
            )
        foreign = sorted(p.name for p in out.iterdir() if p.name not in BUNDLE_FILES or not p.is_file())
        if foreign:
            raise ConfigError(
                f"{shown} holds more than an earlier bundle ({', '.join(foreign[:5])}"
                f"{', ...' if len(foreign) > 5 else ''}); --overwrite only replaces a bundle. Choose a "
                "new directory",
                field="--out",
            )
    return out


def export_trial(
    study: optuna.Study,
    out_dir: str | Path,
    *,
    trial: int | None = None,
    spec: str | None = None,
    profile: str | HardwareProfile | None = None,
    workload: Workload | str | None = None,
    latency_tolerance: float = LATENCY_TOLERANCE,
    metric_tolerance: float = METRIC_TOLERANCE,
    overwrite: bool = False,
    accept_rebuilt: bool = False,
    storage: str = "",
    on_stage=lambda s: None,
) -> ExportResult:
    """Export trial ``trial`` (or the front member ``spec`` picks, see ``autocl.report.pick``) of
    ``study`` on ``profile`` to ``out_dir``, after verifying it (see the module docstring).

    The artifact is taken from (or rebuilt into) the artifact cache; when its sha256 differs from
    the one the study measured, export refuses unless ``accept_rebuilt`` (then the verification
    alone vouches for it, and the card says so). The bundle is written to a staging directory and
    moved into place only once verified; a failure leaves no directory behind.

    Args:
        study: The study.
        out_dir: The bundle directory: new, empty, or (with ``overwrite``) an earlier bundle.
        trial: The number of the trial to export; give exactly one of ``trial`` and ``spec``.
        spec: A pick spec choosing a front member (see ``autocl.report.pick``).
        profile: The profile's name, a ``HardwareProfile`` to verify on, or None for the search's
            primary profile (its settings as stored in the study).
        workload: A workload or workload spec (default: the one the study records).
        latency_tolerance: See :func:`verify`.
        metric_tolerance: See :func:`verify`.
        overwrite: Replace an earlier bundle in ``out_dir``.
        accept_rebuilt: Ship an artifact whose sha256 differs from the study's once it passes verification.
        storage: The study's database URL, recorded in the bundle's facts.
        on_stage: Called with a short description of each stage as it starts.

    Returns:
        The ``ExportResult``.

    Raises:
        ConfigError: Not exactly one of ``trial`` and ``spec``, ``spec`` cannot be read, or ``out_dir``
            cannot be used (a file, not empty, or not writable).
        StudyError: See :func:`choose_trial` and :func:`resolve_workload`; also when the study has no
            measurement on ``profile``.
        TrialError: The trial cannot be exported (see :func:`choose_trial`), the rebuilt artifact differs
            from the measured one without ``accept_rebuilt``, the student's weights are missing from the
            cache, or the verification fails.
        WorkloadError: See :func:`resolve_workload`.
        ProfileError: See :func:`resolve_profile`.
    """
    import onnx

    from autocl.compress import Compressor

    hw = profile if isinstance(profile, HardwareProfile) else None
    data = study_data(study, hw.name if hw else cast("str | None", profile))
    t, chosen = choose_trial(data, trial, spec)
    out = _check_out_dir(Path(out_dir), overwrite)
    hw = resolve_profile(data, hw)
    wl = resolve_workload(data, workload, storage or None)
    cfg = CompressionConfig.from_dict(t.config, source=f"study {data.study_name!r}, trial {t.number}: config")
    on_stage("building the artifact (from the cache when present)")
    compressor = Compressor(wl, cache_dir())
    artifact = compressor.artifact(cfg, on_stage)
    if artifact.sha256 != t.artifact_sha256:
        # a cached file that is not what the study measured (damaged, or replaced with its .sha256) is
        # never shipped: quantized again from the student, it reproduces the study's sha256
        on_stage("the cached artifact is not the one the study measured: building it again")
        for stale in (artifact.path, artifact.path.with_name(artifact.path.name + ".sha256")):
            stale.unlink(missing_ok=True)
        artifact = compressor.artifact(cfg, on_stage)
    if artifact.sha256 != t.artifact_sha256 and not accept_rebuilt:
        raise TrialError(
            f"the artifact rebuilt now (sha256 {artifact.sha256[:12]}) is not the one the study measured "
            f"({t.artifact_sha256[:12]}): the artifact cache was cleared or moved (AUTOCL_HOME), so the "
            "student was trained again. Point AUTOCL_HOME at the search's cache, or pass --accept-rebuilt "
            "to ship the rebuilt model once it passes the same verification",
            trial=t.number,
            stage="export",
        )
    staging = out.with_name(f".{out.name}.{os.getpid()}.partial")
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"cannot write beside {out}: {exc.strerror}", field="--out") from None
    try:
        model_path = staging / "model.onnx"
        shutil.copyfile(artifact.path, model_path)
        onnx.checker.check_model(str(model_path))
        on_stage("verifying in a fresh onnxruntime session")
        v = verify(
            model_path,
            t,
            wl,
            hw,
            sha256=artifact.sha256,
            latency_tolerance=latency_tolerance,
            metric_tolerance=metric_tolerance,
            metric_profile=_metric_profile(study),
        )
        if not (v.metric_ok and v.latency_ok):
            raise _refusal(v, t, data, hw)
        _write_weights(artifact.student.weights_path, staging / "weights.pt", t)
        (staging / "config.yaml").write_text(_config_yaml(cfg, data, t, wl))
        facts = _facts(data, t, v, hw, wl, chosen, storage, artifact.student.parameters)
        facts["layers"] = _layer_rows(data, t, model_path, hw, wl)
        (staging / "MODEL_CARD.md").write_text(model_card(facts))
        (staging / "export.json").write_text(json.dumps(facts, indent=2, default=str))
        _check_out_dir(out, overwrite)  # again: the folder may have changed during verification
        if out.is_dir():  # an earlier bundle (checked): swapped out, then removed once the new one is in
            out.replace(old)
        try:
            staging.replace(out)
        except OSError:
            if old.is_dir() and not out.exists():
                old.replace(out)  # put the earlier bundle back
            raise
        for name in BUNDLE_FILES:
            (old / name).unlink(missing_ok=True)
        if old.is_dir():
            old.rmdir()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, t, data.profile, chosen, v)


def _write_weights(src: Path, dst: Path, t: TrialInfo) -> None:
    import torch

    if not src.is_file():
        raise TrialError(
            f"the student's weights {src} are missing from the cache; clear the student's cache folder "
            f"({src.parent}) so it is rebuilt, then export with --accept-rebuilt",
            trial=t.number,
            stage="export",
        )
    torch.load(src, weights_only=True, map_location="cpu")  # refuse anything that needs pickle to load
    shutil.copyfile(src, dst)


def _config_yaml(cfg: CompressionConfig, data: StudyData, t: TrialInfo, wl: Workload) -> str:
    header = (
        f"# autocl configuration of study '{data.study_name}', trial {t.number} (workload '{wl.name}', key "
        f"{wl.key}).\n# Rebuild it: autocl apply --config config.yaml --workload {wl.name}\n"
    )
    return header + yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    return {
        "autocl": autocl.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
    }


def _facts(
    data: StudyData,
    t: TrialInfo,
    v: Verification,
    hw: HardwareProfile,
    wl: Workload,
    chosen: Pick | None,
    storage: str,
    parameters: int,
) -> dict:
    return {
        "study": data.study_name,
        "storage": redact(storage),  # never a password
        "trial": t.number,
        "status": t.status,
        "pick": {"rule": chosen.rule, "why": chosen.why} if chosen else None,
        "workload": {
            "name": wl.name,
            "key": wl.key,
            "metric": data.metric_name,
            "higher_is_better": data.higher_is_better,
            "description": wl.description,
        },
        "baseline": data.baseline,
        "metric": t.metric,
        "metric_drop": data.metric_drop(t),
        "latency": {
            k: (t.measurement or {}).get(k) for k in ("median_ms", "p90_ms", "iqr_ms", "mean_ms", "n", "batch_size")
        },
        "device": (t.measurement or {}).get("device"),
        "profile": hw.model_dump(mode="json"),
        "size_kb": t.size_kb,
        "parameters": parameters,
        "bits": t.bits,
        "config": t.config,
        "not_faster": t.not_faster,
        "memory": t.memory,
        "verification": {**asdict(v), "metric_ok": v.metric_ok, "latency_ok": v.latency_ok, "sha_ok": v.sha_ok},
        "versions": _versions(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **{
            k: getattr(t, k)
            for k in ("metric_change", "speedup_search", "speedup_remeasured", "distilled", "compressed")
        },  # the study record's definitions, as every view shows them
    }


def _layer_rows(data: StudyData, t: TrialInfo, model_path: Path, hw: HardwareProfile, wl: Workload) -> list[dict]:
    shares = artifact_layer_shares(model_path, wl, hw, data.layers)
    return layer_rows(data, t, pruning_map(data, cache_dir(), [t]), shares)


__all__ = [
    "BUNDLE_FILES",
    "ExportResult",
    "Verification",
    "choose_trial",
    "export_trial",
    "resolve_profile",
    "resolve_workload",
    "verify",
]
