"""Train state created directly in its sharded layout.

``jax.eval_shape`` gives the abstract (boxed) state without allocating; its logical
annotations become NamedShardings; ``jit(init, out_shardings=...)`` then materialises
each shard on its own device. No full copy of the params ever sits on one device.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gatortron_jax.core.partitioning import Partitioner


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


def _boxed_init_fn(model: nn.Module, optimizer: optax.GradientTransformation, seq_len: int) -> Callable:
    def init(rng: jax.Array) -> TrainState:
        dummy = jnp.zeros((1, seq_len), jnp.int32)
        params = model.init({"params": rng, "dropout": rng}, dummy)["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))

    return init


def abstract_train_state(
    model: nn.Module, optimizer: optax.GradientTransformation, partitioner: Partitioner, seq_len: int = 8
) -> tuple[TrainState, TrainState]:
    """(abstract unboxed state with shardings, sharding tree) — nothing is allocated."""
    # The key's shape only, drawn outside the mesh: a concrete jax.random.key inside it would be
    # placed on the mesh's devices, which fails for compile-only ones (plan --target).
    rng = jax.eval_shape(lambda: jax.random.key(0))
    with partitioner.activate():
        boxed = jax.eval_shape(_boxed_init_fn(model, optimizer, seq_len), rng)
    shardings = partitioner.shardings_of(boxed)
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), nn.unbox(boxed), shardings
    )
    return abstract, shardings


def create_train_state(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    partitioner: Partitioner,
    rng: jax.Array,
    seq_len: int = 8,
) -> tuple[TrainState, TrainState]:
    """Initialise params + optimizer state already sharded; returns (state, shardings)."""
    _, shardings = abstract_train_state(model, optimizer, partitioner, seq_len)
    boxed_init = _boxed_init_fn(model, optimizer, seq_len)
    with partitioner.activate():
        state = jax.jit(lambda r: nn.unbox(boxed_init(r)), out_shardings=shardings)(rng)
    return state, shardings


def count_params(params: Any) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params))
