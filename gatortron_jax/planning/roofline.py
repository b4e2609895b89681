"""Roofline estimate of a step on a target: compute at an assumed fraction of bf16 peak, collectives
over the target's stated link bandwidths, overlapped.

It is an estimate with its assumptions in the open, not a measurement:

* compute time = hardware FLOPs per device (with remat recomputation) / (bf16 peak x ``hfu``),
  where ``hfu`` (default 0.5) is the assumed fraction of peak the step's matmuls sustain.
  Dense BERT-class training reaches 0.4-0.55 of peak on A100/H100 and TPU v4/v5 in
  published runs (MosaicML 50.6% MFU on 8x A100 at seq 512). A float32-compute model is
  priced at the bf16 peak too (an upper bound: TF32/fp32 matmuls are slower);
* communication time = wire bytes inside a host or slice / the fast link + wire bytes of
  collectives spanning hosts or slices / the slow link (all of such a collective's bytes are
  charged to the slow link: pessimistic for hierarchical all-reduce);
* step time = max(compute, communication): XLA overlaps the async collectives (GPU) and the
  scan's weight prefetch with compute; the serial sum is reported as the pessimistic bound.
"""

from __future__ import annotations

from typing import Any

DEFAULT_HFU = 0.5


def estimate(target: Any, flops: dict[str, float], num_devices: int, collectives: dict[str, dict[str, float]],
             tokens_per_step: float, hfu: float = DEFAULT_HFU) -> dict[str, float]:
    """Step time, tokens/s and the implied MFU of one step on ``target``."""
    peak = target.bf16_flops_per_s
    compute_s = flops["with_remat"] / num_devices / (peak * hfu)
    wire = sum(c["wire_bytes"] for c in collectives.values())
    slow = sum(c.get("slow_wire_bytes", 0.0) for c in collectives.values())
    comm_s = (wire - slow) / target.fast_link_bytes_per_s + slow / target.slow_link_bytes_per_s
    step_s = max(compute_s, comm_s, 1e-12)
    return {
        "hfu_assumed": hfu,
        "peak_flops_per_s": peak,
        "compute_s": compute_s,
        "communication_s": comm_s,
        "fast_link_bytes": wire - slow,
        "slow_link_bytes": slow,
        "step_s": step_s,
        "step_s_serial": compute_s + comm_s,
        "tokens_per_s": tokens_per_step / step_s,
        "mfu": flops["model"] / num_devices / (step_s * peak),
        "bound": "compute" if compute_s >= comm_s else "communication",
    }
