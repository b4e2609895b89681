"""``score --format i2b2_2014`` against the official i2b2 2014 ``evaluate.py phi``.

Expected figures: the official script (kotfic/i2b2_evaluation_scripts, Python 2.7.18, lxml,
numpy) run once on exactly the pair :func:`score_fixtures.i2b2_2014_pair` writes, through a
driver that calls its ``PHITrackEvaluation`` as ``evaluate.py`` does and prints the counts and
the micro and macro figures at full precision (``evaluate.py`` itself prints 4 significant
digits; they agree). The corrected-HIPAA figures: the same script with its ``"IDNUM "``
pattern spelled ``"IDNUM"``. Recorded here to 4 decimals; the script is not shipped.
"""

import math

import pytest

from gatortron_jax.core.errors import InputError
from gatortron_jax.scoring import score
from score_fixtures import i2b2_2014_pair

NAN = float("nan")
#: row: (TP, FP, FN, P, R, F1, macro P, macro R, macro F1), official script, 2 notes scored.
OFFICIAL = {
    "AGE Binary HIPAA Strict": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "AGE HIPPA Token": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "AGE Strict": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "AGE Token": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "Binary HIPAA Strict": (6, 9, 5, 0.4, 0.5455, 0.4615, 0.6538, 0.5833, 0.6166),
    "Binary HIPPA Token": (18, 7, 4, 0.72, 0.8182, 0.766, 0.8333, 0.7524, 0.7908),
    "Binary Strict": (12, 7, 6, 0.6316, 0.6667, 0.6486, 0.675, 0.6462, 0.6603),
    "Binary Token": (31, 3, 2, 0.9118, 0.9394, 0.9254, 0.9083, 0.9283, 0.9182),
    "CONTACT Binary HIPAA Strict": (0, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "CONTACT HIPPA Token": (3, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "CONTACT Strict": (0, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "CONTACT Token": (3, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "DATE Binary HIPAA Strict": (2, 2, 2, 0.5, 0.5, 0.5, 0.6667, 0.5, 0.5714),
    "DATE HIPPA Token": (9, 1, 3, 0.9, 0.75, 0.8182, 0.9286, 0.75, 0.8298),
    "DATE Strict": (2, 2, 2, 0.5, 0.5, 0.5, 0.6667, 0.5, 0.5714),
    "DATE Token": (9, 1, 3, 0.9, 0.75, 0.8182, 0.9286, 0.75, 0.8298),
    "HIPAA Relaxed": (7, 8, 4, 0.4667, 0.6364, 0.5385, 0.6923, 0.6458, 0.6683),
    "HIPAA Strict": (6, 9, 5, 0.4, 0.5455, 0.4615, 0.6538, 0.5833, 0.6166),
    "HIPPA Token": (18, 7, 4, 0.72, 0.8182, 0.766, 0.8333, 0.7524, 0.7908),
    "ID Binary HIPAA Strict": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "ID HIPPA Token": (1, 0, 0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "ID Strict": (2, 2, 1, 0.5, 0.6667, 0.5714, 0.5, 0.5, 0.5),
    "ID Token": (5, 4, 0, 0.5556, 1.0, 0.7143, 0.6667, 1.0, 0.8),
    "LOCATION Binary HIPAA Strict": (1, 2, 1, 0.3333, 0.5, 0.4, 0.1667, 0.25, 0.2),
    "LOCATION HIPPA Token": (1, 3, 1, 0.25, 0.5, 0.3333, 0.125, 0.25, 0.1667),
    "LOCATION Strict": (2, 2, 2, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25),
    "LOCATION Token": (2, 3, 3, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2),
    "NAME Binary HIPAA Strict": (1, 4, 1, 0.2, 0.5, 0.2857, 0.5, 0.5, 0.5),
    "NAME HIPPA Token": (3, 3, 0, 0.5, 1.0, 0.6667, 0.7, 1.0, 0.8235),
    "NAME Strict": (1, 4, 3, 0.2, 0.25, 0.2222, 0.5, 0.25, 0.3333),
    "NAME Token": (3, 3, 3, 0.5, 0.5, 0.5, 0.7, 0.5, 0.5833),
    "OTHER Binary HIPAA Strict": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "OTHER HIPPA Token": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "OTHER Strict": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "OTHER Token": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "PROFESSION Binary HIPAA Strict": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "PROFESSION HIPPA Token": (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "PROFESSION Strict": (0, 0, 1, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "PROFESSION Token": (0, 0, 1, 0.0, 0.0, 0.0, 0.0, 0.0, NAN),
    "Relaxed": (9, 10, 9, 0.4737, 0.5, 0.4865, 0.4833, 0.4692, 0.4762),
    "Strict": (8, 11, 10, 0.4211, 0.4444, 0.4324, 0.45, 0.4308, 0.4402),
    "Token": (23, 11, 10, 0.6765, 0.697, 0.6866, 0.6542, 0.6696, 0.6618),
}
#: rows that change when IDNUM is in the HIPAA list (the script with the pattern corrected).
CORRECTED = {
    "Binary HIPAA Strict": (8, 10, 5, 0.4444, 0.6154, 0.5161, 0.5536, 0.6528, 0.5991),
    "Binary HIPPA Token": (25, 8, 1, 0.7576, 0.9615, 0.8475, 0.7978, 0.9706, 0.8758),
    "HIPAA Relaxed": (8, 10, 5, 0.4444, 0.6154, 0.5161, 0.4643, 0.5833, 0.517),
    "HIPAA Strict": (7, 11, 6, 0.3889, 0.5385, 0.4516, 0.4286, 0.5278, 0.473),
    "HIPPA Token": (22, 11, 4, 0.6667, 0.8462, 0.7458, 0.6478, 0.8039, 0.7175),
    "ID Binary HIPAA Strict": (2, 2, 1, 0.5, 0.6667, 0.5714, 0.5, 0.5, 0.5),
    "ID HIPPA Token": (5, 4, 0, 0.5556, 1.0, 0.7143, 0.6667, 1.0, 0.8),
}
_KEYS = ("tp", "fp", "fn", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")


def _as_tuple(row):
    vals = tuple(row[k] for k in _KEYS)
    return vals[:3] + tuple(NAN if math.isnan(v) else round(v, 4) for v in vals[3:])


def _same(a, b):
    return all((isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


@pytest.fixture()
def pair(tmp_path):
    return i2b2_2014_pair(str(tmp_path))


def test_every_official_row_matches(pair):
    report = score("i2b2_2014", *pair)
    assert report.documents == 2
    assert set(report.rows) == set(OFFICIAL)
    wrong = {k: (_as_tuple(report.rows[k]), v) for k, v in OFFICIAL.items() if not _same(_as_tuple(report.rows[k]), v)}
    assert not wrong


def test_corrected_hipaa_flag_counts_idnum(pair):
    official = score("i2b2_2014", *pair)
    corrected = score("i2b2_2014", *pair, corrected_hipaa=True)
    for name, expected in CORRECTED.items():
        assert _same(_as_tuple(corrected.rows[name]), expected), name
        assert not _same(_as_tuple(official.rows[name]), expected), name
    assert "IDNUM" in " ".join(corrected.notes)


def test_missing_note_one_warning_with_both_figures_and_unknown_note_reported(pair):
    report = score("i2b2_2014", *pair)
    missing = [w for w in report.warnings if "no system note" in w]
    assert len(missing) == 1
    # official: 2 notes (8 TP, 11 FP, 10 FN); every gold note adds 100-03's 3 tags as misses:
    # P 8/19, R 8/21, F1 16/40 = 0.4000
    assert "1 gold note(s)" in missing[0] and "100-03" in missing[0]
    assert "F1 0.4324 over 2" in missing[0] and "F1 0.4000 over 3" in missing[0]
    assert report.extra["unknown_system_notes"] == ["200-01"]
    assert any("200-01" in w for w in report.warnings)


def test_unparseable_system_file_names_file_and_line(pair):
    gold, system = pair
    path = system + "100-02.xml"
    lines = open(path, encoding="utf-8").read().split("\n")
    k = next(i for i, line in enumerate(lines) if "<NAME" in line)
    lines[k] = lines[k].replace('start="', 'start="x', 1)
    open(path, "w", encoding="utf-8").write("\n".join(lines))
    with pytest.raises(InputError, match=rf"100-02.xml:{k + 1}: non-integer offsets"):
        score("i2b2_2014", gold, system)


#: The 36 synthetic 2014 notes shipped in data/deid_samples (all splits) against
#: :func:`score_fixtures.perturb_i2b2_2014` of themselves: (TP, FP, FN, macro P, macro R) per row
#: from the official script (same driver as above), and with its IDNUM pattern corrected.
SAMPLES_OFFICIAL = {
    "AGE Binary HIPAA Strict": (0, 36, 36, 0.0, 0.0),
    "AGE HIPPA Token": (36, 0, 0, 1.0, 1.0),
    "AGE Strict": (0, 36, 36, 0.0, 0.0),
    "AGE Token": (36, 0, 0, 1.0, 1.0),
    "Binary HIPAA Strict": (288, 396, 396, 0.4211, 0.4211),
    "Binary HIPPA Token": (1027, 177, 504, 0.8533, 0.6707),
    "Binary Strict": (504, 360, 360, 0.5833, 0.5833),
    "Binary Token": (1451, 134, 405, 0.9156, 0.7816),
    "CONTACT Binary HIPAA Strict": (0, 72, 36, 0.0, 0.0),
    "CONTACT HIPPA Token": (108, 0, 0, 1.0, 1.0),
    "CONTACT Strict": (0, 72, 36, 0.0, 0.0),
    "CONTACT Token": (108, 0, 0, 1.0, 1.0),
    "DATE Binary HIPAA Strict": (108, 72, 180, 0.6, 0.375),
    "DATE HIPPA Token": (360, 62, 432, 0.8545, 0.4545),
    "DATE Strict": (108, 72, 180, 0.6, 0.375),
    "DATE Token": (360, 62, 432, 0.8545, 0.4545),
    "HIPAA Relaxed": (324, 360, 360, 0.4737, 0.4737),
    "HIPAA Strict": (252, 432, 432, 0.3684, 0.3684),
    "HIPPA Token": (979, 225, 552, 0.8134, 0.6393),
    "ID Binary HIPAA Strict": (36, 0, 0, 1.0, 1.0),
    "ID HIPPA Token": (36, 0, 0, 1.0, 1.0),
    "ID Strict": (36, 108, 0, 0.25, 1.0),
    "ID Token": (36, 254, 0, 0.1248, 1.0),
    "LOCATION Binary HIPAA Strict": (72, 72, 72, 0.5, 0.5),
    "LOCATION HIPPA Token": (241, 84, 84, 0.7429, 0.7429),
    "LOCATION Strict": (72, 72, 144, 0.5, 0.3333),
    "LOCATION Token": (241, 84, 239, 0.7429, 0.5024),
    "NAME Binary HIPAA Strict": (36, 180, 108, 0.1667, 0.25),
    "NAME HIPPA Token": (198, 79, 36, 0.7117, 0.8426),
    "NAME Strict": (72, 180, 144, 0.2857, 0.3333),
    "NAME Token": (277, 79, 79, 0.7773, 0.7773),
    "OTHER Binary HIPAA Strict": (0, 0, 0, 0.0, 0.0),
    "OTHER HIPPA Token": (0, 0, 0, 0.0, 0.0),
    "OTHER Strict": (0, 0, 0, 0.0, 0.0),
    "OTHER Token": (0, 0, 0, 0.0, 0.0),
    "PROFESSION Binary HIPAA Strict": (0, 0, 0, 0.0, 0.0),
    "PROFESSION HIPPA Token": (0, 0, 0, 0.0, 0.0),
    "PROFESSION Strict": (36, 0, 0, 1.0, 1.0),
    "PROFESSION Token": (48, 0, 0, 1.0, 1.0),
    "Relaxed": (396, 468, 468, 0.4583, 0.4583),
    "Strict": (324, 540, 540, 0.375, 0.375),
    "Token": (1106, 479, 750, 0.6979, 0.5958),
}
SAMPLES_CORRECTED = {
    "Binary HIPAA Strict": (324, 468, 360, 0.4091, 0.4737),
    "Binary HIPPA Token": (1126, 332, 405, 0.7725, 0.7353),
    "HIPAA Relaxed": (324, 468, 360, 0.4091, 0.4737),
    "HIPAA Strict": (252, 540, 432, 0.3182, 0.3684),
    "HIPPA Token": (979, 479, 552, 0.6716, 0.6393),
    "ID Binary HIPAA Strict": (36, 108, 0, 0.25, 1.0),
    "ID HIPPA Token": (36, 254, 0, 0.1248, 1.0),
}


def test_shipped_samples_perturbed_match_the_script(repo_root, tmp_path):
    from score_fixtures import perturb_i2b2_2014

    gold = tmp_path / "gold"
    gold.mkdir()
    for p in sorted((repo_root / "data" / "deid_samples" / "i2b2_2014").glob("*/*.xml")):
        (gold / p.name).write_bytes(p.read_bytes())
    perturb_i2b2_2014(str(gold), str(tmp_path / "sys"))
    for corrected, expected in ((False, SAMPLES_OFFICIAL), (True, {**SAMPLES_OFFICIAL, **SAMPLES_CORRECTED})):
        report = score("i2b2_2014", str(gold), str(tmp_path / "sys"), corrected_hipaa=corrected)
        assert report.documents == 36
        got = {k: (r["tp"], r["fp"], r["fn"], round(r["macro_precision"], 4), round(r["macro_recall"], 4))
               for k, r in report.rows.items()}
        assert got == expected


def test_tag_whose_text_does_not_match_its_offsets_is_reported(pair):
    gold, system = pair
    path = system + "100-02.xml"
    content = open(path, encoding="utf-8").read()
    content = content.replace('text="Brown"', 'text="Kay"', 1)  # a system that wrote the wrong text=
    open(path, "w", encoding="utf-8").write(content)
    report = score("i2b2_2014", gold, system)
    assert any("1 system tag(s) had offsets that did not match their text=" in w for w in report.warnings)


def test_two_files(pair):
    gold, system = pair
    one = score("i2b2_2014", gold + "100-02.xml", system + "100-02.xml")
    both = score("i2b2_2014", gold, system)
    # the script on these two files (evaluate.py phi FILE FILE): Strict precision 0.5 (2 of 4)
    assert one.documents == 1 and one.rows["Strict"]["tp"] == 2 and one.rows["Strict"]["precision"] == 0.5
    assert both.rows["Strict"]["tp"] == 8
