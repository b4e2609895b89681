"""Ahead-of-time planner: will this model / mesh / batch fit, and what does a step cost?

``gatortron-jax plan`` builds the *real* train step (``steps.make_train_step`` with the AdamW
of ``core/optimizer.py``) for an abstract train state (``jax.eval_shape``: nothing is
allocated), lowers and compiles it for a mesh of *simulated CPU devices* with the real
shardings, and reports per device:

* memory from XLA's ``compiled.memory_analysis()``: arguments (params + optimizer state +
  batch), outputs, donated aliases, temporaries (activations, gathered weights, gradients);
  total = arguments + outputs - aliased + temporaries. It is the CPU compiler's buffer
  assignment, an *estimate* of GPU memory (the GPU compiler fuses and schedules
  differently; leave ~10% headroom);
* FLOPs per step computed analytically (``6 x matmul params x tokens + attention``, plus the
  remat recomputation). XLA's ``cost_analysis()`` counts a scanned (while-loop) body once,
  so it is shown only as a cross-check;
* bytes moved by collectives, by type, parsed from the compiled HLO. Ops inside while-loop
  bodies (the layer scan, the microbatch scan) are multiplied by the loop trip count.

Simulated devices must be configured before JAX initialises its CPU backend. The CLI does
that; if JAX is already initialised with too few devices, :func:`run` re-executes the
command in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any, Sequence

from gatortron_jax.planning.flops import analytic_flops
from gatortron_jax.core.errors import ConfigError

GiB = 1024**3
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 1024, "mib": 1024**2, "gib": GiB, "tib": 1024**4}

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")

_DTYPE_BYTES = {
    "pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "s32": 4, "u32": 4,
    "s64": 8, "u64": 8, "f8e4m3fn": 1, "f8e5m2": 1, "bf16": 2, "f16": 2, "f32": 4, "f64": 8,
    "c64": 8, "c128": 16, "token": 0,
}


# ----------------------------------------------------------------------------- parsing


def parse_bytes(text: str) -> int:
    """'80GiB', '80 GB', '1.5e9' -> bytes."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"--hbm {text!r}: expected a size like 80GiB, 40GB or 85899345920")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_mesh(text: str) -> dict[str, int]:
    """'data=2,fsdp=16,tensor=4' -> {'data': 2, 'fsdp': 16, 'tensor': 4} (missing axes are 1)."""
    sizes = {"data": 1, "fsdp": 1, "tensor": 1}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in sizes or not value.isdigit() or int(value) < 1:
            raise ConfigError(f"--mesh {text!r}: expected data=D,fsdp=F,tensor=T with positive sizes")
        sizes[name] = int(value)
    return sizes


# ----------------------------------------------------------------------------- HLO collectives

_COMP_HEADER = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*\(.*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.+?)\s+([a-z][a-z0-9\-]*)\((.*)$")
_SHAPE = re.compile(r"\b([a-z]+[0-9]*[a-z0-9]*)\[([0-9,]*)\]")
_CALLEE = re.compile(
    r"\b(body|condition|to_apply|calls|true_computation|false_computation)=%([\w.\-]+)"
)
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def _shape_bytes(type_text: str) -> float:
    total = 0.0
    for dtype, dims in _SHAPE.findall(type_text):
        if dtype not in _DTYPE_BYTES:
            continue
        total += _DTYPE_BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
    return total


def _group_size(attrs: str, num_devices: int) -> int:
    m = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", attrs)  # iota: [groups, size]<=[...]
    if m:
        return int(m.group(2))
    m = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", attrs)  # mesh['a'=4,...] {'a'}
    if m:
        sizes = {k.strip("' "): int(v) for k, v in re.findall(r"('?[\w]+'?)=(\d+)", m.group(1))}
        chosen = [a.strip("' ") for a in m.group(2).split(",") if a.strip()]
        return math.prod(sizes.get(a, 1) for a in chosen) if chosen else 1
    m = re.search(r"replica_groups=\{\{([^}]*)\}", attrs)  # explicit {{0,1},{2,3}}
    if m:
        return len([x for x in m.group(1).split(",") if x.strip()])
    if re.search(r"source_target_pairs=", attrs):
        return 2
    return num_devices  # replica_groups={} means all devices


def collective_bytes(hlo_text: str, num_devices: int) -> dict[str, dict[str, float]]:
    """Per-device collective traffic of one step, by type, from compiled HLO text.

    For each collective: ``count`` executions, ``result_bytes`` and ``operand_bytes`` (sums
    of the per-device buffers) and ``wire_bytes``, the bytes a device sends with ring
    algorithms (all-gather ``out*(g-1)/g``, reduce-scatter ``in*(g-1)/g``, all-reduce
    ``2*in*(g-1)/g``, all-to-all ``in*(g-1)/g``, collective-permute ``in``). Ops in a
    while-loop body count ``known_trip_count`` times (nested loops multiply).
    """
    comps: dict[str, list[tuple[str, str, str, str]]] = {}
    order: list[str] = []
    entry = None
    types: dict[tuple[str, str], str] = {}  # (computation, instruction) -> type text
    current: str | None = None
    for line in hlo_text.splitlines():
        header = _COMP_HEADER.match(line)
        if header and "=" not in line.split("(", 1)[0]:
            current = header.group(2)
            comps[current] = []
            order.append(current)
            if header.group(1):
                entry = current
            for pname, ptype in re.findall(r"([\w.\-]+):\s*((?:\([^)]*\))|[a-z0-9]+\[[0-9,]*\](?:\{[^}]*\})?)",
                                           line.split("->", 1)[0]):
                types[(current, pname)] = ptype
            continue
        if current is None:
            continue
        m = _INSTR.match(line)
        if m:
            name, type_text, op, rest = m.groups()
            types[(current, name)] = type_text
            comps[current].append((name, type_text, op, rest))
    if entry is None:
        raise ValueError("no ENTRY computation in HLO text")

    # Multiplicity of each computation: callers appear after callees, so walk backwards.
    mult: dict[str, float] = defaultdict(float)
    mult[entry] = 1.0
    for comp in reversed(order):
        if mult[comp] == 0:
            continue
        for _, _, op, rest in comps[comp]:
            trip = 1
            if op == "while":
                t = _TRIP.search(rest)
                trip = int(t.group(1)) if t else 1
            for kind, callee in _CALLEE.findall(rest):
                mult[callee] += mult[comp] * (trip if kind in ("body", "condition") else 1)
            for branches in _BRANCHES.findall(rest):
                for callee in re.findall(r"%([\w.\-]+)", branches):
                    mult[callee] += mult[comp]

    out: dict[str, dict[str, float]] = {
        c: {"count": 0.0, "result_bytes": 0.0, "operand_bytes": 0.0, "wire_bytes": 0.0} for c in COLLECTIVES
    }
    for comp in order:
        if mult[comp] == 0:
            continue
        for _, type_text, op, rest in comps[comp]:
            base = op[: -len("-start")] if op.endswith("-start") else op
            if base not in out:
                continue
            args = rest.split(")", 1)[0]
            operand_bytes = sum(_shape_bytes(types.get((comp, a), "")) for a in re.findall(r"%([\w.\-]+)", args))
            result_bytes = _shape_bytes(type_text)
            if op.endswith("-start") and type_text.startswith("("):
                # async start returns (operands..., results...): keep the result half.
                result_bytes = max(result_bytes - operand_bytes, 0.0)
            g = _group_size(rest, num_devices)
            frac = (g - 1) / g if g > 1 else 0.0
            wire = {
                "all-gather": result_bytes * frac,
                "reduce-scatter": operand_bytes * frac,
                "all-reduce": 2 * operand_bytes * frac,
                "all-to-all": operand_bytes * frac,
                "collective-permute": operand_bytes,
            }[base]
            k = mult[comp]
            rec = out[base]
            rec["count"] += k
            rec["result_bytes"] += k * result_bytes
            rec["operand_bytes"] += k * operand_bytes
            rec["wire_bytes"] += k * wire
    return out


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class PlanRequest:
    mesh: dict[str, int]
    batch: int
    seq_len: int
    num_microbatches: int = 1
    max_predictions: int | None = None
    hbm_bytes: int | None = None


def _abstract_batch(batch: int, seq_len: int, sharding: Any) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    keys = ("input_ids", "token_type_ids", "position_ids", "segment_ids", "mlm_targets", "mlm_weights")
    return {
        k: jax.ShapeDtypeStruct((batch, seq_len), jnp.float32 if k == "mlm_weights" else jnp.int32, sharding=sharding)
        for k in keys
    }


def _per_device_bytes(tree: Any) -> int:
    import jax

    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shard) * leaf.dtype.itemsize
    return total


def plan(model_config: Any, request: PlanRequest, optimizer_config: Any = None, rules: Any = None) -> dict[str, Any]:
    """Lower + compile the real train step on simulated devices; return the report dict."""
    import jax

    from gatortron_jax.core import partitioning
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.pretraining import steps
    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import abstract_train_state, count_params

    mesh = request.mesh
    n = mesh["data"] * mesh["fsdp"] * mesh["tensor"]
    devices = jax.devices()
    if len(devices) < n:
        raise ConfigError(f"mesh needs {n} devices, {len(devices)} are available (set up by `plan` itself)")
    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh["data"], mesh["fsdp"], mesh["tensor"], devices=devices[:n]),
        rules or partitioning.LOGICAL_AXIS_RULES,
    )
    dp = partitioner.data_parallel_size
    if request.batch % dp or (request.batch // dp) % request.num_microbatches:
        raise ConfigError(
            f"--batch {request.batch} must divide by the data-parallel size {dp} (data x fsdp) and then by "
            f"--microbatches {request.num_microbatches}"
        )
    if request.seq_len > model_config.max_position_embeddings:
        raise ConfigError(f"--seq {request.seq_len} exceeds max_position_embeddings={model_config.max_position_embeddings}")
    for name, size, dim in (("num_heads", mesh["tensor"], model_config.num_heads),
                            ("mlp_dim", mesh["tensor"], model_config.mlp_dim),
                            ("vocab_size", mesh["tensor"], model_config.vocab_size),
                            ("hidden_size", mesh["fsdp"], model_config.hidden_size)):
        if dim % size:
            raise ConfigError(f"EncoderConfig.{name}={dim} does not divide by mesh size {size}")

    model = EncoderForMLM(model_config)
    optimizer = make_optimizer(optimizer_config or OptimizerConfig(), 100_000)
    abstract, shardings = abstract_train_state(model, optimizer, partitioner)
    batch = _abstract_batch(request.batch, request.seq_len, partitioner.data_sharding)
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=partitioner.replicated)
    train_step = steps.make_train_step(
        model, optimizer, num_microbatches=request.num_microbatches, max_predictions=request.max_predictions
    )
    t0 = time.time()
    with partitioner.activate():
        jitted = jax.jit(
            train_step, in_shardings=(shardings, partitioner.data_sharding, partitioner.replicated),
            out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,),
        )
        lowered = jitted.lower(abstract, batch, rng)
        t1 = time.time()
        compiled = lowered.compile()
    t2 = time.time()

    mem = compiled.memory_analysis()
    arguments, outputs = int(mem.argument_size_in_bytes), int(mem.output_size_in_bytes)
    alias, temps = int(mem.alias_size_in_bytes), int(mem.temp_size_in_bytes)
    total = arguments + outputs - alias + temps + int(getattr(mem, "generated_code_size_in_bytes", 0) or 0)
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    xla_flops = float((cost or {}).get("flops", 0.0))
    flops = analytic_flops(model_config, request.batch, request.seq_len, request.max_predictions)
    collectives = collective_bytes(compiled.as_text(), n)
    # What XLA's cost analysis should see: one layer-scan body, one microbatch-scan body.
    once = analytic_flops(model_config.replace(num_layers=1), request.batch // request.num_microbatches,
                          request.seq_len, request.max_predictions)

    report: dict[str, Any] = {
        "model": {
            "params": count_params(abstract.params), "hidden_size": model_config.hidden_size,
            "num_layers": model_config.num_layers, "num_heads": model_config.num_heads,
            "mlp_dim": model_config.mlp_dim, "vocab_size": model_config.vocab_size,
            "dtype": model_config.dtype, "param_dtype": model_config.param_dtype,
            "remat_policy": model_config.remat_policy, "scan_layers": model_config.scan_layers,
        },
        "mesh": dict(mesh), "num_devices": n,
        "batch": request.batch, "seq_len": request.seq_len, "num_microbatches": request.num_microbatches,
        "max_predictions": request.max_predictions,
        "memory_per_device": {
            "arguments": arguments, "outputs": outputs, "aliased": alias, "temporaries": temps, "total": total,
            "state_arguments": _per_device_bytes(abstract),
            "params": _per_device_bytes(abstract.params), "opt_state": _per_device_bytes(abstract.opt_state),
        },
        "flops_per_step": flops,
        "flops_per_device": flops["model"] / n,
        "xla_cost_analysis_flops_per_device": xla_flops,
        "analytic_flops_per_device_loop_bodies_once": once["with_remat"] / n,
        "collectives_per_device": collectives,
        "time_s": {"lower": t1 - t0, "compile": t2 - t1},
    }
    if request.hbm_bytes:
        report["hbm_bytes"] = request.hbm_bytes
        report["fits"] = total <= request.hbm_bytes
    return report


def _fmt_bytes(b: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(b) >= size:
            return f"{b / size:,.2f} {unit}"
    return f"{b:,.0f} B"


def _fmt_flops(f: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if f >= size:
            return f"{f / size:,.2f} {unit}"
    return f"{f:,.0f} FLOP"


def format_report(r: dict[str, Any]) -> str:
    m, mem, fl = r["model"], r["memory_per_device"], r["flops_per_step"]
    mesh = ",".join(f"{k}={v}" for k, v in r["mesh"].items())
    lines = [
        f"model     {m['params'] / 1e6:,.1f}M params  L{m['num_layers']} H{m['hidden_size']} A{m['num_heads']} "
        f"F{m['mlp_dim']} V{m['vocab_size']}  compute {m['dtype']} / params {m['param_dtype']}  remat {m['remat_policy']}",
        f"mesh      {mesh} ({r['num_devices']} devices)  batch {r['batch']} x seq {r['seq_len']}  "
        f"microbatches {r['num_microbatches']}  max_predictions {r['max_predictions']}",
        f"compile   lower {r['time_s']['lower']:.1f}s, compile {r['time_s']['compile']:.1f}s (simulated CPU devices)",
        "",
        "memory per device (XLA buffer assignment on CPU: an estimate of GPU memory)",
        f"  arguments     {_fmt_bytes(mem['arguments']):>14}   (params {_fmt_bytes(mem['params'])}, "
        f"optimizer {_fmt_bytes(mem['opt_state'])}, batch + rng the rest)",
        f"  outputs       {_fmt_bytes(mem['outputs']):>14}",
        f"  aliased       {_fmt_bytes(mem['aliased']):>14}   (donated state reused for the new state)",
        f"  temporaries   {_fmt_bytes(mem['temporaries']):>14}   (activations, gathered weights, gradients)",
        f"  total         {_fmt_bytes(mem['total']):>14}   = arguments + outputs - aliased + temporaries",
        "",
        f"FLOPs per step (analytic)   {_fmt_flops(fl['model'])} model = 6 x {fl['encoder_matmul_params'] / 1e6:,.1f}M "
        f"encoder matmul params x {fl['tokens']:,.0f} tokens + attention {_fmt_flops(fl['attention'])} + MLM head "
        f"6 x {fl['head_matmul_params'] / 1e6:,.1f}M x {fl['predicted_tokens']:,.0f} predicted tokens",
        f"  with remat recompute      {_fmt_flops(fl['with_remat'])} (hardware FLOPs; MFU uses the model number)",
        f"  per device                {_fmt_flops(r['flops_per_device'])}",
        f"  XLA cost_analysis         {_fmt_flops(r['xla_cost_analysis_flops_per_device'])} per device "
        "(cross-check only: counts each scanned while-loop body once;",
        f"                            the analytic count with each loop body once is "
        f"{_fmt_flops(r['analytic_flops_per_device_loop_bodies_once'])})",
        "",
        "collectives per device per step (while-loop bodies x trip count)",
        f"  {'type':<20}{'count':>8}{'result bytes':>16}{'wire bytes':>16}",
    ]
    for name, c in r["collectives_per_device"].items():
        lines.append(f"  {name:<20}{c['count']:>8,.0f}{_fmt_bytes(c['result_bytes']):>16}{_fmt_bytes(c['wire_bytes']):>16}")
    if "fits" in r:
        verdict = "FITS" if r["fits"] else "DOES NOT FIT"
        lines += ["", f"{verdict}: {_fmt_bytes(mem['total'])} per device vs --hbm {_fmt_bytes(r['hbm_bytes'])}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI glue


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gin_file", action="append", required=True, help="model (or run) gin file(s); later files win")
    p.add_argument("--mesh", default=None, help="data=D,fsdp=F,tensor=T (default: MeshConfig from gin, no -1)")
    p.add_argument("--batch", type=int, default=None, help="global batch (default: TrainConfig.batch_size)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (default: TrainConfig.seq_len)")
    p.add_argument("--microbatches", type=int, default=None, help="gradient accumulation steps (default: TrainConfig)")
    p.add_argument("--max_predictions", type=int, default=None, help="sparse MLM predictions per row (default: TrainConfig)")
    p.add_argument("--remat", default=None, help="override EncoderConfig.remat_policy")
    p.add_argument("--dtype", default=None, help="override EncoderConfig.dtype (compute); params stay param_dtype")
    p.add_argument("--hbm", default=None, help="per-device memory to check against, e.g. 80GiB")
    p.add_argument("--json", default=None, help="also write the report as JSON to this path")


def _argv_from_args(args: argparse.Namespace, overrides: Sequence[str]) -> list[str]:
    argv = ["plan"] + [f"--gin_file={f}" for f in args.gin_file]
    for flag in ("mesh", "batch", "seq", "microbatches", "max_predictions", "remat", "dtype", "hbm", "json"):
        value = getattr(args, flag)
        if value is not None:
            argv.append(f"--{flag}={value}")
    return argv + [f"--gin.{o}" for o in overrides]


def _prepare_devices(n: int) -> bool:
    """Ask for ``n`` simulated CPU devices; False if JAX is already up with fewer."""
    import jax
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        return jax.default_backend() == "cpu" and jax.device_count() >= n
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", n)
    return True


def run(args: argparse.Namespace, overrides: Sequence[str], model_config: Any, train: Any, mesh_config: Any,
        optimizer_config: Any) -> int:
    """``gatortron-jax plan`` with its configs built at the gin edge: set up simulated devices, plan, print."""
    from gatortron_jax.core import partitioning

    if args.remat:
        model_config = model_config.replace(remat_policy=args.remat)
    if args.dtype:
        model_config = model_config.replace(dtype=args.dtype)
    if args.mesh:
        mesh = parse_mesh(args.mesh)
    else:
        mesh = {"data": mesh_config.data, "fsdp": mesh_config.fsdp, "tensor": mesh_config.tensor}
        if -1 in mesh.values():
            raise ConfigError("plan needs explicit mesh sizes: pass --mesh data=D,fsdp=F,tensor=T (MeshConfig has -1)")
    request = PlanRequest(
        mesh=mesh,
        batch=args.batch or train.batch_size,
        seq_len=args.seq or train.seq_len,
        num_microbatches=args.microbatches or train.num_microbatches,
        max_predictions=args.max_predictions if args.max_predictions is not None else train.max_predictions,
        hbm_bytes=parse_bytes(args.hbm) if args.hbm else None,
    )
    n = mesh["data"] * mesh["fsdp"] * mesh["tensor"]
    if not _prepare_devices(n):
        # JAX is already initialised (e.g. called from a test) with too few devices: fresh process.
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        cmd = [sys.executable, "-m", "gatortron_jax.cli", *_argv_from_args(args, overrides)]
        return subprocess.call(cmd, env=env)
    report = plan(model_config, request, optimizer_config,
                  partitioning.parse_rules_overrides(mesh_config.rules_overrides))
    print(format_report(report), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
