"""An HF ``BertForTokenClassification`` directory → a model dir ``predict`` can stream.

Teams often have a token classifier fine-tuned with transformers. ``import-hf`` brings over
the encoder (and treats the classifier as a task head it ignores); this adds the classifier
(``classifier.weight``/``bias``, read through the same trusted loaders: safetensors, or
``torch.load(weights_only=True)``) and the ``ner`` section from ``id2label``, so the model runs
through :mod:`gatortron_jax.inference.stream` unchanged. The benchmark uses it to run HF's
pipeline and ours on identical weights; a test checks both give the same entities and scores.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np

from gatortron_jax.core.errors import InputError


def import_hf_token_classifier(hf_dir: str, out_dir: str, *, max_length: int, overlap: int,
                               lowercase: bool | None = None) -> dict[str, Any]:
    """Writes ``out_dir`` (config.json with ``ner``, vocab, orbax params); returns its ``ner`` section."""
    from gatortron_jax.convert import hf
    from gatortron_jax.convert.hf_dir import import_hf
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.models.model_dir import load_model_dir, read_model_info, write_config

    hf_config = hf.read_hf_config(hf_dir)
    id2label = hf_config.get("id2label") or {}
    labels = [id2label.get(str(i), id2label.get(i)) for i in range(len(id2label))]
    if not labels or any(lab is None for lab in labels) or labels[0] != "O":
        raise InputError(f"{os.path.join(hf_dir, 'config.json')}: id2label must list BIO labels 0..K-1 with 'O' at 0; "
                         f"got {labels}")
    state, files = hf.read_hf_state_dict(hf_dir)
    if "classifier.weight" not in state or "classifier.bias" not in state:
        raise InputError(f"{', '.join(files)}: no classifier.weight/classifier.bias (not a token classifier)")
    weight, bias = np.asarray(state["classifier.weight"]), np.asarray(state["classifier.bias"])
    if weight.shape[0] != len(labels):
        raise InputError(f"{', '.join(files)}: classifier has {weight.shape[0]} outputs, id2label {len(labels)} labels")
    del state
    import_hf(hf_dir, out_dir, lowercase=lowercase)
    _, params, _ = load_model_dir(out_dir, encoder_only=True)
    info = read_model_info(out_dir)
    scheme = "BIOES" if any(lab.startswith(("E-", "S-")) for lab in labels) else "BIO"
    info["ner"] = {"labels": labels, "label_scheme": scheme, "use_crf": False, "max_length": max_length,
                   "overlap": overlap, "task": "hf_token_classification", "output_format": "brat"}
    shutil.rmtree(os.path.join(out_dir, "checkpoints"))
    ckpt = Checkpointer(out_dir, max_to_keep=1, async_save=False)
    ckpt.save(0, {"params": {"encoder": params["encoder"], "classifier": {"kernel": weight.T, "bias": bias}}},
              {"epoch": 0}, force=True)
    ckpt.close()
    write_config(out_dir, info)
    return info["ner"]
