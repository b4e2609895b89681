"""Human-readable ``plan`` report: memory, FLOPs, collectives, and for a target its verdict and roofline."""

from __future__ import annotations

from typing import Any

GiB = 1024**3


def fmt_bytes(b: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(b) >= size:
            return f"{b / size:,.2f} {unit}"
    return f"{b:,.0f} B"


def fmt_flops(f: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if f >= size:
            return f"{f / size:,.2f} {unit}"
    return f"{f:,.0f} FLOP"


def _memory_lines(r: dict[str, Any]) -> list[str]:
    mem = r["memory_per_device"]
    if r.get("target"):
        head = f"memory per device ({r['device_kind']} compiler's buffer assignment)"
    else:
        head = "memory per device (XLA buffer assignment on CPU: an estimate of GPU memory)"
    if "total" not in mem:
        return [head, f"  params {fmt_bytes(mem['params'])}, optimizer {fmt_bytes(mem['opt_state'])} per device",
                "  (no buffer assignment: the compiler refused the program)"]
    proxy = r.get("cpu_proxy")
    col = "" if not proxy else f"{'CPU proxy':>16}"
    lines = [head, f"  {'':<14}{'this target':>14}{col}"]

    def row(name: str, key: str, note: str) -> str:
        extra = f"{fmt_bytes(proxy[key]):>16}" if proxy and key in proxy else ""
        return f"  {name:<14}{fmt_bytes(mem[key]):>14}{extra}   {note}"

    lines += [
        row("arguments", "arguments", f"(params {fmt_bytes(mem['params'])}, optimizer {fmt_bytes(mem['opt_state'])}, "
                                      "batch + rng the rest)"),
        row("outputs", "outputs", ""),
        row("aliased", "aliased", "(donated state reused for the new state)"),
        row("temporaries", "temporaries", "(activations, gathered weights, gradients)"),
        row("total", "total", "= arguments + outputs - aliased + temporaries + code"),
    ]
    return lines


def format_report(r: dict[str, Any]) -> str:
    m, fl = r["model"], r["flops_per_step"]
    mesh = ",".join(f"{k}={v}" for k, v in r["mesh"].items())
    where = f"{r['device_kind']} x {r['num_devices']} (target {r['target']}, deviceless)" if r.get("target") \
        else "simulated CPU devices"
    lines = [
        f"step      {r.get('step', 'train')}",
        f"model     {m['params'] / 1e6:,.1f}M params  L{m['num_layers']} H{m['hidden_size']} A{m['num_heads']} "
        f"F{m['mlp_dim']} V{m['vocab_size']}  compute {m['dtype']} / params {m['param_dtype']}  remat {m['remat_policy']}",
        f"mesh      {mesh} ({r['num_devices']} devices)  batch {r['batch']} x seq {r['seq_len']}  "
        f"microbatches {r['num_microbatches']}  max_predictions {r['max_predictions']}",
        f"compile   lower {r['time_s']['lower']:.1f}s, compile {r['time_s']['compile']:.1f}s ({where})",
        "",
        *_memory_lines(r),
        "",
        f"FLOPs per step (analytic)   {fmt_flops(fl['model'])} model = 6 x {fl['encoder_matmul_params'] / 1e6:,.1f}M "
        f"encoder matmul params x {fl['tokens']:,.0f} tokens + attention {fmt_flops(fl['attention'])} + "
        + (f"MLM head 6 x {fl['head_matmul_params'] / 1e6:,.1f}M x {fl['predicted_tokens']:,.0f} predicted tokens"
           if r.get("step", "train") == "train" else "tagger head" + (" (forward only: x 2, not 6)"
                                                                      if r["step"] == "predict" else "")),
        f"  with remat recompute      {fmt_flops(fl['with_remat'])} (hardware FLOPs; MFU uses the model number)",
        f"  per device                {fmt_flops(r['flops_per_device'])}",
    ]
    if r.get("xla_cost_analysis_flops_per_device") is not None:
        lines += [
            f"  XLA cost_analysis         {fmt_flops(r['xla_cost_analysis_flops_per_device'])} per device "
            "(cross-check only: counts each scanned while-loop body once;",
            f"                            the analytic count with each loop body once is "
            f"{fmt_flops(r['analytic_flops_per_device_loop_bodies_once'])})",
        ]
    if r.get("collectives_per_device"):
        lines += ["", "collectives per device per step (while-loop bodies x trip count; async pairs once)",
                  f"  {'type':<20}{'ops':>7}{'tensors':>9}{'result bytes':>15}{'wire bytes':>14}{'across hosts':>14}"]
        for name, c in r["collectives_per_device"].items():
            lines.append(f"  {name:<20}{c['count']:>7,.0f}{c.get('tensors', 0):>9,.0f}{fmt_bytes(c['result_bytes']):>15}"
                         f"{fmt_bytes(c['wire_bytes']):>14}{fmt_bytes(c.get('slow_wire_bytes', 0.0)):>14}")
    rl = r.get("roofline")
    if rl:
        bw = r["link_bandwidths"]
        lines += [
            "", f"roofline estimate (assumes {rl['hfu_assumed']:.0%} of the {rl['peak_flops_per_s'] / 1e12:,.0f} "
            f"TFLOP/s bf16 peak; links {bw['fast'] / 1e9:,.0f} GB/s in-host/slice, {bw['slow'] / 1e9:,.1f} GB/s across)",
            f"  compute {rl['compute_s'] * 1e3:,.1f} ms, communication {rl['communication_s'] * 1e3:,.1f} ms "
            f"({fmt_bytes(rl['fast_link_bytes'])} fast + {fmt_bytes(rl['slow_link_bytes'])} slow) -> "
            f"step {rl['step_s'] * 1e3:,.1f} ms overlapped ({rl['bound']}-bound; serial {rl['step_s_serial'] * 1e3:,.1f} ms)",
            f"  {rl['tokens_per_s']:,.0f} tokens/s, MFU {rl['mfu']:.1%}   [{bw['sources']}]",
        ]
        if m["dtype"] != "bfloat16":
            lines.append(f"  (compute {m['dtype']}: priced at the bf16 peak, so the estimate is optimistic)")
    if "fits" in r:
        mem = r["memory_per_device"]
        verdict = "FITS" if r["fits"] else "DOES NOT FIT"
        if r.get("compiler_message"):
            lines += ["", f"{verdict}: the {r['device_kind']} compiler refused the program:",
                      *("  " + ln for ln in r["compiler_message"].splitlines())]
        else:
            what = f"{r['device_kind']} HBM" if r.get("target") else "--hbm"
            lines += ["", f"{verdict}: {fmt_bytes(mem['total'])} per device vs {what} {fmt_bytes(r['hbm_bytes'])}"]
    return "\n".join(lines)
