"""Is the MLM input pipeline fast enough to keep the pretraining step busy?

    python benchmarks/bench_data.py              # sample_tiny config, ~2 minutes on 2 cores
    python benchmarks/bench_data.py --quick      # a few steps per measurement (smoke test)
    python benchmarks/bench_data.py --gin.TrainConfig.batch_size=32   # any pretrain gin binding

What is measured, all in one process and on the exact code path of
``gatortron-jax pretrain --gin_file=gin/pretrain/sample_tiny.gin`` (the gin file is parsed with
``gin_config.parse`` and the run is set up line for line as ``trainer.train_mlm`` does it):

* **pipeline** — the real seqio task (``tasks.register_mlm_corpus_task`` on
  ``data/sample_corpus`` + ``data/sample_vocab``: read → SentencePiece tokenise → chunk →
  mask → pack → batch → prefetch, ``pipeline.get_mlm_dataset``) consumed through the trainer's
  own host iterator (``trainer._global_batches``: ``as_numpy_iterator`` + host→device
  ``make_array_from_process_local_data``) as fast as it will go. Steady state: a fresh
  iterator, its first batch (time to first batch, reported separately) and a few warm-up
  batches are not timed. Tokens = batches × batch × seq_len; non-pad tokens (``segment_ids > 0``)
  and masked targets (``mlm_weights``) are counted on the timed batches themselves.
* **tf.data only** — the same dataset through ``as_numpy_iterator`` without the device put,
  to separate tf.data's cost from the transfer.
* **trainer (memory)** — the real jitted, donated train step (``steps.make_train_step`` with the
  config's ``max_predictions``, jitted with the trainer's shardings) on one real pipeline batch
  kept on the device, in the trainer's loop shape (dispatch step k, then read step k-1's
  ``nonfinite`` flag). This is what the pipeline has to keep up with.
* **trainer (pipeline)** — the same loop fed by a fresh pipeline iterator: what pretraining
  actually gets. ``fed / memory`` < 1 means feeding costs throughput.

Each measurement is repeated (``--repeats``) in rotation and the median is reported; the
machine may be shared, so the spread across repeats is printed too. Process CPU seconds per
batch are reported for every row: on a small CPU host the pipeline and the step share the same
cores, so a pipeline that is "fast enough" on its own can still slow the step down.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import os
import sys
import time

import common

common.quiet_tensorflow()

DEFAULT_GIN = "gin/pretrain/sample_tiny.gin"


def _resolve(path: str) -> str:
    """Gin paths are relative to the repository root (the CLI is run from there)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(common.REPO_ROOT, path)


def setup(gin_files: list[str], overrides: list[str]) -> dict:
    """Everything ``trainer.train_mlm`` builds before its loop, built the same way."""
    import jax

    from gatortron_jax.cli import gin_config

    from gatortron_jax.core import partitioning
    from gatortron_jax.pretraining import pipeline, seqio_tasks as tasks
    from gatortron_jax.text.vocab import load_vocabulary
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.pretraining import steps
    from gatortron_jax.core.partitioning import MeshConfig
    from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import count_params, create_train_state

    gin_config.parse(gin_files, overrides)
    model_config = gin_config.build(EncoderConfig)
    data = gin_config.build(MLMDataConfig)
    data = dataclasses.replace(data, corpus_dir=_resolve(data.corpus_dir), vocab_path=_resolve(data.vocab_path))
    train = gin_config.build(TrainConfig)
    optimizer_config = gin_config.build(OptimizerConfig)
    mesh = gin_config.build(MeshConfig)

    vocab = load_vocabulary(data.vocab_path)
    task = tasks.register_mlm_corpus_task(
        data.task_name, data.corpus_dir, data.vocab_path, doc_per_line=data.doc_per_line,
        validation_fraction=data.validation_fraction, whole_word=data.whole_word, mask_rate=data.mask_rate,
    )
    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    n_proc = jax.process_count()
    model = EncoderForMLM(model_config)
    optimizer = make_optimizer(optimizer_config, train.num_steps)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
    local_batch = train.batch_size // n_proc

    def dataset():
        return pipeline.get_mlm_dataset(
            task.name, "train", sequence_length=train.seq_len, batch_size=local_batch, shuffle=True,
            seed=train.seed, shard_index=jax.process_index(), num_shards=n_proc,
        )

    train_step = steps.make_train_step(
        model, optimizer, num_microbatches=train.num_microbatches,
        real_vocab_size=vocab.vocab_size, max_predictions=train.max_predictions,
    )
    with partitioner.activate():
        p_train = jax.jit(
            train_step, in_shardings=(shardings, partitioner.data_sharding, partitioner.replicated),
            out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,),
        )
    return dict(model_config=model_config, data=data, train=train, partitioner=partitioner, state=state,
                p_train=p_train, dataset=dataset, rng=jax.random.key(train.seed + 1),
                params=count_params(state.params), vocab_size=vocab.vocab_size)


def _count(batches) -> tuple[int, int, int]:
    """(padded tokens, non-pad tokens, masked targets) in host or device batches."""
    import numpy as np

    padded = nonpad = masked = 0
    for b in batches:
        seg = np.asarray(b["segment_ids"])
        padded += seg.size
        nonpad += int(np.count_nonzero(seg))
        masked += int(np.asarray(b["mlm_weights"]).sum())
    return padded, nonpad, masked


def measure_pipeline(ctx: dict, n: int, warmup: int, device_put: bool) -> dict:
    """A fresh iterator consumed flat out: startup, then ``n`` timed batches after ``warmup``."""
    import jax

    from gatortron_jax.pretraining import trainer

    ds = ctx["dataset"]()
    t0 = time.perf_counter()
    if device_put:
        it = trainer._global_batches(ds, ctx["partitioner"].data_sharding)
    else:
        it = ds.as_numpy_iterator()
    jax.block_until_ready(next(it))
    first = time.perf_counter() - t0
    for _ in range(warmup):
        next(it)
    cpu0, t = common.cpu_seconds(), time.perf_counter()
    got = [next(it) for _ in range(n)]
    jax.block_until_ready(got[-1])
    wall, cpu = time.perf_counter() - t, common.cpu_seconds() - cpu0
    padded, nonpad, masked = _count(got)
    if device_put and "device_batch" not in ctx:
        ctx["device_batch"] = got[-1]  # one real batch (real masking density) for the from-memory step
    del it, got
    return dict(batches=n, wall_s=wall, cpu_s=cpu, first_batch_s=first, tokens=padded, nonpad_tokens=nonpad,
                masked=masked)


def _train_loop(ctx: dict, batches, n: int) -> list:
    """The trainer's loop shape: dispatch step k, then read step k-1's ``nonfinite`` flag."""
    p_train, rng, state = ctx["p_train"], ctx["rng"], ctx["state"]
    out, last = [], None
    for _ in range(n):
        state, metrics = p_train(state, next(batches), rng)
        if last is not None:
            float(last["nonfinite"])
        last = metrics
        out.append(metrics)
    float(last["nonfinite"])
    ctx["state"] = state
    return out


def measure_train(ctx: dict, n: int, warmup: int, source: str) -> dict:
    """``n`` timed train steps fed from device memory (one batch, reused) or a fresh pipeline."""
    import jax

    from gatortron_jax.pretraining import trainer

    with ctx["partitioner"].activate():
        if source == "memory":
            batches = itertools.repeat(ctx["device_batch"])
        else:
            batches = trainer._global_batches(ctx["dataset"](), ctx["partitioner"].data_sharding)
        _train_loop(ctx, batches, warmup)
        cpu0, t = common.cpu_seconds(), time.perf_counter()
        metrics = _train_loop(ctx, batches, n)
        wall, cpu = time.perf_counter() - t, common.cpu_seconds() - cpu0
    m = jax.device_get(metrics)
    tokens_per_batch = math.prod(ctx["device_batch"]["segment_ids"].shape)
    return dict(batches=n, wall_s=wall, cpu_s=cpu, tokens=tokens_per_batch * n,
                nonpad_tokens=int(sum(float(x["tokens"]) for x in m)),
                masked=int(sum(float(x["weight_sum"]) + float(x["dropped_targets"]) for x in m)),
                dropped_targets=int(sum(float(x["dropped_targets"]) for x in m)))


def _rates(r: dict) -> dict:
    return dict(r, batches_per_s=r["batches"] / r["wall_s"], tok_per_s=r["tokens"] / r["wall_s"],
                nonpad_tok_per_s=r["nonpad_tokens"] / r["wall_s"], cpu_s_per_batch=r["cpu_s"] / r["batches"],
                cores_busy=r["cpu_s"] / r["wall_s"])


def run(args: argparse.Namespace, overrides: list[str]) -> dict:
    import jax

    t_start = time.perf_counter()
    ctx = setup(args.gin_file or [DEFAULT_GIN], overrides)
    train = ctx["train"]
    setup_s = time.perf_counter() - t_start

    n, warm = args.steps, args.warmup
    kinds = ("pipeline", "trainer_memory", "trainer_pipeline")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    compile_s = None
    for _ in range(args.repeats):  # rotation, so drift on a shared machine hits every row alike
        runs["pipeline"].append(_rates(measure_pipeline(ctx, args.pipeline_batches, warm, device_put=True)))
        if compile_s is None:  # first train step on the last pipeline batch, which stays on the device
            with ctx["partitioner"].activate():
                t = time.perf_counter()
                _train_loop(ctx, itertools.repeat(ctx["device_batch"]), 1)
                compile_s = time.perf_counter() - t
        runs["trainer_memory"].append(_rates(measure_train(ctx, n, warm, "memory")))
        runs["trainer_pipeline"].append(_rates(measure_train(ctx, n, warm, "pipeline")))
    runs["tfdata"] = [_rates(measure_pipeline(ctx, args.pipeline_batches, warm, device_put=False))]

    def med(kind: str, key: str) -> float:
        return common.median(r[key] for r in runs[kind])

    summary = {k: {key: med(k, key) for key in ("batches_per_s", "tok_per_s", "nonpad_tok_per_s",
                                                 "cpu_s_per_batch", "cores_busy")} for k in runs}
    for k in ("pipeline", "tfdata"):
        summary[k]["first_batch_s"] = med(k, "first_batch_s")
    ratio = summary["pipeline"]["tok_per_s"] / summary["trainer_memory"]["tok_per_s"]
    fed = summary["trainer_pipeline"]["tok_per_s"] / summary["trainer_memory"]["tok_per_s"]
    per_repeat_ratio = [p["tok_per_s"] / m["tok_per_s"] for p, m in zip(runs["pipeline"], runs["trainer_memory"])]
    per_repeat_fed = [f["tok_per_s"] / m["tok_per_s"] for f, m in zip(runs["trainer_pipeline"], runs["trainer_memory"])]
    # On a CPU host pipeline and step share the cores. What feeding the step costs in CPU, and how
    # many cores the pipeline keeps busy when it only has to keep up with the step:
    feed_cpu = summary["trainer_pipeline"]["cpu_s_per_batch"] - summary["trainer_memory"]["cpu_s_per_batch"]
    pipeline_cores_at_trainer_rate = summary["pipeline"]["cpu_s_per_batch"] * summary["trainer_memory"]["batches_per_s"]
    return dict(
        config=dict(gin=args.gin_file or [DEFAULT_GIN], overrides=overrides, batch_size=train.batch_size,
                    seq_len=train.seq_len, max_predictions=train.max_predictions,
                    tokens_per_batch=train.batch_size * train.seq_len, params=ctx["params"],
                    hidden=ctx["model_config"].hidden_size, layers=ctx["model_config"].num_layers,
                    vocab=ctx["model_config"].vocab_size, corpus=ctx["data"].corpus_dir,
                    steps=n, pipeline_batches=args.pipeline_batches, warmup=warm, repeats=args.repeats,
                    devices=jax.device_count()),
        setup_s=setup_s, compile_s=compile_s, runs=runs, summary=summary,
        pipeline_over_trainer=ratio, fed_over_memory=fed,
        pipeline_over_trainer_per_repeat=per_repeat_ratio, fed_over_memory_per_repeat=per_repeat_fed,
        cores=common.cpu_count(), feed_cpu_s_per_step=feed_cpu,
        pipeline_cores_at_trainer_rate=pipeline_cores_at_trainer_rate,
        peak_rss_mb=common.peak_rss_mb(),
    )


ROWS = (
    ("pipeline", "pipeline → device (`_global_batches`)"),
    ("tfdata", "tf.data only (`as_numpy_iterator`)"),
    ("trainer_memory", "train step, batch in device memory"),
    ("trainer_pipeline", "train step fed by the pipeline"),
)


def report(res: dict) -> str:
    c, s = res["config"], res["summary"]
    headers = ["measurement", "batches/s", "tokens/s (B×L)", "non-pad tokens/s", "CPU-s / batch",
               "cores busy", "1st batch s", "spread (min–max batches/s)"]
    rows = []
    for key, label in ROWS:
        r = s[key]
        bps = [x["batches_per_s"] for x in res["runs"][key]]
        rows.append([label, common.fmt_num(r["batches_per_s"], 2), common.fmt_num(r["tok_per_s"]),
                     common.fmt_num(r["nonpad_tok_per_s"]), common.fmt_num(r["cpu_s_per_batch"], 3),
                     common.fmt_num(r["cores_busy"], 2),
                     common.fmt_num(r["first_batch_s"], 2) if "first_batch_s" in r else "",
                     f"{min(bps):.2f}–{max(bps):.2f} ({len(bps)}×)"])
    table = common.markdown_table(headers, rows)
    pr = ", ".join(f"{x:.2f}" for x in res["pipeline_over_trainer_per_repeat"])
    fr = ", ".join(f"{x:.2f}" for x in res["fed_over_memory_per_repeat"])
    verdict = ("the input pipeline is not the bottleneck" if res["pipeline_over_trainer"] > 1
               else "THE INPUT PIPELINE IS THE BOTTLENECK")
    overrides = "".join(" --gin." + o for o in c["overrides"])
    step_cpu, pipe_cpu = s["trainer_memory"]["cpu_s_per_batch"], s["pipeline"]["cpu_s_per_batch"]
    lines = [
        f"Config: `{' '.join(c['gin'])}{overrides}` — model hidden {c['hidden']}, {c['layers']} layers, "
        f"vocab {c['vocab']} ({c['params']:,} params); batch {c['batch_size']} × seq {c['seq_len']} = "
        f"{c['tokens_per_batch']:,} tokens/batch, max_predictions {c['max_predictions']}; {c['devices']} device(s); "
        f"corpus `{os.path.relpath(c['corpus'], common.REPO_ROOT)}`.",
        f"{c['steps']} timed train steps ({c['pipeline_batches']} pipeline batches) per measurement after "
        f"{c['warmup']} warm-up, median of {c['repeats']} rotation(s) (tf.data only: 1). Setup {res['setup_s']:.1f} s, "
        f"first train step (compile) {res['compile_s']:.1f} s, peak RSS {res['peak_rss_mb']:,.0f} MiB.",
        "",
        table,
        "",
        f"- **pipeline / trainer = {res['pipeline_over_trainer']:.2f}** (tokens/s, per rotation: {pr}): {verdict}.",
        f"- **trainer fed by pipeline / trainer from memory = {res['fed_over_memory']:.2f}** (per rotation: {fr}).",
        f"- CPU: the step alone costs {step_cpu:.3f} CPU-s ({s['trainer_memory']['cores_busy']:.2f} of "
        f"{res['cores']} cores busy); fed by the pipeline it costs {res['feed_cpu_s_per_step']:+.4f} CPU-s more "
        f"({res['feed_cpu_s_per_step'] / step_cpu:+.1%}). The pipeline needs {pipe_cpu:.4f} CPU-s per batch: "
        f"{res['pipeline_cores_at_trainer_rate']:.2f} cores at the step's rate; one host core feeds "
        f"~{c['tokens_per_batch'] / pipe_cpu:,.0f} tokens/s (B×L) of this config.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a[len("--gin."):] for a in argv if a.startswith("--gin.")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gin_file", action="append", default=None, help=f"default {DEFAULT_GIN}")
    parser.add_argument("--steps", type=int, default=None, help="timed train steps per trainer measurement")
    parser.add_argument("--pipeline_batches", type=int, default=None,
                        help="timed batches for the pipeline-only rows (it is fast: time it longer)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches before each measurement")
    parser.add_argument("--repeats", type=int, default=None, help="rotations of the three main measurements")
    common.add_common_flags(parser)
    args = parser.parse_args([a for a in argv if not a.startswith("--gin.")])
    quick = dict(steps=3, pipeline_batches=8, warmup=1, repeats=1)
    full = dict(steps=40, pipeline_batches=300, warmup=8, repeats=3)
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if min(args.steps, args.pipeline_batches, args.repeats, args.warmup) < 1:
        parser.error("--steps, --pipeline_batches, --warmup and --repeats must be >= 1")

    t0 = time.perf_counter()
    res = run(args, overrides)
    res["total_s"] = time.perf_counter() - t0
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "tensorflow", "seqio"),
                          report(res))
    return common.publish(text, res, args, res["total_s"])


if __name__ == "__main__":
    main()
