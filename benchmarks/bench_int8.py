"""Would int8 matmuls speed up CPU inference? The encoder's dense layers in fp32 and int8, ours (XLA:CPU) and torch.

    python benchmarks/bench_int8.py              # MiniLM's predict shape (batch 32 x 256 tokens, H384, FFN 1536)
    python benchmarks/bench_int8.py --shape base # GatorTron-base's layer (batch 4 x 512, H1024, FFN 4096)
    python benchmarks/bench_int8.py --quick      # tiny (smoke test)

Why: issue 26 asks whether weight-only or dynamic int8 matmuls, the lever CPU inference stacks
use (PyTorch's ``quantize_dynamic``, ONNX Runtime), would make ``predict``/``deid`` faster. The
dense layers are ~60% of the forward at the MiniLM shape; if int8 does not make *them* faster on
XLA:CPU, no int8 flag can make the forward faster, and F1 need not be measured.

One layer's four dense matmuls (fused q/k/v H→3H, attention output H→H, FFN H→F and F→H) on
``batch x seq`` token rows, each variant timed round-robin in one process (min / median):

- ``fp32``: what the encoder runs today;
- ``int8 weights``: weights stored int8 with a per-output-channel scale, dequantised inside the
  jitted function, then an fp32 matmul (saves memory, not FLOPs);
- ``dynamic int8``: activations quantised per row at run time, int8 x int8 → int32
  ``dot_general`` (``preferred_element_type=int32``), rescaled to fp32 — PyTorch's dynamic scheme;
- ``bf16``: both operands cast to bfloat16 (the accelerators' mode; on CPU for comparison);
- torch ``nn.Linear`` fp32 and the same after ``torch.ao.quantization.quantize_dynamic`` (fbgemm
  int8 kernels), on the same weights and inputs.

Each variant's largest relative error against its stack's fp32 output is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time

import common

import warnings

warnings.filterwarnings("ignore", module="torch.ao")  # quantize_dynamic is deprecated in favour of torchao (not a dependency)
warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")

SHAPES = {  # name: (hidden, ffn, batch, seq)
    "minilm": (384, 1536, 32, 256),
    "base": (1024, 4096, 4, 512),
}
QUICK = (64, 256, 2, 32)


def _weights(hidden: int, ffn: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    dims = {"qkv": (hidden, 3 * hidden), "out": (hidden, hidden), "ffn_in": (hidden, ffn), "ffn_out": (ffn, hidden)}
    return {k: (rng.standard_normal(d, dtype=np.float32) * 0.02) for k, d in dims.items()}


def _jax_variants(weights: dict):
    """name -> (jitted fn(x) -> outputs of the four matmuls, its arguments besides x)."""
    import jax
    import jax.numpy as jnp

    f32 = {k: jnp.asarray(w) for k, w in weights.items()}
    scale = {k: jnp.max(jnp.abs(w), axis=0, keepdims=True) / 127.0 for k, w in f32.items()}
    q8 = {k: jnp.round(w / scale[k]).astype(jnp.int8) for k, w in f32.items()}

    def chain(x, mm):
        # the layer's dataflow shapes: x[rows,H] -> qkv, out(H), ffn_in(F) -> ffn_out(H)
        qkv = mm("qkv", x)
        out = mm("out", x)
        mid = mm("ffn_in", out)
        return qkv, out, mid, mm("ffn_out", mid)

    def fp32(x, w):
        return chain(x, lambda k, a: a @ w[k])

    def weights_int8(x, w, s):
        return chain(x, lambda k, a: a @ (w[k].astype(jnp.float32) * s[k]))

    def dynamic_int8(x, w, s):
        def mm(k, a):
            a_scale = jnp.maximum(jnp.max(jnp.abs(a), axis=-1, keepdims=True), 1e-12) / 127.0
            aq = jnp.round(a / a_scale).astype(jnp.int8)
            acc = jax.lax.dot_general(aq, w[k], (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32)
            return acc.astype(jnp.float32) * a_scale * s[k]
        return chain(x, mm)

    def bf16(x, w):
        return chain(x, lambda k, a: (a.astype(jnp.bfloat16) @ w[k].astype(jnp.bfloat16)).astype(jnp.float32))

    return {"ours fp32": (jax.jit(fp32), (f32,)), "ours int8 weights": (jax.jit(weights_int8), (q8, scale)),
            "ours dynamic int8": (jax.jit(dynamic_int8), (q8, scale)), "ours bf16": (jax.jit(bf16), (f32,))}


def _torch_variants(weights: dict):
    import torch

    torch.manual_seed(0)
    layers = torch.nn.ModuleDict({k: torch.nn.Linear(*w.shape, bias=False) for k, w in weights.items()})
    with torch.no_grad():
        for k, w in weights.items():
            layers[k].weight.copy_(torch.from_numpy(w.T.copy()))
    quantized = torch.ao.quantization.quantize_dynamic(layers, {torch.nn.Linear}, dtype=torch.qint8)

    def run(mods):
        def f(x):
            with torch.inference_mode():
                out = mods["out"](x)
                mid = mods["ffn_in"](out)
                return mods["qkv"](x), out, mid, mods["ffn_out"](mid)
        return f

    return {"torch fp32 (nn.Linear)": run(layers), "torch dynamic int8 (quantize_dynamic)": run(quantized)}


def run(shape: tuple[int, int, int, int], runs: int, seed: int) -> dict:
    import jax
    import numpy as np
    import torch

    hidden, ffn, batch, seq = shape
    weights = _weights(hidden, ffn, seed)
    x = np.random.default_rng(seed + 1).standard_normal((batch * seq, hidden), dtype=np.float32)
    jx, tx = jax.numpy.asarray(x), torch.from_numpy(x)
    calls = {name: (lambda f=f, a=a: jax.block_until_ready(f(jx, *a))) for name, (f, a) in _jax_variants(weights).items()}
    calls.update({name: (lambda f=f: f(tx)) for name, f in _torch_variants(weights).items()})
    outputs = {name: [np.asarray(o) for o in call()] for name, call in calls.items()}  # also compiles / warms up

    def rel_err(name: str) -> float:
        ref = outputs["torch fp32 (nn.Linear)" if name.startswith("torch") else "ours fp32"]
        return max(float(np.abs(o - r).max() / (np.abs(r).max() + 1e-12)) for o, r in zip(outputs[name], ref))

    times, _ = common.round_robin(calls, runs)
    flops = 2.0 * batch * seq * (hidden * 3 * hidden + hidden * hidden + 2 * hidden * ffn)
    return {"shape": dict(hidden=hidden, ffn=ffn, batch=batch, seq=seq), "flops": flops,
            "variants": {k: dict(min_s=min(v), median_s=common.median(v), rel_err=rel_err(k),
                                 gops=flops / min(v) / 1e9) for k, v in times.items()}}


def report(res: dict, runs: int) -> str:
    s, v = res["shape"], res["variants"]
    ours, theirs = v["ours fp32"]["min_s"], v["torch fp32 (nn.Linear)"]["min_s"]
    rows = [[k, common.fmt_num(r["min_s"] * 1e3, 1), common.fmt_num(r["median_s"] * 1e3, 1),
             common.fmt_num(r["gops"], 1), f"{(ours if k.startswith('ours') else theirs) / r['min_s']:.2f}x",
             f"{ours / r['min_s']:.2f}x", f"{r['rel_err']:.1e}"] for k, r in v.items()]
    return "\n".join([
        f"One encoder layer's four dense matmuls (q/k/v, output, FFN in/out) on {s['batch']} x {s['seq']} token rows, "
        f"H{s['hidden']}, FFN {s['ffn']}; variants round-robin, min / median of {runs}.", "",
        common.markdown_table(["variant", "min ms", "median ms", "G(FL)OP/s (min)", "speed vs own fp32 (min)",
                               "speed vs ours fp32 (min)", "max rel. error vs own fp32"], rows)])


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="minilm", choices=sorted(SHAPES))
    parser.add_argument("--runs", type=int, default=None, help="timed calls per variant (default 7; 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    runs = args.runs or (2 if args.quick else 7)
    t0 = time.perf_counter()
    res = run(QUICK if args.quick else SHAPES[args.shape], runs, args.seed)
    res["wall_s"] = time.perf_counter() - t0
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "torch"), report(res, runs))
    return common.publish(text, res, args, res["wall_s"])


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()
    main()
