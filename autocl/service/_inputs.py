"""What a request may name, checked before anything runs: study names, registered workloads, the
shipped search spaces and profiles, and inline YAML (bounded, parsed safely, validated by the same
loaders as the files ``autocl search`` reads).

Every refusal is an :class:`InputError` carrying the HTTP status and one line for a person.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocl._yaml import parse_yaml
from autocl.errors import AutoclError, ConfigError, StudyError
from autocl.study._fingerprint import NAME_PATTERN

STUDY_NAME = NAME_PATTERN.pattern
"""``autocl.study``'s rule: letters, digits, '-', '_' and '.', no leading dot, so the name is also a
safe file name (``<AUTOCL_HOME>/<study>.db``) and can never climb out of the folder."""
SHIPPED_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$"
MAX_YAML_CHARS = 16_384
SPACE_DIR = Path("search_spaces")
PROFILE_DIR = Path("hardware_profiles")


class InputError(Exception):
    """A request the service refuses: ``status`` is the HTTP status, ``str()`` the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_study_name(name: str) -> str:
    """``autocl.study.check_study_name``, refusing with a 422."""
    from autocl.study import check_study_name as check

    try:
        return check(name)
    except StudyError as exc:
        raise InputError(422, str(exc)) from None


def workload_names() -> list[str]:
    """Built-ins and entry points: the only workloads a request may launch (never an import path)."""
    from autocl.workloads import BUILTIN, registered_workloads

    return sorted(set(BUILTIN) | set(registered_workloads()))


def check_workload(name: str) -> str:
    known = workload_names()
    if name not in known:
        raise InputError(
            422,
            f"unknown workload {name[:120]!r}: the service runs registered workloads only "
            f"({', '.join(known)}); register yours under the entry-point group 'autocl.workloads'",
        )
    return name


def _shipped(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if re.fullmatch(SHIPPED_NAME, p.stem)}


def shipped_spaces() -> dict[str, Path]:
    """Search spaces shipped in ``search_spaces/`` (relative to where the server runs), by name."""
    return _shipped(SPACE_DIR)


def shipped_profiles() -> dict[str, Path]:
    """Hardware profiles shipped in ``hardware_profiles/``, by name."""
    return _shipped(PROFILE_DIR)


def _pick_shipped(kind: str, name: str, shipped: dict[str, Path]) -> Path:
    if name not in shipped:
        raise InputError(
            422,
            f"unknown {kind} {name[:120]!r}: use one of {', '.join(shipped) or 'none'} "
            f"(names, not paths), or send the YAML inline in {kind}_yaml",
        )
    return shipped[name]


def safe_yaml(text: str, what: str) -> object:
    """:func:`autocl._yaml.parse_yaml` of inline text, stricter than for a file: at most
    ``MAX_YAML_CHARS`` and no anchors or aliases (which can expand a small text into a huge
    document). Also refused: nesting too deep, lone surrogates, ``.nan`` and ``.inf``."""
    if len(text) > MAX_YAML_CHARS:
        raise InputError(413, f"{what}: inline YAML is {len(text)} characters; the limit is {MAX_YAML_CHARS}")
    try:
        return parse_yaml(text, what, max_chars=MAX_YAML_CHARS, aliases=False)
    except ConfigError as exc:
        raise InputError(422, str(exc)) from None


@dataclass(frozen=True)
class ResolvedFile:
    """A validated space or profile: its YAML text (what the worker will read) and where it came from."""

    text: str
    source: str  # the shipped name, or "inline"
    name: str  # the space's or profile's own ``name``


def _validated(text: str, what: str, loader) -> Any:
    """Validate ``text`` with ``loader(path)``, the very function that reads the files; the
    temporary file's path in an error is replaced by ``what``."""
    safe_yaml(text, what)
    with tempfile.TemporaryDirectory(prefix="autocl-inline-") as tmp:
        path = Path(tmp) / "inline.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return loader(path)
        except AutoclError as exc:
            raise InputError(422, str(exc).replace(str(path), what)) from None


def resolve_space(name: str | None, inline: str | None) -> ResolvedFile:
    from autocl.space import load_space

    if name is not None and inline is not None:
        raise InputError(422, "give space or space_yaml, not both")
    if inline is not None:
        space = _validated(inline, "space_yaml", load_space)
        return ResolvedFile(inline, "inline", space.name)
    path = _pick_shipped("space", name or "default", shipped_spaces())
    text = path.read_text(encoding="utf-8")
    return ResolvedFile(text, path.stem, _validated(text, str(path), load_space).name)


def resolve_profile(name: str | None, inline: str | None) -> ResolvedFile:
    from autocl.hardware import load_profile

    if name is not None and inline is not None:
        raise InputError(422, "give profile or profile_yaml, not both")
    if inline is not None:
        data = safe_yaml(inline, "profile_yaml")
        if isinstance(data, dict) and (data.get("measure") == "remote" or "remote" in data):
            # a remote profile names a token file or variable the server would read and send away
            raise InputError(422, "profile_yaml: remote profiles are accepted by shipped name only, not inline")
        profile = _validated(inline, "profile_yaml", load_profile)
        return ResolvedFile(inline, "inline", profile.name)
    path = _pick_shipped("profile", name or "cpu-local", shipped_profiles())
    text = path.read_text(encoding="utf-8")
    return ResolvedFile(text, path.stem, _validated(text, str(path), load_profile).name)


__all__ = [
    "MAX_YAML_CHARS",
    "STUDY_NAME",
    "InputError",
    "ResolvedFile",
    "check_study_name",
    "check_workload",
    "resolve_profile",
    "resolve_space",
    "safe_yaml",
    "shipped_profiles",
    "shipped_spaces",
    "workload_names",
]
