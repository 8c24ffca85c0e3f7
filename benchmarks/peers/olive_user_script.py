"""Olive's user script for ``run_peer.py --tool olive``: loaded by Olive itself, inside the Olive venv.

It registers the ``.npz`` calibration rows as an Olive dataset and gives Olive a custom metric
that scores a candidate the same way ``run_peer.py`` scores INC's (one ORT thread, first output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from olive.data.registry import Registry

import run_peer


class NpzRows(torch.utils.data.Dataset):
    """One row per item, as ``({input name: tensor}, label)``: the shape Olive's calibration reader wants."""

    def __init__(self, path: str):
        self.feed, _ = run_peer.split_npz(Path(path))

    def __len__(self) -> int:
        return run_peer.rows(self.feed)

    def __getitem__(self, i: int):
        return {k: torch.from_numpy(np.ascontiguousarray(v[i])) for k, v in self.feed.items()}, 0


@Registry.register_dataset()
def npz_rows(path: str, **kwargs):
    return NpzRows(path)


def evaluate(model, device, execution_providers, val_path: str, metric: str) -> float:
    """Olive's custom ``evaluate_func``: the metric of ``model`` on the validation ``.npz``."""
    val, y = run_peer.split_npz(Path(val_path))
    return run_peer.make_evaluator(val, y, metric)(model.model_path)
