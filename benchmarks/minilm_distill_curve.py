"""How a pruned MiniLM student's fidelity grows with distillation steps and data.

Two students are built through autocl's ``Compressor`` (the pruning every trial runs): one with
``--depth`` transformer layers removed (measured importance) and one with ``--ffn-ratio`` of each
FFN's neurons removed (Taylor importance). Each is distilled (``autocl.compress.distill.distill``,
loss 1 - cosine to the teacher's embeddings, batch 16, lr 1e-4, warm-up then a constant rate so
every checkpoint reads what that many steps give) twice: on the 1,536 review snippets of the
earlier workload (``distill_sentences=1536``) and on the workload's distillation corpus
(``--sentences``, package sentences added). At each checkpoint the fp32 student's fidelity (mean
cosine to the teacher) is computed on the validation split, which is the same 512 snippets in both
workloads (asserted). Results are rewritten after every checkpoint, so a run stopped early keeps
what it measured.

    AUTOCL_TRAIN_THREADS=1 OMP_NUM_THREADS=1 nice -n 10 python benchmarks/minilm_distill_curve.py --steps 60 240 960
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import cpu_model, log  # noqa: E402


def fidelity(student, workload) -> float:
    from autocl.workloads._minilm import _embed_sorted, mean_cosine

    (ids, mask), targets = workload.validation
    return mean_cosine(_embed_sorted(student.eval(), ids, mask), targets)


def write(out: Path, result: dict) -> None:
    out.with_name(out.name + ".json").write_text(json.dumps(result, indent=1))
    steps = sorted({s for arm in result["arms"] for s in arm["curve"]}, key=int)
    lines = [
        "# MiniLM: fidelity against distillation steps and data",
        "",
        f"Command: `{result['command']}` - {result['cpu']}, {result['date']}, load average at start "
        f"{result['load']}. The machine was shared with other jobs (2 cores, several agents): the seconds "
        "are wall time under that load, not this workload's cost alone.",
        "",
        "Fidelity: mean cosine between the fp32 student's embeddings and the teacher's on the 512 "
        "validation snippets (the workload's metric; identical validation split in both workloads). "
        f"Distillation: batch {result['batch_size']}, lr {result['lr']:g}, {result['warmup']} warm-up steps "
        "then constant, loss 1 - cosine to the teacher, unless the data column names a feature loss "
        "(distill.feature_weight), a similarity KL (distill.alpha: alpha x KL + (1 - alpha) x (1 - cosine)) or a "
        "cosine schedule (decaying to 0 at the row's last checkpoint)"
        + ", no early stop; one run per row, read at each "
        "checkpoint.",
        "",
        "| student | distillation data | MACs kept | " + " | ".join(f"{s} steps" for s in steps) + " | training s |",
        "|---|---|---|" + "---|" * len(steps) + "---|",
    ]
    for arm in result["arms"]:
        cells = [f"{arm['curve'][s]:.4f}" if s in arm["curve"] else "" for s in steps]
        lines.append(
            f"| {arm['student']} | {arm['data']}"
            + (f" + feature loss x{arm['feature_weight']:g}" if arm.get("feature_weight") else "")
            + (f", similarity KL alpha {arm['alpha']:g}" if arm.get("alpha") else "")
            + (f", {arm['schedule']} schedule" if arm.get("schedule", "constant") != "constant" else "")
            + f" | {arm['macs_kept']:.0%} | "
            + " | ".join(cells)
            + f" | {arm['seconds']:.0f} |"
        )
    lines += ["", *[f"- {n}" for n in result["notes"]], ""]
    out.with_name(out.name + ".md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[60, 240, 960], help="checkpoints")
    parser.add_argument("--sentences", default="4096", help="distillation corpus size (a count or 'all')")
    parser.add_argument("--depth", type=float, default=1, help="transformer layers removed (count)")
    parser.add_argument("--ffn-ratio", type=float, default=0.5, help="FFN neurons removed per layer")
    parser.add_argument("--head-ratio", type=float, default=0.25, help="attention heads removed per layer")
    parser.add_argument(
        "--feature-weight",
        type=float,
        default=0.0,
        help="weight of the six blocks' feature loss (distill.feature_weight)",
    )
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument(
        "--alpha", type=float, default=0.0, help="weight of the in-batch similarity KL (distill.alpha; 0: cosine only)"
    )
    parser.add_argument("--schedule", default="constant", choices=["constant", "cosine"], help="after the warm-up")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--students", nargs="+", default=["depth", "ffn"], choices=["depth", "ffn", "heads"])
    parser.add_argument(
        "--data",
        nargs="+",
        default=["old", "corpus"],
        choices=["old", "corpus"],
        help="distillation sets (run them in separate processes to use two cores)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "minilm_distill_curve"))
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="write one result from runs' JSON files and exit")
    args = parser.parse_args()
    if args.combine:
        runs = [json.loads(Path(f).read_text()) for f in args.combine]
        merged = {
            **runs[0],
            "command": " ; ".join(r["command"] for r in runs),
            "arms": [{"feature_weight": r.get("feature_weight", 0.0), **a} for r in runs for a in r["arms"]],
            "date": " / ".join(dict.fromkeys(r["date"] for r in runs)),
            "load": " / ".join(dict.fromkeys(str([round(x, 1) for x in r["load"]]) for r in runs)),
            "notes": [n for r in runs for n in r["notes"]],
        }
        write(Path(args.out), merged)
        return

    import os

    import torch

    from autocl.compress import Compressor
    from autocl.compress.distill import distill
    from autocl.compress.prune import achieved_fractions
    from autocl.config import CompressionConfig, DistillConfig, PruneConfig
    from autocl.runtime import cache_dir
    from autocl.workloads._minilm import minilm

    log("loading the two workloads (the corpus's teacher embeddings are computed once, then cached)")
    old = minilm(distill_sentences=1536)
    big = minilm(distill_sentences=args.sentences)
    for a, b in zip((*old.validation[0], old.validation[1]), (*big.validation[0], big.validation[1]), strict=True):
        assert np.array_equal(a, b), "the two workloads' validation splits differ"
    warmup = 6
    if args.feature_weight and not big.feature_layers:
        parser.error("--feature-weight: the workload names no feature layers")
    cfg_d = DistillConfig(
        temperature=0.05,
        alpha=args.alpha,
        steps=max(args.steps),
        lr=args.lr,
        batch_size=args.batch_size,
        schedule=args.schedule,
        warmup_steps=warmup,
        feature_weight=args.feature_weight,
    )
    prunes = {
        "depth": (f"depth -{args.depth:g} (importance)", PruneConfig(depth=args.depth, depth_criterion="importance")),
        "ffn": (
            f"FFN -{args.ffn_ratio * 100:g}% (taylor)",
            PruneConfig(ratio=args.ffn_ratio, head_ratio=0.0, importance="taylor", round_to=8),
        ),
        "heads": (
            f"heads -{args.head_ratio * 100:g}% (taylor)",
            PruneConfig(ratio=0.0, head_ratio=args.head_ratio, importance="taylor", round_to=8),
        ),
    }
    result = {
        "command": "AUTOCL_TRAIN_THREADS="
        + os.environ.get("AUTOCL_TRAIN_THREADS", "")
        + " OMP_NUM_THREADS="
        + os.environ.get("OMP_NUM_THREADS", "")
        + " nice -n 10 python "
        + " ".join(shlex.quote(a) for a in ["benchmarks/minilm_distill_curve.py", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": list(os.getloadavg()),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup": warmup,
        "feature_weight": args.feature_weight,
        "sentences": {"old": len(old.train[1]), "corpus": len(big.train[1])},
        "arms": [],
        "notes": [],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arms = (("1,536 review snippets (earlier)", old), (f"{len(big.train[1]):,} sentences (corpus)", big))
    for which in args.students:
        label, prune = prunes[which]
        for data, w in [(d, w) for k, (d, w) in zip(("old", "corpus"), arms, strict=True) if k in args.data]:
            comp = Compressor(w, cache_dir())
            student, features = comp._architecture(CompressionConfig(prune=prune))
            arm = {
                "student": label,
                "data": data,
                "feature_weight": args.feature_weight,
                "alpha": args.alpha,
                "schedule": args.schedule,
                "rows": len(w.train[1]),
                "structure": comp.structure,
                "macs_kept": achieved_fractions(w.model, student, w.example_inputs())["macs"],
                "curve": {},
                "seconds": 0.0,
            }
            result["arms"].append(arm)
            arm["curve"]["0"] = fidelity(student, w)
            log(f"{label} on {data}: {arm['curve']['0']:.4f} before distillation")
            write(out, result)
            t0 = time.time()

            evaluating = [0.0]

            def on_step(
                step: int,
                total: int,
                student=student,
                arm=arm,
                w=w,
                t0=t0,
                label=label,
                data=data,
                evaluating=evaluating,
            ) -> None:
                if step in args.steps:
                    t1 = time.time()
                    arm["curve"][str(step)] = fidelity(student, w)
                    student.train()
                    evaluating[0] += time.time() - t1
                    arm["seconds"] = time.time() - t0 - evaluating[0]
                    log(f"{label} on {data}: {arm['curve'][str(step)]:.4f} after {step} steps ({arm['seconds']:.0f} s)")
                    write(out, result)

            x = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in w.train[0])
            y = torch.from_numpy(np.ascontiguousarray(w.train[1]))
            distill(
                student,
                x,
                y,
                y,
                cfg_d,
                output_kind="embedding",
                on_step=on_step,
                teacher_features=comp._features if args.feature_weight else None,
                feature_map=features,
            )
    write(out, result)
    log(f"wrote {out}.md")


if __name__ == "__main__":
    main()
