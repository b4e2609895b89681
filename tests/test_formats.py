"""Readers and writers for CoNLL, brat, i2b2 2010 and i2b2 2012 (pure Python, fast)."""

import logging
import pathlib

import pytest

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.annotations.formats import (ReadSummary, read_brat, read_brat_dir, read_conll,
                                        read_i2b2_2010_dir, read_i2b2_2012_dir, write_brat,
                                        write_brat_dir, write_conll, write_i2b2_2010_con,
                                        write_i2b2_2012_xml)
from gatortron_jax.annotations.formats.brat import span_text
from gatortron_jax.annotations.formats.conll import decode_tags
from gatortron_jax.core.errors import InputError

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "ner_samples"
SECRET = "Zyxwv Secretname"  # stands for note text: must never appear in an error message


def _files(root: pathlib.Path, suffix: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(f"*{suffix}"))}


def _write(path: pathlib.Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return str(path)


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["brat_n2c2_2018", "brat_deid"])
def test_brat_samples_round_trip_byte_for_byte(fmt, tmp_path):
    for split in ("train", "dev", "test"):
        src = SAMPLES / fmt / split
        docs = read_brat_dir(str(src))
        write_brat_dir(docs, str(tmp_path / split))
        assert _files(tmp_path / split, ".ann") == _files(src, ".ann")
        assert _files(tmp_path / split, ".txt") == _files(src, ".txt")
        for d in docs:
            for e in d.entities:
                assert span_text(d.text, e.spans) == e.text


def test_i2b2_2010_samples_round_trip_byte_for_byte(tmp_path):
    for split in ("train", "dev", "test"):
        src = SAMPLES / "i2b2_2010" / split
        docs = read_i2b2_2010_dir(str(src))
        assert len(docs) == len(list((src / "txt").glob("*.txt")))
        for d in docs:
            write_i2b2_2010_con(d, str(tmp_path / split / f"{d.id}.con"))
            for e in d.entities:
                assert d.text[e.start:e.end].lower() == e.text.lower()
        assert _files(tmp_path / split, ".con") == {
            k.split("/")[-1]: v for k, v in _files(src / "concepts", ".con").items()}


def test_i2b2_2012_samples_round_trip_byte_for_byte(tmp_path):
    for split in ("train", "dev", "test"):
        src = SAMPLES / "i2b2_2012" / split
        summary = ReadSummary()
        docs = read_i2b2_2012_dir(str(src), summary=summary)
        assert not summary.problems
        for d in docs:
            assert d.text.startswith("\n")  # the CDATA newline is part of the offsets
            write_i2b2_2012_xml(d, str(tmp_path / split / f"{d.id}.xml"))
            for e in d.entities:
                assert d.text[e.start:e.end] == e.text
        assert _files(tmp_path / split, ".xml") == _files(src, ".xml")


def test_conll_samples_round_trip_byte_for_byte(tmp_path):
    for split in ("train", "dev", "test"):
        src = SAMPLES / "conll" / f"{split}.tsv"
        docs = read_conll(str(src))
        write_conll(docs, str(tmp_path / f"{split}.tsv"))
        assert (tmp_path / f"{split}.tsv").read_bytes() == src.read_bytes()
        for d in docs:
            for e in d.entities:
                assert d.text[e.start:e.end] == e.text


# ---------------------------------------------------------------------------------- CoNLL
def test_conll_reader_schemes_docstart_and_columns(tmp_path):
    path = _write(tmp_path / "x.conll", "-DOCSTART- -X- O O\n\n"
                  "Aspirin\tNN\tB-Drug\nfor\tIN\tO\nchest\tNN\tB-Problem\npain\tNN\tI-Problem\n\n"
                  "heart  S-Problem\nvery  B-Problem\nbad  E-Problem\n\n"
                  "a\tI-X\nb\tI-X\nc\tO\n")
    summary = ReadSummary()
    docs = read_conll(path, doc_id_prefix="p", summary=summary)
    assert [d.id for d in docs] == ["p-000000", "p-000001", "p-000002"]
    assert docs[0].text == "Aspirin for chest pain"
    assert [(e.type, e.spans, e.text) for e in docs[0].entities] == [
        ("Drug", ((0, 7),), "Aspirin"), ("Problem", ((12, 22),), "chest pain")]
    assert [(e.type, e.text) for e in docs[1].entities] == [("Problem", "heart"), ("Problem", "very bad")]
    assert [(e.type, e.text) for e in docs[2].entities] == [("X", "a b")]  # I- start repaired
    assert summary.problems["invalid tag sequence repaired"] == 1
    assert summary.documents == 3 and summary.entities == 5


def test_decode_tags_bioes_repairs():
    assert decode_tags(["B-A", "E-A", "S-B", "I-A", "E-A", "O"]) == ([("A", 0, 2), ("B", 2, 3), ("A", 3, 5)], 1)
    assert decode_tags(["B-A", "I-A", "I-B"]) == ([("A", 0, 2), ("B", 2, 3)], 1)


def test_conll_bad_tag_and_missing_column(tmp_path):
    path = _write(tmp_path / "bad.tsv", f"{SECRET.split()[0]}\tO\n{SECRET.split()[1]}\tX-Thing\n")
    with pytest.raises(InputError, match=r"bad\.tsv:2: invalid tag 'X-Thing'") as ei:
        read_conll(path)
    assert "Secretname" not in str(ei.value)
    path = _write(tmp_path / "bad2.tsv", "ok\tO\nlonely\n")
    with pytest.raises(InputError, match=r"bad2\.tsv:2: expected 'token<TAB>tag'"):
        read_conll(path)


def test_write_conll_overlaps_and_given_tokens(tmp_path, caplog):
    doc = Document("d", "acute chest pain today", [
        Entity("T1", "Problem", ((6, 16),)), Entity("T2", "Symptom", ((12, 16),)),
        Entity("T3", "Time", ((17, 22),))])
    with caplog.at_level(logging.WARNING):
        write_conll([doc], str(tmp_path / "o.tsv"))
    assert (tmp_path / "o.tsv").read_text() == "acute\tO\nchest\tB-Problem\npain\tI-Problem\ntoday\tB-Time\n\n"
    assert "1 overlapping" in caplog.text
    write_conll([doc], str(tmp_path / "t.tsv"), tokens_per_doc=[[(0, 5), (6, 11), (12, 16), (17, 20), (20, 22)]])
    assert (tmp_path / "t.tsv").read_text().splitlines()[3:] == ["tod\tB-Time", "ay\tI-Time", ""]


# ---------------------------------------------------------------------------------- brat
def test_brat_discontinuous_relations_overlaps_and_skipped_lines(tmp_path):
    text = "Lasix 40 mg\nIV once for rash.\n"
    ann = ("T1\tDrug 0 5\tLasix\nT2\tDosage 6 11;15 19\t40 mg once\nT3\tReason 24 28\trash\n"
           "T4\tADE 24 28\trash\nR1\tDosage-Drug Arg1:T2 Arg2:T1\t\nA1\tNegated T3\n#1\tAnnotatorNotes T1\tx\n"
           "N1\tReference T3 MeSH:D005076\trash\n*\tEquiv T3 T4\n\n")
    txt = _write(tmp_path / "n.txt", text)
    ann_path = _write(tmp_path / "n.ann", ann)
    summary = ReadSummary()
    doc = read_brat(txt, ann_path, summary=summary)
    assert doc.id == "n"
    assert [(e.id, e.type, e.spans) for e in doc.entities] == [
        ("T1", "Drug", ((0, 5),)), ("T2", "Dosage", ((6, 11), (15, 19))), ("T3", "Reason", ((24, 28),)),
        ("T4", "ADE", ((24, 28),))]
    assert doc.relations == [Relation("R1", "Dosage-Drug", "T2", "T1")]
    assert summary.skipped == {"A line": 1, "# line": 1, "N line": 1, "* line": 1}
    write_brat(doc, str(tmp_path / "out.ann"))
    assert (tmp_path / "out.ann").read_text() == (
        "T1\tDrug 0 5\tLasix\nT2\tDosage 6 11;15 19\t40 mg once\nT3\tReason 24 28\trash\n"
        "T4\tADE 24 28\trash\nR1\tDosage-Drug Arg1:T2 Arg2:T1\n")


def test_brat_span_across_newline_and_crlf(tmp_path):
    txt = _write(tmp_path / "c.txt", "chest\r\npain here\n")
    ann = _write(tmp_path / "c.ann", "T1\tProblem 0 11\tchest  pain\r\n")
    doc = read_brat(txt, ann)
    assert doc.text[0:11] == "chest\r\npain"
    write_brat(doc, str(tmp_path / "o.ann"))
    assert (tmp_path / "o.ann").read_text() == "T1\tProblem 0 11\tchest  pain\n"


@pytest.mark.parametrize("line, needle", [
    ("T1\tDrug 10 1x\t" + SECRET, r"malformed offsets in 'T1': '10 1x'"),
    ("T1\tDrug10\t" + SECRET, r"malformed T line 'T1'"),
    ("T1 Drug 0 5 " + SECRET, r"malformed T line"),
    ("R1\tReason-Drug Arg1:T1", r"malformed R line"),
    ("X1\tDrug 0 5\t" + SECRET, r"unknown annotation line type 'X1'"),
])
def test_brat_malformed_line_names_file_line_and_bad_part(tmp_path, line, needle):
    txt = _write(tmp_path / "m.txt", SECRET + " is the note text\n")
    ann = _write(tmp_path / "m.ann", "T9\tDrug 0 5\tZyxwv\n" + line + "\n")
    with pytest.raises(InputError) as ei:
        read_brat(txt, ann)
    msg = str(ei.value)
    assert f"{ann}:2:" in msg and needle.replace("\\", "") in msg
    assert "Secretname" not in msg and "note text" not in msg


def test_brat_mismatch_strict_raises_lenient_counts(tmp_path, caplog):
    d = tmp_path / "dir"
    _write(d / "a.txt", SECRET + " took aspirin\n")
    _write(d / "a.ann", "T1\tDrug 22 29\taspirin\nT2\tDrug 0 5\tWrong\nT3\tDrug 0 500\tx\n"
                        "R1\tX Arg1:T2 Arg2:T1\n")
    _write(d / "raw.txt", "no annotations\n")
    with pytest.raises(InputError) as ei:
        read_brat_dir(str(d))
    assert f"{d / 'a.ann'}:2: T2 (Drug 0 5): annotation text does not match" in str(ei.value)
    assert "Zyxwv" not in str(ei.value) and "Wrong" not in str(ei.value)
    summary = ReadSummary()
    with caplog.at_level(logging.WARNING):
        docs = read_brat_dir(str(d), strict=False, summary=summary)
    assert [e.id for e in docs[0].entities] == ["T1"] and docs[0].relations == []
    assert summary.problems == {
        "annotation text does not match the note text at its offsets (dropped)": 1,
        "offsets outside the text (dropped)": 1, "relation to a dropped entity (dropped)": 1}
    assert summary.skipped[".txt without .ann"] == 1
    assert "a.ann:2" in caplog.text and "Zyxwv" not in caplog.text


def test_write_brat_renumbers_foreign_ids(tmp_path):
    doc = Document("x", "pain after morphine", [Entity("E0", "PROBLEM", ((0, 4),)),
                                                Entity("T7", "DRUG", ((11, 19),))],
                   [Relation("TL0", "AFTER", "E0", "T7")])
    write_brat(doc, str(tmp_path / "x.ann"))
    assert (tmp_path / "x.ann").read_text() == (
        "T1\tPROBLEM 0 4\tpain\nT7\tDRUG 11 19\tmorphine\nR1\tAFTER Arg1:T1 Arg2:T7\n")


# ---------------------------------------------------------------------------------- i2b2 2010
def test_i2b2_2010_layouts_quotes_and_case(tmp_path):
    root = tmp_path / "rel"
    _write(root / "beth" / "txt" / "n1.txt", 'Pt has "bad" CHF .\r\nStarted lasix 40 mg\n')
    _write(root / "beth" / "concept" / "n1.con",
           'c=""bad" chf" 1:2 1:3||t="problem"\nc="lasix 40" 2:1 2:2||t="treatment"\n')
    _write(root / "side" / "n2.txt", "a b\n")
    _write(root / "side" / "n2.con", 'c="b" 1:1 1:1||t="test"\n')
    _write(root / "side" / "n3.txt", "unannotated\n")
    summary = ReadSummary()
    docs = {d.id: d for d in read_i2b2_2010_dir(str(root), summary=summary)}
    assert set(docs) == {"n1", "n2"} and summary.skipped[".txt without .con"] == 1
    n1 = docs["n1"]
    assert [(e.type, n1.text[e.start:e.end], e.text) for e in n1.entities] == [
        ("problem", '"bad" CHF', '"bad" chf'), ("treatment", "lasix 40", "lasix 40")]
    out = tmp_path / "n1.con"
    write_i2b2_2010_con(n1, str(out))
    assert out.read_text() == (root / "beth" / "concept" / "n1.con").read_text()
    # predictions without text, starting mid-token: covering tokens, lowercased
    pred = Document("n1", n1.text, [Entity("e0", "problem", ((9, 16),))])
    write_i2b2_2010_con(pred, str(out))
    assert out.read_text() == 'c=""bad" chf" 1:2 1:3||t="problem"\n'


@pytest.mark.parametrize("line, needle", [
    (f'c="{SECRET}" 1:a 1:1||t="problem"', 'malformed offsets/type after the concept text: \'1:a 1:1||t="problem"\''),
    (f'c="{SECRET}" 1:0 1:1|t="problem"', "malformed offsets/type"),
    (f'{SECRET} 1:0 1:1||t="problem"', 'line does not start with c="..."'),
])
def test_i2b2_2010_malformed_line(tmp_path, line, needle):
    _write(tmp_path / "d" / "n.txt", SECRET + " here\n")
    con = _write(tmp_path / "d" / "n.con", 'c="here" 1:2 1:2||t="test"\n' + line + "\n")
    with pytest.raises(InputError) as ei:
        read_i2b2_2010_dir(str(tmp_path / "d"))
    msg = str(ei.value)
    assert f"{con}:2:" in msg and needle in msg and "Secretname" not in msg


def test_i2b2_2010_mismatch_strict_and_lenient(tmp_path):
    _write(tmp_path / "d" / "n.txt", SECRET + " here\n")
    con = _write(tmp_path / "d" / "n.con", 'c="here" 1:2 1:2||t="test"\nc="other" 1:0 1:0||t="problem"\n'
                                           'c="x" 3:0 3:0||t="problem"\nc="here" 1:5 1:5||t="test"\n')
    with pytest.raises(InputError, match=f"{con}:2: concept 1:0 1:0 \\(problem\\): concept text does not match"):
        read_i2b2_2010_dir(str(tmp_path / "d"))
    summary = ReadSummary()
    docs = read_i2b2_2010_dir(str(tmp_path / "d"), strict=False, summary=summary)
    assert len(docs[0].entities) == 1
    assert sum(summary.problems.values()) == 3


# ---------------------------------------------------------------------------------- i2b2 2012
XML_2012 = """<?xml version="1.0" encoding="UTF-8" ?>
<ClinicalNarrativeTemporalAnnotation>
<TEXT><![CDATA[
Admission Date :
2093-12-19
Seen for M&M "chest pain" .
]]></TEXT>
<TAGS>
<EVENT id="E0" start="1" end="10" text="Admission" modality="FACTUAL" polarity="POS" type="OCCURRENCE" />
<TIMEX3 id="T0" start="18" end="28" text="2093-12-19" type="DATE" val="2093-12-19" mod="NA" />
<EVENT id="E1" start="39" end="42" text="M&M" modality="FACTUAL" polarity="POS" type="PROBLEM" />
<EVENT id="E2" start="42" end="54" text=""chest pain"" modality="FACTUAL" polarity="POS" type="PROBLEM" />
<EVENT id="E3" start="28" end="32" text="Seen" modality="FACTUAL" polarity="POS" type="OCCURRENCE" />
<TLINK id="TL0" fromID="E0" fromText="Admission" toID="T0" toText="2093-12-19" type="SIMULTANEOUS" />
<TLINK id="TL1" fromID="E0" fromText="Admission" toID="S0" toText="2093-12-19" type="SIMULTANEOUS" />
<SECTIME id="S0" start="18" end="28" text="2093-12-19" type="ADMISSION" dvalue="2093-12-19" />
</TAGS>
</ClinicalNarrativeTemporalAnnotation>
"""


def test_i2b2_2012_reader_tolerates_release_quirks(tmp_path):
    _write(tmp_path / "x" / "1.xml", XML_2012)
    summary = ReadSummary()
    (doc,) = read_i2b2_2012_dir(str(tmp_path / "x"), summary=summary)
    assert doc.id == "1"
    got = {e.id: (e.type, doc.text[e.start:e.end]) for e in doc.entities}
    assert got == {"E0": ("OCCURRENCE", "Admission"), "T0": ("DATE", "2093-12-19"), "E1": ("PROBLEM", "M&M"),
                   "E2": ("PROBLEM", '"chest pain"'), "E3": ("OCCURRENCE", "Seen")}
    # E1 and E3 were one character off in the file: repaired and counted
    assert summary.problems == {"offsets shifted by +1 (repaired)": 1, "offsets shifted by -1 (repaired)": 1}
    assert doc.relations == [Relation("TL0", "SIMULTANEOUS", "E0", "T0")]
    assert summary.skipped["SECTIME tag"] == 1 and summary.skipped["TLINK to a SECTIME or dropped tag"] == 1
    write_i2b2_2012_xml(doc, str(tmp_path / "o" / "o.xml"))
    out = (tmp_path / "o" / "o.xml").read_text()
    assert 'text="M&amp;M"' in out and 'text="&quot;chest pain&quot;"' in out
    assert '<TEXT><![CDATA[\nAdmission Date :' in out
    (again,) = read_i2b2_2012_dir(str(tmp_path / "o"))
    assert [(e.id, e.type, e.spans) for e in again.entities] == [(e.id, e.type, e.spans) for e in doc.entities]


def test_i2b2_2012_mismatch_and_bad_offsets(tmp_path):
    bad = XML_2012.replace('start="28" end="32"', 'start="3" end="7"')
    path = _write(tmp_path / "x" / "1.xml", bad)
    with pytest.raises(InputError, match=f"{path}:13: <EVENT id='E3' start=3 end=7>: text attribute does not match"):
        read_i2b2_2012_dir(str(tmp_path / "x"))
    summary = ReadSummary()
    (doc,) = read_i2b2_2012_dir(str(tmp_path / "x"), strict=False, summary=summary)
    assert "E3" not in {e.id for e in doc.entities}
    assert summary.problems["text attribute does not match the note text at its offsets (dropped)"] == 1
    _write(tmp_path / "y" / "2.xml", XML_2012.replace('start="18"', 'start="1x"', 1))
    with pytest.raises(InputError, match=r"2\.xml:10: <TIMEX3 id='T0'> has non-integer offsets"):
        read_i2b2_2012_dir(str(tmp_path / "y"))


def test_i2b2_2012_writer_from_other_formats(tmp_path):
    doc = Document("d", "\nfever for 3 days", [Entity("T1", "PROBLEM", ((1, 6),)), Entity("T2", "DURATION", ((11, 17),))],
                   [Relation("R1", "OVERLAP", "T1", "T2")])
    write_i2b2_2012_xml(doc, str(tmp_path / "d.xml"))
    text = (tmp_path / "d.xml").read_text()
    assert '<EVENT id="E1" start="1" end="6" text="fever"' in text
    assert '<TIMEX3 id="T2" start="11" end="17" text="3 days" type="DURATION"' in text
    assert '<TLINK id="TL1" fromID="E1" fromText="fever" toID="T2"' in text
    with pytest.raises(InputError, match="CDATA"):
        write_i2b2_2012_xml(Document("z", "a]]>b"), str(tmp_path / "z.xml"))


# ---------------------------------------------------------------------------------- shared data
def test_shared_format_samples(shared_data, tmp_path):
    fs = shared_data / "format_samples"
    if not fs.is_dir():
        pytest.skip("format_samples not present")
    docs = {d.id: d for d in read_i2b2_2010_dir(str(fs / "i2b2_2010_concept"))}
    assert set(docs) == {"ex_doc", "single"}
    for d in docs.values():
        write_i2b2_2010_con(d, str(tmp_path / f"{d.id}.con"))
        assert (tmp_path / f"{d.id}.con").read_bytes() == (fs / "i2b2_2010_concept" / f"{d.id}.con").read_bytes()
    summary = ReadSummary()
    (doc,) = read_brat_dir(str(fs / "n2c2_2018_brat"), summary=summary)
    types = {e.type for e in doc.entities}
    assert {"Drug", "Strength", "Route", "Frequency", "Reason", "ADE", "Dosage"} <= types
    assert any(len(e.spans) > 1 for e in doc.entities)
    assert summary.relations == len(doc.relations) > 0
    write_brat(doc, str(tmp_path / "n.ann"))
    assert (tmp_path / "n.ann").read_bytes() == (fs / "n2c2_2018_brat" / "100-synthetic.ann").read_bytes()


def test_shared_ncbi_standoff_and_iob(shared_data):
    standoff = shared_data / "NCBI-disease-standoff" / "standoff" / "devel"
    iob = shared_data / "NCBI-disease-IOB" / "devel.tsv"
    if not standoff.is_dir() or not iob.is_file():
        pytest.skip("NCBI-disease not present")
    summary = ReadSummary()
    docs = read_brat_dir(str(standoff), summary=summary)
    assert summary.documents == len(docs) == 100 and summary.entities == 787
    assert summary.skipped["N line"] > 0 and not summary.problems
    sents = read_conll(str(iob))
    assert len(sents) == 923 and sum(len(d.entities) for d in sents) == 787
