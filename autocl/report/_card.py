"""MODEL_CARD.md of an exported bundle, written from the facts ``autocl.export`` gathered
(the same dict it stores as ``export.json``), so the card and the JSON never disagree."""

from __future__ import annotations


def layer_rows(data, t, pruning, shares: dict[str, float]) -> list[dict]:
    """One row per layer of trial ``t``, for the model card.

    Args:
        data: The study on one profile.
        t: The trial.
        pruning: A one-member ``LayerMap`` of the trial's pruned fractions.
        shares: ``{layer: share of latency}``, possibly empty.

    Returns:
        One dict per layer: precision, channels kept, latency share and the study's sensitivity.
    """
    from autocl.report._layers import layer_precisions

    precisions = layer_precisions(data, t)
    rows = [
        {
            "layer": layer,
            "precision": precisions[layer],
            "pruning": pruning.labels[0][j],
            "removed": pruning.values[0][j],
            "latency_share": shares.get(layer),
            "sensitivity": (data.sensitivity or {}).get(layer),
        }
        for j, layer in enumerate(data.layers)
    ]
    if shares:
        rows.append({"layer": "other (reorders, activations outside layers)", "latency_share": shares.get("other")})
    return rows


def _f(x, spec: str, unit: str = "") -> str:
    return "-" if x is None else f"{format(x, spec)}{unit}"


def _latency_section(f: dict) -> list[str]:
    lat, base, v, prof = f["latency"], f.get("baseline") or {}, f["verification"], f["profile"]
    device = f.get("device") or {}
    speed, again = f.get("speedup_search"), f.get("speedup_remeasured")
    meas = prof.get("measurement", {})
    runtime = (
        f"OpenVINO {str(device['openvino']).split('-')[0]}"
        if device.get("openvino")
        else f"onnxruntime {device.get('onnxruntime', '?')}"
    )
    return [
        "## Latency",
        "",
        f"Measured with {runtime.split()[0]} on the artifact itself, profile **{prof['name']}**: "
        f"{prof.get('execution_provider')}, {prof.get('threads')} thread(s), batch {prof.get('batch_size')}, "
        f"{meas.get('warmup')} warm-up runs then up to {meas.get('repeats')} timed runs "
        f"(device: {device.get('cpu', 'unknown')}, {runtime}).",
        "",
        "| | median ms | p90 ms | IQR ms | runs |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| this model (study) | {_f(lat.get('median_ms'), '.4f')} | {_f(lat.get('p90_ms'), '.4f')} | "
        f"{_f(lat.get('iqr_ms'), '.4f')} | {lat.get('n', '-')} |",
        f"| this model (re-measured at export) | {_f(v['median_ms'], '.4f')} | {_f(v['p90_ms'], '.4f')} | "
        f"{_f(v['iqr_ms'], '.4f')} | |",
        f"| fp32 teacher | {_f(base.get('latency_ms'), '.4f')} | | {_f(base.get('latency_iqr_ms'), '.4f')} | |",
        "",
        f"Speed-up over the fp32 teacher, measured in the search in alternation with it: {_f(speed, '.2f', 'x')}"
        + (f"; when the front was re-measured: {_f(again, '.2f', 'x')}" if again is not None else "")
        + "."
        + (
            " **Flagged: not faster than fp32 on this profile** (on the search's measurement)."
            if f.get("not_faster")
            else ""
        ),
        "",
    ]


def _layers_section(f: dict) -> list[str]:
    lines = [
        "## Per layer",
        "",
        "| layer | precision | output channels | latency share | sensitivity (metric drop per precision) |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for row in f.get("layers", []):
        sens = row.get("sensitivity")
        sens_text = (
            ", ".join(f"{p}: {d:+.4f}" for p, d in sens.items() if isinstance(d, (int, float)))
            if sens
            else "not measured"
        )
        lines.append(
            f"| {row['layer']} | {row.get('precision', '')} | {row.get('pruning', '')} | "
            f"{_f(row.get('latency_share'), '.0%')} | {sens_text if 'precision' in row else ''} |"
        )
    lines += [
        "",
        "Latency shares come from onnxruntime's per-node profiler on this profile (ratios of median "
        "kernel times); channels are read from the student's graph.",
        "",
    ]
    return lines


def _legend(bits: str) -> str:
    from autocl.report._layers import precision_of

    return ", ".join(f"{c} = {precision_of(c)[0]}" for c in sorted(set(bits))) or "no layers"


def _technique_lines(config: dict) -> list[str]:
    """One line per technique of the registry the configuration turned on (``Technique.card``)."""
    from autocl.config import CompressionConfig
    from autocl.errors import AutoclError

    try:
        cfg = CompressionConfig.from_dict(dict(config), source="export.json")
    except AutoclError:  # a technique no longer installed: the card says so rather than fail
        return [f"- Techniques: {', '.join(config['techniques'])} (not installed here)."]
    return [f"- {t.card(conf)}." for t, conf in cfg.techniques_on()]


def model_card(f: dict) -> str:
    """The model card as Markdown.

    Args:
        f: The bundle's facts (what ``export.json`` holds: config, baseline, verification, workload,
            layers, ...).

    Returns:
        The Markdown text.
    """
    cfg, base, v, wl = f["config"], f.get("baseline") or {}, f["verification"], f["workload"]
    prune, distill, quant = cfg.get("prune", {}), cfg.get("distill", {}), cfg.get("quant", {})
    metric = wl["metric"]
    size_ratio = f["size_kb"] / base["size_kb"] if base.get("size_kb") and f.get("size_kb") else None
    change = f.get("metric_change")
    if change is None and f.get("metric_drop") is not None:  # export.json of an older autocl
        change = -f["metric_drop"]
    chosen = (
        f"Chosen by `--pick {f['pick']['rule']}`: {f['pick']['why']}."
        if f.get("pick")
        else f"Chosen by `--trial {f['trial']}`."
    )
    distilled = f.get("distilled")
    if distilled is None:  # export.json of an older autocl
        from autocl.study import is_distilled

        distilled = is_distilled(cfg)
    lines = [
        f"# Model card: {wl['name']}, compressed by autocl",
        "",
        f"Study `{f['study']}`, trial {f['trial']} ({f['status']} on profile `{f['profile']['name']}`). {chosen}",
        f"Exported {f['date']}.",
        "",
        "## Quality and size",
        "",
        f"| | {metric} | size KB | parameters |",
        "| --- | ---: | ---: | ---: |",
        f"| this model | {_f(f['metric'], '.4f')} | {_f(f['size_kb'], '.1f')} | {f.get('parameters', '-')} |",
        f"| fp32 teacher | {_f(base.get('metric'), '.4f')} | {_f(base.get('size_kb'), '.1f')} | |",
        "",
        f"{metric} change against the teacher: {_f(change, '+.4f')} (positive = better; {metric} is "
        f"{'higher' if wl['higher_is_better'] else 'lower'}-is-better; computed by onnxruntime over `model.onnx` on the workload's validation split). Size: "
        f"{_f(size_ratio, '.2f', 'x')} of the teacher's ONNX file.",
        "",
        *_latency_section(f),
        "## Verified at export",
        "",
        f"`model.onnx` (sha256 `{v['sha256']}`) was reloaded in a fresh onnxruntime session: {metric} "
        f"{v['metric']:.6f} (study: {v['study_metric']:.6f}, tolerance {v['metric_tolerance']:g}); median latency "
        f"{v['median_ms']:.4f} ms, inside the allowed band [{v['band_ms'][0]:.4f}, {v['band_ms'][1]:.4f}] ms (the "
        f"study's IQR widened by {v['latency_tolerance']:g} x its median). "
        + (
            "It is byte-identical to the artifact the study measured."
            if v["sha_ok"]
            else "**It was rebuilt: its sha256 differs from the artifact the study measured "
            f"(`{v['study_sha256']}`); the verification above is what vouches for it.**"
        ),
        "",
        "## How it was made",
        "",
        f"- Teacher: workload `{wl['name']}` (key `{wl['key']}`){': ' + wl['description'] if wl.get('description') else ''}.",
        f"- Structured pruning: {_f(prune.get('ratio'), '.0%')} of output channels ({prune.get('importance')} "
        f"magnitude, multiples of {prune.get('round_to')}, layers kept: {', '.join(prune.get('ignored_layers') or []) or 'none beyond the workload'}).",
        (
            f"- Distillation from the teacher: temperature {distill.get('temperature')}, alpha {distill.get('alpha')}, "
            f"{distill.get('steps')} steps, lr {distill.get('lr')}."
            if distilled
            else "- No distillation: the model was not changed, the teacher's weights are kept."
        ),
        *_technique_lines(cfg),
        f"- Quantization: per layer, bits `{f.get('bits')}` ({_legend(f.get('bits') or '')}); "
        f"{quant.get('calibration_samples')} calibration samples.",
        "",
        *_layers_section(f),
        "## Files",
        "",
        "- `model.onnx`: the quantized model (what was measured).",
        "- `weights.pt`: the pruned and distilled PyTorch state dict; `torch.load(path, weights_only=True)`.",
        f"- `config.yaml`: the configuration; `autocl apply --config config.yaml --workload {wl['name']}` "
        "rebuilds the architecture and loads `weights.pt`.",
        "- `export.json`: everything on this card, for programs.",
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {val}" for k, val in f["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


__all__ = ["layer_rows", "model_card"]
