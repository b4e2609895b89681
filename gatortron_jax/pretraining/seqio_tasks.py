"""Registration of masked-LM pretraining tasks over plain-text clinical corpora.

Tasks are registered at run time (the corpus and vocabulary come from the command line
or gin), not at import, so importing this module has no side effects.
"""

from __future__ import annotations

import functools
import re

import seqio
import tensorflow as tf

from gatortron_jax.pretraining import preprocessors
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
