"""Every error autocl raises on purpose derives from :class:`AutoclError`.

Each message is written for a person: what went wrong, where (file, field, layer or trial) and
how to fix it. The CLI prints ``str(error)`` as one line and exits with status 2.
"""

from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)(?P<password>[^\s@/'\"]+)@")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it (``postgresql://user:secret@host/db``)
    replaced by ``***``: the one function everything shown to a person goes through when it may
    hold a storage or an agent URL (errors, the search summary, the worker line, the export hint)."""
    return _PASSWORD_IN_URL.sub(r"\g<head>***@", text)


class AutoclError(Exception):
    """Root of autocl's own errors; a password in a URL in the message is never kept (``redact``)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(AutoclError):
    """A configuration file (search space, profile, exported config) is invalid."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        where = ""
        if file:
            where = f"{file}"
            if field:
                where += f": field '{field}'"
            where += ": "
        elif field:
            where = f"field '{field}': "
        super().__init__(where + message)


class ProfileError(ConfigError):
    """A hardware profile is invalid or cannot run on this machine."""


class WorkloadError(AutoclError):
    """A workload cannot be found, loaded, is incomplete, or its model will not export."""


class TrialError(AutoclError):
    """One trial failed (export, quantization, NaN metric, ...). The study itself survives."""

    def __init__(self, message: str, *, trial: int | None = None, stage: str | None = None) -> None:
        self.trial = trial
        self.stage = stage
        prefix = ""
        if trial is not None:
            prefix += f"trial {trial}"
        if stage:
            prefix += f" ({stage})" if prefix else stage
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StudyError(AutoclError):
    """A study cannot be created, resumed or read (missing, mismatched, empty)."""


__all__ = ["AutoclError", "ConfigError", "ProfileError", "StudyError", "TrialError", "WorkloadError", "redact"]
