"""Where does one MLM train step (or one encoder forward) spend its time? A per-op profile of the real jitted program.

    python benchmarks/profile_step.py                          # tiny (H256 L4), seq 128, dense logits
    python benchmarks/profile_step.py --shape small --seq 512 --sparse
    python benchmarks/profile_step.py --config remat_policy=none --top 30
    python benchmarks/profile_step.py --forward minilm         # the encoder forward predict runs (32 x 256)
    python benchmarks/profile_step.py --forward base --quantize dynamic_int8

``--forward`` profiles ``bench_forward.py``'s program instead of the train step: the encoder
forward at MiniLM's predict shape or GatorTron-base's layer, random BERT weights, with the
matmuls' share of op time (what issue 26 asks: remove what is not matmul time).

Runs the same step as ``bench_train.py`` (``steps.make_train_step``, donated, one CPU device),
traces a few steps with ``jax.profiler`` (``create_perfetto_trace=True``), and sums the
duration of every executed XLA op (thunk) per step. Each op is matched to its HLO instruction
in the compiled module, so the table names what it computes (shape) and where it came from
(the JAX ``op_name``: module path and primitive). Ops are also grouped into categories:

* ``matmul``   — dots (XLA:CPU runs them as ``ynn_fusion`` / ``dot`` thunks)
* ``scan``     — the layer loop's bookkeeping: the zero buffers that residuals and stacked
  parameter gradients are written into (``broadcast``), ``dynamic-update-slice`` /
  ``dynamic-slice`` of per-layer slices
* ``copy``     — transposes and layout copies
* ``other``    — elementwise fusions (GELU, softmax, LayerNorm, loss, AdamW), reductions

This is the profile behind the ratios in RESULTS.md: it shows *which* ops are slower than
they need to be, not just that the step is.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

import common

common.quiet_tensorflow()


def categorise(name: str, op_name: str) -> str:
    """The category of one executed op (see the module docstring)."""
    if name.startswith(("ynn", "dot", "xnn", "onednn")):
        return "matmul"
    if "dynamic-update-slice" in name or "dynamic-slice" in name:
        return "scan"
    # Zero buffers the layer loop stacks residuals (no op_name) and parameter gradients into.
    if "broadcast" in name and (not op_name or op_name.endswith("encoder/broadcast_in_dim")):
        return "scan"
    if name.startswith(("copy", "transpose")):
        return "copy"
    return "other"


def hlo_index(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (result shape, op_name metadata) for every instruction."""
    out = {}
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ", line)
        if m:
            on = re.search(r'op_name="([^"]+)"', line)
            out[m.group(1)] = (m.group(2), on.group(1) if on else "")
    return out


def _trace(run_once, calls: int) -> dict:
    """Three untimed calls, then ``calls`` traced ones: the perfetto trace as JSON."""
    import jax

    for _ in range(3):
        run_once()
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(calls):
                run_once()
        (trace_file,) = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
        with gzip.open(trace_file) as f:
            return json.load(f)


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--seq", type=int, default=128, choices=[128, 512])
    parser.add_argument("--sparse", action="store_true", help="MLM logits only at masked positions")
    parser.add_argument("--config", action="append", default=[], metavar="FIELD=VALUE",
                        help="EncoderConfig override, e.g. remat_policy=none (JSON value or bare string)")
    parser.add_argument("--steps", type=int, default=None, help="traced steps (default 5; 2 with --quick)")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--forward", default=None, choices=["minilm", "base"],
                        help="profile bench_forward.py's encoder forward at this shape instead of the train step")
    parser.add_argument("--quantize", default=None, choices=["dynamic_int8"], help="with --forward: int8 matmuls")
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 2 if args.quick else 5

    import jax

    overrides = {}
    for item in args.config:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.forward:
        import bench_forward

        shape = (bench_forward.QUICK_SHAPES if args.quick else bench_forward.SHAPES)[args.forward]
        _, fwd, params, inputs, config = bench_forward.build(shape, 0, args.quantize, config=overrides)
        call_args = (params, inputs["j_ids"], inputs["j_seg"])
        index = hlo_index(fwd.lower(*call_args).compile().as_text())
        run_once = lambda: jax.block_until_ready(fwd(*call_args))  # noqa: E731
        layers, hidden, heads, ffn, batch, seq = shape
        what = (f"encoder forward, {args.forward}: {layers} x H{hidden}, {heads} heads, FFN {ffn}, batch {batch} x {seq}"
                + (f", {args.quantize}" if args.quantize else "") + (f", {overrides}" if overrides else ""))
        trace = _trace(run_once, args.steps)
    else:
        from bench_train import SEQ_BATCH, SHAPES, build_mlm_step

        shape, batch, seq = SHAPES[args.shape], SEQ_BATCH[args.seq], args.seq
        built = build_mlm_step(shape, seq, batch, args.sparse, config=overrides)
        partitioner, state, b, step, rng = (built[k] for k in ("partitioner", "state", "batch", "step", "rng"))
        holder = {"state": state}

        def run_once() -> None:
            holder["state"], m = step(holder["state"], b, rng)
            jax.block_until_ready(m)

        with partitioner.activate():
            index = hlo_index(step.lower(state, b, rng).compile().as_text())
            trace = _trace(run_once, args.steps)
        what = f"train step, {args.shape} seq {seq} batch {batch}, {'sparse' if args.sparse else 'dense'} MLM logits" + (
            f", {overrides}" if overrides else "")
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    per_op: collections.Counter = collections.Counter()
    wall = 0.0
    for e in events:
        if e.get("ph") != "X":
            continue
        if e["name"] == "ThunkExecutor::Execute (wait for completion)":
            wall += e.get("dur", 0)
        elif e["name"] in index and not e["name"].startswith(("while", "cond", "call")):
            per_op[e["name"]] += e.get("dur", 0)  # (loops/conditionals contain their ops' events)
    ms = lambda us: us / args.steps / 1000  # noqa: E731 - microseconds per trace -> ms per step
    categories: collections.Counter = collections.Counter()
    rows = []
    for name, us in per_op.most_common():
        shp, op_name = index[name]
        cat = categorise(name, op_name)
        categories[cat] += us
        rows.append(dict(op=name, ms=ms(us), category=cat, shape=shp, op_name=op_name))
    total_ops = sum(per_op.values())
    body = [f"{what[0].upper() + what[1:]}: {ms(wall):.1f} ms/call executing; ops sum to {ms(total_ops):.1f} ms "
            f"(> executing time where XLA runs ops concurrently).", ""]
    body.append(common.markdown_table(
        ["category", "ms/step", "share of op time"],
        [[c, f"{ms(us):.1f}", f"{us / total_ops:.0%}"] for c, us in categories.most_common()]))
    body += ["", common.markdown_table(
        ["op", "ms/step", "category", "result", "from (JAX op_name)"],
        [[r["op"], f"{r['ms']:.2f}", r["category"], f"`{r['shape'][:40]}`", f"`{r['op_name'][-80:]}`"]
         for r in rows[: args.top]])]
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax"), "\n".join(body))
    res = {"config": vars(args), "executing_ms": ms(wall), "ops_ms": ms(total_ops),
           "categories": {c: ms(us) for c, us in categories.items()}, "ops": rows}
    return common.publish(text, res, args)


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    main()
