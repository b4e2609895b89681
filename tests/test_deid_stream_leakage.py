"""Leakage of a streamed note table: a MEDDOCAN-shaped corpus of our own -> ``convert-notes
--with_gold`` -> streamed ``deid --mode mask --gold_field phi`` through the real CLI with a tiny
tagger. The streamed leak counts equal the in-memory ``deid`` audit of the same notes in their
XML (``leakage_report``), and a resumed run (chunks lost, or the process killed) reports the same."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from cli_run import kill_when
from gatortron_jax.annotations.formats import i2b2_deid
from gatortron_jax.annotations.patterns import recipe_for_labels
from gatortron_jax.cli import main as cli
from gatortron_jax.inference import operating_point as opl
from test_deid_decodings import meddocan_model_dir
from test_meddocan import write_meddocan_corpus

N_NOTES = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory, repo_root):
    """(corpus root, model dir with the pattern recipe stored, the converted dev table)."""
    from gatortron_jax.finetuning import ner_tasks

    root = tmp_path_factory.mktemp("leak")
    write_meddocan_corpus(root / "corpus", N_NOTES)
    model = meddocan_model_dir(root / "model", repo_root, root / "corpus")
    labels = json.loads((model / "config.json").read_text())["ner"]["labels"]
    opl.save_patterns(str(model), recipe_for_labels(labels))  # the stored decoding: model + patterns
    table = root / "dev.jsonl"
    assert cli.main(["convert-notes", "--format", "meddocan", "--input", str(root / "corpus" / "dev"),
                     "--output", str(table), "--with_gold"]) == 0
    yield root / "corpus", model, table
    ner_tasks._TASKS.pop("meddocan_deid", None)


def deid_table(model, table, out, *extra):
    return cli.main(["deid", "--checkpoint", str(model), "--input", str(table), "--output", str(out),
                     "--mode", "mask", "--gold_field", "phi", "--chunk_notes", "2", *extra])


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_convert_notes_keeps_every_gold_span(setup):
    corpus, _, table = setup
    gold = i2b2_deid.read_i2b2_2014_dir(str(corpus / "dev" / "xml"), strict=True)
    got = rows(table)
    assert [r["id"] for r in got] == [d.id for d in gold] and [r["text"] for r in got] == [d.text for d in gold]
    for r, d in zip(got, gold):
        assert [(p["start"], p["end"], p["type"], p["id"]) for p in r["phi"]] == [
            (e.start, e.end, e.type, e.id) for e in d.entities]


def test_streamed_leakage_equals_the_in_memory_audit_and_resumes(setup, tmp_path):
    corpus, model, table = setup
    # the in-memory audit of the same notes, given as annotated XML
    assert cli.main(["deid", "--checkpoint", str(model), "--input", str(corpus / "dev" / "xml"),
                     "--output", str(tmp_path / "mem"), "--mode", "mask"]) == 0
    mem = json.loads((tmp_path / "mem" / "leakage_report.json").read_text())
    assert mem["summary"]["gold_phi"] == N_NOTES * 8 and 0 < mem["summary"]["leaked"] < mem["summary"]["gold_phi"]

    out = tmp_path / "stream"
    assert deid_table(model, table, out) == 0
    report = json.loads((out / "leakage_report.json").read_text())
    assert {k: report["summary"][k] for k in mem["summary"]} == mem["summary"]
    assert report["summary"]["notes_failed"] == 0 and report["summary"]["leaked_partly"] == (
        report["summary"]["leaked"] - report["summary"]["leaked_whole"])
    assert rows(out / "leakage.jsonl") == mem["notes"]  # per note, per gold span: the same report
    assert json.loads((out / "deid_summary.json").read_text())["leakage"] == report["summary"]
    # the patterns ran in both: no e-mail survives; and no PHI text in the audit files
    assert "CORREO_ELECTRONICO" not in report["summary"]["leaked_by_type"]
    written = (out / "leakage.jsonl").read_text() + (out / "leakage_report.json").read_text()
    gold_texts = {r["text"][p["start"]:p["end"]] for r in rows(table) for p in r["phi"]}
    assert not any(t in written for t in gold_texts if len(t) > 3)

    # a rerun that lost its last chunk, its leakage rows and a redacted note redoes them: same report
    state = out / "_stream" / "shard-00000-of-00001"
    before = {p: (out / p).read_bytes() for p in ("leakage_report.json", "leakage.jsonl", "deidentified.jsonl")}
    (state / "chunk-000002.json").unlink()
    (state / "leakage-000001.jsonl").write_text("{}\n")
    assert deid_table(model, table, out) == 0
    assert {p: (out / p).read_bytes() for p in before} == before
    s = json.loads((out / "summary.json").read_text())
    assert (s["chunks_resumed"], s["chunks_predicted"]) == (1, 2)


def test_bad_gold_spans_are_one_error_naming_file_line_and_note(setup, tmp_path, capsys):
    _, model, table = setup
    good = rows(table)
    cases = [({"start": 5, "end": 2, "type": "FECHAS"}, r"phi\[1\]: span \[5, 2\) is empty or outside"),
             ({"start": 0, "end": 10 ** 6, "type": "FECHAS"}, r"phi\[1\]: span .* outside the text"),
             ({"start": "0", "end": 4, "type": "FECHAS"}, r"phi\[1\]: start/end are not integers"),
             ({"start": 0, "end": 4}, r"phi\[1\]: not an object with start, end and type")]
    for k, (span, msg) in enumerate(cases):
        bad = [dict(r) for r in good]
        bad[2] = {**bad[2], "phi": [bad[2]["phi"][0], span]}
        path = tmp_path / f"bad{k}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in bad), encoding="utf-8")
        assert deid_table(model, path, tmp_path / f"o{k}") == 2
        err = capsys.readouterr().err
        assert f"bad{k}.jsonl:3: note '{good[2]['id']}': " in err, err
        assert re.search(msg, err), err
    missing = [dict(r) for r in good]
    del missing[1]["phi"]
    path = tmp_path / "missing.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in missing), encoding="utf-8")
    assert deid_table(model, path, tmp_path / "om") == 2
    assert f"missing.jsonl:2: note '{good[1]['id']}': no 'phi' field" in capsys.readouterr().err


@pytest.mark.slow  # one more CLI process
def test_killed_streamed_audit_resumes_to_the_same_report(setup, tmp_path, repo_root):
    _, model, table = setup
    ref = tmp_path / "ref"
    assert deid_table(model, table, ref, "--chunk_notes", "1") == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gatortron_jax.cli.main", "deid", "--checkpoint", str(model), "--input", str(table),
           "--output", str(out), "--mode", "mask", "--gold_field", "phi", "--chunk_notes", "1"]
    ledger = out / "_stream/shard-00000-of-00001/chunk-000001.json"
    kill_when(cmd, repo_root, lambda _err: ledger.exists(), env=dict(os.environ))
    assert not (out / "leakage_report.json").exists(), "the run finished before it could be killed"
    assert deid_table(model, table, out, "--chunk_notes", "1") == 0
    for name in ("leakage_report.json", "leakage.jsonl", "deidentified.jsonl", "replacements.jsonl"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert json.loads((out / "summary.json").read_text())["chunks_resumed"] >= 2



def test_csv_and_parquet_gold_columns_read_as_the_jsonl_table(setup, tmp_path):
    """The same table as CSV (gold as JSON text) and Parquet (gold as list<struct>) gives every
    note the ``.jsonl`` reader's gold spans (the leakage audit downstream is the same code for
    every kind); a CSV gold cell that is not JSON, or empty, is one error naming the file, the
    row and the note."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from gatortron_jax.core.errors import InputError
    from gatortron_jax.inference.note_sources import NoteSource

    _, _, table = setup
    good = rows(table)
    spans = [[{k: p[k] for k in ("start", "end", "type", "id")} for p in r["phi"]] for r in good]
    ids, texts = [r["id"] for r in good], [r["text"] for r in good]

    def gold_of(path, **kw):
        return [(n.id, n.text, [(e.start, e.end, e.type, e.id) for e in n.gold])
                for n in NoteSource(str(path), gold_field="phi", **kw).notes()]

    expected = gold_of(table)
    assert sum(len(g) for _, _, g in expected) == sum(map(len, spans)) > 0
    pacsv.write_csv(pa.table({"id": ids, "text": texts, "phi": [json.dumps(s) for s in spans]}), tmp_path / "t.csv")
    pq.write_table(pa.table({"id": ids, "text": texts, "phi": spans}), tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        assert gold_of(tmp_path / name, id_field="id", text_field="text") == expected, name
    for k, (cell, msg) in enumerate([(json.dumps(spans[3])[:-1], "phi: not JSON"), ("", "phi is empty")]):
        cells = [json.dumps(s) for s in spans]
        cells[3] = cell
        path = tmp_path / f"bad{k}.csv"
        pacsv.write_csv(pa.table({"id": ids, "text": texts, "phi": cells}), path)
        with pytest.raises(InputError, match=re.escape(f"bad{k}.csv row 4: note '{ids[3]}': {msg}")):
            gold_of(path, id_field="id", text_field="text")
