"""``plan --search``: the mesh, remat policy and per-device batch that fit a target with the highest
estimated tokens/s, found by compiling candidates with the target's own compiler.

Each candidate is one compile (seconds for a GPU, up to minutes for a large TPU slice), so the
space is small and pruned with one monotone fact: memory grows with the batch, so for each
(mesh, remat) the per-device batches are tried in increasing order and the first that does
not fit ends that row. The ranking uses ``roofline.estimate`` (its stated assumptions); a GPU
candidate must leave ``headroom`` of HBM free (cuDNN/NCCL workspaces and the allocator are
not in XLA's buffer assignment), a TPU candidate must compile.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from gatortron_jax.core.errors import ConfigError

DEFAULT_BATCHES = (4, 8, 16, 32, 64)
DEFAULT_REMATS = ("dots", "full")
GPU_HEADROOM = 0.10


def candidate_meshes(num_devices: int, devices_per_host: int) -> list[dict[str, int]]:
    """FSDP over everything; FSDP inside a host x data across hosts; and 2-way tensor inside a host."""
    meshes = [{"data": 1, "fsdp": num_devices, "tensor": 1}]
    per_host = min(devices_per_host, num_devices)
    if num_devices > per_host:
        meshes.append({"data": num_devices // per_host, "fsdp": per_host, "tensor": 1})
    if num_devices >= 2 and num_devices % 2 == 0:
        meshes.append({"data": 1, "fsdp": num_devices // 2, "tensor": 2})
    return meshes


@dataclasses.dataclass
class Candidate:
    mesh: dict[str, int]
    remat: str
    per_device_batch: int
    fits: bool
    total_bytes: int | None
    tokens_per_s: float | None
    mfu: float | None
    note: str = ""

    def row(self) -> str:
        mesh = ",".join(f"{k}={v}" for k, v in self.mesh.items())
        mem = f"{self.total_bytes / 1024**3:,.2f} GiB" if self.total_bytes is not None else "-"
        tps = f"{self.tokens_per_s:,.0f}" if self.tokens_per_s else "-"
        mfu = f"{self.mfu:.1%}" if self.mfu is not None else "-"
        return (f"  {mesh:<26}{self.remat:<8}{self.per_device_batch:>6}{mem:>13}{'yes' if self.fits else 'NO':>6}"
                f"{tps:>14}{mfu:>8}  {self.note}")


def search(plan_fn: Callable[..., dict[str, Any]], model_config: Any, target: Any, num_devices: int, seq_len: int,
           *, batches: Sequence[int] = DEFAULT_BATCHES, remats: Sequence[str] = DEFAULT_REMATS,
           meshes: Sequence[dict[str, int]] | None = None, step: str = "train",
           max_predictions: int | None = None, log: Callable[[str], None] | None = None) -> list[Candidate]:
    """Compile the candidates with ``plan_fn(model_config, request, target=...)``; best first."""
    from gatortron_jax.planning.planner import PlanRequest

    out: list[Candidate] = []
    for mesh in meshes or candidate_meshes(num_devices, target.devices_per_host):
        dp = mesh["data"] * mesh["fsdp"]
        for remat in remats:
            cfg = model_config.replace(remat_policy=remat)
            for b in sorted(batches):
                request = PlanRequest(mesh=mesh, batch=b * dp, seq_len=seq_len, max_predictions=max_predictions,
                                      step=step)
                try:
                    r = plan_fn(cfg, request, target=target)
                except ConfigError as e:  # e.g. heads not divisible by the tensor size
                    out.append(Candidate(mesh, remat, b, False, None, None, None, f"skipped: {e}"))
                    break
                total = r["memory_per_device"].get("total")
                limit = r["hbm_bytes"] * (1 - GPU_HEADROOM) if target.platform == "gpu" else r["hbm_bytes"]
                fits = bool(r["fits"]) and total is not None and total <= limit
                rl = r.get("roofline") or {}
                note = "compiler: out of memory" if r.get("compiler_message") else (
                    "" if fits else f"over {1 - GPU_HEADROOM:.0%} of HBM" if target.platform == "gpu" else "")
                cand = Candidate(mesh, remat, b, fits, total, rl.get("tokens_per_s"), rl.get("mfu"), note)
                out.append(cand)
                if log:
                    log(cand.row())
                if not fits:
                    break  # larger batches need more memory
    # Ties go to the larger per-device batch: the roofline is flat in the batch once a step is
    # compute-bound, but real matmuls run closer to peak on larger tiles, and fewer, larger steps
    # pay less fixed per-step cost (launches, the optimizer update, collectives' latency).
    return sorted(out, key=lambda c: (not c.fits, -(c.tokens_per_s or 0.0), -c.per_device_batch))


def format_search(cands: Sequence[Candidate], target: Any, seq_len: int) -> str:
    header = (f"  {'mesh':<26}{'remat':<8}{'b/dev':>6}{'memory':>13}{'fits':>6}{'tokens/s':>14}{'MFU':>8}")
    lines = [f"search on {target.name} ({target.device_kind}), seq {seq_len}: candidates, best first", header]
    lines += [c.row() for c in cands]
    best = next((c for c in cands if c.fits), None)
    if best is None:
        lines.append("no candidate fits")
    else:
        mesh = ",".join(f"{k}={v}" for k, v in best.mesh.items())
        dp = best.mesh["data"] * best.mesh["fsdp"]
        lines.append(f"best: --mesh {mesh} --remat {best.remat} --batch {best.per_device_batch * dp} "
                     f"(per device {best.per_device_batch}): {best.tokens_per_s:,.0f} tokens/s estimated")
    return "\n".join(lines)
