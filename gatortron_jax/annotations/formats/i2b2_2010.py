"""i2b2/VA 2010 concept files: ``NAME.txt`` (one sentence per line, whitespace-tokenized)
plus ``NAME.con`` with one concept per line::

    c="chronic obstructive pulmonary disease" 10:2 10:5||t="problem"

``L:T`` is line (from 1) and whitespace token (from 0) of the first and last token, the end
inclusive; ``t`` is ``problem``, ``test`` or ``treatment``. The concept text is lowercased in
the official files and may itself contain ``"``, so the line is anchored on the
``" L:T L:T||t="`` part. Offsets are converted to character spans into the ``.txt`` (read
as stored, so ``\\r\\n`` keeps its two characters).

The concept text is compared case-insensitively with the tokens at its offsets; a mismatch or
an offset beyond the note is an :class:`InputError` with ``strict`` (the default), otherwise the
concept is dropped with a warning and counted. A line that does not parse is always an
:class:`InputError` naming ``file:line`` and the malformed part (never the concept text).
"""

from __future__ import annotations

import bisect
import os
import re

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import ReadSummary, logger, redact, write_text
from gatortron_jax.core.errors import InputError

_CON_RE = re.compile(r'^c="(.*)" (\d+):(\d+) (\d+):(\d+)\|\|t="([^"]+)"\s*$')
_C_PREFIX_RE = re.compile(r'^c="(.*)"\s+(\S+\s+\S+\|\|.*|\S+\s+\S+)$')
_TOKEN_RE = re.compile(r"\S+")
_WS_RE = re.compile(r"\s+")


def line_tokens(text: str) -> list[list[tuple[int, int]]]:
    """Character spans of the whitespace tokens of each line (lines split on ``\\n``)."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append([(pos + m.start(), pos + m.end()) for m in _TOKEN_RE.finditer(line)])
        pos += len(line) + 1
    return out


def _norm(s: str) -> str:
    return _WS_RE.sub(" ", s).strip().lower()


def _describe_bad_line(line: str) -> str:
    if not line.startswith('c="'):
        return 'line does not start with c="..." (expected c="TEXT" L:T L:T||t="TYPE")'
    m = _C_PREFIX_RE.match(line)
    if not m:
        return 'no " L:T L:T||t="TYPE" after the concept text'
    return (f'malformed offsets/type after the concept text: {redact(m.group(2))!r} '
            f'(expected " L:T L:T||t=\\"TYPE\\"")')


def read_con(txt_path: str, con_path: str, *, strict: bool = True,
             summary: ReadSummary | None = None, doc_id: str | None = None) -> Document:
    """Read one note and its ``.con`` file."""
    from gatortron_jax.annotations.formats.brat import _read_text

    own_summary = summary is None
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2010"
    text = _read_text(txt_path)
    con = _read_text(con_path)
    toks = line_tokens(text)
    doc = Document(id=doc_id or os.path.splitext(os.path.basename(txt_path))[0], text=text,
                   source=txt_path)
    for lineno, raw in enumerate(con.split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        where = f"{con_path}:{lineno}"
        m = _CON_RE.match(line)
        if not m:
            raise InputError(f"{where}: {_describe_bad_line(line)}")
        ctext, l1, t1, l2, t2, ctype = m.group(1), *map(int, m.group(2, 3, 4, 5)), m.group(6)
        offsets = f"{l1}:{t1} {l2}:{t2}"
        bad = None
        if not (1 <= l1 <= len(toks) and 1 <= l2 <= len(toks)):
            bad = f"line number outside the note ({len(toks)} lines)"
        elif t1 >= len(toks[l1 - 1]) or t2 >= len(toks[l2 - 1]):
            bad = "token index beyond the end of its line"
        elif (l2, t2) < (l1, t1):
            bad = "end before start"
        if bad is None:
            start, end = toks[l1 - 1][t1][0], toks[l2 - 1][t2][1]
            covered = " ".join(text[s:e] for line_t in toks[l1 - 1:l2] for s, e in line_t
                               if start <= s and e <= end)
            if _norm(covered) != _norm(ctext):
                bad = "concept text does not match the note tokens at its offsets"
        if bad:
            msg = f"{where}: concept {offsets} ({redact(ctype, 20)}): {bad}"
            if strict:
                raise InputError(msg + " (without --strict / with strict=False such concepts are dropped and counted)")
            summary.problem(bad + " (dropped)", where)
            continue
        doc.entities.append(Entity(id=f"T{len(doc.entities) + 1}", type=ctype,
                                   spans=((start, end),), text=ctext))
    summary.entities += len(doc.entities)
    summary.documents += 1
    if own_summary:
        summary.log()
    return doc


def _find_txt(con_path: str, txt_by_stem: dict[str, list[str]]) -> str | None:
    stem = os.path.splitext(os.path.basename(con_path))[0]
    cands = txt_by_stem.get(stem, [])
    if not cands:
        return None
    con_dir = os.path.dirname(con_path)
    for c in cands:  # side by side
        if os.path.dirname(c) == con_dir:
            return c
    # txt/ beside concepts/ (or any sibling), else the closest by common path prefix.
    return max(cands, key=lambda c: (os.path.dirname(os.path.dirname(c)) == os.path.dirname(con_dir),
                                     len(os.path.commonpath([c, con_path]))))


def read_i2b2_2010_dir(directory: str, *, strict: bool = True,
                       summary: ReadSummary | None = None) -> list[Document]:
    """Read every ``.con`` under ``directory`` with its note.

    Works on the release layout (``.../txt/NAME.txt`` beside ``.../concept(s)/NAME.con``,
    e.g. ``concept_assertion_relation_training_data/beth``, or ``test_data/`` beside
    ``reference_standard_for_test_data/concepts/``) and on side-by-side ``.txt``/``.con``.
    Document ids are file stems. Notes without a ``.con`` are skipped and counted.
    """
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2010"
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: not a directory")
    cons: list[str] = []
    txt_by_stem: dict[str, list[str]] = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            stem, ext = os.path.splitext(name)
            if ext == ".con":
                cons.append(path)
            elif ext == ".txt":
                txt_by_stem.setdefault(stem, []).append(path)
    docs, used, ids = [], set(), set()
    for con_path in cons:
        txt_path = _find_txt(con_path, txt_by_stem)
        if txt_path is None:
            raise InputError(f"{con_path}: no matching .txt note under {directory}")
        used.add(txt_path)
        doc_id = os.path.splitext(os.path.basename(con_path))[0]
        if doc_id in ids:
            doc_id = os.path.relpath(os.path.splitext(con_path)[0], directory).replace(os.sep, "/")
        ids.add(doc_id)
        docs.append(read_con(txt_path, con_path, strict=strict, summary=summary, doc_id=doc_id))
    unused = sum(len(v) for v in txt_by_stem.values()) - len(used)
    if unused:
        summary.skipped[".txt without .con"] += unused
    if not docs:
        raise InputError(f"{directory}: no .con files found")
    summary.log()
    return docs


def format_con(doc: Document) -> str:
    """The ``.con`` content for ``doc``.

    Each entity covers the whitespace tokens its characters touch. Its text is
    ``Entity.text`` when that matches those tokens (case-insensitively, as read from a
    ``.con``), else the tokens joined by a space and lowercased, as the official files do.
    Entities that touch no token are left out with a warning.
    """
    toks = line_tokens(doc.text)
    flat = [(li, ti, s, e) for li, line in enumerate(toks) for ti, (s, e) in enumerate(line)]
    ends = [e for _, _, _, e in flat]
    out, skipped = [], 0
    for ent in doc.entities:
        i = bisect.bisect_right(ends, ent.start)  # first token ending after the start
        j = i
        while j < len(flat) and flat[j][2] < ent.end:
            j += 1
        if j == i:
            skipped += 1
            continue
        (l1, t1, _, _), (l2, t2, _, _) = flat[i], flat[j - 1]
        covered = " ".join(doc.text[a:b] for _, _, a, b in flat[i:j])
        ctext = ent.text if ent.text and _norm(ent.text) == _norm(covered) else covered.lower()
        ctext = _WS_RE.sub(" ", ctext)
        out.append(f'c="{ctext}" {l1 + 1}:{t1} {l2 + 1}:{t2}||t="{ent.type}"\n')
    if skipped:
        logger.warning("document %s: %d entities cover no token and were not written", doc.id, skipped)
    return "".join(out)


def write_i2b2_2010_con(doc: Document, con_path: str) -> None:
    """Write ``doc``'s entities as an i2b2 2010 ``.con`` file."""
    content = format_con(doc)
    write_text(con_path, content)
