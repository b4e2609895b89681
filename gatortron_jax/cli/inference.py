"""Inference commands: ``embed`` (last hidden states per line), ``predict`` (NER over notes, streamed; or
RE/NLI/STS/QA task files) and ``deid`` (redaction or surrogates; streamed for raw notes with model PHI,
in memory for annotated input and its leakage report).
"""

from __future__ import annotations

import argparse
import logging
import os

from gatortron_jax.cli import flags

log = logging.getLogger("gatortron_jax")


def cmd_embed(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.inference.embed import embed_file

    s = embed_file(args.checkpoint, args.input, args.output, max_length=args.max_length, overlap=args.overlap,
                   batch_size=args.batch_size, chunk_lines=args.chunk_lines, strict=args.strict,
                   show_text=args.show_text, quantize=flags.quantize_of(args))
    print(f"wrote {s['output']}: {s['lines']} arrays (key = line index '0'..'{max(s['lines'] - 1, 0)}'), each "
          f"float32 [tokens incl. [CLS]/[SEP], {s['hidden']}] last hidden states.")
    print("An encoder gives one contextual vector per token, not text: feed these to a downstream model "
          "(classifier, NER tagger, similarity).")
    if s["lines"]:
        print(f"tokens per line: min {s['tokens_min']}, max {s['tokens_max']}; {s['windowed_lines']} line(s) longer "
              f"than {s['max_length']} positions were windowed (overlap {s['overlap']}) and stitched, not truncated")
    return 0


def cmd_predict(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.models.model_dir import kind_of, read_model_info

    if kind_of(read_model_info(args.checkpoint)) == "sequence_task":
        from gatortron_jax.inference.tasks import predict_task

        s = predict_task(args.checkpoint, args.input, args.output, batch_size=args.batch_size, strict=args.strict,
                         quantize=flags.quantize_of(args))
        log.info("predicted %d examples; wrote %s to %s", s["examples"], ", ".join(s["written"]), args.output)
        return 0
    return _predict_ner_stream(args)


def _tagger(args: argparse.Namespace):
    """The streaming tagger with the model dir's stored operating point and pattern recipe,
    unless ``--operating_point argmax`` / ``--patterns none``."""
    from gatortron_jax.inference import stream

    return stream.ScoringTagger(args.checkpoint, batch_size=args.batch_size, dtype=getattr(args, "dtype", None),
                                operating_point=None if args.operating_point == "argmax" else "stored",
                                patterns=None if args.patterns == "none" else "stored",
                                quantize=flags.quantize_of(args))


def _predict_ner_stream(args: argparse.Namespace) -> int:
    """NER ``predict``: streamed in chunks, resumable, sharded (inference/stream.py)."""
    from gatortron_jax.inference import stream
    from gatortron_jax.inference.note_sources import NoteSource

    shard, num_shards = flags.shard_flags(args)
    tagger = _tagger(args)
    flavour = tagger.output_format if tagger.output_format.startswith("i2b2") else "i2b2_2010"
    if args.format == "i2b2_2014":
        flavour = "i2b2_2014"
    note_format = "none" if args.format in ("jsonl", "none") else "i2b2" if args.format == "i2b2_2014" else args.format
    source = NoteSource(args.input, args.input_format, id_field=args.id_field, text_field=args.text_field,
                        strict=args.strict, show_text=args.show_text)
    options = stream.StreamOptions(
        output_dir=args.output, chunk_notes=args.chunk_notes, min_score=args.min_score, show_text=args.show_text,
        table_formats=tuple(dict.fromkeys(["jsonl", *args.table])), shard=shard, num_shards=num_shards,
        tokenize=args.tokenize, workers=args.workers)
    s = stream.run_stream(tagger, source, options, stream.NERFileWriter(note_format, flavour),
                          per_note_files=note_format != "none", run_settings={"format": note_format})
    log.info("predicted %d of %d note(s) (%d failed%s), %d entities, %.1f notes/s; %s chunk(s) resumed; "
             "wrote %s and %s to %s", s["notes_predicted"], s["notes_read"], s["notes_failed"],
             f": {s['failed_by_reason']}" if s["notes_failed"] else "", s["entities"], s["notes_per_s"],
             s["chunks_resumed"], ", ".join(s["tables"]), "summary", args.output)
    return 0


def cmd_deid(args: argparse.Namespace, overrides: list[str]) -> int:
    import secrets

    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.inference import deid

    if _deid_streams(args):
        return _deid_stream(args)
    if args.gold_field:
        raise ConfigError("--gold_field: a .jsonl, CSV or Parquet note table de-identified with --phi_source model "
                          "(streamed)")
    if args.input_format in ("csv", "parquet") or _is_csv_or_parquet(args.input):
        raise ConfigError(f"{args.input}: CSV/Parquet note tables are de-identified streamed, which takes the "
                          "patient from --patient_map/--patient_id_pattern (not --patient_id_field) and PHI from "
                          "--phi_source model")
    notes, has_gold, table_patients = deid.read_deid_input(args.input, args.input_format,
                                                           patient_id_field=args.patient_id_field,
                                                           id_field=args.id_field or "id", strict=args.strict,
                                                           show_text=args.show_text)
    fmt = args.format or ("jsonl" if deid.detect_input_format(args.input) == "jsonl"
                          and args.input_format in ("auto", "jsonl") else "brat")
    if args.phi_source != "model" and not has_gold:
        raise ConfigError(f"--phi_source {args.phi_source}: {args.input} has no gold PHI annotations "
                          "(give i2b2 2014/2006 XML or brat .ann, or use --phi_source model)")
    found = [[] for _ in notes]
    if args.phi_source in ("model", "both"):
        if not args.checkpoint:
            raise ConfigError(f"--phi_source {args.phi_source} needs --checkpoint (a fine-tuned de-id model)")
        from gatortron_jax.annotations.documents import Document
        from gatortron_jax.inference import ner_predict

        plain = [Document(d.id, d.text, [], [], d.source) for d in notes]
        from gatortron_jax.models.model_dir import read_model_info

        stored = read_model_info(args.checkpoint)
        if (args.operating_point == "stored" and stored.get("operating_point")) or (
                args.patterns == "stored" and stored.get("patterns")):  # decode as the streamed path does
            from gatortron_jax.finetuning import windowing
            from gatortron_jax.inference.stream import scored_documents

            tagger = _tagger(args)
            encoded, _ = windowing.encode_documents(plain, tagger.tokenizer, tagger.max_length, tagger.overlap,
                                                    first_subword=tagger.first_subword)
            found = [r[0].entities for r in scored_documents(tagger, encoded)]
        else:
            predictor = ner_predict.NERPredictor(args.checkpoint, batch_size=args.batch_size,
                                                 quantize=flags.quantize_of(args))
            found = [p.entities for p in predictor.predict(plain)]
    if args.phi_source in ("gold", "both"):
        found = [list(f) + list(d.entities) for f, d in zip(found, notes)]
    # Surrogate date shifts derive from (seed, patient): without --seed the seed is secret and unrecorded.
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    patients = deid.patient_ids(notes, args.patient_map, args.patient_id_pattern, table_patients)
    results = [deid.deidentify(note, phi, args.mode, seed, patient_id=patients[note.id])
               for note, phi in zip(notes, found)]
    leakage = [deid.leakage_report(n, r, show_text=args.show_text) for n, r in zip(notes, results)] \
        if has_gold else None
    summary = deid.write_deid(results, args.output, args.mode, fmt, leakage)
    log.info("de-identified %d notes (%s, PHI from %s): removed %s; %d kept by policy (ages <= 89); "
             "%d surrogate(s) fell back to masks; wrote %s", summary["notes"], args.mode, args.phi_source,
             summary["removed_by_type"], summary["kept_by_policy"], summary["surrogate_fallbacks_masked"],
             args.output)
    if leakage is not None:
        _log_leakage(summary["leakage"], args.show_text, os.path.join(args.output, "leakage_report.json"))
    return 0


def _is_csv_or_parquet(path: str) -> bool:
    """A note table only the streaming ``deid`` reads (``note_sources.detect_kind``'s extensions)."""
    return path.lower().endswith((".csv", ".tsv", ".parquet", ".pq"))


def _deid_streams(args: argparse.Namespace) -> bool:
    """Raw notes with the model's PHI go through the streaming driver (bounded memory, resumable,
    sharded); annotated inputs (the leakage audit) and a table's patient column stay in memory."""
    from gatortron_jax.inference import deid

    if args.phi_source != "model" or args.patient_id_field:
        return False
    if args.input_format in ("csv", "parquet"):
        return True
    if args.input_format == "auto" and os.path.isfile(args.input) and _is_csv_or_parquet(args.input):
        return True
    kind = deid.detect_input_format(args.input) if args.input_format == "auto" else args.input_format
    return kind in ("txt", "jsonl") and os.path.exists(args.input)


def _deid_stream(args: argparse.Namespace) -> int:
    import secrets

    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.inference import deid, deid_stream, stream
    from gatortron_jax.inference.note_sources import NoteSource

    if not args.checkpoint:
        raise ConfigError("--phi_source model needs --checkpoint (a fine-tuned de-id model)")
    shard, num_shards = flags.shard_flags(args)
    source = NoteSource(args.input, None if args.input_format == "auto" else args.input_format,
                        id_field=args.id_field, text_field=args.text_field, strict=args.strict,
                        show_text=args.show_text, gold_field=args.gold_field)
    fmt = args.format or ("jsonl" if source.kind != "txt" else "brat")
    tagger = _tagger(args)
    options = stream.StreamOptions(output_dir=args.output, chunk_notes=args.chunk_notes, show_text=args.show_text,
                                   shard=shard, num_shards=num_shards, tokenize=args.tokenize, workers=args.workers)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    summary = deid_stream.run_deid_stream(
        tagger, source, options, mode=args.mode, fmt=fmt, seed=seed, seed_recorded=args.seed is not None,
        patient_of=deid.PatientResolver(args.patient_map, args.patient_id_pattern),
        patient_settings={"patient_map": os.path.abspath(args.patient_map) if args.patient_map else None,
                          "patient_id_pattern": args.patient_id_pattern})
    log.info("de-identified %d of %d note(s) (%s, PHI from the model; %d failed: failed%s.jsonl): removed %s; "
             "%d kept by policy (ages <= 89); %d surrogate(s) fell back to masks; wrote %s",
             summary["notes"], summary["notes_read"], args.mode, summary["notes_failed"],
             "" if num_shards == 1 else "." + options.shard_tag, summary["removed_by_type"],
             summary["kept_by_policy"], summary["surrogate_fallbacks_masked"], args.output)
    if "leakage" in summary:
        _log_leakage(summary["leakage"], args.show_text, options.output_name("leakage_report", "json"))
    return 0


def _log_leakage(lk: dict, show_text: bool, path: str) -> None:
    """The leakage audit in one line (counts only)."""
    log.log(logging.WARNING if lk["leaked"] else logging.INFO,
            "leakage: %d of %d gold PHI spans survive in the output (%.2f%%; %d whole, %d partly, in %d notes; by "
            "type %s); %d kept by policy; details (no text%s) in %s", lk["leaked"], lk["gold_phi"],
            100 * lk["leaked_fraction"], lk["leaked_whole"], lk["leaked_partly"], lk["notes_with_leaks"],
            lk["leaked_by_type"], lk["kept_by_policy"], ", --show_text: with text" if show_text else "", path)


def cmd_convert_notes(args: argparse.Namespace, overrides: list[str]) -> int:
    """Annotated notes (MEDDOCAN release, brat, i2b2 2014-layout XML) → a .jsonl note table."""
    from gatortron_jax.annotations.note_table import write_note_table

    if args.format == "meddocan":
        from gatortron_jax.scoring.meddocan import read_release

        docs = read_release(args.input)
    elif args.format == "brat":
        from gatortron_jax.annotations.formats.brat import read_brat_dir

        docs = read_brat_dir(args.input, strict=args.strict)
    else:
        from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

        docs = read_i2b2_2014_dir(args.input, strict=args.strict)
    if not docs:
        from gatortron_jax.core.errors import InputError

        raise InputError(f"{args.input}: no {args.format} notes found")
    n = write_note_table(docs, args.output, with_gold=args.with_gold, gold_field=args.gold_field)
    log.info("wrote %d note(s)%s to %s", n["notes"],
             f" with {n['gold_spans']} gold PHI span(s) in column {args.gold_field!r}" if args.with_gold else "",
             args.output)
    return 0


def _decoding_flags(p) -> None:
    p.add_argument("--operating_point", default="stored", choices=["stored", "argmax"],
                   help="stored: the model dir's recall thresholds (evaluate --target_recall), if any; argmax: none")
    p.add_argument("--patterns", default="stored", choices=["stored", "none"],
                   help="stored: the model dir's pattern recognizers/lists beside the model, if any; none: model alone")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this family's subcommands; each sets ``handler`` (and ``accepts_gin`` where gin bindings apply)."""
    p = sub.add_parser("embed", help="one float32 [tokens, hidden] array of last hidden states per input line")
    p.add_argument("--checkpoint", required=True, help="model dir (from pretrain or import-hf)")
    p.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    p.add_argument("--output", required=True, help=".npz file; key = line index as a string")
    p.add_argument("--max_length", type=int, default=None, help="window length incl. [CLS]/[SEP] "
                   "(default max_position_embeddings)")
    p.add_argument("--overlap", type=int, default=None, help="tokens shared by neighbouring windows (default half)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--chunk_lines", type=int, default=256, help="lines embedded and written at a time (memory bound)")
    flags.add_int8_flag(p)
    flags.add_input_flags(p)
    p.set_defaults(handler=cmd_embed)
    p = sub.add_parser("predict", help="tag raw .txt notes (NER), or label a task-format file / brat dir (RE, NLI, STS)")
    p.add_argument("--checkpoint", required=True, help="fine-tuned model dir")
    p.add_argument("--input", required=True, help="NER: a directory of .txt notes (recursive), a .txt file, or a "
                   ".jsonl / .csv / .parquet note table (e.g. an OMOP note export)")
    p.add_argument("--output", required=True, help="output directory (rerun the same command to resume)")
    p.add_argument("--format", default="brat", choices=["brat", "i2b2", "i2b2_2014", "jsonl", "none"],
                   help="per-note files; i2b2: .con (2010) or .xml (2012/2014), by the model's task; i2b2_2014: "
                        "de-id XML; jsonl/none: only the entity table")
    p.add_argument("--batch_size", type=int, default=32, help="windows per forward at full length (shorter "
                   "length buckets take proportionally more)")
    g = p.add_argument_group("NER over note tables (streamed, resumable, sharded)")
    g.add_argument("--input_format", default=None, choices=["txt", "jsonl", "csv", "parquet"],
                   help="default: by extension (a directory is a .txt tree)")
    g.add_argument("--id_field", default=None, help="note id field/column (default id for .jsonl, note_id for "
                   "CSV/Parquet)")
    g.add_argument("--text_field", default=None, help="note text field/column (default text / note_text)")
    g.add_argument("--table", action="append", default=[], choices=["jsonl", "parquet"],
                   help="entity table formats; entities.jsonl is always written (entity text only with --show_text)")
    _decoding_flags(g)
    g.add_argument("--min_score", type=float, default=0.0, help="drop entities whose score (mean token "
                   "probability of the predicted labels) is below this")
    flags.add_stream_flags(g)
    flags.add_input_flags(p)
    flags.add_distributed_flags(p)
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("deid", help="de-identify notes (raw .txt, or annotated i2b2 2014/2006 XML / brat, "
                       "which adds a leakage report) with a fine-tuned PHI model or the gold PHI")
    p.add_argument("--checkpoint", default=None, help="fine-tuned de-id model dir (e.g. i2b2_2014_deid); "
                   "not needed with --phi_source gold")
    p.add_argument("--input", required=True, help="a directory (recursive) or one file: .txt notes, a .jsonl "
                   "note table (one {\"id\", \"text\", ...} per line), brat .txt+.ann, i2b2 2014 .xml or a 2006 .xml")
    p.add_argument("--input_format", default="auto",
                   choices=["auto", "txt", "jsonl", "csv", "parquet", "brat", "i2b2_2014", "i2b2_2006"],
                   help="auto: a .jsonl/.csv/.parquet file -> note table; .xml -> i2b2 2014 (2006 when it holds "
                        "<RECORD>); .ann -> brat; else .txt")
    p.add_argument("--id_field", default=None, help="note table: the field naming each note (default id for "
                   ".jsonl, note_id for CSV/Parquet)")
    p.add_argument("--text_field", default=None, help="note table: the text field/column (default text / note_text)")
    p.add_argument("--patient_id_field", default=None, help="note table: the field naming the patient "
                   "(surrogates and date shift consistent across that patient's notes)")
    p.add_argument("--output", required=True, help="output directory: redacted notes (+ brat .ann or 2014 .xml), "
                   "replacements.jsonl, deid_summary.json, leakage_report.json (annotated input)")
    p.add_argument("--format", default=None, choices=["brat", "i2b2_2014", "jsonl"],
                   help="brat: <id>.txt + <id>.ann; i2b2_2014: <id>.xml (the official scripts read it); jsonl: "
                        "one deidentified.jsonl of {id, text} (default for a .jsonl table, else brat)")
    p.add_argument("--mode", default="mask", choices=["mask", "surrogate"])
    _decoding_flags(p)
    p.add_argument("--phi_source", default="model", choices=["model", "gold", "both"],
                   help="which PHI to replace: the model's predictions, the input's gold annotations (to "
                        "release an annotated corpus), or both")
    p.add_argument("--patient_map", default=None, help="CSV/TSV of note_id,patient_id: surrogates and date "
                   "shift consistent across a patient's notes (default: per note)")
    p.add_argument("--patient_id_pattern", default=None, help="regex whose first group in the note id is the "
                   "patient, e.g. '^(\\d+)-' for i2b2 2014 names like 110-02")
    p.add_argument("--seed", type=int, default=None, help="surrogate seed (default: random and unrecorded)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--gold_field", default=None, help="a note table's column of gold PHI spans "
                   "([{\"start\", \"end\", \"type\"}, ...] in character offsets: a JSON list in .jsonl, JSON "
                   "text in CSV, JSON text or list<struct> in Parquet; convert-notes --with_gold writes .jsonl): "
                   "adds leakage_report.json (gold spans surviving the output; no text unless --show_text)")
    g = p.add_argument_group("raw notes with --phi_source model: streamed, resumable, sharded (as predict)")
    flags.add_stream_flags(g)
    flags.add_input_flags(p)
    flags.add_distributed_flags(p)
    p.set_defaults(handler=cmd_deid)

    p = sub.add_parser("convert-notes", help="annotated notes (MEDDOCAN, brat, i2b2 XML) -> a .jsonl note table for "
                       "predict/deid, with their gold PHI spans (--with_gold) for deid's leakage audit")
    p.add_argument("--format", required=True, choices=["meddocan", "brat", "i2b2"],
                   help="meddocan: a release split folder (brat/ or xml/ inside); brat: .txt + .ann; i2b2: 2014-layout "
                        "XML under any root")
    p.add_argument("--input", required=True, help="directory of annotated notes")
    p.add_argument("--output", required=True, help=".jsonl note table: {\"id\", \"text\"[, GOLD_FIELD]} per line")
    p.add_argument("--with_gold", action="store_true", help="add each note's gold PHI spans")
    p.add_argument("--gold_field", default="phi", help="the gold column's name (default phi)")
    flags.add_input_flags(p)
    p.set_defaults(handler=cmd_convert_notes)
