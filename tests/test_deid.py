"""De-identification: masks, surrogates with per-note date shift, no PHI left behind."""

import datetime as dt
import pathlib
import re

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.inference import deid

TEXT = ("Patient John Smith (MRN 123-45-678) seen 03/14/2019 by Dr. Jones at Mercy Hospital, Boston. "
        "Follow-up 04/01/2019. Call 352-555-0199. Smith is 93 years old. Seen on Foo 99th.")


def _ents():
    spans = [("PATIENT", "John Smith"), ("MEDICALRECORD", "123-45-678"), ("DATE", "03/14/2019"),
             ("DOCTOR", "Jones"), ("HOSPITAL", "Mercy Hospital"), ("CITY", "Boston"), ("DATE", "04/01/2019"),
             ("PHONE", "352-555-0199"), ("PATIENT", "Smith is"), ("AGE", "93"), ("DATE", "Foo 99th")]
    out, pos = [], 0
    for i, (t, s) in enumerate(spans):
        start = TEXT.index(s, pos if t != "PATIENT" or i == 0 else 0)
        if t == "PATIENT" and i:
            start = TEXT.index("Smith is")
            s = "Smith"
        out.append(Entity(f"T{i}", t, ((start, start + len(s)),), s))
        pos = start
    return out


def test_hipaa_table_covers_the_i2b2_2014_types():
    mapped = {t for types in deid.HIPAA_TO_I2B2_2014.values() for t in types}
    assert len(deid.HIPAA_TO_I2B2_2014) == 18
    assert mapped | set(deid.NON_HIPAA_I2B2_2014) <= set(deid.I2B2_2014_TYPES)
    assert deid.mask_category("DOCTOR") == "NAME" and deid.mask_category("weird type") == "WEIRD_TYPE"


def test_mask_mode_replaces_every_span_and_annotates_the_result():
    doc = Document("n1", TEXT)
    r = deid.deidentify(doc, _ents(), "mask")
    for e in _ents():
        assert e.text not in r.text
    assert "[NAME] (MRN [ID]) seen [DATE] by Dr. [NAME] at [LOCATION], [LOCATION]." in r.text
    for e in r.removed:
        (s, t), = e.spans
        assert r.text[s:t] == e.text == f"[{deid.mask_category(e.type)}]"


def test_surrogates_shift_dates_consistently_and_never_leak():
    doc = Document("n1", TEXT)
    ents = _ents()
    r = deid.deidentify(doc, ents, "surrogate", seed=7)
    for e in ents:
        if e.type != "AGE":
            assert e.text not in r.text, e.type
    dates = re.findall(r"\d{2}/\d{2}/\d{4}", r.text)
    got = [dt.datetime.strptime(d, "%m/%d/%Y").date() for d in dates]
    assert len(got) == 2 and (got[1] - got[0]).days == 18  # interval preserved
    assert (got[0] - dt.date(2019, 3, 14)).days == r.date_shift_days != 0
    assert "90+" in r.text  # ages over 89 aggregated
    assert "[DATE]" in r.text and r.masked_fallbacks == 1  # unparseable date → mask, not original
    # Same note id + seed → same output; another note gets another shift (almost surely).
    assert deid.deidentify(doc, ents, "surrogate", seed=7).text == r.text
    shifts = {deid.SurrogateGenerator(f"n{i}", 7).date_shift_days for i in range(5)}
    assert len(shifts) > 1
    for e in r.removed:
        (s, t), = e.spans
        assert r.text[s:t] == e.text


def test_shift_date_formats():
    assert deid.shift_date("2019-03-14", 1) == "2019-03-15"
    assert deid.shift_date("3/14/19", -14) == "2/28/19"
    assert deid.shift_date("March 14, 2019", 30) == "April 13, 2019"
    assert deid.shift_date("12/31", 1) == "1/1"
    assert deid.shift_date("02/30/2019", 1) is None
    assert deid.shift_date("yesterday", 1) is None


def test_write_deid(tmp_path):
    from gatortron_jax.annotations.formats.brat import read_brat_dir

    r = deid.deidentify(Document("sub/n1", TEXT), _ents(), "mask")
    summary = deid.write_deid([r], str(tmp_path), "mask")
    assert summary["removed_by_type"]["DATE"] == 3
    docs = read_brat_dir(str(tmp_path))
    assert docs[0].text == r.text and len(docs[0].entities) == len(r.removed)


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
    from gatortron_jax import cli

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
        def write(self, results, staging_dir):
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
