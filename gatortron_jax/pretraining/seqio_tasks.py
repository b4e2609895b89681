"""Registration of masked-LM pretraining tasks: over a prepared corpus cache (what ``pretrain``
trains on: :func:`register_mlm_cache_task`) and over plain-text corpora (the raw-text tf.data
pipeline, kept as the baseline ``benchmarks/bench_data.py`` measures against).

Tasks are registered at run time (the corpus and vocabulary come from the command line
or gin), not at import, so importing this module has no side effects.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import seqio
import tensorflow as tf

from gatortron_jax.pretraining import preprocessors
from gatortron_jax.pretraining.cache_pipeline import FeistelPermutation
from gatortron_jax.pretraining.corpus_cache import SPLITS, CorpusCache
from gatortron_jax.pretraining.corpus import TextCorpusSource
from gatortron_jax.text.vocab import MLMVocabulary, load_vocabulary
from gatortron_jax.core.errors import ConfigError


def mlm_output_features(vocabulary: MLMVocabulary) -> dict[str, seqio.Feature]:
    """``inputs``/``targets`` token ids (no EOS) and float ``mlm_weights``."""
    return {
        "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=False),
        "targets": seqio.Feature(vocabulary=vocabulary, add_eos=False),
        # A float feature has no vocabulary; ContinuousFeature defaults to a pass-through.
        "mlm_weights": seqio.ContinuousFeature(dtype=tf.float32, rank=1),
    }


def register_mlm_corpus_task(
    name: str,
    corpus_dir: str,
    vocabulary_path: str,
    *,
    doc_per_line: bool = False,
    validation_fraction: float = 0.05,
    whole_word: bool = False,
    mask_rate: float = 0.15,
    strict: bool | None = None,
) -> seqio.Task:
    """Registers (or replaces) the MLM task ``name`` and returns it.

    Pipeline: corpus -> rekey text -> tokenize -> CacheDatasetPlaceholder ->
    split_into_chunks -> mlm_mask. Corpus and vocabulary are opened eagerly so bad paths
    fail here with an ``InputError``; re-registering a name replaces the old task, which
    lets tests and notebooks call this repeatedly. ``strict`` is the corpus input policy
    (:mod:`gatortron_jax.annotations.input_policy`); ``None`` follows the process-wide setting.
    """
    if not re.fullmatch(r"[\w.:#]+", name):
        raise ConfigError(f"invalid task name {name!r}: use letters, digits and _ . : #")
    if not 0.0 < mask_rate < 1.0:
        raise ConfigError(f"mask_rate must be in (0, 1), got {mask_rate} (task {name})")
    vocabulary = load_vocabulary(vocabulary_path)
    source = TextCorpusSource(
        corpus_dir, doc_per_line=doc_per_line, validation_fraction=validation_fraction, strict=strict
    )
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=source,
        output_features=mlm_output_features(vocabulary),
        preprocessors=[
            preprocessors.rekey_text,
            preprocessors.tokenize,
            seqio.CacheDatasetPlaceholder(),
            functools.partial(preprocessors.split_into_chunks, vocabulary=vocabulary),
            functools.partial(
                preprocessors.mlm_mask,
                vocabulary=vocabulary,
                mask_rate=mask_rate,
                whole_word=whole_word,
            ),
        ],
    )


class CorpusCacheSource(seqio.DataSource):
    """A prepared corpus cache (``prepare-corpus``) as a seqio source: ``{"inputs": [CLS] chunk [SEP]}``.

    The cache-backed MLM task registered under ``MLMDataConfig.task_name`` has this source, so
    the registry stays where users look up, inspect and extend the corpus task (e.g. in
    mixtures, or ``task.get_dataset`` to look at chunks). ``pretrain`` reads the same cache
    through :mod:`~gatortron_jax.pretraining.cache_pipeline` (global shuffle, per-chunk masks,
    packing, O(1) resume), taking the cache from ``task.source.cache``. ``get_dataset`` here is
    for inspection: chunks in cache order (or a seeded permutation), sharded by index.
    """

    def __init__(self, cache_dir: str):
        self.cache = CorpusCache(cache_dir)
        super().__init__(splits=SPLITS)

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return True

    def list_shards(self, split: str) -> list[str]:
        return [f"{split}-{i:05d}" for i in range(int(self.cache.manifest["num_shards"]))]

    def num_input_examples(self, split: str) -> int:
        return self.cache.num_chunks(split)

    def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                    shard_info: seqio.ShardInfo | None = None, *, sequence_length=None, use_cached=False,
                    num_epochs=1) -> tf.data.Dataset:
        del sequence_length, use_cached, num_epochs
        data = self.cache.split(split)
        cls_id, sep_id = self.cache.manifest["vocab"]["cls_id"], self.cache.manifest["vocab"]["sep_id"]
        index, count = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
        positions = np.arange(index, data.num_chunks, count)
        if shuffle:
            positions = FeistelPermutation(data.num_chunks, seed or 0, 0)(positions)

        def generate():
            for chunk in data.chunks(positions):
                yield {"inputs": np.concatenate([[cls_id], chunk, [sep_id]]).astype(np.int32)}

        return tf.data.Dataset.from_generator(generate, output_signature={"inputs": tf.TensorSpec([None], tf.int32)})


def register_mlm_cache_task(name: str, cache_dir: str, vocabulary_path: str) -> seqio.Task:
    """Registers (or replaces) the MLM task ``name`` over a prepared cache and returns it."""
    if not re.fullmatch(r"[\w.:#]+", name):
        raise ConfigError(f"invalid task name {name!r}: use letters, digits and _ . : #")
    vocabulary = load_vocabulary(vocabulary_path)
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name, source=CorpusCacheSource(cache_dir),
        output_features={"inputs": seqio.Feature(vocabulary=vocabulary, add_eos=False)}, preprocessors=[],
    )
