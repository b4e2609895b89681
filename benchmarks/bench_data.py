"""Is the MLM input pipeline fast enough to keep the pretraining step busy?

    python benchmarks/bench_data.py              # sample_tiny config, ~3 minutes on 2 cores
    python benchmarks/bench_data.py --quick      # a few steps per measurement (smoke test)
    python benchmarks/bench_data.py --gin.TrainConfig.batch_size=32   # any pretrain gin binding

What is measured, all in one process and on the exact code path of
``gatortron-jax pretrain --gin_file=gin/pretrain/sample_tiny.gin`` (the gin file is parsed with
``gin_config.parse`` and the run is set up line for line as ``trainer.train_mlm`` does it):

* **cache pipeline** (what ``pretrain`` trains on) — the corpus prepared once into a token
  cache (``prepare.prepare_corpus``, timed separately), then
  ``cache_pipeline.CacheBatches``: read + mask + pack + batch, in this process (``cache, in-process``)
  and in worker processes (``cache, N workers``; cores used counts the workers' CPU time from
  ``/proc``), host arrays; and through ``trainer._global_batches`` to the device (``pipeline``).
  ``cache / raw-text`` is the speed-up over the raw-text tf.data row below, same config.
* **resume cost** — opening the cache stream and building its first batch at data position 0
  and at the position a 100k-step GatorTron-base run reaches (3968 rows x 100k steps over 16
  hosts ≈ 24.8 M chunks per host): the only part of a restart that could depend on the step
  (restoring the state reads the same bytes at any step). The raw-text pipeline's
  ``.skip(step)`` replay it replaced is costed from its measured rate.
* **raw-text pipeline (before the cache)** — the real seqio task (``tasks.register_mlm_corpus_task`` on
  ``data/sample_corpus`` + ``data/sample_vocab``: read → SentencePiece tokenise → chunk →
  mask → pack → batch → prefetch, ``pipeline.get_mlm_dataset``) consumed through the trainer's
  own host iterator (``trainer._global_batches``: ``as_numpy_iterator`` + host→device
  ``make_array_from_process_local_data``) as fast as it will go. Steady state: a fresh
  iterator, its first batch (time to first batch, reported separately) and a few warm-up
  batches are not timed. Tokens = batches × batch × seq_len; non-pad tokens (``segment_ids > 0``)
  and masked targets (``mlm_weights``) are counted on the timed batches themselves.
  (row ``raw-text → device``) and through ``as_numpy_iterator`` without the device put
  (``tfdata``: the baseline the cache rows are compared with).
* **trainer (memory)** — the real jitted, donated train step (``steps.make_train_step`` with the
  config's ``max_predictions``, jitted with the trainer's shardings) on one real pipeline batch
  kept on the device, in the trainer's loop shape (dispatch step k, then read step k-1's
  ``nonfinite`` flag). This is what the pipeline has to keep up with.
* **trainer (pipeline)** — the same loop fed by a fresh cache-pipeline iterator
  (``MLMDataConfig.num_workers``, default in-process): what pretraining actually gets. ``fed / memory`` < 1 means feeding costs throughput.

Each measurement is repeated (``--repeats``) in rotation and the median is reported; the
machine may be shared, so the spread across repeats is printed too. Process CPU seconds per
batch are reported for every row: on a small CPU host the pipeline and the step share the same
cores, so a pipeline that is "fast enough" on its own can still slow the step down.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
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

    from gatortron_jax.pretraining import cache_pipeline, prepare
    from gatortron_jax.pretraining.corpus_cache import CorpusCache, is_cache

    t = time.perf_counter()
    if is_cache(data.corpus_dir):
        cache_dir, prepare_s = data.corpus_dir, 0.0
    else:
        scratch = tempfile.mkdtemp(prefix="bench_data_cache_")
        atexit.register(shutil.rmtree, scratch, True)  # the benchmark's own cache goes with it
        cache_dir = os.path.join(scratch, "cache")
        prepare.prepare_corpus(data.corpus_dir, data.vocab_path, cache_dir, prepare.PrepareOptions(
            seq_len=train.seq_len, doc_per_line=data.doc_per_line, validation_fraction=data.validation_fraction))
        prepare_s = time.perf_counter() - t
    cache = CorpusCache(cache_dir)
    tables = cache_pipeline.MaskingTables.from_vocabulary(vocab, mask_rate=data.mask_rate, whole_word=data.whole_word)
    spec = cache_pipeline.StreamSpec(cache.directory, "train", train.seq_len, local_batch, train.seed,
                                     process_index=jax.process_index(), process_count=n_proc)

    def cache_stream(workers: int, start=cache_pipeline.Position()):
        return cache_pipeline.CacheBatches(cache, spec, tables, start, num_workers=workers)

    train_step = steps.make_train_step(
        model, optimizer, num_microbatches=train.num_microbatches,
        real_vocab_size=vocab.vocab_size, max_predictions=train.max_predictions,
    )
    with partitioner.activate():
        p_train = jax.jit(
            train_step, in_shardings=(shardings, partitioner.data_sharding, partitioner.replicated),
            out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,),
        )
    return dict(n_proc=n_proc, model_config=model_config, data=data, train=train, partitioner=partitioner, state=state,
                p_train=p_train, dataset=dataset, rng=jax.random.key(train.seed + 1), cache=cache,
                cache_stream=cache_stream, prepare_s=prepare_s, tables=tables, cache_chunks=cache.num_chunks("train"),
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


def _proc_cpu_seconds(pids) -> float:
    """User + system CPU seconds of other processes (the cache pipeline's workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure_pipeline(ctx: dict, n: int, warmup: int, device_put: bool, source: str = "raw", workers: int = 0) -> dict:
    """A fresh iterator consumed flat out: startup, then ``n`` timed batches after ``warmup``.

    ``source``: ``"raw"`` (the raw-text seqio/tf.data pipeline) or ``"cache"`` (the cache
    pipeline with ``workers`` worker processes; their CPU time is counted).
    """
    import jax

    from gatortron_jax.pretraining import trainer

    t0 = time.perf_counter()
    stream = None
    if source == "cache":
        stream = ctx["cache_stream"](workers)
        host = stream
    else:
        host = ctx["dataset"]().as_numpy_iterator()
    it = trainer._global_batches(host, ctx["partitioner"].data_sharding) if device_put else host
    jax.block_until_ready(next(it))
    first = time.perf_counter() - t0
    for _ in range(warmup):
        next(it)
    pids = [p.pid for p in stream._pool._pool] if stream is not None and stream._pool is not None else []
    cpu0, wcpu0, t = common.cpu_seconds(), _proc_cpu_seconds(pids), time.perf_counter()
    got = [next(it) for _ in range(n)]
    jax.block_until_ready(got[-1])
    wall = time.perf_counter() - t
    cpu = common.cpu_seconds() - cpu0 + _proc_cpu_seconds(pids) - wcpu0
    padded, nonpad, masked = _count(got)
    if device_put and source == "cache" and "device_batch" not in ctx:
        ctx["device_batch"] = got[-1]  # one real batch (real masking density) for the from-memory step
    if stream is not None:
        stream.close()
    del it, got
    return dict(batches=n, wall_s=wall, cpu_s=cpu, first_batch_s=first, tokens=padded, nonpad_tokens=nonpad,
                masked=masked, workers=workers)


GATORTRON_ROWS, GATORTRON_STEPS, GATORTRON_HOSTS = 3968, 100_000, 16


def _synthetic_cache(directory: str, size_mb: int, seq_len: int, vocab_path: str, vocab_size: int) -> None:
    """A valid cache of ``size_mb`` MB of random uint16 token ids (no tokenisation: for start-up timing)."""
    import numpy as np

    from gatortron_jax.core.fingerprints import file_sha256
    from gatortron_jax.pretraining import corpus_cache as cc

    os.makedirs(directory, exist_ok=True)
    body = seq_len - 2
    n_chunks = max(1, size_mb * 2**20 // 2 // body)
    rng = np.random.default_rng(0)
    tokens = np.lib.format.open_memmap(os.path.join(directory, "train-00000.tokens.npy"), "w+", np.uint16,
                                       (n_chunks * body,))
    step = 1 << 24
    for i in range(0, tokens.size, step):
        tokens[i:i + step] = rng.integers(6, vocab_size, size=min(step, tokens.size - i), dtype=np.uint16)
    tokens.flush()
    del tokens
    np.save(os.path.join(directory, "train-00000.offsets.npy"), np.arange(n_chunks + 1, dtype=np.int64) * body)
    np.save(os.path.join(directory, "validation-00000.tokens.npy"), np.full(body, 7, np.uint16))
    np.save(os.path.join(directory, "validation-00000.offsets.npy"), np.array([0, body], np.int64))
    report = {"corpus_dir": "synthetic", "strict": False, "validated": True, "splits": {}, "file_issues": [],
              "file_issues_omitted": 0, "summary": "synthetic token ids"}
    manifest = {"format": cc.FORMAT, "version": cc.FORMAT_VERSION, "fingerprint": f"synthetic-{size_mb}",
                "options": {"seq_len": seq_len}, "vocab": {"sha256": file_sha256(vocab_path), "path": vocab_path,
                                                           "size": vocab_size},
                "num_shards": 1, "splits": {"train": {"chunks": n_chunks, "tokens": n_chunks * body, "shards": [n_chunks]},
                                            "validation": {"chunks": 1, "tokens": body, "shards": [1]}},
                "input_report": report}
    with open(os.path.join(directory, cc.MANIFEST), "w") as f:
        json.dump(manifest, f)


def measure_startup_vs_size(ctx: dict, sizes_mb: list[int]) -> dict:
    """Open a cache the way ``pretrain`` does (manifest, compatibility check, input report) and
    build its first shuffled batch, for caches of each size (page cache dropped is not possible
    here without root: the first touch of the memory maps is what is timed)."""
    from gatortron_jax.pretraining import cache_pipeline, trainer

    out = {}
    data, train = ctx["data"], ctx["train"]
    for size in sizes_mb:
        root = tempfile.mkdtemp(prefix="bench_data_startup_")
        try:
            _synthetic_cache(os.path.join(root, "cache"), size, train.seq_len, data.vocab_path, ctx["vocab_size"])
            os.sync()  # the file is on disk, not only dirty in the page cache
            times = []
            for rep in range(3):  # a fresh start each time; another seed, so other chunks are touched
                t = time.perf_counter()
                cache = trainer.open_corpus_cache(dataclasses.replace(data, corpus_dir=os.path.join(root, "cache")),
                                                  train.seq_len, os.path.join(root, "run"))
                spec = cache_pipeline.StreamSpec(cache.directory, "train", train.seq_len, train.batch_size,
                                                 train.seed + rep)
                with cache_pipeline.CacheBatches(cache, spec, ctx["tables"]) as stream:
                    next(stream)
                times.append(time.perf_counter() - t)
            out[size] = dict(seconds=common.median(times), first_s=times[0], chunks=cache.num_chunks("train"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return out


def measure_resume(ctx: dict, repeats: int = 5) -> dict:
    """Stream open + first batch at position 0 vs at a 100k-GatorTron-step position (median s)."""
    from gatortron_jax.pretraining import cache_pipeline

    spec_rows = ctx["train"].batch_size // max(1, ctx["n_proc"])
    shard = cache_pipeline.shard_size(ctx["cache_chunks"], 0, max(1, ctx["n_proc"]))
    chunks = GATORTRON_ROWS * GATORTRON_STEPS // GATORTRON_HOSTS  # ~1 chunk per 512-token row
    far = cache_pipeline.Position(chunks // shard, chunks % shard)
    out = {}
    for name, pos in (("step0", cache_pipeline.Position()), ("step100k", far)):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            with ctx["cache_stream"](0, pos) as stream:
                next(stream)
            times.append(time.perf_counter() - t)
        out[name] = common.median(times)
    out.update(position=far.to_list(), chunks_per_host=chunks, rows=spec_rows)
    return out


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
        stream = None
        if source == "memory":
            batches = itertools.repeat(ctx["device_batch"])
        else:
            stream = ctx["cache_stream"](ctx["data"].num_workers)
            batches = trainer._global_batches(stream, ctx["partitioner"].data_sharding)
        _train_loop(ctx, batches, warmup)
        cpu0, t = common.cpu_seconds(), time.perf_counter()
        metrics = _train_loop(ctx, batches, n)
        wall, cpu = time.perf_counter() - t, common.cpu_seconds() - cpu0
        if stream is not None:
            stream.close()
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
    workers = args.workers if args.workers is not None else 2
    kinds = ("pipeline", "cache_host", "cache_workers", "tfdata", "trainer_memory", "trainer_pipeline")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    compile_s = None
    cache_n = args.pipeline_batches * 4  # the cache rows are fast: time them longer
    for _ in range(args.repeats):  # rotation, so drift on a shared machine hits every row alike
        runs["pipeline"].append(_rates(measure_pipeline(ctx, cache_n, warm, device_put=True, source="cache")))
        runs["cache_host"].append(_rates(measure_pipeline(ctx, cache_n, warm, device_put=False, source="cache")))
        runs["cache_workers"].append(_rates(measure_pipeline(ctx, cache_n, warm, device_put=False, source="cache",
                                                             workers=workers)))
        runs["tfdata"].append(_rates(measure_pipeline(ctx, args.pipeline_batches, warm, device_put=False)))
        if compile_s is None:  # first train step on the last pipeline batch, which stays on the device
            with ctx["partitioner"].activate():
                t = time.perf_counter()
                _train_loop(ctx, itertools.repeat(ctx["device_batch"]), 1)
                compile_s = time.perf_counter() - t
        runs["trainer_memory"].append(_rates(measure_train(ctx, n, warm, "memory")))
        runs["trainer_pipeline"].append(_rates(measure_train(ctx, n, warm, "pipeline")))
    runs["rawtext_device"] = [_rates(measure_pipeline(ctx, args.pipeline_batches, warm, device_put=True))]
    resume = measure_resume(ctx, repeats=3 if args.quick else 5)
    startup = measure_startup_vs_size(ctx, [10, 20] if args.quick else [100, 1000])

    def med(kind: str, key: str) -> float:
        return common.median(r[key] for r in runs[kind])

    summary = {k: {key: med(k, key) for key in ("batches_per_s", "tok_per_s", "nonpad_tok_per_s",
                                                 "cpu_s_per_batch", "cores_busy")} for k in runs}
    for k in ("pipeline", "tfdata", "cache_host", "cache_workers", "rawtext_device"):
        summary[k]["first_batch_s"] = med(k, "first_batch_s")
    best_cache = max(summary["cache_host"]["tok_per_s"], summary["cache_workers"]["tok_per_s"])
    cache_over_raw = best_cache / summary["tfdata"]["tok_per_s"]
    raw_tok_s = summary["tfdata"]["tok_per_s"]
    replay_tokens = resume["chunks_per_host"] * 512  # what .skip(step) re-read per host at 100k steps
    resume.update(raw_replay_s=replay_tokens / raw_tok_s, replay_tokens=replay_tokens)
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
        setup_s=setup_s, compile_s=compile_s, runs=runs, summary=summary, workers=workers,
        cache_over_raw=cache_over_raw, resume=resume, startup_vs_size=startup, prepare_s=ctx["prepare_s"],
        pipeline_over_trainer=ratio, fed_over_memory=fed,
        pipeline_over_trainer_per_repeat=per_repeat_ratio, fed_over_memory_per_repeat=per_repeat_fed,
        cores=common.cpu_count(), feed_cpu_s_per_step=feed_cpu,
        pipeline_cores_at_trainer_rate=pipeline_cores_at_trainer_rate,
        peak_rss_mb=common.peak_rss_mb(),
    )


ROWS = (
    ("pipeline", "cache pipeline → device (`_global_batches`, in-process)"),
    ("cache_host", "cache pipeline, in-process (host arrays)"),
    ("cache_workers", "cache pipeline, {workers} worker processes (host arrays)"),
    ("tfdata", "raw-text seqio pipeline (`as_numpy_iterator`) — before"),
    ("rawtext_device", "raw-text seqio pipeline → device — before"),
    ("trainer_memory", "train step, batch in device memory"),
    ("trainer_pipeline", "train step fed by the pipeline"),
)


def report(res: dict) -> str:
    c, s = res["config"], res["summary"]
    headers = ["measurement", "batches/s", "tokens/s (B×L)", "non-pad tokens/s", "CPU-s / batch",
               "cores busy", "1st batch s", "spread (min–max batches/s)"]
    rows = []
    for key, label in ROWS:
        label = label.format(workers=res["workers"])
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
    rz = res["resume"]
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
        f"- **cache / raw-text = {res['cache_over_raw']:.2f}x** tokens/s (best cache row vs the raw-text tf.data row; "
        f"cores busy: in-process {s['cache_host']['cores_busy']:.2f}, {res['workers']} workers "
        f"{s['cache_workers']['cores_busy']:.2f}, raw-text {s['tfdata']['cores_busy']:.2f}, of {res['cores']}). "
        f"Preparing the cache (one tokenisation pass) took {res['prepare_s']:.1f} s.",
        f"- **resume cost**: stream open + first batch {rz['step0'] * 1e3:.1f} ms at position 0 vs "
        f"{rz['step100k'] * 1e3:.1f} ms at a 100k-GatorTron-step position (epoch {rz['position'][0]:,}, "
        f"index {rz['position'][1]:,}; {rz['chunks_per_host']:,} chunks per host); difference "
        f"{abs(rz['step100k'] - rz['step0']) * 1e3:.1f} ms. The `.skip(step)` replay it replaced re-read "
        f"{rz['replay_tokens'] / 1e9:.1f} B tokens per host: {rz['raw_replay_s'] / 3600:.1f} h at the raw-text rate above.",
        "- **start-up vs corpus size** (open the cache as `pretrain` does + first shuffled batch, synthetic "
        "token caches; median of 3 starts, first start in brackets): "
        + ", ".join(f"{mb:,} MB ({v['chunks']:,} chunks): {v['seconds'] * 1e3:.0f} ms ({v['first_s'] * 1e3:.0f} ms)"
                    for mb, v in res["startup_vs_size"].items()) + ".",
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
    parser.add_argument("--repeats", type=int, default=None, help="rotations of the main measurements")
    parser.add_argument("--workers", type=int, default=None, help="worker processes of the cache-pipeline workers row (default 2)")
    common.add_common_flags(parser)
    args = parser.parse_args([a for a in argv if not a.startswith("--gin.")])
    quick = dict(steps=3, pipeline_batches=8, warmup=1, repeats=1)
    full = dict(steps=40, pipeline_batches=200, warmup=8, repeats=3)
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
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    main()
