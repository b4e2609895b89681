"""Which JAX platform a process starts on when nobody said: CPU on a host with no accelerator.

The deviceless-compile extras (libtpu, the CUDA PJRT plugin: ``plan --target``) are often
installed on CPU hosts. There JAX would try to start both backends and print their failures
(CUDA driver not found, TPU not found) at every start. A host with no accelerator device node
therefore runs on CPU; compiling for a target still works, and an explicit ``JAX_PLATFORMS``
always wins. The CLI and the benchmark scripts call :func:`default_to_cpu_without_accelerator`
before JAX is imported (``benchmarks/device_check.py`` does not: it must see real accelerators).

No JAX import here: this has to run before JAX reads its configuration.
"""

from __future__ import annotations

import glob
import os

# NVIDIA (/dev/nvidia0...), AMD (/dev/kfd), TPU (/dev/accel*, or /dev/vfio/N on newer TPU VMs)
ACCELERATOR_DEVICE_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/accel*", "/dev/vfio/[0-9]*")


def cpu_only_host() -> bool:
    """True when this host has no accelerator device node."""
    return not any(glob.glob(p) for p in ACCELERATOR_DEVICE_NODES)


def default_to_cpu_without_accelerator() -> bool:
    """Set ``JAX_PLATFORMS=cpu`` unless it is set or the host has an accelerator; True if it set it."""
    if "JAX_PLATFORMS" in os.environ or not cpu_only_host():
        return False
    os.environ["JAX_PLATFORMS"] = "cpu"
    return True
