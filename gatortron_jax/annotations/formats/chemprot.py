"""ChemProt in the BLUE pair-classification TSV form: ``index<TAB>sentence<TAB>label``.

One row per candidate chemical–protein pair; the two mentions of the pair are masked as
``@CHEMICAL$`` and ``@GENE$`` in the sentence (``@CHEM-GENE$`` when they overlap), the label is one of ``CPR:3 CPR:4 CPR:5 CPR:6
CPR:9`` or ``false`` (no relation; the standard micro-F1 excludes it). A header line
``index<TAB>sentence<TAB>label`` is recognised and skipped. The index (e.g.
``10064839.T49.T56`` = PMID.chemical.gene) is the example id. A pair with several gold labels
appears on several rows with the same index; all rows are kept, the repeats get ids
``<index>#2``, ``#3``… and are counted in the summary.

Bad rows (wrong number of fields, empty sentence, label not in ``labels``) raise
:class:`InputError` naming the file, line and index, or with ``strict=False`` are skipped
and listed in the summary.
"""

from __future__ import annotations

import dataclasses

from gatortron_jax.annotations.formats.task_common import ExampleReadSummary, read_text_file, reject, split_lines
from gatortron_jax.core.errors import InputError

CHEMPROT_LABELS = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9", "false")
CHEMPROT_NEGATIVE = "false"
CHEMICAL_MASK = "@CHEMICAL$"
GENE_MASK = "@GENE$"
OVERLAP_MASK = "@CHEM-GENE$"  # BLUE's mask when the two mentions overlap
_HEADER = ("index", "sentence", "label")


@dataclasses.dataclass(frozen=True)
class ChemProtExample:
    id: str
    text: str
    label: str
    source: str  # file:line

    def _span(self, mask: str) -> tuple[int, int] | None:
        i = self.text.find(mask)
        if i < 0:
            i, mask = self.text.find(OVERLAP_MASK), OVERLAP_MASK
        return None if i < 0 else (i, i + len(mask))

    @property
    def chemical_span(self) -> tuple[int, int] | None:
        """Character span of the ``@CHEMICAL$`` mask (else of ``@CHEM-GENE$``), or None."""
        return self._span(CHEMICAL_MASK)

    @property
    def gene_span(self) -> tuple[int, int] | None:
        """Character span of the ``@GENE$`` mask (else of ``@CHEM-GENE$``), or None."""
        return self._span(GENE_MASK)


def read_chemprot_tsv(path: str, *, labels: tuple[str, ...] | None = CHEMPROT_LABELS, strict: bool = True,
                      summary: ExampleReadSummary | None = None) -> list[ChemProtExample]:
    """Read a BLUE-style ChemProt TSV; ``labels=None`` accepts any label."""
    own = summary is None
    summary = summary if summary is not None else ExampleReadSummary()
    summary.format = "chemprot_blue"
    allowed = None if labels is None else set(labels)
    out: list[ChemProtExample] = []
    seen: set[str] = set()
    for lineno, line in enumerate(split_lines(read_text_file(path)), 1):
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        fields = line.split("\t")
        if lineno == 1 and tuple(f.strip().lower() for f in fields) == _HEADER:
            continue
        ex_id = fields[0].strip() or f"{path}:{lineno}"
        if len(fields) != 3:
            reject(strict, summary, where, ex_id, f"expected 3 tab-separated fields (index, sentence, label), found {len(fields)}")
            continue
        sentence, label = fields[1], fields[2].strip()
        if not sentence.strip():
            reject(strict, summary, where, ex_id, "missing field: sentence is empty")
            continue
        if not label:
            reject(strict, summary, where, ex_id, "missing field: label is empty")
            continue
        if allowed is not None and label not in allowed:
            reject(strict, summary, where, ex_id, f"label {label[:30]!r} not in the label set {sorted(allowed)}")
            continue
        if ex_id in seen:  # the same pair with a second label (ChemProt is multi-label): keep both
            n = 2
            while f"{ex_id}#{n}" in seen:
                n += 1
            summary.problem("repeated index (pair with several labels; kept, id suffixed #n)", where, warn=False)
            ex_id = f"{ex_id}#{n}"
        seen.add(ex_id)
        out.append(ChemProtExample(id=ex_id, text=sentence, label=label, source=where))
        summary.labels[label] += 1
    summary.examples += len(out)
    if not out:
        raise InputError(f"{path}: no examples found")
    if own:
        summary.log()
    return out
