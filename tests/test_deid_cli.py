"""De-identification end to end through the real CLI.

Default run: ``deid --mode surrogate`` on the gold PHI of the synthetic 2014 XML (no model: a
few seconds). Slow: fine-tune the tiny model on the XML sample, ``evaluate`` (binary,
per-category and HIPAA tables), ``predict --format i2b2_2014``, ``deid`` with the model and
its leakage audit (~55 s on 2 cores, most of it JAX start-up and compiles)."""

import collections
import json
import re

import pytest

from gatortron_jax.cli import main as cli
from gatortron_jax.annotations.formats import i2b2_deid


def _word(s: str) -> str:
    return rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"


def _gold(repo_root):
    test_dir = repo_root / "data/deid_samples/i2b2_2014/test"
    return test_dir, {d.id: d for d in i2b2_deid.read_i2b2_2014_dir(str(test_dir), strict=True)}


def test_cli_deid_surrogates_leak_nothing_and_stay_consistent(repo_root, tmp_path, caplog):
    test_dir, gold = _gold(repo_root)
    out_dir = tmp_path / "s"
    assert cli.main(["deid", f"--input={test_dir}", f"--output={out_dir}", "--mode", "surrogate",
                     "--phi_source", "gold", "--seed", "11", "--patient_id_pattern", r"^(\d+)-"]) == 0
    report = json.loads((out_dir / "leakage_report.json").read_text())
    assert report["summary"]["leaked"] == 0 and report["summary"]["kept_by_policy"] >= 1
    assert report["summary"]["gold_phi"] == sum(len(d.entities) for d in gold.values())
    assert any(r.getMessage().startswith(f"leakage: 0 of {report['summary']['gold_phi']}") for r in caplog.records)
    reps = {json.loads(l)["id"]: json.loads(l)["replacements"]
            for l in (out_dir / "replacements.jsonl").read_text().splitlines()}
    by_patient = collections.defaultdict(lambda: collections.defaultdict(set))
    for doc_id, d in gold.items():
        out = (out_dir / f"{doc_id}.txt").read_text(encoding="utf-8")
        for e in d.entities:
            if e.type == "AGE" and int(e.text) <= 89:
                continue  # not PHI under Safe Harbor: kept, and reported as kept
            assert not re.search(_word(e.text), out), (doc_id, e.type)  # no gold PHI string survives
        per_note = collections.defaultdict(set)
        for rep in reps[doc_id]:
            original = d.text[rep["start"]:rep["end"]]
            assert out[rep["out_start"]:rep["out_end"]] == rep.get("surrogate", original)
            assert not re.search(_word(original), json.dumps(rep))  # the record never holds the original
            if rep["type"] == "PATIENT":
                per_note[original].add(rep["surrogate"])
                by_patient[doc_id.split("-")[0]][original].add(rep["surrogate"])
        # The full name recurs in every note and keeps one surrogate, within the note and the patient.
        assert any(len([r for r in reps[doc_id] if d.text[r["start"]:r["end"]] == k]) > 1 for k in per_note)
        assert per_note and all(len(v) == 1 for v in per_note.values())
    assert all(len(v) == 1 for names in by_patient.values() for v in names.values())
    ages = [r for rs in reps.values() for r in rs if r["type"] == "AGE" and r["how"] == "surrogate"]
    assert ages and all(r["surrogate"] == "90+" for r in ages)
    # Same command, i2b2 2014 XML out: what the official scripts read; the text matches the .txt run.
    assert cli.main(["deid", f"--input={test_dir}", f"--output={tmp_path / 'x'}", "--mode", "surrogate",
                     "--phi_source", "gold", "--seed", "11", "--patient_id_pattern", r"^(\d+)-",
                     "--format", "i2b2_2014"]) == 0
    for d in i2b2_deid.read_i2b2_2014_dir(str(tmp_path / "x"), strict=True):
        assert d.text == (out_dir / f"{d.id}.txt").read_text(encoding="utf-8")
        assert len(d.entities) == sum(r["how"] != "kept" for r in reps[d.id])
    # Gold PHI requested from raw notes: one error line, exit status 2.
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/a.txt").write_text("No annotations here.\n")
    assert cli.main(["deid", f"--input={tmp_path / 'raw'}", f"--output={tmp_path / 'o'}", "--phi_source", "gold"]) == 2


@pytest.mark.slow
def test_cli_finetune_evaluate_predict_deid_on_the_xml_sample(repo_root, tiny_pretrained, tmp_path, capsys, caplog,
                                                              monkeypatch):
    monkeypatch.chdir(repo_root)
    init = tiny_pretrained
    model = tmp_path / "deid_model"
    assert cli.main(["finetune", "--gin_file=gin/finetune/sample_deid.gin", f"--init_checkpoint={init}",
                     f"--model_dir={model}", "--gin.NERDataConfig.max_length=64", "--gin.NERDataConfig.overlap=16",
                     "--gin.NERTrainConfig.num_epochs=1", "--gin.NERTrainConfig.max_steps_per_epoch=4"]) == 0
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["ner"]["task"] == "i2b2_2014_deid" and cfg["ner"]["output_format"] == "i2b2_2014"
    assert "B-PATIENT" in cfg["ner"]["labels"] and "B-HOSPITAL" in cfg["ner"]["labels"]

    # evaluate: the NER table plus the de-id tables, all in the JSON.
    out_json = tmp_path / "eval.json"
    capsys.readouterr()
    assert cli.main(["evaluate", f"--checkpoint={model}", f"--output={out_json}"]) == 0
    printed = capsys.readouterr().out
    for needle in ("strict P", "PHI vs not (binary", "token micro", "per category", "NAME", "LOCATION",
                   "HIPAA subset (2014 challenge definition)"):
        assert needle in printed, needle
    ev = json.loads(out_json.read_text())
    assert set(ev["deid"]) >= {"binary", "per_type", "per_category", "hipaa"} and ev["documents"] == 6
    assert ev["deid"]["binary"]["token"]["tp"] + ev["deid"]["binary"]["token"]["fn"] > 100

    test_dir, gold = _gold(repo_root)
    # predict --format i2b2_2014 on raw .txt notes writes XML the reader takes back.
    notes = tmp_path / "notes"
    notes.mkdir()
    for d in gold.values():
        (notes / f"{d.id}.txt").write_text(d.text, encoding="utf-8")
    assert cli.main(["predict", f"--checkpoint={model}", f"--input={notes}", f"--output={tmp_path / 'pred'}",
                     "--format", "i2b2_2014"]) == 0
    back = {d.id: d for d in i2b2_deid.read_i2b2_2014_dir(str(tmp_path / "pred"), strict=True)}
    assert {k: v.text for k, v in back.items()} == {k: v.text for k, v in gold.items()}
    # evaluate's official figures are what `score` says of predict's output (issue 25)
    from gatortron_jax.scoring import score

    scored = score("i2b2_2014", str(test_dir), str(tmp_path / "pred")).rows
    assert set(ev["official"]["rows"]) == set(scored) and ev["official"]["format"] == "i2b2_2014"
    for name, row in ev["official"]["rows"].items():
        for k, v in row.items():
            assert v == scored[name][k] or (v != v and scored[name][k] != scored[name][k]), (name, k)

    # deid with the model on annotated XML: a leakage audit, summarised in one line, without PHI text.
    caplog.clear()
    assert cli.main(["deid", f"--checkpoint={model}", f"--input={test_dir}", f"--output={tmp_path / 'm'}",
                     "--mode", "surrogate", "--seed", "3"]) == 0
    report = json.loads((tmp_path / "m/leakage_report.json").read_text())
    s = report["summary"]
    assert s["gold_phi"] == sum(len(d.entities) for d in gold.values()) and 0 <= s["leaked"] <= s["gold_phi"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("leakage:")]
    assert len(lines) == 1 and f"{s['leaked']} of {s['gold_phi']} gold PHI spans" in lines[0]
    logged = caplog.text + json.dumps(report)
    assert not any(e.text in logged for d in gold.values() for e in d.entities if e.type == "PATIENT")

    # A note table (.jsonl with a patient column) in, deidentified.jsonl out.
    table = tmp_path / "notes.jsonl"
    table.write_text("".join(json.dumps({"id": k, "patient": k.split("-")[0], "text": d.text}) + "\n"
                             for k, d in gold.items()), encoding="utf-8")
    assert cli.main(["deid", f"--checkpoint={model}", f"--input={table}", "--patient_id_field=patient",
                     f"--output={tmp_path / 't'}", "--mode", "surrogate"]) == 0
    rows = [json.loads(l) for l in (tmp_path / "t/deidentified.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(gold) and not (tmp_path / "t/leakage_report.json").exists()
