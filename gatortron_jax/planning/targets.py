"""Compile targets for ``plan --target``: GPUs and TPU slices as their own compilers see them.

A CPU host can compile for hardware it does not have. XLA builds *abstract* devices from a
topology description (``jax.experimental.topologies``): for TPU, ``libtpu`` describes a slice
(``v5:4x4x8`` is 128 v5p chips); for NVIDIA, the CUDA PJRT plugin compiles "deviceless" from a
``GpuTargetConfigProto`` textproto (``gpu_specs/*.txtpb``, written for the XLA of the pinned
jaxlib: newer XLA specs carry fields it rejects). Both need an optional extra; a missing one
is one :class:`ConfigError` naming its pip command.

Each :class:`Target` also carries the published per-chip numbers the roofline needs (bf16
peak, HBM, link bandwidths). They are datasheet values, stated so a reader can check them;
the *memory* verdict never relies on them alone: TPU's compiler refuses a program that does
not fit, and the GPU compiler's ``memory_analysis()`` is compared with the HBM.

Names follow the cloud products: ``h100``, ``a100-80g``, ``a100-40g`` (the GPU count comes
from the mesh; 8 per host), ``tpu-v4-N`` and ``tpu-v5p-N`` (N TensorCores = 2 x chips, as
Google counts them), ``tpu-v5e-N`` (N chips).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import math
import os
import re
from typing import Any

from gatortron_jax.core.errors import ConfigError

GPU_PLAN_INSTALL = "pip install --no-deps jax-cuda12-plugin==0.10.2 jax-cuda12-pjrt==0.10.2"
TPU_PLAN_INSTALL = "pip install 'libtpu==0.0.42.*'"


@dataclasses.dataclass(frozen=True)
class Target:
    """One accelerator kind and slice size, with the numbers the roofline uses (per chip).

    ``fast_link_bytes_per_s``: one direction, per chip, inside a host (NVLink) or a slice
    (TPU ICI). ``slow_link_bytes_per_s``: per chip between hosts (InfiniBand, one NIC per GPU)
    or between TPU slices (DCN). ``num_devices`` is None for GPUs: the mesh decides.
    """

    name: str
    platform: str  # "gpu" or "tpu"
    device_kind: str
    hbm_bytes: int
    bf16_flops_per_s: float
    hbm_bytes_per_s: float
    fast_link_bytes_per_s: float
    slow_link_bytes_per_s: float
    devices_per_host: int
    num_devices: int | None = None
    num_slices: int = 1
    topology: str = ""  # TPU topology name, e.g. "v5:4x4x8"
    gpu_spec: str = ""  # textproto under gpu_specs/
    sources: str = ""

    @property
    def install_command(self) -> str:
        return GPU_PLAN_INSTALL if self.platform == "gpu" else TPU_PLAN_INSTALL


# Datasheet numbers (dense bf16, no sparsity). GPU inter-host: one 400 Gb/s (H100) or 200 Gb/s
# (A100) InfiniBand NIC per GPU. TPU ICI: the published per-chip total halved (one direction);
# DCN: an assumed 25 GB/s per host shared by its 4 chips.
_GPUS: dict[str, dict[str, Any]] = {
    "h100": dict(device_kind="NVIDIA H100 80GB HBM3", hbm_bytes=84942979072, bf16_flops_per_s=989e12,
                 hbm_bytes_per_s=3.35e12, fast_link_bytes_per_s=450e9, slow_link_bytes_per_s=50e9,
                 gpu_spec="h100_sxm.txtpb",
                 sources="H100 SXM datasheet: 989 TFLOP/s bf16 dense, 3.35 TB/s HBM3, NVLink 900 GB/s bidirectional"),
    "a100-80g": dict(device_kind="NVIDIA A100-SXM4-80GB", hbm_bytes=85198045184, bf16_flops_per_s=312e12,
                     hbm_bytes_per_s=2.039e12, fast_link_bytes_per_s=300e9, slow_link_bytes_per_s=25e9,
                     gpu_spec="a100_sxm_80g.txtpb",
                     sources="A100 datasheet: 312 TFLOP/s bf16 dense, 2.0 TB/s, NVLink 600 GB/s bidirectional"),
    "a100-40g": dict(device_kind="NVIDIA A100-SXM4-40GB", hbm_bytes=42505273344, bf16_flops_per_s=312e12,
                     hbm_bytes_per_s=1.555e12, fast_link_bytes_per_s=300e9, slow_link_bytes_per_s=25e9,
                     gpu_spec="a100_sxm_40g.txtpb",
                     sources="A100 datasheet: 312 TFLOP/s bf16 dense, 1.6 TB/s, NVLink 600 GB/s bidirectional"),
}
_TPUS: dict[str, dict[str, Any]] = {
    "v4": dict(device_kind="TPU v4", hbm_bytes=32 * 1024**3, bf16_flops_per_s=275e12, hbm_bytes_per_s=1.2e12,
               fast_link_bytes_per_s=150e9, slow_link_bytes_per_s=25e9 / 4, devices_per_host=4,
               sources="Cloud TPU v4: 275 TFLOP/s bf16, 32 GiB HBM2 1.2 TB/s, ICI 2400 Gbps per chip"),
    "v5p": dict(device_kind="TPU v5", hbm_bytes=95 * 1024**3, bf16_flops_per_s=459e12, hbm_bytes_per_s=2.765e12,
                fast_link_bytes_per_s=300e9, slow_link_bytes_per_s=25e9 / 4, devices_per_host=4,
                sources="Cloud TPU v5p: 459 TFLOP/s bf16, 95 GiB HBM2e 2.77 TB/s, ICI 4800 Gbps per chip"),
    "v5e": dict(device_kind="TPU v5 lite", hbm_bytes=16 * 1024**3, bf16_flops_per_s=197e12,
                hbm_bytes_per_s=0.819e12, fast_link_bytes_per_s=100e9, slow_link_bytes_per_s=25e9 / 4,
                devices_per_host=4,
                sources="Cloud TPU v5e: 197 TFLOP/s bf16, 16 GiB HBM2 819 GB/s, ICI 1600 Gbps per chip"),
}
TARGET_NAMES = tuple(_GPUS) + ("tpu-v4-N", "tpu-v5e-N", "tpu-v5p-N")


def tpu_topology(generation: str, n: int) -> str:
    """Cloud product size -> libtpu topology string (``v5p``, 256 -> ``v5:4x4x8``).

    v4/v5p count TensorCores (2 per chip, one "megacore" device each) and are 3-D tori that
    grow by doubling the rightmost smallest dimension (2x2x1, 2x2x2, 2x2x4, 2x4x4, 4x4x4,
    4x4x8, ...); v5e counts chips on a 2-D grid (2x2, 2x4, 4x4, 4x8, 8x8, 8x16, 16x16).
    """
    chips = n if generation == "v5e" else n // 2
    if n < (1 if generation == "v5e" else 8) or chips & (chips - 1) or (generation != "v5e" and n % 2):
        smallest = "1, 4, 8, 16, ..., 256" if generation == "v5e" else "8, 16, 32, ..., 4096"
        raise ConfigError(f"tpu-{generation}-{n}: the size must be a power of two ({smallest})")
    if generation == "v5e":
        if chips > 256:
            raise ConfigError(f"tpu-v5e-{n}: a v5e slice has at most 256 chips (use --num_slices)")
        dims = [1, 1]
        while math.prod(dims) < chips:
            dims[dims.index(min(dims))] *= 2  # leftmost smallest: 2x1 -> 2x2 -> 4x2 ...
        dims.sort()
        return "v5e:" + "x".join(map(str, dims))
    dims = [2, 2, 1]
    while math.prod(dims) < chips:
        smallest = min(dims)
        dims[max(i for i, d in enumerate(dims) if d == smallest)] *= 2
    return ("v4:" if generation == "v4" else "v5:") + "x".join(map(str, dims))


def get_target(name: str, num_slices: int = 1) -> Target:
    """``h100`` / ``a100-80g`` / ``a100-40g`` / ``tpu-v5p-256`` ... -> :class:`Target`."""
    key = name.strip().lower()
    if key in _GPUS:
        if num_slices != 1:
            raise ConfigError(f"--num_slices is for TPU targets; {name} takes its GPU count from the mesh")
        return Target(name=key, platform="gpu", devices_per_host=8, **_GPUS[key])
    m = re.fullmatch(r"tpu-(v4|v5e|v5p)-(\d+)", key)
    if not m:
        raise ConfigError(f"--target {name!r}: expected one of {', '.join(TARGET_NAMES)} (e.g. tpu-v5p-256)")
    if num_slices < 1:
        raise ConfigError(f"--num_slices {num_slices}: must be >= 1")
    gen, n = m.group(1), int(m.group(2))
    topology = tpu_topology(gen, n)
    chips = math.prod(int(d) for d in topology.split(":")[1].split("x"))
    return Target(name=key, platform="tpu", num_devices=chips * num_slices, num_slices=num_slices,
                  topology=topology, **_TPUS[gen])


def gpu_target_config(target: Target) -> str:
    """The shipped GpuTargetConfigProto textproto of a GPU target."""
    return importlib.resources.files("gatortron_jax.planning").joinpath("gpu_specs", target.gpu_spec).read_text()


def _require(module: str, target: Target) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"--target {target.name} needs the {target.platform.upper()} compiler: "
                          f"{target.install_command}")


def target_devices(target: Target, num_devices: int | None = None) -> list[Any]:
    """Abstract (compile-only) devices of ``target``: ``num_devices`` GPUs, or the TPU slice(s).

    GPUs are laid out 8 per host (``1 x hosts x 8``), so a mesh's fastest axis (tensor) stays
    inside a host's NVLink domain, as on a real cluster.
    """
    from jax.experimental import topologies

    if target.platform == "gpu":
        _require("jax_plugins.xla_cuda12", target)
        _require("jax_cuda12_plugin", target)
        n = num_devices or target.devices_per_host
        per_host = min(n, target.devices_per_host)
        if n % per_host:
            raise ConfigError(f"--target {target.name}: {n} GPUs do not fill hosts of {per_host}")
        topo = topologies.get_topology_desc(platform="cuda", topology_name=target.name,
                                            target_config=gpu_target_config(target),
                                            topology=f"1x{n // per_host}x{per_host}")
        return list(topo.devices)
    _require("libtpu", target)
    # Compile-only use never opens a chip; without this, two processes planning at once fail on
    # libtpu's single-process lockfile (/tmp/libtpu_lockfile).
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    chip_config = "default" if target.topology.startswith("v5e") else "megacore"
    dims = [int(d) for d in target.topology.split(":")[1].split("x")]
    per_host = (min(2, dims[0]), min(2, dims[1]), 1)  # 4-chip hosts; a smaller slice is one host
    topo = topologies.get_topology_desc(platform="tpu", topology_name=target.topology, chip_config_name=chip_config,
                                        chips_per_host_bounds=per_host, num_slices=target.num_slices)
    devices = list(topo.devices)
    if num_devices is not None and num_devices != len(devices):
        raise ConfigError(f"--target {target.name} (x{target.num_slices} slices) has {len(devices)} chips; "
                          f"the mesh has {num_devices}: make data x fsdp x tensor = {len(devices)}")
    return devices


def device_host(device: Any, target: Target) -> int:
    """Which slow-link domain a device sits in: its host for GPUs, its slice for TPUs."""
    if target.platform == "tpu":
        return int(getattr(device, "slice_index", 0) or 0)
    return int(getattr(device, "process_index", 0) or 0)
