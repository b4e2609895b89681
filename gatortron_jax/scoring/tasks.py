"""The official figure for an in-memory evaluation (``evaluate``), by task.

``evaluate`` scores a model's predictions in memory with our own (stricter) scores; the
literature quotes the challenge's script. :func:`official_scores` computes, from the same gold
and predicted documents, what ``score`` prints for the files ``predict`` writes for that task,
so the two numbers are the same by construction (``tests/test_score_tasks.py`` checks it
through the writers). For relation extraction that is the document-level figure over every gold
relation (the headline RE score of ``evaluate`` is over candidate pairs, which misses gold
relations outside the candidate window). Tasks with no official scorer reproduced give ``None``.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats.conll import doc_to_tags
from gatortron_jax.annotations.formats.i2b2_deid import category_of

#: task name -> the ``score --format`` whose definitions apply.
TASK_FORMATS = {"i2b2_2014_deid": "i2b2_2014", "n2c2_2018_ner": "n2c2_2018", "n2c2_2018_re": "n2c2_2018",
                "conll_ner": "conll"}


def _as_written_2014(docs: Sequence[Document]) -> list[Document]:
    """Documents labelled by TYPE, relabelled ``TAG/TYPE`` as the 2014 XML writer writes them."""
    return [Document(d.id, d.text, [Entity(e.id, f"{category_of(e.type)}/{e.type}", e.spans, e.text)
                                    for e in d.entities], [], d.source) for d in docs]


def _conll_rows(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, dict]:
    """conlleval over the IOB2 tags of each sentence's whitespace tokens (as ``write_conll``
    writes them), gold and predicted."""
    from gatortron_jax.scoring.conll import conlleval_counts, rows_of

    by_id = {d.id: d for d in pred}
    g_stream: list = []
    p_stream: list = []
    for g in gold:
        spans = [m.span() for m in re.finditer(r"\S+", g.text)]
        p = by_id.get(g.id, Document(g.id, g.text))
        if g_stream:
            g_stream.append(None)
            p_stream.append(None)
        g_stream += doc_to_tags(g, spans)[0]
        p_stream += doc_to_tags(p, spans)[0]
    return rows_of(conlleval_counts(g_stream, p_stream))


#: the row a paper quotes, per format (n2c2 2018: concepts for NER, relations for RE).
HEADLINES = {"i2b2_2014": ("Strict",), "n2c2_2018": ("Concepts overall (strict)", "Relations overall (strict)"),
             "conll": ("overall",)}


def official_headline(official: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"format", "row", "f1"}``: the headline figure of an :func:`official_scores` result."""
    if not official:
        return None
    row = next(r for r in HEADLINES[official["format"]] if r in official["rows"])
    return {"format": official["format"], "row": row, "f1": official["rows"][row]["f1"]}


def official_scores(task: str, gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, Any] | None:
    """``{"format": ..., "rows": {...}}`` as ``score`` reports them, or None for other tasks."""
    fmt = TASK_FORMATS.get(task)
    if fmt is None:
        return None
    by_id = {d.id: d for d in pred}
    if fmt == "i2b2_2014":
        from gatortron_jax.scoring import i2b2_2014

        g = _as_written_2014(gold)
        p = _as_written_2014([by_id.get(d.id, Document(d.id, d.text)) for d in gold])
        rows = i2b2_2014.score_pairs(list(zip(g, p)))
    elif fmt == "n2c2_2018":
        from gatortron_jax.scoring import n2c2_2018

        rows = n2c2_2018.score_pairs([(d, by_id.get(d.id, Document(d.id, d.text))) for d in gold])
        relation = n2c2_2018.RELATION_TYPES + ("Relations",)
        # NER predicts concepts only; RE predicts relations between the gold concepts
        keep_relations = task.endswith("_re")
        rows = {k: v for k, v in rows.items() if k.startswith(relation) == keep_relations}
    else:
        rows = _conll_rows(gold, pred)
    return {"format": fmt, "rows": rows}
