"""``evaluate`` at the four decodings (argmax / stored operating point x model alone / with the
stored patterns) on a MEDDOCAN-shaped corpus of our own, through the real CLI, against an
independent reference: the streaming tagger ``predict``/``deid`` run (the stored decoding)
scored with the official MEDDOCAN scorer and the binary span recall. The tagger is a tiny
random model: what is tested is that each row is the decoding it names."""

from __future__ import annotations

import argparse
import json

import pytest

from gatortron_jax.annotations.formats import i2b2_deid
from gatortron_jax.cli import main as cli
from gatortron_jax.inference import operating_point as opl
from test_meddocan import _FIELDS, write_meddocan_corpus
from test_predict_stream import make_model_dir

MEDDOCAN_TYPES = tuple(sorted({typ for _, _, typ, _ in _FIELDS}))


def meddocan_model_dir(path, repo_root, data_dir):
    """A tiny random de-id model dir fine-tuned (as config.json says) on ``meddocan_deid`` at ``data_dir``."""
    data = {"task": "meddocan_deid", "data_dir": str(data_dir), "train_split": "train/xml",
            "dev_split": "dev/xml", "test_split": "test/xml", "max_length": 64, "overlap": 16}
    return make_model_dir(path, repo_root, o_bias=0.3, label_all_subwords=False, types=MEDDOCAN_TYPES,
                          task="meddocan_deid", output_format="i2b2_2014", extra={"finetune": {"data_config": data}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus; afterwards the task registry forgets the data_dir evaluate pointed meddocan_deid at."""
    from gatortron_jax.finetuning import ner_tasks

    root = tmp_path_factory.mktemp("meddocan")
    write_meddocan_corpus(root)
    yield root
    ner_tasks._TASKS.pop("meddocan_deid", None)  # re-registered unbound on next use


def test_evaluate_reports_the_four_decodings(corpus, repo_root, tmp_path, capsys):
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.inference import stream
    from gatortron_jax.scoring.meddocan import score_pairs

    from gatortron_jax.cli.finetuning import _decodings
    from gatortron_jax.finetuning.config import NERDataConfig
    from gatortron_jax.inference.evaluate import decoding_recipe

    model = meddocan_model_dir(tmp_path / "m", repo_root, corpus)
    # nothing stored: no table (evaluate unchanged), and the recipe says argmax, model alone
    info = json.loads((model / "config.json").read_text())
    data = NERDataConfig(**info["finetune"]["data_config"])
    assert _decodings(argparse.Namespace(checkpoint=str(model), split="dev", batch_size=4), data) is None
    assert decoding_recipe(info) == {"operating_point": None, "patterns": None}

    out_json = tmp_path / "ev.json"
    assert cli.main(["evaluate", f"--checkpoint={model}", "--split", "dev", f"--output={out_json}",
                     "--target_recall", "0.9"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(out_json.read_text())
    rows = ev["decodings"]["rows"]
    assert list(rows) == ["argmax, model", "argmax, model + patterns", "operating point, model",
                          "operating point, model + patterns"]
    assert "decodings (MEDDOCAN subtrack 1 [NER] + leak" in printed and "| operating point, model + patterns |" in printed
    # the recipe: which recognizers ran, the thresholds (in the table and the score's recipe)
    cfg = json.loads((model / "config.json").read_text())
    assert ev["decodings"]["recipe"]["patterns"] == cfg["patterns"] == ev["recipe"]["decoding"]["patterns"]
    assert ev["decodings"]["recipe"]["operating_point"]["thresholds"] == cfg["operating_point"]["thresholds"]
    assert "email" in cfg["patterns"]["recognizers"]

    # argmax, model alone = evaluate's own headline (NERPredictor, a separate decoding path)
    head = ev["scores"]["strict"]["micro"]
    assert [rows["argmax, model"]["strict"][k] for k in ("precision", "recall", "f1")] == pytest.approx(
        [head[k] for k in ("precision", "recall", "f1")])

    # every row = the streaming tagger at that decoding, scored by the official scorer + span recall
    gold = i2b2_deid.read_i2b2_2014_dir(str(corpus / "dev" / "xml"), strict=True)
    sentences = sum(len((corpus / "dev" / "sentence_splitted" / f"{d.id}.ann").read_text().splitlines()) for d in gold)
    for name, op, pat in (("argmax, model", None, None), ("argmax, model + patterns", None, "stored"),
                          ("operating point, model", "stored", None),
                          ("operating point, model + patterns", "stored", "stored")):
        tagger = stream.ScoringTagger(str(model), batch_size=4, operating_point=op, patterns=pat)
        enc, _ = windowing.encode_documents([d.__class__(d.id, d.text) for d in gold], tagger.tokenizer,
                                            tagger.max_length, tagger.overlap, first_subword=tagger.first_subword)
        pred = [doc for doc, _ in stream.scored_documents(tagger, enc)]
        st1 = score_pairs(list(zip(gold, pred)))["Subtrack 1 [NER]"]
        binary = opl.span_recall(gold, [[(e.start, e.end) for e in d.entities] for d in pred])
        row = rows[name]
        assert [row["strict"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")] == pytest.approx(
            [st1[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")]), name
        assert row["strict"]["leak"] == pytest.approx(st1["fn"] / sentences), name
        assert (row["span_recall"], row["span_precision"], row["missed"]) == pytest.approx(
            (binary["recall"], binary["precision"], binary["missed"])), name
    # patterns find the e-mail addresses the random model misses
    assert rows["argmax, model + patterns"]["span_recall"] > rows["argmax, model"]["span_recall"]

    # the misses at the default decoding: counts and lengths by type, which have a recognizer; no text
    misses = ev["decodings"]["misses"]
    assert misses["decoding"] == "operating point, model + patterns"
    assert sum(v["missed"] for v in misses["by_type"].values()) == rows["operating point, model + patterns"]["missed"]
    assert "CORREO_ELECTRONICO" not in misses["by_type"]  # the e-mail recognizer covers them all
    for typ, v in misses["by_type"].items():
        assert len(v["lengths"]) == v["missed"] and v["recognizer"] == (typ in set(cfg["patterns"]["type_map"].values()))
    dumped = json.dumps(ev["decodings"], ensure_ascii=False)
    assert not any(e.text in dumped for d in gold for e in d.entities if len(e.text) > 3)


def test_operating_point_reaches_the_target_when_types_interact(corpus, repo_root, tmp_path):
    """A token is added as its most probable PHI type: the e-mail type (left at argmax, its
    recognizer covers it) was what covered other types' spans in the uniform sweep. The chosen
    point still reaches the target, and any type below it is listed."""
    from gatortron_jax.annotations.patterns import PatternConfig
    from gatortron_jax.inference import stream

    model = meddocan_model_dir(tmp_path / "m", repo_root, corpus)
    tagger = stream.ScoringTagger(str(model), batch_size=4, operating_point=None, patterns=None, candidates=True)
    gold = i2b2_deid.read_i2b2_2014_dir(str(corpus / "dev" / "xml"), strict=True)[:2]
    recipe = PatternConfig(enabled=True, type_map="meddocan", recognizers=("email",)).recipe(tagger.labels)
    op = opl.choose_operating_point(opl.DevRun.of(tagger, gold), 0.9, patterns=recipe)
    assert op.dev["chosen"]["recall"] >= 0.9 and op.dev["unreached"] == [], op.dev["by_type"]
    assert all(m["recall"] >= 0.9 for m in op.dev["by_type"].values())
