"""``autocl profiles``, ``autocl agent`` and ``autocl remeasure``: the hardware targets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from autocl.cli._common import console, handles_errors
from autocl.errors import AutoclError, StudyError
from autocl.hardware import (
    HardwareProfile,
    agent_health,
    int8_warning,
    load_profile,
    profile_from_dict,
    read_token_file,
    serve,
)
from autocl.study import existing_storage, load_existing, remeasure_front


def profiles(
    directory: Path = typer.Option(Path("hardware_profiles"), "--dir", help="folder of profile YAML files"),
) -> None:
    """List the hardware profiles in a folder: what each declares, and whether it can run here.

    Local profiles are checked against this onnxruntime's execution providers and this machine's
    CPUs; remote ones by asking their agent's /health (2 s timeout) and reading their token.

    Example: autocl profiles
    """
    handles_errors(_profiles)(directory)


def _runs_here(p: HardwareProfile) -> tuple[bool, str]:
    if p.measure == "remote":
        try:
            p.remote.token()  # type: ignore[union-attr]
            health = agent_health(p)
        except AutoclError as exc:
            return False, str(exc)
        return True, f"agent answers (autocl {health.get('autocl')}, onnxruntime {health.get('onnxruntime')})"
    reason = p.unavailable_reason()
    if reason:
        return False, reason
    warning = int8_warning() if "int8" in p.precisions and p.execution_provider == "CPUExecutionProvider" else None
    return True, warning or "yes"


def _profiles(directory: Path) -> None:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise StudyError(f"no profile files (*.yaml) in {directory}; pass --dir FOLDER")
    table = Table(title=f"hardware profiles in {directory}", title_justify="left")
    for col in ("profile", "file", "measured", "provider", "threads", "batch", "precisions", "budgets", "runs here"):
        table.add_column(col, no_wrap=col != "budgets")
    notes: list[str] = []
    runnable = 0
    for f in files:
        try:
            p = load_profile(f, check=False)
        except AutoclError as exc:
            notes.append(f"[{len(notes) + 1}] {exc}")
            table.add_row("?", f.name, "", "", "", "", "", "", f"[red]invalid [{len(notes)}][/]")
            continue
        ok, why = _runs_here(p)
        runnable += ok
        if why != "yes":
            notes.append(f"[{len(notes) + 1}] {p.name}: {why}")
        mark = "" if why == "yes" else f" [{len(notes)}]"
        where = "here" if p.measure == "local" else f"agent {p.remote.url}"  # type: ignore[union-attr]
        budgets = ", ".join(f"{k} {v:g}" for k, v in p.budgets.items()) or "-"
        table.add_row(
            p.name,
            f.name,
            where,
            p.execution_provider.removesuffix("ExecutionProvider"),
            str(p.threads),
            str(p.batch_size),
            " ".join(p.precisions),
            budgets,
            f"[green]yes{mark}[/]" if ok else f"[red]no{mark}[/]",
        )
    console.print(table)
    for line in notes:
        console.print(line, soft_wrap=True, markup=False)
    console.print(
        f"{runnable} of {len(files)} profile(s) can be measured from here; use one with "
        "'autocl search --profile NAME' (repeat --profile for several targets)"
    )


def agent(
    host: str = typer.Option("127.0.0.1", help="address to listen on (a non-loopback one exposes the device)"),
    port: int = typer.Option(8765, min=0, max=65535, help="port (0: any free one, printed at start)"),
    token_file: Path = typer.Option(..., help="file holding the token clients must send (16+ characters)"),
    max_upload_mb: float = typer.Option(64.0, min=0.001, help="largest request body accepted, in MB"),
    idle_exit: float = typer.Option(0.0, min=0.0, help="stop after this many seconds without a request (0: never)"),
    scratch: Optional[Path] = typer.Option(
        None, help="folder for the per-request temporary artifacts [default: system temp]"
    ),
    quiet: bool = typer.Option(False, help="do not log requests"),
) -> None:
    """Serve latency measurements on this device, for profiles with `measure: remote`.

    Clients POST an ONNX artifact (or several) with a feed and a profile; the agent measures them
    with this device's onnxruntime under the same protocol as a local measurement, and answers the
    statistics and the device's fingerprint. Artifacts are deleted when the request ends.

    Example: autocl agent --host 0.0.0.0 --port 8765 --token-file ~/.autocl/agent.token
    """
    handles_errors(_agent)(host, port, token_file, max_upload_mb, idle_exit, scratch, quiet)


def _agent(host, port, token_file, max_upload_mb, idle_exit, scratch, quiet) -> None:
    token = read_token_file(token_file)
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    serve(
        host,
        port,
        token,
        max_upload_bytes=int(max_upload_mb * 2**20),
        idle_exit_s=idle_exit,
        scratch=scratch,
        quiet=quiet,
        announce=lambda line: print(line, flush=True),
    )


def remeasure(
    study: str = typer.Option("demo", help="study name"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    workload: Optional[str] = typer.Option(None, help="workload spec when it is not a built-in [default: the study's]"),
    profile: Optional[list[str]] = typer.Option(
        None, help="profile YAML or name to re-measure on; repeatable [default: the study's profiles as stored]"
    ),
) -> None:
    """Re-measure a study's Pareto fronts and flag members whose speed-up changed beyond the noise.

    The front's artifacts and the fp32 baseline are measured again, interleaved. A member changed
    when its speed-up over fp32 differs from the one measured in its trial by more than the
    profile's measurement.noise_floor and the two intervals do not overlap (ratios, not raw ms
    taken minutes apart); numbers from another device are not compared. The front is then ranked
    on the re-measured speed-ups; a trial that joins it is re-measured too.

    Example: autocl remeasure --study demo
    """
    handles_errors(_remeasure)(study, storage, workload, profile)


def _times(speedup: float | None) -> str:
    return "" if speedup is None else f"{speedup:.2f}x"


def _remeasure(study_name, storage, workload, profile) -> None:
    url = existing_storage(study_name, storage)
    st = load_existing(study_name, url)
    stored = st.user_attrs.get("profiles") or {}
    if not stored and "profile" in st.user_attrs:
        stored = {st.user_attrs["profile"]["name"]: st.user_attrs["profile"]}
    if profile:
        targets = [load_profile(p) for p in profile]
        unknown = [p.name for p in targets if p.name not in stored]
        if unknown:
            raise StudyError(
                f"study {study_name!r} was not measured on {', '.join(unknown)} (its profiles: "
                f"{', '.join(stored) or 'none'}); a front exists only for those"
            )
    else:
        targets = [profile_from_dict(d, source=f"study {study_name} profile {n}") for n, d in stored.items()]
    from autocl.export import resolve_workload
    from autocl.report import study_data

    wl = resolve_workload(study_data(st), workload, url)  # the one check that the study's workload is unchanged
    with console.status("re-measuring the fronts"):
        result = remeasure_front(st, url, wl, targets)
    if not result:
        raise StudyError(f"study {study_name!r} has no front to re-measure yet; run 'autocl search' first")
    for name, members in result.items():
        table = Table(title=f"re-measured front of '{study_name}' on profile '{name}'", title_justify="left")
        cols = ("trial", "stored ms", "now ms", "95% CI now", "speed-up (search)", "speed-up (re-measured)", "change")
        for col in (*cols, "verdict"):
            table.add_column(col, justify="right" if col != "verdict" else "left")
        for trial, r in members.items():
            verdict = (
                "not comparable: another device"
                if r["comparable"] is False
                else "[yellow]changed beyond the noise[/]"
                if r["changed"]
                else "same within the noise"
                if r["changed"] is False
                else "no speed-up stored with the trial"
            )
            table.add_row(
                str(trial),
                f"{r['stored_median_ms']:.3f}",
                f"{r['median_ms']:.3f}",
                f"{r['ci95_ms'][0]:.3f}-{r['ci95_ms'][1]:.3f}",
                _times(r.get("stored_speedup")),
                _times(r["speedup"]),
                "" if r.get("speedup_change") is None else f"{r['speedup_change']:+.1%}",
                verdict,
            )
        console.print(table)


def compare_targets(
    study: str = typer.Option("demo", help="study name (searched with --profile given once per target)"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    workload: Optional[str] = typer.Option(None, help="workload spec when it is not a built-in [default: the study's]"),
    max_drop: Optional[float] = typer.Option(
        None, "--max-drop", help="metric bound of a winner, in the metric's units [default: the study's --max-drop]"
    ),
    recorded: bool = typer.Option(
        False, "--recorded", help="use the speed-ups measured in the trials instead of measuring the winners again"
    ),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """For each target, its fastest front member within the metric bound, that member's speed-up on
    every other target, and the regret of shipping one target's winner to another.

    The winners and the fp32 baseline are measured interleaved, in one run per target, and each
    winner's metric drop is computed through each target's runtime. Regret of shipping S's winner
    to T: 1 - speed-up on T of S's winner / speed-up on T of T's winner.

    Example: autocl compare-targets --study two-runtimes
    """
    handles_errors(_compare_targets)(study, storage, workload, max_drop, recorded, fmt)


def _compare_targets(study_name, storage, workload, max_drop, recorded, fmt) -> None:
    import json

    from autocl.study import cross_targets

    if fmt not in ("table", "json"):
        raise StudyError(f"unknown --format {fmt!r}; use table or json")
    url = existing_storage(study_name, storage)
    st = load_existing(study_name, url)
    if recorded:
        result = cross_targets(st, max_drop=max_drop)
    else:
        from autocl.export import resolve_workload
        from autocl.report import study_data

        stored = st.user_attrs.get("profiles") or {}
        targets = [profile_from_dict(d, source=f"study {study_name} profile {n}") for n, d in stored.items()]
        wl = resolve_workload(study_data(st), workload, url)
        with console.status("measuring each target's winner on every target"):
            result = cross_targets(st, max_drop=max_drop, profiles=targets, workload=wl)
    if fmt == "json":
        console.print_json(json.dumps(result.to_dict()))
        return
    names = list(result.winners)
    bound = "no bound" if result.max_drop is None else f"metric drop <= {result.max_drop:g}"
    table = Table(
        title=f"cross-target regret of '{study_name}' ({bound}; speed-ups {result.how})", title_justify="left"
    )
    table.add_column("winner of")
    table.add_column("trial", justify="right")
    table.add_column("bits")
    for t in names:
        table.add_column(f"on {t}", justify="right")
    for s in names:
        w = result.winners[s]
        cells = []
        for t in names:
            x, regret = result.speedups[t].get(s), result.regret(t, s)
            drop = (result.drops.get(t) or {}).get(s)
            cell = _times(x) + ("" if s == t or regret is None else f" (regret {regret:.1%})")
            if drop is not None:
                cell += f", drop {drop:+.4f}"
            cells.append(cell)
        table.add_row(s, str(w.trial), w.bits, *cells)
    console.print(table)
    if result.load_1m:
        console.print(
            "load average while measuring: " + ", ".join(f"{k} {v}" for k, v in result.load_1m.items() if v is not None)
        )
