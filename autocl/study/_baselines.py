"""Where a study was measured and the fp32 baseline on each profile, read from what it stored.

A study stores its fp32 teacher once per profile (``user_attrs['baselines'][profile]``); studies
made before multi-profile search stored one ``baseline`` for the primary profile. Every reader (the
study record, the report, the CLI) takes the baseline from :func:`study_baseline`.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState


def _profile_dicts(study: optuna.Study) -> list[dict]:
    """The stored profile settings, primary first (``profile`` a dict or a list; ``profiles`` a dict
    by name or a list)."""
    out: list[dict] = []
    for key in ("profile", "profiles"):
        stored = study.user_attrs.get(key)
        items = (
            stored.values()
            if isinstance(stored, dict) and "name" not in stored
            else [stored]
            if isinstance(stored, dict)
            else stored
            if isinstance(stored, list)
            else []
        )
        out += [p for p in items if isinstance(p, dict) and p.get("name")]
    return out


def profile_settings(study: optuna.Study, profile: str) -> dict | None:
    """The fullest stored settings of ``profile``, or None when the study stores none."""
    return max((p for p in _profile_dicts(study) if p["name"] == profile), key=len, default=None)


def metric_profile(study: optuna.Study) -> dict | None:
    """The settings of the profile whose session computed the study's metric (``run_search`` uses the
    first local profile: another runtime, e.g. OpenVINO, may give slightly different outputs).

    Args:
        study: The study.

    Returns:
        The stored ``metric_profile``; for a study made before it was stored, its first local profile;
        None when neither is known (then onnxruntime's CPU provider computed it).
    """
    stored = study.user_attrs.get("metric_profile")
    if isinstance(stored, dict) and stored.get("name"):
        return stored
    names: dict[str, dict] = {}
    for p in _profile_dicts(study):
        names.setdefault(p["name"], p)
    return next((p for p in names.values() if p.get("measure", "local") == "local"), None)


def primary_profile(study: optuna.Study) -> str:
    """The profile the search optimized latency on (the first one given to ``autocl search``).

    Args:
        study: The study.

    Returns:
        The profile's name, or ``""`` when the study stores none.
    """
    found = _profile_dicts(study)
    return found[0]["name"] if found else ""


def measured_profiles(study: optuna.Study) -> list[str]:
    """Every profile some completed trial was measured on, the primary (the search's objective) first.

    Args:
        study: The study.

    Returns:
        The profiles' names.
    """
    seen: dict[str, None] = {}
    primary = primary_profile(study)
    if primary:
        seen[primary] = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        for name in t.user_attrs.get("measurements", {}):
            seen[name] = None
    return list(seen)


def study_baseline(study: optuna.Study, profile: str) -> dict | None:
    """The fp32 teacher's numbers on ``profile``: its latency only where it was measured on ``profile``.

    Args:
        study: The study.
        profile: The hardware profile's name.

    Returns:
        ``{metric, latency_ms, latency_iqr_ms, size_kb, ...}`` (no ``latency_*`` when the teacher was
        not measured on ``profile``), or None when the study stores no baseline.
    """
    per_profile = study.user_attrs.get("baselines")
    if isinstance(per_profile, dict) and isinstance(per_profile.get(profile), dict):
        return per_profile[profile]
    base = study.user_attrs.get("baseline")
    if not base:
        return None
    if "metric" not in base and isinstance(base.get(profile), dict):  # stored per profile
        return dict(base[profile])
    if profile == primary_profile(study):
        return dict(base)
    return {k: v for k, v in base.items() if not k.startswith("latency")}


__all__ = ["measured_profiles", "metric_profile", "primary_profile", "profile_settings", "study_baseline"]
