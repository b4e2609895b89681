"""Entity-level precision / recall / F1, strict and lenient, micro and per type.

- **strict**: a predicted entity is correct when a gold entity has the same type and exactly
  the same character spans (the set of ``(document, type, spans)`` is compared, as
  ``seqeval``'s strict mode compares ``(sentence, type, start, end)``).
- **lenient**: a predicted entity is correct when it overlaps (by at least one character) a
  gold entity of the same type; matching is one-to-one, greedy by overlap size (ties broken by
  position), so each gold entity is credited at most once and each prediction matches at most
  one gold entity.

Documents are paired by id. A gold document without predictions counts all its entities as
false negatives; a predicted document id that is not in the gold set is an
:class:`InputError`. Precision, recall and F1 are 0.0 when undefined (as seqeval does).
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import InputError

_PREFIXES = set("IOBESUL")


def bio_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of an IOB2 tag sequence as ``(type, start_token, end_token_exclusive)``.

    Same semantics as ``seqeval`` with ``mode="strict", scheme=IOB2``: an entity starts at
    ``B-X`` and extends over the following ``I-X``; an ``I-`` that does not continue an entity
    of its own type is not part of any entity. Types are the text after the prefix with
    surrounding ``-`` stripped (``_`` when empty).
    """
    spans: list[tuple[str, int, int]] = []
    i, n = 0, len(tags)
    while i < n:
        tag = tags[i]
        prefix = tag[:1]
        if prefix not in _PREFIXES or prefix not in "IOB":
            raise ValueError(f"invalid IOB2 tag {tag!r} at position {i}")
        if prefix != "B":
            i += 1
            continue
        typ = tag[1:].strip("-") or "_"
        j = i + 1
        while j < n and tags[j][:1] == "I" and (tags[j][1:].strip("-") or "_") == typ:
            j += 1
        spans.append((typ, i, j))
        i = j
    return spans


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def _key(e: Entity) -> tuple[str, tuple[tuple[int, int], ...]]:
    return e.type, tuple(sorted((int(s), int(t)) for s, t in e.spans))


def _overlap(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> int:
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def _lenient_matches(gold: list[tuple[str, tuple]], pred: list[tuple[str, tuple]]) -> list[tuple[int, int]]:
    pairs = []
    for gi, (gt, gs) in enumerate(gold):
        for pi, (pt, ps) in enumerate(pred):
            if gt == pt:
                ov = _overlap(gs, ps)
                if ov > 0:
                    pairs.append((-ov, gs, ps, gi, pi))
    pairs.sort()
    used_g, used_p, matches = set(), set(), []
    for _, _, _, gi, pi in pairs:
        if gi not in used_g and pi not in used_p:
            used_g.add(gi)
            used_p.add(pi)
            matches.append((gi, pi))
    return matches


def index_by_id(docs: Iterable[Document], what: str) -> dict[str, Document]:
    """``{id: document}``; a repeated id is one :class:`InputError` naming the file (or ``what``)."""
    out: dict[str, Document] = {}
    for d in docs:
        if d.id in out:
            raise InputError(f"{d.source or what + ' documents'}: duplicate document id {d.id!r}")
        out[d.id] = d
    return out


def entity_scores(gold: list[Document], pred: list[Document], *,
                  types: list[str] | None = None) -> dict:
    """Strict and lenient entity scores; see the module docstring.

    Returns ``{"strict": {"micro": {...}, "per_type": {type: {...}}}, "lenient": {...}}`` where
    each ``{...}`` holds ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``. With
    ``types``, only entities of those types are scored and ``per_type`` lists exactly them;
    otherwise ``per_type`` lists every type in gold or predictions.
    """
    gold_by_id = index_by_id(gold, "gold")
    pred_by_id = index_by_id(pred, "predicted")
    unknown = sorted(set(pred_by_id) - set(gold_by_id))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(f"{len(unknown)} predicted document id(s) not in the gold set: {shown}")
    keep = set(types) if types is not None else None
    counts = {m: collections.defaultdict(lambda: [0, 0, 0]) for m in ("strict", "lenient")}
    seen_types: set[str] = set()
    for doc_id, gdoc in gold_by_id.items():
        pdoc = pred_by_id.get(doc_id)
        if pdoc is not None and gdoc.text and pdoc.text and gdoc.text != pdoc.text:
            raise InputError(f"document {doc_id!r}: predicted text differs from the gold text")
        gkeys = sorted({_key(e) for e in gdoc.entities if keep is None or e.type in keep})
        pkeys = sorted({_key(e) for e in (pdoc.entities if pdoc else []) if keep is None or e.type in keep})
        seen_types.update(t for t, _ in gkeys)
        seen_types.update(t for t, _ in pkeys)
        strict = counts["strict"]
        gset, pset = set(gkeys), set(pkeys)
        for t, _ in gset & pset:
            strict[t][0] += 1
        for t, _ in pset - gset:
            strict[t][1] += 1
        for t, _ in gset - pset:
            strict[t][2] += 1
        lenient = counts["lenient"]
        matched = _lenient_matches(gkeys, pkeys)
        mg = {g for g, _ in matched}
        mp = {p for _, p in matched}
        for gi, _ in matched:
            lenient[gkeys[gi][0]][0] += 1
        for pi, (t, _) in enumerate(pkeys):
            if pi not in mp:
                lenient[t][1] += 1
        for gi, (t, _) in enumerate(gkeys):
            if gi not in mg:
                lenient[t][2] += 1
    type_list = list(types) if types is not None else sorted(seen_types)
    result = {}
    for mode, c in counts.items():
        tot = [sum(c[t][k] for t in c) for k in range(3)]
        result[mode] = {"micro": _prf(*tot), "per_type": {t: _prf(*c[t]) for t in type_list}}
    return result


def format_table(scores: dict) -> str:
    """A plain-text table: one row per type plus the micro average, strict and lenient P/R/F1
    (in percent) with strict TP/FP/FN."""
    strict, lenient = scores["strict"], scores["lenient"]
    rows = [(t, strict["per_type"][t], lenient["per_type"].get(t)) for t in strict["per_type"]]
    rows.append(("micro", strict["micro"], lenient["micro"]))
    width = max([len("type")] + [len(r[0]) for r in rows])
    head = (f"{'type':<{width}}  {'strict P':>8} {'R':>6} {'F1':>6}  {'lenient P':>9} {'R':>6} "
            f"{'F1':>6}  {'TP':>6} {'FP':>6} {'FN':>6}")
    lines = [head, "-" * len(head)]
    for i, (name, s, lz) in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("-" * len(head))
        lz = lz or _prf(0, 0, 0)
        lines.append(f"{name:<{width}}  {100 * s['precision']:8.2f} {100 * s['recall']:6.2f} "
                     f"{100 * s['f1']:6.2f}  {100 * lz['precision']:9.2f} {100 * lz['recall']:6.2f} "
                     f"{100 * lz['f1']:6.2f}  {s['tp']:6d} {s['fp']:6d} {s['fn']:6d}")
    return "\n".join(lines) + "\n"
