"""The recall operating point: the threshold rule, its storage in the model dir, selection on
gold notes, and the streaming tagger at the stored point and with pattern recognizers."""

from __future__ import annotations

import numpy as np
import pytest

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.patterns import PatternRecipe
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.inference import operating_point as opl
from test_predict_stream import make_model_dir

LABELS = ["O", "B-NAME", "I-NAME", "B-DATE", "I-DATE"]


def test_threshold_rule_numpy_and_jax_agree():
    import jax.numpy as jnp

    tables = opl.LabelTables.of(LABELS)
    assert tables.types == ("DATE", "NAME") and tables.o_id == 0 and list(tables.i_label) == [4, 2]
    marg = np.array([[0.60, 0.25, 0.15, 0.0, 0.0],   # O argmax, NAME mass 0.40
                     [0.55, 0.0, 0.0, 0.05, 0.40],   # O argmax, DATE mass 0.45
                     [0.10, 0.70, 0.20, 0.0, 0.0],   # B-NAME argmax: kept whatever the thresholds
                     [0.90, 0.05, 0.05, 0.0, 0.0]], np.float32)  # NAME mass 0.10
    labels = marg.argmax(-1)
    scores = marg.max(-1)
    best, mass = opl.phi_candidates(np, marg, tables)
    assert list(best) == [2, 4, 2, 2] and np.allclose(mass, [0.40, 0.45, 0.90, 0.10])
    thr = tables.label_thresholds({"NAME": 0.3, "DATE": 0.5}, len(LABELS))
    new, new_scores = opl.apply_thresholds(np, labels, scores, best, mass, thr, tables.o_id)
    assert list(new) == [2, 0, 1, 0] and np.allclose(new_scores, [0.40, 0.55, 0.70, 0.90])
    jb, jm = opl.phi_candidates(jnp, jnp.asarray(marg), tables)
    jl, js = opl.apply_thresholds(jnp, jnp.asarray(labels), jnp.asarray(scores), jb, jm, thr, tables.o_id)
    assert list(np.asarray(jl)) == list(new) and np.allclose(np.asarray(js), new_scores)
    # argmax: no thresholds → nothing added
    none = tables.label_thresholds({}, len(LABELS))
    assert list(opl.apply_thresholds(np, labels, scores, best, mass, none, 0)[0]) == list(labels)
    with pytest.raises(ConfigError, match=r"\['AGE'\] are not labels"):
        tables.label_thresholds({"AGE": 0.1}, len(LABELS))


def test_span_recall_is_leak_free_coverage():
    gold = [Document("a", "Ana Ruiz vino el 3/4/2020.", [Entity("T1", "NAME", ((0, 8),)), Entity("T2", "DATE", ((17, 25),))])]
    r = opl.span_recall(gold, [[(0, 3), (4, 8), (30, 31)]])  # the name covered in two pieces; the date missed
    assert r["recall"] == 0.5 and r["by_type"]["NAME"]["recall"] == 1.0 and r["by_type"]["DATE"]["missed"] == 1
    assert r["precision"] == pytest.approx(2 / 3)
    assert opl.span_recall(gold, [[(0, 7), (17, 25)]])["by_type"]["NAME"]["recall"] == 0.0  # 'z' would leak


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, repo_root):
    return make_model_dir(tmp_path_factory.mktemp("op") / "ner", repo_root, o_bias=1.5, label_all_subwords=False)


def _gold_notes() -> list[Document]:
    texts = ["Patient reports chest pain and fever; aspirin given, CT scan of the head was normal.",
             "Seen for cough. Started amoxicillin. Blood culture pending; contact a.b@clinic.org.",
             "Headache resolved after ibuprofen. MRI brain ordered. Follow up with labs tomorrow."]
    words = [("chest pain", "problem"), ("fever", "problem"), ("aspirin", "treatment"), ("CT scan", "test"),
             ("cough", "problem"), ("amoxicillin", "treatment"), ("Blood culture", "test"), ("Headache", "problem"),
             ("ibuprofen", "treatment"), ("MRI brain", "test"), ("labs", "test")]
    docs = []
    for i, t in enumerate(texts):
        ents = [Entity(f"T{k}", typ, ((t.index(w), t.index(w) + len(w)),)) for k, (w, typ) in enumerate(words) if w in t]
        docs.append(Document(f"n{i}", t, ents))
    return docs


def test_choose_store_reload_and_stream_at_the_operating_point(model_dir):
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.inference import stream

    gold = _gold_notes()
    tagger = stream.ScoringTagger(str(model_dir), batch_size=4, candidates=True)
    op = opl.choose_operating_point(opl.DevRun.of(tagger, gold), 0.9)
    dev = op.dev
    assert dev["chosen"]["recall"] >= dev["argmax"]["recall"]
    assert set(op.thresholds) <= {"problem", "test", "treatment"}
    for typ, m in dev["by_type"].items():  # each type reached the target, or is listed as not reaching it
        assert m["recall"] >= 0.9 or typ in dev["unreached"]
    # stored in config.json, reloaded equal; a model dir without one is argmax
    assert opl.load_operating_point(str(model_dir)) is None
    opl.save_operating_point(str(model_dir), op)
    back = opl.load_operating_point(str(model_dir))
    assert back.thresholds == op.thresholds and back.target_recall == 0.9 and back.dev["chosen"] == dev["chosen"]
    # the streaming tagger loads the stored point, and finds exactly the spans selection measured
    at_op = stream.ScoringTagger(str(model_dir), batch_size=4)
    assert at_op.operating_point == back and at_op.patterns is None
    plain = [Document(d.id, d.text) for d in gold]
    enc, _ = windowing.encode_documents(plain, at_op.tokenizer, at_op.max_length, at_op.overlap,
                                        first_subword=at_op.first_subword)
    results = stream.scored_documents(at_op, enc)
    measured = opl.span_recall(gold, [[(e.start, e.end) for e in doc.entities] for doc, _ in results])
    assert measured["recall"] == dev["chosen"]["recall"] and measured["predicted"] == dev["chosen"]["predicted"]
    # and with the pattern recipe: the e-mail is found by its recognizer, and says so
    with_p = stream.ScoringTagger(str(model_dir), batch_size=4, operating_point=back,
                                  patterns=PatternRecipe(recognizers=("email",), type_map={"EMAIL": "problem"}))
    res = stream.scored_documents(with_p, enc)
    doc, scores = res[1]
    found = [(e.type, doc.text[e.start:e.end], src) for e, src in zip(doc.entities, res[1].sources)]
    assert any(t == "problem" and "a.b@clinic.org" in txt and "pattern:email" in src for t, txt, src in found), found
    assert len(scores) == len(doc.entities)
    opl.save_patterns(str(model_dir), with_p.patterns.recipe)
    assert opl.load_patterns(str(model_dir)) == with_p.patterns.recipe
    assert stream.ScoringTagger(str(model_dir), batch_size=4).patterns.recipe == with_p.patterns.recipe
    assert stream.ScoringTagger(str(model_dir), operating_point=None, patterns=None).operating_point is None


def test_operating_point_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="target_recall"):
        opl.OperatingPoint({}, 1.5)
    with pytest.raises(ConfigError, match="thresholds must be in"):
        opl.OperatingPoint({"NAME": 0.0}, 0.99)
    with pytest.raises(InputError, match="config.json: operating_point: not an operating point"):
        opl.OperatingPoint.from_dict({"thresholds": {}}, "m/config.json: operating_point")


@pytest.mark.slow
def test_cli_evaluate_target_recall_then_predict_and_deid_use_it(repo_root, tmp_path, capsys, monkeypatch):
    """evaluate --target_recall stores thresholds + recipe; predict's entities.jsonl says who found
    each span; deid at the stored point leaks no more gold PHI than at argmax, model alone."""
    import json

    from gatortron_jax.annotations.formats import i2b2_deid
    from gatortron_jax.cli import main as cli
    from test_finetune_ner import TINY, _save_random_mlm_model

    monkeypatch.chdir(repo_root)
    init = tmp_path / "pretrained"
    _save_random_mlm_model(init, repo_root, TINY)
    model = tmp_path / "deid_model"
    assert cli.main(["finetune", "--gin_file=gin/finetune/sample_deid.gin", f"--init_checkpoint={init}",
                     f"--model_dir={model}", "--gin.NERDataConfig.max_length=64", "--gin.NERDataConfig.overlap=16",
                     "--gin.NERTrainConfig.num_epochs=1", "--gin.NERTrainConfig.max_steps_per_epoch=4"]) == 0
    out_json = tmp_path / "eval.json"
    capsys.readouterr()
    assert cli.main(["evaluate", f"--checkpoint={model}", f"--output={out_json}", "--target_recall", "0.95"]) == 0
    assert "operating point, model + patterns" in capsys.readouterr().out
    ev = json.loads(out_json.read_text())["operating_point"]
    assert ev["table"]["operating point, model + patterns"]["recall"] >= ev["table"]["argmax, model"]["recall"]
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["operating_point"]["target_recall"] == 0.95 and cfg["patterns"]["type_map"]["DATE"] == "DATE"

    test_dir = repo_root / "data/deid_samples/i2b2_2014/test"
    gold = i2b2_deid.read_i2b2_2014_dir(str(test_dir), strict=True)
    table = tmp_path / "notes.jsonl"
    table.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in gold), encoding="utf-8")
    assert cli.main(["predict", f"--checkpoint={model}", f"--input={table}", f"--output={tmp_path / 'p'}",
                     "--format", "none"]) == 0
    rows = [json.loads(l) for l in (tmp_path / "p/entities.jsonl").read_text().splitlines()]
    assert rows and all("source" in r for r in rows) and any(r["source"].startswith("pattern:")
                                                             or "+pattern:" in r["source"] for r in rows)
    leaked = {}
    for name, extra in (("stored", []), ("argmax", ["--operating_point", "argmax", "--patterns", "none"])):
        assert cli.main(["deid", f"--checkpoint={model}", f"--input={test_dir}", f"--output={tmp_path / name}",
                         "--mode", "mask", *extra]) == 0
        leaked[name] = json.loads((tmp_path / name / "leakage_report.json").read_text())["summary"]["leaked"]
    assert leaked["stored"] <= leaked["argmax"]
