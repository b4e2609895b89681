"""``evaluate`` at the four decodings of a de-id model dir: argmax and the stored operating
point, each for the model alone and with the stored pattern recipe.

Why: a data team picks a decoding for a release by what leaks, and a model dir that carries an
operating point and patterns is run with them by ``predict``/``deid``. The headline ``evaluate``
score is argmax, model alone; this table says what the other three give on the same notes, in
the same units: strict entity P/R/F1 (MEDDOCAN's subtrack 1 for ``meddocan_deid``, with the
official leak score when the split has the organisers' ``sentence_splitted/``), and binary span
recall/precision under the leak-free criterion of :func:`operating_point.span_recall`.

One decoder: the notes run through the model once (:class:`operating_point.DevRun`) and each
decoding is :meth:`DevRun.spans` at its thresholds and matcher — the code that chose the
operating point and that ``ScoringTagger`` runs in ``predict``/``deid``.

The misses report (:func:`misses`): the gold spans still not covered at a decoding, by type,
with their length in characters and whether a pattern recognizer of the recipe can produce
that type — never their text.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.patterns import RECOGNIZERS, PatternMatcher, PatternRecipe, Span
from gatortron_jax.evaluation.ner_metrics import entity_scores
from gatortron_jax.inference.operating_point import DevRun, OperatingPoint, coverage, recalled, span_recall

MEDDOCAN_TASK = "meddocan_deid"


def decodings(op: OperatingPoint | None, recipe: PatternRecipe | None) -> dict[str, tuple]:
    """Name → (thresholds or None, recipe or None) for every decoding the model dir supports."""
    out: dict[str, tuple] = {"argmax, model": (None, None)}
    if recipe is not None:
        out["argmax, model + patterns"] = (None, recipe)
    if op is not None:
        out["operating point, model"] = (dict(op.thresholds), None)
        if recipe is not None:
            out["operating point, model + patterns"] = (dict(op.thresholds), recipe)
    return out


def sentences_dir_of(split_path: str) -> str | None:
    """MEDDOCAN's ``<split>/sentence_splitted/`` beside ``<split>/xml`` (or brat), when present."""
    cand = os.path.join(os.path.dirname(os.path.normpath(split_path)), "sentence_splitted")
    return cand if os.path.isdir(cand) else None


def as_documents(gold: Sequence[Document], spans: Sequence[Sequence[Span]]) -> list[Document]:
    return [Document(g.id, g.text, [Entity(f"T{k}", s.type, ((s.start, s.end),), g.text[s.start:s.end])
                                    for k, s in enumerate(doc, 1)], [], g.source)
            for g, doc in zip(gold, spans)]


def strict_scores(task: str, gold: Sequence[Document], pred: Sequence[Document],
                  sentences_dir: str | None = None) -> dict[str, Any]:
    """Strict entity micro P/R/F1 (+ ``leak`` where defined) and the convention it follows."""
    if task == MEDDOCAN_TASK:
        from gatortron_jax.scoring.meddocan import score_pairs

        by_id = {d.id: d for d in pred}
        st1 = score_pairs([(g, by_id[g.id]) for g in gold], sentences_dir)["Subtrack 1 [NER]"]
        return {"convention": "MEDDOCAN subtrack 1 [NER]" + (" + leak" if "leak" in st1 else ""), **st1}
    return {"convention": "strict entity (seqeval-style)", **entity_scores(list(gold), list(pred))["strict"]["micro"]}


def misses(gold: Sequence[Document], spans: Sequence[Sequence[Span]],
           recipe: PatternRecipe | None) -> dict[str, Any]:
    """Gold spans not covered at a decoding: per type the count, their lengths (characters)
    and whether the recipe has a recognizer producing that type. No text."""
    produced = {recipe.label(RECOGNIZERS[n].kind) for n in recipe.recognizers} if recipe is not None else set()
    produced |= {e.type for e in recipe.deny} if recipe is not None else set()
    by_type: dict[str, dict[str, Any]] = {}
    for doc, found in zip(gold, spans):
        cov = coverage(doc.text, [(x.start, x.end) for x in found])
        for e in doc.entities:
            for s, t in e.spans:
                if recalled(doc.text, cov, s, t):
                    continue
                row = by_type.setdefault(e.type, {"missed": 0, "lengths": [], "recognizer": e.type in produced})
                row["missed"] += 1
                row["lengths"].append(t - s)
    for row in by_type.values():
        row["lengths"].sort()
    return dict(sorted(by_type.items(), key=lambda kv: -kv[1]["missed"]))


def evaluate_decodings(dev: DevRun, task: str, op: OperatingPoint | None, recipe: PatternRecipe | None, *,
                       sentences_dir: str | None = None) -> dict[str, Any]:
    """Every decoding's scores on ``dev``'s notes, the recipe they ran with, and the misses at
    the stored point with patterns (the decoding ``predict``/``deid`` run by default)."""
    rows, last = {}, None
    for name, (thresholds, rec) in decodings(op, recipe).items():
        spans = dev.spans(thresholds, PatternMatcher(rec) if rec is not None else None)
        st = strict_scores(task, dev.gold, as_documents(dev.gold, spans), sentences_dir)
        binary = span_recall(dev.gold, [[(s.start, s.end) for s in doc] for doc in spans])
        rows[name] = {"strict": st, "span_recall": binary["recall"], "span_precision": binary["precision"],
                      "missed": binary["missed"], "predicted": binary["predicted"], "gold": binary["gold"]}
        last = (name, spans, rec)
    return {"rows": rows,
            "recipe": {"operating_point": None if op is None else {"thresholds": dict(op.thresholds),
                                                                   "target_recall": op.target_recall},
                       "patterns": None if recipe is None else recipe.to_dict()},
            "misses": {"decoding": last[0], "by_type": misses(dev.gold, last[1], last[2])}}


def format_decodings(table: Mapping[str, Any]) -> str:
    """The small markdown table ``evaluate`` prints."""
    first = next(iter(table["rows"].values()))["strict"]
    leak = "leak" in first
    head = ["decoding", "P", "R", "F1"] + (["leak"] if leak else []) + ["span R", "span P", "missed"]
    lines = [f"decodings ({first['convention']}; span R/P: binary, every letter/digit of a gold span covered):",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in table["rows"].items():
        st = r["strict"]
        cells = [name, *(f"{st[k]:.4f}" for k in ("precision", "recall", "f1"))]
        cells += [f"{st['leak']:.4f}"] if leak else []
        cells += [f"{r['span_recall']:.4f}", f"{r['span_precision']:.4f}", str(r["missed"])]
        lines.append("| " + " | ".join(cells) + " |")
    rec = table["recipe"]
    if rec["patterns"]:
        lines.append(f"patterns: recognizers {rec['patterns']['recognizers']}, type map {rec['patterns']['type_map']}, "
                     f"{len(rec['patterns']['deny'])} deny / {len(rec['patterns']['allow'])} allow entries")
    if rec["operating_point"]:
        lines.append(f"operating point (target recall {rec['operating_point']['target_recall']}): thresholds "
                     f"{rec['operating_point']['thresholds']}")
    m = table["misses"]
    listed = ", ".join(f"{t} {v['missed']}{' (a recognizer makes it)' if v['recognizer'] else ''}"
                       for t, v in m["by_type"].items())
    lines.append(f"missed at '{m['decoding']}', by type: {listed or 'none'}")
    return "\n".join(lines)
