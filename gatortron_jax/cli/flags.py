"""Flags and argv handling shared by several command families: ``--gin.NAME=VALUE`` splitting, the
multi-process flags and their ``jax.distributed`` start, the streaming driver's flags, the input-policy
flags, checkpoint casing flags, inference shard resolution, and the preemption exit status.

Kept apart from the family modules so that a flag two families share is declared once and reads the
same in every ``--help``.
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint saved after SIGTERM; rerun the same command to resume


def split_gin_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Pull ``--gin.NAME=VALUE`` out of argv (argparse cannot declare open-ended flags)."""
    rest, overrides = [], []
    for arg in argv:
        if arg.startswith("--gin."):
            overrides.append(arg[len("--gin."):])
        else:
            rest.append(arg)
    return rest, overrides


def add_distributed_flags(p: argparse.ArgumentParser) -> None:
    """--distributed and the coordinator / process flags of a multi-process run."""
    g = p.add_argument_group("multi-process (jax.distributed)")
    g.add_argument("--distributed", action="store_true", help="join a multi-process run (SLURM/MPI env autodetected)")
    g.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    g.add_argument("--num_processes", type=int, default=None)
    g.add_argument("--process_id", type=int, default=None)


def add_stream_flags(g: argparse._ArgumentGroup) -> None:
    """The streaming driver's settings (inference/stream.py), shared by predict and deid."""
    g.add_argument("--chunk_notes", type=int, default=512, help="notes per chunk (memory bound; resume unit)")
    g.add_argument("--shard", type=int, default=None, help="this job's shard: notes with index %% num_shards == shard")
    g.add_argument("--num_shards", type=int, default=None, help="default: 1, or the process count under "
                   "--distributed")
    g.add_argument("--tokenize", default="inline", choices=["inline", "thread", "process"],
                   help="where notes are tokenized: between forwards, in a thread one chunk ahead (overlaps an "
                        "accelerator's forward), or in --workers spawned processes")
    g.add_argument("--workers", type=int, default=1, help="tokenizer processes for --tokenize process")
    add_dtype_flag(g)
    add_int8_flag(g)


def add_dtype_flag(g) -> None:
    """--dtype: the inference commands' compute dtype (EncoderConfig.dtype; weights stay as stored)."""
    g.add_argument("--dtype", default=None, choices=["float32", "bfloat16"], help="compute dtype (default the "
                   "model's): bfloat16 on GPUs/TPUs, and on CPUs with bf16 dot instructions (AVX512_BF16, AMX), "
                   "where its matmuls run about twice as fast as fp32; slightly different scores")


def add_int8_flag(g) -> None:
    """--int8: the inference commands' dynamic int8 dense matmuls (EncoderConfig.matmul_quantization)."""
    g.add_argument("--int8", action="store_true", help="dynamic int8 matmuls in the encoder's dense layers "
                   "(per-token activation and per-channel weight scales, int32 accumulation; faster on CPU, "
                   "slightly different scores; the model dir is unchanged)")


def quantize_of(args: argparse.Namespace) -> str | None:
    """``EncoderConfig.matmul_quantization`` the inference flags ask for (None: the exact path)."""
    return "dynamic_int8" if getattr(args, "int8", False) else None


def add_casing_flags(p: argparse.ArgumentParser, default: str) -> None:
    """--lowercase / --cased for the checkpoint importers; ``default`` says where casing comes from otherwise."""
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                      help=f"uncased tokenizer (default: {default})")
    case.add_argument("--cased", dest="lowercase", action="store_false", default=None, help="cased tokenizer")


def add_input_flags(p: argparse.ArgumentParser) -> None:
    """--strict / --show_text: the input policy every command that reads notes or annotations passes down."""
    g = p.add_argument_group("input hygiene (policy: gatortron_jax/annotations/input_policy.py)")
    g.add_argument("--strict", action="store_true",
                   help="fail with one error line (file:line) on undecodable bytes, malformed .jsonl lines, "
                        "annotations that do not match their note, or bad task examples (default: replace / "
                        "skip them, warn with file:line and count them in the input summary)")
    g.add_argument("--show_text", action="store_true",
                   help="let replaced-byte warnings quote <=80 escaped characters around the first bad byte; "
                        "local debugging only: the excerpt may contain PHI (never written to input_report.json)")


def maybe_init_distributed(args: argparse.Namespace) -> None:
    """Join the multi-process run the distributed flags ask for (no-op without them)."""
    if args.distributed or args.coordinator_address:
        from gatortron_jax.core import distributed

        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def shard_flags(args: argparse.Namespace) -> tuple[int, int]:
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
