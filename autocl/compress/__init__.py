"""Compression passes (prune, distill, export, quantize) and the pipeline that runs them in order."""

from autocl.compress._cache import CacheLayout, file_sha256
from autocl.compress.adaptive_bn import adapt_batchnorm
from autocl.compress.onnx_export import export_onnx, layer_nodes, module_of, output_channels
from autocl.compress.pipeline import Artifact, Compressor, Student
from autocl.compress.prune import count_parameters, prune_model, weight_sparsity
from autocl.compress.quantize import layer_precisions, quantize_model, quantized_nodes
from autocl.compress.support import layer_op_types, refusals, unsupported_reason

__all__ = [
    "Artifact",
    "CacheLayout",
    "Compressor",
    "Student",
    "adapt_batchnorm",
    "count_parameters",
    "export_onnx",
    "file_sha256",
    "layer_nodes",
    "layer_op_types",
    "layer_precisions",
    "module_of",
    "output_channels",
    "prune_model",
    "quantize_model",
    "quantized_nodes",
    "refusals",
    "unsupported_reason",
    "weight_sparsity",
]
