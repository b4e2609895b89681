"""The shipped synthetic NER samples: deterministic, complete, readable by every reader."""

import collections
import pathlib

from gatortron_jax.sample_data import ner as synthetic_ner
from gatortron_jax.annotations.formats import (ReadSummary, read_brat_dir, read_conll, read_i2b2_2010_dir,
                                        read_i2b2_2012_dir)

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "ner_samples"


def _read(fmt, split, summary=None):
    root = SAMPLES / fmt
    if fmt == "conll":
        return read_conll(str(root / f"{split}.tsv"), summary=summary)
    reader = {"i2b2_2010": read_i2b2_2010_dir, "i2b2_2012": read_i2b2_2012_dir}.get(fmt, read_brat_dir)
    return reader(str(root / split), summary=summary)


def test_regeneration_is_byte_identical_to_shipped_samples(tmp_path):
    synthetic_ner.main(["--out", str(tmp_path)])
    made = {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    shipped = {str(p.relative_to(SAMPLES)): p.read_bytes() for p in sorted(SAMPLES.rglob("*")) if p.is_file()}
    assert made.keys() == shipped.keys()
    assert [k for k in made if made[k] != shipped[k]] == []
    assert sum(len(v) for v in made.values()) < 2_000_000


def test_splits_long_note_and_types():
    expected = {
        "i2b2_2010": {"problem", "test", "treatment"},
        "conll": {"problem", "test", "treatment"},
        "i2b2_2012": {"PROBLEM", "TEST", "TREATMENT", "CLINICAL_DEPT", "EVIDENTIAL", "OCCURRENCE",
                      "DATE", "TIME", "DURATION", "FREQUENCY"},
        "brat_n2c2_2018": {"Drug", "Strength", "Dosage", "Route", "Frequency", "Reason", "ADE", "Duration", "Form"},
        "brat_deid": {"PATIENT", "DOCTOR", "DATE", "HOSPITAL", "MEDICALRECORD", "PHONE", "AGE", "CITY", "STATE",
                      "STREET", "ZIP", "PROFESSION", "USERNAME", "EMAIL", "FAX", "HEALTHPLAN", "IDNUM",
                      "ORGANIZATION"},
    }
    for fmt, types in expected.items():
        seen = set()
        for split, n in (("train", 24), ("dev", 6), ("test", 6)):
            summary = ReadSummary()
            docs = _read(fmt, split, summary)
            assert not summary.problems, (fmt, split, summary.problems)
            if fmt != "conll":
                assert len(docs) == n
                assert all(d.entities for d in docs)
            seen |= {e.type for d in docs for e in d.entities}
            if split == "test":
                longest = max(docs, key=lambda d: len(d.text.split()))
                assert longest.id.endswith("_long") or fmt == "conll"
                assert len(longest.text.split()) > 2500, fmt
        assert seen == types, fmt


def test_n2c2_relations_overlaps_and_discontinuous():
    docs = _read("brat_n2c2_2018", "train")
    rel_types = collections.Counter(r.type for d in docs for r in d.relations)
    assert {"Strength-Drug", "Reason-Drug", "ADE-Drug", "Route-Drug", "Frequency-Drug", "Dosage-Drug",
            "Duration-Drug", "Form-Drug"} <= set(rel_types)
    for d in docs:
        by_id = {e.id: e for e in d.entities}
        for r in d.relations:
            assert by_id[r.arg2].type == "Drug" and r.type == f"{by_id[r.arg1].type}-Drug"
    spans = collections.Counter((d.id, e.spans) for d in docs for e in d.entities)
    assert any(c > 1 for c in spans.values())  # ADE and Reason on the same span
    assert any(len(e.spans) > 1 for d in docs for e in d.entities)


def test_i2b2_2012_tlinks_and_in_memory_equals_disk():
    docs = _read("i2b2_2012", "train")
    assert sum(len(d.relations) for d in docs) > 24
    made = synthetic_ner.generate_documents("i2b2_2012")["train"]
    assert [(d.id, d.text, [(e.id, e.type, e.spans) for e in d.entities], d.relations) for d in made] == \
           [(d.id, d.text, [(e.id, e.type, e.spans) for e in d.entities], d.relations) for d in docs]
