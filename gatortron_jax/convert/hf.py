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

import json
import os
import re
from typing import Any, Mapping

import numpy as np

from gatortron_jax.core.errors import InputError
from gatortron_jax.models.config import EncoderConfig


def config_from_hf(hf: Mapping[str, Any], **overrides: Any) -> EncoderConfig:
    model_type = hf.get("model_type")
    if model_type not in ("megatron-bert", "bert"):
        raise InputError(f"config.json: model_type {model_type!r} is not megatron-bert or bert")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise InputError(f"config.json: hidden_act {hf.get('hidden_act')!r} is not supported (only exact gelu)")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"config.json: position_embedding_type {hf.get('position_embedding_type')!r} is not "
                         "supported (only absolute)")
    if hf.get("is_decoder"):
        raise InputError("config.json: is_decoder is true; only bidirectional encoders are supported")
    missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size", "max_position_embeddings") if k not in hf]
    if missing:
        raise InputError(f"config.json: missing key {missing[0]}")
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


def params_from_hf(
    state: Mapping[str, np.ndarray], config: EncoderConfig, *, source: str = "state dict", used: set[str] | None = None
) -> dict:
    """Map an HF state dict (numpy arrays) onto our param tree. Raises InputError naming the key.

    ``used`` (optional) collects the state-dict keys that were consumed.
    """
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    used = set() if used is None else used
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


# ---------------------------------------------------------------------------------------
# Reading an HF model directory (as a user has it after downloading) and the reverse map.
# ---------------------------------------------------------------------------------------

# Keys that are legitimately not part of the encoder: dropped with a note, never silently.
_TASK_HEAD_PREFIXES = ("cls.seq_relationship.", "classifier.", "qa_outputs.")
_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_TIED = {"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
         "cls.predictions.decoder.bias": "cls.predictions.bias"}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def read_hf_config(hf_dir: str) -> dict[str, Any]:
    path = os.path.join(hf_dir, "config.json")
    if not os.path.isdir(hf_dir):
        raise InputError(f"{hf_dir}: not a directory (expected an HF model directory with config.json)")
    if not os.path.isfile(path):
        raise InputError(f"{path}: missing (an HF model directory needs config.json)")
    try:
        with open(path, encoding="utf-8") as f:
            hf = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(hf, dict):
        raise InputError(f"{path}: expected a JSON object")
    if "model_type" not in hf:
        raise InputError(f"{path}: missing key model_type")
    return hf


def to_numpy(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):  # torch: bf16 has no numpy dtype, go through float32
        import torch

        t = tensor.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        return t.numpy()
    return np.asarray(tensor)


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover
        raise InputError(f"{path}: reading safetensors needs the 'safetensors' package (pip install safetensors)") from None
    try:
        framework = "pt"
        try:
            import torch  # noqa: F401  (torch reads bf16/fp16; numpy cannot hold bf16)
        except ImportError:  # pragma: no cover
            framework = "np"
        out = {}
        with safe_open(path, framework=framework) as f:
            for key in f.keys():
                out[key] = to_numpy(f.get_tensor(key))
        return out
    except InputError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError / OSError
        raise InputError(f"{path}: cannot read safetensors file ({type(e).__name__}: {e})") from None


def _load_torch_bin(path: str) -> dict[str, np.ndarray]:
    """``torch.load(weights_only=True)`` only: a checkpoint from elsewhere is untrusted code otherwise."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        raise InputError(f"{path}: reading pytorch_model.bin needs torch (or convert it to model.safetensors)") from None
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"global {m.group(1)}" if m else str(e).splitlines()[0][:200]
        raise InputError(
            f"{path}: refused to load: the pickle is not weights-only (it references {what}); only "
            "torch.load(weights_only=True) is used because a pickle can run arbitrary code. Re-save the "
            "state dict from a trusted environment (torch.save(model.state_dict(), ...)) or as model.safetensors"
        ) from None
    except Exception as e:
        raise InputError(f"{path}: cannot read PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    out = {}
    for key, value in state.items():
        if not hasattr(value, "detach"):
            raise InputError(f"{path}: entry {key} is a {type(value).__name__}, not a tensor")
        out[key] = to_numpy(value)
    return out


def read_hf_state_dict(hf_dir: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """(state dict as float numpy arrays, the weight files read). Prefers safetensors."""
    for name in WEIGHT_FILES:
        path = os.path.join(hf_dir, name)
        if not os.path.isfile(path):
            continue
        loader = _load_safetensors if ".safetensors" in name else _load_torch_bin
        if not name.endswith(".index.json"):
            return loader(path), [path]
        try:
            with open(path, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: cannot read the shard index (key weight_map; {type(e).__name__})") from None
        state: dict[str, np.ndarray] = {}
        files = []
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(hf_dir, shard)
            if not os.path.isfile(shard_path):
                raise InputError(f"{path}: shard {shard} listed in weight_map is missing")
            state.update(loader(shard_path))
            files.append(shard_path)
        return state, files
    raise InputError(f"{hf_dir}: no weights found (expected one of {', '.join(WEIGHT_FILES)})")


def classify_unused(state: Mapping[str, np.ndarray], used: set[str], *, source: str) -> dict[str, list[str]]:
    """Sort the keys ``params_from_hf`` did not consume; an unknown tensor is an error.

    Returns {"task_heads": [...], "buffers": [...], "tied": [...]}. A decoder weight that is
    *not* equal to the word embeddings (untied output layer) cannot be represented: error.
    """
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    notes: dict[str, list[str]] = {"task_heads": [], "buffers": [], "tied": []}
    for key in sorted(set(state) - used):
        bare = key[len(prefix):] if prefix and key.startswith(prefix) else key
        if bare.startswith(_TASK_HEAD_PREFIXES):
            notes["task_heads"].append(key)
        elif bare.endswith(_BUFFER_SUFFIXES):
            notes["buffers"].append(key)
        elif key in _TIED:
            target = _TIED[key]
            target = target if target.startswith("cls.") else prefix + target
            if target in state and not np.array_equal(np.asarray(state[key]), np.asarray(state[target])):
                raise InputError(f"{source}: {key} differs from {target}; untied output embeddings are not supported")
            notes["tied"].append(key)
        else:
            raise InputError(f"{source}: unexpected tensor {key} (not part of a megatron-bert/bert encoder, "
                             "MLM head or known task head)")
    return notes


def _get(tree: Mapping, path: str) -> np.ndarray:
    for p in path.split("/"):
        tree = tree[p]
    return np.asarray(tree)


def params_to_hf(params: Mapping, config: EncoderConfig, *, include_mlm_head: bool = True,
                 prefix: str | None = None, include_pooler: bool = True) -> dict[str, np.ndarray]:
    """Inverse of ``params_from_hf``: our (scanned or per-layer) params → an HF state dict.

    With the MLM head, keys are ``bert.*`` + ``cls.predictions.*`` (``*ForMaskedLM`` layout,
    decoder tied so not written); without it, bare encoder keys (``*Model`` layout), or
    ``prefix`` + encoder keys (``bert.`` for the task-head layouts, see :func:`head_to_hf`). The
    pooler is written when the params have one and ``include_pooler``. Arrays are copied exactly
    (transposes/reshapes only).
    """
    H, N, D = config.hidden_size, config.num_heads, config.kv_dim
    if prefix is None:
        prefix = "bert." if include_mlm_head else ""
    enc = params["encoder"]
    out: dict[str, np.ndarray] = {}

    def put(key: str, value: Any) -> None:
        out[key if key.startswith("cls.") else prefix + key] = np.ascontiguousarray(np.asarray(value))

    emb = enc["embeddings"]
    put("embeddings.word_embeddings.weight", emb["word_embeddings"]["embedding"])
    put("embeddings.position_embeddings.weight", emb["position_embeddings"]["embedding"])
    put("embeddings.token_type_embeddings.weight", emb["token_type_embeddings"]["embedding"])
    if config.post_ln:
        put("embeddings.LayerNorm.weight", emb["ln"]["scale"])
        put("embeddings.LayerNorm.bias", emb["ln"]["bias"])
    for i in range(config.num_layers):
        if config.scan_layers:
            lp = {}
            for ours in _layer_keys(config.post_ln):
                for leaf in ("scale", "bias") if ours.endswith("_ln") else ("kernel", "bias"):
                    lp[f"{ours}/{leaf}"] = _get(enc["layers"], f"{ours}/{leaf}")[i]
        else:
            lp = {f"{ours}/{leaf}": _get(enc[f"layers_{i}"], f"{ours}/{leaf}")
                  for ours in _layer_keys(config.post_ln)
                  for leaf in (("scale", "bias") if ours.endswith("_ln") else ("kernel", "bias"))}
        for ours, theirs in _layer_keys(config.post_ln).items():
            base = f"encoder.layer.{i}.{theirs}"
            if ours.endswith("_ln"):
                put(f"{base}.weight", lp[f"{ours}/scale"])
                put(f"{base}.bias", lp[f"{ours}/bias"])
            elif ours in ("attention/query", "attention/key", "attention/value"):
                put(f"{base}.weight", lp[f"{ours}/kernel"].reshape(H, N * D).T)
                put(f"{base}.bias", lp[f"{ours}/bias"].reshape(N * D))
            elif ours == "attention/out":
                put(f"{base}.weight", lp[f"{ours}/kernel"].reshape(N * D, H).T)
                put(f"{base}.bias", lp[f"{ours}/bias"])
            else:
                put(f"{base}.weight", lp[f"{ours}/kernel"].T)
                put(f"{base}.bias", lp[f"{ours}/bias"])
    if not config.post_ln:
        put("encoder.ln.weight", enc["final_ln"]["scale"])
        put("encoder.ln.bias", enc["final_ln"]["bias"])
    if "pooler" in enc and include_pooler:
        put("pooler.dense.weight", np.asarray(enc["pooler"]["kernel"]).T)
        put("pooler.dense.bias", enc["pooler"]["bias"])
    if include_mlm_head:
        head = params["mlm_head"]
        put("cls.predictions.transform.dense.weight", np.asarray(head["transform"]["kernel"]).T)
        put("cls.predictions.transform.dense.bias", head["transform"]["bias"])
        put("cls.predictions.transform.LayerNorm.weight", head["transform_ln"]["scale"])
        put("cls.predictions.transform.LayerNorm.bias", head["transform_ln"]["bias"])
        put("cls.predictions.bias", head["output_bias"])
    return out


def hf_config_dict(config: EncoderConfig, *, model_type: str | None = None, include_mlm_head: bool = True,
                   base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """config.json for ``transformers``; ``base`` (the imported config.json) keeps unrelated fields."""
    if model_type is None:
        model_type = "bert" if config.post_ln else "megatron-bert"
    if (model_type == "bert") != config.post_ln:
        raise InputError(f"model_type {model_type!r} does not match post_ln={config.post_ln} "
                         "(bert is post-LN, megatron-bert is pre-LN)")
    if config.hidden_size != config.num_heads * config.kv_dim:
        raise InputError(f"head_dim={config.head_dim} x num_heads={config.num_heads} != hidden_size="
                         f"{config.hidden_size}: transformers cannot represent this model")
    arch = {"bert": "Bert", "megatron-bert": "MegatronBert"}[model_type]
    out = {k: v for k, v in (base or {}).items() if k not in ("architectures", "torch_dtype", "dtype")}
    out.update(
        model_type=model_type, architectures=[arch + ("ForMaskedLM" if include_mlm_head else "Model")],
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, intermediate_size=config.mlp_dim, hidden_act="gelu",
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps, hidden_dropout_prob=config.dropout_rate,
        attention_probs_dropout_prob=config.attention_dropout_rate, initializer_range=config.initializer_range,
        position_embedding_type="absolute", tie_word_embeddings=True,
    )
    out.setdefault("pad_token_id", 0)
    return out


# ----------------------------------------------------------------------------- fine-tuned heads

# head (our params key) → (HF architecture suffix, HF key prefix, whether HF's model has a pooler)
HEAD_ARCHITECTURES = {
    "token_classification": ("ForTokenClassification", "classifier", False),
    "sequence_classification": ("ForSequenceClassification", "classifier", True),
    "span_qa": ("ForQuestionAnswering", "qa_outputs", False),
}


def head_to_hf(params: Mapping, config: EncoderConfig, head: str) -> dict[str, np.ndarray]:
    """A fine-tuned model's params → the state dict of ``Bert``/``MegatronBert`` + ``HEAD_ARCHITECTURES[head]``.

    The encoder goes under ``bert.``; the head's dense layer becomes ``classifier.*`` /
    ``qa_outputs.*`` (``weight`` = our kernel transposed). Sequence classification needs the
    pooler (HF classifies the pooled [CLS]); the others drop it, as HF builds them without one.
    """
    _, key, with_pooler = HEAD_ARCHITECTURES[head]
    if with_pooler and "pooler" not in params["encoder"]:
        raise InputError("sequence classification export needs the encoder's pooler (representation 'pooled')")
    out = params_to_hf(params, config, include_mlm_head=False, prefix="bert.", include_pooler=with_pooler)
    dense = params[key]
    out[f"{key}.weight"] = np.ascontiguousarray(np.asarray(dense["kernel"]).T)
    out[f"{key}.bias"] = np.ascontiguousarray(np.asarray(dense["bias"]))
    return out


def head_config_dict(config: EncoderConfig, head: str, *, labels: list[str] | None = None, regression: bool = False,
                     model_type: str | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """config.json of a task-head export: architectures, num_labels, id2label/label2id, problem_type."""
    out = hf_config_dict(config, model_type=model_type, include_mlm_head=False, base=base)
    arch = out["architectures"][0][: -len("Model")] + HEAD_ARCHITECTURES[head][0]
    out["architectures"] = [arch]
    out.pop("tie_word_embeddings", None)
    if head == "span_qa":
        out["num_labels"] = 2
    elif regression:
        out.update(num_labels=1, problem_type="regression", id2label={"0": "score"}, label2id={"score": 0})
    else:
        out.update(num_labels=len(labels), id2label={str(i): l for i, l in enumerate(labels)},
                   label2id={l: i for i, l in enumerate(labels)})
        if head == "sequence_classification":
            out["problem_type"] = "single_label_classification"
    return out
