"""How noisy and how costly autocl's latency measurement protocol is on this machine.

For each built-in workload it runs a short search on a profile (default ``cpu-local``) with
students trained fresh (teachers and data are reused from the normal cache), then reports:

* cost: the time the protocol takes per trial (the artifact and the fp32 baseline interleaved,
  plus the memory probe: ``user_attrs['seconds']['measure']``) as a fraction of the trial's time;
* CV: the coefficient of variation of the median over ``--repeats`` complete, independent
  measurements (new session, warm-up, timed runs) of one artifact, for the fp32 baseline and
  the fastest compressed artifact; and of the speed-up measured in alternation with the baseline;
* rank correlation: Spearman's rho between two passes measuring every artifact of the search
  once each (the second pass in reverse order), and between the search's own numbers and a pass.

Targets: CV below 3%, rho above 0.95, cost under 10% of a trial.

    python benchmarks/measure_noise.py                      # digits and mnist, cpu-local
    python benchmarks/measure_noise.py --workloads mnist --profile hardware_profiles/cpu-edge-1t.yaml
    python benchmarks/measure_noise.py --profile hardware_profiles/cpu-openvino.yaml --from-study two-runtimes

``--from-study NAME`` skips the search and measures the artifacts an existing study (searched on this
profile among others, e.g. ``--profile cpu-local --profile cpu-openvino``) stored: the CV and rank
correlation of two runtimes are then measured on the same artifacts, one run after the other (the
protocol's cost per trial is not measured then).

``--versus PROFILE`` (with ``--from-study``) compares two targets' noise side by side, since raw noise
figures taken minutes apart on a shared machine are not comparable: in each of ``--repeats`` rounds,
every artifact of the study and the fp32 baseline are measured interleaved on one profile, then on
the other (the order alternating between rounds), and the CV of each artifact's speed-up is reported
per profile (mean, median and largest over the artifacts; and for the fastest artifact).

    python benchmarks/measure_noise.py --workloads mnist --from-study two-runtimes \
        --profile hardware_profiles/cpu-local.yaml --versus hardware_profiles/cpu-openvino.yaml --repeats 8

Results go to ``<--out>/measure_noise[-<profile>].json`` and ``.md`` (default ``benchmarks/results/``), with
``_record.header`` (command, machine, git commit).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import add_run_args, commit_text, header, out_dir, quick_defaults  # noqa: E402


def _prepare_home() -> Path:
    """A fresh AUTOCL_HOME whose cache links the persistent teachers and data (not the students)."""
    persistent = Path(os.environ.get("AUTOCL_HOME", ROOT / "studies")) / "cache"
    work = Path(tempfile.mkdtemp(prefix="autocl-bench-"))
    (work / "cache").mkdir()
    for sub in ("teachers", "data"):
        (persistent / sub).mkdir(parents=True, exist_ok=True)
        os.symlink((persistent / sub).resolve(), work / "cache" / sub)
    os.environ["AUTOCL_HOME"] = str(work)
    os.environ.setdefault("AUTOCL_LEASE_DIR", str((persistent / "leases").resolve()))
    return work


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def bench_workload(name: str, args, profile, space) -> dict:
    import optuna
    from scipy.stats import spearmanr

    from autocl.compress import Compressor
    from autocl.hardware import measure_latency, measure_many
    from autocl.runtime import cache_dir
    from autocl.study import run_search
    from autocl.workloads import load_workload

    wl = load_workload(name)
    feed = wl.sample_feed(profile.batch_size)
    t0 = time.perf_counter()
    if args.from_study:
        from autocl.study import existing_storage, load_existing

        study = load_existing(args.from_study, existing_storage(args.from_study, args.storage))
    else:
        study = run_search(wl, space, profile, study_name=f"bench-{name}", storage=f"sqlite:///{args.home}/{name}.db",
                           n_trials=args.trials, seed=args.seed).study
    search_s = time.perf_counter() - t0
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and profile.name in t.user_attrs.get("measurements", {}) and Path(t.user_attrs["artifact_path"]).is_file()]
    if not done:
        raise SystemExit(f"study {args.from_study!r} has no completed trial measured on {profile.name!r} with its artifact")
    per_trial = []
    for t in done:
        total = (t.datetime_complete - t.datetime_start).total_seconds()
        s = t.user_attrs["seconds"]
        per_trial.append({"trial": t.number, "total_s": round(total, 3), "measure_s": s["measure"],
                          "compress_s": s["compress"], "student_reused": t.user_attrs["student_reused"],
                          "fraction": round(s["measure"] / total, 4)})
    measure_total = sum(p["measure_s"] for p in per_trial)
    trial_total = sum(p["total_s"] for p in per_trial)
    if args.from_study:  # its trials measured every profile: the protocol's share is the study's, not this profile's
        measure_total = float("nan")

    baseline = Compressor(wl, cache_dir()).baseline()
    artifacts: dict[str, tuple[Path, float]] = {}
    for t in done:  # distinct artifacts, with the latency the search measured
        artifacts.setdefault(t.user_attrs["artifact_sha256"],
                             (Path(t.user_attrs["artifact_path"]), t.user_attrs["measurements"][profile.name]["median_ms"]))
    compressed = min(artifacts.values(), key=lambda pv: pv[1])[0]

    repeat_s = []
    cv = {}
    loads_now: list[float] = []  # the load while this script measures (with --from-study, the study's trials ran earlier)

    def seen(m):
        if m.load_1m is not None:
            loads_now.append(m.load_1m)
        return m

    for label, path in (("fp32 baseline", baseline), ("fastest compressed", compressed)):
        medians = []
        for _ in range(args.repeats):
            t1 = time.perf_counter()
            medians.append(seen(measure_latency(path, profile, feed, memory=False)).median_ms)
            repeat_s.append(time.perf_counter() - t1)
        cv[label] = {"cv": round(_cv(medians), 5), "medians_ms": [round(m, 4) for m in medians]}
    ratios = []
    for _ in range(args.repeats):
        cand, base = measure_many([compressed, baseline], profile, feed, memory=False)
        seen(base)
        ratios.append(base.median_ms / cand.median_ms)
    cv["speed-up, interleaved with the baseline"] = {"cv": round(_cv(ratios), 5),
                                                      "ratios": [round(r, 4) for r in ratios]}

    paths = [p for p, _ in artifacts.values()] + [baseline]
    first = [measure_latency(p, profile, feed, memory=False).median_ms for p in paths]
    second = [measure_latency(p, profile, feed, memory=False).median_ms for p in reversed(paths)][::-1]
    searched = [lat for _, lat in artifacts.values()]
    loads = [t.user_attrs["measurements"][profile.name].get("load_1m") for t in done]
    loads = [x for x in loads if x is not None]
    if args.from_study:
        loads = loads_now
    return {
        "workload": name, "trials": len(done), "search_seconds": round(search_s, 1),
        "load_1m_during_trials": [min(loads), max(loads)] if loads else None,
        "from_study": args.from_study,
        "cost": {"measure_fraction_of_trial_time": round(measure_total / trial_total, 4),
                 "median_fraction_per_trial": round(statistics.median(p["fraction"] for p in per_trial), 4),
                 "mean_measure_seconds": round(measure_total / len(per_trial), 3),
                 "mean_trial_seconds": round(trial_total / len(per_trial), 3),
                 "mean_seconds_one_artifact_latency_only": round(statistics.fmean(repeat_s), 4)},
        "cv": cv,
        "rank_correlation": {
            "artifacts": len(paths),
            "spearman_two_passes": round(float(spearmanr(first, second).statistic), 4),
            "spearman_search_vs_pass": round(float(spearmanr(searched, first[:-1]).statistic), 4),
            "latency_range_ms": [round(min(first), 4), round(max(first), 4)],
            "pass1_ms": [round(x, 4) for x in first], "pass2_ms": [round(x, 4) for x in second],
        },
        "per_trial": per_trial,
    }


def paired(name: str, args, profiles: list) -> dict:
    """Every artifact of ``--from-study`` and the baseline, interleaved, on each profile in turn, for
    ``--repeats`` rounds (the profiles' order alternating): the CV of each artifact's speed-up per profile."""
    import optuna

    from autocl.compress import Compressor
    from autocl.hardware import measure_many
    from autocl.runtime import cache_dir
    from autocl.study import existing_storage, load_existing
    from autocl.workloads import load_workload

    wl = load_workload(name)
    study = load_existing(args.from_study, existing_storage(args.from_study, args.storage))
    arts: dict[str, Path] = {}
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and Path(t.user_attrs.get("artifact_path", "")).is_file():
            arts.setdefault(t.user_attrs["artifact_sha256"], Path(t.user_attrs["artifact_path"]))
    paths = [*arts.values(), Compressor(wl, cache_dir()).baseline()]
    feeds = {p.name: wl.sample_feed(p.batch_size) for p in profiles}
    ratios: dict[str, list[list[float]]] = {p.name: [] for p in profiles}
    loads: list[float] = []
    for r in range(args.repeats):
        for p in profiles if r % 2 == 0 else profiles[::-1]:
            ms = measure_many(paths, p, feeds[p.name], memory=False)
            loads += [m.load_1m for m in ms[-1:] if m.load_1m is not None]
            ratios[p.name].append([ms[-1].median_ms / m.median_ms for m in ms[:-1]])
        print(f"[{name}] paired round {r + 1}/{args.repeats}", flush=True)
    # the main mode's figure, side by side: one artifact (the fastest on the first profile) and the baseline
    first = list(zip(*ratios[profiles[0].name], strict=True))
    fast = paths[max(range(len(first)), key=lambda i: statistics.fmean(first[i]))]
    two: dict[str, list[float]] = {p.name: [] for p in profiles}
    for r in range(args.repeats):
        for p in profiles if r % 2 == 0 else profiles[::-1]:
            cand, base = measure_many([fast, paths[-1]], p, feeds[p.name], memory=False)
            two[p.name].append(base.median_ms / cand.median_ms)
    out = {"workload": name, "study": args.from_study, "artifacts": len(arts), "rounds": args.repeats,
           "load_1m": [min(loads), max(loads)] if loads else None, "profiles": {}}
    for p in profiles:
        per_art = list(zip(*ratios[p.name], strict=True))
        cvs = [_cv(list(c)) for c in per_art]
        means = [statistics.fmean(c) for c in per_art]
        fastest = max(range(len(means)), key=means.__getitem__)
        out["profiles"][p.name] = {
            "cv_mean": round(statistics.fmean(cvs), 5), "cv_median": round(statistics.median(cvs), 5),
            "cv_max": round(max(cvs), 5), "cv_fastest": round(cvs[fastest], 5),
            "speedup_fastest": round(means[fastest], 3), "speedup_range": [round(min(means), 3), round(max(means), 3)],
            "ratios": [[round(x, 4) for x in row] for row in ratios[p.name]],
            "cv_two": round(_cv(two[p.name]), 5),
            "speedup_two": round(statistics.fmean(two[p.name]), 3),
            "ratios_two": [round(x, 4) for x in two[p.name]],
        }
    return out


def _paired_markdown(out: dict) -> str:
    lines = [f"# Latency noise of two targets, side by side: study `{out['paired']['study']}`", "",
             f"Command: `{out['command']}`  ", f"Date: {out['date']}  ", f"Commit: {commit_text(out.get('git') or {})}  ",
             f"Machine: {out['device']['cpu']}, {out['device']['cores']} logical CPUs, onnxruntime "
             f"{out['device']['onnxruntime']}" + (f", OpenVINO {out['device']['openvino']}" if out["device"].get("openvino") else ""),
             "", f"{out['paired']['artifacts']} artifacts and the fp32 baseline, measured interleaved on one profile and then "
             f"on the other, {out['paired']['rounds']} rounds (the order alternating); load {_load(out['paired']['load_1m'])}. "
             "CV: coefficient of variation of an artifact's speed-up over the rounds.", "",
             "| profile | CV mean | CV median | CV largest | fastest artifact: speed-up, CV | speed-ups "
             "| fastest and baseline alone: speed-up, CV |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in out["paired"]["profiles"].items():
        lines.append(f"| {name} | {r['cv_mean']:.2%} | {r['cv_median']:.2%} | {r['cv_max']:.2%} | "
                     f"{r['speedup_fastest']:.2f}x, {r['cv_fastest']:.2%} | {r['speedup_range'][0]:.2f}-{r['speedup_range'][1]:.2f}x "
                     f"| {r['speedup_two']:.2f}x, {r['cv_two']:.2%} |")
    lines += ["", "The last column is the figure of the single-profile mode (\"CV speed-up (interleaved)\"): the fastest "
              "artifact (on the first profile) and the baseline measured alone, interleaved, in alternating rounds. "
              "With every artifact interleaved, each run follows another model's, which costs caches and adds noise."]
    lines += ["", "Target: CV < 3%. Raw ratios: the .json file."]
    return "\n".join(lines) + "\n"


def _markdown(out: dict) -> str:
    lines = [f"# Measurement protocol noise and cost: profile `{out['profile']['name']}`", "",
             f"Command: `{out['command']}`{' (quick run)' if out.get('quick') else ''}  ", f"Date: {out['date']}  ",
             f"Commit: {commit_text(out.get('git') or {})}  ",
             f"Machine: {out['device']['cpu']}, {out['device']['cores']} logical CPUs, onnxruntime "
             f"{out['device']['onnxruntime']}"
             + (f", OpenVINO {out['device']['openvino']}" if out["device"].get("openvino") else "")
             + f" ({out['profile']['execution_provider']}), {out['profile']['threads']} thread(s), batch "
             f"{out['profile']['batch_size']}, affinity {out['profile']['affinity']}", "",
             "| workload | trials | protocol time / trial time | mean protocol s / trial | CV fp32 | CV compressed "
             "| CV speed-up (interleaved) | Spearman rho (2 passes) | rho (search vs pass) | artifacts | load (1 min) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in out["workloads"]:
        c, k = r["cv"], r["rank_correlation"]
        lines.append(
            f"| {r['workload']} | {r['trials']} | "
            + (f"n/a (study {r['from_study']}) | n/a | " if r.get("from_study") else
               f"{r['cost']['measure_fraction_of_trial_time']:.1%} | "
               f"{r['cost']['mean_measure_seconds']:.2f} of {r['cost']['mean_trial_seconds']:.2f} | ") +
            f"{c['fp32 baseline']['cv']:.2%} | {c['fastest compressed']['cv']:.2%} | "
            f"{c['speed-up, interleaved with the baseline']['cv']:.2%} | {k['spearman_two_passes']:.3f} | "
            f"{k['spearman_search_vs_pass']:.3f} | {k['artifacts']} ({k['latency_range_ms'][0]:.3f}-"
            f"{k['latency_range_ms'][1]:.3f} ms) | {_load(r['load_1m_during_trials'])} |")
    lines += ["", "Targets: CV < 3%, Spearman rho > 0.95, protocol < 10% of a trial. The machine is shared: the load "
              "column is the 1-minute load average during the trials (with --from-study: while this script measured; the protocol's share of a trial shrinks as "
              "load slows training down, its noise grows). Raw numbers: the .json file."]
    return "\n".join(lines) + "\n"


def _load(span: list[float] | None) -> str:
    return f"{span[0]:.1f}-{span[1]:.1f} on {os.cpu_count()} CPUs" if span else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="digits,mnist", help="comma-separated built-in workloads")
    ap.add_argument("--profile", default=str(ROOT / "hardware_profiles" / "cpu-local.yaml"))
    ap.add_argument("--space", default=str(ROOT / "search_spaces" / "default.yaml"))
    ap.add_argument("--trials", type=int, default=8, help="trials of each search")
    ap.add_argument("--repeats", type=int, default=10, help="independent measurements for the CV")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-study", default=None,
                    help="measure the artifacts of this existing study (searched on --profile, among others) instead "
                         "of searching: compares runtimes on the same artifacts; --workloads must be its workload")
    ap.add_argument("--versus", default=None,
                    help="with --from-study: a second profile; both are measured in alternating rounds (see above)")
    ap.add_argument("--storage", default=None, help="the --from-study database URL [default: sqlite:///studies/<study>.db]")
    add_run_args(ap, quick="the mnist workload alone, 4 trials, 4 repeats")
    args = ap.parse_args()
    quick_defaults(args, ap, workloads="mnist", trials=4, repeats=4)
    args.home = _prepare_home()

    from autocl.hardware import load_profile
    from autocl.runtime import set_torch_threads
    from autocl.space import load_space

    set_torch_threads()
    profile = load_profile(args.profile)
    space = load_space(args.space)
    if args.versus:
        if not args.from_study:
            raise SystemExit("--versus needs --from-study: the two targets are compared on one study's artifacts")
        other = load_profile(args.versus)
        name = args.workloads.split(",")[0].strip()
        out = {**header(profile, quick=args.quick), "paired": paired(name, args, [profile, other])}
        out["device"]["openvino"] = out["device"].get("openvino") or header(other)["device"].get("openvino")
        base = out_dir(args) / f"measure_noise-{profile.name}-vs-{other.name}-{args.from_study}"
        base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
        base.with_suffix(".md").write_text(_paired_markdown(out))
        print(_paired_markdown(out))
        return
    out = {**header(profile, quick=args.quick), "profile": profile.model_dump(mode="json"), "workloads": []}
    for name in args.workloads.split(","):
        print(f"[{name}] searching {args.trials} trials, then measuring noise", flush=True)
        out["workloads"].append(bench_workload(name.strip(), args, profile, space))
        r = out["workloads"][-1]
        print(f"[{name}] cost {r['cost']['measure_fraction_of_trial_time']:.1%} of trial time; CV "
              + ", ".join(f"{k} {v['cv']:.2%}" for k, v in r["cv"].items())
              + f"; rho {r['rank_correlation']['spearman_two_passes']:.3f}", flush=True)
    default = "measure_noise" if profile.name == "cpu-local" else f"measure_noise-{profile.name}"
    if args.from_study:
        default += f"-{args.from_study}"
    base = out_dir(args) / default
    base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    base.with_suffix(".md").write_text(_markdown(out))
    print(_markdown(out))


if __name__ == "__main__":
    main()
