"""``gatortron-jax`` command line: one subcommand per job, gin at the edge.

    gatortron-jax pretrain --gin_file=gin/pretrain/sample_tiny.gin --model_dir=DIR [--init_checkpoint=DIR] [--gin.NAME=VALUE ...]
    gatortron-jax prepare-corpus --input NOTES --vocab_path V --output CACHE [--num_workers K] [--shard I --num_shards N]
    gatortron-jax train-vocab --input data/sample_corpus/train --vocab_size 4000 --output data/sample_vocab/spm
    gatortron-jax make-sample-data --output data/sample_corpus
    gatortron-jax import-hf HF_DIR OUT_DIR | export-hf MODEL_DIR OUT_DIR | embed --checkpoint DIR ...
    gatortron-jax import-megatron CKPT OUT_DIR | export-megatron MODEL_DIR OUT [--tensor_parallel N] [--nemo]
    gatortron-jax finetune | evaluate | predict | deid   (NER/de-id, RE, NLI, STS, span QA; one loop, task adapters;
                                                          rerunning finetune on its --model_dir resumes)
    gatortron-jax benchmark --init_checkpoint=DIR --mixture public_biomedical --data_root ROOT --output OUT [--seeds 3]
    gatortron-jax plan --gin_file=gin/models/large.gin --mesh data=16,fsdp=8,tensor=1 --batch 1024 --seq 512

Each subcommand parses its flags, builds its config dataclasses at the gin edge
(``gin_config.py``), calls one library function (``pretraining.trainer``, ``finetuning.*``,
``inference.*``, ``convert.*``, ``benchmark.runner``, ``planning.planner``) and prints what it returned; library code
never reads flags or gin.

Errors in input or configuration print one line (``error: ...``) and exit with status 2; a run
stopped by SIGTERM (preemption) checkpoints and exits with status 75. Input policy (every
command that reads notes or annotations): undecodable bytes are replaced, malformed ``.jsonl``
lines, annotations that do not match their note and bad task examples are skipped, each with a
PHI-free file:line warning and a count in the input summary (``pretrain`` also writes
MODEL_DIR/input_report.json; ``finetune`` records its read summaries in config.json);
``--strict`` makes them errors, ``--show_text`` lets the warnings quote a short escaped excerpt.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported anywhere

from gatortron_jax.cli.quiet import quiet_tensorflow  # noqa: E402
from gatortron_jax.core.errors import GatortronError  # noqa: E402

log = logging.getLogger("gatortron_jax")

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint saved after SIGTERM; rerun the same command to resume


def _split_gin_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Pull ``--gin.NAME=VALUE`` out of argv (argparse cannot declare open-ended flags)."""
    rest, overrides = [], []
    for arg in argv:
        if arg.startswith("--gin."):
            overrides.append(arg[len("--gin."):])
        else:
            rest.append(arg)
    return rest, overrides


def _add_distributed_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("multi-process (jax.distributed)")
    g.add_argument("--distributed", action="store_true", help="join a multi-process run (SLURM/MPI env autodetected)")
    g.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    g.add_argument("--num_processes", type=int, default=None)
    g.add_argument("--process_id", type=int, default=None)


def _add_stream_flags(g) -> None:
    """The streaming driver's settings (inference/stream.py), shared by predict and deid."""
    g.add_argument("--chunk_notes", type=int, default=512, help="notes per chunk (memory bound; resume unit)")
    g.add_argument("--shard", type=int, default=None, help="this job's shard: notes with index %% num_shards == shard")
    g.add_argument("--num_shards", type=int, default=None, help="default: 1, or the process count under "
                   "--distributed")
    g.add_argument("--tokenize", default="inline", choices=["inline", "thread", "process"],
                   help="where notes are tokenized: between forwards, in a thread one chunk ahead (overlaps an "
                        "accelerator's forward), or in --workers spawned processes")
    g.add_argument("--workers", type=int, default=1, help="tokenizer processes for --tokenize process")
    g.add_argument("--dtype", default=None, choices=["float32", "bfloat16"], help="compute dtype (bfloat16 for "
                   "GPU/TPU; default the model's)")


def _add_casing_flags(p: argparse.ArgumentParser, default: str) -> None:
    """--lowercase / --cased for the checkpoint importers; ``default`` says where casing comes from otherwise."""
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                      help=f"uncased tokenizer (default: {default})")
    case.add_argument("--cased", dest="lowercase", action="store_false", default=None, help="cased tokenizer")


def _add_input_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input hygiene (policy: gatortron_jax/annotations/input_policy.py)")
    g.add_argument("--strict", action="store_true",
                   help="fail with one error line (file:line) on undecodable bytes, malformed .jsonl lines, "
                        "annotations that do not match their note, or bad task examples (default: replace / "
                        "skip them, warn with file:line and count them in the input summary)")
    g.add_argument("--show_text", action="store_true",
                   help="let replaced-byte warnings quote <=80 escaped characters around the first bad byte; "
                        "local debugging only: the excerpt may contain PHI (never written to input_report.json)")


def _maybe_init_distributed(args: argparse.Namespace) -> None:
    if args.distributed or args.coordinator_address:
        from gatortron_jax.core import distributed

        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def cmd_pretrain(args: argparse.Namespace, overrides: list[str]) -> int:
    _maybe_init_distributed(args)
    from gatortron_jax.cli import gin_config
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.pretraining import trainer
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
    from gatortron_jax.core.optimizer import OptimizerConfig

    if args.strict:  # recorded in operative_config.gin and config.json like any other binding
        overrides = [*overrides, "MLMDataConfig.strict=True"]
    if args.show_text:
        overrides = [*overrides, "MLMDataConfig.show_text=True"]
    gin_config.parse(args.gin_file, overrides)
    data = gin_config.build(MLMDataConfig)
    # Raw notes are prepared into MODEL_DIR/corpus_cache inside train_mlm (which also writes
    # MODEL_DIR/input_report.json from the cache manifest); MLMDataConfig carries strict/show_text.
    summary = trainer.train_mlm(
        args.model_dir,
        gin_config.build(EncoderConfig),
        data,
        gin_config.build(TrainConfig),
        gin_config.build(OptimizerConfig),
        gin_config.build(MeshConfig),
        init_checkpoint=args.init_checkpoint,
    )
    import jax

    if jax.process_index() == 0:
        with open(os.path.join(args.model_dir, "operative_config.gin"), "w") as f:
            f.write(gin_config.operative_config())
    if summary["preempted"]:
        log.warning("stopped early at step %d (preempted); exit status %d asks the scheduler to requeue",
                    summary["end_step"], EXIT_PREEMPTED)
        return EXIT_PREEMPTED
    if summary["first_loss"] is not None:
        log.info(
            "done: steps %d→%d, train loss %.4f → %.4f; checkpoints in %s",
            summary["start_step"], summary["end_step"], summary["first_loss"], summary["last_loss"],
            os.path.join(args.model_dir, "checkpoints"),
        )
    else:
        log.info("nothing to do: %s is already at step %d", args.model_dir, summary["end_step"])
    return 0


def cmd_prepare_corpus(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.pretraining import prepare

    result = prepare.prepare_corpus(
        args.input, args.vocab_path, args.output,
        prepare.PrepareOptions(seq_len=args.seq_len, doc_per_line=args.doc_per_line,
                               validation_fraction=args.validation_fraction, strict=args.strict),
        num_workers=args.num_workers, shard=args.shard, num_shards=args.num_shards, shard_mb=args.shard_mb,
        show_text=args.show_text,
    )
    manifest = result["manifest"]
    if manifest is None:
        log.info("wrote %d shard(s) for host shard %d/%d; manifest.json follows once every host's shards are "
                 "committed (rerun without --shard to finish, or let the last host write it)",
                 len(result["written"]), args.shard, args.num_shards)
        return 0
    splits = manifest["splits"]
    log.info("input summary: %s", manifest["input_report"]["summary"])
    log.info("corpus cache %s: train %s chunks (%s tokens), validation %s chunks; %s", args.output,
             f"{splits['train']['chunks']:,}", f"{splits['train']['tokens']:,}", f"{splits['validation']['chunks']:,}",
             "unchanged, nothing re-tokenized" if result["up_to_date"] else f"{len(result['written'])} shard(s) written")
    return 0


def cmd_train_vocab(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.annotations import input_policy as input_report
    from gatortron_jax.text import vocab

    inputs: list[str] = []
    for path in args.input:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                inputs += [os.path.join(root, f) for f in sorted(files) if f.endswith((".txt", ".jsonl"))]
        else:
            inputs.append(path)
    report = input_report.InputReport()
    model = vocab.train_sentencepiece(sorted(inputs), args.output, args.vocab_size,
                                      model_type=args.model_type, strict=args.strict, show_text=args.show_text,
                                      report=report, max_sentences=args.max_sentences)
    log.info("input summary: %s", report.summary())
    log.info("wrote %s (%d pieces from %d files)", model, args.vocab_size, len(inputs))
    return 0


def cmd_make_sample_data(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.kind == "deid":
        from gatortron_jax.sample_data import deid as deid_samples

        out = args.output if args.output != "data/sample_corpus" else "data/deid_samples"
        counts = deid_samples.write_samples(out, args.seed)
        log.info("wrote synthetic de-id XML samples to %s: %s", out, counts)
        return 0
    from gatortron_jax.sample_data import corpus as synthetic

    counts = synthetic.write_sample_corpus(args.output, args.num_train, args.num_validation, args.seed)
    log.info("wrote synthetic notes to %s: %s", args.output, counts)
    return 0


def cmd_plan(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.planning import planner as planning  # sets up simulated CPU devices before JAX starts
    from gatortron_jax.cli import gin_config
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.pretraining.config import TrainConfig

    gin_config.parse(args.gin_file, overrides)
    return planning.run(args, overrides, gin_config.build(EncoderConfig), gin_config.build(TrainConfig),
                        gin_config.build(MeshConfig), gin_config.build(OptimizerConfig))


def cmd_import_hf(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.hf_dir import import_hf

    s = import_hf(args.hf_dir, args.out_dir, lowercase=args.lowercase)
    print(f"imported {s['model_type']} ({s['layers']} layers, hidden {s['hidden']}, {s['tensors']} tensors) "
          f"from {', '.join(s['files'])} -> {s['out_dir']}")
    print(f"vocabulary: {s['vocab_entries']} entries, {s['embedding_rows']} embedding rows "
          f"({s['embedding_rows'] - s['vocab_entries']} padding rows kept); "
          f"{'uncased (lowercase)' if s['lowercase'] else 'cased'}: {s['lowercase_source']}")
    if not s["has_mlm_head"]:
        print("note: no MLM head in the checkpoint; a freshly initialised head is stored (export-hf omits it)")
    if not s["has_pooler"]:
        print("note: no pooler in the checkpoint; the model is stored without one")
    for kind, label in (("task_heads", "task heads ignored (e.g. NSP)"), ("buffers", "buffers skipped"),
                        ("tied", "tied to the word embeddings")):
        if s["ignored"][kind]:
            print(f"note: {label}: {', '.join(s['ignored'][kind])}")
    return 0


def cmd_export_hf(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.hf_dir import export_hf

    s = export_hf(args.model_dir, args.out_dir)
    print(f"exported {s['tensors']} tensors as {s['architectures'][0]} ({s['model_type']}) -> {s['out_dir']}: "
          f"{', '.join(s['files'])}")
    for note in s.get("notes", []):
        print(f"note: {note}")
    return 0


def cmd_import_megatron(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.megatron import import_megatron

    s = import_megatron(args.path, args.out_dir, lowercase=args.lowercase, vocab_file=args.vocab,
                        checkpoint_version=args.checkpoint_version)
    print(f"imported {s['format']} BERT ({s['layers']} layers, hidden {s['hidden']}, {s['tensors']} tensors, "
          f"{s['tensor_parallel']} tensor-parallel shard(s), checkpoint_version {s['checkpoint_version']:g}) "
          f"-> {s['out_dir']}")
    print(f"vocabulary: {s['vocab_entries']} entries, {s['embedding_rows']} embedding rows "
          f"({s['embedding_rows'] - s['vocab_entries']} padding rows kept); "
          f"{'uncased (lowercase)' if s['lowercase'] else 'cased'}: {s['lowercase_source']}")
    for kind, label in (("task_heads", "task heads ignored (NSP binary_head)"), ("tied", "tied to the word embeddings"),
                        ("skipped_extra_state", "Transformer Engine _extra_state skipped")):
        if s["ignored"].get(kind):
            print(f"note: {label}: {len(s['ignored'][kind])} tensor(s)")
    for note in s["notes"] + ([] if s["has_mlm_head"] else ["no lm_head: a freshly initialised MLM head is stored"]):
        print(f"note: {note}")
    return 0


def cmd_export_megatron(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.convert.megatron import export_megatron

    s = export_megatron(args.model_dir, args.out, tensor_parallel=args.tensor_parallel, nemo=args.nemo)
    print(f"exported {s['format']} (TP {s['tensor_parallel']}, padded_vocab_size {s['padded_vocab_size']}, "
          f"{s['tokenizer_type']}) -> {', '.join(s['files'])}")
    for note in s["notes"]:
        print(f"note: {note}")
    return 0


def cmd_embed(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.inference.embed import embed_file

    s = embed_file(args.checkpoint, args.input, args.output, max_length=args.max_length, overlap=args.overlap,
                   batch_size=args.batch_size, chunk_lines=args.chunk_lines, strict=args.strict,
                   show_text=args.show_text)
    print(f"wrote {s['output']}: {s['lines']} arrays (key = line index '0'..'{max(s['lines'] - 1, 0)}'), each "
          f"float32 [tokens incl. [CLS]/[SEP], {s['hidden']}] last hidden states.")
    print("An encoder gives one contextual vector per token, not text: feed these to a downstream model "
          "(classifier, NER tagger, similarity).")
    if s["lines"]:
        print(f"tokens per line: min {s['tokens_min']}, max {s['tokens_max']}; {s['windowed_lines']} line(s) longer "
              f"than {s['max_length']} positions were windowed (overlap {s['overlap']}) and stitched, not truncated")
    return 0


def _sequence_task_bound() -> bool:
    """True when the parsed gin config names a TaskDataConfig.task (else the NER flow runs)."""
    import gin

    try:
        return bool(gin.query_parameter("TaskDataConfig.task"))
    except ValueError:
        return False


def cmd_finetune(args: argparse.Namespace, overrides: list[str]) -> int:
    _maybe_init_distributed(args)
    from gatortron_jax.cli import gin_config
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.finetuning.config import NERDataConfig, TaskDataConfig
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.models.config import EncoderConfig

    gin_config.parse(args.gin_file, overrides)
    data = gin_config.build(TaskDataConfig if _sequence_task_bound() else NERDataConfig)
    if args.strict:  # the input policy travels in the data config (recorded in config.json)
        data = dataclasses.replace(data, strict=True)
    result = finetune(
        args.model_dir,
        data,
        gin_config.build_finetune_config(),
        gin_config.build(OptimizerConfig),
        gin_config.build(MeshConfig),
        init_checkpoint=args.init_checkpoint,
        model_config=None if args.init_checkpoint else gin_config.build(EncoderConfig),
    )
    import jax

    if jax.process_index() == 0:
        with open(os.path.join(args.model_dir, "operative_config.gin"), "w") as f:
            f.write(gin_config.operative_config())
    if result.get("preempted"):
        log.warning("stopped early (preempted); exit status %d asks the scheduler to requeue", EXIT_PREEMPTED)
        return EXIT_PREEMPTED
    log.info("done: best dev %s %.4f at epoch %d; model in %s", result["metric"], result["best_dev_metric"],
             result["best_epoch"], args.model_dir)
    return 0


def _write_eval(args: argparse.Namespace, result: dict) -> str:
    import json

    out = args.output or os.path.join(args.checkpoint, f"eval_{result['task']}_{args.split}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    return out


def cmd_evaluate(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.cli import gin_config
    from gatortron_jax.evaluation.ner_metrics import format_table
    from gatortron_jax.finetuning.config import NERDataConfig
    from gatortron_jax.inference.evaluate import evaluate_ner
    from gatortron_jax.models.model_dir import kind_of, read_model_info

    if args.gin_file:
        gin_config.parse(args.gin_file, overrides)
    info = read_model_info(args.checkpoint)
    if kind_of(info) == "sequence_task":
        return _evaluate_sequence_task(args)
    if args.gin_file:
        data = gin_config.build(NERDataConfig)
    else:  # the task and data the model was fine-tuned on
        data = NERDataConfig(**info.get("finetune", {}).get("data_config", {}))
    if args.strict:
        data = dataclasses.replace(data, strict=True)
    if _is_deid_task(data.task):  # the NER result plus the binary / per-category / HIPAA de-id scores
        from gatortron_jax.inference.deid import evaluate_deid_model

        result = evaluate_deid_model(args.checkpoint, data, split=args.split, batch_size=args.batch_size)
    else:
        result = evaluate_ner(args.checkpoint, data, split=args.split, batch_size=args.batch_size)
    out = _write_eval(args, result)
    print(f"{result['task']} / {args.split}: {result['documents']} documents")
    print(format_table(result["scores"]))
    if "deid" in result:
        from gatortron_jax.evaluation.deid_metrics import format_deid_tables

        print(format_deid_tables(result["deid"]))
    print(f"wrote {out} (scores with the recipe: seed, configs, checkpoint and data fingerprints, versions)")
    return 0


def _is_deid_task(name: str) -> bool:
    from gatortron_jax.finetuning import ner_tasks

    try:
        return ner_tasks.get_ner_task(name).deid
    except GatortronError:
        return False


def cmd_predict(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.models.model_dir import kind_of, read_model_info

    if kind_of(read_model_info(args.checkpoint)) == "sequence_task":
        from gatortron_jax.inference.tasks import predict_task

        s = predict_task(args.checkpoint, args.input, args.output, batch_size=args.batch_size, strict=args.strict)
        log.info("predicted %d examples; wrote %s to %s", s["examples"], ", ".join(s["written"]), args.output)
        return 0
    return _predict_ner_stream(args)


def _shard_flags(args: argparse.Namespace) -> tuple[int, int]:
    """--shard/--num_shards; else, with --distributed, one shard per process of the launch; else 0 of 1.

    Inference shards share nothing, so ``predict --distributed`` does not join JAX's
    collective runtime (a global mesh would make every process wait on the others); it
    takes its process id and count from --process_id/--num_processes, or the launcher's
    environment (JAX_PROCESS_ID/JAX_NUM_PROCESSES, SLURM_PROCID/SLURM_NTASKS, Open MPI).
    """
    from gatortron_jax.core.errors import ConfigError

    if args.num_shards is not None:
        return (args.shard or 0), args.num_shards
    if args.shard is not None:
        raise ConfigError(f"--shard {args.shard}: give --num_shards too")
    if not (args.distributed or args.coordinator_address):
        return 0, 1
    for rank, size in ((args.process_id, args.num_processes),
                       *((os.environ.get(r), os.environ.get(n)) for r, n in (
                           ("JAX_PROCESS_ID", "JAX_NUM_PROCESSES"), ("SLURM_PROCID", "SLURM_NTASKS"),
                           ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")))):
        if rank not in (None, "") and size not in (None, ""):
            return int(rank), int(size)
    raise ConfigError("--distributed: no process id/count (pass --process_id/--num_processes, or run under srun/mpirun)")


def _predict_ner_stream(args: argparse.Namespace) -> int:
    """NER ``predict``: streamed in chunks, resumable, sharded (inference/stream.py)."""
    from gatortron_jax.inference import stream
    from gatortron_jax.inference.note_sources import NoteSource

    shard, num_shards = _shard_flags(args)
    tagger = stream.ScoringTagger(args.checkpoint, batch_size=args.batch_size, dtype=args.dtype)
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


def _evaluate_sequence_task(args: argparse.Namespace) -> int:
    from gatortron_jax.cli import gin_config
    from gatortron_jax.finetuning.config import TaskDataConfig
    from gatortron_jax.inference.evaluate import evaluate_task

    data = gin_config.build(TaskDataConfig) if args.gin_file and _sequence_task_bound() else None
    result = evaluate_task(args.checkpoint, data, split=args.split, batch_size=args.batch_size, strict=args.strict)
    out = _write_eval(args, result)
    print(f"{result['task']} / {args.split}: {result['examples']} examples; {result['metric']} {result['value']:.4f}")
    sc = result["scores"]
    if "micro" in sc:
        m = sc["micro"]
        print(f"micro P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f} (excluding {result['task']}'s "
              f"negative label)")
        for t, v in sc["per_type"].items():
            print(f"  {t:<16} P {v['precision']:.4f} R {v['recall']:.4f} F1 {v['f1']:.4f} support {v['support']}")
    enc = result["encoding"]
    if enc.get("truncated"):
        print(f"note: {enc['truncated']} example(s) truncated to max_length")
    if enc.get("question_truncated") or enc.get("answer_outside_all_windows") or enc.get("answer_not_tokenizable"):
        print(f"note: {enc['question_truncated']} question(s) truncated, {enc['answer_not_tokenizable']} answer(s) "
              f"no token covers, {enc['answer_outside_all_windows']} answer(s) in no single window")
    if "exact" in sc:
        print(f"exact match {sc['exact']:.2f}  F1 {sc['f1']:.2f}  ({sc['total']} questions)")
    print(f"wrote {out}")
    return 0


def cmd_deid(args: argparse.Namespace, overrides: list[str]) -> int:
    import secrets

    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.inference import deid

    if _deid_streams(args):
        return _deid_stream(args)
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

        predictor = ner_predict.NERPredictor(args.checkpoint, batch_size=args.batch_size)
        found = [p.entities for p in predictor.predict([Document(d.id, d.text, [], [], d.source) for d in notes])]
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
        lk = summary["leakage"]
        level = logging.WARNING if lk["leaked"] else logging.INFO
        log.log(level, "leakage: %d of %d gold PHI spans survive in the output (%d whole, in %d notes; by type %s); "
                "%d kept by policy; details (no text%s) in %s", lk["leaked"], lk["gold_phi"], lk["leaked_whole"],
                lk["notes_with_leaks"], lk["leaked_by_type"], lk["kept_by_policy"],
                ", --show_text: with text" if args.show_text else "",
                os.path.join(args.output, "leakage_report.json"))
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
    shard, num_shards = _shard_flags(args)
    source = NoteSource(args.input, None if args.input_format == "auto" else args.input_format,
                        id_field=args.id_field, text_field=args.text_field, strict=args.strict,
                        show_text=args.show_text)
    fmt = args.format or ("jsonl" if source.kind != "txt" else "brat")
    tagger = stream.ScoringTagger(args.checkpoint, batch_size=args.batch_size, dtype=args.dtype)
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
    return 0


def cmd_benchmark(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.benchmark import suite
    from gatortron_jax.benchmark.runner import BenchmarkConfig, run_benchmark
    from gatortron_jax.benchmark.table import compare, format_markdown
    from gatortron_jax.core.errors import ConfigError

    if args.compare:
        print(compare(*args.compare), end="")
        return 0
    if args.list:
        for name in suite.mixtures():
            tasks = suite.mixture_tasks(name)
            print(f"{name}: " + ", ".join(f"{t.name} ({t.data_subdir}/)" for t in tasks))
        return 0
    missing = [f"--{k}" for k in ("init_checkpoint", "data_root", "output") if not getattr(args, k)]
    if missing:
        raise ConfigError(f"benchmark needs {', '.join(missing)}")
    cfg = BenchmarkConfig(
        init_checkpoint=args.init_checkpoint, mixture=args.mixture, data_root=args.data_root, output=args.output,
        seeds=args.seeds, tasks=tuple(t for t in (args.tasks or "").split(",") if t), quick=args.quick,
        quick_steps=args.quick_steps, quick_epochs=args.quick_epochs, extra_bindings=tuple(overrides),
    )
    summary = run_benchmark(cfg)
    print(format_markdown(summary), end="")
    print(f"wrote {os.path.join(args.output, 'results.md')} and results.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatortron-jax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="masked-LM pretraining (resumes from --model_dir if it has checkpoints)")
    p.add_argument("--gin_file", action="append", required=True, help="gin file(s); later files win")
    p.add_argument("--model_dir", required=True, help="checkpoints, TensorBoard events and config go here")
    p.add_argument("--init_checkpoint", default=None,
                   help="model dir (pretrain / import-hf) to continue MLM training from: encoder and MLM head "
                        "are loaded, optimizer and step start fresh, the vocabulary is the checkpoint's")
    _add_input_flags(p)
    _add_distributed_flags(p)
    p.set_defaults(fn=cmd_pretrain)

    p = sub.add_parser("prepare-corpus", help="tokenize raw notes once into a corpus cache pretrain reads")
    p.add_argument("--input", required=True, help="directory of notes: .txt (one per file, or per line with "
                   "--doc_per_line), .jsonl (\"text\" field); train/ + validation/ subdirectories are kept")
    p.add_argument("--vocab_path", required=True, help="SentencePiece .model or WordPiece vocab.txt")
    p.add_argument("--output", required=True, help="cache directory (manifest.json + token shards)")
    p.add_argument("--seq_len", type=int, default=512, help="chunk length incl. [CLS]/[SEP] (= TrainConfig.seq_len)")
    p.add_argument("--doc_per_line", action="store_true")
    p.add_argument("--validation_fraction", type=float, default=0.05,
                   help="held-out share by a stable hash of each document id (without train/ validation/ dirs)")
    p.add_argument("--num_workers", type=int, default=1, help="local worker processes (one shard each at a time)")
    p.add_argument("--shard", type=int, default=0, help="this host's index (e.g. SLURM_ARRAY_TASK_ID)")
    p.add_argument("--num_shards", type=int, default=1, help="hosts sharing the work")
    p.add_argument("--shard_mb", type=float, default=256, help="input text per output shard (the unit of work)")
    _add_input_flags(p)
    p.set_defaults(fn=cmd_prepare_corpus)

    p = sub.add_parser("train-vocab", help="train a SentencePiece vocabulary on plain-text notes")
    p.add_argument("--input", nargs="+", required=True, help="files or directories of .txt notes")
    p.add_argument("--vocab_size", type=int, required=True)
    p.add_argument("--output", required=True, help="output prefix; writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--model_type", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--max_sentences", type=int, default=5_000_000,
                   help="sentences sampled (seeded, uniform over the whole input) to train on; bounds memory "
                        "(default 5M: ~0.5 GB of text) whatever the corpus size")
    _add_input_flags(p)
    p.set_defaults(fn=cmd_train_vocab)

    p = sub.add_parser("make-sample-data", help="write the synthetic clinical sample corpus (or de-id XML samples)")
    p.add_argument("--kind", default="corpus", choices=["corpus", "deid"],
                   help="corpus: plain notes for pretraining; deid: i2b2 2014 / 2006 XML (default output "
                        "data/deid_samples)")
    p.add_argument("--output", default="data/sample_corpus")
    p.add_argument("--num_train", type=int, default=400)
    p.add_argument("--num_validation", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_make_sample_data)

    # --- checkpoint interop (import-hf / export-hf / import-megatron / export-megatron / embed) ---
    p = sub.add_parser("import-hf", help="HF megatron-bert/bert directory -> model dir (orbax + config + vocab)")
    p.add_argument("hf_dir", help="directory with config.json, model.safetensors or pytorch_model.bin, vocab.txt")
    p.add_argument("out_dir", help="model dir to create")
    _add_casing_flags(p, "tokenizer_config.json do_lower_case, else inferred")
    p.set_defaults(fn=cmd_import_hf)

    p = sub.add_parser("export-hf", help="model dir -> safetensors + config.json + vocab for transformers")
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.set_defaults(fn=cmd_export_hf)

    p = sub.add_parser("import-megatron", help="Megatron-LM .pt (file or mp_rank_XX shards) or .nemo -> model dir")
    p.add_argument("path", help="MegatronBERT.pt, a Megatron checkpoint dir (mp_rank_XX/...) or a .nemo file")
    p.add_argument("out_dir", help="model dir to create")
    p.add_argument("--vocab", default=None, help="vocab.txt (default: the .nemo's, or vocab.txt next to the checkpoint)")
    p.add_argument("--checkpoint_version", type=float, default=None,
                   help="QKV layout override (default: the checkpoint's checkpoint_version; .nemo/mcore: 3)")
    _add_casing_flags(p, "from tokenizer_type, else inferred from the vocabulary")
    p.set_defaults(fn=cmd_import_megatron)

    p = sub.add_parser("export-megatron", help="model dir -> Megatron-LM checkpoint (release/mp_rank_XX) or .nemo")
    p.add_argument("model_dir")
    p.add_argument("out", help="output directory (or FILE.pt for TP 1; FILE.nemo with --nemo)")
    p.add_argument("--tensor_parallel", type=int, default=1, help="tensor-parallel shards to write")
    p.add_argument("--nemo", action="store_true", help="write a legacy NeMo .nemo archive")
    p.set_defaults(fn=cmd_export_megatron)

    p = sub.add_parser("embed", help="one float32 [tokens, hidden] array of last hidden states per input line")
    p.add_argument("--checkpoint", required=True, help="model dir (from pretrain or import-hf)")
    p.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    p.add_argument("--output", required=True, help=".npz file; key = line index as a string")
    p.add_argument("--max_length", type=int, default=None, help="window length incl. [CLS]/[SEP] "
                   "(default max_position_embeddings)")
    p.add_argument("--overlap", type=int, default=None, help="tokens shared by neighbouring windows (default half)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--chunk_lines", type=int, default=256, help="lines embedded and written at a time (memory bound)")
    _add_input_flags(p)
    p.set_defaults(fn=cmd_embed)

    # --- fine-tuning (finetune / evaluate / predict / deid) ---
    p = sub.add_parser("finetune", help="fine-tune a NER/de-id, RE, NLI, STS or span-QA head (by the gin task); best dev "
                       "checkpoint kept; the same command on the same --model_dir resumes a killed run")
    p.add_argument("--gin_file", action="append", required=True, help="gin file(s), e.g. gin/finetune/sample_ner.gin")
    p.add_argument("--model_dir", required=True, help="directory for the fine-tuned model (an unfinished run of the "
                   "same configuration there is resumed)")
    p.add_argument("--init_checkpoint", default=None, help="pretrained model dir (pretrain / import-hf); "
                   "without it the encoder is freshly initialised from gin")
    _add_input_flags(p)
    _add_distributed_flags(p)
    p.set_defaults(fn=cmd_finetune, accepts_gin=True)

    p = sub.add_parser("evaluate", help="score a fine-tuned model on a task split (NER: strict + lenient F1; RE: micro-F1; NLI: accuracy; STS: Pearson)")
    p.add_argument("--checkpoint", required=True, help="fine-tuned model dir")
    p.add_argument("--gin_file", action="append", default=None, help="gin file(s) naming the task/data "
                   "(default: the task the model was fine-tuned on)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--output", default=None, help="JSON file (default CHECKPOINT/eval_<task>_<split>.json)")
    p.add_argument("--batch_size", type=int, default=32)
    _add_input_flags(p)
    p.set_defaults(fn=cmd_evaluate, accepts_gin=True)

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
    g.add_argument("--min_score", type=float, default=0.0, help="drop entities whose score (mean token "
                   "probability of the predicted labels) is below this")
    _add_stream_flags(g)
    _add_input_flags(p)
    _add_distributed_flags(p)
    p.set_defaults(fn=cmd_predict)

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
    p.add_argument("--phi_source", default="model", choices=["model", "gold", "both"],
                   help="which PHI to replace: the model's predictions, the input's gold annotations (to "
                        "release an annotated corpus), or both")
    p.add_argument("--patient_map", default=None, help="CSV/TSV of note_id,patient_id: surrogates and date "
                   "shift consistent across a patient's notes (default: per note)")
    p.add_argument("--patient_id_pattern", default=None, help="regex whose first group in the note id is the "
                   "patient, e.g. '^(\\d+)-' for i2b2 2014 names like 110-02")
    p.add_argument("--seed", type=int, default=None, help="surrogate seed (default: random and unrecorded)")
    p.add_argument("--batch_size", type=int, default=32)
    g = p.add_argument_group("raw notes with --phi_source model: streamed, resumable, sharded (as predict)")
    _add_stream_flags(g)
    _add_input_flags(p)
    _add_distributed_flags(p)
    p.set_defaults(fn=cmd_deid)

    # --- the benchmark table ---
    p = sub.add_parser("benchmark", help="fine-tune + score every task of a benchmark mixture for N seeds; "
                       "writes OUT/results.md and results.json with each score's recipe (resumable)")
    p.add_argument("--init_checkpoint", default=None, help="pretrained model dir (pretrain / import-hf)")
    p.add_argument("--mixture", default="public_biomedical", help="public_biomedical | gatortron_clinical | yours")
    p.add_argument("--data_root", default=None, help="folder laid out like ../shared/data (DUA data: yours to place)")
    p.add_argument("--output", default=None, help="results directory (a rerun skips finished task/seed runs)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--tasks", default=None, help="comma-separated subset of the mixture's tasks")
    p.add_argument("--quick", action="store_true", help="small budget for small machines (--quick_epochs epochs "
                   "of at most --quick_steps steps, no early stopping)")
    p.add_argument("--quick_steps", type=int, default=300)
    p.add_argument("--quick_epochs", type=int, default=1)
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                   help="print two results.json (or their dirs) side by side instead of running")
    p.add_argument("--list", action="store_true", help="list the registered mixtures and their tasks")
    p.set_defaults(fn=cmd_benchmark, accepts_gin=True)

    # --- scale (plan) ---
    p = sub.add_parser("plan", help="AOT-compile the train step on simulated devices: memory, FLOPs, collectives")
    from gatortron_jax.planning.planner import add_arguments as _plan_arguments

    _plan_arguments(p)
    p.set_defaults(fn=cmd_plan, accepts_gin=True)
    return parser


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname).1s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:  # pragma: no cover
        pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = _split_gin_overrides(argv)
    args = build_parser().parse_args(rest)
    if overrides and args.command != "pretrain" and not getattr(args, "accepts_gin", False):
        print(f"error: --gin.{overrides[0]}: this subcommand takes no gin bindings", file=sys.stderr)
        return 2
    if args.command != "plan":  # plan never starts TensorFlow
        quiet_tensorflow()
    _setup_logging()
    fn: Callable[[argparse.Namespace, list[str]], int] = args.fn
    try:
        return fn(args, overrides)  # each command passes --strict / --show_text down as arguments
    except GatortronError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
