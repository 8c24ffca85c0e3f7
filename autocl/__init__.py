"""autocl: search pruning ratio, per-layer precision and distillation temperature for the best
compressed model per hardware target, with latency measured by onnxruntime on the artifact."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_study", "search"]


def __getattr__(name: str):
    # lazy, so `import autocl` stays light (no torch, onnxruntime or optuna until they are used)
    if name in ("load_study", "search"):
        from autocl import api

        return getattr(api, name)
    raise AttributeError(f"module 'autocl' has no attribute {name!r}")
