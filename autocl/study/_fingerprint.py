"""What a study was made with, and what changed since: content fingerprints, compared in words.

A study's numbers are comparable only under one workload, one search space and one content of each
hardware profile. A profile that keeps its name while its batch size, threads, shapes, budgets or
precisions change would mix incomparable latencies (or call over-budget trials feasible) in one
front, so the fingerprint holds the content itself, not only names or hashes, and a mismatch is
refused with the fields that changed. Study names are checked here too: they become file names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import autocl
from autocl.errors import StudyError
from autocl.hardware import HardwareProfile
from autocl.space import SearchSpace

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
# the profile fields that change what a latency or a feasibility means, with their names in words
PROFILE_FIELDS = {
    "measure": "where latency is measured",
    "execution_provider": "execution provider",
    "provider_options": "provider options",
    "threads": "threads",
    "batch_size": "batch size",
    "input_shapes": "input shapes",
    "budgets": "budgets",
    "precisions": "precisions",
}


def check_study_name(name: str) -> str:
    """Check a study name.

    A study name is a file name under ``AUTOCL_HOME``: letters, digits, '-', '_' and '.', no
    leading dot, so it can never point outside it.

    Args:
        name: The study's name.

    Returns:
        ``name``, unchanged.

    Raises:
        StudyError: The name is not allowed (or longer than 200 characters).
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > 200:
        raise StudyError(
            f"study name {name!r} is not allowed: use letters, digits, '-', '_' and '.', "
            "not starting with '.' (it names the study's database file), e.g. --study my-study.1"
        )
    return name


def profile_content(p: HardwareProfile) -> dict[str, Any]:
    data = p.model_dump(mode="json")
    return {k: data.get(k) for k in PROFILE_FIELDS}


def study_fingerprint(
    workload_name: str,
    workload_key: str | None,
    space: SearchSpace,
    profiles: Sequence[HardwareProfile],
    *,
    teacher: dict | None = None,
) -> dict[str, Any]:
    """The fingerprint a study is created with and resumed under.

    Args:
        workload_name: The workload's name.
        workload_key: The workload's key; None before the workload is loaded (then it is not compared).
        space: The search space (its fingerprint and contents).
        profiles: The hardware profiles (their names and contents).
        teacher: Path and sha256 of the cached teacher file; not compared: the study keeps a copy of
            that file (see ``_teacher``).

    Returns:
        The fingerprint dict, stored as the study's ``fingerprint`` user attribute.
    """
    fp = {
        "workload": workload_name,
        "workload_key": workload_key,
        "space": space.fingerprint,
        "space_content": space.model_dump(mode="json"),
        "profile": [p.name for p in profiles],
        "profile_content": {p.name: profile_content(p) for p in profiles},
        "autocl": autocl.__version__,
    }
    if teacher:
        fp["teacher"] = teacher
    return fp


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    return "unset" if value is None else repr(value)


def _diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted field, "old -> new") for every leaf that differs."""
    a, b = _flat(old, prefix), _flat(new, prefix)
    return [(k, f"{_show(a.get(k))} -> {_show(b.get(k))}") for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def fingerprint_changes(stored: dict, new: dict) -> list[str]:
    """What differs between a study's stored fingerprint and the one of this run, in words.

    Parts a study made by an older autocl did not store are not compared.

    Args:
        stored: The study's fingerprint.
        new: This run's (see :func:`study_fingerprint`).

    Returns:
        One sentence per change; empty when nothing changed.
    """
    changes: list[str] = []
    if stored.get("workload") != new.get("workload"):
        changes.append(f"workload {stored.get('workload')!r} -> {new.get('workload')!r}")
    elif stored.get("workload_key") and new.get("workload_key") and stored["workload_key"] != new["workload_key"]:
        changes.append(
            f"the teacher's weights or data (workload key {stored['workload_key']} -> {new['workload_key']})"
        )
    old_names = stored.get("profile")
    old_names = [old_names] if isinstance(old_names, str) else old_names
    if old_names != new.get("profile"):
        changes.append(f"profiles {old_names} -> {new.get('profile')}")
    old_profiles, new_profiles = stored.get("profile_content") or {}, new.get("profile_content") or {}
    for name in new.get("profile") or []:
        if name in old_profiles and name in new_profiles:
            for field, words in PROFILE_FIELDS.items():
                for key, change in _diff(old_profiles[name].get(field), new_profiles[name].get(field), field):
                    label = words if key == field else f"{words} {key[len(field) + 1 :]}"
                    changes.append(f"profile {name!r} {label} {change}")
    if stored.get("space") and stored.get("space") != new.get("space"):
        if stored.get("space_content") and new.get("space_content"):
            diff = _diff(stored["space_content"], new["space_content"])
            changes += [f"search space {key} {change}" for key, change in diff] or ["the search space's content"]
        else:
            changes.append("the search space's content")
    return changes


def check_fingerprint(name: str, url: str, stored: dict | None, new: dict) -> None:
    """Refuse to resume study ``name`` when what it was made with changed, naming the changes."""
    if not stored:
        return
    changes = fingerprint_changes(stored, new)
    if changes:
        raise StudyError(
            f"study {name!r} in {url} was made with other settings; changed: {'; '.join(changes)}. Resume it with "
            "its own settings, start a new study with another --study name, or pass --fork NEW_NAME to start a new "
            "study seeded with this one's configurations that are still valid"
        )
