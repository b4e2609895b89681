"""``score --format meddocan`` against MEDDOCAN's CODALAB evaluation script.

Expected figures: ``scripts/CODALAB-Evaluation-script/evaluate.py`` of
PlanTL-SANIDAD/SPACCC_MEDDOCAN (Python 3.11) run once on exactly the pair
:func:`score_fixtures.meddocan_pair` writes, laid out as it wants (``ref/brat``,
``res/brat/subtask1|2``, the sentence files in its ``annotated_corpora/sentence_splitted``),
with the gold note that has no system file left out (with it in, the script prints "You did not
annotate all data" and no figures). Its ``scores.txt``, to 4 decimals; the script is not shipped.
"""

import pytest

from gatortron_jax.scoring import score
from score_fixtures import meddocan_pair

#: (P, R, F1) per row, and the subtrack 1 leak, from the script's scores.txt.
OFFICIAL = {"Subtrack 1 [NER]": (0.2727, 0.375, 0.3158), "Subtrack 2 [strict]": (0.3636, 0.5, 0.4211),
            "Subtrack 2 [merged]": (0.5, 0.625, 0.5556)}
OFFICIAL_LEAK = 0.7143


def test_official_figures_and_leak(tmp_path):
    gold, system, sentences = meddocan_pair(str(tmp_path))
    report = score("meddocan", gold, system, sentences=sentences)
    assert report.documents == 2
    for name, expected in OFFICIAL.items():
        r = report.rows[name]
        assert tuple(round(r[k], 4) for k in ("precision", "recall", "f1")) == expected, name
    assert round(report.rows["Subtrack 1 [NER]"]["leak"], 4) == OFFICIAL_LEAK
    (missing,) = [w for w in report.warnings if "no system note" in w]
    assert "refuses" in missing and "S3" in missing
    # every gold note: S3's 3 mentions become misses: 3 TP, 8 FP, 8 FN -> F1 6/22
    assert f"F1 {6 / 22:.4f} over 3" in missing


def test_without_sentences_no_leak(tmp_path):
    gold, system, _ = meddocan_pair(str(tmp_path))
    report = score("meddocan", gold, system)
    assert "leak" not in report.rows["Subtrack 1 [NER]"]
    assert any("leak" in n for n in report.notes)


def test_release_gold_against_itself(shared_data):
    """The real dev split (250 notes, brat + sentence_splitted/): gold scored against itself."""
    dev = shared_data / "MEDDOCAN" / "dev"
    if not (dev / "brat").is_dir():
        pytest.skip("MEDDOCAN dev split not present")
    report = score("meddocan", str(dev), str(dev / "brat"), sentences=str(dev / "sentence_splitted"))
    assert report.documents == 250
    for row in report.rows.values():
        assert row["f1"] == 1.0 and row["fp"] == 0 and row["fn"] == 0
    assert report.rows["Subtrack 1 [NER]"]["leak"] == 0.0
    assert report.rows["Subtrack 1 [NER]"]["tp"] == 5801


def test_release_dev_perturbed_matches_the_script(shared_data, tmp_path):
    """The real dev split (250 notes) against :func:`score_fixtures.perturb_brat` of itself;
    expected: the CODALAB script's scores.txt on exactly these files (run once, 4 decimals)."""
    from score_fixtures import perturb_brat

    dev = shared_data / "MEDDOCAN" / "dev"
    if not (dev / "brat").is_dir():
        pytest.skip("MEDDOCAN dev split not present")
    perturb_brat(str(dev / "brat"), str(tmp_path / "sys"))
    report = score("meddocan", str(dev / "brat"), str(tmp_path / "sys"), sentences=str(dev / "sentence_splitted"))
    expected = {"Subtrack 1 [NER]": (0.5257, 0.5161, 0.5209), "Subtrack 2 [strict]": (0.6592, 0.6471, 0.6531),
                "Subtrack 2 [merged]": (0.8003, 0.7260, 0.7614)}
    for name, prf in expected.items():
        assert tuple(round(report.rows[name][k], 4) for k in ("precision", "recall", "f1")) == prf, name
    assert round(report.rows["Subtrack 1 [NER]"]["leak"], 4) == 0.3614


def test_xml_release_scores_as_the_brat_release(shared_data, tmp_path):
    """The XML release (``<MEDDOCAN>`` root) and the brat release are the same annotations: a
    perturbed brat system scores the same against either gold, and XML gold against brat gold is
    perfect (the script reads either format)."""
    from score_fixtures import perturb_brat

    dev = shared_data / "MEDDOCAN" / "dev"
    if not (dev / "xml").is_dir():
        pytest.skip("MEDDOCAN dev split not present")
    perturb_brat(str(dev / "brat"), str(tmp_path / "sys"))
    from_brat = score("meddocan", str(dev / "brat"), str(tmp_path / "sys"))
    from_xml = score("meddocan", str(dev / "xml"), str(tmp_path / "sys"))
    assert from_xml.documents == from_brat.documents == 250
    assert from_xml.rows == from_brat.rows
    assert round(from_xml.rows["Subtrack 1 [NER]"]["f1"], 4) == 0.5209  # the script's figure, as above
    same = score("meddocan", str(dev / "xml"), str(dev / "brat"))
    assert all(row["f1"] == 1.0 for row in same.rows.values())
