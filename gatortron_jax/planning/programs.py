"""The programs ``plan`` compiles: the real jitted steps with abstract, sharded arguments.

* ``train``    — the MLM pretraining step (``pretraining.steps.make_train_step``, AdamW state);
* ``finetune`` — the supervised token-classification step (``finetuning.supervised``), the one
  NER/de-id fine-tuning runs;
* ``predict``  — the tagger's forward pass + decode + scores (``predict_labels_and_scores``),
  the one ``predict``/``deid`` stream over notes.

Every argument is a ``jax.ShapeDtypeStruct`` carrying its ``NamedSharding``, so nothing is
allocated and the devices may be compile-only (a GPU or TPU topology on a CPU host).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

STEPS = ("train", "finetune", "predict")
NUM_LABELS = 19  # BIO over the 9 i2b2-2014 de-id categories: a realistic head size for the tagger


@dataclasses.dataclass
class Program:
    """A step ready to ``jax.jit(...).lower(*args)`` under ``partitioner.activate()``."""

    fn: Callable
    args: tuple
    in_shardings: tuple
    out_shardings: Any
    donate_argnums: tuple[int, ...]
    params: Any  # abstract params (for the per-device state bytes)
    opt_state: Any  # abstract optimizer state, or None


def _abstract(shape: tuple[int, ...], dtype: Any, sharding: Any) -> Any:
    import jax

    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)


def _rng_spec(partitioner: Any) -> Any:
    import jax

    # eval_shape, not jax.random.key(0): no array is made, so compile-only devices are fine.
    return _abstract((), jax.eval_shape(lambda: jax.random.key(0)).dtype, partitioner.replicated)


def mlm_train(model_config: Any, partitioner: Any, batch: int, seq_len: int, *, optimizer_config: Any = None,
              num_microbatches: int = 1, max_predictions: int | None = None) -> Program:
    import jax.numpy as jnp

    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import abstract_train_state
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.pretraining import steps

    model = EncoderForMLM(model_config)
    optimizer = make_optimizer(optimizer_config or OptimizerConfig(), 100_000)
    state, shardings = abstract_train_state(model, optimizer, partitioner)
    data = partitioner.data_sharding
    keys = ("input_ids", "token_type_ids", "position_ids", "segment_ids", "mlm_targets", "mlm_weights")
    batch_spec = {k: _abstract((batch, seq_len), jnp.float32 if k == "mlm_weights" else jnp.int32, data) for k in keys}
    fn = steps.make_train_step(model, optimizer, num_microbatches=num_microbatches, max_predictions=max_predictions)
    return Program(fn, (state, batch_spec, _rng_spec(partitioner)), (shardings, data, partitioner.replicated),
                   (shardings, partitioner.replicated), (0,), state.params, state.opt_state)


def _tagger(model_config: Any) -> Any:
    from gatortron_jax.models.token_classification import EncoderForTokenClassification

    return EncoderForTokenClassification(model_config, num_labels=NUM_LABELS)


def _tagger_batch(batch: int, seq_len: int, sharding: Any, labels: bool) -> dict[str, Any]:
    import jax.numpy as jnp

    keys = ("input_ids", "segment_ids", "label_mask") + (("labels",) if labels else ())
    return {k: _abstract((batch, seq_len), jnp.int32, sharding) for k in keys}


def finetune_train(model_config: Any, partitioner: Any, batch: int, seq_len: int, *,
                   optimizer_config: Any = None, **_: Any) -> Program:
    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import abstract_train_state
    from gatortron_jax.finetuning.supervised import make_supervised_step
    from gatortron_jax.models.token_classification import forward_loss

    model = _tagger(model_config)
    optimizer = make_optimizer(optimizer_config or OptimizerConfig(), 10_000)
    state, shardings = abstract_train_state(model, optimizer, partitioner)
    data = partitioner.data_sharding
    fn = make_supervised_step(model, optimizer, forward_loss)
    return Program(fn, (state, _tagger_batch(batch, seq_len, data, True), _rng_spec(partitioner)),
                   (shardings, data, partitioner.replicated), (shardings, partitioner.replicated), (0,),
                   state.params, state.opt_state)


def tagger_predict(model_config: Any, partitioner: Any, batch: int, seq_len: int, **_: Any) -> Program:
    import optax

    from gatortron_jax.core.train_state import abstract_train_state
    from gatortron_jax.models.token_classification import predict_labels_and_scores

    model = _tagger(model_config)
    state, shardings = abstract_train_state(model, optax.identity(), partitioner)
    data = partitioner.data_sharding

    def fn(params: Any, batch_: dict[str, Any]) -> Any:
        return predict_labels_and_scores(model, params, batch_)

    return Program(fn, (state.params, _tagger_batch(batch, seq_len, data, False)), (shardings.params, data),
                   (data, data), (), state.params, None)


BUILDERS: dict[str, Callable[..., Program]] = {"train": mlm_train, "finetune": finetune_train,
                                               "predict": tagger_predict}
