"""The batched, deterministic MLM input stream the trainer consumes.

Determinism is the contract: for a given ``(task, split, seed, shard)`` the same batches
come out in the same order on every run, so a resumed trainer can skip the batches it
already consumed. That holds because every source of randomness (file order, shuffle
buffer, masks) is seeded and tf.data runs with ``deterministic=True``. seqio's implicit
in-memory caching and output trimming are turned off: the first would make the stream
depend on whether the corpus had been counted, the second would hide over-long chunks.
"""

from __future__ import annotations

from absl import logging
import seqio
import tensorflow as tf

from gatortron_jax.pretraining.feature_converters import MLMFeatureConverter
from gatortron_jax.core.errors import ConfigError


def _hide_gpus_from_tf() -> None:
    """TF only feeds data here; leave accelerator memory to JAX."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError) as e:  # already initialised / no such device type
        logging.info("could not hide GPUs from TensorFlow: %s", e)


_hide_gpus_from_tf()


def get_mlm_dataset(
    task_name: str,
    split: str,
    *,
    sequence_length: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_epochs: int | None = None,
    pack: bool = True,
    shard_index: int = 0,
    num_shards: int = 1,
) -> tf.data.Dataset:
    """Batches of ``{input_ids, token_type_ids, segment_ids, position_ids, mlm_targets,
    mlm_weights}``, each ``[batch_size, sequence_length]`` (int32; ``mlm_weights`` float32).

    ``num_epochs=None`` repeats forever; each epoch gets fresh masks. ``batch_size`` is the
    per-host batch for shard ``shard_index`` of ``num_shards``. Incomplete final batches are
    dropped.
    """
    if batch_size < 1 or sequence_length < 3:
        raise ConfigError(
            f"need batch_size >= 1 and sequence_length >= 3, got {batch_size} and {sequence_length}"
        )
    if not 0 <= shard_index < num_shards:
        raise ConfigError(f"shard_index {shard_index} out of range for num_shards {num_shards}")
    if task_name not in seqio.TaskRegistry.names():
        raise ConfigError(
            f"MLM task {task_name!r} is not registered (known: {sorted(seqio.TaskRegistry.names())}); "
            "call gatortron_jax.pretraining.seqio_tasks.register_mlm_corpus_task first"
        )
    task = seqio.TaskRegistry.get(task_name)
    if split not in task.splits:
        raise ConfigError(f"task {task_name!r} has no split {split!r} (splits: {list(task.splits)})")
    lengths = {"inputs": sequence_length, "targets": sequence_length, "mlm_weights": sequence_length}
    ds = task.get_dataset(
        sequence_length=lengths,
        split=split,
        use_cached=False,
        shuffle=shuffle,
        seed=seed,
        shard_info=seqio.ShardInfo(index=shard_index, num_shards=num_shards),
        num_epochs=num_epochs,
        trim_output_features=False,
        try_in_mem_cache=False,
    )
    ds = MLMFeatureConverter(pack=pack)(ds, lengths)
    ds = ds.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
