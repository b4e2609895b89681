"""``deid`` over a note table, streamed: the model's PHI replaced chunk by chunk.

``deid --phi_source model`` on raw notes (a ``.txt`` tree, or a ``.jsonl`` / CSV / Parquet
note table) runs through ``predict``'s streaming driver (:mod:`gatortron_jax.inference.stream`):
memory bounded by one chunk, resumable after a kill (byte-identical outputs), sharded with
``--shard/--num_shards`` or one shard per ``jax.distributed`` process, and every input note
accounted for (a note that cannot be processed is in ``failed.jsonl`` with its id and reason).

Per chunk, each note's predicted PHI spans are replaced by :func:`deid.deidentify` (masks,
or surrogates consistent per patient through ``--patient_map`` / ``--patient_id_pattern``) and
written as

* ``brat``: ``<id>.txt`` (redacted) + ``<id>.ann`` (replacements as entities of the redacted
  text); ``i2b2_2014``: ``<id>.xml``; ``jsonl``: rows of ``deidentified.jsonl`` (``{id, text}``);
* rows of ``replacements.jsonl`` for every format: per note the type, original and output
  offsets, how and surrogate of each span — never the original text;
* ``entities.jsonl``: the detected PHI spans with their scores (no text unless ``--show_text``);
* ``deid_summary.json``: PHI removed by type, spans kept by policy, surrogate fallbacks —
  counted from the combined ``replacements.jsonl``, so a resumed run reports the whole run.

Leakage audit of a streamed table (``--gold_field phi``: each ``.jsonl`` row carries its gold
PHI spans, :mod:`gatortron_jax.annotations.note_table`; ``convert-notes --with_gold`` writes
such a table from annotated notes): per chunk, each note's :func:`deid.leakage_report` (the
one definition of a surviving gold span) is a row of the chunk's ``leakage`` table, kept and
hashed with its ledger; ``leakage.jsonl`` concatenates them and ``leakage_report.json`` holds
the totals (gold spans surviving whole / partly, by type, notes with leaks) summed from those
rows, so a resumed run reports what an uninterrupted one does. No text unless ``--show_text``.

Annotated corpora in their own formats (i2b2 XML, brat) and a table's patient column
(``--patient_id_field``) use the in-memory path in ``cli``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Sequence

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.inference import deid, stream, stream_ledger
from gatortron_jax.inference.note_sources import NoteSource, SourceNote

STREAM_FORMATS = ("brat", "i2b2_2014", "jsonl")


class DeidChunkWriter:
    """A :class:`stream.ChunkWriter`: per-note redacted files plus the replacements table rows."""

    def __init__(self, mode: str, fmt: str, seed: int, patient_of: Callable[[str], str], *,
                 audit: bool = False, show_text: bool = False):
        if mode not in deid.MODES:
            raise ConfigError(f"--mode {mode!r}: choose one of {deid.MODES}")
        if fmt not in STREAM_FORMATS:
            raise ConfigError(f"--format {fmt!r}: choose one of {STREAM_FORMATS}")
        self.mode, self.fmt, self.seed, self.patient_of = mode, fmt, seed, patient_of
        self.audit, self.show_text = audit, show_text

    def write(self, results: Sequence[tuple[Document, list[float]]], staging_dir: str,
              notes: Sequence[SourceNote] = ()) -> dict[str, list[dict]]:
        replacements, texts, leakage = [], [], []
        if self.audit and len(notes) != len(results):
            raise ConfigError("the leakage audit needs each result's input note (gold PHI)")
        for k, (doc, _scores) in enumerate(results):
            r = deid.deidentify(Document(doc.id, doc.text, [], [], doc.source), doc.entities, self.mode, self.seed,
                                patient_id=self.patient_of(doc.id))
            if self.audit:  # the in-memory audit's definition of "survives", per note
                gold = Document(doc.id, doc.text, list(notes[k].gold or ()), [], doc.source)
                leakage.append(deid.leakage_report(gold, r, show_text=self.show_text))
            if self.fmt == "jsonl":
                texts.append({"id": r.doc_id, "text": r.text})
            else:
                deid.write_deid_note(r, staging_dir, self.fmt)
            replacements.append({"id": r.doc_id, "replacements": r.replacements()})
        return {"replacements": replacements, **({"deidentified": texts} if self.fmt == "jsonl" else {}),
                **({"leakage": leakage} if self.audit else {})}


def run_deid_stream(tagger: stream.ScoringTagger, source: NoteSource, options: stream.StreamOptions, *,
                    mode: str, fmt: str, seed: int, seed_recorded: bool,
                    patient_of: Optional[Callable[[str], str]] = None,
                    patient_settings: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """De-identifies this shard of ``source``; returns ``deid_summary.json``'s content.

    ``seed_recorded`` False (no ``--seed``): the seed is random, so a resumed run would draw
    other surrogates than the chunks already written; surrogate runs without ``--seed``
    therefore refuse to resume into a started output (masks do not depend on the seed).
    """
    audit = bool(source.gold_field)
    writer = DeidChunkWriter(mode, fmt, seed, patient_of or (lambda note_id: note_id), audit=audit,
                             show_text=options.show_text)
    if mode == "surrogate" and not seed_recorded and options.num_shards > 1:
        raise ConfigError("--mode surrogate over several shards needs --seed: each shard would draw its own "
                          "random seed, and a patient's notes in two shards would get different surrogates")
    if mode == "surrogate" and not seed_recorded and stream_ledger.has_started_run(options.output_dir,
                                                                                   options.shard_tag):
        raise ConfigError(f"{options.output_dir}: holds a started surrogate run; resuming it needs the same --seed "
                          "(surrogates follow the seed), or use a new --output")
    settings = {"deid_mode": mode, "deid_format": fmt, **(patient_settings or {}),
                # the seed itself is never written (with the outputs it re-identifies dates)
                "deid_seed_given": seed_recorded, "gold_field": source.gold_field}
    s = stream.run_stream(tagger, source, options, writer, per_note_files=fmt != "jsonl", run_settings=settings)
    with open(options.output_name("replacements", "jsonl"), encoding="utf-8") as f:
        counted = deid.summarise_replacements((json.loads(line) for line in f), mode)
    summary = {"mode": mode, "format": fmt, "phi_source": "model", "notes": s["notes_predicted"],
               "notes_read": s["notes_read"], "notes_failed": s["notes_failed"], **counted,
               "stream_summary": os.path.basename(options.output_name("summary", "json"))}
    if audit:  # totals from the per-chunk reports kept with the ledger: a resumed run counts the same
        table = options.output_name("leakage", "jsonl")
        with open(table, encoding="utf-8") as f:
            summary["leakage"] = deid.summarise_leakage(json.loads(line) for line in f)
        summary["leakage"]["notes_failed"] = s["notes_failed"]  # not de-identified, not audited: failed.jsonl
        report = {"summary": summary["leakage"], "notes_table": os.path.basename(table),
                  "text": "included (--show_text)" if options.show_text else "none"}
        stream_ledger.atomic_write(options.output_name("leakage_report", "json"),
                                   json.dumps(report, indent=2, ensure_ascii=False).encode())
    stream_ledger.atomic_write(options.output_name("deid_summary", "json"), json.dumps(summary, indent=2).encode())
    return summary
