"""``score --format n2c2_2018`` against the official n2c2 2018 track 2 ``track2-evaluate``.

Expected figures: the organisers' script (``Track2-evaluate-ver4.py`` from
kaivamannam/clinicalnlp-ade ``misc/``, its unused ``cElementTree`` import pointed at
``ElementTree`` to run on Python 3.11) run once on exactly the pair
:func:`score_fixtures.n2c2_2018_pair` writes; its ``MultipleEvaluator`` scores read at full
precision (the printed table, 4 decimals, agrees). Recorded to 4 decimals; not shipped.
"""

import pytest

from gatortron_jax.scoring import score
from score_fixtures import n2c2_2018_pair

#: row: (TP, FP, FN, P, R, F1[, macro P, macro R, macro F1]), official script, 2 notes scored.
OFFICIAL = {
    "ADE (lenient)": (1, 0, 0, 1.0, 1.0, 1.0),
    "ADE (strict)": (1, 0, 0, 1.0, 1.0, 1.0),
    "ADE-Drug (lenient)": (1, 0, 0, 1.0, 1.0, 1.0),
    "ADE-Drug (strict)": (1, 0, 0, 1.0, 1.0, 1.0),
    "Concepts overall (lenient)": (15, 3, 3, 0.8333, 0.8333, 0.8333, 0.8929, 0.8231, 0.8519),
    "Concepts overall (strict)": (12, 7, 6, 0.6316, 0.6667, 0.6486, 0.675, 0.6462, 0.6548),
    "Dosage (lenient)": (0, 1, 0, 0.0, 0.0, 0.0),
    "Dosage (strict)": (0, 1, 0, 0.0, 0.0, 0.0),
    "Dosage-Drug (lenient)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Dosage-Drug (strict)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Drug (lenient)": (5, 1, 0, 0.8333, 1.0, 0.9091),
    "Drug (strict)": (4, 2, 1, 0.6667, 0.8, 0.7273),
    "Duration (lenient)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Duration (strict)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Duration-Drug (lenient)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Duration-Drug (strict)": (0, 0, 0, 0.0, 0.0, 0.0),
    "Form (lenient)": (0, 0, 1, 0.0, 0.0, 0.0),
    "Form (strict)": (0, 0, 1, 0.0, 0.0, 0.0),
    "Form-Drug (lenient)": (0, 1, 1, 0.0, 0.0, 0.0),
    "Form-Drug (strict)": (0, 1, 1, 0.0, 0.0, 0.0),
    "Frequency (lenient)": (2, 0, 0, 1.0, 1.0, 1.0),
    "Frequency (strict)": (2, 0, 0, 1.0, 1.0, 1.0),
    "Frequency-Drug (lenient)": (2, 0, 0, 1.0, 1.0, 1.0),
    "Frequency-Drug (strict)": (2, 0, 0, 1.0, 1.0, 1.0),
    "Reason (lenient)": (2, 0, 0, 1.0, 1.0, 1.0),
    "Reason (strict)": (1, 2, 1, 0.3333, 0.5, 0.4),
    "Reason-Drug (lenient)": (1, 2, 1, 0.3333, 0.5, 0.4),
    "Reason-Drug (strict)": (0, 4, 2, 0.0, 0.0, 0.0),
    "Relations overall (lenient)": (9, 3, 4, 0.75, 0.6923, 0.72, 0.65, 0.5667, 0.6),
    "Relations overall (strict)": (7, 6, 6, 0.5385, 0.5385, 0.5385, 0.5227, 0.4667, 0.4857),
    "Route (lenient)": (1, 1, 2, 0.5, 0.3333, 0.4),
    "Route (strict)": (1, 1, 2, 0.5, 0.3333, 0.4),
    "Route-Drug (lenient)": (1, 0, 2, 1.0, 0.3333, 0.5),
    "Route-Drug (strict)": (1, 0, 2, 1.0, 0.3333, 0.5),
    "Strength (lenient)": (4, 0, 0, 1.0, 1.0, 1.0),
    "Strength (strict)": (3, 1, 1, 0.75, 0.75, 0.75),
    "Strength-Drug (lenient)": (4, 0, 0, 1.0, 1.0, 1.0),
    "Strength-Drug (strict)": (3, 1, 1, 0.75, 0.75, 0.75),
}
_KEYS = ("tp", "fp", "fn", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")


def _as_tuple(row, n):
    vals = tuple(row[k] for k in _KEYS[:n])
    return vals[:3] + tuple(round(v, 4) for v in vals[3:])


@pytest.fixture()
def report(tmp_path):
    return score("n2c2_2018", *n2c2_2018_pair(str(tmp_path)))


def test_every_official_row_matches(report):
    assert report.documents == 2
    assert set(report.rows) == set(OFFICIAL)
    assert {k for k, r in report.rows.items() if "macro_f1" in r} == {k for k, v in OFFICIAL.items() if len(v) == 9}
    wrong = {k: (_as_tuple(report.rows[k], len(v)), v) for k, v in OFFICIAL.items()
             if _as_tuple(report.rows[k], len(v)) != v}
    assert not wrong


def test_conventions_the_issue_names(report):
    # discontinuous gold ADE (rash ... itching) matched by its envelope, strictly
    assert report.rows["ADE (strict)"]["tp"] == 1
    # Form-Drug whose argument was typed Route is a miss even leniently
    assert report.rows["Form-Drug (lenient)"]["tp"] == 0
    # duplicated Drug pared down: Warfarin twice is one TP, not a FP; the invented "chest" Drug is the FP
    assert report.rows["Drug (strict)"]["fp"] == 2 and report.rows["Drug (lenient)"]["fp"] == 1


def test_missing_and_unknown_notes(report):
    (missing,) = [w for w in report.warnings if "no system note" in w]
    # every gold note: note 103's 2 concepts become misses: 12 TP, 7 FP, 8 FN -> F1 24/39
    assert "F1 0.6486 over 2" in missing and f"F1 {24 / 39:.4f} over 3" in missing
    assert report.extra["unknown_system_notes"] == ["999"]


def test_real_brat_perturbed_matches_the_script(shared_data, tmp_path):
    """NCBI-disease devel (100 real abstracts, brat) against :func:`score_fixtures.perturb_brat` of
    itself; expected: the official script (same driver as above) on exactly these files."""
    from score_fixtures import perturb_brat

    gold = shared_data / "NCBI-disease-standoff" / "standoff" / "devel"
    if not gold.is_dir():
        pytest.skip("NCBI-disease-standoff not present")
    perturb_brat(str(gold), str(tmp_path / "sys"))
    report = score("n2c2_2018", str(gold), str(tmp_path / "sys"))
    expected = {"Concepts overall (strict)": (335, 448, 452, 0.3334, 0.331, 0.3318),
                "Concepts overall (lenient)": (517, 221, 270, 0.6144, 0.5847, 0.5988)}
    for name, want in expected.items():
        r = report.rows[name]
        assert (r["tp"], r["fp"], r["fn"], *(round(r[k], 4) for k in ("macro_precision", "macro_recall", "macro_f1")))\
            == want, name
