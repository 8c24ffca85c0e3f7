"""The peer tools' rows of ``compare_baselines``: a dry run of each first, then each one's tuning.

A peer that cannot run (no venv, a crash, a timeout, no configuration within the bound) ends the
benchmark with exit status 2 and the reason, unless the user named it with ``--allow-missing-peer``:
then it is recorded as missing and the comparison says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _record import log

PEERS = {"inc": "INC accuracy-aware tuning", "olive": "Olive auto-optimization"}
DRY_RUN_S = 600  # an import of torch and the tool: seconds on a quiet machine, minutes on a loaded one


class PeerMissing(SystemExit):
    """A peer that cannot run and was not allowed to be missing: exit status 2, the reason on stderr."""

    def __init__(self, tool: str, error: str) -> None:
        print(
            f"compare_baselines: peer {tool} cannot run: {error}. Fix it (`make peer-venv` installs the "
            f"peers), or pass --allow-missing-peer {tool} to go on without it.",
            file=sys.stderr,
            flush=True,
        )
        super().__init__(2)


def check_peers(names: list[str], allowed: set[str]) -> dict[str, dict]:
    """Each peer's dry run (``client.check_peer``): name -> {"tool", "version"} or {"tool", "error"}."""
    from client import check_peer

    out = {}
    for name in names:
        log(f"peer {name}: dry run")
        out[name] = check_peer(name, DRY_RUN_S)
        if "error" in out[name] and name not in allowed:
            raise PeerMissing(name, out[name]["error"])
    return out


def versions(checked: dict[str, dict]) -> dict[str, str]:
    return {k: v.get("version") or f"missing: {v.get('error')}" for k, v in checked.items()}


def transformer_shape(w) -> dict[str, int]:
    """``{"num_heads", "hidden_size"}`` of a Hugging Face encoder inside the workload's model, or of the
    first attention module with Hugging Face's attributes (the built-in ViT's), else {}."""
    model = getattr(w.model, "bert", w.model)
    cfg = getattr(model, "config", None)
    heads, hidden = getattr(cfg, "num_attention_heads", 0), getattr(cfg, "hidden_size", 0)
    if not (heads and hidden) and hasattr(w.model, "modules"):
        attention = next((m for m in w.model.modules() if hasattr(m, "num_attention_heads")), None)
        heads, hidden = getattr(attention, "num_attention_heads", 0), getattr(attention, "all_head_size", 0)
    return {"num_heads": heads, "hidden_size": hidden} if heads and hidden else {}


def run_peers(
    w, fp32: Path, feeds, baseline_metric: float, args, work: Path, checked: dict[str, dict], batch_size: int
) -> dict[str, dict]:
    """Each peer's tuning of ``fp32``: name -> its result (with "path") or its error."""
    import numpy as np
    from client import run_peer

    calib = {n: np.concatenate([f[n] for f in feeds]) for n in w.input_names}
    xs = w.validation[0] if isinstance(w.validation[0], tuple) else (w.validation[0],)
    val = dict(zip(w.input_names, xs, strict=True))
    metric = "accuracy" if w.output_kind == "logits" else "cosine"
    # the peers' tolerable loss is relative to the fp32 metric; autocl's drop is in the metric's units
    rel = args.max_drop / abs(baseline_metric) if baseline_metric else args.max_drop
    out: dict[str, dict] = {}
    for name in args.peers:
        if "error" in checked[name]:
            out[name] = checked[name]
            continue
        log(f"peer {name}: {PEERS[name]}")
        options: dict[str, object] = {"max_trials": args.peer_trials}
        if name == "olive":
            options.update(transformer_shape(w), latency_batch=batch_size)
        path = work / f"{w.name}-{name}.onnx"
        result = run_peer(
            name, fp32, calib, val, np.asarray(w.validation[1]), metric, rel, path, int(args.peer_timeout), options
        )
        if "error" in result:
            if name not in args.allow_missing_peer:
                raise PeerMissing(name, result["error"])
            log(f"peer {name} could not run (allowed to be missing): {result['error']}")
        else:
            result["path"] = str(path)
        out[name] = result
    return out
