"""The study record: what one trial stores, written in one place and read in one place.

Every view (``autocl front``, the report, the model card, ``--pick``, ``StudyView`` and the HTTP
service) reads trials through :func:`read_trials`, and every number they show has one definition
here:

* **speed-up**: the fp32 baseline's median latency over the artifact's. Two are kept, by name:
  ``speedup_search``, measured inside the trial in alternation with the fp32 baseline (stored as
  ``user_attrs['speedup'][profile]``), and ``speedup_remeasured``, from ``autocl remeasure`` /
  the end-of-search re-measurement (``study.user_attrs['remeasured']``). Views say which they show.
  ``speedup`` is the comparable one: re-measured when present, else the search's.
  ``not_faster`` is decided on the search pair, the same numbers as ``speedup_search``.
* **comparable latency**: ``normalized_ms = study baseline ms / speedup`` (:func:`normalized_ms`).
  Raw medians taken minutes apart are not comparable (the fp32 reference moved 12% between two
  trials on a shared machine); ratios measured in alternation with fp32 are. Everything that
  *chooses* ranks by it: dominance, the front's order, ``--pick``, the closing line, polishing and
  the objective of new studies (``study.user_attrs['latency_objective'] == 'normalized_ms'``;
  older studies' Optuna objective is the raw median, see :func:`latency_objective`). The raw median
  (``latency_ms``) stays for absolute ``latency_ms`` budgets and for display.
* **metric change**: ``metric_change = -metric_drop`` (:func:`autocl.evaluate.metric_drop`):
  positive is better than the fp32 teacher, for higher- and lower-is-better metrics alike.
* **front membership**: :func:`dominates` and :func:`pareto_members`, over completed feasible
  trials measured on the profile, on :func:`losses` (metric, comparable latency, size).
* **distilled**: the pipeline changed the model (structured, head or unstructured pruning) and
  ran distillation steps (:func:`is_distilled`).
* **compressed**: anything differs from the fp32 teacher: a model change or any layer not fp32
  (int8, int8_dynamic, int4, fp16) (:func:`is_compressed`).
* **pruning applied**: structured pruning was asked for and removed at least one parameter
  (:func:`pruning_applied`, on kept *parameters*: the one rule for "nothing removed"; kept MACs
  are shown beside it).

Derived flags (distilled, compressed, not faster, pruning applied) are recomputed on read from the
stored configuration and measurements; copies a trial stored are never read back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from autocl.config import CompressionConfig
from autocl.errors import AutoclError
from autocl.evaluate import metric_drop
from autocl.study._baselines import study_baseline

if TYPE_CHECKING:
    import optuna

FRONT, DOMINATED, INFEASIBLE, UNMEASURED, FAILED, PENDING = (
    "front",
    "dominated",
    "infeasible",
    "unmeasured",
    "failed",
    "pending",
)
STATUSES = (FRONT, DOMINATED, INFEASIBLE, UNMEASURED, FAILED, PENDING)


# ---- the one definition of each derived number ------------------------------------------------


def metric_change(metric: float, baseline: float, higher_is_better: bool) -> float:
    """The metric against the fp32 teacher, positive = better (the negated metric drop).

    Args:
        metric: The compressed model's metric.
        baseline: The fp32 teacher's metric.
        higher_is_better: Whether a higher metric is better.

    Returns:
        ``-metric_drop(metric, baseline, higher_is_better)`` (see :func:`autocl.evaluate.metric_drop`).
    """
    return 0.0 - metric_drop(metric, baseline, higher_is_better) + 0.0


def speedup(baseline_ms: float | None, latency_ms: float | None) -> float | None:
    """The fp32 baseline's median over the artifact's (both from the same measurement run).

    Args:
        baseline_ms: The fp32 baseline's median latency.
        latency_ms: The artifact's median latency.

    Returns:
        ``baseline_ms / latency_ms``, or None when either is missing or zero.
    """
    return baseline_ms / latency_ms if baseline_ms and latency_ms else None


NORMALIZED, RAW = "normalized_ms", "raw_ms"


def normalized_ms(baseline_ms: float | None, speed_up: float | None) -> float | None:
    """The comparable latency: the study's fp32 baseline over a speed-up measured side by side with fp32.

    Args:
        baseline_ms: The study's fp32 baseline median on the profile (measured once per study).
        speed_up: A speed-up from :func:`speedup` (re-measured when present, else the trial's).

    Returns:
        ``baseline_ms / speed_up`` in ms, or None when either is missing or zero.
    """
    return baseline_ms / speed_up if baseline_ms and speed_up else None


def latency_objective(study: optuna.Study) -> str:
    """What the study's second Optuna objective is: ``normalized_ms`` for studies made since the
    comparable latency, ``raw_ms`` (the trial's raw median) for older ones, which keep it so a
    resumed search stays consistent with its earlier trials."""
    return NORMALIZED if study.user_attrs.get("latency_objective") == NORMALIZED else RAW


def _noise(m: Mapping) -> float:
    rel = m.get("rel_ci")
    return float(rel) if isinstance(rel, (int, float)) and math.isfinite(rel) else 0.0


def not_faster(candidate: Mapping, baseline: Mapping) -> bool:
    """Whether a measured artifact is not faster than the baseline.

    It is not faster when its median is not below the baseline's by more than the larger relative 95%
    CI of the two.

    Args:
        candidate: The artifact's measurement (a ``Measurement.to_dict()`` dict).
        baseline: The baseline's, taken in alternation with it.

    Returns:
        True when the artifact is not faster.
    """
    return candidate["median_ms"] >= baseline["median_ms"] * (1 - max(_noise(candidate), _noise(baseline)))


def _config(config: Mapping) -> CompressionConfig | None:
    """The stored configuration as a record (older studies' configs load: every newer field has a
    default); None when it does not validate."""
    try:
        return CompressionConfig.from_dict(dict(config), source="study record")
    except AutoclError:
        return None


def is_distilled(config: Mapping) -> bool:
    """Whether the pipeline distilled: the student is fine-tuned (``CompressionConfig.trains``) with steps > 0.

    Args:
        config: A stored configuration (a ``CompressionConfig`` dict).

    Returns:
        False also when ``config`` does not validate.
    """
    cfg = _config(config)
    return cfg is not None and cfg.trains and cfg.distill.steps > 0


def is_compressed(config: Mapping, layer_precisions: Mapping[str, Any] | None = None) -> bool:
    """Whether anything differs from the fp32 teacher.

    That is a model change, shared weights, or a layer at another precision.

    Args:
        config: A stored configuration (a ``CompressionConfig`` dict).
        layer_precisions: precision -> layer count (``Artifact.precisions``) or layer -> precision.

    Returns:
        True when the trial's model is not the fp32 teacher.
    """
    cfg = _config(config)
    if cfg is not None and cfg.changes_weights:
        return True
    if layer_precisions:
        names = [k if isinstance(v, int) else v for k, v in layer_precisions.items()]
        return any(p != "fp32" for p in names)
    quant = config.get("quant") or {}
    return quant.get("default", "fp32") != "fp32" or any(p != "fp32" for p in (quant.get("layers") or {}).values())


def pruning_applied(config: Mapping, kept_params: float | None) -> bool | None:
    """Whether structured pruning was asked for and removed something: the one rule for "nothing removed".

    Decided on kept *parameters* (not MACs): parameters are what pruning removes, and a layer that
    loses parameters always loses MACs, while MACs alone miss layers that cost none (embeddings).

    Args:
        config: A stored configuration (a ``CompressionConfig`` dict).
        kept_params: The share of parameters pruning kept (``None``: not recorded).

    Returns:
        None when nothing was asked for or ``kept_params`` is unknown, else whether any parameter went.
    """
    cfg = _config(config)
    if cfg is None or not cfg.prune.is_structured or kept_params is None:
        return None
    return kept_params < 0.9999


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether ``a`` Pareto-dominates ``b``.

    Args:
        a: Objective values, all minimized.
        b: Objective values, all minimized.

    Returns:
        True when ``a`` is at least as good as ``b`` everywhere and better somewhere.
    """
    return all(x <= y for x, y in zip(a, b, strict=False)) and any(x < y for x, y in zip(a, b, strict=False))


def pareto_members(points: Mapping[Any, tuple[float, ...]]) -> set:
    """The keys of the Pareto-optimal points.

    Args:
        points: ``{key: objective values}``, all minimized.

    Returns:
        The keys of ``points`` that no other point dominates.
    """
    return {k for k, v in points.items() if not any(dominates(w, v) for w in points.values())}


# ---- the writer --------------------------------------------------------------------------------


def write_config(trial: optuna.Trial, config: Mapping, bits: str) -> None:
    """What a trial will build, stored before building it."""
    trial.set_user_attr("config", dict(config))
    trial.set_user_attr("distilled", is_distilled(config))
    trial.set_user_attr("bits", bits)


def write_result(
    trial: optuna.Trial,
    *,
    config: Mapping,
    artifact,
    results: Mapping,
    pruning: dict,
    constraints: list[float] | None,
    seconds: dict,
    rung: int | None = None,
) -> None:
    """What a completed trial measured (``results``: profile -> ``TargetResult``). The keys are the
    ones autocl has always stored, so older studies read the same. On a fidelity ladder, ``rung``
    and the student's ``fidelity`` (steps, metric on held-out training rows, learning curve) are
    stored as ``fidelity``."""
    attrs = {
        "student_key": artifact.student.key,
        "student_reused": artifact.student.reused,
        "parameters": artifact.student.parameters,
        "artifact_sha256": artifact.sha256,
        # size: what ships, palettized and deflated (autocl.compress.size); the file's own bytes beside it
        "size_bytes": artifact.compressed_size_bytes,
        "file_size_bytes": artifact.size_bytes,
        "int8_layers": list(artifact.int8_layers),
        "artifact_path": str(artifact.path),
        "measurements": {n: r.measurement.to_dict() for n, r in results.items()},
        "baseline_measurements": {n: r.baseline.to_dict() for n, r in results.items()},
        "speedup": {n: round(r.speedup, 4) for n, r in results.items()},
        "not_faster": {n: r.not_faster for n, r in results.items() if r.not_faster is not None},
        "memory": {n: r.measurement.memory for n, r in results.items() if r.measurement.memory},
        "pruning": pruning,
        "compressed": is_compressed(config, artifact.precisions),
    }
    if constraints is not None:
        attrs["constraints"] = constraints
    attrs["seconds"] = seconds
    attrs["compression"] = artifact.details()  # precisions, sparsity, deflated size
    if rung is not None and artifact.student.fidelity:
        attrs["fidelity"] = {**artifact.student.fidelity, "rung": rung}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def write_error(trial: optuna.Trial, error: str, traceback: str | None = None) -> None:
    """A failed trial's one-line error, and the traceback of an internal error (not a user error)."""
    trial.set_user_attr("error", error)
    if traceback:
        trial.set_user_attr("traceback", traceback)


def trial_summary(trial: optuna.trial.FrozenTrial) -> tuple[float, float, float | None, float]:
    """A just-finished trial's line for progress output: (metric, raw median ms, speed-up, size KB)
    on its first (primary) profile. Optuna's latency value may be the comparable one
    (:func:`latency_objective`); the raw median is what a person reads as milliseconds."""
    a = trial.user_attrs
    metric, latency, size = trial.values
    name, m = next(iter((a.get("measurements") or {}).items()), ("", None))
    x = (a.get("speedup") or {}).get(name) if isinstance(a.get("speedup"), dict) else None
    return metric, (m or {}).get("median_ms", latency), x, size


# ---- the reader --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRecord:
    """One trial as every view sees it, on one profile (latency and speed-ups on that profile).

    ``status`` is one of ``STATUSES``: front, dominated, infeasible, unmeasured, failed, pending,
    with ``reason`` for everything off the front. ``metric_change`` is positive when better than the
    fp32 teacher; ``speedup_search`` / ``speedup_remeasured`` are the two named speed-ups (see the
    module docstring); ``not_faster`` goes with ``speedup_search``."""

    number: int
    status: str
    reason: str
    metric: float | None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_p90_ms: float | None
    size_kb: float | None
    prune_ratio: float | None
    temperature: float | None
    alpha: float | None
    bits: str
    config: dict = field(default_factory=dict, repr=False)
    params: dict = field(default_factory=dict, repr=False)
    constraints: dict[str, float] = field(default_factory=dict)
    not_faster: bool | None = None
    memory: dict | None = None
    artifact_sha256: str = ""
    student_key: str = ""
    measurement: dict | None = field(default=None, repr=False)
    completed_at: dt.datetime | None = None
    state: str = ""
    metric_change: float | None = None
    metric_drop: float | None = None
    speedup_search: float | None = None
    speedup_remeasured: float | None = None
    normalized_ms: float | None = None
    remeasured_ms: float | None = None
    latency_changed: bool | None = None
    distilled: bool = False
    compressed: bool = False
    polish_of: int | None = None
    recipe: bool = False
    kept_params: float | None = None
    kept_macs: float | None = None
    pruning_applied: bool | None = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    distill_steps: int | None = None
    rung: int | None = None
    curve: tuple[tuple[int, float], ...] = ()
    promoted: bool = False

    @property
    def stopped(self) -> bool:
        """A fidelity ladder's student that was not promoted and stays below the ladder's last rung."""
        ladder = (self.config.get("distill") or {}).get("ladder_steps") or 0
        return self.rung is not None and not self.promoted and (self.distill_steps or 0) < int(ladder)

    @property
    def measured(self) -> bool:
        """Whether the trial has both a latency and a metric on this profile."""
        return self.latency_ms is not None and self.metric is not None

    @property
    def peak_memory_mb(self) -> float | None:
        """The measured peak memory in MB, or None when memory was not measured."""
        peak = (self.memory or {}).get("peak_mb")
        return float(peak) if isinstance(peak, (int, float)) else None

    @property
    def speedup(self) -> float | None:
        """The comparable speed-up: ``speedup_remeasured`` when the front was re-measured, else
        ``speedup_search`` (both measured in alternation with fp32)."""
        return self.speedup_remeasured if self.speedup_remeasured is not None else self.speedup_search

    @property
    def objectives(self) -> tuple[float, float, float]:
        """(metric, comparable latency ms, size KB) of a measured trial: front and dominated members
        have all three. The latency is ``normalized_ms``; the raw median only where the study stores
        no baseline or the trial no speed-up."""
        if self.metric is None or self.latency_ms is None or self.size_kb is None:
            raise ValueError(f"trial {self.number} has no measured objectives")
        latency = self.normalized_ms if self.normalized_ms is not None else self.latency_ms
        return self.metric, latency, self.size_kb

    @property
    def notes(self) -> tuple[str, ...]:
        """Short flags a view prints beside the numbers."""
        out = []
        if self.polish_of is not None:
            out.append(f"polished #{self.polish_of}")
        if self.rung is not None:
            out.append(f"rung {self.rung}" + (", stopped" if self.stopped else ", promoted" if self.promoted else ""))
        if self.recipe:
            out.append("by-hand recipe")
        if self.not_faster:
            out.append("not faster than fp32")
        if self.latency_changed and self.speedup_remeasured is not None:
            out.append(f"re-measured {self.speedup_remeasured:.2f}x ({self.remeasured_ms or 0:.3f} ms)")
        cfg = _config(self.config)
        for t, conf in cfg.techniques_on() if cfg is not None else ():  # "k shared", "2:4 sparse", ...
            out.extend(t.notes(conf))
        return tuple(out)

    def to_row(self) -> dict:
        """The member as a flat dict.

        Returns:
            What ``autocl front --format json|csv``, ``StudyView.front()``, the report's data and the HTTP
            API give, key for key (``ROW_KEYS``).
        """
        return {
            "trial": self.number,
            "prune_ratio": self.prune_ratio,
            "kept_macs": self.kept_macs,
            "kept_params": self.kept_params,
            "pruning_applied": self.pruning_applied,
            "distilled": self.distilled,
            "compressed": self.compressed,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "distill_steps": self.distill_steps,
            "bits": self.bits,
            "metric": self.metric,
            "metric_change": self.metric_change,
            "metric_drop": self.metric_drop,
            "latency_ms": self.latency_ms,
            "latency_iqr_ms": self.latency_iqr_ms,
            "latency_p90_ms": self.latency_p90_ms,
            "speedup_search": self.speedup_search,
            "speedup_remeasured": self.speedup_remeasured,
            "speedup": self.speedup,
            "normalized_ms": self.normalized_ms,
            "remeasured_ms": self.remeasured_ms,
            "latency_changed": self.latency_changed,
            "not_faster": self.not_faster,
            "size_kb": self.size_kb,
            "peak_memory_mb": self.peak_memory_mb,
            "polish_of": self.polish_of,
            "recipe": self.recipe,
            "notes": "; ".join(self.notes),
            "artifact_sha256": self.artifact_sha256,
        }

    def to_dict(self) -> dict:
        """The record as a dict.

        Returns:
            Every field (``dataclasses.asdict``).
        """
        return asdict(self)


ROW_KEYS = tuple(TrialRecord(0, "", "", None, None, None, None, None, None, None, None, "").to_row())


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _constraint_reason(values: dict[str, float], names: tuple[str, ...]) -> str:
    parts = []
    for key, v in values.items():
        if v > 0:
            # Optuna names list-style constraints "0", "1", ...; the study may name them
            name = (
                names[int(key)]
                if key.isdigit() and int(key) < len(names)
                else (f"constraint {key}" if key.isdigit() else key)
            )
            parts.append(f"{name} exceeded by {v:.4g}")
    return "budget not met: " + "; ".join(parts) + " (constraint values > 0 are violations)"


def _status(
    t: optuna.trial.FrozenTrial,
    m: dict | None,
    metric: float | None,
    constraints: dict,
    profile: str,
    names: tuple[str, ...],
) -> tuple[str, str]:
    from optuna.trial import TrialState

    a = t.user_attrs
    if t.state == TrialState.COMPLETE:
        if any(c > 0 for c in constraints.values()):
            return INFEASIBLE, _constraint_reason(constraints, names)
        if m is None:
            where = ", ".join(a.get("measurements") or {}) or "no profile"
            return UNMEASURED, f"not measured on profile {profile!r} (measured on {where})"
        if metric is None:
            return FAILED, "completed without a finite metric"
        return FRONT, ""  # provisional: dominance is decided over all trials (read_trials)
    if t.state == TrialState.FAIL:
        return FAILED, a.get("error") or (
            f"trial {t.number} failed without a recorded error (a worker killed "
            "mid-trial and failed by the heartbeat check, or an interrupted run)"
        )
    return PENDING, {
        TrialState.RUNNING: "still running",
        TrialState.WAITING: "queued",
        TrialState.PRUNED: "pruned by Optuna",
    }.get(t.state, t.state.name.lower())


def read_trial(
    t: optuna.trial.FrozenTrial,
    profile: str,
    *,
    baseline_metric: float | None = None,
    higher_is_better: bool = True,
    constraint_names: tuple[str, ...] = (),
    remeasured: Mapping | None = None,
    baseline_ms: float | None = None,
) -> TrialRecord:
    """Trial ``t`` on ``profile``.

    Its status is provisional: dominance needs every trial (see :func:`read_trials`).

    Args:
        t: The trial.
        profile: The hardware profile's name.
        baseline_metric: The fp32 teacher's metric, for the metric drop.
        higher_is_better: Whether a higher metric is better.
        constraint_names: The study's constraint names, for the reasons of infeasibility.
        remeasured: The profile's re-measurement of members, trial number (str) -> comparison.
        baseline_ms: The study's fp32 baseline median on ``profile``, for the comparable latency.

    Returns:
        The ``TrialRecord``.
    """
    a = t.user_attrs
    cfg = a.get("config") or {}
    prune, distill = cfg.get("prune") or {}, cfg.get("distill") or {}
    m = (a.get("measurements") or {}).get(profile)
    constraints = {str(k): float(v) for k, v in t.constraints.items()}
    metric = _num(t.values[0]) if t.values else None
    size = (
        a["size_bytes"] / 1024 if "size_bytes" in a else (_num(t.values[2]) if t.values and len(t.values) > 2 else None)
    )
    status, reason = _status(t, m, metric, constraints, profile, constraint_names)
    base_m = (a.get("baseline_measurements") or {}).get(profile)
    stored = (a.get("speedup") or {}).get(profile) if isinstance(a.get("speedup"), dict) else None
    search = (
        _num(stored) if stored is not None else (speedup(base_m["median_ms"], m["median_ms"]) if m and base_m else None)
    )
    # derived flags: recomputed from the configuration and the measurements, never read back
    compressed = bool(cfg) and is_compressed(cfg, (a.get("compression") or {}).get("precisions"))
    flag = not_faster(m, base_m) if m and base_m and compressed else None  # the same pair as speedup_search
    again = (remeasured or {}).get(str(t.number)) or {}
    again_speedup = _num(again.get("speedup"))
    mem = a.get("memory")
    pruning = a.get("pruning") or {}
    fidelity: dict = a["fidelity"] if isinstance(a.get("fidelity"), dict) else {}
    distilled = bool(cfg) and is_distilled(cfg)  # recomputed from the config, never read back
    drop = (
        metric_drop(metric, baseline_metric, higher_is_better)
        if metric is not None and baseline_metric is not None
        else None
    )
    return TrialRecord(
        number=t.number,
        status=status,
        reason=reason,
        metric=metric,
        latency_ms=_num(m["median_ms"]) if m else None,
        latency_iqr_ms=_num(m.get("iqr_ms")) if m else None,
        latency_p90_ms=_num(m.get("p90_ms")) if m else None,
        size_kb=size,
        prune_ratio=_num(prune.get("ratio")),
        temperature=_num(distill.get("temperature")),
        alpha=_num(distill.get("alpha")),
        bits=a.get("bits", ""),
        config=cfg,
        params=dict(t.params),
        constraints=constraints,
        not_faster=flag,
        memory=mem.get(profile) if isinstance(mem, dict) else None,
        artifact_sha256=a.get("artifact_sha256", ""),
        student_key=a.get("student_key", ""),
        measurement=m,
        completed_at=t.datetime_complete,
        state=t.state.name.lower(),
        metric_change=None if drop is None else 0.0 - drop + 0.0,
        metric_drop=drop,
        speedup_search=search,
        speedup_remeasured=again_speedup,
        normalized_ms=normalized_ms(baseline_ms, again_speedup if again_speedup is not None else search),
        remeasured_ms=_num(again.get("median_ms")),
        latency_changed=again.get("changed"),
        distilled=distilled,
        compressed=compressed,
        polish_of=a.get("polish_of"),
        recipe=bool(a.get("recipe")),
        kept_params=_num(pruning.get("kept_params")),
        kept_macs=_num(pruning.get("kept_macs")),
        pruning_applied=pruning_applied(cfg, _num(pruning.get("kept_params"))) if cfg else None,
        error=a.get("error"),
        traceback=a.get("traceback"),
        distill_steps=int(distill["steps"]) if distilled and isinstance(distill.get("steps"), int) else None,
        rung=fidelity.get("rung"),
        curve=tuple((int(x), float(y)) for x, y in fidelity.get("curve") or () if y is not None),
    )


def losses(r: TrialRecord, higher_is_better: bool) -> tuple[float, float, float]:
    """What dominance compares: (metric negated when higher is better, comparable latency, size), all minimized.

    Args:
        r: A measured trial.
        higher_is_better: Whether a higher metric is better.

    Returns:
        The three values (see :attr:`TrialRecord.objectives`).
    """
    metric, latency, size = r.objectives
    return (-metric if higher_is_better else metric, latency, size)


def classify(records: list[TrialRecord], higher_is_better: bool) -> list[TrialRecord]:
    """Decide front vs dominated among the provisional ``front`` records (one dominance computation)."""
    cands = {r.number: losses(r, higher_is_better) for r in records if r.status == FRONT}
    members = pareto_members(cands)
    out = []
    for r in records:
        if r.status == FRONT and r.number not in members:
            better = [n for n, v in cands.items() if dominates(v, cands[r.number])]
            best = min(better, key=lambda n: (cands[n][1], n))
            r = replace(
                r,
                status=DOMINATED,
                reason=(f"dominated by trial {best}: at least as good on metric, speed-up and size, and better on one"),
            )
        out.append(r)
    return out


def remeasured_members(study: optuna.Study, profile: str) -> dict:
    """The stored re-measurement of ``profile``'s front: trial number (str) -> comparison."""
    stored = (study.user_attrs.get("remeasured") or {}).get(profile) or {}
    return dict(stored.get("members") or {})


def read_trials(study: optuna.Study, profile: str, *, baseline_metric: float | None = None) -> list[TrialRecord]:
    """Every trial of ``study`` on ``profile``, classified (see ``STATUSES``).

    Args:
        study: The study.
        profile: The hardware profile's name.
        baseline_metric: The fp32 teacher's metric, for the metric drop (default: the stored baseline's).

    Returns:
        One ``TrialRecord`` per trial, with its final status (dominance computed over all of them).
    """
    base = study_baseline(study, profile) or {}
    if baseline_metric is None:
        baseline_metric = _num(base.get("metric"))
    wl = study.user_attrs.get("workload") or {}
    higher = bool(wl.get("higher_is_better", True))
    names = tuple(study.user_attrs.get("constraint_names") or ())
    again = remeasured_members(study, profile)
    records = [
        read_trial(
            t,
            profile,
            baseline_metric=baseline_metric,
            higher_is_better=higher,
            constraint_names=names,
            remeasured=again,
            baseline_ms=_num(base.get("latency_ms")),
        )
        for t in study.get_trials(deepcopy=False)
    ]
    promoted = {t.user_attrs["rung_of"] for t in study.get_trials(deepcopy=False) if "rung_of" in t.user_attrs}
    records = [replace(r, promoted=True) if r.number in promoted else r for r in records]
    return classify(records, higher)


__all__ = [
    "DOMINATED",
    "FAILED",
    "FRONT",
    "INFEASIBLE",
    "PENDING",
    "ROW_KEYS",
    "STATUSES",
    "UNMEASURED",
    "TrialRecord",
    "classify",
    "dominates",
    "is_compressed",
    "is_distilled",
    "latency_objective",
    "losses",
    "metric_change",
    "normalized_ms",
    "not_faster",
    "pareto_members",
    "pruning_applied",
    "read_trial",
    "read_trials",
    "remeasured_members",
    "speedup",
    "trial_summary",
    "write_config",
    "write_error",
    "write_result",
]
