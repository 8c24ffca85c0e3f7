"""Shared CLI pieces: one console, error handling, and the front table."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from autocl.errors import AutoclError, redact
from autocl.study import Interrupted, TrialRecord, sigterm_as_interrupt

# piped output (CI logs, `| tee`) gets a width that fits the front table instead of 80 columns
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)

F = TypeVar("F", bound=Callable)


def _database_error(exc: BaseException) -> str | None:
    """One line for a database that cannot be written or read (read-only, full, locked, gone)."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    if not isinstance(exc, (sqlalchemy.exc.SQLAlchemyError, StorageInternalError)):
        return None
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, sqlalchemy.exc.DBAPIError):
        cause = cause.__cause__ or cause.__context__
    detail = str(getattr(cause, "orig", None) or exc).strip().splitlines()[0]
    return (
        f"the study database cannot be used: {detail}. Check that its file (or server) is writable, "
        "the disk is not full and the --storage URL is right; finished trials are saved"
    )


def _disk_full(exc: BaseException) -> str | None:
    """One line for a disk that filled up outside a trial (the baseline, the sensitivity pre-pass, an export)."""
    from autocl.runtime import home_dir
    from autocl.study import ADVICE, disk_full

    fact = disk_full(exc, home_dir())
    return None if fact is None else f"{fact}: {ADVICE}; finished trials are saved"


def handles_errors(fn: F) -> F:
    """Turn an AutoclError, or a database that cannot be written, into one clear line on stderr and
    exit status 2; Ctrl-C and SIGTERM into one line and 130 / 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except AutoclError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            why = "SIGTERM" if isinstance(exc, Interrupted) and str(exc) == "SIGTERM" else "Ctrl-C"
            err_console.print(
                f"interrupted ({why}): the running trial is marked failed and retried once when you resume, "
                "finished trials are saved; run the same command again to resume",
                soft_wrap=True,
            )
            # the exit status is the message's: a signal still pending as the interpreter shuts down
            # (its handlers are back to the default by then) would otherwise kill it with -SIGINT instead
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            sys.exit(143 if why == "SIGTERM" else 130)
        except Exception as exc:
            line = _database_error(exc) or _disk_full(exc)
            if line is None:
                raise
            err_console.print(f"[bold red]error:[/] {redact(line)}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _kept(r: TrialRecord) -> str:
    """What pruning achieved, beside the ratio asked for: the share of multiply-accumulates kept,
    and "none removed" by the record's one rule (``TrialRecord.pruning_applied``, on kept parameters)."""
    if r.pruning_applied is False:
        return f"{100 * (r.kept_macs if r.kept_macs is not None else 1.0):.0f}% (none removed)"
    if r.kept_macs is None:
        return ""
    return f"{100 * r.kept_macs:.0f}%"


BITS_WIDTH = 24
"""The widest the bits column gets; a longer code is run-length encoded ("f 8×62 f")."""


def abbreviate_bits(bits: str, width: int = BITS_WIDTH) -> str:
    """``bits`` as is when it fits ``width``, else run-length encoded where that is shorter: a run
    of 3 or more equal codes becomes ``8×62``, runs separated by spaces. (The table wraps what still
    does not fit; ``--format json`` keeps the full string.)"""
    if len(bits) <= width:
        return bits
    runs: list[str] = []
    i = 0
    while i < len(bits):
        j = i
        while j < len(bits) and bits[j] == bits[i]:
            j += 1
        runs.append(f"{bits[i]}×{j - i}" if j - i >= 3 else bits[i:j])
        i = j
    encoded = " ".join(runs)
    return encoded if len(encoded) < len(bits) else bits


def _x(speedup: float | None) -> str:
    return f"{speedup:.2f}x" if speedup else ""


def front_table(rows: list[TrialRecord], *, metric_name: str, baseline: dict | None, title: str) -> Table:
    """The front as a table, the fp32 teacher first as the reference row, read from the study record
    (:class:`autocl.study.TrialRecord`). Distillation knobs show as '-' for members that were not
    distilled; ``steps`` are the member's distillation steps (its rung on a fidelity ladder). ``Δ metric`` is positive when better than fp32. ``speed-up (search)`` is the one
    measured in the trial, in alternation with fp32 (what ``not faster`` is decided on); ``speed-up
    (re-measured)`` appears once the front was re-measured. A long metric name is shown under the
    table, a long bits code is run-length encoded and wrapped."""
    remeasured = any(r.speedup_remeasured is not None for r in rows)
    peak = any(r.peak_memory_mb is not None for r in rows)
    metric_col = metric_name if len(metric_name) <= 12 else "metric"
    bits_width = max([len("bits per"), *(len(abbreviate_bits(r.bits)) for r in rows)])
    # two-line headers, and no column that would be empty, keep the table narrow
    columns = [
        "trial",
        "prune",
        "MACs\nkept",
        "T",
        "alpha",
        "steps",
        "bits per\nlayer",
        metric_col,
        "Δ metric\n(+ better)",
        "latency\nms",
        "± IQR",
        "speed-up\n(search)",
        *(["speed-up\n(re-measured)"] if remeasured else []),
        "size\nKB",
        *(["peak\nMB"] if peak else []),
        "notes",
    ]
    table = Table(
        title=title,
        title_justify="left",
        caption=None if metric_col == metric_name else f"metric: {metric_name}",
        caption_justify="left",
    )
    for col in columns:
        if col == "bits per\nlayer":  # a fixed width: a narrow terminal shrinks other columns, never this one to 0
            table.add_column(col, justify="left", overflow="fold", width=min(bits_width, BITS_WIDTH))
        elif col == "notes":
            table.add_column(col, justify="left", overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True)
    if baseline:
        table.add_row(
            "fp32",
            "0.00",
            "100%",
            "-",
            "-",
            "-",
            "teacher",
            f"{baseline['metric']:.4f}",
            "",
            f"{baseline['latency_ms']:.3f}",
            f"{baseline['latency_iqr_ms']:.3f}",
            "1.00x",
            *(["1.00x"] if remeasured else []),
            f"{baseline['size_kb']:.1f}",
            *([""] if peak else []),
            "unpruned fp32 teacher",
            style="dim",
        )
    for r in rows:
        table.add_row(
            str(r.number),
            f"{r.prune_ratio or 0:.2f}",
            _kept(r),
            f"{r.temperature:g}" if r.distilled else "-",
            f"{r.alpha:g}" if r.distilled else "-",
            str(r.distill_steps) if r.distill_steps else "-",
            abbreviate_bits(r.bits),
            f"{r.metric:.4f}",
            f"{r.metric_change:+.4f}" if r.metric_change is not None else "",
            f"{r.latency_ms:.3f}",
            f"{r.latency_iqr_ms:.3f}",
            _x(r.speedup_search),
            *([_x(r.speedup_remeasured)] if remeasured else []),
            f"{r.size_kb:.1f}",
            *([f"{r.peak_memory_mb:.1f}" if r.peak_memory_mb is not None else ""] if peak else []),
            "; ".join(r.notes),
            style="yellow" if r.not_faster or r.latency_changed else None,
        )
    return table


BITS_LEGEND = (
    "bits per layer: one character per quantizable layer in model order (f = fp32, h = fp16, 8 = int8 QDQ, "
    "d = int8 dynamic, 4 = int4 MatMulNBits; 8×62 = 62 layers in a row at int8); after depth pruning (prune.depth) the student's blocks are "
    "renumbered and take the characters of the first blocks' layers; a low-rank layer (prune.rank_ratio) is "
    "one layer, two MatMul/Conv nodes at its precision"
)


def bits_legend() -> str:
    """``BITS_LEGEND`` and the legend of each technique of the registry (``autocl.techniques``)."""
    from autocl.techniques import techniques

    legends = [t.legend for t in techniques() if t.legend]
    return BITS_LEGEND + (f"; notes: {', '.join(legends)}" if legends else "")
