"""What every official-scorer module shares: the report it returns, document pairing, P/R/F1.

The challenges' scripts all score only the notes present in *both* the gold and the system
folder and say nothing about the rest. :func:`pair_documents` reproduces that pairing and
keeps what it left out (gold notes without a system file, system notes absent from gold), so
the report can say so in one warning line with both figures, official and "every gold note",
instead of dropping the notes silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Sequence

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.errors import InputError
from gatortron_jax.evaluation.ner_metrics import index_by_id


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 with the scripts' convention: 0.0 where a denominator is 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


@dataclasses.dataclass
class Pairing:
    """Gold and system documents paired by id, as the official scripts pair their files."""

    pairs: list[tuple[Document, Document]]  # (gold, system), ids in both, sorted by id
    missing: list[Document]  # gold notes without a system note
    unknown: list[str]  # system note ids absent from gold


def pair_documents(gold: Sequence[Document], system: Sequence[Document], *, check_text: bool = True) -> Pairing:
    """Pair by id; with ``check_text`` a paired system note must carry the gold text (the i2b2
    script asserts it), else one :class:`InputError` naming the system file."""
    g, s = index_by_id(gold, "gold"), index_by_id(system, "system")
    pairs = []
    for doc_id in sorted(set(g) & set(s)):
        if check_text and s[doc_id].text and g[doc_id].text != s[doc_id].text:
            raise InputError(f"{s[doc_id].source or doc_id}: the note text differs from the gold note's "
                             f"({g[doc_id].source or doc_id}); offsets cannot be compared")
        pairs.append((g[doc_id], s[doc_id]))
    missing = [g[i] for i in sorted(set(g) - set(s))]
    return Pairing(pairs, missing, sorted(set(s) - set(g)))


def with_empty_system(pairing: Pairing) -> list[tuple[Document, Document]]:
    """The pairs plus every gold note without a system note, paired with an empty one."""
    extra = [(d, Document(d.id, d.text, source=d.source)) for d in pairing.missing]
    return sorted(pairing.pairs + extra, key=lambda p: p[0].id)


@dataclasses.dataclass
class ScoreReport:
    """Every metric an official scorer reports, under the names it prints them.

    ``rows`` maps a metric name (e.g. ``"Strict"``, ``"Drug (strict)"``) to a dict with
    ``precision``, ``recall``, ``f1`` and, where the script has them, ``tp``/``fp``/``fn`` and
    ``macro_precision``/``macro_recall``/``macro_f1`` (and more, e.g. ``leak``). ``headline``
    names the row the literature quotes.
    """

    format: str
    official: str  # which script's definitions these are
    documents: int  # notes scored (in both folders)
    rows: dict[str, dict[str, Any]]
    headline: str
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # flags in effect, deviations
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. the every-gold-note figures

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write_json(self, path: str) -> None:
        """Strict JSON: a NaN (the i2b2 script's macro F1 when macro P and R are both 0) is null."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_nan_to_none(self.to_json()), f, indent=1, allow_nan=False)
            f.write("\n")


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def missing_warning(report: ScoreReport, pairing: Pairing, every_gold: dict[str, Any] | None,
                    official_behaviour: str = "scores only the notes present in both folders") -> None:
    """Add the one warning line about gold notes without a system note (if any), with the
    headline F1 both ways, and one about system notes absent from gold."""
    if pairing.missing:
        head = report.rows[report.headline]
        line = (f"{len(pairing.missing)} gold note(s) have no system note (first: {pairing.missing[0].id}); "
                f"the official script {official_behaviour}: {report.headline} F1 {head['f1']:.4f} "
                f"over {report.documents} note(s)")
        if every_gold is not None:
            line += f"; every gold note: F1 {every_gold['f1']:.4f} over {report.documents + len(pairing.missing)}"
            report.extra["every_gold_note"] = {report.headline: every_gold}
        report.warnings.append(line)
    if pairing.unknown:
        shown = ", ".join(pairing.unknown[:5]) + (" ..." if len(pairing.unknown) > 5 else "")
        report.warnings.append(f"{len(pairing.unknown)} system note(s) not in the gold set, not scored: {shown}")
    report.extra["missing_system_notes"] = [d.id for d in pairing.missing]
    report.extra["unknown_system_notes"] = list(pairing.unknown)


def format_report(report: ScoreReport) -> str:
    """A plain-text table (fractions to 4 decimals, as the scripts print them) and the notes;
    the warnings are the caller's to log (once)."""
    has_counts = any("tp" in r for r in report.rows.values())
    has_macro = any("macro_f1" in r for r in report.rows.values())
    width = max([len("metric")] + [len(k) for k in report.rows])
    head = f"{'metric':<{width}}  {'P':>6} {'R':>6} {'F1':>6}"
    if has_macro:
        head += f"  {'macroP':>6} {'macroR':>6} {'macroF':>6}"
    if has_counts:
        head += f"  {'TP':>6} {'FP':>6} {'FN':>6}"
    unit = "sentence(s)" if report.format == "conll" else "note(s)"
    lines = [f"{report.format}: {report.official}; {report.documents} {unit} scored; headline: {report.headline}",
             head, "-" * len(head)]
    for name, r in report.rows.items():
        line = f"{name:<{width}}  {r['precision']:6.4f} {r['recall']:6.4f} {r['f1']:6.4f}"
        if has_macro:
            line += (f"  {r['macro_precision']:6.4f} {r['macro_recall']:6.4f} {r['macro_f1']:6.4f}"
                     if "macro_f1" in r else f"  {'':6} {'':6} {'':6}")
        if has_counts:
            line += f"  {r['tp']:6d} {r['fp']:6d} {r['fn']:6d}" if "tp" in r else ""
        extra = {k: v for k, v in r.items() if k not in _SHOWN}
        if extra:
            line += "  " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
        lines.append(line)
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


_SHOWN = {"precision", "recall", "f1", "tp", "fp", "fn", "macro_precision", "macro_recall", "macro_f1"}
