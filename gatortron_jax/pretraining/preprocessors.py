"""seqio preprocessors for masked-LM pretraining on whole clinical notes.

The Task pipeline is ``rekey_text -> tokenize -> CacheDatasetPlaceholder ->
split_into_chunks -> mlm_mask`` (see :mod:`gatortron_jax.pretraining.seqio_tasks`):

* Tokenization is deterministic and expensive, so it sits before the cache placeholder.
* Chunking depends on the run-time sequence length, and seqio forbids
  ``sequence_length``-dependent preprocessors before the placeholder (the cache must not
  depend on it), so it sits right after; it is deterministic, so that costs nothing.
* Masking is random and must differ every epoch, so it is last: seqio repeats the
  dataset before post-cache preprocessors and feeds ``mlm_mask`` a fresh per-example seed
  from a seeded stream, giving new masks each epoch yet identical masks for identical
  seeds.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from gatortron_jax.text.vocab import MLMVocabulary
from gatortron_jax.core.errors import ConfigError


def rekey_text(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Keeps only the note text, as ``inputs`` (the doc id is not needed downstream)."""
    return seqio.preprocessors.rekey(dataset, key_map={"inputs": "text"})


def tokenize(
    dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature]
) -> tf.data.Dataset:
    """seqio tokenization without EOS and without a ``*_pretokenized`` copy.

    The copy would carry raw note text (PHI) through the pipeline for no use.
    """
    return seqio.preprocessors.tokenize(
        dataset, output_features, copy_pretokenized=False, with_eos=False
    )


def split_into_chunks(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int],
    vocabulary: MLMVocabulary,
) -> tf.data.Dataset:
    """Cuts each document into ``[CLS] chunk [SEP]`` examples of at most ``L`` tokens.

    Consecutive chunks of ``L - 2`` token ids (the last one shorter) so every token of
    every document lands in exactly one chunk and nothing is truncated, unlike seqio's
    trimming. Documents that tokenize to nothing yield no chunk. Output: ``{"inputs"}``.
    """
    length = sequence_length["inputs"]
    body = length - 2
    if body < 1:
        raise ConfigError(f"sequence_length['inputs'] must be >= 3 for [CLS] x [SEP], got {length}")
    cls_id, sep_id = vocabulary.cls_id, vocabulary.sep_id

    def to_chunks(features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        ids = features["inputs"]
        n = tf.size(ids)
        num = (n + body - 1) // body
        rows = tf.RaggedTensor.from_row_limits(ids, tf.minimum(tf.range(1, num + 1) * body, n))
        rows = tf.concat(
            [tf.fill([num, 1], cls_id), rows, tf.fill([num, 1], sep_id)], axis=1
        )
        return {"inputs": rows.to_tensor(), "length": tf.cast(rows.row_lengths(), tf.int32)}

    def trim(chunk: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"inputs": chunk["inputs"][: chunk["length"]]}

    return (
        dataset.map(to_chunks, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(trim, num_parallel_calls=tf.data.AUTOTUNE)
    )


def _word_ids(ids: tf.Tensor, word_start: tf.Tensor, special: tf.Tensor) -> tf.Tensor:
    """Index of the word each position belongs to (0-based, per chunk).

    A position starts a word if its piece is a word start, is special, or follows a
    special token (so a chunk that begins mid-word still starts a fresh word after
    [CLS], rather than gluing onto it).
    """
    is_special = tf.gather(special, ids)
    follows_special = tf.concat([[True], is_special[:-1]], axis=0)
    starts = tf.gather(word_start, ids) | is_special | follows_special
    return tf.cumsum(tf.cast(starts, tf.int32)) - 1


@seqio.map_over_dataset(num_seeds=3)
def mlm_mask(
    features: Mapping[str, tf.Tensor],
    seeds: Sequence[tf.Tensor],
    *,
    vocabulary: MLMVocabulary,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    whole_word: bool = False,
) -> dict[str, tf.Tensor]:
    """BERT masking: ``inputs`` (corrupted), ``targets`` (original), ``mlm_weights``.

    Called as ``mlm_mask(dataset, vocabulary=...)``; seqio supplies ``seeds`` per example.

    Selection: every non-special token is selected independently with probability
    ``mask_rate`` (Bernoulli, as in HF's collator), so the rate is exact in expectation
    and a chunk may occasionally have no selected token. With ``whole_word`` the draw is
    per word (``word_start_mask``) and all of a selected word's pieces are selected.
    Each selected token independently becomes [MASK] (``mask_token_rate``), a uniformly
    random non-special id (``random_token_rate``), or stays unchanged (the rest).
    ``mlm_weights`` is 1.0 at every selected position, including the random and
    unchanged ones (seqio's EncoderFeatureConverter misses those by using inputs==mask).
    """
    if not 0.0 < mask_rate < 1.0:
        raise ConfigError(f"mask_rate must be in (0, 1), got {mask_rate}")
    if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
        raise ConfigError(
            "mask_token_rate and random_token_rate must be >= 0 and sum to <= 1, got "
            f"{mask_token_rate} and {random_token_rate}"
        )
    special_np = np.zeros(vocabulary.vocab_size, dtype=bool)
    special_np[sorted(vocabulary.special_ids)] = True
    special = tf.constant(special_np)
    replacements = tf.constant(np.flatnonzero(~special_np).astype(np.int32))

    ids = features["inputs"]
    shape = tf.shape(ids)
    candidate = ~tf.gather(special, ids)
    if whole_word:
        word_ids = _word_ids(ids, tf.constant(vocabulary.word_start_mask()), special)
        # One draw per word (there are never more words than tokens).
        word_draw = tf.random.stateless_uniform([tf.size(ids)], seed=seeds[0])
        draw = tf.gather(word_draw, word_ids)
    else:
        draw = tf.random.stateless_uniform(shape, seed=seeds[0])
    selected = candidate & (draw < mask_rate)

    action = tf.random.stateless_uniform(shape, seed=seeds[1])
    to_mask = selected & (action < mask_token_rate)
    to_random = selected & (action >= mask_token_rate) & (action < mask_token_rate + random_token_rate)
    random_ids = tf.gather(
        replacements,
        tf.random.stateless_uniform(
            shape, seed=seeds[2], maxval=tf.size(replacements), dtype=tf.int32
        ),
    )
    inputs = tf.where(to_mask, tf.constant(vocabulary.mask_id, ids.dtype), ids)
    inputs = tf.where(to_random, random_ids, inputs)
    return {"inputs": inputs, "targets": ids, "mlm_weights": tf.cast(selected, tf.float32)}
