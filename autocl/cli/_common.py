"""Shared CLI pieces: one console, error handling, and the front table."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from autocl.errors import AutoclError
from autocl.study import FrontRow, Interrupted, sigterm_as_interrupt

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
    return (f"the study database cannot be used: {detail}. Check that its file (or server) is writable, "
            "the disk is not full and the --storage URL is right; finished trials are saved")


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
            why = "SIGTERM" if isinstance(exc, Interrupted) else "Ctrl-C"
            err_console.print(f"interrupted ({why}): the running trial is marked failed, finished trials are saved; "
                              "run the same command again to resume", soft_wrap=True)
            sys.exit(143 if isinstance(exc, Interrupted) else 130)
        except Exception as exc:
            line = _database_error(exc)
            if line is None:
                raise
            err_console.print(f"[bold red]error:[/] {line}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _notes(r: FrontRow) -> str:
    notes = []
    if r.not_faster:
        notes.append("not faster than fp32")
    if r.latency_changed:
        notes.append(f"re-measured {r.remeasured_ms:.3f} ms")
    if r.qat and "8" in r.bits:
        notes.append("QAT")
    if r.clusters:
        notes.append(f"{r.clusters} shared")
    if r.polish_of is not None:
        notes.insert(0, f"polished #{r.polish_of}")
    return "; ".join(notes)


def _kept(r: FrontRow) -> str:
    """What pruning achieved, beside the ratio asked for: the share of multiply-accumulates kept."""
    if r.kept_macs is None:
        return ""
    if r.prune_ratio > 0 and r.kept_macs >= 0.9999:
        return "100% (none removed)"
    return f"{100 * r.kept_macs:.0f}%"


def front_table(rows: list[FrontRow], *, metric_name: str, baseline: dict | None, title: str) -> Table:
    """The front as a table, the fp32 teacher first as the reference row. Distillation knobs show
    as '-' for members that were not distilled (the model was not changed). The speed-up is the one measured in
    the trial, in alternation with the baseline, when there is one."""
    table = Table(title=title, title_justify="left")
    for col in ("trial", "prune", "MACs kept", "T", "alpha", "bits per layer", metric_name, "Δ metric", "latency ms",
                "± IQR", "speed-up", "size KB", "peak MB", "notes"):
        table.add_column(col, justify="left" if col in ("bits per layer", "notes") else "right", no_wrap=True)
    if baseline:
        table.add_row("fp32", "0.00", "100%", "-", "-", "teacher, unpruned", f"{baseline['metric']:.4f}", "",
                      f"{baseline['latency_ms']:.3f}", f"{baseline['latency_iqr_ms']:.3f}", "1.00x",
                      f"{baseline['size_kb']:.1f}", "", "", style="dim")
    for r in rows:
        distilled = r.distilled if r.distilled is not None else r.prune_ratio > 0
        speedup = r.speedup if r.speedup else (baseline["latency_ms"] / r.latency_ms if baseline else None)
        table.add_row(
            str(r.trial), f"{r.prune_ratio:.2f}", _kept(r), f"{r.temperature:g}" if distilled else "-",
            f"{r.alpha:g}" if distilled else "-", r.bits, f"{r.metric:.4f}",
            f"{r.metric - baseline['metric']:+.4f}" if baseline else "", f"{r.latency_ms:.3f}",
            f"{r.latency_iqr_ms:.3f}", f"{speedup:.2f}x" if speedup else "", f"{r.size_kb:.1f}",
            f"{r.peak_memory_mb:.1f}" if r.peak_memory_mb is not None else "", _notes(r),
            style="yellow" if r.not_faster or r.latency_changed else None,
        )
    return table


BITS_LEGEND = ("bits per layer: one character per quantizable layer in model order (f = fp32, h = fp16, 8 = int8 QDQ, "
               "d = int8 dynamic, 4 = int4 MatMulNBits); notes: QAT = the 8 layers were quantization-aware trained "
               "(else post-training calibrated), k shared = weights clustered to k values per layer (smaller size, "
               "same latency)")
