"""The encoder forward, ours (Flax/XLA) against HF transformers' ``BertModel`` (PyTorch, SDPA), same weights.

    python benchmarks/bench_forward.py                 # MiniLM's predict shape + GatorTron-base's (fewer layers)
    python benchmarks/bench_forward.py --quick         # tiny shapes (smoke test)
    python benchmarks/bench_forward.py --xla_flags="--xla_cpu_use_xnnpack=true"   # try an XLA:CPU flag
    python benchmarks/bench_forward.py --quantize dynamic_int8   # our side with --int8's dense matmuls
    python benchmarks/bench_forward.py --dtype bfloat16  # bf16 compute (predict --dtype), HF fp32 and bf16 autocast

Why: ``predict``, ``deid``, ``embed`` and evaluation are the encoder forward, and hospital teams
run them on CPU servers. This measures that forward alone, without tokenizing or writing.

One process, fp32, inference (``deterministic``, no dropout). A random HF ``BertModel`` (post-LN
BERT; GatorTron is pre-LN Megatron-BERT, the same matmuls) per shape, with
``attn_implementation="sdpa"`` (PyTorch's fused CPU attention), mapped onto our params with
``convert.hf.params_from_hf`` — the converter the parity tests use — so both sides run identical
weights; the largest difference of the last hidden states at real positions is reported.
Each batch has padding in a quarter of its rows (as a predict batch sorted by length has), so
both sides apply an attention mask.

Timing: ours and HF alternate run by run (the order flips each round), so load on a shared
machine hits both; min and median of ``--runs``. Each side's fraction of its own dense-matmul
peak, measured in the same process the same way: ``jnp.dot`` and ``torch.mm`` of 2048 x 2048
fp32 (min time), FLOPs counted analytically (2 per multiply-add: q/k/v/out projections, both
attention matmuls, both FFN matmuls; embeddings, LN, softmax and GELU not counted).

Shapes: ``minilm`` = all-MiniLM-L6-v2 at predict's batch (6 layers, H384, 12 heads of 32,
FFN 1536, batch 32 x 256); ``base`` = GatorTron-base's layer (H1024, 16 heads of 64, FFN 4096,
seq 512) with ``--base_layers`` layers (default 2 of 24) and ``--base_batch`` (default 4), to
fit the time on 2 cores; the per-layer work, hence the ratio, is that of the full model.

``--quantize dynamic_int8`` runs our side with ``EncoderConfig.matmul_quantization`` (what
``predict/deid/evaluate --int8`` set: int8 x int8 -> int32 dense matmuls, models/quantization.py);
HF stays fp32, so the reported max |ours - HF| is then the int8 error, and FLOPs are counted the
same (the fraction of the fp32 peak can exceed what fp32 could reach).

``--dtype bfloat16`` runs our side with bf16 compute (``predict --dtype bfloat16``; fp32 weights
cast at use, bf16 matmuls accumulating in f32) and HF twice: fp32, and under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (oneDNN's bf16 kernels), like for like. On a CPU
without native bf16 dot instructions neither side gains.

Our fp32 forward is jitted as predict jits it, with ``core.compiler_options`` (Eigen dots on
CPU, attention scores in cache-sized row blocks); the same forward with
``cpu_inference_kernels="xla_default"`` (XLA:CPU's YNNPACK dots, whole-batch scores) is timed in
the same rounds and reported beside it, so every fp32 run shows what that choice is worth on its
machine.

``XLA_FLAGS`` / ``--xla_flags`` are set before JAX starts; torch uses ``torch.get_num_threads()``
(= the CPUs), XLA:CPU its own pool over the same CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import common

SHAPES = {
    # name: (layers, hidden, heads, ffn, batch, seq)
    "minilm": (6, 384, 12, 1536, 32, 256),
    "base": (2, 1024, 16, 4096, 4, 512),
}
QUICK_SHAPES = {"minilm": (2, 64, 4, 128, 2, 32), "base": (1, 64, 2, 256, 1, 64)}
VOCAB = 1024  # embeddings are a gather: the vocabulary size does not change the forward's cost


def forward_flops(layers: int, hidden: int, ffn: int, batch: int, seq: int) -> float:
    """Matmul FLOPs of one encoder forward (2 per multiply-add)."""
    tokens = batch * seq
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * ffn) + 2 * 2 * seq * hidden
    return float(tokens * layers * per_token_layer)


def padding_mask(batch: int, seq: int):
    """1 = real token; every 4th row is padded after 3/4 of its length."""
    import numpy as np

    mask = np.ones((batch, seq), np.int64)
    mask[::4, (3 * seq) // 4:] = 0
    return mask


def forward_of(model):
    """The encoder forward as predict runs it: (params, ids, segment ids) -> last hidden states."""
    return lambda p, ids, segment_ids: model.apply({"params": p}, ids, None, None, segment_ids)[0]


def build(shape: tuple[int, ...], seed: int, quantize: str | None = None, config: dict | None = None):
    """(HF model, our apply fn, our params, inputs, our config) for one shape, same weights
    (``config``: EncoderConfig overrides on our side, e.g. ``attention_impl``)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    import transformers

    from gatortron_jax.convert.hf import config_from_hf, params_from_hf
    from gatortron_jax.core.compiler_options import inference_compiler_options
    from gatortron_jax.models.encoder import Encoder

    layers, hidden, heads, ffn, batch, seq = shape
    torch.manual_seed(seed)
    hf_cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=heads, intermediate_size=ffn,
                                     max_position_embeddings=max(512, seq), hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, attn_implementation="sdpa")
    hf = transformers.BertModel(hf_cfg, add_pooling_layer=False).eval()
    overrides = config or {}
    config = config_from_hf(hf.config.to_dict(), use_pooler=False, dropout_rate=0.0, attention_dropout_rate=0.0)
    state = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    params = jax.device_put(params_from_hf(state, config)["encoder"])
    config = config.replace(matmul_quantization=quantize, **overrides)
    ours = jax.jit(forward_of(Encoder(config)), compiler_options=inference_compiler_options(config))

    rng = np.random.default_rng(seed)
    mask = padding_mask(batch, seq)
    ids = rng.integers(5, VOCAB, size=(batch, seq)) * mask
    inputs = dict(ids=ids, mask=mask, j_ids=jnp.asarray(ids, jnp.int32), j_seg=jnp.asarray(mask, jnp.int32),
                  t_ids=torch.tensor(ids), t_mask=torch.tensor(mask))
    return hf, ours, params, inputs, config


def time_pair(run_a, run_b, runs: int) -> tuple[list[float], list[float]]:
    """Alternate a and b (order flipped each round); seconds of each call."""
    wall, _ = common.round_robin({"a": run_a, "b": run_b}, runs)
    return wall["a"], wall["b"]


def matmul_peaks(runs: int, n: int) -> dict:
    """GFLOP/s of ``jnp.dot`` and ``torch.mm`` n x n fp32, min time of ``runs``, interleaved."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    ja, ta = jnp.asarray(a), torch.from_numpy(a)
    dot = jax.jit(jnp.dot)
    dot(ja, ja).block_until_ready()
    torch.mm(ta, ta)
    tj, tt = time_pair(lambda: dot(ja, ja).block_until_ready(), lambda: torch.mm(ta, ta), runs)
    flops = 2.0 * n**3
    return dict(n=n, jax_gflops=flops / min(tj) / 1e9, torch_gflops=flops / min(tt) / 1e9,
                jax_s=tj, torch_s=tt)


def run_shape(name: str, shape: tuple[int, ...], runs: int, seed: int, quantize: str | None = None,
              dtype: str = "float32") -> dict:
    import jax
    import numpy as np
    import torch

    from gatortron_jax.core.compiler_options import inference_compiler_options
    from gatortron_jax.models.encoder import Encoder

    layers, hidden, heads, ffn, batch, seq = shape
    hf, ours, params, x, config = build(shape, seed, quantize, {"dtype": dtype})
    t = time.perf_counter()
    out = np.asarray(ours(params, x["j_ids"], x["j_seg"]), np.float32)
    compile_s = time.perf_counter() - t
    with torch.inference_mode():
        ref = hf(input_ids=x["t_ids"], attention_mask=x["t_mask"]).last_hidden_state.numpy()
    keep = x["mask"].astype(bool)
    max_diff = float(np.abs(out[keep] - ref[keep]).max())

    def run_ours():
        jax.block_until_ready(ours(params, x["j_ids"], x["j_seg"]))

    def run_hf():
        with torch.inference_mode():
            hf(input_ids=x["t_ids"], attention_mask=x["t_mask"])

    calls = {"ours": run_ours, "hf": run_hf}
    lower = bool(quantize) or dtype != "float32"
    if lower:  # our fp32 forward too, same params and inputs, in the same rounds: int8's / bf16's own speed-up
        fp32_config = config.replace(matmul_quantization=None, dtype="float32")
        fp32 = jax.jit(forward_of(Encoder(fp32_config)), compiler_options=inference_compiler_options(fp32_config))
        jax.block_until_ready(fp32(params, x["j_ids"], x["j_seg"]))
        calls["ours_fp32"] = lambda: jax.block_until_ready(fp32(params, x["j_ids"], x["j_seg"]))
    elif inference_compiler_options(config):  # the same forward with XLA:CPU's own choices (YNNPACK dots)
        xla_default = jax.jit(forward_of(Encoder(config.replace(cpu_inference_kernels="xla_default"))))
        jax.block_until_ready(xla_default(params, x["j_ids"], x["j_seg"]))
        calls["ours_xla_default"] = lambda: jax.block_until_ready(xla_default(params, x["j_ids"], x["j_seg"]))
    if dtype == "bfloat16":  # like for like: HF under torch's CPU bf16 autocast (oneDNN bf16 kernels)
        def run_hf_bf16():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                hf(input_ids=x["t_ids"], attention_mask=x["t_mask"])

        run_hf_bf16()
        calls["hf_bf16"] = run_hf_bf16
    wall, _ = common.round_robin(calls, runs)
    t_ours, t_hf, t_fp32 = wall["ours"], wall["hf"], [wall["ours_fp32"]] if lower else []
    flops = forward_flops(layers, hidden, ffn, batch, seq)
    tokens = batch * seq
    res = dict(shape=dict(layers=layers, hidden=hidden, heads=heads, head_dim=hidden // heads, ffn=ffn,
                          batch=batch, seq=seq),
               flops=flops, tokens=tokens, max_abs_diff=max_diff, ours_compile_s=compile_s,
               attention_impl=config.attention_impl, platform=config.platform, quantize=quantize, dtype=dtype)
    sides = {"ours": t_ours, "hf": t_hf} | ({"hf_bf16": wall["hf_bf16"]} if "hf_bf16" in wall else {})
    for side, ts in sides.items():
        res[side] = dict(runs_s=ts, min_s=min(ts), median_s=common.median(ts), tokens_per_s=tokens / min(ts),
                         gflops=flops / min(ts) / 1e9)
    res["speedup_min"] = res["hf"]["min_s"] / res["ours"]["min_s"]
    if t_fp32:
        res["ours_fp32"] = dict(runs_s=t_fp32[0], min_s=min(t_fp32[0]), median_s=common.median(t_fp32[0]))
        res["quantized_speedup_min"] = res["ours_fp32"]["min_s"] / res["ours"]["min_s"]
        res["quantized_speedup_median"] = res["ours_fp32"]["median_s"] / res["ours"]["median_s"]
    res["speedup_median"] = res["hf"]["median_s"] / res["ours"]["median_s"]
    if "ours_xla_default" in wall:
        ts = wall["ours_xla_default"]
        res["ours_xla_default"] = dict(runs_s=ts, min_s=min(ts), median_s=common.median(ts))
        res["xla_default_speedup_vs_hf_min"] = res["hf"]["min_s"] / min(ts)
        res["eigen_over_xla_default_min"] = min(ts) / res["ours"]["min_s"]
    if "hf_bf16" in res:
        res["speedup_vs_hf_bf16_min"] = res["hf_bf16"]["min_s"] / res["ours"]["min_s"]
        res["speedup_vs_hf_bf16_median"] = res["hf_bf16"]["median_s"] / res["ours"]["median_s"]
    return res


def _alternatives(cfg):
    """Attention layouts tried and not kept, spelled out here only to be timed against the library.

    Each maps (attention params of one layer, x, mask) to the attention output [B, S, H].
    """
    import jax
    import jax.numpy as jnp

    d = cfg.kv_dim
    neg = jnp.finfo(jnp.float32).min

    def proj(p, name, x, eq):
        return jnp.einsum(eq, x, p[name]["kernel"]) + (p[name]["bias"] if eq.endswith("bsnd") else p[name]["bias"][:, None])

    def old_bqhd(p, x, mask):  # the layout before issue 26: q/k/v [B, S, N, D], scores "bqhd,bkhd->bhqk"
        q, k, v = (proj(p, n, x, "bsh,hnd->bsnd") for n in ("query", "key", "value"))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q * (1 / d**0.5), k)
        probs = jax.nn.softmax(jnp.where(mask, logits, neg))
        return jnp.einsum("bsnd,ndh->bsh", jnp.einsum("bhqk,bkhd->bqhd", probs, v), p["out"]["kernel"]) + p["out"]["bias"]

    def bnsd_separate(p, x, mask):  # [B, N, S, D] layout, three projections, softmax then @ v
        q, k, v = (proj(p, n, x, "bsh,hnd->bnsd") for n in ("query", "key", "value"))
        probs = jax.nn.softmax(jnp.where(mask, jnp.einsum("bnqd,bnkd->bnqk", q * (1 / d**0.5), k), neg))
        return jnp.einsum("bnsd,ndh->bsh", jnp.einsum("bnqk,bnkd->bnqd", probs, v), p["out"]["kernel"]) + p["out"]["bias"]

    def fused_deferred(p, x, mask):  # the kept path with q/k/v as ONE einsum against the stacked kernels
        kernel = jnp.stack([p["query"]["kernel"] / d**0.5, p["key"]["kernel"], p["value"]["kernel"]])
        bias = jnp.stack([p["query"]["bias"] / d**0.5, p["key"]["bias"], p["value"]["bias"]])[:, None, :, None, :]
        q, k, v = jnp.einsum("bsh,thnd->tbnsd", x, kernel) + bias
        logits = jnp.where(mask, jnp.einsum("bnqd,bnkd->bnqk", q, k), neg)
        e = jnp.exp(logits - logits.max(-1, keepdims=True))
        out = jnp.einsum("bnqk,bnkd->bnqd", e, v) / e.sum(-1, keepdims=True)
        return jnp.einsum("bnsd,ndh->bsh", out, p["out"]["kernel"]) + p["out"]["bias"]

    def deferred(q, k, v, mask):  # the kept attention core on [B, N, S, D] q (scaled), k, v
        logits = jnp.where(mask, jnp.einsum("bnqd,bnkd->bnqk", q, k), neg)
        e = jnp.exp(logits - logits.max(-1, keepdims=True))
        return jnp.einsum("bnqk,bnkd->bnqd", e, v) / e.sum(-1, keepdims=True)

    # (The library's inference path is these row matmuls behind an optimization barrier: the
    # "kept" row. Without the barrier, below, XLA lays the product out transposed again.)
    def canonical_then_transpose(p, x, mask):  # x @ W as [B*S, H] x [H, N*D], then to BNSD, no barrier
        b, s, h = x.shape

        def one(name, scale=1.0):
            w = p[name]["kernel"].reshape(h, -1) * scale
            y = (x.reshape(b * s, h) @ w + p[name]["bias"].reshape(-1) * scale).reshape(b, s, -1, d)
            return y.transpose(0, 2, 1, 3)

        out = deferred(one("query", 1 / d**0.5), one("key"), one("value"), mask)
        return jnp.einsum("bnsd,ndh->bsh", out, p["out"]["kernel"]) + p["out"]["bias"]

    def fused_canonical(p, x, mask):  # one [B*S, H] x [H, 3H] matmul, then one transpose to [3, B, N, S, D]
        b, s, h = x.shape
        w = jnp.concatenate([p["query"]["kernel"].reshape(h, -1) / d**0.5, p["key"]["kernel"].reshape(h, -1),
                             p["value"]["kernel"].reshape(h, -1)], axis=1)
        bias = jnp.concatenate([p["query"]["bias"].reshape(-1) / d**0.5, p["key"]["bias"].reshape(-1),
                                p["value"]["bias"].reshape(-1)])
        qkv = (x.reshape(b * s, h) @ w + bias).reshape(b, s, 3, -1, d).transpose(2, 0, 3, 1, 4)
        out = deferred(qkv[0], qkv[1], qkv[2], mask)
        return jnp.einsum("bnsd,ndh->bsh", out, p["out"]["kernel"]) + p["out"]["bias"]

    def canonical_out(p, x, mask):  # einsum projections; the output projection from [B, S, N*D] rows
        q, k, v = (proj(p, n, x, "bsh,hnd->bnsd") for n in ("query", "key", "value"))
        out = deferred(q * (1 / d**0.5), k, v, mask)
        b, n, s, _ = out.shape
        rows = out.transpose(0, 2, 1, 3).reshape(b * s, n * d)
        return (rows @ p["out"]["kernel"].reshape(n * d, -1)).reshape(b, s, -1) + p["out"]["bias"]

    def batch_blocked(p, x, mask, rows):  # einsum projections, scores for `rows` batch rows at a time (a loop)
        q, k, v = (proj(p, n, x, "bsh,hnd->bnsd") for n in ("query", "key", "value"))

        def one_row(t):  # [N, S, S] scores: 3 MB at 12 heads x 256 positions, cache-sized
            return deferred(*(a[None] for a in t))[0]

        out = jax.lax.map(one_row, (q * (1 / d**0.5), k, v, mask), batch_size=None if rows == 1 else rows)
        return jnp.einsum("bnsd,ndh->bsh", out, p["out"]["kernel"]) + p["out"]["bias"]

    return {"scores 1 batch row at a time (lax.map), einsum projections": lambda p, x, m: batch_blocked(p, x, m, 1),
            "scores 2 batch rows at a time (lax.map), einsum projections": lambda p, x, m: batch_blocked(p, x, m, 2),
            "q/k/v as [B*S,H] x [H,H] matmuls, then transposed to [B,N,S,D]": canonical_then_transpose,
            "q/k/v as one [B*S,H] x [H,3H] matmul, then one transpose": fused_canonical,
            "einsum projections, output projection from [B*S, H] rows": canonical_out,
            "old: [B,S,N,D] einsum + softmax": old_bqhd, "[B,N,S,D], 3 projections, softmax": bnsd_separate,
            "[B,N,S,D], q/k/v fused (stacked kernels), deferred normalisation": fused_deferred}


def attention_ablation(shape: tuple[int, ...], runs: int, seed: int) -> dict:
    """One attention layer at ``shape``, every variant timed round-robin: the library's CPU path,
    ``jax.nn.dot_product_attention`` (XLA) through the same module, and the alternatives above."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    from gatortron_jax.models.encoder import SelfAttention, attention_mask

    layers, hidden, heads, ffn, batch, seq = shape
    _, _, params, x, config = build((1, hidden, heads, ffn, batch, seq), seed)
    p = jax.tree.map(lambda a: a[0], params["layers"]["attention"])
    h = jnp.asarray(np.random.default_rng(seed).standard_normal((batch, seq, hidden), dtype=np.float32))
    mask = attention_mask(x["j_seg"])
    fns = {}
    variants = [(dict(attention_impl=None), "library, CPU path (kept)"),
                (dict(attention_impl="xla"), "library, jax.nn.dot_product_attention (XLA)")]
    for fields, label in variants:
        module = SelfAttention(dataclasses.replace(config, **fields))
        fns[label] = jax.jit(lambda p, h, m, module=module: module.apply({"params": p}, h, m, True))
    for label, f in _alternatives(config).items():
        fns[label] = jax.jit(f)
    keep = x["mask"].astype(bool)
    ref = np.asarray(fns["library, CPU path (kept)"](p, h, mask))
    diffs = {k: float(np.abs(np.asarray(f(p, h, mask))[keep] - ref[keep]).max()) for k, f in fns.items()}
    times, cpu = common.round_robin({k: (lambda f=f: jax.block_until_ready(f(p, h, mask))) for k, f in fns.items()},
                                    runs)
    # CPU seconds (all threads of this process) are the steadier figure on a loaded machine:
    # waiting for a core does not count, only the work (and any spinning) does.
    return {k: dict(min_s=min(v), median_s=common.median(v), cpu_min_s=min(cpu[k]), cpu_median_s=common.median(cpu[k]),
                    max_abs_diff=diffs[k]) for k, v in times.items()}


def run(args: argparse.Namespace) -> dict:
    import jax
    import torch

    shapes = QUICK_SHAPES if args.quick else dict(SHAPES)
    if not args.quick:
        l, h, a, f, _, s = shapes["base"]
        shapes["base"] = (args.base_layers, h, a, f, args.base_batch, s)
    peaks_before = matmul_peaks(args.peak_runs, args.peak_n)
    results = {name: run_shape(name, shapes[name], args.runs, args.seed, args.quantize, args.dtype)
               for name in args.shapes}
    ablation = {name: attention_ablation(shapes[name], args.runs, args.seed) for name in args.ablation}
    peaks_after = matmul_peaks(args.peak_runs, args.peak_n)
    peak = dict(jax_gflops=max(peaks_before["jax_gflops"], peaks_after["jax_gflops"]),
                torch_gflops=max(peaks_before["torch_gflops"], peaks_after["torch_gflops"]),
                n=args.peak_n, before=peaks_before, after=peaks_after)
    for r in results.values():
        for side, stack_peak in (("ours", peak["jax_gflops"]), ("hf", peak["torch_gflops"]),
                                 ("hf_bf16", peak["torch_gflops"])):
            if side in r:
                r[side]["fraction_of_peak"] = r[side]["gflops"] / stack_peak
    return dict(config=dict(runs=args.runs, seed=args.seed, cpus=common.cpu_count(), torch_threads=torch.get_num_threads(),
                            devices=jax.device_count(), xla_flags=os.environ.get("XLA_FLAGS", ""),
                            quantize=args.quantize, dtype=args.dtype),
                peak=peak, shapes=results, ablation=ablation)


def report(res: dict) -> str:
    c, peak = res["config"], res["peak"]
    lines = [
        f"Encoder forward, our compute dtype `{c.get('dtype', 'float32')}` (HF fp32"
        f"{', and bf16 under torch.autocast' if c.get('dtype') == 'bfloat16' else ''}), same weights (HF `BertModel`, SDPA, converted by `convert.hf.params_from_hf`); "
        f"ours and HF alternating, min / median of {c['runs']} runs; {c['cpus']} CPU(s), torch threads "
        f"{c['torch_threads']}, XLA_FLAGS `{c['xla_flags'] or '(none)'}`, our matmul_quantization "
        f"`{c.get('quantize')}`. Matmul peak ({peak['n']}² fp32, best of "
        f"before/after): `jnp.dot` {peak['jax_gflops']:.0f} GFLOP/s, `torch.mm` {peak['torch_gflops']:.0f} GFLOP/s.",
        "",
    ]
    rows = []
    for name, r in res["shapes"].items():
        s = r["shape"]
        label = (f"{name}: {s['layers']} x H{s['hidden']}, {s['heads']} heads of {s['head_dim']}, "
                 f"batch {s['batch']} x {s['seq']}")
        q = f", {r['quantize']}" if r.get("quantize") else ""
        q += f", {r['dtype']}" if r.get("dtype", "float32") != "float32" else ""
        for side, who in (("ours", f"ours ({r['platform']}, attention_impl={r['attention_impl']}{q})"),
                          ("hf", "HF BertModel (SDPA)"), ("hf_bf16", "HF BertModel (SDPA), bf16 autocast")):
            if side not in r:
                continue
            z = r[side]
            rows.append([label, who, common.fmt_num(z["min_s"] * 1e3), common.fmt_num(z["median_s"] * 1e3),
                         common.fmt_num(z["tokens_per_s"]), common.fmt_num(z["gflops"], 1),
                         f"{100 * z['fraction_of_peak']:.0f}%"])
    lines.append(common.markdown_table(["shape", "stack", "min ms", "median ms", "tokens/s (min)", "GFLOP/s (min)",
                                        "of own matmul peak"], rows))
    lines.append("")
    for name, r in res["shapes"].items():
        lines.append(f"- {name}: ours / HF speed = {r['speedup_min']:.2f}x (min), {r['speedup_median']:.2f}x (median); "
                     f"max |ours - HF| of last hidden states {r['max_abs_diff']:.1e}; "
                     f"our first call incl. compilation {r['ours_compile_s']:.1f} s.")
        if "hf_bf16" in r:
            lines.append(f"- {name}: ours / HF bf16 autocast = {r['speedup_vs_hf_bf16_min']:.2f}x (min), "
                         f"{r['speedup_vs_hf_bf16_median']:.2f}x (median).")
        if "ours_fp32" in r:
            lines.append(f"- {name}: ours {r['quantize'] or r['dtype']} / ours fp32 (same rounds) = "
                         f"{r['quantized_speedup_min']:.2f}x (min), {r['quantized_speedup_median']:.2f}x (median); "
                         f"ours fp32 {r['ours_fp32']['min_s'] * 1e3:,.0f} ms (min).")
        if "ours_xla_default" in r:
            lines.append(f"- {name}: the same fp32 forward with `cpu_inference_kernels=\"xla_default\"` (YNNPACK "
                         f"dots, whole-batch scores) {r['ours_xla_default']['min_s'] * 1e3:,.0f} ms (min), "
                         f"{r['xla_default_speedup_vs_hf_min']:.2f}x HF; ours (`auto`: Eigen dots, row-blocked "
                         f"scores) / it = {r['eigen_over_xla_default_min']:.2f}x (same rounds).")
    for name, variants in res.get("ablation", {}).items():
        base = variants["library, CPU path (kept)"]["min_s"]
        cpu_base = variants["library, CPU path (kept)"]["cpu_median_s"]
        lines += ["", f"One attention layer (projections + attention + output projection) at the {name} shape, "
                  "variants round-robin:", "",
                  common.markdown_table(["variant", "min ms", "median ms", "time / kept (min)", "CPU ms (median)",
                                         "CPU / kept (median)", "max |diff| vs kept"],
                                        [[k, common.fmt_num(v["min_s"] * 1e3, 1), common.fmt_num(v["median_s"] * 1e3, 1),
                                          f"{v['min_s'] / base:.2f}", common.fmt_num(v["cpu_median_s"] * 1e3, 1),
                                          f"{v['cpu_median_s'] / cpu_base:.2f}", f"{v['max_abs_diff']:.1e}"]
                                         for k, v in variants.items()])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="*", default=["minilm", "base"], choices=sorted(SHAPES),
                        help="full-forward comparisons (none: only --ablation)")
    parser.add_argument("--runs", type=int, default=None, help="timed forwards per side and shape")
    parser.add_argument("--base_layers", type=int, default=2, help="layers at GatorTron-base's shape (24 real)")
    parser.add_argument("--base_batch", type=int, default=4)
    parser.add_argument("--peak_n", type=int, default=None, help="matmul size for the peak (default 2048)")
    parser.add_argument("--peak_runs", type=int, default=5)
    parser.add_argument("--xla_flags", default=None, help="XLA_FLAGS for this run (set before JAX starts)")
    parser.add_argument("--ablation", nargs="*", default=[], choices=sorted(SHAPES),
                        help="also time one attention layer's variants at these shapes")
    parser.add_argument("--quantize", default=None, choices=["dynamic_int8"],
                        help="our side's EncoderConfig.matmul_quantization (predict --int8); HF stays fp32")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="our compute dtype (predict --dtype); with bfloat16 HF also runs under torch's "
                             "bf16 autocast, beside its fp32 run")
    parser.add_argument("--seed", type=int, default=0)
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if args.peak_n is None:
        args.peak_n = 256 if args.quick else 2048
    if args.runs < 1 or args.base_layers < 1 or args.base_batch < 1:
        parser.error("--runs, --base_layers and --base_batch must be >= 1")
    if args.xla_flags is not None:
        os.environ["XLA_FLAGS"] = args.xla_flags
    t0 = time.perf_counter()
    res = run(args)
    res["wall_s"] = time.perf_counter() - t0
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "transformers", "torch"),
                          report(res))
    return common.publish(text, res, args, res["wall_s"])


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    main()
