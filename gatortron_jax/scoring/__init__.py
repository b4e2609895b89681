"""Score a system's output against gold, as each benchmark's official scorer does.

Published clinical NLP numbers come from each challenge's own script, and those scripts
differ from one another (and from seqeval-style scoring) in matching, in which notes they
count and in their category lists. One module per convention, each a reimplementation
checked against the script's own output on hand-made perturbed pairs
(``tests/test_score_*.py``):

| ``--format``  | module        | official scorer reproduced                                    |
|---------------|---------------|---------------------------------------------------------------|
| ``i2b2_2014`` | ``i2b2_2014`` | i2b2 2014 de-id ``evaluate.py phi`` (kotfic/i2b2_evaluation_scripts) |
| ``n2c2_2018`` | ``n2c2_2018`` | n2c2 2018 track 2 ``track2-evaluate``                          |
| ``meddocan``  | ``meddocan``  | MEDDOCAN CODALAB ``evaluate.py``                                |
| ``conll``     | ``conll``     | ``conlleval`` (perl)                                          |
| ``brat``, ``i2b2_2010``, ``i2b2_2012`` | here | none reproduced: our strict/lenient entity scores    |

The last three get :func:`~gatortron_jax.evaluation.ner_metrics.entity_scores` over every gold
note. :mod:`~gatortron_jax.scoring.tasks` gives ``evaluate`` the same official figures in memory.

Plain library (no gin); the CLI front is :mod:`gatortron_jax.cli.scoring`.
Imports: ``core``, ``annotations``, ``evaluation``.
"""

from __future__ import annotations

from gatortron_jax.core.errors import InputError
from gatortron_jax.scoring.common import ScoreReport, format_report, pair_documents

FORMATS = ("i2b2_2014", "meddocan", "n2c2_2018", "brat", "conll", "i2b2_2010", "i2b2_2012")


def _entity_report(fmt: str, gold: list, system: list) -> ScoreReport:
    """Formats with no official scorer reproduced: strict and lenient entity P/R/F1 (micro and
    per type) over every gold note; system notes absent from gold are reported, not scored."""
    from gatortron_jax.evaluation.ner_metrics import entity_scores

    pairing = pair_documents(gold, system)
    kept = [s for _, s in pairing.pairs]
    scores = entity_scores(list(gold), kept)
    rows = {}
    for mode in ("strict", "lenient"):
        rows[f"micro ({mode})"] = scores[mode]["micro"]
        for t, v in scores[mode]["per_type"].items():
            rows[f"{t} ({mode})"] = v
    report = ScoreReport(format=fmt, official="no official scorer reproduced; seqeval-style strict/lenient entity "
                         "scores over every gold note", documents=len(gold), rows=rows, headline="micro (strict)")
    if pairing.missing:
        common = entity_scores([g for g, _ in pairing.pairs], kept)["strict"]["micro"]
        report.warnings.append(f"{len(pairing.missing)} gold note(s) have no system note (first: "
                               f"{pairing.missing[0].id}), counted as misses: micro (strict) F1 "
                               f"{rows['micro (strict)']['f1']:.4f} over every gold note; "
                               f"{common['f1']:.4f} over the {len(pairing.pairs)} note(s) in both")
    if pairing.unknown:
        shown = ", ".join(pairing.unknown[:5]) + (" ..." if len(pairing.unknown) > 5 else "")
        report.warnings.append(f"{len(pairing.unknown)} system note(s) not in the gold set, not scored: {shown}")
    return report


def score(fmt: str, gold: str, system: str, *, corrected_hipaa: bool = False,
          sentences: str | None = None) -> ScoreReport:
    """Read ``gold`` and ``system`` (directories; files for ``conll``) in format ``fmt`` and score
    them the official way. ``corrected_hipaa``: i2b2 2014 HIPAA rows include IDNUM.
    ``sentences``: MEDDOCAN's ``sentence_splitted/`` folder, for the leak score."""
    if fmt not in FORMATS:
        raise InputError(f"score: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if corrected_hipaa and fmt != "i2b2_2014":
        raise InputError("score: --corrected_hipaa applies to --format i2b2_2014 only")
    if sentences is not None and fmt != "meddocan":
        raise InputError("score: --sentences applies to --format meddocan only")
    if fmt == "i2b2_2014":
        from gatortron_jax.scoring import i2b2_2014

        return i2b2_2014.read_and_score(gold, system, corrected_hipaa=corrected_hipaa)
    if fmt == "n2c2_2018":
        from gatortron_jax.scoring import n2c2_2018

        return n2c2_2018.read_and_score(gold, system)
    if fmt == "meddocan":
        from gatortron_jax.scoring import meddocan

        return meddocan.read_and_score(gold, system, sentences_dir=sentences)
    if fmt == "conll":
        from gatortron_jax.scoring import conll

        return conll.score_conll(gold, system)
    from gatortron_jax.annotations.formats import read_brat_dir, read_i2b2_2010_dir, read_i2b2_2012_dir

    reader = {"brat": read_brat_dir, "i2b2_2010": read_i2b2_2010_dir, "i2b2_2012": read_i2b2_2012_dir}[fmt]
    return _entity_report(fmt, reader(gold), reader(system))


__all__ = ["FORMATS", "ScoreReport", "format_report", "score"]
