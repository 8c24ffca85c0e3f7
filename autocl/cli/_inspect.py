"""``autocl layers`` and ``autocl sensitivity``: what a search space can refer to, and what the
sensitivity pre-pass found."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from autocl.cli._common import console, handles_errors
from autocl.config import PRECISION_CODES, PRECISIONS
from autocl.workloads import DEFAULT_WORKLOAD, load_workload


def layers(
    workload: str = typer.Option(
        DEFAULT_WORKLOAD, help="built-in workload, registered name or 'package.module:function'"
    ),
    profile: Optional[Path] = typer.Option(
        None,
        help=(
            "hardware-profile YAML: also show which precisions its execution provider runs on each layer, "
            "and why the others are refused"
        ),
    ),
) -> None:
    """List a workload's quantizable layers: the names a search space's quant.layers,
    prune.ignored_layers and prune.layer_ratios use.

    Example: autocl layers --workload minilm --profile hardware_profiles/cpu-local.yaml
    """
    handles_errors(_layers)(workload, profile)


def _layers(workload: str, profile_path: Path | None) -> None:
    wl = load_workload(workload)
    names = wl.layer_names()
    modules = dict(wl.model.named_modules())
    ops: dict[str, set[str]] = {}
    refused: dict[str, dict[str, str]] = {}
    if profile_path is not None:
        from autocl.compress import Compressor
        from autocl.compress.support import layer_op_types, refusals
        from autocl.hardware import load_profile
        from autocl.runtime import cache_dir

        prof = load_profile(profile_path)
        ops = layer_op_types(Compressor(wl, cache_dir()).baseline(), names)
        refused = refusals(ops, PRECISIONS, prof.execution_provider)
    table = Table(title=f"quantizable layers of '{wl.name}'", title_justify="left")
    columns = ["#", "layer", "type", "weight shape", "parameters", "pruned"]
    if profile_path is not None:
        columns += ["graph op", "precisions it can run"]
    for col in columns:
        table.add_column(col)
    for i, name in enumerate(names):
        m = modules[name]
        row = [
            str(i),
            name,
            type(m).__name__,
            "x".join(map(str, m.weight.shape)),
            str(m.weight.numel()),
            "no (workload keeps it)" if name in wl.ignored_layers else "yes",
        ]
        if profile_path is not None:
            ok = [p for p in PRECISIONS if p not in refused.get(name, {})]
            row += [",".join(sorted(ops.get(name, set()))) or "-", " ".join(f"{p}({PRECISION_CODES[p]})" for p in ok)]
        table.add_row(*row)
    console.print(table)
    reasons = sorted({(p, why) for r in refused.values() for p, why in r.items()})
    for p, why in reasons:
        count = sum(p in r and r[p] == why for r in refused.values())
        console.print(f"[yellow]refused[/] {p} on {count} layer(s): {why}", soft_wrap=True)


def sensitivity(
    study: str = typer.Option("demo", help="study name"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
) -> None:
    """Print the sensitivity table a study stored (run 'autocl search --sensitivity' to make one):
    the metric drop of each precision applied to one layer alone.

    Example: autocl sensitivity --study minilm
    """
    handles_errors(_sensitivity)(study, storage)


def _sensitivity(study_name: str, storage: str | None) -> None:
    from autocl.errors import StudyError
    from autocl.study import existing_storage, load_existing

    url = existing_storage(study_name, storage)
    st = load_existing(study_name, url)
    data = st.user_attrs.get("sensitivity")
    if not data:
        raise StudyError(
            f"study {study_name!r} has no sensitivity table; run 'autocl search --study {study_name} "
            "--sensitivity' on a new study to make one"
        )
    precisions = [p for p in PRECISIONS if any(p in row for row in data.values())]
    table = Table(
        title=f"metric drop per layer and precision in '{study_name}' (positive = worse)", title_justify="left"
    )
    table.add_column("layer")
    for p in precisions:
        table.add_column(p, justify="right")
    for layer, row in data.items():
        table.add_row(layer, *(f"{row[p]:+.5f}" if p in row else "" for p in precisions))
    console.print(table)
