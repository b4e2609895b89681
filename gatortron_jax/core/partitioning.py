"""Device mesh and the one logical-axis rules table.

Model code names only logical axes. This module alone decides how they land on the mesh
axes ``(data, fsdp, tensor)``:

* ``data``   — pure data parallelism: params replicated, batch split.
* ``fsdp``   — batch split *and* params/optimizer state sharded along ``embed``
               (ZeRO-3 style; XLA all-gathers weights per layer inside the scan).
* ``tensor`` — Megatron tensor parallelism: heads, MLP hidden units and vocab split.

Rules are ordered; flax assigns each mesh axis at most once per array, so e.g. a
``(batch, length, embed)`` activation never tries to reuse ``fsdp`` for ``embed``.
Replicated names are listed explicitly so a missing rule is a visible decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Iterator, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from gatortron_jax.core.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Mesh axis sizes (``-1``: all remaining devices) and rule overrides, bound by gin."""

    data: int = -1
    fsdp: int = 1
    tensor: int = 1
    rules_overrides: tuple = ()

LogicalRules = tuple[tuple[str, Any], ...]

# fmt: off
LOGICAL_AXIS_RULES: LogicalRules = (
    # --- parameters ---
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("embed", "fsdp"),
    ("kv", None),
    ("position", None),
    ("token_type", None),
    ("labels", None),
    ("layers", None),
    # --- activations ---
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_heads", "tensor"),
    ("activation_kv", None),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
)
# fmt: on


def parse_rules_overrides(overrides: Sequence[tuple[str, Any]] | None) -> LogicalRules:
    """Per-model overrides (from gin) win over the default table for the names they give."""
    if not overrides:
        return LOGICAL_AXIS_RULES
    known = {name for name, _ in LOGICAL_AXIS_RULES}
    for name, target in overrides:
        if name not in known:
            raise ConfigError(f"logical axis rule override for unknown axis {name!r}; known: {sorted(known)}")
        for axis in (target,) if isinstance(target, str) or target is None else target:
            if axis is not None and axis not in MESH_AXES:
                raise ConfigError(f"rule {name!r} -> {target!r}: mesh axes are {MESH_AXES}")
    overridden = {name for name, _ in overrides}
    return tuple(overrides) + tuple(r for r in LOGICAL_AXIS_RULES if r[0] not in overridden)


def create_mesh(
    data: int = -1, fsdp: int = 1, tensor: int = 1, devices: Sequence[jax.Device] | None = None
) -> Mesh:
    """A (data, fsdp, tensor) mesh over ``devices`` (default: all global devices).

    One of the sizes may be -1 to take what the others leave. ``tensor`` varies fastest so
    tensor-parallel groups sit on neighbouring devices (same host / NVLink domain).
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ConfigError(f"mesh data={data}, fsdp={fsdp}, tensor={tensor}: at most one size may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ConfigError(f"mesh fsdp*tensor*data={known} does not divide {len(devices)} devices")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ConfigError(
            f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} = {math.prod(sizes)} "
            f"devices, but {len(devices)} are available"
        )
    grid = np.asarray(devices, dtype=object).reshape(sizes)
    return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


@dataclasses.dataclass
class Partitioner:
    """Mesh + rules: turns logical annotations into shardings (t5x-style, minus the magic)."""

    mesh: Mesh
    rules: LogicalRules = LOGICAL_AXIS_RULES

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Make the mesh and rules visible to ``nn.with_logical_constraint`` while tracing."""
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            yield

    def logical_to_sharding(self, logical_specs: Any) -> Any:
        """Tree of logical PartitionSpecs → tree of NamedShardings on this mesh."""
        return nn.logical_to_mesh_sharding(logical_specs, self.mesh, self.rules)

    def shardings_of(self, boxed_abstract_tree: Any) -> Any:
        """NamedShardings for a tree of (abstract) LogicallyPartitioned-boxed values."""
        return self.logical_to_sharding(nn.get_partition_spec(boxed_abstract_tree))

    @property
    def data_sharding(self) -> NamedSharding:
        """Sharding of a [batch, ...] input: batch split over data x fsdp."""
        batch_axes = nn.logical_to_mesh_axes(("activation_batch",), self.rules)
        return NamedSharding(self.mesh, batch_axes)

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def data_parallel_size(self) -> int:
        """How many ways the batch is split (every global batch must divide by this)."""
        spec = self.data_sharding.spec[0]
        axes = (spec,) if isinstance(spec, str) else (spec or ())
        return math.prod(self.mesh.shape[a] for a in axes)
