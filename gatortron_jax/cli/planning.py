"""Planning and benchmark commands: ``plan`` (AOT-compile the train / fine-tune / predict step on
simulated CPU devices or, with ``--target``, with a GPU or TPU compiler, deviceless: memory, verdict,
FLOPs, collectives, roofline; ``--search``; never starts TensorFlow) and ``benchmark`` (fine-tune and score a benchmark mixture
for N seeds, or ``--compare`` / ``--list``).
"""

from __future__ import annotations

import argparse
import os


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


def register(sub: argparse._SubParsersAction) -> None:
    """Add this family's subcommands; each sets ``handler`` (and ``accepts_gin`` where gin bindings apply)."""
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
    p.set_defaults(handler=cmd_benchmark, accepts_gin=True)

    # --- scale (plan) ---
    p = sub.add_parser("plan", help="AOT-compile a step on simulated devices or for a GPU/TPU target (--target): "
                       "memory, fits, FLOPs, collectives, roofline tokens/s")
    from gatortron_jax.planning.planner import add_arguments as _plan_arguments

    _plan_arguments(p)
    p.set_defaults(handler=cmd_plan, accepts_gin=True, starts_tensorflow=False)  # plan never starts TensorFlow
