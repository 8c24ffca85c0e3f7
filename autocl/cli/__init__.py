"""The ``autocl`` command line."""

from __future__ import annotations

import typer

from autocl.cli._cache import cache_app
from autocl.cli._hardware import agent, compare_targets, profiles, remeasure
from autocl.cli._inspect import layers, sensitivity
from autocl.cli._search import front, search
from autocl.cli._serve import serve
from autocl.cli._ship import apply, export, report
from autocl.cli._worker import worker

app = typer.Typer(
    help=(
        "Search pruning ratio, per-layer precision and distillation temperature for the best compressed "
        "model per hardware target. Latency is measured with onnxruntime on the exported artifact.\n\n"
        "Start with: autocl search --trials 12   then   autocl front"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command()(search)
app.command()(worker)
app.command()(front)
app.command()(layers)
app.command()(report)
app.command()(export)
app.command()(apply)
app.command()(profiles)
app.command()(remeasure)
app.command("compare-targets")(compare_targets)
app.command()(agent)
app.command()(sensitivity)
app.command()(serve)
app.add_typer(cache_app, name="cache")


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines are replaced by autocl's own; set for the command line only, so
    importing autocl leaves a library user's logging alone."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main() -> None:
    quiet_optuna()
    app()


__all__ = ["app", "main"]
