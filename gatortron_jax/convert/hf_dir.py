"""HF transformers directories in and out of our model dir (``import-hf`` / ``export-hf``).

Weights are read with safetensors or ``torch.load(weights_only=True)`` only; the parameter
mapping itself lives in :mod:`gatortron_jax.convert.hf`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gatortron_jax.convert import hf
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.core.checkpoints import restore_params
from gatortron_jax.finetuning import adapters
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.models.model_dir import (
    kind_of, load_model_dir, model_config_of, read_model_info, save_model_dir, vocab_of,
)
from gatortron_jax.text.wordpiece import infer_lowercase, read_vocab_file

log = logging.getLogger(__name__)


def _decide_lowercase(hf_dir: str, vocab_tokens: list[str], flag: bool | None) -> tuple[bool, str]:
    if flag is not None:
        return flag, "command-line flag"
    tc = os.path.join(hf_dir, "tokenizer_config.json")
    if os.path.isfile(tc):
        try:
            with open(tc, encoding="utf-8") as f:
                value = json.load(f).get("do_lower_case")
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{tc}: not valid JSON ({e})") from None
        if isinstance(value, bool):
            return value, f"{tc} do_lower_case"
    tj = os.path.join(hf_dir, "tokenizer.json")
    if os.path.isfile(tj):
        normalizer = (_read_json(tj).get("normalizer") or {})
        if normalizer.get("type") == "BertNormalizer" and isinstance(normalizer.get("lowercase"), bool):
            return normalizer["lowercase"], f"{tj} normalizer.lowercase"
    lower, share = infer_lowercase(vocab_tokens)
    return lower, f"inferred from the vocabulary ({100 * share:.2f}% of entries start uppercase)"


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def _vocab_from_hf_dir(hf_dir: str, scratch: str) -> str:
    """vocab.txt, or one written (in id order) from a WordPiece tokenizer.json."""
    path = os.path.join(hf_dir, "vocab.txt")
    if os.path.isfile(path):
        return path
    tj = os.path.join(hf_dir, "tokenizer.json")
    if os.path.isfile(tj):
        model = _read_json(tj).get("model") or {}
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise InputError(f"{tj}: key model.type is {model.get('type')!r}; only WordPiece tokenizers are supported")
        by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise InputError(f"{tj}: model.vocab ids are not 0..{len(by_id) - 1}")
        os.makedirs(scratch, exist_ok=True)
        out = os.path.join(scratch, "vocab.txt")
        with open(out, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t, _ in by_id))
        return out
    raise InputError(f"{hf_dir}: no vocab.txt or tokenizer.json (the model's tokenizer files are needed)")


def import_hf(hf_dir: str, out_dir: str, *, lowercase: bool | None = None, scan_layers: bool = True) -> dict[str, Any]:
    """HF megatron-bert/bert directory → model dir. Returns a summary (printed by the CLI)."""
    if os.path.isdir(os.path.join(out_dir, "checkpoints")) and os.listdir(os.path.join(out_dir, "checkpoints")):
        raise InputError(f"{out_dir}: already holds checkpoints; choose an empty output directory")
    hf_config = hf.read_hf_config(hf_dir)
    config_path = os.path.join(hf_dir, "config.json")
    state, files = hf.read_hf_state_dict(hf_dir)
    source = ", ".join(files)
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    has_pooler = prefix + "pooler.dense.weight" in state
    has_mlm = "cls.predictions.transform.dense.weight" in state
    try:
        config = hf.config_from_hf(hf_config, scan_layers=scan_layers, use_pooler=has_pooler)
    except InputError as e:
        raise InputError(str(e).replace("config.json", config_path, 1)) from None
    except (ConfigError, TypeError) as e:
        raise InputError(f"{config_path}: {e}") from None
    used: set[str] = set()
    params = hf.params_from_hf(state, config, source=source, used=used)
    notes = hf.classify_unused(state, used, source=source)
    if not has_mlm:  # keep the model dir a complete EncoderForMLM tree: fresh head, recorded as such
        params["mlm_head"] = fresh_mlm_head(config)

    scratch = os.path.join(out_dir, ".import_tmp")
    try:
        vocab_file = _vocab_from_hf_dir(hf_dir, scratch)
        tokens = read_vocab_file(vocab_file)
        if len(tokens) > config.vocab_size:
            raise InputError(f"{vocab_file}: {len(tokens)} entries but {source} has only {config.vocab_size} "
                             "word-embedding rows (key embeddings.word_embeddings.weight)")
        lower, lower_source = _decide_lowercase(hf_dir, tokens, lowercase)
        interop = {
            "source": os.path.abspath(hf_dir), "files": [os.path.basename(f) for f in files],
            "hf_model_type": hf_config["model_type"], "has_mlm_head": has_mlm, "has_pooler": has_pooler,
            "lowercase_source": lower_source, "ignored": notes,
            "hf_config": {k: v for k, v in hf_config.items() if not k.startswith("_")},
        }
        save_model_dir(out_dir, config, params, vocab_file, lower, {"interop": interop})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "out_dir": out_dir, "model_type": hf_config["model_type"], "layers": config.num_layers,
        "hidden": config.hidden_size, "embedding_rows": config.vocab_size, "vocab_entries": len(tokens),
        "lowercase": lower, "lowercase_source": lower_source, "has_mlm_head": has_mlm, "has_pooler": has_pooler,
        "ignored": notes, "files": files, "tensors": len(used),
    }


def fresh_mlm_head(config: EncoderConfig) -> dict:
    shapes = jax.eval_shape(lambda r: nn.unbox(EncoderForMLM(config).init(r, jnp.zeros((1, 2), jnp.int32))["params"]),
                            jax.random.key(0))["mlm_head"]
    rng = np.random.default_rng(0)
    H = config.hidden_size
    return {
        "transform": {"kernel": (rng.standard_normal((H, H)) * config.initializer_range).astype(np.float32),
                      "bias": np.zeros((H,), np.float32)},
        "transform_ln": {"scale": np.ones((H,), np.float32), "bias": np.zeros((H,), np.float32)},
        "output_bias": np.zeros(shapes["output_bias"].shape, np.float32),
    }


def export_hf(model_dir: str, out_dir: str) -> dict[str, Any]:
    """Model dir → safetensors + config.json + vocab.txt + tokenizer_config.json for transformers."""
    try:
        from safetensors.numpy import save_file
    except ImportError:  # pragma: no cover
        raise InputError("export-hf needs the 'safetensors' package (pip install safetensors)") from None
    info = read_model_info(model_dir)
    interop = info.get("interop") or {}
    notes: list[str] = []
    if kind_of(info) != "encoder":  # a fine-tuned dir: encoder + its task head
        config, params, vocab = model_config_of(model_dir, info), *_load_finetuned(model_dir, info)
        hf_cfg, state, notes = _finetuned_to_hf(info, config, jax.tree.map(np.asarray, params))
    else:
        include_mlm = bool(interop.get("has_mlm_head", True))
        config, params, vocab = load_model_dir(model_dir, device=jax.devices("cpu")[0])
        host = jax.tree.map(np.asarray, params)
        hf_cfg = hf.hf_config_dict(config, model_type=interop.get("hf_model_type"), include_mlm_head=include_mlm,
                                   base=interop.get("hf_config"))
        state = hf.params_to_hf(host, config, include_mlm_head=include_mlm)
    os.makedirs(out_dir, exist_ok=True)
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_cfg, f, indent=2)
    written = ["model.safetensors", "config.json"]
    if "crf" in (params or {}):
        crf = {k: np.ascontiguousarray(np.asarray(v)) for k, v in params["crf"].items()}
        save_file(crf, os.path.join(out_dir, "crf.safetensors"), metadata={"format": "np"})
        written.append("crf.safetensors (CRF transitions/start/end: not part of the transformers model)")
    vinfo = info.get("vocab") or {}
    if vinfo.get("path"):
        src = os.path.join(model_dir, vinfo["path"])
        if src.endswith(".txt"):
            shutil.copyfile(src, os.path.join(out_dir, "vocab.txt"))
            lower = getattr(vocab, "lowercase", vinfo.get("lowercase"))
            with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": bool(lower),
                           "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                           "mask_token": "[MASK]", "tokenize_chinese_chars": True, "strip_accents": None,
                           "model_max_length": config.max_position_embeddings}, f, indent=2)
            written += ["vocab.txt", "tokenizer_config.json"]
        else:
            shutil.copyfile(src, os.path.join(out_dir, os.path.basename(src)))
            written.append(os.path.basename(src) + " (SentencePiece: no transformers tokenizer config written)")
    return {"out_dir": out_dir, "model_type": hf_cfg["model_type"], "architectures": hf_cfg["architectures"],
            "tensors": len(state), "files": written, "notes": notes}


def _load_finetuned(model_dir: str, info: dict) -> tuple[Any, Any]:
    """(params of the fine-tuned head model, vocabulary), restored onto the host CPU."""
    adapter = adapters.for_model_info(info, model_dir)
    model = adapter.build_model(model_config_of(model_dir, info), info[adapter.section])
    cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    boxed = jax.eval_shape(lambda r: model.init({"params": r, "dropout": r}, jnp.zeros((1, 8), jnp.int32))["params"],
                           jax.random.key(0))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=cpu), nn.unbox(boxed))
    return restore_params(model_dir, abstract), vocab_of(model_dir, info)


def _finetuned_to_hf(info: dict, config: EncoderConfig, params: Any) -> tuple[dict, dict, list[str]]:
    """(HF config.json, state dict, notes) for a fine-tuned dir (kind from its config.json section)."""
    notes: list[str] = []
    if kind_of(info) == "ner":
        sec = info["ner"]
        head, labels, regression = "token_classification", list(sec["labels"]), False
        if sec.get("use_crf"):
            notes.append("CRF model: the emission classifier is the transformers model (argmax decoding); the CRF "
                         "transitions are in crf.safetensors for Viterbi decoding outside transformers")
        if not sec.get("label_all_subwords", True):
            notes.append("first-subword model: read each word's first sub-word prediction")
    else:
        sec = info["sequence_task"]
        if sec["kind"] == "qa":
            head, labels, regression = "span_qa", None, False
            notes.append("span QA: our decoder masks non-context positions; transformers returns raw logits")
        else:
            if sec["representation"] != "pooled":
                raise InputError(f"representation {sec['representation']!r} has no transformers architecture "
                                 "(BertForSequenceClassification classifies the pooled [CLS]); fine-tune with "
                                 "TaskTrainConfig.representation='pooled' to export")
            head, labels, regression = "sequence_classification", sec.get("labels"), sec["kind"] == "regression"
    hf_cfg = hf.head_config_dict(config, head, labels=labels, regression=regression)
    return hf_cfg, hf.head_to_hf(params, config, head), notes
