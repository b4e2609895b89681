"""Relation-extraction candidates from annotated documents, with entity markers as text.

Given :class:`~gatortron_jax.annotations.documents.Document` s with gold entities (and, for training
and evaluation, gold relations), :func:`build_relation_examples` makes one classification
example per candidate ordered entity pair ``(arg1, arg2)``:

1. **Sentences.** :func:`split_sentences` is deliberately simple: a sentence ends at a
   newline (``newline_boundary=True``, right for line-per-sentence notes; set it False for
   wrapped prose) or after ``.``, ``!`` or ``?`` that is followed by whitespace (so ``2.5 mg``
   does not split, but ``Dr. X`` does). Spans are trimmed of surrounding whitespace.
2. **Window.** A pair is a candidate when its two entities' sentences are at most
   ``window_sentences`` apart (0 = same sentence) and, if ``allowed_pairs`` is given, when
   ``(arg1.type, arg2.type)`` is in it (n2c2 2018: ``(Reason, Drug)``, ``(ADE, Drug)``, … —
   brat writes ``Reason-Drug Arg1:<Reason> Arg2:<Drug>``). With ``allowed_pairs=None`` every
   ordered pair of distinct entities is a candidate (both directions). Pairs whose spans
   overlap (e.g. an ADE and a Reason on the same words) are not candidates.
3. **Labels.** The label is the gold relation type for ``(arg1, arg2)``, else
   ``negative_label``. Gold relations that are not candidates (too far apart, type pair not
   allowed, overlapping arguments) are counted in :class:`RelationStats`, never dropped
   silently; so are duplicate gold relations. A relation that names an unknown entity id is
   an :class:`InputError` (file + relation id) or, with ``strict=False``, skipped and counted.
4. **Negative sampling** (training only): with ``negative_ratio=r`` at most ``round(r * #pos)``
   negatives are kept, chosen with ``numpy.random.default_rng(seed)`` over the whole list, so
   the result is deterministic; candidate order is preserved.
5. **Markers.** The example text is the window's sentences (from the first sentence holding an
   argument to the last) with ``[E1] `` / `` [/E1]`` around arg1 and ``[E2] `` / `` [/E2]``
   around arg2 (typed: ``[E1=Drug]`` …). Discontinuous mentions are marked over their whole
   extent. :class:`RelationExample` keeps the markers' character offsets in the example text
   and ``context_start`` (where the text starts in the note), and
   :meth:`RelationExample.to_document_offset` maps any non-marker character back, so a
   prediction maps back to the note and to a brat ``R`` line (:func:`relations_to_brat`).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import re
from typing import Iterable, Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.core.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

_SENT_END_RE = re.compile(r"[.!?](?=\s)")


def split_sentences(text: str, *, newline_boundary: bool = True) -> list[tuple[int, int]]:
    """Sentence character spans ``(start, end)`` (see the module docstring for the rules)."""
    cuts = {m.end() for m in _SENT_END_RE.finditer(text)}
    if newline_boundary:
        cuts.update(i for i, c in enumerate(text) if c == "\n")
    spans, prev = [], 0
    for cut in sorted(cuts) + [len(text)]:
        seg = text[prev:cut]
        stripped = seg.strip()
        if stripped:
            s = prev + (len(seg) - len(seg.lstrip()))
            spans.append((s, s + len(stripped)))
        prev = cut
    return spans


@dataclasses.dataclass(frozen=True)
class CandidateConfig:
    window_sentences: int = 0  # 0: same sentence; N: entities at most N sentences apart
    allowed_pairs: tuple[tuple[str, str], ...] | None = None  # (arg1 type, arg2 type); None: any
    negative_label: str = "none"
    negative_ratio: float | None = None  # None: keep every negative
    seed: int = 0
    typed_markers: bool = False
    newline_boundary: bool = True

    def __post_init__(self) -> None:
        if self.window_sentences < 0:
            raise ConfigError(f"window_sentences must be >= 0, got {self.window_sentences}")
        if self.negative_ratio is not None and self.negative_ratio < 0:
            raise ConfigError(f"negative_ratio must be >= 0 or None, got {self.negative_ratio}")


def marker_strings(arg: int, etype: str | None = None) -> tuple[str, str]:
    """Opening and closing marker for argument 1 or 2 (``[E1]``/``[/E1]`` or ``[E1=Drug]``/``[/E1=Drug]``)."""
    suffix = f"={etype}" if etype else ""
    return f"[E{arg}{suffix}]", f"[/E{arg}{suffix}]"


def marker_tokens(entity_types: Iterable[str] = (), typed: bool = False) -> list[str]:
    """Every marker string the examples can contain: add these to the vocabulary as specials."""
    if not typed:
        return [*marker_strings(1), *marker_strings(2)]
    out = []
    for t in sorted(set(entity_types)):
        out += [*marker_strings(1, t), *marker_strings(2, t)]
    return out


@dataclasses.dataclass(frozen=True)
class RelationExample:
    id: str  # "<doc id>:<arg1 id>:<arg2 id>"
    doc_id: str
    arg1: str  # entity ids in the document
    arg2: str
    arg1_type: str
    arg2_type: str
    label: str
    text: str  # the context with markers inserted
    context_start: int  # offset of the (unmarked) context in the document text
    e1_marker: tuple[int, int]  # (start of opening marker, end of closing marker) in ``text``
    e2_marker: tuple[int, int]
    e1_open_end: int  # end of the opening marker of arg1 (first char of the marked text + pad)
    e2_open_end: int
    insertions: tuple[tuple[int, int], ...]  # (position in ``text``, inserted length), in order
    source: str = ""

    @property
    def e1_start(self) -> int:
        """Character offset of arg1's opening marker in ``text`` (the "entity start" token)."""
        return self.e1_marker[0]

    @property
    def e2_start(self) -> int:
        return self.e2_marker[0]

    def to_document_offset(self, pos: int) -> int:
        """Map a character offset in ``text`` (not inside a marker) to the document text."""
        shift = 0
        for at, length in self.insertions:
            if pos >= at + length:
                shift += length
            elif pos >= at:
                raise ValueError(f"offset {pos} lies inside an inserted marker at {at}")
            else:
                break
        return self.context_start + pos - shift


@dataclasses.dataclass
class RelationStats:
    documents: int = 0
    candidates: int = 0
    positives: int = 0
    negatives_kept: int = 0
    negatives_dropped: int = 0
    gold_relations: int = 0
    gold_not_candidates: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped_relations: list = dataclasses.field(default_factory=list)  # (where, relation id, reason)
    labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def describe(self) -> str:
        s = (f"relations: {self.documents} documents, {self.candidates} candidates ({self.positives} positive, "
             f"{self.negatives_kept} negatives kept, {self.negatives_dropped} sampled out); "
             f"{self.gold_relations} gold relations")
        if self.gold_not_candidates:
            s += "; gold relations not candidates: " + ", ".join(
                f"{k} x{v}" for k, v in sorted(self.gold_not_candidates.items()))
        if self.skipped_relations:
            s += f"; skipped {len(self.skipped_relations)}: " + ", ".join(
                f"{w} ({r}: {why})" for w, r, why in self.skipped_relations[:10])
        return s


def _overlap(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def _mark(doc: Document, e1: Entity, e2: Entity, ctx: tuple[int, int], typed: bool) -> dict:
    inserts = []  # (doc offset, string, kind) kind orders ties: closings before openings
    o1, c1 = marker_strings(1, e1.type if typed else None)
    o2, c2 = marker_strings(2, e2.type if typed else None)
    inserts += [(e1.start, o1 + " ", 1, "o1"), (e1.end, " " + c1, 0, "c1"),
                (e2.start, o2 + " ", 1, "o2"), (e2.end, " " + c2, 0, "c2")]
    inserts.sort(key=lambda t: (t[0], t[2]))
    parts, pos, out_len = [], ctx[0], 0
    where: dict[str, tuple[int, int]] = {}
    insertions = []
    for off, s, _, kind in inserts:
        chunk = doc.text[pos:off]
        parts.append(chunk)
        out_len += len(chunk)
        where[kind] = (out_len, out_len + len(s))
        insertions.append((out_len, len(s)))
        parts.append(s)
        out_len += len(s)
        pos = off
    parts.append(doc.text[pos:ctx[1]])
    return dict(
        text="".join(parts), e1_marker=(where["o1"][0], where["c1"][1]), e2_marker=(where["o2"][0], where["c2"][1]),
        e1_open_end=where["o1"][1], e2_open_end=where["o2"][1], insertions=tuple(insertions))


def document_candidates(doc: Document, config: CandidateConfig, *, strict: bool = True,
                        stats: RelationStats | None = None) -> list[RelationExample]:
    """All candidate pairs of one document (no negative sampling)."""
    stats = stats if stats is not None else RelationStats()
    stats.documents += 1
    where = doc.source or doc.id
    entities = {e.id: e for e in doc.entities}
    sents = split_sentences(doc.text, newline_boundary=config.newline_boundary)
    sent_starts = [s for s, _ in sents]

    def sent_of(pos: int) -> int:
        return max(bisect.bisect_right(sent_starts, pos) - 1, 0)

    gold: dict[tuple[str, str], str] = {}
    for rel in doc.relations:
        missing = [a for a in (rel.arg1, rel.arg2) if a not in entities]
        if missing:
            msg = f"relation {rel.id} refers to unknown entity id(s) {missing}"
            if strict:
                raise InputError(f"{where}: document {doc.id!r}: {msg}")
            stats.skipped_relations.append((where, rel.id, msg))
            stats.gold_not_candidates["unknown entity id"] += 1
            logger.warning("%s: %s (skipped)", where, msg)
            continue
        stats.gold_relations += 1
        key = (rel.arg1, rel.arg2)
        if key in gold:
            reason = "duplicate relation" if gold[key] == rel.type else "conflicting relation on the same pair"
            stats.gold_not_candidates[reason] += 1
            stats.skipped_relations.append((where, rel.id, reason + " (first kept)"))
            continue
        gold[key] = rel.type
    allowed = None if config.allowed_pairs is None else {tuple(p) for p in config.allowed_pairs}
    ents = sorted(doc.entities, key=lambda e: (e.start, e.end, e.id))
    sent_idx = {e.id: sent_of(e.start) for e in ents}
    out: list[RelationExample] = []
    produced: set[tuple[str, str]] = set()
    for e1 in ents:
        for e2 in ents:
            if e1.id == e2.id:
                continue
            if allowed is not None and (e1.type, e2.type) not in allowed:
                continue
            if abs(sent_idx[e1.id] - sent_idx[e2.id]) > config.window_sentences or _overlap(e1, e2):
                continue
            lo, hi = min(sent_idx[e1.id], sent_idx[e2.id]), max(sent_idx[e1.id], sent_idx[e2.id])
            ctx = (min(sents[lo][0], e1.start, e2.start), max(sents[hi][1], e1.end, e2.end))
            label = gold.get((e1.id, e2.id), config.negative_label)
            produced.add((e1.id, e2.id))
            out.append(RelationExample(
                id=f"{doc.id}:{e1.id}:{e2.id}", doc_id=doc.id, arg1=e1.id, arg2=e2.id, arg1_type=e1.type,
                arg2_type=e2.type, label=label, context_start=ctx[0], source=where,
                **_mark(doc, e1, e2, ctx, config.typed_markers)))
    for (a1, a2), rtype in gold.items():
        if (a1, a2) in produced:
            continue
        e1, e2 = entities[a1], entities[a2]
        if allowed is not None and (e1.type, e2.type) not in allowed:
            reason = "argument type pair not allowed"
        elif _overlap(e1, e2):
            reason = "overlapping arguments"
        else:
            reason = "outside the sentence window"
        stats.gold_not_candidates[reason] += 1
    return out


def build_relation_examples(docs: Sequence[Document], config: CandidateConfig, *, strict: bool = True,
                            stats: RelationStats | None = None) -> tuple[list[RelationExample], RelationStats]:
    """Candidates of every document, then deterministic negative sampling (see module doc)."""
    stats = stats if stats is not None else RelationStats()
    examples: list[RelationExample] = []
    for doc in docs:
        examples += document_candidates(doc, config, strict=strict, stats=stats)
    neg = [i for i, ex in enumerate(examples) if ex.label == config.negative_label]
    n_pos = len(examples) - len(neg)
    keep = np.ones(len(examples), bool)
    if config.negative_ratio is not None:
        n_keep = min(len(neg), int(round(config.negative_ratio * n_pos)))
        rng = np.random.default_rng(config.seed)
        chosen = set(rng.choice(len(neg), size=n_keep, replace=False).tolist()) if n_keep else set()
        for j, i in enumerate(neg):
            keep[i] = j in chosen
    examples = [ex for ex, k in zip(examples, keep) if k]
    stats.candidates += len(examples)
    stats.positives += n_pos
    stats.negatives_kept += len(examples) - n_pos
    stats.negatives_dropped += len(neg) - (len(examples) - n_pos)
    for ex in examples:
        stats.labels[ex.label] += 1
    logger.info("%s", stats.describe())
    return examples, stats


def predictions_from_examples(examples: Sequence[RelationExample], labels: Sequence[str],
                              negative_label: str = "none") -> dict[str, list[tuple[str, str, str]]]:
    """``{doc id: [(arg1, arg2, type), ...]}`` for the examples predicted as a relation."""
    if len(examples) != len(labels):
        raise ValueError(f"{len(examples)} examples but {len(labels)} predicted labels")
    out: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    for ex, label in zip(examples, labels):
        if label != negative_label:
            out[ex.doc_id].append((ex.arg1, ex.arg2, label))
    return dict(out)


def relations_to_brat(doc: Document, predicted: Iterable[tuple[str, str, str]]) -> Document:
    """A copy of ``doc`` whose relations are ``predicted`` ``(arg1 id, arg2 id, type)`` triples,
    numbered ``R1…`` in order; write it with :func:`gatortron_jax.annotations.formats.brat.write_brat`
    (``R<n><TAB><type> Arg1:<arg1> Arg2:<arg2>``). Unknown entity ids are an InputError."""
    ids = {e.id for e in doc.entities}
    rels = []
    for n, (a1, a2, rtype) in enumerate(predicted, 1):
        missing = [a for a in (a1, a2) if a not in ids]
        if missing:
            raise InputError(f"document {doc.id!r}: predicted relation {n} refers to unknown entity id(s) {missing}")
        rels.append(Relation(id=f"R{n}", type=rtype, arg1=a1, arg2=a2))
    return dataclasses.replace(doc, entities=list(doc.entities), relations=rels)
