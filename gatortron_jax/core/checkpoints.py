"""Orbax checkpointing: train state + JSON side data in one atomic, async step directory.

Checkpoint order (the one place it is written down):
  1. ``model_dir`` has a checkpoint → resume it (params, optimizer, step, data position).
  2. else ``init_checkpoint`` given → load *params only* (pretrain → fine-tune).
  3. else → fresh initialisation.
Orbax writes ``commit_success`` only when a step is complete, so an interrupted save never
shadows the last good checkpoint. Restoring into an abstract state with shardings reshards.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from gatortron_jax.core.errors import ConfigError, InputError


class _ItemMetadataNotice(logging.Filter):
    """Drops orbax's "Metadata file does not exist" warning for a step's ``state`` item.

    :func:`restore_params` opens ``checkpoints/<step>/state`` directly (a partial, params-only
    restore); orbax then looks for a ``_CHECKPOINT_METADATA`` that only exists one level up, in
    the step directory, and warns on every load of a model. Nothing is missing, so it is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Metadata file does not exist" not in str(record.msg)


logging.getLogger("absl").addFilter(_ItemMetadataNotice())


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int | None = 3, async_save: bool = True):
        self.directory = os.path.abspath(os.path.join(directory, "checkpoints"))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=async_save
        )
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any], *, force: bool = False) -> bool:
        return self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=force,
        )

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise InputError(f"{self.directory}: no checkpoint to restore")
        saved = self.manager.item_metadata(step)["state"]
        if saved is not None:  # name the first mismatched parameter, not a deep orbax traceback
            _check_compatible(getattr(saved, "tree", saved), abstract_state, os.path.join(self.directory, str(step)))
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], restored["meta"]

    def read_meta(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def restore_params(checkpoint_dir: str, abstract_params: Any, step: int | None = None) -> Any:
    """Params only, from a model dir written by ``Checkpointer`` (e.g. a pretrained model)."""
    ckpt = Checkpointer(checkpoint_dir, async_save=False)
    step = ckpt.latest_step() if step is None else step
    if step is None:
        raise InputError(f"{ckpt.directory}: no checkpoint found")
    path = os.path.join(ckpt.directory, str(step), "state")
    with ocp.PyTreeCheckpointer() as checkpointer:
        metadata = checkpointer.metadata(path)
        tree = metadata.item_metadata.tree if hasattr(metadata, "item_metadata") else metadata
        _check_compatible(tree["params"], abstract_params, path)
        partial = {"params": abstract_params}
        restored = checkpointer.restore(path, ocp.args.PyTreeRestore(
            item=partial,
            restore_args=jax.tree.map(
                lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype), partial
            ),
            partial_restore=True,
        ))
    return restored["params"]


def _path(keys) -> str:
    """'params/encoder/layers/mlp/wi/kernel' for dict keys, dataclass fields and list indices alike."""
    parts = []
    for k in keys:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return "/".join(parts)


def _check_compatible(saved: Any, expected: Any, where: str) -> None:
    """Name the first parameter whose shape differs, instead of a deep orbax traceback."""
    saved_flat = {_path(k): v for k, v in jax.tree_util.tree_flatten_with_path(saved)[0]}
    for key, value in jax.tree_util.tree_flatten_with_path(expected)[0]:
        name = _path(key)
        if name not in saved_flat:
            raise ConfigError(f"{where}: checkpoint has no parameter {name}")
        shape = tuple(getattr(saved_flat[name], "shape", ()))
        if shape != tuple(value.shape):
            raise ConfigError(
                f"{where}: parameter {name} has shape {shape} in the checkpoint, the model expects {tuple(value.shape)}"
            )
