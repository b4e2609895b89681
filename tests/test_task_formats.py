"""Readers for the RE / NLI / STS / QA formats: samples, shared public data, bad input."""

import collections
import json

import pytest

from gatortron_jax.annotations.formats.chemprot import CHEMPROT_LABELS, read_chemprot_tsv
from gatortron_jax.annotations.formats.nli import read_nli_jsonl
from gatortron_jax.annotations.formats.squad import read_squad_json
from gatortron_jax.text.windows import stride_windows
from gatortron_jax.annotations.formats.sts import read_biosses_tsv, read_sts_tsv
from gatortron_jax.annotations.formats.task_common import ExampleReadSummary
from gatortron_jax.sample_data.tasks import write_all
from gatortron_jax.core.errors import InputError


def _label_counts(path, col):
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return collections.Counter(r[col] for r in rows if len(r) > col)


# ------------------------------------------------------------------ shipped samples


def test_samples_regenerate_identically(repo_root, tmp_path):
    write_all(str(tmp_path))
    shipped = repo_root / "data" / "task_samples"
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert (shipped / f.relative_to(tmp_path)).read_bytes() == f.read_bytes(), f


def test_samples_read(repo_root):
    base = repo_root / "data" / "task_samples"
    for split in ("train", "dev", "test"):
        cp = read_chemprot_tsv(str(base / "chemprot_style" / f"{split}.tsv"))
        assert cp and all(ex.chemical_span and ex.gene_span for ex in cp)
        assert set(ex.label for ex in cp) <= set(CHEMPROT_LABELS)
        nli = read_nli_jsonl(str(base / "mednli_style" / f"mli_{split}_v1.jsonl"))
        assert {ex.label for ex in nli} == {"entailment", "contradiction", "neutral"}
        sts = read_sts_tsv(str(base / "sts_style" / f"clinicalsts_{split}.tsv"))
        assert len({ex.score for ex in sts}) > 3
        s = ExampleReadSummary()
        qa = read_squad_json(str(base / "emrqa_style" / f"{split}.json"), summary=s)
        assert s.labels["unanswerable"] > 0 and s.labels["answerable"] > 0 and not s.problems
        for ex in qa:
            for a in ex.answers:
                assert ex.context[a.start:a.end] == a.text


# ------------------------------------------------------------------ public data (skips when absent)


def test_chemprot_blue_dev_counts(shared_data):
    path = shared_data / "ChemProt" / "blue_style" / "dev.tsv"
    if not path.exists():
        pytest.skip("ChemProt blue_style not present")
    summary = ExampleReadSummary()
    examples = read_chemprot_tsv(str(path), summary=summary)
    expected = _label_counts(path, 2)
    assert dict(summary.labels) == dict(expected)
    assert collections.Counter(ex.label for ex in examples) == expected
    assert len(examples) == sum(expected.values())
    assert not summary.skipped_examples
    assert len({ex.id for ex in examples}) == len(examples)  # repeated indexes (multi-label pairs) suffixed
    assert all(ex.chemical_span is not None and ex.gene_span is not None for ex in examples)


def test_biosses(shared_data):
    d = shared_data / "BIOSSES"
    if not d.is_dir():
        pytest.skip("BIOSSES not present")
    n = {s: len(read_biosses_tsv(str(d / f"{s}.tsv"))) for s in ("train", "dev", "test")}
    assert n == {"train": 64, "dev": 16, "test": 20}
    allx = read_biosses_tsv(str(d / "all.tsv"))
    assert len(allx) == 100 and len({ex.id for ex in allx}) == 100
    assert all(0.0 <= ex.score <= 4.0 for ex in allx)


def test_format_samples_mednli_emrqa(shared_data):
    d = shared_data / "format_samples"
    nli_path, qa_path = d / "mednli" / "mli_synthetic_v1.jsonl", d / "emrqa" / "synthetic_emrqa_squad_style.json"
    if not nli_path.exists() or not qa_path.exists():
        pytest.skip("format_samples not present")
    nli = read_nli_jsonl(str(nli_path))
    with open(nli_path) as f:
        assert len(nli) == sum(1 for line in f if line.strip())
    assert nli[0].id == "synthetic-1" and nli[0].label == "entailment"
    qa = read_squad_json(str(qa_path))
    raw = json.loads(qa_path.read_text())
    assert len(qa) == sum(len(p["qas"]) for a in raw["data"] for p in a["paragraphs"])
    for ex in qa:
        assert ex.answers and ex.context[ex.answers[0].start:ex.answers[0].end] == ex.answers[0].text


# ------------------------------------------------------------------ bad input


def test_chemprot_bad_label_strict_and_lenient(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("index\tsentence\tlabel\n1.T1.T2\t@CHEMICAL$ x @GENE$\tCPR:4\n"
                 "2.T1.T2\t@CHEMICAL$ secret words @GENE$\tCPR:99\n3.T1.T2\tonly two fields\n")
    with pytest.raises(InputError) as e:
        read_chemprot_tsv(str(p))
    msg = str(e.value)
    assert "x.tsv:3" in msg and "2.T1.T2" in msg and "CPR:99" in msg and "secret" not in msg
    s = ExampleReadSummary()
    ex = read_chemprot_tsv(str(p), strict=False, summary=s)
    assert [x.id for x in ex] == ["1.T1.T2"]
    assert [i for _, i, _ in s.skipped_examples] == ["2.T1.T2", "3.T1.T2"]
    assert sum(s.problems.values()) == 2 and "skipped 2" in s.describe()


def test_nli_missing_field(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "entailment", "pairID": "p1"}) + "\n"
                 + json.dumps({"sentence1": "a", "gold_label": "neutral", "pairID": "p2"}) + "\n"
                 + json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "maybe", "pairID": "p3"}) + "\n")
    with pytest.raises(InputError, match=r"m\.jsonl:2.*'p2'.*sentence2"):
        read_nli_jsonl(str(p))
    s = ExampleReadSummary()
    assert [x.id for x in read_nli_jsonl(str(p), strict=False, summary=s)] == ["p1"]
    assert [i for _, i, _ in s.skipped_examples] == ["p2", "p3"]


def test_sts_bad_score(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text("a\tb\t3.5\nc\td\tseven\ne\tf\t6\n")
    with pytest.raises(InputError, match=r"s\.tsv:2.*not a number"):
        read_sts_tsv(str(p))
    s = ExampleReadSummary()
    ok = read_sts_tsv(str(p), strict=False, summary=s)
    assert [x.score for x in ok] == [3.5] and len(s.skipped_examples) == 2
    assert ok[0].id.endswith("s.tsv:1")


def _squad(tmp_path, qas, context="The patient takes aspirin daily."):
    p = tmp_path / "q.json"
    p.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return str(p)


def test_squad_answer_not_in_context(tmp_path):
    path = _squad(tmp_path, [
        {"id": "q1", "question": "what?", "answers": [{"text": "aspirin", "answer_start": 18}]},
        {"id": "q2", "question": "what?", "answers": [{"text": "warfarin", "answer_start": 3}]},
        {"id": "q3", "question": "what?", "answers": [{"text": "aspirin", "answer_start": 2}]},  # off: repaired
        {"id": "q4", "question": "what?", "answers": [], "is_impossible": True},
        {"id": "q5", "answers": [{"text": "aspirin", "answer_start": 18}]},
    ])
    with pytest.raises(InputError, match=r"q\.json#data\[0\]\.paragraphs\[0\]\.qas\[1\].*'q2'.*not found"):
        read_squad_json(path)
    s = ExampleReadSummary()
    ex = read_squad_json(path, strict=False, summary=s)
    assert [x.id for x in ex] == ["q1", "q3", "q4"]
    assert ex[1].answers[0].start == 18 and s.problems["answer_start repaired"] == 1
    assert ex[2].is_impossible and ex[2].answers == ()
    assert [i for _, i, _ in s.skipped_examples] == ["q2", "q5"]


def test_stride_windows():
    assert stride_windows(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert stride_windows(3, 4, 2) == [(0, 3)]
    w = stride_windows(1000, 384, 128)
    assert w[-1][1] == 1000 and all(b - a <= 384 for a, b in w)
