"""Studies for the report, export and API tests.

``synthetic_study`` builds an in-memory study whose numbers are chosen by the test, so fronts,
picks and hypervolumes can be computed by hand. ``searched_study`` runs one real search on the
``digits`` workload (once per session, shared by every test file that needs real artifacts), with
enqueued trials so it always holds both pruned and unpruned members.
"""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

LAYERS = ["conv1", "conv2", "fc"]
PROFILE = "p1"


def trial_row(metric, latency, size, *, bits="88f", ratio=0.0, constraints=None, profiles=None, error=None,
              state=None, extra=None) -> dict:
    return dict(metric=metric, latency=latency, size=size, bits=bits, ratio=ratio, constraints=constraints,
                profiles=profiles, error=error, state=state, extra=extra or {})


def config(ratio: float, layers: dict) -> dict:
    return {"type": "autocl.CompressionConfig", "version": 1,
            "prune": {"ratio": ratio, "importance": "l2", "ignored_layers": [], "round_to": 8},
            "distill": {"temperature": 4.0, "alpha": 0.5, "steps": 8, "lr": 0.001, "batch_size": 32},
            "quant": {"default": "fp32", "layers": layers, "calibration_samples": 32}}


def _attrs(r: dict) -> dict:
    code = {"8": "int8", "f": "fp32", "h": "fp16", "4": "int4"}
    layers = {layer: code.get(c, "fp32") for layer, c in zip(LAYERS, r["bits"])}
    profiles = r["profiles"] or {PROFILE: r["latency"]}
    return {
        "config": config(r["ratio"], layers), "bits": r["bits"], "size_bytes": r["size"] * 1024, "artifact_sha256": "0" * 64, "student_key": "",
        "measurements": {p: {"median_ms": lat, "p90_ms": lat * 1.1, "iqr_ms": lat * 0.05, "mean_ms": lat, "n": 5,
                             "batch_size": 1, "samples_ms": [lat] * 5} for p, lat in profiles.items()},
        **r["extra"],
    }


def synthetic_study(rows: list[dict], *, baseline: dict | None = None, higher_is_better: bool = True,
                    sensitivity: dict | None = None, name: str = "syn", storage=None) -> optuna.Study:
    """A study holding ``rows`` (see ``trial_row``) as trials, numbered in order."""
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=["maximize" if higher_is_better else "minimize", "minimize", "minimize"])
    study.set_metric_names(["metric", "latency_ms", "size_kb"])
    study.set_user_attr("workload", {"name": "toy", "metric": "accuracy", "higher_is_better": higher_is_better,
                                     "layers": LAYERS})
    study.set_user_attr("profile", {"name": PROFILE, "threads": 1, "batch_size": 1})
    study.set_user_attr("fingerprint", {"workload": "toy", "workload_key": "k"})
    if baseline is not None:
        study.set_user_attr("baseline", baseline)
    if sensitivity is not None:
        study.set_user_attr("sensitivity", sensitivity)
    dists = {"prune.ratio": CategoricalDistribution([0.0, 0.25, 0.5]),
             **{f"bits.{layer}": CategoricalDistribution(["fp32", "int8"]) for layer in LAYERS}}
    for r in rows:
        params = {"prune.ratio": r["ratio"], **{f"bits.{layer}": "int8" if c == "8" else "fp32"
                                                for layer, c in zip(LAYERS, r["bits"])}}
        state = r["state"] or (TrialState.FAIL if r["error"] else TrialState.COMPLETE)
        primary = (r["profiles"] or {PROFILE: r["latency"]}).get(PROFILE, r["latency"])
        attrs = _attrs(r) if state == TrialState.COMPLETE else {"bits": r["bits"]}
        if state == TrialState.COMPLETE and (baseline or {}).get("latency_ms") and "speedup" not in attrs:
            # what the search stores: the fp32 median over the trial's, measured in the trial
            attrs["speedup"] = {p: baseline["latency_ms"] / m["median_ms"] for p, m in attrs["measurements"].items()}
        if r["error"]:
            attrs["error"] = r["error"]
        system = {"constraints": list(r["constraints"])} if r["constraints"] is not None else None
        study.add_trial(optuna.trial.create_trial(
            state=state, values=[r["metric"], primary, r["size"]] if state == TrialState.COMPLETE else None,
            params=params, distributions=dists, user_attrs=attrs, system_attrs=system))
    return study


_SEARCHED: dict[str, tuple[str, str]] = {}


def searched_study(tmp_path_factory, digits, fast_space, fast_profile) -> tuple[str, str]:
    """(storage URL, study name) of a real search on ``digits``: the whole-model int8 reference,
    a 50%-pruned student with int8 convs, an all-fp32 unpruned model, and two sampled trials."""
    if "study" not in _SEARCHED:
        from autocl.study import run_search

        url = f"sqlite:///{tmp_path_factory.mktemp('searched') / 'search.db'}"
        run_search(digits, fast_space, fast_profile, study_name="real", storage=url, n_trials=1)
        study = optuna.load_study(study_name="real", storage=url)
        layers = digits.layer_names()
        study.enqueue_trial({"prune.ratio": 0.5, "distill.temperature": 4.0,
                             **{f"bits.{n}": ("fp32" if n == "fc" else "int8") for n in layers}})
        study.enqueue_trial({"prune.ratio": 0.0, **{f"bits.{n}": "fp32" for n in layers}})
        run_search(digits, fast_space, fast_profile, study_name="real", storage=url, n_trials=4)
        _SEARCHED["study"] = (url, "real")
    return _SEARCHED["study"]


__all__ = ["LAYERS", "PROFILE", "searched_study", "synthetic_study", "trial_row"]
