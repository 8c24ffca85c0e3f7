"""autocl: search pruning ratio, per-layer precision and distillation temperature for the best
compressed model per hardware target, with latency measured by onnxruntime on the artifact."""

__version__ = "0.1.0"
