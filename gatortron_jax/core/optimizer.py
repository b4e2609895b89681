"""AdamW with warmup + decay, global-norm clipping and BERT's weight-decay exclusions."""

from __future__ import annotations

import dataclasses

import jax
import optax

from gatortron_jax.core.errors import ConfigError

# Parameters that never get weight decay (BERT/Megatron convention): biases and LayerNorm.
_NO_DECAY_NAMES = ("bias", "scale", "output_bias")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    decay: str = "linear"  # linear | cosine | constant
    end_learning_rate_ratio: float = 0.0  # final lr = ratio * peak
    weight_decay: float = 0.01
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-6
    clip_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if self.decay not in ("linear", "cosine", "constant"):
            raise ConfigError(f"OptimizerConfig.decay={self.decay!r}: use linear, cosine or constant")
        if self.learning_rate <= 0:
            raise ConfigError(f"OptimizerConfig.learning_rate must be > 0, got {self.learning_rate}")


def make_schedule(config: OptimizerConfig, total_steps: int) -> optax.Schedule:
    """Linear warmup to the peak, then the chosen decay over the remaining steps."""
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    peak, end = config.learning_rate, config.learning_rate * config.end_learning_rate_ratio
    decay_steps = max(total_steps - warmup, 1)
    if config.decay == "linear":
        after = optax.linear_schedule(peak, end, decay_steps)
    elif config.decay == "cosine":
        after = optax.cosine_decay_schedule(peak, decay_steps, alpha=config.end_learning_rate_ratio)
    else:
        after = optax.constant_schedule(peak)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def decay_mask(params):
    """True for weights that get decay (kernels, embeddings); False for biases and LN."""

    def keep(path, _):
        last = path[-1]
        name = getattr(last, "key", getattr(last, "name", ""))
        if name == "value":  # LogicallyPartitioned box: look at the param name above it
            name = getattr(path[-2], "key", "")
        return name not in _NO_DECAY_NAMES

    return jax.tree_util.tree_map_with_path(keep, params)


def make_optimizer(config: OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
    schedule = make_schedule(config, total_steps)
    parts = []
    if config.clip_grad_norm:
        parts.append(optax.clip_by_global_norm(config.clip_grad_norm))
    parts.append(
        optax.adamw(
            schedule, b1=config.b1, b2=config.b2, eps=config.eps,
            weight_decay=config.weight_decay, mask=decay_mask,
        )
    )
    return optax.chain(*parts)
