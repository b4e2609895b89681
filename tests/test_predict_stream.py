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
import sys

import numpy as np
import pytest

from cli_run import kill_when
from gatortron_jax.cli import main as cli

TINY = dict(vocab_size=4096, hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64, max_position_embeddings=64,
            dropout_rate=0.0, attention_dropout_rate=0.0)
TYPES = ("problem", "test", "treatment")


def make_model_dir(model_dir: pathlib.Path, repo_root: pathlib.Path, *, use_crf: bool = False, o_bias: float = 0.5,
                   max_length: int = 64, overlap: int = 16, label_all_subwords: bool = True,
                   types: tuple = TYPES, task: str = "i2b2_2010_ner", output_format: str = "i2b2_2010",
                   extra: dict | None = None, config_overrides: dict | None = None) -> pathlib.Path:
    import jax
    import optax

    from gatortron_jax.core import partitioning
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.core.train_state import create_train_state
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.model_dir import copy_vocab
    from gatortron_jax.models.token_classification import EncoderForTokenClassification

    config = EncoderConfig(**{**TINY, **(config_overrides or {})})
    labels = windowing.label_list(list(types), "BIO")
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
                "overlap": overlap, "task": task, "output_format": output_format,
                "label_all_subwords": label_all_subwords},
        **(extra or {}),
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


@pytest.fixture(scope="module")
def tree_run(model_dir, tmp_path_factory):
    """One reference run over a .txt tree: (notes, input dir, output dir, entity rows with text)."""
    root = tmp_path_factory.mktemp("tree")
    notes = make_notes(11)
    inp = write_txt_tree(root / "notes", notes)
    assert predict(model_dir, inp, root / "out", "--table", "parquet", "--show_text") == 0
    return notes, inp, root / "out", read_rows(root / "out/entities.jsonl")


def without_text(rows):
    return [{k: v for k, v in r.items() if k != "text"} for r in rows]


def test_txt_tree_entities_scores_offsets_and_summary(model_dir, tree_run, tmp_path):
    notes, inp, out, rows = tree_run
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
    assert kept == without_text(r for r in rows if r["score"] >= cut)


def tree_files(root: pathlib.Path, exclude=("summary",)) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(exclude)}


def test_first_subword_models_stream_whole_word_entities(tmp_path, repo_root):
    """A model labelled on first pieces only (the softmax default) decodes from each word's first
    piece: every streamed entity covers whole words (the word starts reach the decoder); decoding
    every piece instead would cut entities inside words."""
    model = make_model_dir(tmp_path / "m", repo_root, o_bias=0.0, label_all_subwords=False)
    notes = dict(make_notes(6, seed=3))
    inp = write_txt_tree(tmp_path / "notes", notes.items())
    assert predict(model, inp, tmp_path / "out") == 0
    rows = read_rows(tmp_path / "out/entities.jsonl")
    assert len(rows) > 50
    for r in rows:
        text, s, e = notes[r["note_id"]], r["start"], r["end"]
        assert s == 0 or not (text[s - 1].isalnum() and text[s].isalnum()), r
        assert e == len(text) or not (text[e - 1].isalnum() and text[e].isalnum()), r


def test_jsonl_csv_parquet_give_the_txt_tree_entities_and_list_bad_records(model_dir, tree_run, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    notes, _, _, rows = tree_run
    want = without_text(rows)
    assert want
    table = pa.table({"note_id": [i for i, _ in notes], "note_text": [t for _, t in notes]})
    pq.write_table(table, tmp_path / "notes.parquet")
    pacsv.write_csv(table, tmp_path / "notes.csv")  # quoted multi-line fields
    with open(tmp_path / "notes.jsonl", "w", encoding="utf-8") as f:
        for i, t in notes:
            f.write(json.dumps({"doc": i, "body": t}) + "\n")
    for name, extra in (("notes.parquet", []), ("notes.csv", []),
                        ("notes.jsonl", ["--id_field", "doc", "--text_field", "body"])):
        out = tmp_path / f"o_{name}"
        assert predict(model_dir, tmp_path / name, out, "--format", "none", *extra) == 0, name
        assert read_rows(out / "entities.jsonl") == want, name
    # Bad records are listed with id/line and reason, never dropped; good ones still predicted.
    lines = [json.dumps({"doc": "a", "body": "Patient denies chest pain."}), "{not json",
             json.dumps({"doc": "b"}), json.dumps({"body": "no id here"}), json.dumps({"doc": "../evil", "body": "x"}),
             json.dumps({"doc": "a", "body": "again"})]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "o_bad"
    assert predict(model_dir, tmp_path / "bad.jsonl", out, "--id_field", "doc", "--text_field", "body") == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["notes_read"] == 6 and s["notes_predicted"] == 1 and s["notes_failed"] == 5
    assert s["failed_by_reason"] == {"duplicate id": 1, "id not usable as a relative file name": 1,
                                     "invalid JSON": 1, "no id": 1, "no text": 1}
    assert {(f["id"], f["where"].rsplit(":", 1)[1]) for f in s["failed"]} == {
        ("line2", "2"), ("b", "3"), ("line4", "4"), ("../evil", "5"), ("a", "6")}
    assert not (tmp_path / "evil.ann").exists() and (out / "a.ann").is_file()
    assert read_rows(out / "failed.jsonl") == s["failed"]
    # --strict: one error line naming file and line
    assert predict(model_dir, tmp_path / "bad.jsonl", tmp_path / "o_strict", "--strict", "--id_field", "doc",
                   "--text_field", "body") == 2


def test_two_shards_together_equal_one(model_dir, tree_run, tmp_path):
    notes, inp, one_dir, one_rows = tree_run
    for shard, tokenize in ((0, "inline"), (1, "thread")):  # where tokenization runs changes nothing
        assert predict(model_dir, inp, tmp_path / "two", "--shard", str(shard), "--num_shards", "2",
                       "--tokenize", tokenize) == 0
    one, two = tree_files(one_dir), tree_files(tmp_path / "two")
    per_note = lambda d: {k: v for k, v in d.items() if k.endswith((".txt", ".ann"))}  # noqa: E731
    assert per_note(one) == per_note(two) and len(per_note(one)) == 2 * len(notes)
    rows = without_text(one_rows)
    shards = [read_rows(tmp_path / f"two/entities.shard-{i:05d}-of-00002.jsonl") for i in (0, 1)]
    assert {r["note_index"] % 2 for r in shards[0]} <= {0} and {r["note_index"] % 2 for r in shards[1]} <= {1}
    key = lambda r: (r["note_index"], r["start"])  # noqa: E731
    assert sorted(shards[0] + shards[1], key=key) == sorted(rows, key=key)
    sums = [json.loads((tmp_path / f"two/summary.shard-{i:05d}-of-00002.json").read_text()) for i in (0, 1)]
    assert [s["notes_read"] for s in sums] == [6, 5]
    assert predict(model_dir, inp, tmp_path / "bad", "--shard", "2", "--num_shards", "2") == 2


def test_kill_and_rerun_is_byte_identical_to_an_uninterrupted_run(model_dir, tmp_path, repo_root):
    notes = make_notes(40, seed=3)
    inp = write_txt_tree(tmp_path / "notes", notes)
    flags = ["--chunk_notes", "2", "--table", "parquet"]
    assert predict(model_dir, inp, tmp_path / "ref", *flags) == 0  # uninterrupted, in this process
    out = tmp_path / "killed"
    # The same command in a child process (same 8 simulated devices, hence the same compiled
    # shapes and numbers), SIGKILLed once a few chunks are done.
    cmd = [sys.executable, "-m", "gatortron_jax.cli.main", "predict", "--checkpoint", str(model_dir), "--input",
           str(inp), "--output", str(out), *flags]
    ledger = out / "_stream/shard-00000-of-00001/chunk-000003.json"
    kill_when(cmd, repo_root, lambda _err: ledger.exists(), env=dict(os.environ))
    assert not (out / "summary.json").exists(), "the run finished before it could be killed"
    done_before = len(list(ledger.parent.glob("chunk-*.json")))
    assert 4 <= done_before < 20
    assert predict(model_dir, inp, out, *flags) == 0  # the rerun
    assert tree_files(out) == tree_files(tmp_path / "ref")
    s = json.loads((out / "summary.json").read_text())
    assert s["chunks_resumed"] == done_before and s["chunks_predicted"] == 20 - done_before
    assert s["notes_read"] == 40

    # Done is checked, not assumed: a changed output file makes its chunk run again.
    victim = out / "n0011.ann"
    original = victim.read_bytes()
    victim.write_bytes(b"T1\tproblem 0 1\tx\n")
    assert predict(model_dir, inp, out, *flags) == 0
    assert victim.read_bytes() == original
    s = json.loads((out / "summary.json").read_text())
    assert s["chunks_predicted"] == 1 and s["chunks_resumed"] == 19


def test_crf_marginals_match_brute_force_enumeration():
    """CRF scores: marginals from grad(log Z) equal explicit sums over every tag sequence."""
    import itertools

    import jax
    import jax.numpy as jnp

    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.token_classification import EncoderForTokenClassification, token_marginals

    k, length = 3, 5
    rng = np.random.default_rng(0)
    emissions = rng.normal(size=(2, length, k)).astype(np.float32)
    mask = np.array([[0, 1, 1, 1, 0], [0, 1, 1, 0, 0]], np.float32)  # [CLS] and padding masked
    trans, start, end = (rng.normal(size=s).astype(np.float32) for s in ((k, k), (k,), (k,)))
    model = EncoderForTokenClassification(EncoderConfig(**TINY), k, use_crf=True)
    params = {"crf": {"transitions": jnp.asarray(trans), "start": jnp.asarray(start), "end": jnp.asarray(end)}}
    got = np.asarray(jax.jit(lambda p, e, m: model.apply({"params": p}, e, m, method=lambda mod, e, m:
                                                          token_marginals(mod, e, m)))(params, emissions, mask))
    for b in range(2):
        pos = np.nonzero(mask[b])[0]
        want = np.zeros((length, k))
        z = 0.0
        for tags in itertools.product(range(k), repeat=len(pos)):
            s = start[tags[0]] + end[tags[-1]] + sum(emissions[b, p, t] for p, t in zip(pos, tags))
            s += sum(trans[a, c] for a, c in zip(tags, tags[1:]))
            w = np.exp(s)
            z += w
            for p, t in zip(pos, tags):
                want[p, t] += w
        np.testing.assert_allclose(got[b, pos], want[pos] / z, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got[b, pos].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.slow  # ~25 s: compiles Viterbi + marginal scans for three length buckets
def test_crf_model_scores_through_the_cli(tmp_path, repo_root):
    model = make_model_dir(tmp_path / "crf", repo_root, use_crf=True, o_bias=0.5)
    inp = write_txt_tree(tmp_path / "notes", make_notes(6, seed=4))
    assert predict(model, inp, tmp_path / "out", "--format", "none") == 0
    rows = read_rows(tmp_path / "out/entities.jsonl")
    assert rows and all(0.0 < r["score"] <= 1.0 for r in rows)


# ~8 s. In the default suite: exact equality with the pipeline (bench_predict's smoke test, now
# slow, checks only an agreement F1 on the same question).
def test_entities_and_scores_equal_the_transformers_pipeline(tmp_path):
    """Same weights (an HF token classifier imported with inference.hf_ner): on notes that fit one
    window, our entities and scores equal transformers' pipeline with aggregation_strategy="simple"."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from test_convert_hf import WORDS, write_vocab

    from gatortron_jax.inference.hf_ner import import_hf_token_classifier

    labels = ["O", "B-problem", "I-problem", "B-test", "I-test"]
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    write_vocab(str(hf_dir / "vocab.txt"), 80)
    cfg = transformers.BertConfig(vocab_size=80, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=40, max_position_embeddings=64, num_labels=len(labels),
                                  id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)})
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(cfg).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(30.0)  # confident, varied predictions
    model.save_pretrained(hf_dir)
    transformers.BertTokenizerFast(str(hf_dir / "vocab.txt"), do_lower_case=True).save_pretrained(hf_dir)
    import_hf_token_classifier(str(hf_dir), str(tmp_path / "ours"), max_length=64, overlap=8)

    rng = random.Random(0)
    notes = [(f"t{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))) for i in range(12)]
    inp = write_txt_tree(tmp_path / "notes", notes)
    assert predict(tmp_path / "ours", inp, tmp_path / "out", "--format", "none") == 0
    ours = read_rows(tmp_path / "out/entities.jsonl")
    pipe = transformers.pipeline("token-classification", model=str(hf_dir), aggregation_strategy="simple")
    ref = []
    for k, (note_id, text) in enumerate(notes):
        for e in pipe(text):
            ref.append(((note_id, int(e["start"]), int(e["end"]), e["entity_group"]), float(e["score"])))
    got = {(r["note_id"], r["start"], r["end"], r["type"]): r["score"] for r in ours}
    assert len(ref) > 20 and len({k[3] for k, _ in ref}) == 2
    assert sorted(got) == sorted(k for k, _ in ref)
    np.testing.assert_allclose([got[k] for k, _ in ref], [v for _, v in ref], atol=2e-4)


def test_a_note_the_tokenizer_cannot_take_is_listed_not_fatal(model_dir, tmp_path, monkeypatch):
    from gatortron_jax.inference import stream
    from gatortron_jax.inference.note_sources import NoteSource

    notes = make_notes(6, seed=5)
    inp = write_txt_tree(tmp_path / "notes", notes)
    tagger = stream.ScoringTagger(str(model_dir), batch_size=8)
    real = tagger.tokenizer.__class__.__call__

    def fragile(self, text):
        if text == notes[2][1]:
            raise RuntimeError("SECRET note text would be here")
        return real(self, text)

    monkeypatch.setattr(tagger.tokenizer.__class__, "__call__", fragile)
    s = stream.run_stream(tagger, NoteSource(str(inp)), stream.StreamOptions(str(tmp_path / "out"), chunk_notes=4))
    assert s["notes_read"] == 6 and s["notes_predicted"] == 5 and s["notes_failed"] == 1
    assert s["failed"] == [{"index": 2, "id": notes[2][0], "where": str(inp / f"{notes[2][0]}.txt"),
                            "reason": "tokenizer failed (RuntimeError)"}]
    assert "SECRET" not in (tmp_path / "out/summary.json").read_text()
    assert not (tmp_path / "out" / f"{notes[2][0]}.ann").exists() and (tmp_path / "out/n0003.ann").is_file()


def test_shard_defaults_follow_the_launch(monkeypatch):
    from gatortron_jax.cli.flags import shard_flags
    from gatortron_jax.cli.main import build_parser

    def flags(*extra):
        return shard_flags(build_parser().parse_args(["predict", "--checkpoint", "m", "--input", "i", "--output",
                                                       "o", *extra]))

    for name in ("JAX_PROCESS_ID", "JAX_NUM_PROCESSES", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    assert flags() == (0, 1) and flags("--shard", "3", "--num_shards", "4") == (3, 4)
    monkeypatch.setenv("SLURM_PROCID", "2")
    monkeypatch.setenv("SLURM_NTASKS", "5")
    assert flags() == (0, 1) and flags("--distributed") == (2, 5)
    assert flags("--distributed", "--process_id", "1", "--num_processes", "3") == (1, 3)
