"""Runs one peer tool's accuracy-aware quantization tuning on an fp32 ONNX model.

Executed INSIDE the peer virtual environment (``benchmarks/peers/.venv``, made by
``make peer-venv``), never imported by autocl: the peer tools pin dependencies (numpy<2, their own
onnxruntime) that must not leak into the main environment. ``benchmarks/peers/client.py`` is the
caller.

Inputs are ``.npz`` files holding arrays under the model's ONNX input names; the validation file
also holds ``y``: class labels (``--metric accuracy``) or reference embeddings (``--metric cosine``:
mean cosine similarity of each output row to the matching row of ``y``). The metric always comes
from an onnxruntime session with one intra-op thread.

Prints exactly one JSON line on stdout: ``{"tool", "version", "config", "tuning_seconds",
"metric", "baseline_metric", "trials"}``, or ``{"tool", "error"}`` and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

EVAL_BATCH = 64
CALIB_BATCH = 32


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


class PeerError(Exception):
    """A peer ran but produced no usable model; the message is one line for the report."""


def split_npz(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The input arrays of an ``.npz`` file by ONNX input name, and its ``y`` array if any."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return {k: v for k, v in arrays.items() if k != "y"}, arrays.get("y")


def rows(feed: dict[str, np.ndarray]) -> int:
    return len(next(iter(feed.values())))


def batches(feed: dict[str, np.ndarray], size: int):
    for i in range(0, rows(feed), size):
        yield {k: np.ascontiguousarray(v[i : i + size]) for k, v in feed.items()}


def score(outputs: np.ndarray, y: np.ndarray, metric: str) -> float:
    if metric == "accuracy":
        return float(np.mean(outputs.reshape(len(outputs), -1).argmax(axis=1) == y.reshape(-1)))
    a = outputs.reshape(len(outputs), -1).astype(np.float64)
    b = y.reshape(len(y), -1).astype(np.float64)
    cos = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(cos.mean())


def make_evaluator(val: dict[str, np.ndarray], y: np.ndarray, metric: str):
    """``model path -> metric`` over the validation rows, one ORT thread, first output."""

    def evaluate(model_path: str) -> float:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        outs = [sess.run(None, b)[0] for b in batches(val, EVAL_BATCH)]
        return score(np.concatenate(outs), y, metric)

    return evaluate


def summarize(cfg, model_ops: set[str]) -> dict:
    """The few knobs of an INC quantization config that say what was chosen (op types: only those
    the model has)."""
    keys = ("quant_format", "activation_type", "weight_type", "per_channel", "reduce_range",
            "calibrate_method", "quant_last_matmul", "weight_sym", "activation_sym")
    out = {"algo": type(cfg).__name__}
    for key in keys:
        if hasattr(cfg, key):
            val = getattr(cfg, key)
            val = getattr(val, "name", val)
            out[key] = val if isinstance(val, (bool, int, float, str, type(None))) else str(val)
    ops = getattr(cfg, "op_types_to_quantize", None)
    if ops:
        out["op_types"] = sorted(set(ops) & model_ops)
    return out


def quantized_ops(path: str) -> dict[str, int]:
    """Counts of the integer/quantization operators in a model: what the tuned model really runs."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        op = node.op_type
        if op.startswith("QLinear") or "Integer" in op or op in ("QuantizeLinear", "DequantizeLinear", "MatMulNBits"):
            counts[op] = counts.get(op, 0) + 1
    return counts


def run_inc(args, calib, val, y) -> dict:
    """Intel Neural Compressor (ONNX flavour): ``autotune`` over INC's own tuning sets in priority
    order (static int8, then dynamic int8, then weight-only RTN when the model has MatMul), stopping
    at the first config within ``tolerable_loss`` of the fp32 metric (INC's loss is relative)."""
    import onnx
    from onnx_neural_compressor import data_reader, utility
    from onnx_neural_compressor.quantization import config, tuning

    class Reader(data_reader.CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = batches(calib, CALIB_BATCH)

    # INC's own advice: reduce_range on CPUs without VNNI, to avoid u8s8 saturation
    reduce_range = not utility.CpuInfo().vnni
    config_set = config.StaticQuantConfig.get_config_set_for_tuning(
        reduce_range=reduce_range, calibration_sampling_size=rows(calib)
    ) + config.DynamicQuantConfig.get_config_set_for_tuning(reduce_range=reduce_range)
    model_ops = {n.op_type for n in onnx.load(args.model, load_external_data=False).graph.node}
    if "MatMul" in model_ops:  # weight-only int4/int8 (MatMulNBits) last: it only touches MatMul
        config_set.append(config.RTNConfig.get_config_set_for_tuning())
    tune = tuning.TuningConfig(config_set=config_set, tolerable_loss=args.max_drop, max_trials=args.max_trials)

    evaluate = make_evaluator(val, y, args.metric)
    results: list[float] = []
    tried: list = []
    real_quantize = tuning._quantize

    def counting_eval(path: str) -> float:
        results.append(evaluate(path))
        return results[-1]

    def recording_quantize(model_input, quant_config, calibration_data_reader=None):
        tried.append(quant_config)
        return real_quantize(model_input, quant_config=quant_config, calibration_data_reader=calibration_data_reader)

    tuning._quantize = recording_quantize  # autotune looks it up at call time: records each trial's config
    start = time.perf_counter()
    try:
        # INC logs to stdout; keep stdout for our one JSON line
        with contextlib.redirect_stdout(sys.stderr):
            model = tuning.autotune(args.model, tune, eval_fn=counting_eval, calibration_data_reader=Reader())
    except SystemExit:  # autotune calls exit(0) when no config meets the goal or eval_fn fails
        model = None
    finally:
        tuning._quantize = real_quantize
    seconds = time.perf_counter() - start
    trials = max(len(results) - 1, 0)
    # autotune also returns the last model when max_trials runs out, goal met or not
    goal = results[0] * (1 - args.max_drop) if results else float("nan")
    if model is None or not results[-1] >= goal:
        best = max(results[1:], default=float("nan"))
        raise PeerError(f"no config within tolerable_loss {args.max_drop} (relative) after {trials} trial(s); "
                        f"baseline {results[0] if results else float('nan'):.4f}, best {best:.4f}")
    onnx.save_model(model, args.out)
    return {
        "tool": "inc",
        "version": f"onnx-neural-compressor {_version('onnx-neural-compressor')}, onnxruntime {ort.__version__}",
        "config": {**summarize(tried[-1], model_ops), "quantized_ops": quantized_ops(args.out)},
        "tuning_seconds": round(seconds, 2),
        "metric": evaluate(args.out),
        "baseline_metric": results[0],
        "trials": trials,
    }


OLIVE_SEARCHED = ("quant_mode", "per_channel", "quant_format", "calibrate_method")


def run_olive(args, calib, val, y) -> dict:
    """Microsoft Olive's own automatic optimization for the CPU target: for a transformer (``--num-heads``),
    its ``OrtTransformersOptimization`` pass (onnxruntime's fusions for ``bert``), then its
    ``OnnxQuantization`` pass with Olive's own search values for ``OLIVE_SEARCHED`` (dynamic or static int8;
    per-channel; QDQ or QOperator; the calibration method). Olive evaluates each candidate on two metrics:
    its latency (priority 1) and the quality metric with a ``percent-max-degradation`` goal (relative, like
    INC's), and its best candidate is the fastest among those meeting the goal.

    olive-ai 0.13 cannot serialize a ``custom`` metric (its validator sets ``backend`` to None, and its
    serializer calls ``None.model_dump()``): ``_olive_custom_metric_fix`` makes that serializer return
    None, the value its own validator chose. Nothing else of Olive is changed."""
    import shutil
    import tempfile

    _olive_custom_metric_fix()
    work = Path(tempfile.mkdtemp(prefix="autocl-olive-"))
    try:
        return _olive_search(args, val, y, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _olive_search(args, val, y, work: Path) -> dict:
    """``run_olive`` in the folder ``work`` (Olive's cache and output)."""
    import shutil

    import olive
    from olive.workflows import run as olive_run

    here = Path(__file__).resolve().parent
    script = {"user_script": str(here / "olive_user_script.py"), "script_dir": str(here)}
    goal = {"type": "percent-max-degradation", "value": 100 * args.max_drop}
    data = {**script, "load_dataset_config": {"type": "npz_rows", "params": {"path": str(args.calib)}}}
    passes: dict = {}
    if args.num_heads:
        passes["fuse"] = {"type": "OrtTransformersOptimization", "model_type": "bert", "num_heads": args.num_heads,
                          "hidden_size": args.hidden_size}
    passes["quantize"] = {"type": "OnnxQuantization", "data_config": "calib",
                          **{k: "SEARCHABLE_VALUES" for k in OLIVE_SEARCHED}}
    run_config = {
        "input_model": {"type": "ONNXModel", "model_path": args.model},
        "systems": {"local": {"type": "LocalSystem", "accelerators": [
            {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}]}},
        "data_configs": [{"name": "calib", **data, "dataloader_config": {"batch_size": CALIB_BATCH}},
                         {"name": "timing", **data, "dataloader_config": {"batch_size": args.latency_batch}}],
        "evaluators": {"olive": {"type": "OnnxEvaluator", "metrics": [
            {"name": "latency", "type": "latency", "data_config": "timing",
             "sub_types": [{"name": "avg", "priority": 1}],
             "user_config": {"inference_settings": {"onnx": {"session_options": {
                 "intra_op_num_threads": 1, "inter_op_num_threads": 1}}}}},
            {"name": args.metric, "type": "custom",
             "user_config": {**script, "evaluate_func": "evaluate",
                             "evaluate_func_kwargs": {"val_path": str(args.val), "metric": args.metric}},
             "sub_types": [{"name": args.metric, "priority": 2, "higher_is_better": True, "goal": goal}]}]}},
        "passes": passes,
        "engine": {
            "search_strategy": {"execution_order": "joint", "sampler": "sequential", "max_iter": args.max_trials},
            "evaluator": "olive", "host": "local", "target": "local", "evaluate_input_model": True,
            "cache_dir": str(work / "cache"), "output_dir": str(work / "out"), "log_severity_level": 3,
        },
    }
    pass_types = [p["type"] for p in passes.values()]  # before Olive rewrites its config in place
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        output = olive_run(run_config)
    seconds = time.perf_counter() - start
    best = output.get_best_candidate() if output is not None else None
    if best is None or not best.model_path:
        raise PeerError(f"olive: no candidate met the goal {goal['value']:.2f}% max degradation "
                        f"within {args.max_trials} trial(s)")
    shutil.copyfile(best.model_path, args.out)
    footprint = json.loads((work / "out" / "footprint.json").read_text())
    node = footprint.get("nodes", footprint).get(best.model_id) or {}
    chosen = {k: v for k, v in (node.get("pass_run_config") or {}).items()
              if k in OLIVE_SEARCHED and isinstance(v, (str, bool, int, float))}
    trials = max(len(list((work / "cache").rglob("evaluations/*.json"))) - 1, 0)  # less the input model's
    base = output.get_input_model_metrics() or {}
    return {
        "tool": "olive",
        "version": f"olive-ai {olive.__version__}, onnxruntime {ort.__version__}",
        "config": {"passes": pass_types, **chosen, "quantized_ops": quantized_ops(args.out)},
        "tuning_seconds": round(seconds, 2),
        "metric": make_evaluator(val, y, args.metric)(args.out),
        "baseline_metric": (base.get(f"{args.metric}-{args.metric}") or {}).get("value"),
        "trials": trials,
    }


def _serialize_none_as_none(self, value):
    """What olive-ai 0.13's ``serialize_backend`` and ``serialize_metric_config`` do, and None for None."""
    if value is None or isinstance(value, str):
        return value
    return value.model_dump()


def _olive_custom_metric_fix() -> None:
    """Two bugs of olive-ai 0.13 with pydantic 2.14 that stop any ``custom`` metric (``run_olive``):

    * a custom metric's ``backend`` and its sub-metrics' ``metric_config`` are None (Olive's own validators
      set them so) and its serializers call ``None.model_dump()``: they now return None for None;
    * every ``model_dump`` of a config drops a metric's ``user_config`` (declared ``ConfigBase``, built as a
      per-type subclass) to the empty base class, losing ``evaluate_func``, and the metric Olive validates
      again from that dump has none: ``ConfigBase.model_dump`` now dumps each nested config as its own
      class (pydantic's ``serialize_as_any``).

    pydantic compiles serializers into every schema that holds them, each keeping a reference to the same
    function object: the two serializers' code is replaced in place (their bodies are otherwise olive-ai
    0.13's)."""
    from olive.common.config_utils import ConfigBase
    from olive.evaluator.metric import Metric, SubMetric
    from pydantic import BaseModel

    for model, name in ((SubMetric, "serialize_metric_config"), (Metric, "serialize_backend")):
        func = model.__pydantic_decorators__.field_serializers[name].func
        func.__code__ = _serialize_none_as_none.__code__

    def model_dump(self, **kwargs):
        kwargs.setdefault("serialize_as_any", True)
        return BaseModel.model_dump(self, **kwargs)

    ConfigBase.model_dump = model_dump  # type: ignore[method-assign]


TOOLS = {"inc": run_inc, "olive": run_olive}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tool", required=True, choices=sorted(TOOLS))
    p.add_argument("--check", action="store_true",
                   help="a dry run: import the tool and print {tool, version}; nothing else is needed")
    p.add_argument("--model", type=Path, help="fp32 ONNX model")
    p.add_argument("--calib", type=Path, help=".npz of calibration inputs by ONNX input name")
    p.add_argument("--val", type=Path, help=".npz of validation inputs plus targets 'y'")
    p.add_argument("--metric", choices=["accuracy", "cosine"])
    p.add_argument("--max-drop", type=float, default=0.01, help="tolerable metric loss, relative to fp32")
    p.add_argument("--max-trials", type=int, default=20)
    p.add_argument("--num-heads", type=int, default=0, help="a transformer's attention heads (olive: fuse it first)")
    p.add_argument("--hidden-size", type=int, default=0, help="a transformer's hidden size (with --num-heads)")
    p.add_argument("--latency-batch", type=int, default=1, help="batch of olive's own latency metric")
    p.add_argument("--out", type=Path, help="where the tuned model is written")
    args = p.parse_args(argv)
    missing = [f"--{k.replace('_', '-')}" for k in ("model", "calib", "val", "metric", "out") if getattr(args, k) is None]
    if missing and not args.check:
        p.error(f"the following arguments are required: {', '.join(missing)}")
    return args


def check(tool: str) -> dict:
    """The dry run: the tool's modules that a tuning run uses import, and its version."""
    if tool == "inc":
        from onnx_neural_compressor.quantization import config, tuning  # noqa: F401

        return {"tool": tool, "version": f"onnx-neural-compressor {_version('onnx-neural-compressor')}, "
                                         f"onnxruntime {ort.__version__}"}
    import olive
    from olive.workflows import run  # noqa: F401

    return {"tool": tool, "version": f"olive-ai {olive.__version__}, onnxruntime {ort.__version__}"}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.check:
            print(json.dumps(check(args.tool)))
            return 0
        calib, _ = split_npz(args.calib)
        val, y = split_npz(args.val)
        if y is None:
            raise PeerError(f"{args.val}: no 'y' array (validation targets)")
        args.model, args.out = str(args.model), str(args.out)
        result = TOOLS[args.tool](args, calib, val, y)
    except Exception as exc:  # a peer's failure is a result to print, not a crash
        msg = " ".join((str(exc) if isinstance(exc, PeerError) else f"{type(exc).__name__}: {exc}").split())
        print(json.dumps({"tool": args.tool, "error": msg[:500]}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
