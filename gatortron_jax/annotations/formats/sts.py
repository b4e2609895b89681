"""Sentence-similarity TSVs: 2019 n2c2/OHNLP clinical STS and BIOSSES.

* n2c2 2019 ClinicalSTS: no header, ``sentence1<TAB>sentence2<TAB>score`` (score 0–5); the id is
  ``<file>:<line>``.
* BIOSSES (as in ``../shared/data/BIOSSES``): a header ``index sentence1 sentence2 score`` (or
  ``pair_id ... annotator_a..e score`` for ``all.tsv``); columns are found by name, the id is the
  ``index``/``pair_id`` value; scores 0–4.
* Without a header, 4 columns are read as ``id, sentence1, sentence2, score``.

A missing field, a score that is not a number or lies outside ``score_range`` raise
:class:`InputError` with file, line and id, or with ``strict=False`` are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import math

from gatortron_jax.annotations.formats.task_common import ExampleReadSummary, read_text_file, reject, split_lines
from gatortron_jax.core.errors import InputError

N2C2_2019_RANGE = (0.0, 5.0)
BIOSSES_RANGE = (0.0, 4.0)
_ID_NAMES = ("index", "pair_id", "id", "pairid")


@dataclasses.dataclass(frozen=True)
class STSExample:
    id: str
    sentence1: str
    sentence2: str
    score: float
    source: str  # file:line


def read_sts_tsv(path: str, *, score_range: tuple[float, float] | None = N2C2_2019_RANGE, strict: bool = True,
                 summary: ExampleReadSummary | None = None) -> list[STSExample]:
    own = summary is None
    summary = summary if summary is not None else ExampleReadSummary()
    summary.format = "sts_tsv"
    lines = split_lines(read_text_file(path))
    cols = None  # (id, s1, s2, score) column indices, id may be None
    start = 0
    if lines:
        head = [f.strip().lower() for f in lines[0].split("\t")]
        if "sentence1" in head and "sentence2" in head:
            if "score" not in head:
                raise InputError(f"{path}:1: header has no 'score' column")
            id_col = next((head.index(n) for n in _ID_NAMES if n in head), None)
            cols = (id_col, head.index("sentence1"), head.index("sentence2"), head.index("score"))
            start = 1
    out: list[STSExample] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines[start:], start + 1):
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        fields = line.split("\t")
        c = cols
        if c is None:
            if len(fields) == 3:
                c = (None, 0, 1, 2)
            elif len(fields) == 4:
                c = (0, 1, 2, 3)
            else:
                reject(strict, summary, where, f"{path}:{lineno}",
                       f"expected 3 (s1, s2, score) or 4 (id, s1, s2, score) tab-separated fields, found {len(fields)}")
                continue
        ex_id = (fields[c[0]].strip() if c[0] is not None and c[0] < len(fields) else "") or f"{path}:{lineno}"
        if len(fields) <= max(i for i in c if i is not None):
            reject(strict, summary, where, ex_id, f"missing field(s): found {len(fields)} tab-separated fields")
            continue
        s1, s2, raw = fields[c[1]], fields[c[2]], fields[c[3]].strip()
        if not s1.strip() or not s2.strip() or not raw:
            reject(strict, summary, where, ex_id, "missing field: empty sentence or score")
            continue
        try:
            score = float(raw)
        except ValueError:
            reject(strict, summary, where, ex_id, f"score {raw[:20]!r} is not a number")
            continue
        if not math.isfinite(score) or (score_range is not None and not score_range[0] <= score <= score_range[1]):
            reject(strict, summary, where, ex_id, f"score {score} outside {score_range}")
            continue
        if ex_id in seen:
            raise InputError(f"{where}: duplicate example id {ex_id!r}")
        seen.add(ex_id)
        out.append(STSExample(id=ex_id, sentence1=s1, sentence2=s2, score=score, source=where))
    summary.examples += len(out)
    if not out:
        raise InputError(f"{path}: no examples found")
    if own:
        summary.log()
    return out


def read_biosses_tsv(path: str, *, strict: bool = True, summary: ExampleReadSummary | None = None) -> list[STSExample]:
    return read_sts_tsv(path, score_range=BIOSSES_RANGE, strict=strict, summary=summary)
