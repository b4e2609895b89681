"""The Megatron side of the name and layout mapping: canonical names, tensor-parallel rules, QKV order.

Names are first brought to one canonical (legacy Megatron-LM) form, whatever the source:

    Megatron-LM .pt   ckpt["model"]["language_model"]["embedding"|"encoder"|"transformer"|"pooler"],
                      ckpt["model"]["lm_head"|"binary_head"]  (nested dicts, flattened by the reader)
    NeMo legacy       model.language_model.{embedding,encoder}.* , model.lm_head.*, model.binary_head.*
    NeMo mcore        model.embedding.*, model.encoder.layers.N.self_attention.linear_qkv (+ TE
                      layer_norm_weight), linear_proj, mlp.linear_fc1/fc2, pre_mlp_layernorm,
                      model.lm_head.layer_norm, model.output_layer.bias; TE ``_extra_state`` skipped

and then paired one to one with the HF ``MegatronBertForPreTraining`` names (``_NAME_PAIRS``), so
that :mod:`gatortron_jax.convert.hf` is the only mapping to our parameter tree.

Tensor-parallel merge (Megatron's ``ColumnParallelLinear`` / ``RowParallelLinear`` /
``VocabParallelEmbedding``): QKV, ``dense_h_to_4h``, word embeddings and ``lm_head.bias`` are
concatenated on dim 0; attention ``dense`` and ``dense_4h_to_h`` weights on dim 1; the rest is
replicated (checked equal across ranks). :func:`split_partitions` is the inverse, for export.

QKV row order per TP partition, as Megatron's own ``checkpointing.fix_query_key_value_ordering``
defines it (np = heads per partition, hn = head dim): checkpoint_version 0 ``[3, np, hn]``,
1.0 ``[np, hn, 3]``, >= 2.0 (and every mcore / NeMo checkpoint) ``[np, 3, hn]``. A ``.pt``
without ``checkpoint_version`` is version 0, as Megatron reads it.

Pure numpy and regular expressions: no torch, no files (the reader and writer own those).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from gatortron_jax.convert import hf
from gatortron_jax.core.errors import InputError


_RENAMES = [  # (pattern, replacement) applied in order to a key with any leading "model." removed
    (r"^language_model\.embedding\.", "embedding."),
    (r"^language_model\.(encoder|transformer)\.", ""),
    (r"^encoder\.", ""),  # mcore
    (r"^language_model\.pooler\.", "pooler."),
    (r"^lm_head\.layer_norm\.", "lm_head.layernorm."),  # mcore
    (r"^output_layer\.bias$", "lm_head.bias"),  # mcore
    (r"^(layers\.\d+)\.attention\.", r"\1.self_attention."),  # Megatron < 2.x
    (r"^(layers\.\d+)\.self_attention\.linear_qkv\.layer_norm_(weight|bias)$", r"\1.input_layernorm.\2"),  # TE
    (r"^(layers\.\d+)\.self_attention\.linear_qkv\.", r"\1.self_attention.query_key_value."),
    (r"^(layers\.\d+)\.self_attention\.linear_proj\.", r"\1.self_attention.dense."),
    (r"^(layers\.\d+)\.mlp\.linear_fc1\.layer_norm_(weight|bias)$", r"\1.post_attention_layernorm.\2"),  # TE
    (r"^(layers\.\d+)\.pre_mlp_layernorm\.", r"\1.post_attention_layernorm."),
    (r"^(layers\.\d+)\.mlp\.linear_fc1\.", r"\1.mlp.dense_h_to_4h."),
    (r"^(layers\.\d+)\.mlp\.linear_fc2\.", r"\1.mlp.dense_4h_to_h."),
]
_WB = r"\.(weight|bias)"
CANONICAL = re.compile(
    r"^(embedding\.(word_embeddings|position_embeddings|tokentype_embeddings)\.weight"
    r"|layers\.\d+\.(input_layernorm|post_attention_layernorm|self_attention\.query_key_value"
    r"|self_attention\.dense|mlp\.dense_h_to_4h|mlp\.dense_4h_to_h)" + _WB +
    r"|(final_layernorm|pooler\.dense|lm_head\.dense|lm_head\.layernorm|binary_head)" + _WB +
    r"|lm_head\.bias|output_layer\.weight)$")

COLUMN_PARALLEL = re.compile(r"(query_key_value|dense_h_to_4h)\.(weight|bias)$|^embedding\.word_embeddings\.weight$"
                             r"|^lm_head\.bias$|^output_layer\.weight$")
ROW_PARALLEL = re.compile(r"(self_attention\.dense|dense_4h_to_h)\.weight$")


def canonical_name(key: str) -> str | None:
    """The legacy Megatron-LM name of ``key`` (any format), or None when it is not a BERT tensor."""
    name = key[len("model."):] if key.startswith("model.") else key
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name if CANONICAL.match(name) else None


def canonicalise(state: Mapping[str, Any], source: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """(canonical name → array, skipped TE ``_extra_state`` keys). Unknown keys: one error listing all."""
    out: dict[str, np.ndarray] = {}
    skipped, unknown = [], []
    for key, value in state.items():
        if key.endswith("_extra_state"):
            skipped.append(key)
            continue
        name = canonical_name(key)
        if name is None:
            unknown.append(key)
            continue
        if not hasattr(value, "detach") and not isinstance(value, np.ndarray):
            raise InputError(f"{source}: entry {key} is a {type(value).__name__}, not a tensor")
        if name in out:
            raise InputError(f"{source}: tensor {key} appears twice (as {name})")
        out[name] = hf.to_numpy(value)
    if unknown:
        raise InputError(f"{source}: {len(unknown)} unexpected tensor(s), not part of a Megatron BERT "
                         f"(embedding, encoder layers, pooler, lm_head, binary_head): {', '.join(sorted(unknown))}")
    return out, skipped


def _qkv_to_heads_first(x: np.ndarray, version: float, heads: int, head_dim: int, key: str, source: str) -> np.ndarray:
    """One partition's QKV rows → [heads, 3, head_dim, ...] (see the module docstring for versions)."""
    rest = x.shape[1:]
    if x.shape[0] != 3 * heads * head_dim:
        raise InputError(f"{source}: {key} has {x.shape[0]} rows, expected 3 x {heads} heads x {head_dim} per partition")
    if version == 0:
        return x.reshape(3, heads, head_dim, *rest).swapaxes(0, 1)
    if version == 1:
        return x.reshape(heads, head_dim, 3, *rest).swapaxes(1, 2)
    return x.reshape(heads, 3, head_dim, *rest)


def _concat(parts: list[np.ndarray], axis: int) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def merge_partitions(shards: list[dict[str, np.ndarray]], *, version: float, heads: int, head_dim: int,
                     sources: list[str]) -> dict[str, np.ndarray]:
    """TP shards (canonical names) → full tensors; QKV comes out as [heads, 3, head_dim, ...].

    Consumes ``shards`` (each tensor is popped once merged), so the per-rank copies are freed
    as the full ones appear instead of both living until the end.
    """
    tp = len(shards)
    if heads % tp:
        raise InputError(f"{sources[0]}: {heads} attention heads do not divide over {tp} tensor-parallel ranks")
    names = set(shards[0])
    for shard, src in zip(shards[1:], sources[1:]):
        if set(shard) != names:
            diff = sorted(names.symmetric_difference(shard))
            raise InputError(f"{src}: holds different tensors than {sources[0]} (e.g. {diff[0]})")
    merged: dict[str, np.ndarray] = {}
    for name in sorted(names):
        parts = [s.pop(name) for s in shards]
        if "query_key_value" in name:
            parts = [_qkv_to_heads_first(p, version, heads // tp, head_dim, name, src) for p, src in zip(parts, sources)]
            merged[name] = _concat(parts, 0)
        elif COLUMN_PARALLEL.search(name):
            merged[name] = _concat(parts, 0)
        elif ROW_PARALLEL.search(name):
            merged[name] = _concat(parts, 1)
        else:
            for p, src in zip(parts[1:], sources[1:]):
                if p.shape != parts[0].shape or not np.array_equal(p, parts[0]):
                    raise InputError(f"{src}: replicated tensor {name} differs from {sources[0]}")
            merged[name] = parts[0]
    return merged


_NAME_PAIRS = [  # (canonical Megatron name, HF MegatronBertForPreTraining name); {i} layer, {wb} weight|bias
    ("embedding.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"),
    ("embedding.position_embeddings.weight", "bert.embeddings.position_embeddings.weight"),
    ("embedding.tokentype_embeddings.weight", "bert.embeddings.token_type_embeddings.weight"),
    ("layers.{i}.input_layernorm.{wb}", "bert.encoder.layer.{i}.attention.ln.{wb}"),
    ("layers.{i}.self_attention.dense.{wb}", "bert.encoder.layer.{i}.attention.output.dense.{wb}"),
    ("layers.{i}.post_attention_layernorm.{wb}", "bert.encoder.layer.{i}.ln.{wb}"),
    ("layers.{i}.mlp.dense_h_to_4h.{wb}", "bert.encoder.layer.{i}.intermediate.dense.{wb}"),
    ("layers.{i}.mlp.dense_4h_to_h.{wb}", "bert.encoder.layer.{i}.output.dense.{wb}"),
    ("final_layernorm.{wb}", "bert.encoder.ln.{wb}"),
    ("pooler.dense.{wb}", "bert.pooler.dense.{wb}"),
    ("lm_head.dense.{wb}", "cls.predictions.transform.dense.{wb}"),
    ("lm_head.layernorm.{wb}", "cls.predictions.transform.LayerNorm.{wb}"),
    ("lm_head.bias", "cls.predictions.bias"),
    ("output_layer.weight", "cls.predictions.decoder.weight"),
    ("binary_head.{wb}", "cls.seq_relationship.{wb}"),
]


def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{wb\}", r"(?P<wb>weight|bias)")
    return re.compile(f"^{pattern}$")


_FORWARD = [(_template_regex(a), b) for a, b in _NAME_PAIRS]
_BACKWARD = [(_template_regex(b), a) for a, b in _NAME_PAIRS]
_QKV = re.compile(r"^layers\.(?P<i>\d+)\.self_attention\.query_key_value\.(?P<wb>weight|bias)$")
_HF_QKV = re.compile(r"^bert\.encoder\.layer\.(?P<i>\d+)\.attention\.self\.(?P<part>query|key|value)\."
                     r"(?P<wb>weight|bias)$")


def _rename(name: str, table: list[tuple[re.Pattern, str]]) -> str:
    for regex, target in table:
        m = regex.match(name)
        if m:
            return target.format(**m.groupdict())
    raise InputError(f"tensor {name} has no counterpart in the other naming")


def to_hf_state(merged: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merged canonical tensors → an HF megatron-bert state dict (QKV split into query/key/value).

    Consumes ``merged`` (popped tensor by tensor, for memory).
    """
    out: dict[str, np.ndarray] = {}
    for name in sorted(merged):
        value = merged.pop(name)
        m = _QKV.match(name)
        if m:
            heads, _, head_dim = value.shape[:3]
            for j, part in enumerate(("query", "key", "value")):
                out[f"bert.encoder.layer.{m['i']}.attention.self.{part}.{m['wb']}"] = np.ascontiguousarray(
                    value[:, j].reshape(heads * head_dim, *value.shape[3:]))
        else:
            out[_rename(name, _FORWARD)] = value
    return out


def from_hf_state(state: Mapping[str, np.ndarray], *, heads: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_hf_state`: query/key/value stacked to [heads, 3, head_dim, ...]."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        m = _HF_QKV.match(key)
        if not m:
            out[_rename(key, _BACKWARD)] = value
        elif m["part"] == "query":
            parts = [state[f"bert.encoder.layer.{m['i']}.attention.self.{p}.{m['wb']}"] for p in ("query", "key", "value")]
            out[f"layers.{m['i']}.self_attention.query_key_value.{m['wb']}"] = np.stack(
                [p.reshape(heads, -1, *p.shape[1:]) for p in parts], axis=1)
    return out


def split_partitions(full: Mapping[str, np.ndarray], tp: int) -> list[dict[str, np.ndarray]]:
    """Full canonical tensors (QKV [heads, 3, hd, ...]) → ``tp`` shards in checkpoint_version 3 layout."""
    shards: list[dict[str, np.ndarray]] = [{} for _ in range(tp)]
    for name, value in full.items():
        if "query_key_value" in name:
            for r, part in enumerate(np.split(value, tp, axis=0)):
                shards[r][name] = np.ascontiguousarray(part.reshape(-1, *part.shape[3:]))
        elif COLUMN_PARALLEL.search(name) or ROW_PARALLEL.search(name):
            axis = 1 if ROW_PARALLEL.search(name) else 0
            if value.shape[axis] % tp:
                raise InputError(f"{name}: dimension {value.shape[axis]} does not split over {tp} tensor-parallel ranks")
            for r, part in enumerate(np.split(value, tp, axis=axis)):
                shards[r][name] = np.ascontiguousarray(part)
        else:
            for r in range(tp):
                shards[r][name] = value
    return shards
