"""CoNLL-style token-per-line NER files (the common public biomedical form).

One token per line: ``token<TAB>tag`` (more columns are allowed; the token is the first
column and the tag the last; without tabs, columns are split on whitespace). A blank line
ends a sentence and ``-DOCSTART-`` lines are separators. Tags may be BIO/IOB2, IOB1 or BIOES
(BILOU): a tag set containing ``E-``/``S-`` (``L-``/``U-``) is decoded as BIOES, otherwise as
BIO, where an ``I-`` that does not continue an entity of its type starts one (a repair that is
counted in the summary). Scoring uses the strict IOB2 reading instead
(:func:`gatortron_jax.evaluation.ner_metrics.bio_to_spans`).

Each sentence becomes one :class:`Document` whose text is its tokens joined by single spaces;
entities are character spans into that text. Ids are ``<prefix>-<index:06d>`` where the prefix
defaults to the file stem.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import ReadSummary, logger, redact, write_text
from gatortron_jax.core.errors import InputError

_TAG_RE = re.compile(r"^(?:O|[BIESLU]-.+)$")
_TOKEN_RE = re.compile(r"\S+")


def decode_tags(tags: Sequence[str]) -> tuple[list[tuple[str, int, int]], int]:
    """Lenient decoding of BIO/IOB1/BIOES/BILOU tags into ``(type, start, end_exclusive)``.

    Returns the spans and the number of repairs (an entity started by ``I-``/``E-``/``L-``,
    or a ``B-`` run that a BIOES sequence never closed).
    """
    bioes = any(t[:2] in ("E-", "S-", "L-", "U-") for t in tags)
    spans: list[tuple[str, int, int]] = []
    repairs = 0
    cur_type: str | None = None
    cur_start = 0

    def close(end: int) -> None:
        nonlocal cur_type
        if cur_type is not None:
            spans.append((cur_type, cur_start, end))
        cur_type = None

    for i, tag in enumerate(tags):
        if tag == "O":
            if bioes and cur_type is not None:
                repairs += 1
            close(i)
            continue
        prefix, typ = tag[0], tag[2:]
        if prefix in "SU":
            if bioes and cur_type is not None:
                repairs += 1
            close(i)
            spans.append((typ, i, i + 1))
        elif prefix == "B":
            if bioes and cur_type is not None:
                repairs += 1
            close(i)
            cur_type, cur_start = typ, i
        else:  # I, E, L
            if cur_type != typ:
                if bioes and cur_type is not None:
                    repairs += 1
                close(i)
                repairs += 1
                cur_type, cur_start = typ, i
            if prefix in "EL":
                close(i + 1)
    if bioes and cur_type is not None:
        repairs += 1
    close(len(tags))
    return spans, repairs


def _flush(path: str, prefix: str, tokens: list[str], tags: list[str], docs: list[Document],
           summary: ReadSummary) -> None:
    if not tokens:
        return
    starts, pos = [], 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    text = " ".join(tokens)
    spans, repairs = decode_tags(tags)
    if repairs:
        summary.problems["invalid tag sequence repaired"] += repairs
    entities = []
    for k, (typ, s, e) in enumerate(spans):
        cs, ce = starts[s], starts[e - 1] + len(tokens[e - 1])
        entities.append(Entity(id=f"T{k + 1}", type=typ, spans=((cs, ce),), text=text[cs:ce]))
    docs.append(Document(id=f"{prefix}-{len(docs):06d}", text=text, entities=entities,
                         source=path))
    summary.entities += len(entities)


def read_conll_rows(path: str, *, summary: ReadSummary | None = None) -> list[tuple[int, str, str] | None]:
    """The lines of a CoNLL/BIO file as ``(line number, token, tag)``; ``None`` for a sentence
    break (a blank line or a ``-DOCSTART-`` line, which is counted in ``summary.skipped``).

    For readers that need the tags as written (``score --format conll`` counts tokens as
    conlleval does); a bad line is an :class:`InputError` naming the file and line.
    """
    summary = summary if summary is not None else ReadSummary()
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    rows: list[tuple[int, str, str] | None] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("-DOCSTART-"):
            if line.startswith("-DOCSTART-"):
                summary.skipped["-DOCSTART- line"] += 1
            rows.append(None)
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        cols = [c.strip() for c in cols]
        if len(cols) < 2 or not cols[0] or not cols[-1]:
            raise InputError(f"{path}:{lineno}: expected 'token<TAB>tag', found {len(cols)} "
                             f"non-empty column(s)")
        tag = cols[-1]
        if not _TAG_RE.match(tag):
            raise InputError(f"{path}:{lineno}: invalid tag {redact(tag)!r} "
                             f"(expected O or B-/I-/E-/S-/L-/U-<type>)")
        rows.append((lineno, cols[0], tag))
    return rows


def read_conll(path: str, *, doc_id_prefix: str | None = None,
               summary: ReadSummary | None = None) -> list[Document]:
    """Read a CoNLL/BIO file: one :class:`Document` per blank-line-separated sentence."""
    summary = summary if summary is not None else ReadSummary()
    summary.format = "conll"
    prefix = doc_id_prefix if doc_id_prefix is not None else os.path.splitext(os.path.basename(path))[0]
    docs: list[Document] = []
    tokens: list[str] = []
    tags: list[str] = []
    for row in read_conll_rows(path, summary=summary):
        if row is None:
            _flush(path, prefix, tokens, tags, docs, summary)
            tokens, tags = [], []
            continue
        tokens.append(row[1])
        tags.append(row[2])
    _flush(path, prefix, tokens, tags, docs, summary)
    summary.documents += len(docs)
    summary.log()
    return docs


def doc_to_tags(doc: Document, token_spans: Sequence[tuple[int, int]]) -> tuple[list[str], int]:
    """IOB2 tags for ``token_spans`` of ``doc``; returns the tags and the number of entities
    left out because they overlap an earlier (longer-first) entity or cover no token."""
    tags = ["O"] * len(token_spans)
    dropped = 0
    for ent in sorted(doc.entities, key=lambda e: (e.start, -e.end, e.type)):
        covered = [i for i, (ts, te) in enumerate(token_spans)
                   if any(ts < e and s < te for s, e in ent.spans)]
        if not covered:
            dropped += 1
            continue
        first, last = covered[0], covered[-1]
        if any(tags[i] != "O" for i in range(first, last + 1)):
            dropped += 1
            continue
        tags[first] = "B-" + ent.type
        for i in range(first + 1, last + 1):
            tags[i] = "I-" + ent.type
    return tags, dropped


def write_conll(docs: list[Document], path: str,
                tokens_per_doc: list[list[tuple[int, int]]] | None = None) -> None:
    """Write ``token<TAB>tag`` lines (IOB2), a blank line after each document.

    Tokens are ``tokens_per_doc[i]`` (character spans into ``docs[i].text``) or the
    whitespace-separated tokens of the text. Overlapping entities cannot be expressed in flat
    BIO: the earliest (then longest) one is written and the others are counted in a warning.
    """
    if tokens_per_doc is not None and len(tokens_per_doc) != len(docs):
        raise InputError(f"{path}: tokens_per_doc has {len(tokens_per_doc)} entries for "
                         f"{len(docs)} documents")
    out: list[str] = []
    dropped = 0
    for i, doc in enumerate(docs):
        spans = (tokens_per_doc[i] if tokens_per_doc is not None
                 else [m.span() for m in _TOKEN_RE.finditer(doc.text)])
        tags, d = doc_to_tags(doc, spans)
        dropped += d
        for (s, e), tag in zip(spans, tags):
            token = doc.text[s:e]
            if not token or any(c in token for c in "\t\n\r"):
                raise InputError(f"{path}: document {doc.id}: token at {s}-{e} is empty or "
                                 f"contains a tab/newline")
            out.append(f"{token}\t{tag}\n")
        if spans:
            out.append("\n")
    if dropped:
        logger.warning("%s: %d overlapping/empty entities not expressible in BIO were left out",
                       path, dropped)
    write_text(path, "".join(out))
