"""Chunking, BERT masking statistics, whole-word masking and packing."""

import random

import numpy as np
import pytest
import seqio
import tensorflow as tf

from gatortron_jax.pretraining import preprocessors
from gatortron_jax.pretraining.feature_converters import MLMFeatureConverter
from gatortron_jax.text.vocab import BertSentencePieceVocabulary, train_sentencepiece

SEQ = 64


@pytest.fixture(scope="module")
def text() -> str:
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(400)]
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) for _ in range(1500))


@pytest.fixture(scope="module")
def vocab(text, tmp_path_factory) -> BertSentencePieceVocabulary:
    d = tmp_path_factory.mktemp("mlm_vocab")
    (d / "text.txt").write_text(text)
    return BertSentencePieceVocabulary(train_sentencepiece([str(d / "text.txt")], str(d / "spm"), 300))


def _ids_dataset(rows) -> tf.data.Dataset:
    return tf.data.Dataset.from_generator(
        lambda: ({"inputs": np.asarray(r, np.int32)} for r in rows),
        output_signature={"inputs": tf.TensorSpec([None], tf.int32)},
    )


def _mask(ds, vocab, seed, **kwargs):
    with seqio.utils.map_seed_manager(seed):
        return list(preprocessors.mlm_mask(ds, vocabulary=vocab, **kwargs).as_numpy_iterator())


# ----------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("n", [0, 1, SEQ - 2, SEQ - 1, 5 * (SEQ - 2), 1000])
def test_every_token_lands_in_exactly_one_chunk(vocab, n):
    doc = list(range(6, 6 + n))
    chunks = list(
        preprocessors.split_into_chunks(_ids_dataset([doc]), {"inputs": SEQ}, vocab).as_numpy_iterator()
    )
    assert len(chunks) == -(-n // (SEQ - 2))
    for c in chunks:
        ids = c["inputs"]
        assert ids.dtype == np.int32 and 3 <= len(ids) <= SEQ
        assert ids[0] == vocab.cls_id and ids[-1] == vocab.sep_id
    body = [t for c in chunks for t in c["inputs"][1:-1].tolist()]
    assert body == doc


def test_chunking_a_real_tokenized_document(vocab, text):
    ds = tf.data.Dataset.from_tensors({"text": text})
    ds = preprocessors.tokenize(preprocessors.rekey_text(ds), {"inputs": seqio.Feature(vocab, add_eos=False)})
    chunks = list(preprocessors.split_into_chunks(ds, {"inputs": SEQ}, vocab).as_numpy_iterator())
    assert set(chunks[0]) == {"inputs"}
    body = np.concatenate([c["inputs"][1:-1] for c in chunks]).tolist()
    assert body == list(vocab.encode(text)) and len(body) > 10_000
    assert all(len(c["inputs"]) == SEQ for c in chunks[:-1])


def test_too_short_sequence_length_is_rejected(vocab):
    with pytest.raises(ValueError, match=">= 3"):
        preprocessors.split_into_chunks(_ids_dataset([[7]]), {"inputs": 2}, vocab)


# ----------------------------------------------------------------------------- masking


@pytest.fixture(scope="module")
def masked(vocab):
    rng = np.random.default_rng(0)
    rows = [[vocab.cls_id, *rng.integers(6, vocab.vocab_size, 98).tolist(), vocab.sep_id] for _ in range(600)]
    return _mask(_ids_dataset(rows), vocab, seed=11)


def test_masking_statistics(vocab, masked):
    inputs = np.concatenate([m["inputs"] for m in masked])
    targets = np.concatenate([m["targets"] for m in masked])
    weights = np.concatenate([m["mlm_weights"] for m in masked])
    assert weights.dtype == np.float32 and set(np.unique(weights)) <= {0.0, 1.0}
    special = np.isin(targets, sorted(vocab.special_ids))
    candidates = ~special
    assert candidates.sum() >= 50_000
    selected = weights == 1.0
    assert not (selected & special).any(), "special ids must never be selected"
    assert (inputs[special] == targets[special]).all()
    assert abs(selected[candidates].mean() - 0.15) < 0.01

    changed = inputs != targets
    assert not (changed & ~selected).any(), "every corrupted position must carry weight 1"
    as_mask = selected & (inputs == vocab.mask_id)
    as_random = selected & changed & (inputs != vocab.mask_id)
    unchanged = selected & ~changed
    n = selected.sum()
    assert abs(as_mask.sum() / n - 0.8) < 0.02
    assert abs(as_random.sum() / n - 0.1) < 0.02
    assert abs(unchanged.sum() / n - 0.1) < 0.02
    assert not np.isin(inputs[as_random], sorted(vocab.special_ids)).any()
    assert len(np.unique(inputs[as_random])) > 100, "replacements should cover the vocabulary"


def test_masking_is_deterministic_given_seed(vocab):
    rows = [[vocab.cls_id, *range(6, 200), vocab.sep_id]] * 20
    a = _mask(_ids_dataset(rows), vocab, seed=5)
    b = _mask(_ids_dataset(rows), vocab, seed=5)
    c = _mask(_ids_dataset(rows), vocab, seed=6)
    same = lambda x, y: all((p["inputs"] == q["inputs"]).all() and (p["mlm_weights"] == q["mlm_weights"]).all() for p, q in zip(x, y))
    assert same(a, b) and not same(a, c)
    assert not all((a[0]["inputs"] == m["inputs"]).all() for m in a[1:]), "each row needs its own mask"


def _np_word_ids(ids: np.ndarray, word_start: np.ndarray, special: np.ndarray) -> np.ndarray:
    starts = word_start[ids] | special[ids] | np.concatenate([[True], special[ids][:-1]])
    return np.cumsum(starts) - 1


def test_whole_word_masking_selects_whole_words(vocab, text):
    ds = tf.data.Dataset.from_tensors({"text": text})
    ds = preprocessors.tokenize(preprocessors.rekey_text(ds), {"inputs": seqio.Feature(vocab, add_eos=False)})
    ds = preprocessors.split_into_chunks(ds, {"inputs": SEQ}, vocab)
    out = _mask(ds, vocab, seed=3, whole_word=True)
    word_start = vocab.word_start_mask()
    special = np.zeros(vocab.vocab_size, bool)
    special[sorted(vocab.special_ids)] = True
    multi_piece_words_selected = 0
    total = selected_total = 0
    for ex in out:
        ids, sel = ex["targets"], ex["mlm_weights"] == 1.0
        assert not sel[special[ids]].any()
        words = _np_word_ids(ids, word_start, special)
        for w in np.unique(words):
            members = sel[words == w]
            assert members.all() or not members.any(), "a word must be masked all-or-nothing"
            multi_piece_words_selected += members.all() and len(members) > 1
        total += (~special[ids]).sum()
        selected_total += sel.sum()
    assert multi_piece_words_selected > 50
    assert abs(selected_total / total - 0.15) < 0.03


# ----------------------------------------------------------------------------- packing


def _task_examples(docs: list[list[int]], vocab) -> list[dict]:
    """Masked task examples whose documents are identifiable by their token value."""
    return _mask(
        preprocessors.split_into_chunks(_ids_dataset(docs), {"inputs": 16}, vocab), vocab, seed=1
    )


def test_packing_never_mixes_documents(vocab):
    rng = np.random.default_rng(1)
    docs = [[10 + d] * int(rng.integers(1, 40)) for d in range(60)]  # doc d is all token 10+d
    examples = _task_examples(docs, vocab)
    ds = tf.data.Dataset.from_generator(
        lambda: iter(examples),
        output_signature={
            "inputs": tf.TensorSpec([None], tf.int32),
            "targets": tf.TensorSpec([None], tf.int32),
            "mlm_weights": tf.TensorSpec([None], tf.float32),
        },
    )
    lengths = {"inputs": 16, "targets": 16, "mlm_weights": 16}
    rows = list(MLMFeatureConverter(pack=True)(ds, lengths).as_numpy_iterator())
    assert len(rows) < len(examples), "several chunks should share a row"
    n_weights = 0
    for r in rows:
        assert set(r) == {"input_ids", "token_type_ids", "segment_ids", "position_ids", "mlm_targets", "mlm_weights"}
        seg, pos, tgt = r["segment_ids"], r["position_ids"], r["mlm_targets"]
        assert (r["token_type_ids"] == 0).all()
        real = seg > 0
        assert (r["input_ids"][~real] == 0).all() and (r["mlm_weights"][~real] == 0).all()
        attend = (seg[:, None] == seg[None, :]) & real[:, None] & real[None, :]
        doc_of = np.where(np.isin(tgt, sorted(vocab.special_ids)), -1, tgt)
        for i, j in zip(*np.nonzero(attend)):
            assert doc_of[i] == doc_of[j] or -1 in (doc_of[i], doc_of[j]), "cross-document attention"
        for s in np.unique(seg[real]):
            idx = np.nonzero(seg == s)[0]
            assert (np.diff(idx) == 1).all()
            assert pos[idx].tolist() == list(range(len(idx))), "positions restart per segment"
            assert tgt[idx[0]] == vocab.cls_id and tgt[idx[-1]] == vocab.sep_id
            assert len(set(doc_of[idx]) - {-1}) == 1
        n_weights += r["mlm_weights"].sum()
    assert n_weights == sum(e["mlm_weights"].sum() for e in examples), "weights survive packing"


def test_unpacked_rows_are_padded(vocab):
    examples = _task_examples([[7] * 30], vocab)
    ds = tf.data.Dataset.from_generator(
        lambda: iter(examples),
        output_signature={
            "inputs": tf.TensorSpec([None], tf.int32),
            "targets": tf.TensorSpec([None], tf.int32),
            "mlm_weights": tf.TensorSpec([None], tf.float32),
        },
    )
    rows = list(MLMFeatureConverter(pack=False)(ds, {"inputs": 16, "targets": 16, "mlm_weights": 16}).as_numpy_iterator())
    assert len(rows) == len(examples) == 3  # 30 tokens in bodies of 14
    for r, e in zip(rows, examples):
        n = len(e["inputs"])
        assert r["segment_ids"].tolist() == [1] * n + [0] * (16 - n)
        assert r["position_ids"][:n].tolist() == list(range(n)) and (r["position_ids"][n:] == 0).all()
        assert (r["mlm_weights"][:n] == e["mlm_weights"]).all() and (r["mlm_weights"][n:] == 0).all()
        assert (r["input_ids"][:n] == e["inputs"]).all() and (r["mlm_targets"][:n] == e["targets"]).all()


def test_overlong_chunk_is_an_error_not_a_silent_trim(vocab):
    ds = tf.data.Dataset.from_tensors(
        {"inputs": tf.ones([20], tf.int32) * 7, "targets": tf.ones([20], tf.int32) * 7, "mlm_weights": tf.zeros([20])}
    )
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(MLMFeatureConverter(pack=True)(ds, {"inputs": 16, "targets": 16, "mlm_weights": 16}))
