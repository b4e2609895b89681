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
    gatortron-jax score --format i2b2_2014|meddocan|n2c2_2018|brat|conll|i2b2_2010|i2b2_2012 --gold G --system S

This module only builds the parser from the command families in ``COMMAND_FAMILIES`` and
dispatches; each family module (``pretraining``, ``checkpoints``, ``finetuning``, ``inference``,
``planning``, ``scoring``) registers its subcommands with ``register(subparsers)``, and each subcommand's
handler parses its flags, builds its config dataclasses at the gin edge (``gin_config.py``),
calls one library function (``pretraining.trainer``, ``finetuning.*``, ``inference.*``,
``convert.*``, ``benchmark.runner``, ``planning.planner``) and prints what it returned; library
code never reads flags or gin. A new family is a module with ``register`` plus one entry in
``COMMAND_FAMILIES``; flags several families share live in ``flags.py``.

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


# Before JAX starts: a host without accelerators runs on CPU even with the plan extras (libtpu,
# the CUDA plugin) installed, instead of printing their start-up failures on every command.
from gatortron_jax.core.platforms import default_to_cpu_without_accelerator  # noqa: E402

default_to_cpu_without_accelerator()

from gatortron_jax.cli import checkpoints, finetuning, inference, planning, pretraining, scoring  # noqa: E402
from gatortron_jax.cli.flags import split_gin_overrides  # noqa: E402
from gatortron_jax.cli.quiet import quiet_tensorflow  # noqa: E402
from gatortron_jax.core.errors import GatortronError  # noqa: E402

log = logging.getLogger("gatortron_jax")

# The order here is the order of ``gatortron-jax --help``.
COMMAND_FAMILIES = (pretraining, checkpoints, finetuning, inference, planning, scoring)


def build_parser() -> argparse.ArgumentParser:
    """The ``gatortron-jax`` parser: every family's subcommands, each with its ``handler``."""
    parser = argparse.ArgumentParser(prog="gatortron-jax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for family in COMMAND_FAMILIES:
        family.register(sub)
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
    """Parse argv, run the chosen subcommand's handler; ``error: ...`` and status 2 on a GatortronError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = split_gin_overrides(argv)
    args = build_parser().parse_args(rest)
    if overrides and not getattr(args, "accepts_gin", False):
        print(f"error: --gin.{overrides[0]}: this subcommand takes no gin bindings", file=sys.stderr)
        return 2
    if getattr(args, "starts_tensorflow", True):
        quiet_tensorflow()
    _setup_logging()
    handler: Callable[[argparse.Namespace, list[str]], int] = args.handler
    try:
        return handler(args, overrides)  # each command passes --strict / --show_text down as arguments
    except GatortronError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
