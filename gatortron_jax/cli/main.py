"""``gatortron-jax`` command line: one subcommand per job, gin at the edge.

    gatortron-jax pretrain --gin_file=gin/pretrain/sample_tiny.gin --model_dir=DIR [--gin.NAME=VALUE ...]
    gatortron-jax train-vocab --input data/sample_corpus/train --vocab_size 4000 --output data/sample_vocab/spm
    gatortron-jax make-sample-data --output data/sample_corpus
    gatortron-jax import-hf HF_DIR OUT_DIR | export-hf MODEL_DIR OUT_DIR | embed --checkpoint DIR ...
    gatortron-jax finetune | evaluate | predict | deid   (NER/de-id, RE, NLI, STS, span QA; one loop, task adapters;
                                                          rerunning finetune on its --model_dir resumes)
    gatortron-jax plan --gin_file=gin/models/large.gin --mesh data=16,fsdp=8,tensor=1 --batch 1024 --seq 512

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
import logging
import os
import sys
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported anywhere

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


def _add_input_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input hygiene (policy: gatortron_jax/data/input_report.py)")
    g.add_argument("--strict", action="store_true",
                   help="fail with one error line (file:line) on undecodable bytes, malformed .jsonl lines, "
                        "annotations that do not match their note, or bad task examples (default: replace / "
                        "skip them, warn with file:line and count them in the input summary)")
    g.add_argument("--show_text", action="store_true",
                   help="let replaced-byte warnings quote <=80 escaped characters around the first bad byte; "
                        "local debugging only: the excerpt may contain PHI (never written to input_report.json)")


def _registered_task(name: str):
    import seqio

    try:
        return seqio.TaskRegistry.get(name)
    except ValueError:
        return None


def _report_inputs(model_dir: str, task_name: str, before: object, *, finished: bool) -> None:
    """End-of-run input summary: one PHI-free log line and MODEL_DIR/input_report.json.

    Only for a corpus this run registered, and only once its counts mean something (the
    run finished, or validation read everything), so a stale or partial report is never
    written.
    """
    import jax

    from gatortron_jax.annotations import input_policy as input_report
    from gatortron_jax.pretraining.corpus import TextCorpusSource

    task = _registered_task(task_name)
    source = getattr(task, "source", None)
    if task is before or not isinstance(source, TextCorpusSource) or not (finished or source.validated):
        return
    log.info("input summary (%s): %s", source.corpus_dir, source.summary())
    if jax.process_index() != 0:
        return
    try:
        path = input_report.write_json(os.path.join(model_dir, "input_report.json"), source.input_report())
        log.info("wrote %s", path)
    except OSError as e:
        log.warning("could not write input_report.json to %s: %s", model_dir, e)


def _maybe_init_distributed(args: argparse.Namespace) -> None:
    if args.distributed or args.coordinator_address:
        from gatortron_jax.core import distributed

        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def cmd_pretrain(args: argparse.Namespace, overrides: list[str]) -> int:
    _maybe_init_distributed(args)
    from gatortron_jax.cli import gin_config
    from gatortron_jax.annotations import input_policy as input_report
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.pretraining import trainer
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
    from gatortron_jax.core.optimizer import OptimizerConfig

    if args.strict:  # recorded in operative_config.gin and config.json like any other binding
        overrides = [*overrides, "MLMDataConfig.strict=True"]
    gin_config.parse(args.gin_file, overrides)
    data = gin_config.build(MLMDataConfig)
    before, finished = _registered_task(data.task_name), False
    # The corpus source is built inside train_mlm; the process-wide policy carries strict/show_text to it.
    with input_report.policy(strict=data.strict, show_text=args.show_text):
        try:
            summary = trainer.train_mlm(
                args.model_dir,
                gin_config.build(EncoderConfig),
                data,
                gin_config.build(TrainConfig),
                gin_config.build(OptimizerConfig),
                gin_config.build(MeshConfig),
            )
            finished = True
        finally:
            _report_inputs(args.model_dir, data.task_name, before, finished=finished)
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
    report = input_report.InputReport()  # strict / show_text: the policy main() applied
    model = vocab.train_sentencepiece(sorted(inputs), args.output, args.vocab_size,
                                      model_type=args.model_type, report=report)
    log.info("input summary: %s", report.summary())
    log.info("wrote %s (%d pieces from %d files)", model, args.vocab_size, len(inputs))
    return 0


def cmd_make_sample_data(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.sample_data import corpus as synthetic

    counts = synthetic.write_sample_corpus(args.output, args.num_train, args.num_validation, args.seed)
    log.info("wrote synthetic notes to %s: %s", args.output, counts)
    return 0


def cmd_plan(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.planning import planner as planning  # sets up simulated CPU devices before JAX starts

    return planning.run(args, overrides)


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


def cmd_embed(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.inference.embed import embed_file

    s = embed_file(args.checkpoint, args.input, args.output, max_length=args.max_length, overlap=args.overlap,
                   batch_size=args.batch_size)
    long = sum(1 for w in s["windows"] if w > 1)
    print(f"wrote {s['output']}: {s['lines']} arrays (key = line index '0'..'{max(s['lines'] - 1, 0)}'), each "
          f"float32 [tokens incl. [CLS]/[SEP], {s['hidden']}] last hidden states.")
    print("An encoder gives one contextual vector per token, not text: feed these to a downstream model "
          "(classifier, NER tagger, similarity).")
    if s["lines"]:
        print(f"tokens per line: min {min(s['tokens'])}, max {max(s['tokens'])}; {long} line(s) longer than "
              f"{s['max_length']} positions were windowed (overlap {s['overlap']}) and stitched, not truncated")
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
    result = evaluate_ner(args.checkpoint, data, split=args.split, batch_size=args.batch_size)
    out = _write_eval(args, result)
    print(f"{result['task']} / {args.split}: {result['documents']} documents")
    print(format_table(result["scores"]))
    print(f"wrote {out} (scores with the recipe: seed, configs, checkpoint and data fingerprints, versions)")
    return 0


def cmd_predict(args: argparse.Namespace, overrides: list[str]) -> int:
    from gatortron_jax.inference import ner_predict
    from gatortron_jax.models.model_dir import kind_of, read_model_info

    if kind_of(read_model_info(args.checkpoint)) == "sequence_task":
        from gatortron_jax.inference.tasks import predict_task

        s = predict_task(args.checkpoint, args.input, args.output, batch_size=args.batch_size)
        log.info("predicted %d examples; wrote %s to %s", s["examples"], ", ".join(s["written"]), args.output)
        return 0
    predictor = ner_predict.NERPredictor(args.checkpoint, batch_size=args.batch_size)
    docs = predictor.predict(ner_predict.read_raw_notes(args.input))
    flavour = predictor.output_format if predictor.output_format.startswith("i2b2") else "i2b2_2010"
    written = ner_predict.write_predictions(docs, args.output, args.format, flavour)
    n = sum(len(d.entities) for d in docs)
    log.info("predicted %d entities in %d notes; wrote %d file(s) (%s) to %s", n, len(docs), len(written),
             args.format if args.format != "i2b2" else flavour, args.output)
    return 0


def _evaluate_sequence_task(args: argparse.Namespace) -> int:
    from gatortron_jax.cli import gin_config
    from gatortron_jax.finetuning.config import TaskDataConfig
    from gatortron_jax.inference.evaluate import evaluate_task

    data = gin_config.build(TaskDataConfig) if args.gin_file and _sequence_task_bound() else None
    result = evaluate_task(args.checkpoint, data, split=args.split, batch_size=args.batch_size)
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

    from gatortron_jax.inference import deid, ner_predict

    predictor = ner_predict.NERPredictor(args.checkpoint, batch_size=args.batch_size)
    notes = ner_predict.read_raw_notes(args.input)
    found = predictor.predict(notes)
    # Surrogate date shifts derive from (seed, note id): without --seed the seed is secret and unrecorded.
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    results = [deid.deidentify(note, pred.entities, args.mode, seed) for note, pred in zip(notes, found)]
    summary = deid.write_deid(results, args.output, args.mode)
    log.info("de-identified %d notes (%s): removed %s; %d surrogate(s) fell back to masks; wrote %s",
             summary["notes"], args.mode, summary["removed_by_type"], summary["surrogate_fallbacks_masked"],
             args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatortron-jax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="masked-LM pretraining (resumes from --model_dir if it has checkpoints)")
    p.add_argument("--gin_file", action="append", required=True, help="gin file(s); later files win")
    p.add_argument("--model_dir", required=True, help="checkpoints, TensorBoard events and config go here")
    _add_input_flags(p)
    _add_distributed_flags(p)
    p.set_defaults(fn=cmd_pretrain)

    p = sub.add_parser("train-vocab", help="train a SentencePiece vocabulary on plain-text notes")
    p.add_argument("--input", nargs="+", required=True, help="files or directories of .txt notes")
    p.add_argument("--vocab_size", type=int, required=True)
    p.add_argument("--output", required=True, help="output prefix; writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--model_type", default="unigram", choices=["unigram", "bpe"])
    _add_input_flags(p)
    p.set_defaults(fn=cmd_train_vocab)

    p = sub.add_parser("make-sample-data", help="write the synthetic clinical sample corpus")
    p.add_argument("--output", default="data/sample_corpus")
    p.add_argument("--num_train", type=int, default=400)
    p.add_argument("--num_validation", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_make_sample_data)

    # --- checkpoint interop (import-hf / export-hf / embed) ---
    p = sub.add_parser("import-hf", help="HF megatron-bert/bert directory -> model dir (orbax + config + vocab)")
    p.add_argument("hf_dir", help="directory with config.json, model.safetensors or pytorch_model.bin, vocab.txt")
    p.add_argument("out_dir", help="model dir to create")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                      help="uncased tokenizer (default: tokenizer_config.json do_lower_case, else inferred)")
    case.add_argument("--cased", dest="lowercase", action="store_false", default=None, help="cased tokenizer")
    p.set_defaults(fn=cmd_import_hf)

    p = sub.add_parser("export-hf", help="model dir -> safetensors + config.json + vocab for transformers")
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.set_defaults(fn=cmd_export_hf)

    p = sub.add_parser("embed", help="one float32 [tokens, hidden] array of last hidden states per input line")
    p.add_argument("--checkpoint", required=True, help="model dir (from pretrain or import-hf)")
    p.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    p.add_argument("--output", required=True, help=".npz file; key = line index as a string")
    p.add_argument("--max_length", type=int, default=None, help="window length incl. [CLS]/[SEP] "
                   "(default max_position_embeddings)")
    p.add_argument("--overlap", type=int, default=None, help="tokens shared by neighbouring windows (default half)")
    p.add_argument("--batch_size", type=int, default=8)
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
    p.add_argument("--input", required=True, help="directory of .txt notes (recursive) or one .txt file")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--format", default="brat", choices=["brat", "i2b2", "jsonl"],
                   help="i2b2: .con (2010) or .xml (2012), by the model's task")
    p.add_argument("--batch_size", type=int, default=32)
    _add_input_flags(p)
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("deid", help="de-identify raw .txt notes with a fine-tuned PHI model")
    p.add_argument("--checkpoint", required=True, help="fine-tuned de-id model dir (e.g. i2b2_2014_deid)")
    p.add_argument("--input", required=True, help="directory of .txt notes (recursive) or one .txt file")
    p.add_argument("--output", required=True, help="output directory: redacted .txt + brat .ann of removed spans")
    p.add_argument("--mode", default="mask", choices=["mask", "surrogate"])
    p.add_argument("--seed", type=int, default=None, help="surrogate seed (default: random and unrecorded)")
    p.add_argument("--batch_size", type=int, default=32)
    _add_input_flags(p)
    p.set_defaults(fn=cmd_deid)

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
    _setup_logging()
    fn: Callable[[argparse.Namespace, list[str]], int] = args.fn
    try:
        if hasattr(args, "strict"):  # commands with the input-hygiene flags
            from gatortron_jax.annotations import input_policy as input_report

            with input_report.policy(strict=args.strict, show_text=args.show_text):
                return fn(args, overrides)
        return fn(args, overrides)
    except GatortronError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
