"""Weight clustering: the cluster count limits each layer's distinct weights through fine-tuning,
and the study's size (palettized, deflated) sees it."""

from __future__ import annotations

import numpy as np
import onnx
import optuna
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from autocl.compress.cluster import cluster_layers, kmeans_1d
from autocl.compress.size import compressed_size, encode_tensor
from autocl.config import ClusterConfig, CompressionConfig, DistillConfig
from autocl.errors import ConfigError


def test_kmeans_limits_distinct_values_and_snap_keeps_the_limit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    clusters = cluster_layers(model, ["0", "2"], 8)
    assert all(len(torch.unique(m.weight)) <= 8 for m in (model[0], model[2]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        loss = model(torch.randn(16, 32)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        clusters.snap()
    assert all(len(torch.unique(m.weight)) <= 8 for m in (model[0], model[2]))
    centroids, index = kmeans_1d(torch.tensor([0.0, 0.1, 5.0, 5.1, 10.0]), 3)
    assert torch.allclose(centroids, torch.tensor([0.05, 5.05, 10.0])) and index.tolist() == [0, 0, 1, 1, 2]


def test_palettes_shrink_only_tensors_with_few_values():
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((64, 64)).astype(np.float32)
    shared = rng.choice(rng.standard_normal(16).astype(np.float32), size=(64, 64))
    assert len(encode_tensor(dense)) == dense.nbytes
    assert len(encode_tensor(shared)) == 16 * 4 + 64 * 64 // 2  # palette + 4-bit indices
    per_row = (shared * rng.uniform(1, 2, (64, 1))).astype(np.float32)  # 16 values per row, many overall
    assert len(encode_tensor(per_row)) == 64 * 16 * 4 + 64 * 64 // 2


def test_clustered_student_has_k_values_per_layer_and_a_smaller_size(digits, tmp_path_factory):
    from autocl.compress import Compressor

    comp = Compressor(digits, tmp_path_factory.mktemp("cache"))
    plain = comp.artifact(CompressionConfig())
    cfg = CompressionConfig(distill=DistillConfig(steps=4, batch_size=32), cluster=ClusterConfig(clusters=4))
    art = comp.artifact(cfg)
    assert art.student.key != plain.student.key and cfg.trains
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(art.path)).graph.initializer}
    for layer in comp.layers:
        w = weights.get(f"{layer}.weight")
        if w is not None and w.size > 4:
            assert len(np.unique(w)) <= 4, layer
    assert art.compressed_size_bytes < 0.3 * plain.compressed_size_bytes
    assert art.size_bytes == pytest.approx(plain.size_bytes, rel=0.01)  # dense in the file: same kernels, same cost
    assert compressed_size(plain.path) == plain.compressed_size_bytes


def test_knobs_round_trip_through_yaml(tmp_path):
    from autocl.space import load_space

    path = tmp_path / "space.yaml"
    path.write_text("name: t\nquant: {precisions: [int8], qat: [false, true]}\ncluster: {clusters: [0, 16]}\n")
    space = load_space(path)
    trial = optuna.trial.FixedTrial({"prune.ratio": 0.0, "prune.importance": "l2", "distill.temperature": 2.0,
                                     "distill.alpha": 0.5, "quant.qat": True, "cluster.clusters": 16})
    cfg = space.suggest(trial, ["a", "b"])
    assert cfg.quant.qat and cfg.cluster.clusters == 16
    assert CompressionConfig.from_dict(cfg.to_dict()) == cfg
    path.write_text("name: t\ncluster: {clusters: [1]}\n")
    with pytest.raises(ConfigError, match="cluster.clusters"):
        load_space(path)
