"""Long clinical notes → model windows → back to character spans.

Everything here is plain Python/numpy on character offsets (``Document`` convention):

1. :class:`~gatortron_jax.text.offsets.OffsetTokenizer` splits a note into vocabulary
   tokens, each with the character span it came from.
2. :func:`plan_windows` cuts the token sequence into windows of at most ``max_tokens``
   (the model length minus [CLS]/[SEP]) that end at sentence boundaries when possible, else
   at word boundaries, overlapping by about ``overlap`` tokens — the one planner
   (``text.windows``) with a cut quality read from the note's characters.
3. :func:`token_owners` gives every token exactly one owning window — the one in which
   it sits farthest from an edge (most context on both sides) — so merged predictions
   cover each token, hence each character, exactly once.
4. :func:`encode_entity_labels` turns entity spans into BIO/BIOES token labels and counts
   what could not be encoded (overlapping entities, spans no token covers, spans that
   start or end inside a token) — these are reported, never silently dropped.
5. :func:`decode_tags` repairs invalid tag sequences (``O I-x`` → starts an entity,
   ``B-x I-y`` → new entity) and :func:`tags_to_entities` maps token runs to characters.

First-subword labelling (``NERDataConfig.label_all_subwords=False``, the HF recipe): words are
maximal runs of tokens without whitespace or punctuation between them (:func:`word_starts`, as
BERT's basic tokenizer splits); only a word's first token carries a label and a loss weight,
and decoding reads the first token of each word with seqeval's strict rules
(:func:`decode_tags_strict`: an ``I-`` that does not continue an open entity is dropped).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.text.offsets import OffsetTokenizer
from gatortron_jax.text.windows import max_context_owners, plan_windows as plan_token_windows

__all__ = ["OffsetTokenizer"]  # re-exported: callers tokenize and window through this module

SCHEMES = ("BIO", "BIOES")
_SENTENCE_END = ".!?;"


# ----------------------------------------------------------------------------- tokenizer


# ----------------------------------------------------------------------------- windows


@dataclasses.dataclass(frozen=True)
class Window:
    start: int  # first token index (inclusive)
    end: int  # last token index (exclusive)


def _boundary_quality(text: str, starts: np.ndarray, ends: np.ndarray, b: int) -> int:
    """How good a cut before token ``b`` is: 2 sentence end, 1 between words, 0 inside a word."""
    gap = text[ends[b - 1]:starts[b]]
    if not gap:
        return 0
    if "\n" in gap or text[ends[b - 1] - 1] in _SENTENCE_END:
        return 2
    return 1


def plan_windows(
    text: str, starts: np.ndarray, ends: np.ndarray, max_tokens: int, overlap: int = 32
) -> list[Window]:
    """Windows of ≤ ``max_tokens`` tokens covering every token, consecutive ones overlapping.

    A window ends at the latest sentence boundary in its second half, else the latest word
    boundary, else at the length limit. The next one starts ``overlap`` tokens earlier (moved
    forward to a word start), so tokens near a cut are seen with context in some window.
    """
    n = len(starts)
    if max_tokens < 2:
        raise ConfigError(f"window length {max_tokens} is too small")
    if n == 0:
        return []
    spans = plan_token_windows(
        n, max_tokens, max(0, min(overlap, max_tokens // 2)),
        cut_quality=lambda b: _boundary_quality(text, starts, ends, b), align_last=False,
    )
    return [Window(a, b) for a, b in spans]


def token_owners(windows: Sequence[Window], n_tokens: int) -> np.ndarray:
    """For each token, the index of the window that predicts it (most central; ties → first)."""
    owner = max_context_owners(n_tokens, [(w.start, w.end) for w in windows])
    if n_tokens and (owner < 0).any():
        raise AssertionError(f"{int((owner < 0).sum())} tokens are in no window")
    return owner


def merge_window_predictions(
    windows: Sequence[Window], window_preds: Sequence[np.ndarray], n_tokens: int
) -> np.ndarray:
    """Per-token predictions: each token takes the value from its owning window."""
    owner = token_owners(windows, n_tokens)
    out = np.zeros(n_tokens, np.int64)
    for w_index, (w, pred) in enumerate(zip(windows, window_preds)):
        pred = np.asarray(pred)[: w.end - w.start]
        mine = owner[w.start:w.end] == w_index
        out[w.start:w.end][mine] = pred[mine]
    return out


# ----------------------------------------------------------------------------- labels


def label_list(entity_types: Iterable[str], scheme: str = "BIO") -> list[str]:
    """``["O", "B-a", "I-a", ...]`` (plus ``E-``/``S-`` for BIOES), types sorted."""
    if scheme not in SCHEMES:
        raise ConfigError(f"label scheme {scheme!r}: use one of {SCHEMES}")
    prefixes = "BI" if scheme == "BIO" else "BIES"
    return ["O"] + [f"{p}-{t}" for t in sorted(set(entity_types)) for p in prefixes]


@dataclasses.dataclass
class LabelStats:
    entities: int = 0
    encoded: int = 0
    overlapping: int = 0  # conflicts: entity shares tokens with an earlier-encoded one (skipped)
    no_tokens: int = 0  # no token overlaps the span (e.g. whitespace-only span)
    boundary_inside_token: int = 0  # encoded, but a span edge falls inside a token
    unknown_type: int = 0
    no_word_start: int = 0  # first-subword labelling: the span starts no word (inside one word)

    def add(self, other: "LabelStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def encode_entity_labels(
    entities: Sequence[Entity],
    starts: np.ndarray,
    ends: np.ndarray,
    label_to_id: dict[str, int],
    scheme: str = "BIO",
    word_start: np.ndarray | None = None,
) -> tuple[np.ndarray, LabelStats]:
    """Token label ids for ``entities`` (each fragment of a discontinuous entity separately).

    Entities are placed longest-first within start order; an entity whose tokens are already
    taken is skipped and counted in ``stats.overlapping``. With ``word_start`` (first-subword
    labelling) the scheme applies to the entity's word-initial tokens only; the other tokens
    keep label 0 and are left out of the loss by ``window_features``.
    """
    n = len(starts)
    labels = np.zeros(n, np.int32)
    taken = np.zeros(n, bool)
    stats = LabelStats()
    order = sorted(entities, key=lambda e: (e.start, -(e.end - e.start), e.id))
    for ent in order:
        stats.entities += 1
        if f"B-{ent.type}" not in label_to_id:
            stats.unknown_type += 1
            continue
        runs = []
        for s, e in ent.spans:
            idx = np.nonzero((starts < e) & (ends > s))[0]
            if len(idx):
                runs.append((idx, s, e))
        if not runs:
            stats.no_tokens += 1
            continue
        if word_start is not None and any(not word_start[idx].any() for idx, _, _ in runs):
            stats.no_word_start += 1
            continue
        if any(taken[idx].any() for idx, _, _ in runs):
            stats.overlapping += 1
            continue
        stats.encoded += 1
        for idx, s, e in runs:
            if starts[idx[0]] != s or ends[idx[-1]] != e:
                stats.boundary_inside_token += 1
            taken[idx] = True
            if word_start is not None:  # the scheme over the span's words: their first tokens only
                idx = idx[word_start[idx]]
                labels[idx] = label_to_id[f"I-{ent.type}"]
            first, last = int(idx[0]), int(idx[-1])
            if scheme == "BIOES" and first == last:
                labels[first] = label_to_id[f"S-{ent.type}"]
                continue
            if word_start is None:
                labels[first:last + 1] = label_to_id[f"I-{ent.type}"]
            labels[first] = label_to_id[f"B-{ent.type}"]
            if scheme == "BIOES":
                labels[last] = label_to_id[f"E-{ent.type}"]
    return labels, stats


def _is_punctuation(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace()


def word_starts(text: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True for a token that begins a word: the first token, one after whitespace (a gap in the
    offsets), and any token at or right after punctuation (BERT's basic tokenizer splits there)."""
    n = len(starts)
    out = np.ones(n, bool)
    for i in range(1, n):
        out[i] = bool(starts[i] > ends[i - 1] or _is_punctuation(text[starts[i]])
                      or _is_punctuation(text[ends[i - 1] - 1]))
    return out


def decode_tags_strict(tags: Sequence[str], scheme: str = "BIO") -> list[tuple[int, int, str]]:
    """Runs ``(first, last_inclusive, type)`` under seqeval's strict IOB2 / IOBES rules.

    An entity is ``B-x (I-x)*`` (BIO) or ``B-x (I-x)* E-x`` / ``S-x`` (BIOES); an ``I-``/``E-``
    that does not continue an open entity of its type is dropped, as is an unfinished BIOES run.
    """
    bioes = scheme == "BIOES"
    out: list[tuple[int, int, str]] = []
    cur: list | None = None
    for i, tag in enumerate(tags):
        prefix, _, typ = tag.partition("-")
        if tag == "O" or not typ:
            if cur and not bioes:
                out.append(tuple(cur))
            cur = None
        elif prefix == "S":
            if cur and not bioes:
                out.append(tuple(cur))
            out.append((i, i, typ))
            cur = None
        elif prefix == "B":
            if cur and not bioes:
                out.append(tuple(cur))
            cur = [i, i, typ]
        elif cur is not None and cur[2] == typ:  # I- or E- continuing the open entity
            cur[1] = i
            if prefix == "E":
                out.append(tuple(cur))
                cur = None
        else:  # an orphan I-/E-: no entity (and it ends the open one)
            if cur and not bioes:
                out.append(tuple(cur))
            cur = None
    if cur and not bioes:
        out.append(tuple(cur))
    return out


def decode_tags(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Token runs ``(first, last_inclusive, type)`` from BIO/BIOES tags, repairing invalid ones.

    Repairs: an ``I-``/``E-`` that does not continue an open entity of the same type starts
    one; ``B-``/``S-`` always start one; ``E-``/``S-`` close it; ``O`` closes it.
    """
    out: list[tuple[int, int, str]] = []
    cur: list | None = None
    for i, tag in enumerate(tags):
        prefix, _, typ = tag.partition("-")
        if tag == "O" or not typ:
            if cur:
                out.append(tuple(cur))
            cur = None
            continue
        if prefix in ("B", "S") or cur is None or cur[2] != typ:
            if cur:
                out.append(tuple(cur))
            cur = [i, i, typ]
        else:
            cur[1] = i
        if prefix in ("E", "S"):
            out.append(tuple(cur))
            cur = None
    if cur:
        out.append(tuple(cur))
    return out


def tags_to_entities(
    tags: Sequence[str], starts: np.ndarray, ends: np.ndarray, text: str = "", prefix: str = "T",
    word_start: np.ndarray | None = None, scheme: str = "BIO", repair: bool = False,
) -> list[Entity]:
    """Decoded token runs → character-offset entities (ids ``T1``, ``T2``, ...).

    With ``word_start`` (first-subword models) the tags of word-initial tokens are decoded
    strictly (:func:`decode_tags_strict`) and each run covers its words' characters in full;
    ``repair`` decodes them with :func:`decode_tags` instead (an orphan ``I-`` starts an entity:
    the recall operating point, ``inference/operating_point.py``, adds tokens as ``I-``).
    """
    if word_start is None:
        runs = decode_tags(tags)
    else:
        first = np.nonzero(word_start)[0]
        last = np.append(first[1:] - 1, len(tags) - 1)
        word_tags = [tags[i] for i in first]
        decoded = decode_tags(word_tags) if repair else decode_tags_strict(word_tags, scheme)
        runs = [(int(first[a]), int(last[b]), typ) for a, b, typ in decoded]
    ents = []
    for k, (a, b, typ) in enumerate(runs, start=1):
        s, e = int(starts[a]), int(ends[b])
        ents.append(Entity(f"{prefix}{k}", typ, ((s, e),), text[s:e] if text else ""))
    return ents


# ----------------------------------------------------------------------------- features


@dataclasses.dataclass
class EncodedDocument:
    doc: Document
    ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    windows: list[Window]
    labels: np.ndarray | None = None
    word_start: np.ndarray | None = None  # set for first-subword labelling and decoding


def encode_documents(
    docs: Sequence[Document],
    tokenizer: OffsetTokenizer,
    max_length: int,
    overlap: int,
    label_to_id: dict[str, int] | None = None,
    scheme: str = "BIO",
    first_subword: bool = False,
) -> tuple[list[EncodedDocument], LabelStats]:
    """Tokenize, window and (when ``label_to_id`` is given) label every document.

    ``first_subword``: label (and later decode) only each word's first token (HF recipe).
    """
    stats = LabelStats()
    out = []
    for doc in docs:
        ids, starts, ends = tokenizer(doc.text)
        windows = plan_windows(doc.text, starts, ends, max_length - 2, overlap)
        labels = None
        ws = word_starts(doc.text, starts, ends) if first_subword else None
        if label_to_id is not None:
            labels, s = encode_entity_labels(doc.entities, starts, ends, label_to_id, scheme, ws)
            stats.add(s)
        out.append(EncodedDocument(doc, ids, starts, ends, windows, labels, ws))
    return out, stats


def window_features(
    encoded: Sequence[EncodedDocument], tokenizer: OffsetTokenizer, max_length: int
) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """Stacked model inputs for every window, plus ``(doc_index, window_index)`` per row.

    ``[CLS] tokens [SEP] pad...``; ``label_mask`` is 1 on the window's tokens only (on their
    word-initial tokens for first-subword documents).
    """
    rows = [(d, w) for d, enc in enumerate(encoded) for w in range(len(enc.windows))]
    n = len(rows)
    input_ids = np.full((n, max_length), tokenizer.pad_id, np.int32)
    segment_ids = np.zeros((n, max_length), np.int32)
    labels = np.zeros((n, max_length), np.int32)
    label_mask = np.zeros((n, max_length), np.float32)
    for r, (d, w) in enumerate(rows):
        enc = encoded[d]
        win = enc.windows[w]
        k = win.end - win.start
        input_ids[r, 0] = tokenizer.cls_id
        input_ids[r, 1:k + 1] = enc.ids[win.start:win.end]
        input_ids[r, k + 1] = tokenizer.sep_id
        segment_ids[r, : k + 2] = 1
        label_mask[r, 1:k + 1] = 1 if enc.word_start is None else enc.word_start[win.start:win.end]
        if enc.labels is not None:
            labels[r, 1:k + 1] = enc.labels[win.start:win.end]
    return {"input_ids": input_ids, "segment_ids": segment_ids, "labels": labels, "label_mask": label_mask}, rows


def predictions_to_documents(
    encoded: Sequence[EncodedDocument],
    rows: Sequence[tuple[int, int]],
    row_predictions: np.ndarray,
    id_to_label: Sequence[str],
    repair: bool = False,
) -> list[Document]:
    """Row-wise label ids ([rows, max_length], position 0 = [CLS]) → documents with entities
    (``repair``: see :func:`tags_to_entities`)."""
    scheme = "BIOES" if any(l[:2] in ("E-", "S-") for l in id_to_label) else "BIO"
    per_doc: dict[int, list] = {}
    for r, (d, w) in enumerate(rows):
        win = encoded[d].windows[w]
        per_doc.setdefault(d, [None] * len(encoded[d].windows))[w] = row_predictions[r, 1:1 + win.end - win.start]
    out = []
    for d, enc in enumerate(encoded):
        n = len(enc.ids)
        merged = merge_window_predictions(enc.windows, per_doc.get(d, []), n) if n else np.zeros(0, np.int64)
        tags = [id_to_label[int(t)] for t in merged]
        ents = tags_to_entities(tags, enc.starts, enc.ends, enc.doc.text, word_start=enc.word_start,
                                scheme=scheme, repair=repair)
        out.append(Document(enc.doc.id, enc.doc.text, ents, [], enc.doc.source))
    return out
