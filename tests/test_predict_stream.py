"""Streaming ``predict`` over note tables through the real CLI: formats, scores, resume, shards.

The model is a tiny randomly initialised tagger written as fine-tuning writes a model dir
(config.json + vocab + orbax params), with its ``O`` bias raised so it tags sparsely like a
trained model; what is tested is the plumbing, which must not depend on the weights.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gatortron_jax import cli

TINY = dict(vocab_size=4096, hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64, max_position_embeddings=64,
            dropout_rate=0.0, attention_dropout_rate=0.0)
TYPES = ("problem", "test", "treatment")


def make_model_dir(model_dir: pathlib.Path, repo_root: pathlib.Path, *, use_crf: bool = False, o_bias: float = 0.5,
                   max_length: int = 64, overlap: int = 16) -> pathlib.Path:
    import jax
    import optax

    from gatortron_jax.core import partitioning
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.core.train_state import create_train_state
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.model_dir import copy_vocab
    from gatortron_jax.models.token_classification import EncoderForTokenClassification

    config = EncoderConfig(**TINY)
    labels = windowing.label_list(TYPES, "BIO")
    model = EncoderForTokenClassification(config, len(labels), use_crf=use_crf)
    partitioner = partitioning.Partitioner(partitioning.create_mesh(-1, 1, 1))
    state, _ = create_train_state(model, optax.identity(), partitioner, jax.random.key(0))
    params = state.params
    bias = params["classifier"]["bias"]
    params = {**params, "classifier": {**params["classifier"], "bias": bias.at[0].add(o_bias)}}
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = str(repo_root / "data/sample_vocab/spm.model")
    info = {
        "model_config": config.to_dict(),
        "vocab": {"path": copy_vocab(str(model_dir), vocab_file), "size": 4000, "lowercase": None},
        "ner": {"labels": labels, "label_scheme": "BIO", "use_crf": use_crf, "max_length": max_length,
                "overlap": overlap, "task": "i2b2_2010_ner", "output_format": "i2b2_2010"},
    }
    (model_dir / "config.json").write_text(json.dumps(info, indent=1))
    ckpt = Checkpointer(str(model_dir), max_to_keep=1, async_save=False)
    ckpt.save(0, {"params": params}, {"epoch": 0}, force=True)
    ckpt.close()
    return model_dir


def make_notes(n: int, seed: int = 0) -> list[tuple[str, str]]:
    from gatortron_jax.sample_data import corpus as synthetic

    rng = random.Random(seed)
    notes = []
    for i in range(n):
        parts = [synthetic.generate_note(rng, i * 10 + k) for k in range(rng.randint(1, 4))]
        notes.append((f"n{i:04d}", "\n\n".join(parts)))
    notes[3] = (notes[3][0], "")  # an empty note still comes out
    notes[5] = (notes[5][0], "Café naïve – 5×10⁹/L ✓ " + notes[5][1])  # non-ASCII offsets
    return notes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, repo_root):
    return make_model_dir(tmp_path_factory.mktemp("model") / "ner", repo_root)


def write_txt_tree(root: pathlib.Path, notes) -> pathlib.Path:
    for note_id, text in notes:
        (root / note_id).parent.mkdir(parents=True, exist_ok=True)
        (root / (note_id + ".txt")).write_text(text, encoding="utf-8", newline="")
    return root


def predict(model_dir, inp, out, *extra) -> int:
    return cli.main(["predict", "--checkpoint", str(model_dir), "--input", str(inp), "--output", str(out),
                     "--chunk_notes", "4", *extra])


def read_rows(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_txt_tree_entities_scores_offsets_and_summary(model_dir, tmp_path):
    notes = make_notes(11)
    inp = write_txt_tree(tmp_path / "notes", notes)
    out = tmp_path / "out"
    assert predict(model_dir, inp, out, "--table", "parquet", "--show_text") == 0
    rows = read_rows(out / "entities.jsonl")
    text_of = dict(notes)
    assert rows, "the sparse random tagger should still find some entities"
    for r in rows:  # entity offsets are the note's characters
        assert r["text"] == text_of[r["note_id"]][r["start"]:r["end"]] and r["text"].strip()
        assert 0.0 < r["score"] <= 1.0 and r["type"] in TYPES
    import pyarrow.parquet as pq

    assert pq.read_table(out / "entities.parquet").to_pylist() == rows
    for note_id, _ in notes:  # every note comes out, empty ones included
        assert (out / f"{note_id}.ann").is_file() and (out / f"{note_id}.txt").read_text(encoding="utf-8") == text_of[note_id]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["notes_read"] == summary["notes_predicted"] == 11 and summary["notes_failed"] == 0
    assert summary["entities"] == len(rows) == sum(summary["entities_by_type"].values())
    assert summary["chunks"] == 3 and summary["tokens"] > 0
    # .ann files agree with the table
    from gatortron_jax.annotations.formats.brat import read_brat_dir

    ann = {(d.id, e.type, e.start, e.end) for d in read_brat_dir(str(out)) for e in d.entities}
    assert ann == {(r["note_id"], r["type"], r["start"], r["end"]) for r in rows}
    # --min_score filters the table and the files alike; no text without --show_text
    cut = sorted(r["score"] for r in rows)[len(rows) // 2]
    out2 = tmp_path / "out_min"
    assert predict(model_dir, inp, out2, "--min_score", str(cut)) == 0
    kept = read_rows(out2 / "entities.jsonl")
    assert kept == [{k: v for k, v in r.items() if k != "text"} for r in rows if r["score"] >= cut]
