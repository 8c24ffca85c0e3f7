"""``autocl layers``: what a search space can refer to."""

from __future__ import annotations

import typer
from rich.table import Table

from autocl.cli._common import console, handles_errors
from autocl.workloads import DEFAULT_WORKLOAD, load_workload


def layers(
    workload: str = typer.Option(DEFAULT_WORKLOAD, help="built-in workload or 'package.module:function'"),
) -> None:
    """List a workload's quantizable layers: the names a search space's quant.layers and
    prune.ignored_layers use."""
    handles_errors(_layers)(workload)


def _layers(workload: str) -> None:
    wl = load_workload(workload)
    modules = dict(wl.model.named_modules())
    table = Table(title=f"quantizable layers of '{wl.name}'", title_justify="left")
    for col in ("#", "layer", "type", "weight shape", "parameters", "pruned"):
        table.add_column(col)
    for i, name in enumerate(wl.layer_names()):
        m = modules[name]
        table.add_row(str(i), name, type(m).__name__, "x".join(map(str, m.weight.shape)), str(m.weight.numel()),
                      "no (workload keeps it)" if name in wl.ignored_layers else "yes")
    console.print(table)
