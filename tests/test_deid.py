"""De-identification: masks, consistent surrogates (per note and per patient), leakage audit."""

import datetime as dt
import json
import pathlib
import re

from hypothesis import given, settings, strategies as st

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.inference import deid, surrogates

TEXT = ("Patient John Smith (MRN 123-45-678) seen 03/14/2019 by Dr. Jones at Mercy Hospital, Boston. "
        "Follow-up 04/01/2019. Call 352-555-0199. Smith is 93 years old. Seen on Foo 99th.")


def _ents(text=TEXT):
    spans = [("PATIENT", "John Smith"), ("MEDICALRECORD", "123-45-678"), ("DATE", "03/14/2019"),
             ("DOCTOR", "Jones"), ("HOSPITAL", "Mercy Hospital"), ("CITY", "Boston"), ("DATE", "04/01/2019"),
             ("PHONE", "352-555-0199"), ("PATIENT", "Smith is"), ("AGE", "93"), ("DATE", "Foo 99th")]
    out = []
    for i, (t, s) in enumerate(spans):
        if s == "Smith is":
            start, s = text.index("Smith is"), "Smith"
        else:
            start = text.index(s)
        out.append(Entity(f"T{i}", t, ((start, start + len(s)),), s))
    return out


def test_hipaa_table_covers_the_i2b2_2014_types():
    mapped = {t for types in deid.HIPAA_TO_I2B2_2014.values() for t in types}
    assert len(deid.HIPAA_TO_I2B2_2014) == 18
    assert mapped | set(deid.NON_HIPAA_I2B2_2014) <= set(deid.I2B2_2014_TYPES)
    assert deid.mask_category("DOCTOR") == "NAME" and deid.mask_category("weird type") == "WEIRD_TYPE"


def test_mask_mode_replaces_every_span_and_annotates_the_result():
    r = deid.deidentify(Document("n1", TEXT), _ents(), "mask")
    for e in _ents():
        assert e.text not in r.text
    assert "[NAME] (MRN [ID]) seen [DATE] by Dr. [NAME] at [LOCATION], [LOCATION]." in r.text
    for e in r.removed:
        (s, t), = e.spans
        assert r.text[s:t] == e.text == f"[{deid.mask_category(e.type)}]"


def test_surrogates_shift_dates_consistently_and_never_leak():
    doc, ents = Document("n1", TEXT), _ents()
    r = deid.deidentify(doc, ents, "surrogate", seed=7)
    for e in ents:
        if e.type != "AGE":
            assert e.text not in r.text, e.type
    got = [dt.datetime.strptime(d, "%m/%d/%Y").date() for d in re.findall(r"\d{2}/\d{2}/\d{4}", r.text)]
    assert len(got) == 2 and (got[1] - got[0]).days == 18  # interval preserved
    assert (got[0] - dt.date(2019, 3, 14)).days == r.date_shift_days != 0
    assert "90+" in r.text  # ages over 89 aggregated
    assert "[DATE]" in r.text and r.masked_fallbacks == 1  # unparseable date → mask, not original
    # "John Smith" and the later "Smith" are the same surrogate person.
    full = r.removed[0].text
    assert r.text.count(full.split()[-1]) >= 2
    assert deid.deidentify(doc, ents, "surrogate", seed=7).text == r.text  # deterministic
    shifts = {surrogates.SurrogateGenerator(7, f"n{i}").date_shift_days for i in range(5)}
    assert len(shifts) > 1 and 0 not in shifts
    for e in r.removed:
        (s, t), = e.spans
        assert r.text[s:t] == e.text
    recs = r.replacements()
    assert [x["how"] for x in recs].count("mask") == 1
    assert all("John" not in json.dumps(x) for x in recs)


def test_patient_level_consistency_across_notes():
    a = Document("110-01", "Seen: John Smith on 01/02/2093.")
    b = Document("110-02", "John Smith returned 01/09/2093; Smith is well.")
    ea = [Entity("P0", "PATIENT", ((6, 16),)), Entity("P1", "DATE", ((20, 30),))]
    eb = [Entity("P0", "PATIENT", ((0, 10),)), Entity("P1", "DATE", ((20, 30),)), Entity("P2", "PATIENT", ((32, 37),))]
    pids = deid.patient_ids([a, b], patient_id_pattern=r"^(\d+)-")
    assert pids == {"110-01": "110", "110-02": "110"}
    ra = deid.deidentify(a, ea, "surrogate", 3, patient_id=pids[a.id])
    rb = deid.deidentify(b, eb, "surrogate", 3, patient_id=pids[b.id])
    name_a, name_b = ra.removed[0].text, rb.removed[0].text
    assert name_a == name_b and rb.removed[2].text == name_b.split()[-1]
    assert ra.date_shift_days == rb.date_shift_days
    da = dt.datetime.strptime(ra.removed[1].text, "%m/%d/%Y").date()
    db = dt.datetime.strptime(rb.removed[1].text, "%m/%d/%Y").date()
    assert (db - da).days == 7
    # Per note (no patient id): other surrogates, another shift (almost surely).
    rc = deid.deidentify(b, eb, "surrogate", 3)
    assert rc.date_shift_days != rb.date_shift_days or rc.removed[0].text != name_b


def test_patient_map_file(tmp_path):
    m = tmp_path / "map.csv"
    m.write_text("note_id,patient_id\nn1,P9\nn2,P9\n")
    docs = [Document("n1", "x"), Document("n2", "y"), Document("n3", "z")]
    assert deid.patient_ids(docs, str(m)) == {"n1": "P9", "n2": "P9", "n3": "n3"}


def test_shift_date_keeps_each_format():
    cases = {"01/02/2003": "01/03/2003", "1/2/03": "1/3/03", "2003-01-02": "2003-01-03", "Jan 2, 2003": "Jan 3, 2003",
             "January 2nd, 2003": "January 3rd, 2003", "2 Jan 2003": "3 Jan 2003", "JAN 2, 2003": "JAN 3, 2003",
             "12/31": "01/01", "12/31/2019": "01/01/2020", "3/14/19": "3/15/19"}
    for original, want in cases.items():
        assert surrogates.shift_date(original, 1) == want, original
    assert surrogates.shift_date("01/2003", 31) == "02/2003"
    assert surrogates.shift_date("March 14, 2019", 30) == "April 13, 2019"
    assert surrogates.shift_date("02/30/2019", 1) is None and surrogates.shift_date("yesterday", 1) is None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["PATIENT", "DOCTOR", "DATE", "AGE", "PHONE", "MEDICALRECORD", "CITY", "HOSPITAL", "ZIP",
                        "STATE", "USERNAME", "EMAIL", "IDNUM", "PROFESSION", "UNKNOWN"]),
       st.text(alphabet="abcXYZ0123456789 /-.,", min_size=1, max_size=12), st.integers(0, 3))
def test_a_surrogate_is_never_the_original(phi_type, original, seed):
    r = surrogates.SurrogateGenerator(seed, "p").replace(phi_type, original)
    assert r.how in ("surrogate", "mask", "kept")
    if r.how == "surrogate":
        assert r.text.strip().lower() != original.strip().lower()
    if r.how == "kept":
        assert phi_type == "AGE" and int(original) <= 89


def test_leakage_report_finds_surviving_characters():
    gold = Document("n1", TEXT, _ents())
    # The model found only some PHI: "John" (not "Smith"), the MRN, one date.
    pred = [Entity("a", "PATIENT", ((8, 12),)), _ents()[1], _ents()[2], Entity("b", "AGE", ((TEXT.index("93"), TEXT.index("93") + 2),))]
    r = deid.deidentify(gold, pred, "surrogate", seed=1)
    rep = deid.leakage_report(gold, r)
    leaked = {(x["type"], x["start"]) for x in rep["leaked"]}
    assert ("PATIENT", 8) in leaked and ("MEDICALRECORD", TEXT.index("123")) not in leaked
    assert len(rep["leaked"]) == len(gold.entities) - 3  # MRN, first date, AGE 93 (-> 90+) fully replaced
    for x in rep["leaked"]:
        assert "text" not in x
        for o, p in x["output_spans"]:  # output offsets point at the surviving characters
            assert r.text[o:p] and r.text[o:p] in gold.text[x["start"]:x["end"]]
    john = next(x for x in rep["leaked"] if x["start"] == 8)
    assert not john["whole"] and john["surviving_chars"] == 6
    assert [r.text[o:p] for o, p in john["output_spans"]] == [" Smith"]
    assert all(x["whole"] for x in rep["leaked"] if x["start"] != 8)
    assert deid.leakage_report(gold, r, show_text=True)["leaked"][0]["text"]
    # Ages up to 89 are kept on purpose and reported apart.
    young = Document("n2", "She is 45.", [Entity("g", "AGE", ((7, 9),))])
    ry = deid.deidentify(young, young.entities, "surrogate", seed=1)
    ly = deid.leakage_report(young, ry)
    assert ry.text == young.text and not ly["leaked"] and len(ly["kept_by_policy"]) == 1


def test_write_deid(tmp_path):
    from gatortron_jax.annotations.formats.brat import read_brat_dir
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    gold = Document("sub/n1", TEXT, _ents())
    r = deid.deidentify(gold, _ents(), "mask")
    summary = deid.write_deid([r], str(tmp_path / "b"), "mask", leakage=[deid.leakage_report(gold, r)])
    assert summary["removed_by_type"]["DATE"] == 3 and summary["leakage"]["leaked"] == 0
    docs = read_brat_dir(str(tmp_path / "b"))
    assert docs[0].text == r.text and len(docs[0].entities) == len(r.removed)
    line = json.loads((tmp_path / "b/replacements.jsonl").read_text())
    assert line["id"] == "sub/n1" and len(line["replacements"]) == len(r.removed)
    assert "Smith" not in (tmp_path / "b/replacements.jsonl").read_text()
    deid.write_deid([r], str(tmp_path / "x"), "mask", fmt="i2b2_2014")
    xml = read_i2b2_2014_dir(str(tmp_path / "x"), strict=True)
    assert xml[0].text == r.text and [e.type for e in xml[0].entities] == [e.type for e in r.removed]


def test_note_table_jsonl(tmp_path, caplog):
    import pytest

    from gatortron_jax.core.errors import InputError

    table = tmp_path / "notes.jsonl"
    table.write_text('{"id": "a1", "pid": "P7", "text": "John Smith seen 01/02/2093."}\n'
                     "not json\n"
                     '{"id": "a2", "pid": "P7", "text": "Smith again 01/09/2093."}\n', encoding="utf-8")
    docs, gold, patients = deid.read_deid_input(str(table), patient_id_field="pid")
    assert [d.id for d in docs] == ["a1", "a2"] and not gold and patients == {"a1": "P7", "a2": "P7"}
    assert f"{table}:2: not a JSON object" in caplog.text
    pids = deid.patient_ids(docs, known=patients)
    ea = [Entity("x", "PATIENT", ((0, 10),)), Entity("y", "DATE", ((16, 26),))]
    eb = [Entity("x", "PATIENT", ((0, 5),)), Entity("y", "DATE", ((12, 22),))]
    rs = [deid.deidentify(d, e, "surrogate", 1, patient_id=pids[d.id]) for d, e in zip(docs, (ea, eb))]
    assert rs[0].removed[0].text.split()[-1] == rs[1].removed[0].text  # same patient, same surrogate
    deid.write_deid(rs, str(tmp_path / "out"), "surrogate", fmt="jsonl")
    rows = [json.loads(l) for l in (tmp_path / "out/deidentified.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a1", "a2"] and "Smith" not in json.dumps(rows)
    with pytest.raises(InputError, match=r"notes\.jsonl:2:"):
        deid.read_note_table(str(table), strict=True)
    with pytest.raises(InputError, match="outside"):
        deid.write_deid([deid.deidentify(Document("../evil", "x"), [], "mask")], str(tmp_path / "o2"), "mask")


def test_a_fake_never_coincides_with_other_phi_of_the_note():
    # Every surname in the surrogate pool is a real PHI string of this note: no pick may use one.
    pool = list(surrogates.LAST)
    text = " ".join(pool) + " and Dr. Zed."
    ents, pos = [], 0
    for w in pool:
        ents.append(Entity(w, "PATIENT", ((pos, pos + len(w)),)))
        pos += len(w) + 1
    zed = text.index("Zed")
    ents.append(Entity("z", "DOCTOR", ((zed, zed + 3),)))
    r = deid.deidentify(Document("n", text), ents, "surrogate", seed=2)
    assert r.masked_fallbacks == len(pool) + 1 and not any(w in r.text for w in pool)


def test_brat_input_with_a_note_missing_its_ann_is_refused(tmp_path):
    import pytest

    from gatortron_jax.core.errors import InputError

    (tmp_path / "a.txt").write_text("Seen by Dr. Lee.\n")
    (tmp_path / "a.ann").write_text("T1\tDOCTOR 12 15\tLee\n")
    docs, gold, _ = deid.read_deid_input(str(tmp_path))
    assert gold and docs[0].entities[0].type == "DOCTOR"
    (tmp_path / "b.txt").write_text("Seen by Dr. Kim.\n")
    with pytest.raises(InputError, match="1 .txt note"):
        deid.read_deid_input(str(tmp_path))


def test_first_name_alone_matches_the_full_name():
    text = "Jane Roe was seen. Jane is better; ROE, JANE signed."
    ents = [Entity("a", "PATIENT", ((0, 8),)), Entity("b", "PATIENT", ((19, 23),)),
            Entity("c", "PATIENT", ((35, 44),))]
    r = deid.deidentify(Document("n", text), ents, "surrogate", seed=4)
    first, last = r.removed[0].text.split()
    assert r.removed[1].text == first and r.removed[2].text == f"{last.upper()}, {first.upper()}"


def _gold_phi(notes_dir):
    from gatortron_jax.annotations.formats.brat import read_brat_dir

    docs = read_brat_dir(str(notes_dir))
    return docs, {d.id: {d.text[s:t] for e in d.entities for s, t in e.spans if d.text[s:t].strip()} for d in docs}


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tag_everything_model(repo_root, tmp_path_factory):
    """A tiny random tagger with its ``O`` logit pushed down: it tags every token."""
    import sys

    sys.path.insert(0, str(repo_root / "tests"))
    from test_predict_stream import make_model_dir

    return make_model_dir(tmp_path_factory.mktemp("deid") / "m", repo_root, o_bias=-8.0)


def test_deid_mask_leaves_none_of_the_gold_phi(repo_root, tmp_path, tag_everything_model):
    """The real CLI on the synthetic de-id sample: no gold PHI string survives in any output.

    The tagger is tiny and random with its ``O`` logit pushed down, so it tags every token:
    what this checks is that windowing, merging and offset mapping leave no character of a
    tagged span behind (a gap would leak PHI), not the model's recall.
    """
    from gatortron_jax.cli import main as cli

    model = tag_everything_model
    notes = repo_root / "data/ner_samples/brat_deid/test"
    docs, gold = _gold_phi(notes)
    assert sum(map(len, gold.values())) > 10
    out = tmp_path / "out"
    assert cli.main(["deid", "--checkpoint", str(model), "--input", str(notes), "--output", str(out),
                     "--mode", "mask"]) == 0
    for d in docs:
        redacted = (out / f"{d.id}.txt").read_text(encoding="utf-8")
        leaked = [p for p in gold[d.id] if p in redacted]
        assert not leaked, (d.id, len(leaked))


def test_streaming_entry_point_for_deid(repo_root, tmp_path, tag_everything_model):
    """``stream.run_stream`` with a de-id ``ChunkWriter``: how deid streams, resumes and shards."""
    from gatortron_jax.inference import stream
    from gatortron_jax.inference.note_sources import NoteSource

    from gatortron_jax.annotations.formats.brat import write_brat

    class DeidWriter:  # per-note files only (a per-chunk deid_summary.json is refused by the driver)
        def write(self, results, staging_dir, notes=()):
            for doc, _ in results:
                r = deid.deidentify(doc, doc.entities, "mask")
                (pathlib.Path(staging_dir) / f"{r.doc_id}.txt").write_text(r.text, encoding="utf-8")
                write_brat(Document(r.doc_id, r.text, r.removed), str(pathlib.Path(staging_dir) / f"{r.doc_id}.ann"))

    model = tag_everything_model
    notes = repo_root / "data/ner_samples/brat_deid/test"
    docs, gold = _gold_phi(notes)
    tagger = stream.ScoringTagger(str(model), batch_size=8)
    out = tmp_path / "out"
    s = stream.run_stream(tagger, NoteSource(str(notes)), stream.StreamOptions(str(out), chunk_notes=2), DeidWriter())
    assert s["notes_predicted"] == len(docs) and s["notes_failed"] == 0
    for d in docs:
        redacted = (out / f"{d.id}.txt").read_text(encoding="utf-8")
        assert not [p for p in gold[d.id] if p in redacted]
    again = stream.run_stream(tagger, NoteSource(str(notes)), stream.StreamOptions(str(out), chunk_notes=2),
                              DeidWriter())
    assert again["chunks_resumed"] == s["chunks"] and again["chunks_predicted"] == 0
