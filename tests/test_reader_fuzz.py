"""Property test: every reader, fed generated malformed files, either reads them or raises one
InputError naming the file — never another exception type, never a silently missing document.

Files are built from valid lines of each format with random corruption: undecodable bytes, a
BOM, CRLF, truncated lines, out-of-range and overlapping offsets, duplicate ids, empty files.
"""

import pathlib
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatortron_jax.pretraining.corpus import TextCorpusSource
from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.annotations.formats.brat import read_brat
from gatortron_jax.annotations.formats.chemprot import read_chemprot_tsv
from gatortron_jax.annotations.formats.conll import read_conll
from gatortron_jax.annotations.formats.i2b2_2010 import read_con
from gatortron_jax.annotations.formats.i2b2_2012 import read_i2b2_2012
from gatortron_jax.annotations.formats.nli import read_nli_jsonl
from gatortron_jax.annotations.formats.squad import read_squad_json
from gatortron_jax.annotations.formats.sts import read_sts_tsv
from gatortron_jax.core.errors import InputError

NOTE = "Pt has HTN and DM2.\nStarted metoprolol 25 mg PO BID.\n"

VALID_LINES = {
    "ann": ["T1\tProblem 7 10\tHTN", "T2\tProblem 15 18\tDM2", "T3\tDrug 28 38\tmetoprolol",
            "R1\tReason-Drug Arg1:T1 Arg2:T3", "#1\tAnnotatorNotes T1\tnote", "T4\tDose 39 44;45 50\t25 mg PO BI"],
    "con": ['c="htn" 1:2 1:2||t="problem"', 'c="dm2." 1:4 1:4||t="problem"',
            'c="metoprolol" 2:1 2:1||t="treatment"'],
    "conll": ["Pt\tO", "has\tO", "HTN\tB-Disease", "and\tO", "DM2\tB-Disease", "", "-DOCSTART-\tO", "x\tI-Disease"],
    "tsv_chemprot": ["1\t@CHEMICAL$ inhibits @GENE$ .\tCPR:4", "2\t@GENE$ binds @CHEMICAL$\tfalse"],
    "tsv_sts": ["0\tPt has HTN.\tPatient is hypertensive.\t4.0", "1\tNo fever.\tAfebrile.\t3.5"],
    "jsonl_nli": ['{"pairID": "a", "sentence1": "Pt has HTN.", "sentence2": "Pt is ill.", "gold_label": "entailment"}'],
}

CORRUPTIONS = st.sampled_from([
    b"\xff\xfe", b"\xef\xbb\xbf", b"\r\n", b"\t", b"\t\t", b"999999 1000000", b"-3", b"\x00", b"T1\tProblem 7 10\tHTN",
    b'c="x" 9:9 9:9||t="problem"', b'c="x" 1:0 1:99||t="oops"', b"{", b'"gold_label": "maybe"', b"nan", b"", b"\n",
])


def _build(lines: list[str], draw_ops: list[tuple[int, int, bytes]]) -> bytes:
    data = "\n".join(lines).encode()
    for kind, pos, junk in draw_ops:
        pos = pos % (len(data) + 1)
        if kind == 0:  # insert
            data = data[:pos] + junk + data[pos:]
        elif kind == 1:  # truncate
            data = data[:pos]
        else:  # duplicate a line
            data = data + b"\n" + data[:pos].split(b"\n")[-1]
    return data


OPS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), CORRUPTIONS), max_size=4)
LINES = lambda kind: st.lists(st.sampled_from(VALID_LINES[kind]), max_size=8)  # noqa: E731
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(read, path: pathlib.Path):
    try:
        return read()
    except InputError as e:
        assert path.name in str(e), f"error does not name the file: {e}"
        assert "metoprolol" not in str(e) and "hypertensive" not in str(e), "error leaks note text"
        return None


def _tmp() -> pathlib.Path:
    return pathlib.Path(tempfile.mkdtemp(prefix="fuzz_"))


@SETTINGS
@given(lines=LINES("ann"), ops=OPS, strict=st.booleans())
def test_brat(lines, ops, strict):
    d = _tmp()
    (d / "n.txt").write_text(NOTE)
    (d / "n.ann").write_bytes(_build(lines, ops))
    summary = ReadSummary()
    doc = _check(lambda: read_brat(str(d / "n.txt"), str(d / "n.ann"), strict=strict, summary=summary), d / "n.ann")
    if doc is not None:
        assert summary.documents == 1 and doc.id
        for e in doc.entities:
            assert all(0 <= s < t <= len(doc.text) for s, t in e.spans)


@SETTINGS
@given(lines=LINES("con"), ops=OPS, strict=st.booleans())
def test_i2b2_2010(lines, ops, strict):
    d = _tmp()
    (d / "n.txt").write_text(NOTE)
    (d / "n.con").write_bytes(_build(lines, ops))
    doc = _check(lambda: read_con(str(d / "n.txt"), str(d / "n.con"), strict=strict), d / "n.con")
    if doc is not None:
        for e in doc.entities:
            assert all(0 <= s < t <= len(doc.text) for s, t in e.spans)


@SETTINGS
@given(ops=OPS, strict=st.booleans())
def test_i2b2_2012(ops, strict):
    d = _tmp()
    xml = ('<?xml version="1.0" encoding="UTF-8" ?>\n<ClinicalNarrativeTemporalAnnotation>\n<TEXT><![CDATA[\n'
           + NOTE + ']]></TEXT>\n<TAGS>\n<EVENT id="E0" start="8" end="11" text="HTN" modality="FACTUAL" '
           'polarity="POS" type="PROBLEM" />\n</TAGS>\n</ClinicalNarrativeTemporalAnnotation>\n')
    (d / "n.xml").write_bytes(_build(xml.split("\n"), ops))
    doc = _check(lambda: read_i2b2_2012(str(d / "n.xml"), strict=strict), d / "n.xml")
    if doc is not None:
        for e in doc.entities:
            assert all(0 <= s < t <= len(doc.text) for s, t in e.spans)


@SETTINGS
@given(lines=LINES("conll"), ops=OPS)
def test_conll(lines, ops):
    d = _tmp()
    (d / "x.tsv").write_bytes(_build(lines, ops))
    _check(lambda: read_conll(str(d / "x.tsv")), d / "x.tsv")


@SETTINGS
@given(kind=st.sampled_from(["tsv_chemprot", "tsv_sts", "jsonl_nli"]), data=st.data(), ops=OPS, strict=st.booleans())
def test_pair_tasks(kind, data, ops, strict):
    d = _tmp()
    path = d / ("x.jsonl" if kind == "jsonl_nli" else "x.tsv")
    path.write_bytes(_build(data.draw(LINES(kind)), ops))
    read = {"tsv_chemprot": read_chemprot_tsv, "tsv_sts": read_sts_tsv, "jsonl_nli": read_nli_jsonl}[kind]
    _check(lambda: read(str(path), strict=strict), path)


@SETTINGS
@given(ops=OPS, strict=st.booleans())
def test_squad(ops, strict):
    d = _tmp()
    doc = ('{"version": "v1.1", "data": [{"title": "n", "paragraphs": [{"context": "Pt has HTN.", '
           '"qas": [{"id": "q1", "question": "What problem?", "answers": [{"text": "HTN", "answer_start": 7}]}]}]}]}')
    (d / "x.json").write_bytes(_build([doc], ops))
    _check(lambda: read_squad_json(str(d / "x.json"), strict=strict), d / "x.json")


@SETTINGS
@given(files=st.lists(st.tuples(st.sampled_from([b"", b"  \n", NOTE.encode(), b"\xef\xbb\xbf" + NOTE.encode(),
                                                 NOTE.replace("\n", "\r\n").encode(), b"ok \xff bad"]),
                                st.booleans()), min_size=1, max_size=6))
def test_corpus_every_document_accounted_for(files):
    d = _tmp()
    for i, (content, nested) in enumerate(files):
        sub = d / "sub" if nested else d
        sub.mkdir(exist_ok=True)
        (sub / f"note{i}.txt").write_bytes(content)
    try:
        source = TextCorpusSource(str(d), validation_fraction=0.0)
        stats = source.validate()
    except InputError as e:
        # undecodable bytes, or nothing usable: named, never a deep traceback
        assert str(d) in str(e) or "note" in str(e)
        return
    total = sum(s.documents + s.empty_documents for s in stats.values())
    assert total == len(files), "every file is either a document or a counted empty one"
