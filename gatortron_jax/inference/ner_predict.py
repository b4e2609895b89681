"""Run a fine-tuned NER model dir on documents, and write predictions in benchmark formats.

A fine-tuned model dir (written by ``finetuning/ner.py``) is self-contained:
``config.json`` (encoder config, label list, scheme, CRF flag, window length, task, vocab
path), ``vocab/`` and an orbax checkpoint whose ``params`` is the
``EncoderForTokenClassification`` tree.

This is the in-memory API (a list of documents in, documents with entities out: ``deid``,
evaluation, tests). ``gatortron-jax predict`` runs note tables through
:mod:`gatortron_jax.inference.stream` instead (bounded memory, scores, resume, shards), which
writes its per-note files with :func:`write_predictions`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Sequence

import numpy as np

from gatortron_jax.finetuning import windowing
from gatortron_jax.annotations.documents import Document
from gatortron_jax.annotations.formats.brat import write_brat
from gatortron_jax.annotations.formats.i2b2_2010 import write_i2b2_2010_con
from gatortron_jax.annotations.formats.i2b2_2012 import write_i2b2_2012_xml
from gatortron_jax.annotations.formats.i2b2_deid import write_i2b2_2014_xml
from gatortron_jax.core.batching import bucket_lengths, predict_rows
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.models.model_dir import read_model_info, require_vocab

log = logging.getLogger("gatortron_jax")

FORMATS = ("brat", "i2b2", "jsonl")


def predict_encoded(
    p_predict: Callable,
    params: Any,
    encoded: Sequence[windowing.EncodedDocument],
    tokenizer: windowing.OffsetTokenizer,
    max_length: int,
    id_to_label: Sequence[str],
    batch_size: int,
    data_sharding=None,
) -> list[Document]:
    """Windows → model → merged per-token labels → documents with predicted entities."""
    feats, rows = windowing.window_features(encoded, tokenizer, max_length)
    if not rows:
        return windowing.predictions_to_documents(encoded, rows, np.zeros((0, max_length), np.int64), id_to_label)
    preds = predict_rows(p_predict, params, feats, batch_size, data_sharding, length_buckets=bucket_lengths(max_length))
    return windowing.predictions_to_documents(encoded, rows, preds, id_to_label)


class NERModelDir:
    """A fine-tuned NER model dir's ``ner`` section, model and tokenizer: read once, here, for
    every NER inference path (the in-memory :class:`NERPredictor` and the streaming tagger)."""

    def __init__(self, model_dir: str, dtype: str | None = None, quantize: str | None = None):
        from gatortron_jax.models.config import EncoderConfig
        from gatortron_jax.models.token_classification import EncoderForTokenClassification

        self.model_dir = model_dir
        self.config = read_model_info(model_dir)
        ner = self.config.get("ner")
        if not ner:
            raise InputError(f"{model_dir}: config.json has no 'ner' section (not a fine-tuned NER model)")
        self.labels: list[str] = list(ner["labels"])
        self.max_length = int(ner["max_length"])
        self.overlap = int(ner["overlap"])
        self.task = ner.get("task")
        self.output_format = ner.get("output_format", "brat")
        self.first_subword = not ner.get("label_all_subwords", True)  # decode as the model was labelled
        # "dynamic_int8": int8 dense matmuls for this run only (models/quantization.py)
        model_config = EncoderConfig.from_dict(self.config["model_config"]).for_inference(dtype, quantize)
        self.dtype = model_config.dtype
        self.matmul_quantization = quantize
        self.model = EncoderForTokenClassification(model_config, len(self.labels), use_crf=bool(ner["use_crf"]))
        self.tokenizer = windowing.OffsetTokenizer(require_vocab(model_dir, self.config))


class NERPredictor(NERModelDir):
    """Loads a fine-tuned model dir once; ``predict(docs)`` returns docs with entities."""

    def __init__(self, model_dir: str, batch_size: int = 32, quantize: str | None = None, dtype: str | None = None):
        from gatortron_jax.models.token_classification import predict_labels
        from gatortron_jax.finetuning.supervised import load_for_inference

        super().__init__(model_dir, dtype=dtype, quantize=quantize)
        self.partitioner, self.batch_size, self.params, self._predict = load_for_inference(
            self.model, model_dir, batch_size, predict_labels
        )

    def predict(self, docs: Sequence[Document]) -> list[Document]:
        encoded, _ = windowing.encode_documents(docs, self.tokenizer, self.max_length, self.overlap,
                                                first_subword=self.first_subword)
        with self.partitioner.activate():
            return predict_encoded(
                self._predict, self.params, encoded, self.tokenizer, self.max_length, self.labels,
                self.batch_size, self.partitioner.data_sharding,
            )


# ----------------------------------------------------------------------------- raw notes / writers


def read_raw_notes(input_path: str, *, strict: bool = False, show_text: bool = False) -> list[Document]:
    """``.txt`` notes under a directory (recursively; id = relative path without .txt), or one file."""
    paths: list[tuple[str, str]] = []
    if os.path.isfile(input_path):
        paths.append((input_path, os.path.splitext(os.path.basename(input_path))[0]))
    elif os.path.isdir(input_path):
        for root, dirs, files in os.walk(input_path):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".txt"):
                    p = os.path.join(root, name)
                    paths.append((p, os.path.relpath(p, input_path)[:-4].replace(os.sep, "/")))
    else:
        raise InputError(f"{input_path}: no such file or directory")
    if not paths:
        raise InputError(f"{input_path}: no .txt notes found")
    from gatortron_jax.annotations.notes import read_note_file

    docs, replaced = [], 0
    for path, doc_id in paths:
        # Input policy (annotations/input_policy.py): bad bytes -> U+FFFD + one warning per file, or
        # InputError under --strict. Every note still comes out the other side.
        text, issue = read_note_file(path, strict=strict, show_text=show_text)
        replaced += issue is not None
        docs.append(Document(doc_id, text, [], [], path))
    log.info(
        "read %d note(s) from %s%s", len(docs), input_path,
        f"; {replaced} with undecodable bytes replaced (U+FFFD)" if replaced else "")
    return docs


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_predictions(docs: Sequence[Document], output_dir: str, fmt: str, i2b2_flavour: str = "i2b2_2010") -> list[str]:
    """Writes ``docs`` (with predicted entities) to ``output_dir``; returns written paths."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {FORMATS}")
    os.makedirs(output_dir, exist_ok=True)
    written = []
    if fmt == "jsonl":
        path = os.path.join(output_dir, "predictions.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for d in docs:
                ents = [
                    {"id": e.id, "type": e.type, "spans": [list(s) for s in e.spans],
                     "text": " ".join(d.text[s:t] for s, t in e.spans)}
                    for e in d.entities
                ]
                f.write(json.dumps({"id": d.id, "entities": ents}, ensure_ascii=False) + "\n")
        return [path]
    for d in docs:
        base = os.path.join(output_dir, d.id)
        if fmt == "brat":
            _write_text(base + ".txt", d.text)
            write_brat(d, base + ".ann")
            written.append(base + ".ann")
        elif i2b2_flavour == "i2b2_2012":
            write_i2b2_2012_xml(d, base + ".xml")
            written.append(base + ".xml")
        elif i2b2_flavour == "i2b2_2014":  # de-id XML, readable by the 2014 challenge's evaluation scripts
            write_i2b2_2014_xml(d, base + ".xml")
            written.append(base + ".xml")
        else:
            _write_text(base + ".txt", d.text)
            write_i2b2_2010_con(d, base + ".con")
            written.append(base + ".con")
    return written
