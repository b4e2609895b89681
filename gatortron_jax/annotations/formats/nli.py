"""MedNLI (SNLI-style) jsonl: one JSON object per line with ``sentence1`` (premise),
``sentence2`` (hypothesis) and ``gold_label`` (``entailment`` / ``contradiction`` /
``neutral``); ``pairID`` is the example id when present (else ``<file>:<line>``). Other keys
(``*_parse``) are ignored.

Bad lines (not JSON, not an object, missing or empty field, label not in ``labels``) raise
:class:`InputError` with file, line and id, or with ``strict=False`` are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import json

from gatortron_jax.annotations.formats.task_common import ExampleReadSummary, read_text_file, reject, split_lines
from gatortron_jax.core.errors import InputError

MEDNLI_LABELS = ("entailment", "contradiction", "neutral")


@dataclasses.dataclass(frozen=True)
class NLIExample:
    id: str
    premise: str
    hypothesis: str
    label: str
    source: str  # file:line


def read_nli_jsonl(path: str, *, labels: tuple[str, ...] | None = MEDNLI_LABELS, strict: bool = True,
                   summary: ExampleReadSummary | None = None) -> list[NLIExample]:
    own = summary is None
    summary = summary if summary is not None else ExampleReadSummary()
    summary.format = "mednli_jsonl"
    out: list[NLIExample] = []
    seen: set[str] = set()
    for lineno, line in enumerate(split_lines(read_text_file(path)), 1):
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            reject(strict, summary, where, f"{path}:{lineno}", f"not valid JSON (column {e.colno})")
            continue
        if not isinstance(obj, dict):
            reject(strict, summary, where, f"{path}:{lineno}", "expected a JSON object")
            continue
        ex_id = str(obj.get("pairID") or obj.get("id") or f"{path}:{lineno}")
        missing = [k for k in ("sentence1", "sentence2", "gold_label")
                   if not isinstance(obj.get(k), str) or not obj[k].strip()]
        if missing:
            reject(strict, summary, where, ex_id, f"missing field(s) {missing}")
            continue
        label = obj["gold_label"].strip()
        if labels is not None and label not in labels:
            reject(strict, summary, where, ex_id, f"label {label[:30]!r} not in the label set {list(labels)}")
            continue
        if ex_id in seen:
            raise InputError(f"{where}: duplicate example id {ex_id!r}")
        seen.add(ex_id)
        out.append(NLIExample(id=ex_id, premise=obj["sentence1"], hypothesis=obj["sentence2"], label=label, source=where))
        summary.labels[label] += 1
    summary.examples += len(out)
    if not out:
        raise InputError(f"{path}: no examples found")
    if own:
        summary.log()
    return out


read_mednli_jsonl = read_nli_jsonl
