"""MEDDOCAN (Spanish clinical de-identification): the figures of its CODALAB evaluation script.

Definitions from ``PlanTL-SANIDAD/SPACCC_MEDDOCAN`` ``scripts/CODALAB-Evaluation-script``
(``classes.py``), reimplemented here, over either release format: brat, or the i2b2-style XML
under a ``<MEDDOCAN>`` root (the script reads either; both carry the same character offsets):

* **Subtrack 1** (NER): the set of ``(type, start, end)`` per note; TP/FP/FN are set
  differences (a duplicated mention counts once); micro over notes.
* **Subtrack 2 strict**: the set of ``(start, end)``, type ignored.
* **Subtrack 2 merged**: spans sorted and merged whenever only non-alphanumeric characters
  lie between one and the next (an overlapping next span merges too, taking its end); TP =
  (strict ∩) ∪ (merged ∩); an unmatched strict span inside any of those TP spans is not
  counted as FP (system) or FN (gold).
* **Leak** (subtrack 1): FN mentions / sentences, summed over notes, where a note's sentence
  count is the number of lines of the organisers' ``sentence_splitted/<id>.ann`` (``--sentences
  DIR``); without it the leak is not reported (the script prints ``NA``).
* Only notes in both folders are scored (the script refuses to score at all when a gold note
  has no system file: "You did not annotate all data"; we score and warn).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from gatortron_jax.annotations.documents import Document
from gatortron_jax.annotations.formats.brat import read_brat_dir
from gatortron_jax.core.errors import InputError
from gatortron_jax.scoring.common import Pairing, ScoreReport, missing_warning, pair_documents, prf, with_empty_system

Span = tuple[int, int]


def merge_spans(text: str, spans: Sequence[Span]) -> list[Span]:
    """The script's merged spans: sorted; each joins the previous one when the text between
    them has no alphanumeric character (``str.isalnum``)."""
    merged: list[Span] = []
    for y in sorted(spans):
        if merged and not any(ch.isalnum() for ch in text[merged[-1][1]:y[0]]):
            merged[-1] = (merged[-1][0], y[1])
        else:
            merged.append(y)
    return merged


def _mentions(doc: Document) -> list[tuple[str, int, int]]:
    return [(e.type, e.spans[0][0], e.spans[0][1]) for e in doc.entities]


def _counts_ner(g: Document, s: Document) -> tuple[int, int, int]:
    gs, ss = set(_mentions(g)), set(_mentions(s))
    return len(gs & ss), len(ss - gs), len(gs - ss)


def _counts_strict(g: Document, s: Document) -> tuple[int, int, int]:
    gs = {m[1:] for m in _mentions(g)}
    ss = {m[1:] for m in _mentions(s)}
    return len(gs & ss), len(ss - gs), len(gs - ss)


def _counts_merged(g: Document, s: Document) -> tuple[int, int, int]:
    g_spans = [m[1:] for m in _mentions(g)]
    s_spans = [m[1:] for m in _mentions(s)]
    gs, ss = set(g_spans), set(s_spans)
    hit = (gs & ss) | (set(merge_spans(g.text, g_spans)) & set(merge_spans(s.text, s_spans)))

    def inside(span: Span) -> bool:
        return any(span[0] >= h[0] and span[1] <= h[1] for h in hit)

    fp = [x for x in ss - gs if not inside(x)]
    fn = [x for x in gs - ss if not inside(x)]
    return len(hit), len(fp), len(fn)


def count_sentences(path: str) -> int:
    """Lines of an organisers' sentence file, counted as Python's text-mode iteration does."""
    try:
        with open(path, encoding="utf-8", newline=None) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        raise InputError(f"{path}: sentence file not found (needed for the leak score)") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None


def _micro(pairs: Sequence[tuple[Document, Document]], counts) -> dict[str, Any]:
    per_doc = [counts(g, s) for g, s in pairs]
    return prf(*(sum(c[k] for c in per_doc) for k in range(3)))


def score_pairs(pairs: Sequence[tuple[Document, Document]], sentences_dir: str | None = None) -> dict[str, dict]:
    """Subtrack 1 (with ``leak`` when ``sentences_dir`` is given), subtrack 2 strict and merged."""
    st1 = _micro(pairs, _counts_ner)
    if sentences_dir is not None:
        n = sum(count_sentences(os.path.join(sentences_dir, g.id + ".ann")) for g, _ in pairs)
        st1["leak"] = st1["fn"] / n if n else 0.0
    return {"Subtrack 1 [NER]": st1, "Subtrack 2 [strict]": _micro(pairs, _counts_strict),
            "Subtrack 2 [merged]": _micro(pairs, _counts_merged)}


def score_meddocan(gold: Sequence[Document], system: Sequence[Document], *,
                   sentences_dir: str | None = None) -> ScoreReport:
    pairing: Pairing = pair_documents(gold, system)
    report = ScoreReport(format="meddocan", official="MEDDOCAN CODALAB evaluate.py (SPACCC_MEDDOCAN)",
                         documents=len(pairing.pairs), rows=score_pairs(pairing.pairs, sentences_dir),
                         headline="Subtrack 1 [NER]")
    if sentences_dir is None:
        report.notes.append("no --sentences DIR: leak score not computed (the script prints NA)")
    every = _micro(with_empty_system(pairing), _counts_ner) if pairing.missing else None
    missing_warning(report, pairing, every,
                    official_behaviour="refuses to score ('You did not annotate all data'); notes in both folders")
    return report


def read_release(path: str) -> list[Document]:
    """A split folder of the release (``brat/`` preferred, else ``xml/``), or a folder of brat
    (``.ann`` + ``.txt``) or of i2b2-style XML files; labels are the annotations' TYPEs."""
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    for sub, reader in (("brat", read_brat_dir), ("xml", read_i2b2_2014_dir)):
        if os.path.isdir(os.path.join(path, sub)):
            return reader(os.path.join(path, sub))
    names = os.listdir(path) if os.path.isdir(path) else []
    if not any(n.endswith(".ann") for n in names) and any(n.endswith(".xml") for n in names):
        return read_i2b2_2014_dir(path)
    return read_brat_dir(path)


def read_and_score(gold: str, system: str, *, sentences_dir: str | None = None) -> ScoreReport:
    """Read both folders (brat or XML, see :func:`read_release`) and score them."""
    return score_meddocan(read_release(gold), read_release(system), sentences_dir=sentences_dir)
