"""Tests for the synthetic clinical corpus generator and the shipped sample corpus."""

from __future__ import annotations

import os
import random
import re

import pytest

from gatortron_jax.sample_data import corpus as synthetic
from gatortron_jax.sample_data import corpus_lexicon

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample_corpus")


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    return synthetic.generate_corpus(300, seed=0)


def _has_any(text: str, key: str) -> bool:
    return any(h in text for h in corpus_lexicon.HEADERS[key])


def test_same_seed_same_text_different_seed_different() -> None:
    a = synthetic.generate_corpus(20, seed=7)
    assert a == synthetic.generate_corpus(20, seed=7)
    b = synthetic.generate_corpus(20, seed=8)
    assert [t for _, t in a] != [t for _, t in b]
    assert sum(x != y for (_, x), (_, y) in zip(a, b)) >= 18  # not just one differing note
    assert synthetic.generate_note(random.Random(3), 5) == synthetic.generate_note(random.Random(3), 5)


def test_no_global_random_state_used() -> None:
    random.seed(123)
    before = random.random()
    random.seed(123)
    synthetic.generate_corpus(5, seed=0)
    assert random.random() == before


def test_doc_ids_and_prefix(corpus: list[tuple[str, str]]) -> None:
    assert [d for d, _ in corpus[:3]] == ["note_00000", "note_00001", "note_00002"]
    assert len({d for d, _ in corpus}) == len(corpus)
    for i, (_, text) in enumerate(corpus):
        assert text.startswith(f"[Synthetic note #{i:05d} - not a real patient]\n")


def test_sections_by_note_type(corpus: list[tuple[str, str]]) -> None:
    kinds = {"discharge": 0, "hp": 0, "progress": 0}
    for _, text in corpus:
        title = text.split("\n")[1].lower()
        assert _has_any(text, "ap") or "discharge" in title
        if "discharge" in title:
            kinds["discharge"] += 1
            for key in ("course", "dc_meds", "followup", "dc_dx", "allergies"):
                assert _has_any(text, key), key
            assert re.search(r"Admission Date: \d\d/\d\d/\d{4}", text)
        elif "progress" in title or "soap" in title:
            kinds["progress"] += 1
            assert _has_any(text, "subjective")
            assert re.search(r"HD#\d", text)
        else:
            kinds["hp"] += 1
            for key in ("cc", "hpi", "pmh", "meds", "allergies", "ros", "exam", "labs", "ap"):
                assert _has_any(text, key), key
            assert re.search(r"^1\. \S", text, re.M)  # numbered problem list
    assert all(n >= 30 for n in kinds.values()), kinds


def test_clinical_content_present(corpus: list[tuple[str, str]]) -> None:
    text = "\n".join(t for _, t in corpus)
    # Medication sigs with dose, route and frequency, including weight-based dosing.
    assert re.search(r"\b[a-z]+ \d+(\.\d+)? ?mg (PO|IV|SC) (daily|BID|TID|q\d+h)", text)
    assert "mg/kg" in text and "metoprolol tartrate" in text
    # Labs with units and abbreviations an MLM should see often.
    assert re.search(r"Cr:? \d\.\d\d", text) and "mg/dL" in text and "mmol/L" in text
    for abbrev in ("HTN", "DM2", "CHF", "SOB", "s/p", "prn", "q6h", "c/o", "NKDA", "BID"):
        assert abbrev in text, abbrev
    assert "µ" in text and "≥" in text  # some non-ASCII, as in real EHR exports


def test_fake_identifiers_only(corpus: list[tuple[str, str]]) -> None:
    text = "\n".join(t for _, t in corpus)
    mrns = re.findall(r"MRN: (\d+)", text)
    assert mrns and all(m.startswith("99") and len(m) == 8 for m in mrns)
    phones = re.findall(r"555-\d{4}", text)
    assert phones and all(p.startswith("555-01") for p in phones)
    encounter = re.findall(r"(?:Admission|Discharge) Date: \d\d/\d\d/(\d{4})", text)
    assert encounter and all(2091 <= int(y) <= 2097 for y in encounter)


def test_length_distribution(corpus: list[tuple[str, str]]) -> None:
    words = sorted(len(t.split()) for _, t in corpus)
    assert words[0] < 150, words[:5]
    assert words[-1] > 1000, words[-5:]
    long_share = sum(w > 512 for w in words) / len(words)
    assert 0.05 < long_share < 0.6, long_share
    assert 200 < words[len(words) // 2] < 600


def test_write_sample_corpus_counts_and_stale_files(tmp_path) -> None:
    out = str(tmp_path / "corpus")
    counts = synthetic.write_sample_corpus(out, num_train=7, num_validation=3, seed=1)
    assert counts == {"train": 7, "validation": 3}
    train = sorted(os.listdir(os.path.join(out, "train")))
    val = sorted(os.listdir(os.path.join(out, "validation")))
    assert train == [f"note_{i:05d}.txt" for i in range(7)]
    assert val == [f"note_{i:05d}.txt" for i in range(7, 10)]
    expected = dict(synthetic.generate_corpus(10, seed=1))
    with open(os.path.join(out, "validation", "note_00008.txt"), encoding="utf-8") as f:
        assert f.read() == expected["note_00008"]
    # A smaller rerun must not leave stale notes behind.
    assert synthetic.main(["--out", out, "--num-train", "2", "--num-validation", "1", "--seed", "1"]) == 0
    assert len(os.listdir(os.path.join(out, "train"))) == 2
    assert len(os.listdir(os.path.join(out, "validation"))) == 1


def test_shipped_sample_matches_generator() -> None:
    """data/README.md promises the shipped files are exactly what the command regenerates."""
    if not os.path.isdir(SAMPLE):
        pytest.skip("sample corpus not present")
    train = sorted(os.listdir(os.path.join(SAMPLE, "train")))
    val = sorted(os.listdir(os.path.join(SAMPLE, "validation")))
    assert len(train) == 400 and len(val) == 40
    expected = dict(synthetic.generate_corpus(440, seed=0))
    total = 0
    for split, names in (("train", train), ("validation", val)):
        for name in names:
            with open(os.path.join(SAMPLE, split, name), encoding="utf-8") as f:
                text = f.read()
            assert text == expected[name[:-4]], f"{split}/{name} differs from the generator"
            total += len(text.encode("utf-8"))
    assert total < 3_000_000
