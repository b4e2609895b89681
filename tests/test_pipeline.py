"""End-to-end: corpus dir + vocab -> registered task -> deterministic model batches."""

import itertools
import random

import numpy as np
import pytest
import seqio

from gatortron_jax.pretraining import pipeline, seqio_tasks as tasks
from gatortron_jax.text.vocab import train_sentencepiece
from gatortron_jax.core.errors import ConfigError

SEQ, BATCH = 32, 4
FEATURES = {
    "input_ids": np.int32,
    "token_type_ids": np.int32,
    "segment_ids": np.int32,
    "position_ids": np.int32,
    "mlm_targets": np.int32,
    "mlm_weights": np.float32,
}


@pytest.fixture(scope="module")
def task_name(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("pipeline")
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(24):
        lines = (" ".join(rng.choice(words) for _ in range(rng.randint(4, 15))) for _ in range(rng.randint(1, 8)))
        (corpus / f"note{i:02d}.txt").write_text("\n".join(lines))
    model = train_sentencepiece([str(corpus)], str(root / "spm"), 300)
    return tasks.register_mlm_corpus_task("test_pipeline_mlm", str(corpus), model, validation_fraction=0.2).name


def _batches(task_name, n=None, **kwargs):
    args = dict(split="train", sequence_length=SEQ, batch_size=BATCH, shuffle=True, seed=0, num_epochs=1)
    args.update(kwargs)
    ds = pipeline.get_mlm_dataset(task_name, **args)
    it = ds.as_numpy_iterator()
    return list(it if n is None else itertools.islice(it, n))


def test_batches_have_model_features(task_name):
    batches = _batches(task_name)
    assert batches
    for b in batches:
        assert {k: v.dtype for k, v in b.items()} == FEATURES
        assert all(v.shape == (BATCH, SEQ) for v in b.values())
        real = b["segment_ids"] > 0
        changed = b["input_ids"] != b["mlm_targets"]
        assert (b["mlm_weights"][changed] == 1).all() and (b["mlm_weights"][~real] == 0).all()
        assert (b["mlm_targets"][real] > 0).all() and (b["mlm_targets"][~real] == 0).all()
    weights = np.concatenate([b["mlm_weights"][b["segment_ids"] > 0] for b in batches])
    assert 0.05 < weights.mean() < 0.2  # ~15% of non-special tokens


def test_same_seed_same_batches_and_resume_by_skipping(task_name):
    a = _batches(task_name, 6, num_epochs=None, seed=7)
    b = _batches(task_name, 6, num_epochs=None, seed=7)
    for x, y in zip(a, b):
        for k in FEATURES:
            np.testing.assert_array_equal(x[k], y[k])
    ds = pipeline.get_mlm_dataset(
        task_name, "train", sequence_length=SEQ, batch_size=BATCH, shuffle=True, seed=7
    ).skip(4)
    resumed = list(itertools.islice(ds.as_numpy_iterator(), 2))
    for x, y in zip(a[4:], resumed):
        np.testing.assert_array_equal(x["input_ids"], y["input_ids"])


def test_different_seed_different_masks(task_name):
    a = _batches(task_name, shuffle=False, seed=1)
    b = _batches(task_name, shuffle=False, seed=2)
    assert len(a) == len(b)
    for x, y in zip(a, b):  # same text in the same order ...
        np.testing.assert_array_equal(x["mlm_targets"], y["mlm_targets"])
    assert any((x["mlm_weights"] != y["mlm_weights"]).any() for x, y in zip(a, b))  # ... masked differently


def test_each_epoch_gets_fresh_masks(task_name):
    one = _batches(task_name, shuffle=False, pack=False, batch_size=1)
    two = _batches(task_name, shuffle=False, pack=False, batch_size=1, num_epochs=2)
    n = len(one)
    assert len(two) == 2 * n
    for x, y in zip(two[:n], two[n:]):
        np.testing.assert_array_equal(x["mlm_targets"], y["mlm_targets"])
    assert any((x["mlm_weights"] != y["mlm_weights"]).any() for x, y in zip(two[:n], two[n:]))
    for x, y in zip(one, two[:n]):
        np.testing.assert_array_equal(x["input_ids"], y["input_ids"])


def test_unpacked_rows_hold_one_chunk(task_name):
    for b in _batches(task_name, pack=False):
        assert set(np.unique(b["segment_ids"])) <= {0, 1}
        for row_tgt, row_seg in zip(b["mlm_targets"], b["segment_ids"]):
            n = int(row_seg.sum())
            assert row_tgt[0] == 3 and row_tgt[n - 1] == 4  # [CLS] ... [SEP]


def test_shards_are_disjoint_and_complete(task_name):
    def chunks(**kw):
        rows = [r for b in _batches(task_name, shuffle=False, pack=False, batch_size=1, **kw) for r in b["mlm_targets"]]
        return sorted(tuple(r[r > 0]) for r in rows)

    full = chunks()
    s0, s1 = chunks(shard_index=0, num_shards=2), chunks(shard_index=1, num_shards=2)
    assert s0 and s1 and sorted(s0 + s1) == full


def test_validation_split(task_name):
    assert _batches(task_name, split="validation", batch_size=1, pack=False, shuffle=False)


def test_bad_arguments_are_config_errors(task_name):
    with pytest.raises(ConfigError, match="not registered"):
        _batches("no_such_task")
    with pytest.raises(ConfigError, match="no split 'test'"):
        _batches(task_name, split="test")
    with pytest.raises(ConfigError, match="shard_index"):
        _batches(task_name, shard_index=2, num_shards=2)


def test_reregistering_replaces_the_task(task_name):
    base = seqio.TaskRegistry.get(task_name)
    args = (base.source.corpus_dir, base.output_features["inputs"].vocabulary.sentencepiece_model_file)
    old = tasks.register_mlm_corpus_task("test_pipeline_rereg", *args)
    new = tasks.register_mlm_corpus_task("test_pipeline_rereg", *args, whole_word=True)
    assert seqio.TaskRegistry.get("test_pipeline_rereg") is new and new is not old
    assert _batches("test_pipeline_rereg", 1)
