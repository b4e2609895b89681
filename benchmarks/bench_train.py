"""Side-by-side train/forward throughput: gatortron_jax vs HF transformers (PyTorch), same shapes.

    python benchmarks/bench_train.py                      # all shapes, ~6 minutes on 2 cores
    python benchmarks/bench_train.py --ablations --results  # + before/after of each kept optimisation, appended to RESULTS.md
    python benchmarks/bench_train.py --quick              # tiny shape, seq 128, 3 steps (smoke test)
    python benchmarks/bench_train.py --gpu --batch 32     # GPU host: GatorTron-base, seq 512, bf16 MFU

Each measurement runs in its own child process (clean peak RSS, no cross-framework thread
contention); the parent prints one table with ratios ours/theirs and model FLOPs utilisation
against this machine's dense fp32 matmul peak, measured in the same run with ``jnp.dot``.
Both sides: fp32, AdamW (lr 1e-4, wd 0.01), dropout off, MLM loss on ~15% of positions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import common

SHAPES = {
    "tiny": dict(hidden=256, layers=4, heads=4, mlp=1024, vocab=8192),
    "small": dict(hidden=512, layers=8, heads=8, mlp=2048, vocab=50176),
    "base": dict(hidden=1024, layers=24, heads=16, mlp=4096, vocab=50176),  # GatorTron-base (345M), --gpu
}
SEQ_BATCH = {128: 8, 512: 2}
STEPS = {"tiny": 20, "small": 6, "base": 10}


def _batch(np, vocab, batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, vocab, size=(batch, seq)).astype(np.int32)
    weights = (rng.random((batch, seq)) < 0.15).astype(np.float32)
    return ids, weights


def train_flops(shape: dict, batch: int, seq: int, predicted_positions: int) -> float:
    """Model FLOPs of one fwd+bwd step: the planner's formula (``planning.flops``), not a copy."""
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.planning.flops import analytic_flops

    cfg = EncoderConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_layers=shape["layers"],
                        num_heads=shape["heads"], mlp_dim=shape["mlp"], max_position_embeddings=512)
    return analytic_flops(cfg, batch, seq, predicted_tokens=predicted_positions)["model"]


def median_seconds(fn, steps: int) -> float:
    """Median wall time of ``steps`` calls (each call waits for its result): robust to the
    occasional step slowed by another process on a shared machine, unlike a mean."""
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return common.median(times)


def child_peak(out: dict, dtype: str = "float32", n: int = 2048) -> None:
    out["gflops"] = common.jnp_matmul_flops(n, dtype) / 1e9


def build_mlm_step(shape: dict, seq: int, batch: int, sparse: bool, donate: bool = True,
                   config: dict | None = None) -> dict:
    """The benchmarked step, built as ``pretrain`` builds it (one CPU device): model, jitted
    donated train step, train state and one synthetic MLM batch. Shared with profile_step.py."""
    import jax
    import numpy as np

    from gatortron_jax.core import partitioning
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.pretraining import steps as steps_lib
    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import create_train_state

    cfg = EncoderConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_layers=shape["layers"],
                        num_heads=shape["heads"], mlp_dim=shape["mlp"], max_position_embeddings=512,
                        dropout_rate=0.0, attention_dropout_rate=0.0, use_pooler=False, **(config or {}))
    partitioner = partitioning.Partitioner(partitioning.create_mesh(1, 1, 1))
    model = EncoderForMLM(cfg)
    opt = make_optimizer(OptimizerConfig(learning_rate=1e-4, warmup_steps=0, clip_grad_norm=None), 1000)
    state, _ = create_train_state(model, opt, partitioner, jax.random.key(0))
    ids, weights = _batch(np, shape["vocab"], batch, seq)
    batch_d = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "segment_ids": np.ones_like(ids),
               "position_ids": np.broadcast_to(np.arange(seq, dtype=np.int32), ids.shape).copy(),
               "mlm_targets": ids, "mlm_weights": weights}
    max_pred = int(weights.sum(1).max()) if sparse else None
    step = jax.jit(steps_lib.make_train_step(model, opt, max_predictions=max_pred),
                   donate_argnums=(0,) if donate else ())
    return {"model": model, "partitioner": partitioner, "state": state, "batch": batch_d, "step": step,
            "rng": jax.random.key(1), "predicted": int(weights.sum()) if sparse else batch * seq}


def child_ours(out: dict, shape: dict, seq: int, batch: int, steps: int, sparse: bool, donate: bool = True,
               config: dict | None = None) -> None:
    import jax

    built = build_mlm_step(shape, seq, batch, sparse, donate, config)
    model, partitioner, state, batch_d, step = (built[k] for k in ("model", "partitioner", "state", "batch", "step"))
    fwd = jax.jit(lambda p, b: model.apply({"params": p}, b["input_ids"], b["token_type_ids"],
                                           b["position_ids"], b["segment_ids"])[0])
    with partitioner.activate():
        rng = built["rng"]
        state, m = step(state, batch_d, rng)
        jax.block_until_ready(m)

        def train_once():
            nonlocal state
            state, m = step(state, batch_d, rng)
            jax.block_until_ready(m)

        out["train_s"] = median_seconds(train_once, steps)
        jax.block_until_ready(fwd(state.params, batch_d))
        out["fwd_s"] = median_seconds(lambda: jax.block_until_ready(fwd(state.params, batch_d)), steps)
        # Encoder only (last hidden states): what fine-tuning heads, predict and embed run on.
        enc = jax.jit(lambda p, b: model.apply({"params": p}, b["input_ids"], b["token_type_ids"], b["position_ids"],
                                               b["segment_ids"], method=lambda m, *a: m.encoder(*a)[0]))
        jax.block_until_ready(enc(state.params, batch_d))
        out["enc_fwd_s"] = median_seconds(lambda: jax.block_until_ready(enc(state.params, batch_d)), steps)
    out["predicted"] = built["predicted"]


def child_hf(out: dict, shape: dict, seq: int, batch: int, steps: int) -> None:
    import numpy as np
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.MegatronBertConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"],
                                          num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                                          intermediate_size=shape["mlp"], max_position_embeddings=512,
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.MegatronBertForMaskedLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids, weights = _batch(np, shape["vocab"], batch, seq)
    ids_t = torch.tensor(ids, dtype=torch.long)
    labels = torch.tensor(np.where(weights > 0, ids, -100), dtype=torch.long)

    def train_step():
        loss = model(input_ids=ids_t, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    train_step()
    out["train_s"] = median_seconds(train_step, steps)
    model.eval()
    with torch.no_grad():
        model(input_ids=ids_t)
        out["fwd_s"] = median_seconds(lambda: model(input_ids=ids_t), steps)
        model.bert(input_ids=ids_t)
        out["enc_fwd_s"] = median_seconds(lambda: model.bert(input_ids=ids_t), steps)
    out["predicted"] = batch * seq  # HF projects every position onto the vocabulary


def run_child(kind: str, accelerator: bool = False, **kwargs) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps({"kind": kind, **kwargs})]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XLA_FLAGS", None)
    if accelerator:
        env.pop("JAX_PLATFORMS", None)  # jax's choice: the GPU
    else:
        env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(spec: dict) -> None:
    out: dict = {}
    kind = spec.pop("kind")
    {"peak": child_peak, "ours": child_ours, "hf": child_hf}[kind](out, **spec)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# Each optimisation kept in the product, measured against the same step without it (tiny
# shape; one child process each, so both sides of a pair see the same machine state).
# name -> (before kwargs, after kwargs); kwargs go to child_ours.
ABLATIONS = {
    "sparse MLM predictions (TrainConfig.max_predictions)": (dict(sparse=False), dict(sparse=True)),
    "spelled-out einsum attention on CPU (vs jax.nn.dot_product_attention XLA)": (
        dict(sparse=True, config={"attention_impl": "xla"}), dict(sparse=True, config={"attention_impl": "einsum"})),
    "donated train state (donate_argnums=0)": (dict(sparse=True, donate=False), dict(sparse=True, donate=True)),
    "remat 'dots' (vs 'none'): recompute elementwise ops, keep matmul outputs": (
        dict(sparse=True, config={"remat_policy": "none"}), dict(sparse=True, config={"remat_policy": "dots"})),
}


def _row_cells(r: dict) -> list:
    ratio = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731 - no HF reference (--gpu)
    return [r["shape"], r["seq"], r["batch"], r["impl"], common.fmt_num(r["train_tok_s"]), ratio(r["ratio_train"]),
            common.fmt_num(r["fwd_tok_s"]), ratio(r["ratio_fwd"]), common.fmt_num(r["enc_tok_s"]),
            ratio(r["ratio_enc"]), f"{r['mfu']:.1%}", common.fmt_num(r["rss_mb"])]


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ablations", action="store_true",
                        help="also time each kept optimisation against the step without it (tiny-128)")
    parser.add_argument("--gpu", action="store_true",
                        help="on a GPU host: GatorTron-base at seq 512 in bf16 (fp32 master weights), MFU against the "
                             "device's measured bf16 jnp.dot peak; no HF reference (its rows are skipped)")
    parser.add_argument("--batch", type=int, default=32, help="batch size for --gpu")
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return {}
    if args.gpu and args.ablations:
        parser.error("--ablations runs on the CPU shapes; run it without --gpu")

    t0 = time.perf_counter()
    dtype = "bfloat16" if args.gpu else "float32"
    peak_n = 8192 if args.gpu else 2048
    peak = run_child("peak", accelerator=args.gpu, dtype=dtype, n=peak_n)["gflops"]
    print(f"dense {dtype} matmul peak (jnp.dot {peak_n}^2): {peak:.1f} GFLOP/s", flush=True)
    if args.gpu:
        cases = [("base", 512, args.batch)]
    elif args.quick:
        cases = [("tiny", 128, SEQ_BATCH[128])]
    else:
        cases = [(name, seq, SEQ_BATCH[seq]) for name in ("tiny", "small") for seq in (128, 512)]
    rows = []
    for name, seq, batch in cases:
        shape = SHAPES[name]
        steps = 3 if args.quick else STEPS[name]
        tokens = batch * seq
        common_kw = dict(accelerator=args.gpu, shape=shape, seq=seq, batch=batch, steps=steps,
                         config={"dtype": dtype})
        hf = None if args.gpu else run_child("hf", shape=shape, seq=seq, batch=batch, steps=steps)
        dense = run_child("ours", sparse=False, **common_kw)
        sparse = run_child("ours", sparse=True, **common_kw)
        vs_hf = lambda key, r: None if hf is None else hf[key] / r[key]  # noqa: E731
        for label, r in (("hf", hf), ("ours-dense", dense), ("ours-sparse", sparse)):
            if r is None:
                continue
            flops = train_flops(shape, batch, seq, r["predicted"])
            rows.append(dict(shape=name, seq=seq, batch=batch, impl=label, predicted=r["predicted"],
                             train_gflop=flops / 1e9, train_tok_s=tokens / r["train_s"], fwd_tok_s=tokens / r["fwd_s"],
                             enc_tok_s=tokens / r["enc_fwd_s"], ratio_enc=vs_hf("enc_fwd_s", r),
                             rss_mb=r["peak_rss_mb"], mfu=flops / r["train_s"] / 1e9 / peak,
                             ratio_train=vs_hf("train_s", r), ratio_fwd=vs_hf("fwd_s", r)))
        print(f"{name}-{seq}: " + ", ".join(f"{r['impl']} {r['train_tok_s']:,.0f} tok/s" for r in rows[-3:]),
              flush=True)
    body = common.markdown_table(
        ["shape", "seq", "batch", "impl", "train tok/s", "train vs HF", "MLM fwd tok/s", "MLM fwd vs HF",
         "encoder fwd tok/s", "encoder fwd vs HF", "train MFU", "peak RSS MB"], [_row_cells(r) for r in rows])
    body = f"Dense {dtype} matmul peak (`jnp.dot` {peak_n}²): {peak:.1f} GFLOP/s.\n\n{body}\n"
    ablations = []
    if args.ablations:
        shape, seq = SHAPES["tiny"], 128
        batch, steps = SEQ_BATCH[seq], (3 if args.quick else STEPS["tiny"])
        for what, (before, after) in ABLATIONS.items():
            runs: dict = {"before": [], "after": []}
            for _ in range(1 if args.quick else 2):  # interleaved, so drift on a shared machine hits both
                for side, kw in (("before", before), ("after", after)):
                    runs[side].append(run_child("ours", shape=shape, seq=seq, batch=batch, steps=steps, **kw))
            b, a = ({"train_s": common.median(r["train_s"] for r in rs), "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)}
                    for rs in (runs["before"], runs["after"]))
            ablations.append(dict(what=what, before_tok_s=batch * seq / b["train_s"], after_tok_s=batch * seq / a["train_s"],
                                  before_rss_mb=b["peak_rss_mb"], after_rss_mb=a["peak_rss_mb"]))
            print(f"ablation {what}: {ablations[-1]['before_tok_s']:,.0f} -> {ablations[-1]['after_tok_s']:,.0f} tok/s",
                  flush=True)
        body += "\nBefore/after, tiny (H256 L4) seq 128 batch 8, train step:\n\n" + common.markdown_table(
            ["optimisation", "before tok/s", "after tok/s", "speed-up", "before RSS MB", "after RSS MB"],
            [[r["what"], common.fmt_num(r["before_tok_s"]), common.fmt_num(r["after_tok_s"]),
              f"{r['after_tok_s'] / r['before_tok_s']:.2f}x", common.fmt_num(r["before_rss_mb"]),
              common.fmt_num(r["after_rss_mb"])] for r in ablations]) + "\n"
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "torch", "transformers"), body)
    res = {"peak_gflops": peak, "rows": rows, "ablations": ablations, "wall_s": time.perf_counter() - t0}
    return common.publish(text, res, args, res["wall_s"])


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    main()
