"""``autocl report``, ``autocl export`` and ``autocl apply``: inspect a study, ship a trial, rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from autocl.cli._common import console, handles_errors
from autocl.workloads import DEFAULT_WORKLOAD

PICK_HELP = (
    "choose a front member: 'metric_drop<=0.01,latency_ms<=5' (fields metric, metric_drop, metric_change, "
    "latency_ms, latency_p90_ms, size_kb, speedup_search (= speedup), speedup_remeasured; the fastest meeting "
    "all), 'fastest-within:0.01' or 'knee'"
)


def _profile_arg(profile: Optional[str]):
    """A profile name, or the path of a profile YAML file (loaded and validated)."""
    if profile and (profile.endswith((".yaml", ".yml")) or Path(profile).is_file()):
        from autocl.hardware import load_profile

        return load_profile(profile)
    return profile


def report(
    study: str = typer.Option("demo", help="study name"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    profile: Optional[str] = typer.Option(None, help="profile name [default: the search's primary profile]"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file [default: studies/<study>-report.html]"),
    layer_latency: bool = typer.Option(
        False,
        "--layer-latency",
        help=(
            "time each front member's layers with onnxruntime's profiler on the profile (needs the workload and the "
            "artifact cache)"
        ),
    ),
    workload: Optional[str] = typer.Option(None, help="workload, for --layer-latency [default: the study's]"),
) -> None:
    """Write one self-contained HTML page about a study (plotly embedded, works offline).

    The feasible Pareto front (metric vs latency and vs size, and in 3-D), a table of its members,
    bit width and pruning per layer with why layers were spared, parameter importance, the
    optimization history and hypervolume, and the infeasible and failed trials with their reasons.

    Example: autocl report --study demo -o demo.html
    """
    handles_errors(_report)(study, storage, profile, out, layer_latency, workload)


def _report(study, storage, profile, out, layer_latency, workload) -> None:
    from autocl.api import load_study
    from autocl.runtime import home_dir

    view = load_study(study, storage)
    wl = None
    if layer_latency:
        from autocl.export import resolve_workload

        wl = resolve_workload(view.data(profile), workload, view.storage)
    path = view.report(out or home_dir() / f"{study}-report.html", profile, workload=wl, measure_layers=layer_latency)
    data = view.data(profile)
    console.print(
        f"report of study [bold]{study}[/] on profile [bold]{data.profile}[/]: {len(data.front)} front "
        f"member(s) of {len(data.trials)} trial(s) -> {path} ({path.stat().st_size / 1e6:.1f} MB, "
        "opens offline in any browser)"
    )


def export(
    study: str = typer.Option("demo", help="study name"),
    out: Path = typer.Option(..., "--out", "-o", help="directory to write the bundle to (new or empty)"),
    trial: Optional[int] = typer.Option(None, help="trial number to export"),
    pick: Optional[str] = typer.Option(None, help=PICK_HELP),
    profile: Optional[str] = typer.Option(None, help="profile name, or a profile YAML [default: the primary profile]"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    workload: Optional[str] = typer.Option(None, help="workload [default: the one the study recorded]"),
    latency_tolerance: float = typer.Option(
        0.5, min=0.0, help=("re-measured median must fall in the study's IQR widened by this x the study's median")
    ),
    metric_tolerance: float = typer.Option(1e-6, min=0.0, help="allowed difference of the re-evaluated metric"),
    overwrite: bool = typer.Option(False, help="replace a non-empty --out directory"),
    accept_rebuilt: bool = typer.Option(
        False, help="ship a rebuilt artifact whose sha256 differs from the measured one"
    ),
) -> None:
    """Export one trial as a verified bundle: model.onnx, weights.pt, config.yaml, MODEL_CARD.md.

    The model is reloaded in a fresh onnxruntime session, its metric re-evaluated and its latency
    re-measured; the export is refused, with the numbers, if they disagree with the study.

    Example: autocl export --study demo --pick fastest-within:0.01 -o bundle/
    """
    handles_errors(_export)(
        study,
        out,
        trial,
        pick,
        profile,
        storage,
        workload,
        latency_tolerance,
        metric_tolerance,
        overwrite,
        accept_rebuilt,
    )


def _export(
    study, out, trial, pick, profile, storage, workload, latency_tolerance, metric_tolerance, overwrite, accept_rebuilt
) -> None:
    from autocl.api import load_study

    view = load_study(study, storage)
    with console.status("exporting") as status:
        result = view.export(
            out,
            trial=trial,
            pick=pick,
            profile=_profile_arg(profile),
            workload=workload,
            latency_tolerance=latency_tolerance,
            metric_tolerance=metric_tolerance,
            overwrite=overwrite,
            accept_rebuilt=accept_rebuilt,
            on_stage=lambda s: status.update(s),
        )
    t, v = result.trial, result.verification
    if result.pick:
        console.print(f"--pick {result.pick.rule}: trial {t.number}, {result.pick.why}")
    if t.reason:
        console.print(f"[yellow]note: trial {t.number} is {t.status}: {t.reason}[/]")
    console.print(
        f"trial [bold]{t.number}[/] on profile {result.profile}: metric {v.metric:.4f} (study "
        f"{v.study_metric:.4f}), median latency {v.median_ms:.4f} ms (study {v.study_median_ms:.4f}, band "
        f"[{v.band_ms[0]:.4f}, {v.band_ms[1]:.4f}]), artifact "
        f"{'identical to the one measured' if v.sha_ok else 'REBUILT (sha256 differs)'}"
    )
    console.print(f"wrote {result.directory}/: {', '.join(result.files)}")


def apply(
    config: Path = typer.Option(..., help="config.yaml of an exported bundle"),
    workload: str = typer.Option(DEFAULT_WORKLOAD, help="the workload the configuration was found for"),
    weights: Optional[Path] = typer.Option(None, help="state dict to load [default: weights.pt beside the config]"),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="also write the quantized model.onnx here and compute its metric"
    ),
    profile: Optional[Path] = typer.Option(None, help="profile YAML for evaluating the metric [default: 1-thread CPU]"),
) -> None:
    """Rebuild a configuration: prune the workload's teacher as config.yaml says and load the weights.

    Example: autocl apply --config bundle/config.yaml --workload mnist -o rebuilt/
    """
    handles_errors(_apply)(config, workload, weights, out, profile)


def _apply(config, workload, weights, out, profile) -> None:
    from autocl.apply import apply_config

    prof = _profile_arg(str(profile)) if profile else None
    applied = apply_config(config, workload, weights=weights, out_dir=out, profile=prof)
    console.print(f"architecture rebuilt from {config}: {applied.parameters:,} parameters", soft_wrap=True)
    table = Table()
    for col in ("layer", "weight shape"):
        table.add_column(col)
    for name, shape in applied.layer_shapes.items():
        table.add_row(name, "x".join(map(str, shape)))
    console.print(table)
    console.print(f"weights: {applied.weights}")
    if applied.onnx_path:
        console.print(f"wrote {applied.onnx_path}: metric {applied.metric:.4f} (onnxruntime, validation split)")
