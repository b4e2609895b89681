"""The model dir: the one reader and writer of the directory every command loads and writes.

Layout (pretraining writes the same)::

    DIR/config.json    {"model_config": EncoderConfig.to_dict(),
                        "vocab": {"path": "vocab/<file>", "size": N, "lowercase": bool|None}, ...}
    DIR/vocab/<file>   vocab.txt (WordPiece) or *.model (SentencePiece)
    DIR/checkpoints/<step>/{state,meta}   orbax; state["params"] is the EncoderForMLM tree

What kind of model a dir holds is answered here once (:func:`kind_of`): the section a
fine-tuning run adds to config.json (``ner``, ``sequence_task``), else a pretrained encoder.
config.json is always written atomically (:func:`write_config`).

``load_model_dir`` restores params straight into their sharded layout when given a
``Partitioner`` (each device reads only its shards), else onto one device.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gatortron_jax.core.checkpoints import Checkpointer, restore_params
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.text.vocab import load_vocabulary
from gatortron_jax.text.wordpiece import WordPieceVocabulary, read_vocab_file

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


KINDS = ("encoder", "ner", "sequence_task")


def kind_of(info: Mapping[str, Any]) -> str:
    """``"ner"`` / ``"sequence_task"`` for a fine-tuned dir, else ``"encoder"`` (pretrain / import)."""
    for kind in KINDS[1:]:
        if info.get(kind):
            return kind
    return "encoder"


def write_config(model_dir: str, info: Mapping[str, Any]) -> str:
    """Write ``config.json`` atomically (a crash leaves the old file or the new one, never half)."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, CONFIG_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(info), f, indent=2, default=str)
    os.replace(tmp, path)
    return path


def copy_vocab(model_dir: str, vocab_file: str) -> str:
    """Copy the vocabulary into ``model_dir/vocab/`` (one dir = everything later commands need).

    Returns the path relative to ``model_dir`` for config.json. A directory holding a
    ``vocab.txt`` is accepted in place of the file.
    """
    if os.path.isdir(vocab_file):
        vocab_file = os.path.join(vocab_file, "vocab.txt")
    if not os.path.isfile(vocab_file):
        raise InputError(f"{vocab_file}: vocabulary file not found")
    os.makedirs(os.path.join(model_dir, "vocab"), exist_ok=True)
    relative = os.path.join("vocab", os.path.basename(vocab_file))
    if os.path.abspath(os.path.join(model_dir, relative)) != os.path.abspath(vocab_file):
        shutil.copyfile(vocab_file, os.path.join(model_dir, relative))
    return relative


def has_checkpoint(model_dir: str) -> bool:
    d = os.path.join(model_dir, "checkpoints")
    return os.path.isdir(d) and bool(os.listdir(d))


# ---- generic model dir ------------------------------------------------------------------
def _vocab_size_of(path: str) -> int:
    if path.endswith(".txt"):
        return len(read_vocab_file(path))
    return load_vocabulary(path).vocab_size


def save_model_dir(
    model_dir: str,
    config: EncoderConfig,
    params: Mapping[str, Any],
    vocab_file: str,
    lowercase: bool | None,
    extra_meta: Mapping[str, Any] | None = None,
    *,
    step: int = 0,
) -> str:
    """Write config.json, vocab/<file> and an orbax checkpoint whose state is {"params": params}.

    ``params`` is the unboxed EncoderForMLM tree (numpy or jax arrays). Numpy leaves are put on
    the host CPU device, so importing a model larger than one accelerator's memory works.
    """
    if not os.path.isfile(vocab_file):
        raise InputError(f"{vocab_file}: vocabulary file not found")
    size = _vocab_size_of(vocab_file)
    if size > config.vocab_size:
        raise InputError(f"{vocab_file}: {size} entries but the model has only {config.vocab_size} embedding rows")
    vocab_rel = copy_vocab(model_dir, vocab_file)
    info: dict[str, Any] = {
        "model_config": config.to_dict(),
        "vocab": {"path": vocab_rel, "size": size, "lowercase": lowercase},
    }
    info.update(extra_meta or {})

    cpu = jax.devices("cpu")[0]
    state = {"params": jax.tree.map(
        lambda x: x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x), cpu), dict(params))}
    ckpt = Checkpointer(model_dir, async_save=False, max_to_keep=None)
    ckpt.save(step, state, {"step": step, **info}, force=True)
    ckpt.close()
    write_config(model_dir, info)
    return model_dir


def read_model_info(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise InputError(f"{path}: missing (not a gatortron-jax model dir; create one with pretrain or import-hf)")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or not isinstance(info.get("model_config"), dict):
        raise InputError(f"{path}: missing key model_config")
    return info


def model_config_of(model_dir: str, info: Mapping[str, Any] | None = None) -> EncoderConfig:
    info = read_model_info(model_dir) if info is None else info
    try:
        return EncoderConfig.from_dict(dict(info["model_config"]))
    except (ConfigError, TypeError) as e:
        raise InputError(f"{os.path.join(model_dir, CONFIG_FILE)}: model_config: {e}") from None


def vocab_of(model_dir: str, info: Mapping[str, Any] | None = None) -> Any:
    """The model's vocabulary (casing as stored), or None when config.json records none."""
    info = read_model_info(model_dir) if info is None else info
    vinfo = info.get("vocab")
    if not vinfo:
        return None
    if not isinstance(vinfo, dict) or "path" not in vinfo:
        raise InputError(f"{os.path.join(model_dir, CONFIG_FILE)}: vocab: missing key path")
    path = os.path.join(model_dir, vinfo["path"])
    if not os.path.isfile(path):
        raise InputError(f"{path}: vocabulary file named by {CONFIG_FILE} key vocab.path is missing")
    if path.endswith(".txt"):
        return WordPieceVocabulary(path, lowercase=vinfo.get("lowercase"))
    return load_vocabulary(path)


def require_vocab(model_dir: str, info: Mapping[str, Any] | None = None) -> Any:
    """:func:`vocab_of`, but a dir without a vocabulary is an error (every fine-tuned dir has one)."""
    vocab = vocab_of(model_dir, info)
    if vocab is None:
        raise InputError(f"{os.path.join(model_dir, CONFIG_FILE)}: no vocab.path")
    return vocab


def abstract_params(config: EncoderConfig, partitioner: Any = None, device: Any = None) -> Any:
    """ShapeDtypeStructs (with shardings) of the EncoderForMLM params; nothing is allocated."""
    model = EncoderForMLM(config)

    def init(rng):
        return model.init({"params": rng, "dropout": rng}, jnp.zeros((1, 8), jnp.int32))["params"]

    if partitioner is not None:
        with partitioner.activate():
            boxed = jax.eval_shape(init, jax.random.key(0))
        shardings = partitioner.shardings_of(boxed)
    else:
        boxed = jax.eval_shape(init, jax.random.key(0))
        single = jax.sharding.SingleDeviceSharding(device or jax.devices()[0])
        shardings = jax.tree.map(lambda _: single, nn.unbox(boxed))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), nn.unbox(boxed), shardings)


def load_model_dir(
    model_dir: str, partitioner: Any = None, *, encoder_only: bool = False, device: Any = None
) -> tuple[EncoderConfig, Any, Any]:
    """(EncoderConfig, params, vocabulary) from a model dir.

    With ``partitioner`` the params are restored directly into the mesh layout of the logical
    axis rules (no host ever materialises a full replicated copy first); otherwise onto
    ``device`` (default: the first device). ``encoder_only`` skips the MLM head.
    """
    info = read_model_info(model_dir)
    config = model_config_of(model_dir, info)
    vocab = vocab_of(model_dir, info)
    abstract = abstract_params(config, partitioner, device)
    if encoder_only:
        abstract = {"encoder": abstract["encoder"]}
    if not os.path.isdir(os.path.join(model_dir, "checkpoints")):
        raise InputError(f"{os.path.join(model_dir, 'checkpoints')}: missing (config.json without a checkpoint)")
    try:
        params = restore_params(model_dir, abstract)
    except ConfigError as e:
        raise InputError(str(e)) from None
    return config, params, vocab
