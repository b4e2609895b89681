"""CoNLL token-per-line NER output: the figures ``conlleval`` (the CoNLL-2000 perl script) prints.

conlleval reads one stream of ``token ... gold guess`` lines and counts chunks with its own
start/end rules (:func:`_chunk_start`, :func:`_chunk_end`), which is why this module does not
reuse :func:`gatortron_jax.annotations.formats.conll.decode_tags`: for BIO tags the two agree,
but conlleval knows no ``S-`` prefix and has quirks on IOBES input (``S-X S-X`` is one chunk,
``E-X B-X`` continues a chunk) that the reader, which reads BIOES as BIOES, does not share.
A chunk is correct when gold and guess start it on the same token with the same type and end
it on the same token. Reported: token accuracy (tags equal, boundaries not counted, a
``-DOCSTART-`` line counted as a correct ``O`` token as conlleval does), overall precision,
recall and F1 over chunks, and per type (with the number of chunks found).

Gold and system are two files of the same tokens in the same order (the system's last column is
its guess); a token that differs is one :class:`InputError` naming both files and lines.
Our own strict-IOB2 scoring (:func:`gatortron_jax.evaluation.ner_metrics.bio_to_spans`, an
orphan ``I-`` dropped) can give a different F1 on the same tags.
"""

from __future__ import annotations

import re
from typing import Sequence

from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.annotations.formats.conll import read_conll_rows
from gatortron_jax.core.errors import InputError
from gatortron_jax.scoring.common import ScoreReport, prf

_SPLIT = re.compile(r"^([^-]*)-(.*)$")


def _split(tag: str) -> tuple[str, str]:
    m = _SPLIT.match(tag)
    return (m.group(1), m.group(2)) if m else (tag, "")


def _chunk_end(prev: str, tag: str, prev_type: str, typ: str) -> bool:
    if (prev, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}:
        return True
    return (prev not in ("O", ".") and prev_type != typ) or prev in ("]", "[")


def _chunk_start(prev: str, tag: str, prev_type: str, typ: str) -> bool:
    if (prev, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}:
        return True
    return (tag not in ("O", ".") and prev_type != typ) or tag in ("[", "]")


def conlleval_counts(gold: Sequence[str | None], guess: Sequence[str | None]) -> dict:
    """conlleval's counters over aligned tag streams (``None`` = a sentence boundary):
    ``tokens``, ``correct_tags``, ``found_correct``, ``found_guessed``, ``correct_chunks``,
    and the per-type ``{type: [correct, found_correct, found_guessed]}``."""
    per_type: dict[str, list[int]] = {}

    def bump(t: str, k: int) -> None:
        per_type.setdefault(t, [0, 0, 0])[k] += 1

    c = dict(tokens=0, correct_tags=0, found_correct=0, found_guessed=0, correct_chunks=0)
    last_c, last_g, last_ct, last_gt = "O", "O", "", ""
    in_correct = False
    for gt, st in zip(gold, guess):
        boundary = gt is None
        (cor, ctype), (gue, gtype) = (("O", ""), ("O", "")) if boundary else (_split(gt), _split(st))
        if in_correct:
            end_c = _chunk_end(last_c, cor, last_ct, ctype)
            end_g = _chunk_end(last_g, gue, last_gt, gtype)
            if end_c and end_g and last_gt == last_ct:
                in_correct = False
                c["correct_chunks"] += 1
                bump(last_ct, 0)
            elif end_c != end_g or gtype != ctype:
                in_correct = False
        start_c = _chunk_start(last_c, cor, last_ct, ctype)
        start_g = _chunk_start(last_g, gue, last_gt, gtype)
        if start_c and start_g and gtype == ctype:
            in_correct = True
        if start_c:
            c["found_correct"] += 1
            bump(ctype, 1)
        if start_g:
            c["found_guessed"] += 1
            bump(gtype, 2)
        if not boundary:
            c["correct_tags"] += cor == gue and gtype == ctype
            c["tokens"] += 1
        last_c, last_g, last_ct, last_gt = cor, gue, ctype, gtype
    if in_correct:
        c["correct_chunks"] += 1
        bump(last_ct, 0)
    c["per_type"] = per_type
    return c


def rows_of(c: dict) -> dict[str, dict]:
    """conlleval's report from its counters: ``overall`` (with ``accuracy``) and one row per type
    (with ``found``, the number of chunks guessed, which conlleval prints last)."""
    k = c["correct_chunks"]
    overall = prf(k, c["found_guessed"] - k, c["found_correct"] - k)
    overall["accuracy"] = c["correct_tags"] / c["tokens"] if c["tokens"] else 0.0
    rows = {"overall": overall}
    for t in sorted(c["per_type"]):
        correct, found_correct, found_guessed = c["per_type"][t]
        rows[t] = {**prf(correct, found_guessed - correct, found_correct - correct), "found": found_guessed}
    return rows


def _rows_to_stream(rows: list) -> list:
    """Tags with ``None`` between sentences (runs of breaks collapsed, none at the ends)."""
    out: list = []
    for r in rows:
        if r is None:
            if out and out[-1] is not None:
                out.append(None)
        else:
            out.append(r)
    while out and out[-1] is None:
        out.pop()
    return out


def score_conll(gold_path: str, system_path: str) -> ScoreReport:
    """conlleval's figures for a gold and a system CoNLL file of the same tokens."""
    g_summary, s_summary = ReadSummary(), ReadSummary()
    g_rows = _rows_to_stream(read_conll_rows(gold_path, summary=g_summary))
    s_rows = _rows_to_stream(read_conll_rows(system_path, summary=s_summary))
    for i, (g, s) in enumerate(zip(g_rows, s_rows)):
        if (g is None) != (s is None) or (g is not None and g[1] != s[1]):
            where_g = f"{gold_path}:{g[0]}" if g else f"{gold_path} (a sentence break)"
            where_s = f"{system_path}:{s[0]}" if s else f"{system_path} (a sentence break)"
            raise InputError(f"{where_s}: system token {i + 1} does not line up with the gold file at {where_g} "
                             f"(the files must hold the same tokens and sentence breaks)")
    if len(g_rows) != len(s_rows):
        short, long_ = (system_path, gold_path) if len(s_rows) < len(g_rows) else (gold_path, system_path)
        raise InputError(f"{short}: ends after {min(len(g_rows), len(s_rows))} lines of tokens and breaks; "
                         f"{long_} has {max(len(g_rows), len(s_rows))}")
    c = conlleval_counts([r and r[2] for r in g_rows], [r and r[2] for r in s_rows])
    docstarts = g_summary.skipped["-DOCSTART- line"]
    c["tokens"] += docstarts
    c["correct_tags"] += docstarts
    rows = rows_of(c)
    sentences = sum(1 for i, r in enumerate(g_rows) if r is not None and (i == 0 or g_rows[i - 1] is None))
    report = ScoreReport(format="conll", official="conlleval (CoNLL-2000 perl script)", documents=sentences,
                         rows=rows, headline="overall")
    report.extra.update(tokens=c["tokens"], phrases=c["found_correct"], found=c["found_guessed"],
                        correct=c["correct_chunks"])
    return report
