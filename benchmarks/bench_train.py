"""Side-by-side train/forward throughput: gatortron_jax vs HF transformers (PyTorch), same shapes.

    python benchmarks/bench_train.py            # all shapes, ~10 minutes on 2 cores
    python benchmarks/bench_train.py --quick    # tiny shape, seq 128 only

Each measurement runs in its own child process (clean peak RSS, no cross-framework thread
contention); the parent prints one table with ratios ours/theirs and model FLOPs utilisation
against this machine's dense fp32 matmul peak, measured in the same run with ``jnp.dot``.
Both sides: fp32, AdamW (lr 1e-4, wd 0.01), dropout off, MLM loss on ~15% of positions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

SHAPES = {
    "tiny": dict(hidden=256, layers=4, heads=4, mlp=1024, vocab=8192),
    "small": dict(hidden=512, layers=8, heads=8, mlp=2048, vocab=50176),
}
SEQ_BATCH = {128: 8, 512: 2}
STEPS = {"tiny": 20, "small": 6}


def _batch(np, vocab, batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, vocab, size=(batch, seq)).astype(np.int32)
    weights = (rng.random((batch, seq)) < 0.15).astype(np.float32)
    return ids, weights


def train_flops(shape: dict, batch: int, seq: int, predicted_positions: int) -> float:
    """Analytical FLOPs of one fwd+bwd step (6 x matmul params x tokens + attention + LM head)."""
    h, l, f, v = shape["hidden"], shape["layers"], shape["mlp"], shape["vocab"]
    tokens = batch * seq
    block = 4 * h * h + 2 * h * f
    attention = 2 * 2 * seq * h  # QK^T and PV per token per layer
    head = h * h * tokens + h * v * predicted_positions  # transform + vocab projection
    return 6 * (block * l * tokens + head) + 3 * attention * l * tokens


def child_peak(out: dict) -> None:
    import jax.numpy as jnp
    import jax

    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t = time.perf_counter()
    reps = 10
    for _ in range(reps):
        r = f(a)
    r.block_until_ready()
    out["gflops"] = 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def child_ours(out: dict, shape: dict, seq: int, batch: int, steps: int, sparse: bool) -> None:
    import jax
    import numpy as np

    from gatortron_jax import partitioning
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.training import steps as steps_lib
    from gatortron_jax.training.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.training.train_state import create_train_state

    cfg = EncoderConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_layers=shape["layers"],
                        num_heads=shape["heads"], mlp_dim=shape["mlp"], max_position_embeddings=512,
                        dropout_rate=0.0, attention_dropout_rate=0.0, use_pooler=False)
    partitioner = partitioning.Partitioner(partitioning.create_mesh(1, 1, 1))
    model = EncoderForMLM(cfg)
    opt = make_optimizer(OptimizerConfig(learning_rate=1e-4, warmup_steps=0, clip_grad_norm=None), 1000)
    state, shardings = create_train_state(model, opt, partitioner, jax.random.key(0))
    ids, weights = _batch(np, shape["vocab"], batch, seq)
    batch_d = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "segment_ids": np.ones_like(ids),
               "position_ids": np.broadcast_to(np.arange(seq, dtype=np.int32), ids.shape).copy(),
               "mlm_targets": ids, "mlm_weights": weights}
    max_pred = int(weights.sum(1).max()) if sparse else None
    step = jax.jit(steps_lib.make_train_step(model, opt, max_predictions=max_pred), donate_argnums=(0,))
    fwd = jax.jit(lambda p, b: model.apply({"params": p}, b["input_ids"], b["token_type_ids"],
                                           b["position_ids"], b["segment_ids"])[0])
    with partitioner.activate():
        rng = jax.random.key(1)
        state, m = step(state, batch_d, rng)
        jax.block_until_ready(m)
        t = time.perf_counter()
        for _ in range(steps):
            state, m = step(state, batch_d, rng)
        jax.block_until_ready(m)
        out["train_s"] = (time.perf_counter() - t) / steps
        jax.block_until_ready(fwd(state.params, batch_d))
        t = time.perf_counter()
        for _ in range(steps):
            r = fwd(state.params, batch_d)
        jax.block_until_ready(r)
        out["fwd_s"] = (time.perf_counter() - t) / steps
    out["predicted"] = int(weights.sum()) if sparse else batch * seq


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
    t = time.perf_counter()
    for _ in range(steps):
        train_step()
    out["train_s"] = (time.perf_counter() - t) / steps
    model.eval()
    with torch.no_grad():
        model(input_ids=ids_t)
        t = time.perf_counter()
        for _ in range(steps):
            model(input_ids=ids_t)
    out["fwd_s"] = (time.perf_counter() - t) / steps
    out["predicted"] = batch * seq  # HF projects every position onto the vocabulary


def run_child(kind: str, **kwargs) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps({"kind": kind, **kwargs})]
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XLA_FLAGS", None)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    import jax
    import torch
    import transformers

    peak = run_child("peak")["gflops"]
    print(f"dense fp32 matmul peak (jnp.dot 2048^2): {peak:.1f} GFLOP/s")
    cases = [("tiny", 128)] if args.quick else [("tiny", 128), ("tiny", 512), ("small", 128), ("small", 512)]
    rows = []
    for name, seq in cases:
        shape, batch, steps = SHAPES[name], SEQ_BATCH[seq], STEPS[name]
        tokens = batch * seq
        hf = run_child("hf", shape=shape, seq=seq, batch=batch, steps=steps)
        dense = run_child("ours", shape=shape, seq=seq, batch=batch, steps=steps, sparse=False)
        sparse = run_child("ours", shape=shape, seq=seq, batch=batch, steps=steps, sparse=True)
        for label, r in (("hf", hf), ("ours-dense", dense), ("ours-sparse", sparse)):
            flops = train_flops(shape, batch, seq, r["predicted"])
            rows.append(dict(shape=name, seq=seq, batch=batch, impl=label,
                             train_tok_s=tokens / r["train_s"], fwd_tok_s=tokens / r["fwd_s"],
                             rss_mb=r["peak_rss_mb"], mfu=flops / r["train_s"] / 1e9 / peak,
                             ratio_train=hf["train_s"] / r["train_s"], ratio_fwd=hf["fwd_s"] / r["fwd_s"]))
    header = "| shape | seq | batch | impl | train tok/s | fwd tok/s | train ratio vs HF | fwd ratio vs HF | MFU | peak RSS MB |"
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['seq']} | {r['batch']} | {r['impl']} | {r['train_tok_s']:,.0f} | "
                     f"{r['fwd_tok_s']:,.0f} | {r['ratio_train']:.2f} | {r['ratio_fwd']:.2f} | {r['mfu']:.1%} | "
                     f"{r['rss_mb']:,.0f} |")
    table = "\n".join(lines)
    print(table)
    machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}"
    versions = f"jax {jax.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(args.results, "a") as f:
        f.write(f"\n## {stamp} — `python benchmarks/bench_train.py{' --quick' if args.quick else ''}`\n\n"
                f"Machine: {machine}; {versions}; matmul peak {peak:.1f} GFLOP/s (fp32).\n\n{table}\n")


if __name__ == "__main__":
    main()
