"""Ahead-of-time planner: will this model / mesh / batch fit, and what does a step cost?

``gatortron-jax plan`` builds the *real* step (``--step train``: the MLM step of
``steps.make_train_step`` with the AdamW of ``core/optimizer.py``; ``finetune`` / ``predict``:
the NER tagger's, ``planning/programs.py``) for an abstract state (``jax.eval_shape``: nothing
is allocated), lowers and compiles it with the real shardings, and reports per device:

* memory from XLA's ``compiled.memory_analysis()``: arguments (params + optimizer state +
  batch), outputs, donated aliases, temporaries (activations, gathered weights, gradients);
  total = arguments + outputs - aliased + temporaries. Without ``--target`` the devices are
  *simulated CPU devices* and this is the CPU compiler's buffer assignment, a proxy: the
  GPU/TPU compilers fuse and schedule differently (the CPU's temporaries do not shrink under
  bf16). With ``--target`` (``planning/targets.py``) it is the target compiler's own, and the
  verdict is its HBM (TPU: the compiler's RESOURCE_EXHAUSTED);
* FLOPs per step computed analytically (``planning/flops.py``). XLA's ``cost_analysis()``
  counts a scanned (while-loop) body once, so it is shown only as a cross-check;
* bytes moved by collectives, parsed from the compiled HLO (``planning/collectives.py``);
* with a target, a roofline step time and tokens/s (``planning/roofline.py``), and
  ``--search`` over meshes, remat and batch (``planning/search.py``).

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
from typing import Any, Sequence

from gatortron_jax.planning.collectives import COLLECTIVES, collective_bytes  # noqa: F401 (re-exported)
from gatortron_jax.planning.flops import analytic_flops
from gatortron_jax.planning.report import format_report  # noqa: F401 (re-exported)
from gatortron_jax.core.errors import ConfigError

GiB = 1024**3
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 1024, "mib": 1024**2, "gib": GiB, "tib": 1024**4}

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


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class PlanRequest:
    mesh: dict[str, int]
    batch: int
    seq_len: int
    num_microbatches: int = 1
    max_predictions: int | None = None
    hbm_bytes: int | None = None
    step: str = "train"  # one of programs.STEPS: train (MLM), finetune (tagger), predict (tagger)


def _per_device_bytes(tree: Any) -> int:
    import jax

    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shard) * leaf.dtype.itemsize
    return total


def step_flops(model_config: Any, request: PlanRequest) -> dict[str, float]:
    """Analytic FLOPs of the requested step (``flops.analytic_flops``; tagger head added)."""
    from gatortron_jax.planning.programs import NUM_LABELS

    if request.step == "train":
        return analytic_flops(model_config, request.batch, request.seq_len, request.max_predictions)
    f = analytic_flops(model_config, request.batch, request.seq_len, predicted_tokens=0)
    head = 2 * model_config.hidden_size * NUM_LABELS * f["tokens"]
    forward = f["forward"] + head
    if request.step == "predict":  # forward only
        return dict(f, forward=forward, model=forward, with_remat=forward, attention=f["attention"] / 3)
    return dict(f, forward=forward, model=3 * forward, with_remat=f["with_remat"] + 3 * head)


def _check(model_config: Any, request: PlanRequest, partitioner: Any) -> None:
    from gatortron_jax.planning.programs import STEPS

    mesh = request.mesh
    if request.step not in STEPS:
        raise ConfigError(f"--step {request.step!r}: one of {', '.join(STEPS)}")
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


def _out_of_memory(error: Exception) -> str | None:
    """The compiler's own out-of-memory verdict (TPU refuses at compile time), else None."""
    text = str(error)
    if "RESOURCE_EXHAUSTED" not in text and "Ran out of memory" not in text:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if "RESOURCE_EXHAUSTED" in ln or "Ran out of memory" in ln or "Exceeded" in ln
            or ln.startswith("Total hbm usage")]
    return "\n".join(keep[:4] or lines[:3])


def plan(model_config: Any, request: PlanRequest, optimizer_config: Any = None, rules: Any = None, *,
         devices: Sequence[Any] | None = None, target: Any = None, hfu: float | None = None,
         keep_hlo: bool = False) -> dict[str, Any]:
    """Lower + compile the requested step for ``devices`` and return the report dict.

    ``devices`` defaults to this process's (simulated CPU) devices; with a ``target``
    (``targets.get_target``) they are its compile-only devices and the report adds the
    target's HBM verdict and a roofline estimate. ``keep_hlo`` adds the compiled HLO text.
    """
    import jax

    from gatortron_jax.core import partitioning
    from gatortron_jax.core.train_state import count_params
    from gatortron_jax.planning import programs, roofline

    mesh = request.mesh
    n = mesh["data"] * mesh["fsdp"] * mesh["tensor"]
    if target is not None:
        from gatortron_jax.planning.targets import target_devices

        model_config = model_config.replace(target_platform=target.platform)
        devices = target_devices(target, n) if devices is None else devices
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < n:
        raise ConfigError(f"mesh needs {n} devices, {len(devices)} are available (set up by `plan` itself)")
    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh["data"], mesh["fsdp"], mesh["tensor"], devices=devices[:n]),
        rules or partitioning.LOGICAL_AXIS_RULES,
    )
    _check(model_config, request, partitioner)
    program = programs.BUILDERS[request.step](
        model_config, partitioner, request.batch, request.seq_len, optimizer_config=optimizer_config,
        num_microbatches=request.num_microbatches, max_predictions=request.max_predictions)
    t0 = time.time()
    compiler_message = None
    with partitioner.activate():
        jitted = jax.jit(program.fn, in_shardings=program.in_shardings, out_shardings=program.out_shardings,
                         donate_argnums=program.donate_argnums)
        lowered = jitted.lower(*program.args)
        t1 = time.time()
        try:
            compiled = lowered.compile()
        except Exception as e:  # noqa: BLE001 - only the compiler's OOM verdict is a result
            compiler_message = _out_of_memory(e)
            if compiler_message is None:
                raise
            compiled = None
    t2 = time.time()

    flops = step_flops(model_config, request)
    if request.step == "train":  # what XLA's cost analysis should see: one layer-scan and microbatch body
        once = analytic_flops(model_config.replace(num_layers=1), request.batch // request.num_microbatches,
                              request.seq_len, request.max_predictions)["with_remat"]
    else:
        once = step_flops(model_config.replace(num_layers=1), request)["with_remat"]
    platform = devices[0].platform
    report: dict[str, Any] = {
        "step": request.step,
        "platform": "gpu" if platform in ("cuda", "rocm") else platform,
        "device_kind": getattr(devices[0], "device_kind", platform),
        "target": target.name if target is not None else None,
        "model": {
            "params": count_params(program.params), "hidden_size": model_config.hidden_size,
            "num_layers": model_config.num_layers, "num_heads": model_config.num_heads,
            "mlp_dim": model_config.mlp_dim, "vocab_size": model_config.vocab_size,
            "dtype": model_config.dtype, "param_dtype": model_config.param_dtype,
            "remat_policy": model_config.remat_policy, "scan_layers": model_config.scan_layers,
        },
        "mesh": dict(mesh), "num_devices": n,
        "batch": request.batch, "seq_len": request.seq_len, "num_microbatches": request.num_microbatches,
        "max_predictions": request.max_predictions,
        "flops_per_step": flops,
        "flops_per_device": flops["model"] / n,
        "analytic_flops_per_device_loop_bodies_once": once / n,
        "time_s": {"lower": t1 - t0, "compile": t2 - t1},
    }
    state_bytes = {
        "params": _per_device_bytes(program.params),
        "opt_state": _per_device_bytes(program.opt_state) if program.opt_state is not None else 0,
    }
    hbm = request.hbm_bytes or (target.hbm_bytes if target is not None else None)
    if hbm:
        report["hbm_bytes"] = hbm
    if compiled is None:
        report.update(memory_per_device=dict(state_bytes, state_arguments=state_bytes["params"] + state_bytes["opt_state"]),
                      fits=False, compiler_message=compiler_message, collectives_per_device=None,
                      xla_cost_analysis_flops_per_device=None)
        return report

    mem = compiled.memory_analysis()
    arguments, outputs = int(mem.argument_size_in_bytes), int(mem.output_size_in_bytes)
    alias, temps = int(mem.alias_size_in_bytes), int(mem.temp_size_in_bytes)
    code = int(getattr(mem, "generated_code_size_in_bytes", 0) or 0)
    total = arguments + outputs - alias + temps + code
    cost = compiled.cost_analysis()  # None on GPU
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    host_of = None
    if target is not None:
        from gatortron_jax.planning.targets import device_host

        host_of = [device_host(d, target) for d in devices[:n]]
    hlo = compiled.as_text()
    collectives = collective_bytes(hlo, n, host_of)
    if keep_hlo:
        report["hlo_text"] = hlo
    report["memory_per_device"] = {
        "arguments": arguments, "outputs": outputs, "aliased": alias, "temporaries": temps,
        "generated_code": code, "total": total,
        "state_arguments": _per_device_bytes(program.args[0]),
        **state_bytes,
    }
    report["xla_cost_analysis_flops_per_device"] = float(cost["flops"]) if cost and "flops" in cost else None
    report["collectives_per_device"] = collectives
    if hbm:
        report["fits"] = total <= hbm
    if target is not None:
        tokens = float(request.batch * request.seq_len)
        report["roofline"] = roofline.estimate(target, flops, n, collectives, tokens,
                                               roofline.DEFAULT_HFU if hfu is None else hfu)
        report["link_bandwidths"] = {"fast": target.fast_link_bytes_per_s, "slow": target.slow_link_bytes_per_s,
                                     "sources": target.sources}
    return report


# ----------------------------------------------------------------------------- CLI glue

_VALUE_FLAGS = ("mesh", "batch", "seq", "microbatches", "max_predictions", "remat", "dtype", "hbm", "json",
                "target", "num_slices", "step", "hfu", "search_batches")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gin_file", action="append", required=True, help="model (or run) gin file(s); later files win")
    p.add_argument("--mesh", default=None, help="data=D,fsdp=F,tensor=T (default: MeshConfig from gin, no -1)")
    p.add_argument("--batch", type=int, default=None, help="global batch (default: TrainConfig.batch_size)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (default: TrainConfig.seq_len)")
    p.add_argument("--microbatches", type=int, default=None, help="gradient accumulation steps (default: TrainConfig)")
    p.add_argument("--max_predictions", type=int, default=None, help="sparse MLM predictions per row (default: TrainConfig)")
    p.add_argument("--remat", default=None, help="override EncoderConfig.remat_policy")
    p.add_argument("--dtype", default=None, help="override EncoderConfig.dtype (compute); params stay param_dtype")
    p.add_argument("--hbm", default=None, help="per-device memory to check against, e.g. 80GiB (default: the target's)")
    p.add_argument("--json", default=None, help="also write the report as JSON to this path")
    p.add_argument("--target", default=None,
                   help="compile with the target's own compiler, deviceless: h100, a100-80g, a100-40g, tpu-v4-N, "
                        "tpu-v5e-N, tpu-v5p-N (needs the gpu-plan / tpu-plan extra)")
    p.add_argument("--num_slices", type=int, default=None, help="TPU slices (multislice over DCN; default 1)")
    p.add_argument("--step", default=None, choices=("train", "finetune", "predict"),
                   help="train: MLM pretraining step (default); finetune: NER tagger step; predict: tagger inference")
    p.add_argument("--hfu", type=float, default=None,
                   help="roofline: assumed fraction of bf16 peak the step sustains (default 0.5)")
    p.add_argument("--no_cpu_proxy", action="store_true", help="with --target: skip the CPU-proxy compile beside it")
    p.add_argument("--search", action="store_true",
                   help="with --target: compile candidate meshes x remat x per-device batch, rank by estimated tokens/s")
    p.add_argument("--search_batches", default=None, help="per-device batches for --search, e.g. 8,16,32")


def _argv_from_args(args: argparse.Namespace, overrides: Sequence[str]) -> list[str]:
    argv = ["plan"] + [f"--gin_file={f}" for f in args.gin_file]
    for flag in _VALUE_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            argv.append(f"--{flag}={value}")
    argv += [f"--{flag}" for flag in ("no_cpu_proxy", "search") if getattr(args, flag, False)]
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


def _resolve_mesh(args: argparse.Namespace, mesh_config: Any, target: Any) -> dict[str, int]:
    if args.mesh:
        mesh = parse_mesh(args.mesh)
    else:
        mesh = {"data": mesh_config.data, "fsdp": mesh_config.fsdp, "tensor": mesh_config.tensor}
    if -1 in mesh.values():
        known = math.prod(v for v in mesh.values() if v != -1)
        if target is None or target.num_devices is None or target.num_devices % known:
            raise ConfigError("plan needs explicit mesh sizes: pass --mesh data=D,fsdp=F,tensor=T (MeshConfig has -1)")
        mesh = {k: (target.num_devices // known if v == -1 else v) for k, v in mesh.items()}
    return mesh


def run(args: argparse.Namespace, overrides: Sequence[str], model_config: Any, train: Any, mesh_config: Any,
        optimizer_config: Any) -> int:
    """``gatortron-jax plan`` with its configs built at the gin edge: set up devices, plan, print."""
    from gatortron_jax.core import partitioning

    target = None
    if getattr(args, "target", None):
        from gatortron_jax.planning.targets import get_target

        target = get_target(args.target, args.num_slices or 1)
    elif args.num_slices or args.search:
        raise ConfigError("--num_slices and --search need --target")
    if args.remat:
        model_config = model_config.replace(remat_policy=args.remat)
    if args.dtype:
        model_config = model_config.replace(dtype=args.dtype)
    mesh = _resolve_mesh(args, mesh_config, target)
    n = mesh["data"] * mesh["fsdp"] * mesh["tensor"]
    proxy = target is None or not (args.no_cpu_proxy or args.search)
    if not _prepare_devices(n if proxy else 1):
        # JAX is already initialised (e.g. called from a test) with too few devices: fresh process.
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        cmd = [sys.executable, "-m", "gatortron_jax.cli", *_argv_from_args(args, overrides)]
        return subprocess.call(cmd, env=env)
    rules = partitioning.parse_rules_overrides(mesh_config.rules_overrides)
    seq = args.seq or train.seq_len
    max_predictions = args.max_predictions if args.max_predictions is not None else train.max_predictions
    if args.search:
        from gatortron_jax.planning import search

        batches = [int(b) for b in args.search_batches.split(",")] if args.search_batches else search.DEFAULT_BATCHES
        remats = (args.remat,) if args.remat else search.DEFAULT_REMATS
        meshes = [mesh] if args.mesh else None
        found = search.search(
            lambda cfg, req, target: plan(cfg, req, optimizer_config, rules, target=target, hfu=args.hfu),
            model_config, target, target.num_devices or n, seq, batches=batches, remats=remats, meshes=meshes,
            step=args.step or "train", max_predictions=max_predictions, log=lambda line: print(line, flush=True))
        print(search.format_search(found, target, seq), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump([dataclasses.asdict(c) for c in found], f, indent=2)
        return 0
    request = PlanRequest(
        mesh=mesh,
        batch=args.batch or train.batch_size,
        seq_len=seq,
        num_microbatches=args.microbatches or train.num_microbatches,
        max_predictions=max_predictions,
        hbm_bytes=parse_bytes(args.hbm) if args.hbm else None,
        step=args.step or "train",
    )
    report = plan(model_config, request, optimizer_config, rules, target=target, hfu=args.hfu)
    if target is not None and proxy:
        cpu = plan(model_config, request, optimizer_config, rules)
        report["cpu_proxy"] = cpu["memory_per_device"]
    print(format_report(report), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
