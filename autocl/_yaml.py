"""The one reader of YAML text autocl is given (a file for the CLI, a request body for the service).

Before anything sees the document it is bounded and checked: its size, how deeply it nests (the
composer recurses, so ``[[[[...]]]]`` would end in a RecursionError), anchors and aliases (refused
where the text comes from a stranger: a small text expands into a huge document), text that cannot
be encoded (a lone surrogate such as ``"\\ud800"`` survives parsing and breaks whatever writes it
later) and non-finite numbers (``.nan`` compares false with every bound, so it passes range checks).
Each refusal is one ``ConfigError`` line naming the source and, where it can, the line and field.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from autocl.errors import ConfigError

MAX_DEPTH = 32
"""Nesting of mappings and lists; autocl's deepest documents nest 4 levels."""
MAX_FILE_CHARS = 1_000_000


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _check_events(text: str, source: str, *, max_depth: int, aliases: bool, error: type[ConfigError]) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if not aliases and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)):
            raise error(
                f"YAML anchors and aliases are not accepted here{_where(event.start_mark)}; write the values out",
                file=source,
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                raise error(
                    f"YAML nested more than {max_depth} levels deep{_where(event.start_mark)}; "
                    "a space or a profile nests a few levels",
                    file=source,
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_values(data: Any, source: str, path: str, error: type[ConfigError]) -> None:
    if isinstance(data, float) and not math.isfinite(data):
        raise error(f"{data} is not a number autocl accepts: give a finite value", file=source, field=path or None)
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise error(
                "text that cannot be encoded as UTF-8 (a lone surrogate such as \\ud800)",
                file=source,
                field=path or None,
            ) from None
    elif isinstance(data, dict):
        for key, value in data.items():
            _check_values(key, source, path, error)
            _check_values(value, source, f"{path}.{key}" if path else str(key), error)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_values(value, source, f"{path}.{i}" if path else str(i), error)


def parse_yaml(
    text: str,
    source: str,
    *,
    max_chars: int = MAX_FILE_CHARS,
    max_depth: int = MAX_DEPTH,
    aliases: bool = True,
    error: type[ConfigError] = ConfigError,
) -> Any:
    """``yaml.safe_load`` of ``text`` after the checks above; ``source`` names it in every error.

    Raises:
        ConfigError (``error``): the text is too long, too deep, has anchors (when ``aliases`` is
            false), is malformed, or holds a non-finite number or text that cannot be encoded.
    """
    if len(text) > max_chars:
        raise error(f"{len(text)} characters of YAML; the limit is {max_chars}", file=source)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"text that cannot be encoded as UTF-8 at character {exc.start} (a lone surrogate such as \\ud800)",
            file=source,
        ) from None
    try:
        _check_events(text, source, max_depth=max_depth, aliases=aliases, error=error)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"malformed YAML{_where(getattr(exc, 'problem_mark', None))}: {problem}", file=source) from None
    except RecursionError:  # pragma: no cover - the depth check runs first
        raise error(f"YAML nested too deeply (more than {max_depth} levels)", file=source) from None
    _check_values(data, source, "", error)
    return data


__all__ = ["MAX_DEPTH", "MAX_FILE_CHARS", "parse_yaml"]
