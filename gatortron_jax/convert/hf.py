"""HF ``transformers`` state dicts (``megatron-bert`` and ``bert``) ↔ our Flax params.

Key mapping (HF prefix ``bert.`` is optional; ``L`` = layer index):

    embeddings.{word,position,token_type}_embeddings.weight → encoder/embeddings/*/embedding
    embeddings.LayerNorm.*  (bert only)                     → encoder/embeddings/ln
    encoder.layer.L.attention.self.{query,key,value}.*      → encoder/layers/attention/{query,key,value}
    encoder.layer.L.attention.output.dense.*                → encoder/layers/attention/out
    encoder.layer.L.attention.ln.*            (megatron)    → encoder/layers/attention_ln  (pre-attention)
    encoder.layer.L.attention.output.LayerNorm.* (bert)     → encoder/layers/attention_ln  (post-attention)
    encoder.layer.L.ln.*                      (megatron)    → encoder/layers/mlp_ln        (pre-MLP)
    encoder.layer.L.output.LayerNorm.*        (bert)        → encoder/layers/mlp_ln        (post-MLP)
    encoder.layer.L.intermediate.dense.* / output.dense.*   → encoder/layers/mlp/wi, wo
    encoder.ln.*                              (megatron)    → encoder/final_ln
    pooler.dense.*                                          → encoder/pooler
    cls.predictions.transform.dense.* / .LayerNorm.*        → mlm_head/transform, transform_ln
    cls.predictions.bias                                    → mlm_head/output_bias (decoder is tied)

Torch ``Linear`` weights are [out, in]; ours are [in, out] (q/k/v split into [H, heads, kv]).
Per-layer tensors are stacked on a leading ``layers`` axis when the model is scanned.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from gatortron_jax.errors import InputError
from gatortron_jax.models.config import EncoderConfig


def config_from_hf(hf: Mapping[str, Any], **overrides: Any) -> EncoderConfig:
    model_type = hf.get("model_type")
    if model_type not in ("megatron-bert", "bert"):
        raise InputError(f"config.json: model_type {model_type!r} is not megatron-bert or bert")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise InputError(f"config.json: hidden_act {hf.get('hidden_act')!r} is not supported (only exact gelu)")
    values = dict(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"], mlp_dim=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"], type_vocab_size=hf.get("type_vocab_size", 2),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), dropout_rate=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout_rate=hf.get("attention_probs_dropout_prob", 0.1),
        initializer_range=hf.get("initializer_range", 0.02), post_ln=model_type == "bert",
    )
    values.update(overrides)
    return EncoderConfig(**values)


def _layer_keys(post_ln: bool) -> dict[str, str]:
    ln_attn = "attention.output.LayerNorm" if post_ln else "attention.ln"
    ln_mlp = "output.LayerNorm" if post_ln else "ln"
    return {
        "attention/query": "attention.self.query",
        "attention/key": "attention.self.key",
        "attention/value": "attention.self.value",
        "attention/out": "attention.output.dense",
        "attention_ln": ln_attn,
        "mlp_ln": ln_mlp,
        "mlp/wi": "intermediate.dense",
        "mlp/wo": "output.dense",
    }


def _set(tree: dict, path: str, value: np.ndarray) -> None:
    *parents, leaf = path.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def params_from_hf(state: Mapping[str, np.ndarray], config: EncoderConfig, *, source: str = "state dict") -> dict:
    """Map an HF state dict (numpy arrays) onto our param tree. Raises InputError naming the key."""
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    used: set[str] = set()
    H, N, D = config.hidden_size, config.num_heads, config.kv_dim

    def get(key: str, shape: tuple[int, ...]) -> np.ndarray:
        full = key if key.startswith("cls.") else prefix + key
        if full not in state:
            raise InputError(f"{source}: missing tensor {full}")
        value = np.asarray(state[full], dtype=np.float32)
        if tuple(value.shape) != tuple(shape):
            raise InputError(f"{source}: {full} has shape {tuple(value.shape)}, config expects {tuple(shape)}")
        used.add(full)
        return value

    params: dict = {}
    emb = "encoder/embeddings"
    vocab_rows = state.get(prefix + "embeddings.word_embeddings.weight")
    if vocab_rows is not None and vocab_rows.shape[0] != config.vocab_size:
        raise InputError(f"{source}: word_embeddings has {vocab_rows.shape[0]} rows, config vocab_size={config.vocab_size}")
    _set(params, f"{emb}/word_embeddings/embedding", get("embeddings.word_embeddings.weight", (config.vocab_size, H)))
    _set(params, f"{emb}/position_embeddings/embedding",
         get("embeddings.position_embeddings.weight", (config.max_position_embeddings, H)))
    _set(params, f"{emb}/token_type_embeddings/embedding",
         get("embeddings.token_type_embeddings.weight", (config.type_vocab_size, H)))
    if config.post_ln:
        _set(params, f"{emb}/ln/scale", get("embeddings.LayerNorm.weight", (H,)))
        _set(params, f"{emb}/ln/bias", get("embeddings.LayerNorm.bias", (H,)))

    layers = []
    for i in range(config.num_layers):
        lp: dict = {}
        for ours, theirs in _layer_keys(config.post_ln).items():
            base = f"encoder.layer.{i}.{theirs}"
            if ours.endswith("_ln"):
                _set(lp, f"{ours}/scale", get(f"{base}.weight", (H,)))
                _set(lp, f"{ours}/bias", get(f"{base}.bias", (H,)))
            elif ours in ("attention/query", "attention/key", "attention/value"):
                _set(lp, f"{ours}/kernel", get(f"{base}.weight", (N * D, H)).T.reshape(H, N, D))
                _set(lp, f"{ours}/bias", get(f"{base}.bias", (N * D,)).reshape(N, D))
            elif ours == "attention/out":
                _set(lp, f"{ours}/kernel", get(f"{base}.weight", (H, N * D)).T.reshape(N, D, H))
                _set(lp, f"{ours}/bias", get(f"{base}.bias", (H,)))
            elif ours == "mlp/wi":
                _set(lp, f"{ours}/kernel", get(f"{base}.weight", (config.mlp_dim, H)).T)
                _set(lp, f"{ours}/bias", get(f"{base}.bias", (config.mlp_dim,)))
            else:  # mlp/wo
                _set(lp, f"{ours}/kernel", get(f"{base}.weight", (H, config.mlp_dim)).T)
                _set(lp, f"{ours}/bias", get(f"{base}.bias", (H,)))
        layers.append(lp)
    if config.scan_layers:
        import jax

        params["encoder"]["layers"] = jax.tree.map(lambda *xs: np.stack(xs), *layers)
    else:
        for i, lp in enumerate(layers):
            params["encoder"][f"layers_{i}"] = lp
    if not config.post_ln:
        _set(params, "encoder/final_ln/scale", get("encoder.ln.weight", (H,)))
        _set(params, "encoder/final_ln/bias", get("encoder.ln.bias", (H,)))
    if config.use_pooler and prefix + "pooler.dense.weight" in state:
        _set(params, "encoder/pooler/kernel", get("pooler.dense.weight", (H, H)).T)
        _set(params, "encoder/pooler/bias", get("pooler.dense.bias", (H,)))
    if "cls.predictions.transform.dense.weight" in state:
        _set(params, "mlm_head/transform/kernel", get("cls.predictions.transform.dense.weight", (H, H)).T)
        _set(params, "mlm_head/transform/bias", get("cls.predictions.transform.dense.bias", (H,)))
        _set(params, "mlm_head/transform_ln/scale", get("cls.predictions.transform.LayerNorm.weight", (H,)))
        _set(params, "mlm_head/transform_ln/bias", get("cls.predictions.transform.LayerNorm.bias", (H,)))
        _set(params, "mlm_head/output_bias", get("cls.predictions.bias", (config.vocab_size,)))
    return params
