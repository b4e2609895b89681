"""``score --format conll`` against conlleval.

Expected figures: ``conlleval.pl`` (as in chakki-works/seqeval ``tests/``, perl 5) run once on
the two files :func:`score_fixtures.conll_pair` writes, pasted into its ``token gold guess``
form; and on the IOBES-tagged stream below. Its printed output (percent, 2 decimals = the
fractions to 4); the script is not shipped.
"""

import pytest

from gatortron_jax.evaluation.ner_metrics import bio_to_spans
from gatortron_jax.scoring import score
from gatortron_jax.scoring.conll import conlleval_counts
from score_fixtures import CONLL_SENTENCES, conll_pair


def test_official_figures(tmp_path):
    report = score("conll", *conll_pair(str(tmp_path)))
    # conlleval: processed 22 tokens with 6 phrases; found: 8 phrases; correct: 3.
    assert report.extra == {"tokens": 22, "phrases": 6, "found": 8, "correct": 3}
    o = report.rows["overall"]
    # accuracy: 68.18%; precision: 37.50%; recall: 50.00%; FB1: 42.86
    assert [round(o[k], 4) for k in ("accuracy", "precision", "recall", "f1")] == [0.6818, 0.375, 0.5, 0.4286]
    expected = {"problem": (0.5, 0.6667, 0.5714, 4), "test": (0.0, 0.0, 0.0, 1), "treatment": (0.3333, 0.5, 0.4, 3)}
    for t, (p, r, f, found) in expected.items():
        row = report.rows[t]
        assert (round(row["precision"], 4), round(row["recall"], 4), round(row["f1"], 4), row["found"]) == (p, r, f, found)


def test_strict_iob2_differs_on_the_same_tags():
    """Our strict IOB2 decoding drops orphan I- runs that conlleval counts as chunks."""
    gold = {(i, *s) for i, (_, g, _) in enumerate(CONLL_SENTENCES) for s in bio_to_spans(g)}
    pred = {(i, *s) for i, (_, _, p) in enumerate(CONLL_SENTENCES) for s in bio_to_spans(p)}
    assert len(gold & pred) == 1  # conlleval: 3 correct (both orphan-I- chunks count there)


def test_iobes_quirks():
    # perl conlleval.pl on "a S-X S-X / b S-X O / c O O / d B-Y B-Y / e E-Y E-Y / f B-Y E-Y / g O B-Y /
    # (blank) / h I-X I-X / i I-X I-Y / j O O": processed 10 tokens with 3 phrases; found: 5 phrases;
    # correct: 0; accuracy: 60.00%; X found 2, Y found 3.
    gold = ["S-X", "S-X", "O", "B-Y", "E-Y", "B-Y", "O", None, "I-X", "I-X", "O"]
    guess = ["S-X", "O", "O", "B-Y", "E-Y", "E-Y", "B-Y", None, "I-X", "I-Y", "O"]
    c = conlleval_counts(gold, guess)
    assert (c["tokens"], c["found_correct"], c["found_guessed"], c["correct_chunks"], c["correct_tags"]) == (10, 3, 5, 0, 6)
    assert c["per_type"]["X"][2] == 2 and c["per_type"]["Y"][2] == 3


def test_real_file_perturbed_matches_conlleval(shared_data, tmp_path):
    """NCBI-disease test (24,497 tokens) against :func:`score_fixtures.perturb_conll` of itself;
    expected: conlleval.pl's output on the two files pasted together (run once)."""
    from score_fixtures import perturb_conll

    gold = shared_data / "NCBI-disease-IOB" / "test.tsv"
    if not gold.is_file():
        pytest.skip("NCBI-disease-IOB not present")
    perturb_conll(str(gold), str(tmp_path / "sys.tsv"))
    report = score("conll", str(gold), str(tmp_path / "sys.tsv"))
    # processed 24497 tokens with 960 phrases; found: 3214 phrases; correct: 526.
    # accuracy: 89.54%; precision: 16.37%; recall: 54.79%; FB1: 25.20; Disease 54.06/54.79/54.42 973
    assert report.extra == {"tokens": 24497, "phrases": 960, "found": 3214, "correct": 526}
    o, d = report.rows["overall"], report.rows["Disease"]
    assert [round(100 * o[k], 2) for k in ("accuracy", "precision", "recall", "f1")] == [89.54, 16.37, 54.79, 25.20]
    assert [round(100 * d[k], 2) for k in ("precision", "recall", "f1")] + [d["found"]] == [54.06, 54.79, 54.42, 973]


def test_docstart_lines_count_as_tokens(tmp_path):
    # conlleval.pl on these two files pasted: processed 5 tokens with 2 phrases; found: 2 phrases;
    # correct: 1. accuracy: 60.00%; precision: 50.00%; recall: 50.00%
    gold, system = tmp_path / "g.conll", tmp_path / "s.conll"
    gold.write_text("-DOCSTART-\tO\n\nJohn\tB-PER\nran\tO\n\n-DOCSTART-\tO\n\nMary\tB-PER\n")
    system.write_text("-DOCSTART-\tO\n\nJohn\tB-PER\nran\tB-PER\n\n-DOCSTART-\tO\n\nMary\tO\n")
    report = score("conll", str(gold), str(system))
    assert report.extra == {"tokens": 5, "phrases": 2, "found": 2, "correct": 1}
    assert round(report.rows["overall"]["accuracy"], 4) == 0.6
