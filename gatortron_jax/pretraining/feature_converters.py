"""Task features -> Megatron-BERT model features for masked-LM pretraining.

seqio's stock ``EncoderFeatureConverter`` derives loss weights from ``inputs == mask_id``,
which drops the 10% random-replacement and 10% unchanged positions from the loss; this
converter carries the preprocessor's ``mlm_weights`` through instead, and emits the
HF/Megatron-style names the model consumes.

Packing subtlety: seqio's packer finds each example's length by counting non-zero ids,
so a 0/1 weight vector would be cut short. Weights are therefore packed as ``1 + w``
(never zero on real tokens) and shifted back afterwards, which requires 0/1 weights
(what :func:`gatortron_jax.pretraining.preprocessors.mlm_mask` produces).
"""

from __future__ import annotations

from typing import Mapping

import seqio
import tensorflow as tf

FeatureSpec = seqio.FeatureConverter.FeatureSpec

#: Model features; every one has shape [L] (batched: [B, L]).
MODEL_FEATURES: Mapping[str, FeatureSpec] = {
    "input_ids": FeatureSpec(dtype=tf.int32),  # masked ids; 0 = padding
    "token_type_ids": FeatureSpec(dtype=tf.int32),  # always 0 (no NSP)
    "segment_ids": FeatureSpec(dtype=tf.int32),  # packed example 1..k; 0 = padding
    "position_ids": FeatureSpec(dtype=tf.int32),  # restart at 0 per segment; 0 on padding
    "mlm_targets": FeatureSpec(dtype=tf.int32),  # original ids; 0 = padding
    "mlm_weights": FeatureSpec(dtype=tf.float32),  # 1.0 where the loss applies
}
_SHIFTED_WEIGHTS = "mlm_weights_plus_one"


class MLMFeatureConverter(seqio.FeatureConverter):
    """``inputs``/``targets``/``mlm_weights`` -> :data:`MODEL_FEATURES`.

    ``pack=True`` concatenates chunks into rows with ``seqio.utils.trim_and_pack_dataset``;
    a chunk is never split or trimmed (chunks are already <= L, asserted). The model's
    attention mask is ``segment_ids[:, None] == segment_ids[None, :] & segment_ids > 0``,
    so packed documents never attend to each other. ``pack=False`` pads each chunk to
    ``L`` with ``segment_ids = 1`` on real tokens.
    """

    TASK_FEATURES = {
        "inputs": FeatureSpec(dtype=tf.int32),
        "targets": FeatureSpec(dtype=tf.int32),
        "mlm_weights": FeatureSpec(dtype=tf.float32),
    }
    MODEL_FEATURES = MODEL_FEATURES
    PACKING_FEATURE_DTYPES: Mapping[str, tf.DType] = {}  # segment/position ids are always present

    def _convert_features(
        self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]
    ) -> tf.data.Dataset:
        length = task_feature_lengths["inputs"]
        if len(set(task_feature_lengths.values())) != 1:
            raise ValueError(
                f"MLM task features must share one length, got {dict(task_feature_lengths)}"
            )

        def prepare(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            tf.debugging.assert_less_equal(
                tf.size(ex["inputs"]),
                length,
                message=f"MLM chunk longer than sequence length {length}; "
                "split_into_chunks must use the same length as the feature converter",
            )
            return {
                "input_ids": ex["inputs"],
                "mlm_targets": ex["targets"],
                _SHIFTED_WEIGHTS: tf.cast(ex["mlm_weights"], tf.int32) + 1,
            }

        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        lengths = {k: length for k in ("input_ids", "mlm_targets", _SHIFTED_WEIGHTS)}
        if self.pack:
            ds = seqio.utils.trim_and_pack_dataset(ds, lengths, self._use_custom_packing_ops)
        else:
            ds = seqio.utils.trim_and_pad_dataset(ds, lengths)
        return ds.map(self._finalize, num_parallel_calls=tf.data.AUTOTUNE)

    def _finalize(self, ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids = ex["input_ids"]
        if self.pack:
            segment_ids = ex["input_ids_segment_ids"]
            position_ids = ex["input_ids_positions"]
        else:
            segment_ids = tf.cast(tf.not_equal(input_ids, 0), tf.int32)
            position_ids = tf.range(tf.size(input_ids), dtype=tf.int32) * segment_ids
        # Padding is 0 in the shifted feature, 1 + w on tokens: back to w, and 0 on padding.
        weights = tf.cast(tf.maximum(ex[_SHIFTED_WEIGHTS] - 1, 0), tf.float32)
        return {
            "input_ids": input_ids,
            "token_type_ids": tf.zeros_like(input_ids),
            "segment_ids": segment_ids,
            "position_ids": position_ids,
            "mlm_targets": ex["mlm_targets"],
            "mlm_weights": weights,
        }

    def get_model_feature_lengths(
        self, task_feature_lengths: Mapping[str, int]
    ) -> Mapping[str, int]:
        """Every model feature has the task's (single) sequence length."""
        return {k: task_feature_lengths["inputs"] for k in MODEL_FEATURES}
