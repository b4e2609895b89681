"""Pretraining commands: ``pretrain`` (masked-LM training, resumable), ``prepare-corpus`` (notes ->
token cache), ``train-vocab`` (SentencePiece) and ``make-sample-data`` (the synthetic corpus / de-id samples).

Each handler builds its configs at the gin edge, calls one library function and logs what it returned.
"""

from __future__ import annotations

import argparse
import logging
import os

from gatortron_jax.cli import flags

log = logging.getLogger("gatortron_jax")


def cmd_pretrain(args: argparse.Namespace, overrides: list[str]) -> int:
    flags.maybe_init_distributed(args)
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
                    summary["end_step"], flags.EXIT_PREEMPTED)
        return flags.EXIT_PREEMPTED
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add this family's subcommands; each sets ``handler`` (and ``accepts_gin`` where gin bindings apply)."""
    p = sub.add_parser("pretrain", help="masked-LM pretraining (resumes from --model_dir if it has checkpoints)")
    p.add_argument("--gin_file", action="append", required=True, help="gin file(s); later files win")
    p.add_argument("--model_dir", required=True, help="checkpoints, TensorBoard events and config go here")
    p.add_argument("--init_checkpoint", default=None,
                   help="model dir (pretrain / import-hf) to continue MLM training from: encoder and MLM head "
                        "are loaded, optimizer and step start fresh, the vocabulary is the checkpoint's")
    flags.add_input_flags(p)
    flags.add_distributed_flags(p)
    p.set_defaults(handler=cmd_pretrain, accepts_gin=True)

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
    flags.add_input_flags(p)
    p.set_defaults(handler=cmd_prepare_corpus)

    p = sub.add_parser("train-vocab", help="train a SentencePiece vocabulary on plain-text notes")
    p.add_argument("--input", nargs="+", required=True, help="files or directories of .txt notes")
    p.add_argument("--vocab_size", type=int, required=True)
    p.add_argument("--output", required=True, help="output prefix; writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--model_type", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--max_sentences", type=int, default=5_000_000,
                   help="sentences sampled (seeded, uniform over the whole input) to train on; bounds memory "
                        "(default 5M: ~0.5 GB of text) whatever the corpus size")
    flags.add_input_flags(p)
    p.set_defaults(handler=cmd_train_vocab)

    p = sub.add_parser("make-sample-data", help="write the synthetic clinical sample corpus (or de-id XML samples)")
    p.add_argument("--kind", default="corpus", choices=["corpus", "deid"],
                   help="corpus: plain notes for pretraining; deid: i2b2 2014 / 2006 XML (default output "
                        "data/deid_samples)")
    p.add_argument("--output", default="data/sample_corpus")
    p.add_argument("--num_train", type=int, default=400)
    p.add_argument("--num_validation", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_make_sample_data)
