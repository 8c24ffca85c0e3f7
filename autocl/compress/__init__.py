"""Compression passes (prune, distill, export, quantize) and the pipeline that runs them in order."""

from autocl.compress._budget import (
    CacheBudget,
    EvictionPlan,
    cache_max,
    cache_usage,
    evict,
    format_size,
    parse_size,
    plan_eviction,
)
from autocl.compress._cache import (
    ARTIFACT,
    CHECKPOINT,
    STUDENT,
    CacheEntry,
    CacheLayout,
    checkpoint_key,
    file_sha256,
    teacher_files,
)
from autocl.compress.adaptive_bn import adapt_batchnorm
from autocl.compress.onnx_export import export_onnx, layer_nodes, module_of, output_channels
from autocl.compress.pipeline import Artifact, Compressor, Student
from autocl.compress.prune import count_parameters, prune_model, weight_sparsity
from autocl.compress.quantize import layer_precisions, quantize_model, quantized_nodes
from autocl.compress.support import layer_op_types, refusals, unsupported_reason

__all__ = [
    "ARTIFACT",
    "CHECKPOINT",
    "STUDENT",
    "Artifact",
    "CacheBudget",
    "CacheEntry",
    "CacheLayout",
    "Compressor",
    "EvictionPlan",
    "Student",
    "adapt_batchnorm",
    "cache_max",
    "cache_usage",
    "checkpoint_key",
    "count_parameters",
    "evict",
    "export_onnx",
    "file_sha256",
    "format_size",
    "layer_nodes",
    "layer_op_types",
    "layer_precisions",
    "module_of",
    "output_channels",
    "parse_size",
    "plan_eviction",
    "prune_model",
    "quantize_model",
    "quantized_nodes",
    "refusals",
    "teacher_files",
    "unsupported_reason",
    "weight_sparsity",
]
