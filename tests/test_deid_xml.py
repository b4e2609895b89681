"""i2b2 2014 / 2006 de-id XML: byte-for-byte round trips, repaired offsets, ill-formed input, tasks."""

import pathlib
import re
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.annotations.formats import i2b2_deid as x
from gatortron_jax.core.errors import InputError

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "deid_samples"


def test_shipped_samples_are_the_generator_output_and_round_trip_byte_for_byte(tmp_path):
    from gatortron_jax.sample_data.deid import write_samples

    write_samples(str(tmp_path))
    shipped = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*.xml"))
    assert shipped == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.xml")) and len(shipped) == 39
    for rel in shipped:
        assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
    for p in sorted((SAMPLES / "i2b2_2014").rglob("*.xml")):
        doc = x.read_i2b2_2014(str(p), strict=True)
        assert x.format_i2b2_2014_xml(doc).encode() == p.read_bytes()
        assert all(doc.text[e.start:e.end] == e.text for e in doc.entities)
    for p in sorted((SAMPLES / "i2b2_2006").glob("*.xml")):
        assert x.format_i2b2_2006_xml(x.read_i2b2_2006(str(p), strict=True)).encode() == p.read_bytes()


def test_samples_carry_what_deid_must_handle():
    docs = x.read_i2b2_2014_dir(str(SAMPLES / "i2b2_2014" / "train"), strict=True)
    cats = {x.category_of(e.type) for d in docs for e in d.entities}
    assert cats == set(x.CATEGORY_TYPES)
    ages = [int(e.text) for d in docs for e in d.entities if e.type == "AGE"]
    assert any(a > 89 for a in ages) and any(a <= 89 for a in ages)
    for d in docs:  # the patient's full name recurs within each note
        names = [e.text for e in d.entities if e.type == "PATIENT"]
        assert len(names) > len(set(names))
    dates = {e.text for d in docs for e in d.entities if e.type == "DATE"}
    shapes = {re.sub(r"[A-Za-z]+", "A", re.sub(r"\d", "9", t)) for t in dates}
    assert len(shapes) >= 8
    assert any("&" in e.text for d in docs for e in d.entities)


def _sample_2014() -> tuple[pathlib.Path, str]:
    p = SAMPLES / "i2b2_2014" / "train" / "100-01.xml"
    return p, p.read_text(encoding="utf-8")


def _retag(raw: str, tag_id: str, delta: int) -> str:
    def fix(m):
        return f'id="{tag_id}" start="{int(m.group(1)) + delta}" end="{int(m.group(2)) + delta}"'
    return re.sub(rf'id="{tag_id}" start="(\d+)" end="(\d+)"', fix, raw)


def test_shifted_offsets_are_repaired_counted_and_round_trip(tmp_path):
    p, raw = _sample_2014()
    bad = tmp_path / "100-01.xml"
    bad.write_text(_retag(_retag(raw, "P1", 1), "P4", -7), encoding="utf-8")
    summary = ReadSummary()
    doc = x.read_i2b2_2014(str(bad), strict=True, summary=summary)
    assert sum(v for k, v in summary.problems.items() if "repaired" in k) == 2
    assert x.format_i2b2_2014_xml(doc).encode() == p.read_bytes()  # repaired back to the original


def test_unrepairable_span_is_dropped_and_counted_or_an_error_naming_file_and_line(tmp_path, caplog):
    _, raw = _sample_2014()
    bad = tmp_path / "bad.xml"
    bad.write_text(_retag(raw, "P2", 300), encoding="utf-8")
    line = next(i for i, l in enumerate(bad.read_text().split("\n"), 1) if 'id="P2"' in l)
    with pytest.raises(InputError, match=rf"{re.escape(str(bad))}:{line}: .*P2"):
        x.read_i2b2_2014(str(bad), strict=True)
    summary = ReadSummary()
    doc = x.read_i2b2_2014(str(bad), strict=False, summary=summary)
    assert "P2" not in {e.id for e in doc.entities} and sum(summary.problems.values()) == 1
    assert f"{bad}:{line}" in caplog.text and "99219471" not in caplog.text  # no PHI in the warning


def test_ill_formed_xml_is_tolerated(tmp_path):
    text = '\nMr. O\'Neil said "hi" & left on 01/02/2093.\n'
    raw = ('<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n<TEXT><![CDATA[' + text + "]]></TEXT>\n<TAGS>\n"
           '<NAME id="P0" start="5" end="11" text="O\'Neil" TYPE="PATIENT" comment="" />\n'
           '<OTHERTHING id="Q" />\n'
           '<DATE id="P1" start="32" end="42" text="01/02/2093" TYPE="DATE" comment=""/>\n'
           '<NAME id="P2" start="18" end="20" text=""hi"" TYPE="PATIENT" comment="" />\n'
           '<DATE id="P3" start="abc" end="5" text="x" TYPE="DATE" comment="" />\n'
           "</TAGS>\n</deIdi2b2>\n")
    p = tmp_path / "t.xml"
    p.write_text(raw)
    summary = ReadSummary()
    doc = x.read_i2b2_2014(str(p), strict=False, summary=summary)
    assert [(e.type, e.text) for e in doc.entities] == [("PATIENT", "O'Neil"), ("DATE", "01/02/2093"),
                                                        ("PATIENT", '"hi"')]  # quotes inside text=
    assert summary.skipped == {"<OTHERTHING> tag": 1} and sum(summary.problems.values()) == 2  # P2 shift, P3
    with pytest.raises(InputError, match=r"t\.xml:11: non-integer offsets"):
        x.read_i2b2_2014(str(p), strict=True)
    cat = x.read_i2b2_2014(str(p), strict=False, label="category")
    assert [e.type for e in cat.entities] == ["NAME", "DATE", "NAME"]
    # A category-labelled document writes TYPE = the category; the output reads back.
    out = tmp_path / "o.xml"
    x.write_i2b2_2014_xml(cat, str(out))
    back = x.read_i2b2_2014(str(out), strict=True, label="category")
    assert back.text == text and [(e.type, e.spans) for e in back.entities] == [(e.type, e.spans) for e in cat.entities]


def test_2006_inline_round_trip_and_ill_formed_records(tmp_path):
    text = "\nDr. Smith & Co <b> saw Ann on 3/4.\n"
    at = {w: (text.index(w), text.index(w) + len(w)) for w in ("Smith", "Ann", "3/4")}
    docs = [Document("7", text, [Entity("a", "DOCTOR", (at["Smith"],)), Entity("b", "PATIENT", (at["Ann"],)),
                                 Entity("c", "DATE", (at["3/4"],))])]
    raw = x.format_i2b2_2006_xml(docs)
    assert "&amp; Co &lt;b&gt;" in raw and '<PHI TYPE="DOCTOR">Smith</PHI>' in raw
    p = tmp_path / "a.xml"
    p.write_text(raw)
    back = x.read_i2b2_2006(str(p), strict=True)
    assert back[0].text == docs[0].text and [e.text for e in back[0].entities] == ["Smith", "Ann", "3/4"]
    assert x.format_i2b2_2006_xml(back) == raw
    bad = tmp_path / "bad.xml"
    bad.write_text('<ROOT>\n<RECORD ID="1">\n<TEXT>\nSeen by <PHI TYPE="DOCTOR">Lee and\n</PHI> x </PHI>\n'
                   'then <PHI TYPE="DATE">never closed\n</TEXT>\n</RECORD>\n</ROOT>\n')
    summary = ReadSummary()
    got = x.read_i2b2_2006(str(bad), strict=False, summary=summary)
    assert [e.type for e in got[0].entities] == ["DOCTOR"] and "<PHI" not in got[0].text
    assert summary.problems == {"stray </PHI> (ignored)": 1, "unclosed <PHI> (dropped)": 1}
    with pytest.raises(InputError, match=r"bad\.xml:5: </PHI> without"):
        x.read_i2b2_2006(str(bad), strict=True)


def test_deid_tasks_read_the_xml_as_shipped():
    from gatortron_jax.finetuning import ner_tasks

    task = ner_tasks.get_ner_task("i2b2_2014_deid")
    assert task.deid and task.output_format == "i2b2_2014"
    train = task.documents("train")
    assert len(train) == 24 and {e.type for d in train for e in d.entities} >= {"PATIENT", "DOCTOR", "HOSPITAL"}
    cats = ner_tasks.get_ner_task("i2b2_2014_deid_category").documents("dev")
    assert {e.type for d in cats for e in d.entities} <= set(x.CATEGORY_TYPES)
    old = ner_tasks.get_ner_task("i2b2_2006_deid").documents("test")
    assert len(old) == 3 and {e.type for d in old for e in d.entities} <= set(x.I2B2_2006_TYPES)
    assert not ner_tasks.get_ner_task("i2b2_2010_ner").deid


_JUNK = st.sampled_from(['"', "&", "<", "/>", "\n", "\xff", 'start="-3"', 'end="999999"', "]]>", "</PHI>",
                         '<PHI TYPE="AGE">', "<TAGS>", 'id="P0"', "\r\n", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), _JUNK), max_size=5), st.booleans(), st.booleans())
def test_fuzzed_files_read_or_raise_one_input_error(ops, strict, old):
    """Corrupted 2014 / 2006 files: a Document list, or InputError naming the file — nothing else,
    and every entity that is kept matches its note text."""
    src = SAMPLES / ("i2b2_2006/dev.xml" if old else "i2b2_2014/train/100-01.xml")
    data = src.read_text(encoding="utf-8")
    for pos, junk in ops:
        pos %= len(data) + 1
        data = data[:pos] + junk + data[pos:]
    with tempfile.TemporaryDirectory() as tmp:
        p = pathlib.Path(tmp) / "f.xml"
        p.write_bytes(data.encode("utf-8", "surrogateescape") if "\xff" not in data
                      else data.replace("\xff", "").encode() + b"\xff")
        try:
            docs = x.read_i2b2_2006(str(p), strict=strict) if old else [x.read_i2b2_2014(str(p), strict=strict)]
        except InputError as e:
            assert str(p) in str(e)
            return
        for d in docs:
            for e in d.entities:
                assert 0 <= e.start < e.end <= len(d.text) and d.text[e.start:e.end] == e.text
