"""``autocl cache`` and ``autocl cache prune``: what the artifact cache holds, and making it smaller.

The cache (``<AUTOCL_HOME>/cache``) keeps teachers, each workload's fp32 baseline, students and
quantized artifacts. ``autocl cache`` shows its use per workload and per study (the studies of
``AUTOCL_HOME``'s SQLite files, and those of ``--storage``), and how much belongs to front members.
``autocl cache prune --max SIZE`` lists the least recently used entries (students, artifacts, ladder
checkpoints) that would go to bring the cache under SIZE, and removes them only with ``--yes``; front members, queued
polishing, entries a running trial holds, baselines and teachers are never removed, nor any file
autocl did not write.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer
from rich.table import Table

from autocl.cli._common import console, handles_errors
from autocl.compress import (
    ARTIFACT,
    CHECKPOINT,
    STUDENT,
    CacheEntry,
    CacheLayout,
    cache_max,
    cache_usage,
    evict,
    format_size,
    parse_size,
    plan_eviction,
    teacher_files,
)
from autocl.runtime import cache_dir
from autocl.study import StudyCacheUse, home_cache_uses, keep_predicate

cache_app = typer.Typer(
    help="What the artifact cache holds (per workload, per study, front members), and pruning it.",
    no_args_is_help=False,
    add_completion=False,
)

STORAGE_HELP = (
    "a study database outside AUTOCL_HOME to count (and protect) too, e.g. postgresql://user@host/db; repeat it"
)


def _sum(entries: list[CacheEntry], kind: str | None = None) -> tuple[int, int]:
    chosen = [e for e in entries if kind is None or e.kind == kind]
    return len(chosen), sum(e.size for e in chosen)


def _cell(count_bytes: tuple[int, int]) -> str:
    n, size = count_bytes
    return f"{n} · {format_size(size)}" if n else "-"


@cache_app.callback(invoke_without_command=True)
def cache(
    ctx: typer.Context,
    storage: Optional[list[str]] = typer.Option(None, help=STORAGE_HELP),
) -> None:
    """Show the artifact cache's use: per workload (baseline, students, artifacts, ladder checkpoints,
    and what eviction keeps: front members' entries and what queued trials build on) and per study.

    Example: autocl cache   then   autocl cache prune --max 2GB
    """
    if ctx.invoked_subcommand is None:
        handles_errors(_usage)(storage or [])


def _usage(storage: list[str]) -> None:
    root = cache_dir()
    uses = home_cache_uses(root, extra=storage)
    layouts = CacheLayout.all_under(root)
    entries = {layout.folder.name: layout.entries() for layout in layouts}
    total = cache_usage(root)
    teachers = teacher_files(root)
    table = Table(title=f"artifact cache {root}", title_justify="left")
    for col in ("workload", "baseline", "students", "artifacts", "checkpoints", "kept", "studies"):
        table.add_column(col, justify="left" if col in ("workload", "studies") else "right")
    counted = sum(p.stat().st_size for p in teachers)
    for layout in layouts:
        mine = entries[layout.folder.name]
        base = sum(p.stat().st_size for p in layout.pinned_files)
        counted += base + sum(e.size for e in mine)
        kept = [e for e in mine if any(u.keeps(e) for u in uses)]
        names = sorted({u.name for u in uses if u.layout and u.layout.folder.name == layout.folder.name})
        table.add_row(
            layout.folder.name,
            format_size(base) if base else "-",
            _cell(_sum(mine, STUDENT)),
            _cell(_sum(mine, ARTIFACT)),
            _cell(_sum(mine, CHECKPOINT)),
            _cell(_sum(kept)),
            ", ".join(names) or "-",
        )
    console.print(table)
    if uses:
        console.print(_study_table(uses, [e for es in entries.values() for e in es]))
    other = total - counted
    console.print(
        f"total {format_size(total)}: teachers {format_size(sum(p.stat().st_size for p in teachers))} "
        f"({len(teachers)} file(s)), other files (data, locks, files being written) {format_size(other)}; "
        f"budget of a search here {format_size(cache_max(None, root))} (--cache-max, AUTOCL_CACHE_MAX)",
        soft_wrap=True,
    )


def _study_table(uses: list[StudyCacheUse], entries: list[CacheEntry]) -> Table:
    table = Table(title="per study (an entry two studies share counts in both)", title_justify="left")
    for col in ("study", "workload", "students", "artifacts", "checkpoints", "kept", "front trials"):
        table.add_column(col, justify="left" if col in ("study", "workload", "front trials") else "right")
    for u in uses:
        used = [e for e in entries if u.uses(e)]
        kept = [e for e in entries if u.keeps(e)]
        front = ", ".join(map(str, u.front_trials[:12])) + (" ..." if len(u.front_trials) > 12 else "")
        table.add_row(
            u.name,
            u.layout.folder.name if u.layout else "-",
            _cell(_sum(used, STUDENT)),
            _cell(_sum(used, ARTIFACT)),
            _cell(_sum(used, CHECKPOINT)),
            _cell(_sum(kept)),
            front or "-",
        )
    return table


@cache_app.command()
def prune(
    max_size: str = typer.Option(..., "--max", help="the size to bring the cache under, e.g. 2GB, 500MB, 1.5GiB"),
    yes: bool = typer.Option(False, "--yes", help="remove them (without it, only list what would go)"),
    storage: Optional[list[str]] = typer.Option(None, help=STORAGE_HELP),
) -> None:
    """List the least recently used students, artifacts and ladder checkpoints to remove to bring the
    cache under --max, and remove them with --yes. Front members, queued polishing, what a running trial
    holds, baselines and teachers stay; a removed entry is rebuilt when a trial or an export needs it.

    Example: autocl cache prune --max 2GB --yes
    """
    handles_errors(_prune)(max_size, yes, storage or [])


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "?"


def _prune(max_size: str, yes: bool, storage: list[str]) -> None:
    limit = parse_size(max_size, field="--max")
    root = cache_dir()
    plan = plan_eviction(root, limit, keep_predicate(home_cache_uses(root, extra=storage)))
    if not plan.remove:
        why = (
            "it is under that already"
            if plan.before <= limit
            else "what is left is protected (front members, queued polishing) or held by a running trial"
        )
        console.print(f"cache {format_size(plan.before)}, --max {format_size(limit)}: nothing to remove ({why})")
        return
    table = Table(title="least recently used first", title_justify="left")
    for col in ("workload", "kind", "key", "size", "last used"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for e in plan.remove:
        table.add_row(e.layout.folder.name, e.kind, e.key, format_size(e.size), _when(e.last_used))
    console.print(table)
    short = "" if plan.after <= limit else " (the rest is protected or held)"
    summary = (
        f"{len(plan.remove)} entr{'y' if len(plan.remove) == 1 else 'ies'}, {format_size(plan.before - plan.after)}: "
        f"cache {format_size(plan.before)} -> {format_size(plan.after)}{short}"
    )
    if not yes:
        console.print(f"would remove {summary}; run again with --yes to remove them", soft_wrap=True)
        return
    removed = evict(plan)
    freed = sum(e.size for e in removed)
    kept = len(plan.remove) - len(removed)
    held = f"; {kept} left: a trial started using them" if kept else ""
    console.print(
        f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, {format_size(freed)} freed: "
        f"cache now {format_size(cache_usage(root))}{held}",
        soft_wrap=True,
    )
