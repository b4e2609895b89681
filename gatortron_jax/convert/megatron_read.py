"""Reading Megatron-LM ``.pt`` and NeMo ``.nemo`` BERT checkpoints into our model dir (``import-megatron``).

GatorTron was trained with Megatron-LM; NGC's ``clara/gatortron_og`` ships ``MegatronBERT.pt``
and ``MegatronBERT.nemo``, and sites that pretrain with Megatron-LM or NeMo hold
tensor-parallel (TP) shards. This module holds what reading takes: weights-only loading,
finding the shards (a ``.pt``, a Megatron-LM checkpoint directory, a ``.nemo`` tar), the
hyper-parameters (the checkpoint's ``args``, ``model_config.yaml``, NGC sidecar files) and
:func:`import_megatron`. Rather than a second parameter mapping, the state dict is brought to
canonical names, merged over TP ranks and renamed to the HF ``MegatronBertForPreTraining`` state
dict (:mod:`gatortron_jax.convert.megatron_keys`), then handed to
:func:`gatortron_jax.convert.hf.params_from_hf`. Writing is :mod:`gatortron_jax.convert.megatron_write`.

Safety: ``torch.load(weights_only=True)`` only. Megatron pickles ``args`` as an
``argparse.Namespace`` and its RNG state as numpy arrays (and sometimes Megatron enums, TE
``BytesIO`` extra state); exactly those globals are allowed (:data:`SAFE_GLOBALS`; enums become
inert strings). Anything else is refused with the file and the global named.

Cost (grows with parameter count): measured on a BERT-base-shaped TP-2 fp16 checkpoint (127M
parameters, 254 MB on disk; 2 shared CPU cores) ``import-megatron`` took 45 s wall and peaked at
2.7 GB RSS (0.5 GB of it libraries), i.e. ~4.4x the float32 size: shards are merged tensor by
tensor and freed, but the HF-named dict, our param tree and the orbax write each hold a copy.
For GatorTron-large (8.9B parameters, 36 GB as float32) plan on ~160 GB of host memory and on the
order of an hour.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import re
import shutil
import tarfile
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

try:  # home of _reconstruct / scalar, which pickled numpy arrays (Megatron's RNG state) name
    import numpy._core.multiarray as multiarray  # numpy >= 2
except ImportError:  # pragma: no cover
    import numpy.core.multiarray as multiarray  # numpy 1.x

from gatortron_jax.convert import hf
from gatortron_jax.convert.hf_dir import fresh_mlm_head
from gatortron_jax.convert.megatron_keys import canonicalise, merge_partitions, to_hf_state
from gatortron_jax.core.errors import InputError
from gatortron_jax.models.model_dir import has_checkpoint, save_model_dir

# --------------------------------------------------------------------------------------------
# Weights-only loading with the few globals Megatron checkpoints need.
# --------------------------------------------------------------------------------------------

_ENUM_GLOBAL = re.compile(r"^megatron(\.[a-z_]+)*\.enums\.[A-Za-z_]+$")


def _inert_enum(name: str):
    """Stand-in for a Megatron enum class: ``ModelType(1)`` unpickles to the string ``'ModelType(1)'``."""
    short = name.rsplit(".", 1)[-1]

    def build(*values: Any) -> str:
        return f"{short}({', '.join(map(repr, values))})"

    return build


def _safe_globals() -> dict[str, Any]:
    out: dict[str, Any] = {"argparse.Namespace": argparse.Namespace, "_io.BytesIO": io.BytesIO,
                           "numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for home in ("numpy.core.multiarray", "numpy._core.multiarray"):  # pickled by numpy 1.x / 2.x
        out[f"{home}._reconstruct"] = multiarray._reconstruct
        out[f"{home}.scalar"] = multiarray.scalar
    for name in ("Float32DType", "Float64DType", "Int64DType", "Int32DType", "UInt32DType", "UInt8DType",
                 "BoolDType", "Float16DType"):
        out[f"numpy.dtypes.{name}"] = getattr(np.dtypes, name)
    return out


SAFE_GLOBALS = tuple(_safe_globals())  # names, for docs and error messages


def require_torch(what: str) -> Any:
    """The ``torch`` module, or one InputError saying how to install the CPU build (both directions need it)."""
    try:
        import torch  # local: torch is an optional dependency, needed only for these formats
    except ImportError:  # pragma: no cover  (torch is a test extra; conversion needs the CPU build only)
        raise InputError(f"{what}: Megatron/NeMo checkpoints are PyTorch pickles; install torch "
                         "(pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)") from None
    return torch


def load_weights_only(path: str) -> Any:
    """``torch.load(weights_only=True)`` allowing only :data:`SAFE_GLOBALS` (+ Megatron enums as strings)."""
    torch = require_torch(path)
    import torch.serialization as ts

    allowed = _safe_globals()
    try:
        needed = ts.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # legacy (pre-zip) torch format: let torch.load report below
        needed = []
    refused = [n for n in needed if n not in allowed and not _ENUM_GLOBAL.match(n)]
    if refused:
        raise InputError(
            f"{path}: refused to load: the pickle is not weights-only (it references "
            f"{', '.join(sorted(refused))}); only torch.load(weights_only=True) is used, allowing just "
            "argparse.Namespace, numpy arrays and Megatron enums, because a pickle can run arbitrary code. "
            "If you trust the file, keep only the weights in a trusted environment: c = torch.load(path, "
            "weights_only=False); torch.save({k: c[k] for k in ('model', 'args', 'checkpoint_version') if k in c}, "
            "new_path)")
    pairs = [(obj, name) for name, obj in allowed.items()]
    pairs += [(_inert_enum(n), n) for n in needed if _ENUM_GLOBAL.match(n)]
    try:
        with ts.safe_globals(pairs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"global {m.group(1)}" if m else str(e).splitlines()[0][:200]
        raise InputError(f"{path}: refused to load: the pickle is not weights-only ({what}); only "
                         "torch.load(weights_only=True) is used") from None
    except Exception as e:
        raise InputError(f"{path}: cannot read PyTorch checkpoint ({type(e).__name__}: {e})") from None


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------------------------
# Finding the shards: a .pt file, a Megatron-LM checkpoint directory, a .nemo tar.
# --------------------------------------------------------------------------------------------

_MP_RANK = re.compile(r"^mp_rank_(\d+)(?:_(\d+))?$")
_TP_PP_RANK = re.compile(r"^tp_rank_(\d+)_pp_rank_(\d+)$")


def _ranked(entries: Iterable[tuple[str, int, int]], where: str) -> list[str]:
    """[(path, tp_rank, pp_rank)] → paths in TP order; pipeline stages > 0 or gaps are errors."""
    entries = sorted(entries, key=lambda e: (e[2], e[1]))
    if any(pp for _, _, pp in entries):
        raise InputError(f"{where}: pipeline-parallel checkpoint (pp_rank > 0); only tensor parallelism is "
                         "supported: merge the pipeline stages with Megatron's tools/checkpoint/convert.py first")
    ranks = [tp for _, tp, _ in entries]
    if ranks != list(range(len(ranks))):
        raise InputError(f"{where}: tensor-parallel ranks {ranks} are not 0..{len(ranks) - 1} (a shard is missing)")
    return [p for p, _, _ in entries]


def megatron_shards(path: str) -> list[str]:
    """The ``model_optim_rng.pt`` of each TP rank (or the one ``.pt`` given)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise InputError(f"{path}: not found (expected a Megatron .pt file, a checkpoint directory or a .nemo)")
    root = path
    tracker = os.path.join(root, "latest_checkpointed_iteration.txt")
    if os.path.isfile(tracker):
        with open(tracker, encoding="utf-8") as f:
            value = f.read().strip()
        sub = "release" if value == "release" else f"iter_{int(value):07d}" if value.isdigit() else None
        if sub is None or not os.path.isdir(os.path.join(root, sub)):
            raise InputError(f"{tracker}: names iteration {value!r} but {os.path.join(root, sub or value)} is missing")
        root = os.path.join(root, sub)
    elif not any(_MP_RANK.match(n) for n in os.listdir(root)):
        subs = sorted(n for n in os.listdir(root) if n == "release" or n.startswith("iter_"))
        if len(subs) != 1:
            raise InputError(f"{path}: no mp_rank_XX shards and {len(subs)} iteration directories "
                             f"({', '.join(subs) or 'none'}); pass the one to import")
        root = os.path.join(root, subs[0])
    entries = []
    for name in os.listdir(root):
        m = _MP_RANK.match(name)
        if not m:
            continue
        shard = os.path.join(root, name, "model_optim_rng.pt")
        if not os.path.isfile(shard):
            files = [f for f in os.listdir(os.path.join(root, name)) if f.endswith(".pt")]
            if len(files) != 1:
                raise InputError(f"{os.path.join(root, name)}: no model_optim_rng.pt")
            shard = os.path.join(root, name, files[0])
        entries.append((shard, int(m.group(1)), int(m.group(2) or 0)))
    if not entries:
        raise InputError(f"{root}: no mp_rank_XX/model_optim_rng.pt shards")
    return _ranked(entries, root)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest_dir: str, name: str) -> str:
    """Copy one regular member to dest_dir/name (never a path taken from the archive)."""
    os.makedirs(dest_dir, exist_ok=True)
    out = os.path.join(dest_dir, name)
    src = tar.extractfile(member)
    if src is None:
        raise InputError(f"{tar.name}: member {member.name} is not a regular file")
    with src, open(out, "wb") as f:
        shutil.copyfileobj(src, f, 16 << 20)
    return out


def unpack_nemo(path: str, scratch: str) -> tuple[list[str], str, dict[str, str]]:
    """(weight files in TP order, model_config.yaml path, {tar member name: extracted path} of other files)."""
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise InputError(f"{path}: not a .nemo archive (tar): {e}") from None
    with tar:
        members = {m.name[2:] if m.name.startswith("./") else m.name: m for m in tar.getmembers() if m.isfile()}
        if "model_config.yaml" not in members:
            raise InputError(f"{path}: no model_config.yaml in the archive")
        if any(n.startswith("model_weights/") for n in members):
            raise InputError(f"{path}: holds a distributed (torch_dist/zarr) checkpoint under model_weights/; "
                             "only model_weights.ckpt archives are supported (save it from NeMo with "
                             "dist_ckpt_format disabled, or convert it there)")
        entries = []
        for name, member in members.items():
            parts = name.split("/")
            if parts[-1] != "model_weights.ckpt":
                continue
            if len(parts) == 1:
                entries.append((_extract_member(tar, member, scratch, "model_weights.ckpt"), 0, 0))
                continue
            m = _MP_RANK.match(parts[0]) or _TP_PP_RANK.match(parts[0])
            if len(parts) != 2 or not m:
                raise InputError(f"{path}: unexpected weights member {name}")
            entries.append((_extract_member(tar, member, os.path.join(scratch, parts[0]), "model_weights.ckpt"),
                            int(m.group(1)), int(m.group(2) or 0)))
        if not entries:
            raise InputError(f"{path}: no model_weights.ckpt in the archive")
        config_path = _extract_member(tar, members["model_config.yaml"], scratch, "model_config.yaml")
        others = {}
        for name, member in members.items():
            if (re.fullmatch(r"[\w][\w.+-]*", name) and name not in ("model_config.yaml", "model_weights.ckpt")
                    and member.size < (64 << 20)):  # tokenizer artifacts (vocab.txt etc.), plain names only
                others[name] = _extract_member(tar, member, os.path.join(scratch, "artifacts"), name)
    return _ranked(entries, path), config_path, others


# --------------------------------------------------------------------------------------------
# Hyper-parameters: the checkpoint's own args / model_config.yaml (+ NGC sidecar files).
# --------------------------------------------------------------------------------------------

_ALIASES = {
    "hidden_size": ("hidden_size",),
    "num_layers": ("num_layers", "num_hidden_layers"),
    "num_attention_heads": ("num_attention_heads",),
    "ffn_hidden_size": ("ffn_hidden_size", "intermediate_size"),
    "max_position_embeddings": ("max_position_embeddings",),
    "kv_channels": ("kv_channels",),
    "layernorm_epsilon": ("layernorm_epsilon", "layer_norm_eps"),
    "tokenizer_type": ("tokenizer_type", "tokenizer.type"),
    "vocab_file": ("vocab_file", "tokenizer.vocab_file"),
    "padded_vocab_size": ("padded_vocab_size",),
    "tensor_model_parallel_size": ("tensor_model_parallel_size",),
    "hidden_dropout": ("hidden_dropout", "hidden_dropout_prob"),
    "attention_dropout": ("attention_dropout", "attention_probs_dropout_prob"),
    "num_query_groups": ("num_query_groups",),
    "apply_residual_connection_post_layernorm": ("apply_residual_connection_post_layernorm",),
    "transformer_block_type": ("transformer_block_type",),
    "position_embedding_type": ("position_embedding_type",),
    "activation": ("activation", "hidden_act"),
    "mcore_bert": ("mcore_bert",),
}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _flat_hparams(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flat_hparams(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _plain(value)
    return out


def _read_hparam_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    except Exception as e:  # yaml.YAMLError, json.JSONDecodeError, OSError
        raise InputError(f"{path}: cannot parse ({type(e).__name__}: {e})") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: expected a mapping of hyper-parameters")
    return _flat_hparams(data)


def resolve_hparams(layers: list[tuple[str, Mapping[str, Any]]]) -> dict[str, tuple[Any, str]]:
    """First source (in order) that sets each known hyper-parameter: {name: (value, source)}.

    Keys match exactly or as the last dotted components (NeMo's ``cfg.model.tokenizer.type``).
    """
    out: dict[str, tuple[Any, str]] = {}
    for name, aliases in _ALIASES.items():
        for source, values in layers:
            hit = next((values[k] for a in aliases for k in values if k == a or k.endswith("." + a)), None)
            if hit is not None:
                out[name] = (hit, source)
                break
    return out


def _sidecar_hparams(checkpoint: str) -> list[tuple[str, dict[str, Any]]]:
    """NGC gatortron_og puts config.json / hparam.yaml next to MegatronBERT.pt."""
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(os.path.abspath(checkpoint))
    found = []
    for name in ("hparam.yaml", "hparams.yaml", "model_config.yaml", "config.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            found.append((path, _read_hparam_file(path)))
    return found


def lowercase_from_tokenizer_type(tokenizer_type: Any) -> bool | None:
    """``BertWordPieceLowerCase`` → True, ``BertWordPieceCase`` → False, anything else → None."""
    if not isinstance(tokenizer_type, str):
        return None
    if tokenizer_type.endswith("LowerCase"):
        return True
    if tokenizer_type.endswith("Case"):
        return False
    return None


# --------------------------------------------------------------------------------------------
# import-megatron
# --------------------------------------------------------------------------------------------


def _model_state(ckpt: Any, path: str, is_nemo: bool) -> tuple[dict[str, Any], dict[str, Any] | None, float | None]:
    """(flat model state, args as a dict or None, checkpoint_version or None) of one loaded shard.

    A Megatron ``.pt`` keeps the weights under ``model``; its other entries (optimizer, RNG,
    scheduler state) are not imported; the caller lists them.
    """
    if not isinstance(ckpt, Mapping):
        raise InputError(f"{path}: expected a dict, got {type(ckpt).__name__}")
    if is_nemo or "model" not in ckpt:
        if "model0" in ckpt:
            raise InputError(f"{path}: virtual-pipeline checkpoint (keys model0, model1, ...) is not supported")
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt.get("state_dict"), Mapping) else ckpt
        state = {k: v for k, v in state.items() if k not in ("checkpoint_version", "args")}
        return _flatten(state), None, ckpt.get("checkpoint_version")
    if not isinstance(ckpt["model"], Mapping):
        raise InputError(f"{path}: key model is a {type(ckpt['model']).__name__}, not a state dict")
    args = ckpt.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args) if isinstance(args, Mapping) else None
    return _flatten(ckpt["model"]), args, ckpt.get("checkpoint_version", 0)


def _load_shards(files: list[str], is_nemo: bool) -> dict[str, Any]:
    """Load and canonicalise each TP rank in turn (one raw pickle in memory at a time).

    Returns shards (canonical name → array, per rank), skipped ``_extra_state`` keys, the raw key
    names (to tell mcore from legacy), rank 0's args and checkpoint_version, and the top-level
    training-state entries that are not imported (listed to the user).
    """
    out: dict[str, Any] = {"shards": [], "skipped": [], "raw_keys": set(), "args": None,
                           "checkpoint_version": None, "not_imported": []}
    for i, f in enumerate(files):
        ckpt = load_weights_only(f)
        state, args, version = _model_state(ckpt, f, is_nemo)
        if i == 0:
            out["args"], out["checkpoint_version"] = args, version
            if "model" in ckpt and not is_nemo:
                out["not_imported"] = sorted(str(k) for k in ckpt if k not in ("model", "args", "checkpoint_version"))
        del ckpt
        out["raw_keys"].update(state)
        canon, extra = canonicalise(state, f)
        out["shards"].append(canon)
        out["skipped"] += extra
    return out


def _find_vocab(path: str, hparams: Mapping[str, tuple[Any, str]], artifacts: Mapping[str, str]) -> str | None:
    named = hparams.get("vocab_file", (None, ""))[0]
    if artifacts:
        if isinstance(named, str) and named.startswith("nemo:") and named[5:] in artifacts:
            return artifacts[named[5:]]
        txt = [p for n, p in sorted(artifacts.items()) if n.endswith("vocab.txt")]
        if txt:
            return txt[0]
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(folder, "vocab.txt")):
        return os.path.join(folder, "vocab.txt")
    if isinstance(named, str) and os.path.isfile(named):
        return named
    return None


def _check_architecture(hp: Mapping[str, tuple[Any, str]]) -> None:
    def bad(name: str, ok: Iterable[Any]) -> None:
        if name in hp and hp[name][0] not in ok:
            raise InputError(f"{hp[name][1]}: {name}={hp[name][0]!r} is not supported (a GatorTron / Megatron "
                             f"BERT needs {' or '.join(map(repr, ok))})")

    bad("apply_residual_connection_post_layernorm", (False, None))
    bad("transformer_block_type", ("pre_ln", None))
    bad("position_embedding_type", ("learned_absolute", "absolute", None))
    bad("activation", ("gelu", None))


def import_megatron(path: str, out_dir: str, *, lowercase: bool | None = None, vocab_file: str | None = None,
                    checkpoint_version: float | None = None, scan_layers: bool = True) -> dict[str, Any]:
    """Megatron-LM ``.pt`` (file or TP-sharded directory) or ``.nemo`` → model dir. Returns a summary."""
    from gatortron_jax.text.wordpiece import infer_lowercase, read_vocab_file  # local: pulls in seqio/TF (~20 s)

    if has_checkpoint(out_dir):
        raise InputError(f"{out_dir}: already holds checkpoints; choose an empty output directory")
    scratch = os.path.join(out_dir, ".import_tmp")  # a .nemo is unpacked here (its size again on disk)
    is_nemo = os.path.isfile(path) and path.endswith(".nemo")
    try:
        artifacts: dict[str, str] = {}
        if is_nemo:
            files, config_yaml, artifacts = unpack_nemo(path, scratch)
            layers = [(f"{path}:model_config.yaml", _read_hparam_file(config_yaml))]
        else:
            files, layers = megatron_shards(path), []
        loaded = _load_shards(files, is_nemo)
        shards, skipped, raw_keys, args = loaded["shards"], loaded["skipped"], loaded["raw_keys"], loaded["args"]
        version_found, not_imported = loaded["checkpoint_version"], loaded["not_imported"]
        source = path if len(files) == 1 and not is_nemo else f"{path} ({len(files)} shard(s))"
        if args:
            layers.insert(0, (f"{files[0]} args", args))
        layers += _sidecar_hparams(path) if not is_nemo else []
        hp = resolve_hparams(layers)
        _check_architecture(hp)
        vocab_path = vocab_file or _find_vocab(path, hp, artifacts)  # before the (slow) merge: fail fast
        if vocab_path is None:
            raise InputError(f"{path}: no vocabulary found (no vocab.txt next to it or in the .nemo); pass --vocab")
        if not vocab_path.endswith(".txt") or not os.path.isfile(vocab_path):
            raise InputError(f"{vocab_path}: not found or not a WordPiece vocab.txt (Megatron's BERT tokenizers)")
        mcore = any(".linear_qkv." in k or k.startswith(("model.embedding.", "embedding.")) for k in raw_keys)
        flavour = ("nemo-mcore" if mcore else "nemo-legacy") if is_nemo else ("megatron-mcore" if mcore else "megatron-lm")
        if checkpoint_version is not None:
            version = float(checkpoint_version)
        elif mcore or is_nemo:
            version = 3.0  # mcore and NeMo always store [np, 3, hn]
        else:
            try:
                version = float(version_found or 0)
            except (TypeError, ValueError):
                raise InputError(f"{files[0]}: checkpoint_version {version_found!r} is not a number") from None
        if version not in (0.0, 1.0, 2.0, 3.0):
            raise InputError(f"{files[0]}: checkpoint_version {version} is unknown (0, 1.0, 2.0 or 3.0)")

        emb = shards[0].get("embedding.word_embeddings.weight")
        if emb is None:
            raise InputError(f"{files[0]}: missing tensor embedding.word_embeddings.weight (is this a BERT checkpoint?)")
        if "num_attention_heads" not in hp:
            raise InputError(f"{path}: the number of attention heads is not recorded (no args in the checkpoint, "
                             "no num_attention_heads in model_config.yaml / hparam.yaml / config.json next to it)")
        heads = int(hp["num_attention_heads"][0])
        tp = len(files)
        if "tensor_model_parallel_size" in hp and int(hp["tensor_model_parallel_size"][0]) != tp:
            raise InputError(f"{hp['tensor_model_parallel_size'][1]}: tensor_model_parallel_size="
                             f"{hp['tensor_model_parallel_size'][0]} but {path} has {tp} shard(s)")
        groups = hp.get("num_query_groups", (None,))[0]
        if groups not in (None, heads):
            raise InputError(f"{hp['num_query_groups'][1]}: num_query_groups={groups} (grouped-query attention) "
                             "is not supported")
        hidden = emb.shape[1]
        head_dim = int(hp["kv_channels"][0]) if hp.get("kv_channels", (None,))[0] else hidden // heads
        merged = merge_partitions(shards, version=version, heads=heads, head_dim=head_dim, sources=files)
        state = to_hf_state(merged)
        notes_extra = []
        if "bert.embeddings.token_type_embeddings.weight" not in state:  # trained without binary head
            state["bert.embeddings.token_type_embeddings.weight"] = np.zeros((2, hidden), np.float32)
            notes_extra.append("no tokentype_embeddings (num_tokentypes=0): zero token-type rows stored")
        rows = state["bert.embeddings.word_embeddings.weight"].shape[0]
        padded = hp.get("padded_vocab_size", (None,))[0]
        if padded is not None and int(padded) != rows:
            raise InputError(f"{hp['padded_vocab_size'][1]}: padded_vocab_size={padded} but "
                             f"embedding.word_embeddings.weight has {rows} rows")
        num_layers = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"bert\.encoder\.layer\.(\d+)\.", k))),
                             default=-1)
        if "num_layers" in hp and int(hp["num_layers"][0]) != num_layers:
            raise InputError(f"{hp['num_layers'][1]}: num_layers={hp['num_layers'][0]} but {source} has "
                             f"{num_layers} layers")
        fc1 = state.get("bert.encoder.layer.0.intermediate.dense.weight")
        hf_cfg = {
            "model_type": "megatron-bert", "vocab_size": rows, "hidden_size": hidden, "num_hidden_layers": num_layers,
            "num_attention_heads": heads,
            "intermediate_size": int(fc1.shape[0]) if fc1 is not None else int(hp.get("ffn_hidden_size", (4 * hidden,))[0]),
            "max_position_embeddings": int(state["bert.embeddings.position_embeddings.weight"].shape[0]),
            "type_vocab_size": int(state["bert.embeddings.token_type_embeddings.weight"].shape[0]),
            "layer_norm_eps": float(hp.get("layernorm_epsilon", (1e-5, ""))[0]),  # Megatron's default
            "hidden_dropout_prob": float(hp.get("hidden_dropout", (0.1,))[0]),
            "attention_probs_dropout_prob": float(hp.get("attention_dropout", (0.1,))[0]),
        }
        if not_imported:
            notes_extra.append(f"training state not imported: {', '.join(not_imported)}")
        if "layernorm_epsilon" not in hp:
            notes_extra.append("layernorm_epsilon not recorded: Megatron's default 1e-5 used")
        has_pooler = "bert.pooler.dense.weight" in state
        has_mlm = "cls.predictions.transform.dense.weight" in state
        overrides: dict[str, Any] = {"scan_layers": scan_layers, "use_pooler": has_pooler}
        if head_dim * heads != hidden:
            overrides["head_dim"] = head_dim
        config = hf.config_from_hf(hf_cfg, **overrides)
        used: set[str] = set()
        params = hf.params_from_hf(state, config, source=source, used=used)
        notes = hf.classify_unused(state, used, source=source)
        del state, merged  # params hold their own (transposed) copies
        if not has_mlm:
            params["mlm_head"] = fresh_mlm_head(config)

        tokens = read_vocab_file(vocab_path)
        if len(tokens) > rows:
            raise InputError(f"{vocab_path}: {len(tokens)} entries but {source} has only {rows} word-embedding rows")
        tokenizer_type = hp.get("tokenizer_type", (None, ""))
        if lowercase is not None:
            lower, lower_source = lowercase, "command-line flag"
        elif lowercase_from_tokenizer_type(tokenizer_type[0]) is not None:
            lower = lowercase_from_tokenizer_type(tokenizer_type[0])
            lower_source = f"{tokenizer_type[1]} tokenizer_type={tokenizer_type[0]}"
        else:
            lower, share = infer_lowercase(tokens)
            lower_source = f"inferred from the vocabulary ({100 * share:.2f}% of entries start uppercase)"
        notes["skipped_extra_state"] = sorted(skipped)
        interop = {
            "source": os.path.abspath(path), "format": flavour, "files": [os.path.relpath(f, scratch)
                                                                           if is_nemo else f for f in files],
            "tensor_parallel": tp, "checkpoint_version": version, "tokenizer_type": tokenizer_type[0],
            "hf_model_type": "megatron-bert", "has_mlm_head": has_mlm, "has_pooler": has_pooler,
            "lowercase_source": lower_source, "ignored": notes, "notes": notes_extra, "hf_config": hf_cfg,
            "megatron_hparams": {k: _plain(v) for k, (v, _) in hp.items()},
        }
        save_model_dir(out_dir, config, params, vocab_path, lower, {"interop": interop})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "out_dir": out_dir, "format": flavour, "tensor_parallel": tp, "checkpoint_version": version,
        "layers": num_layers, "hidden": hidden, "embedding_rows": rows, "vocab_entries": len(tokens),
        "lowercase": lower, "lowercase_source": lower_source, "tokenizer_type": tokenizer_type[0],
        "has_mlm_head": has_mlm, "has_pooler": has_pooler, "ignored": notes, "notes": notes_extra,
        "files": files if not is_nemo else [path], "tensors": len(used),
    }
