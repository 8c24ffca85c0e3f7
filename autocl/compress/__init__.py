"""Compression passes (prune, distill, export, quantize) and the pipeline that runs them in order."""

from autocl.compress.onnx_export import export_onnx, layer_nodes
from autocl.compress.pipeline import Artifact, Compressor, Student, file_sha256
from autocl.compress.prune import count_parameters, prune_model
from autocl.compress.quantize import quantize_model, quantized_nodes

__all__ = [
    "Artifact", "Compressor", "Student", "count_parameters", "export_onnx", "file_sha256", "layer_nodes",
    "prune_model", "quantize_model", "quantized_nodes",
]
