"""Helpers shared by the benchmark scripts (``bench_data.py``, ``bench_predict.py``).

Imported as ``import common`` from a script in this directory (Python puts the script's own
directory first on ``sys.path``). Nothing here imports JAX or TensorFlow at module level, so
the scripts can set environment variables before those start.

* :func:`machine_line` — one line naming the machine, Python, library versions and the date (UTC).
* :func:`rss_mb` / :func:`peak_rss_mb` — current and peak resident memory of this process.
* :func:`markdown_table` — rows of cells → a GitHub markdown table.
* :func:`section` / :func:`append_results` — the markdown section a run prints, and appending it
  to ``benchmarks/RESULTS.md`` (only when the caller passes ``--results``).
* :func:`write_json` — the machine-readable result a smoke test reads back.
* :func:`publish` — the end of every script: print the section, write ``--json``, append ``--results``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Iterable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
RESULTS_MD = os.path.join(HERE, "RESULTS.md")


def quiet_tensorflow() -> None:
    """Before TensorFlow is imported: no INFO/WARNING chatter from its C++ runtime."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def versions(*names: str) -> str:
    """``"jax 0.4.30, tensorflow 2.16.1"`` for the named, already importable modules."""
    parts = []
    for name in names:
        try:
            module = __import__(name)
        except ImportError:
            continue
        version = getattr(module, "__version__", None)
        if version is None:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(name)
            except Exception:  # noqa: BLE001 - best effort, for the report line only
                version = "?"
        parts.append(f"{name} {version}")
    return ", ".join(parts)


def utc_stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine_line(*modules: str) -> str:
    """Machine, CPUs, Python, versions of ``modules`` (jax first, with its backend) and date."""
    parts = [f"{platform.machine()} {cpu_count()} CPUs (os.cpu_count {os.cpu_count()})",
             f"Python {platform.python_version()}"]
    if "jax" in sys.modules or "jax" in modules:
        import jax

        devices = jax.devices()
        parts.append(f"jax {jax.__version__} ({devices[0].platform}, {len(devices)} device(s))")
    rest = versions(*(m for m in modules if m != "jax"))
    if rest:
        parts.append(rest)
    parts.append(utc_stamp())
    return "Machine: " + "; ".join(parts)


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def round_robin(calls: "dict[str, Any]", runs: int) -> "tuple[dict[str, list[float]], dict[str, list[float]]]":
    """Time each zero-argument call ``runs`` times, all calls in turn (the order reversed every
    other round, so drift on a shared machine hits each alike): (wall seconds, CPU seconds of this
    process) per call name. The calls must block until their work is done."""
    wall: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(runs):
        for k in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t, c = time.perf_counter(), cpu_seconds()
            calls[k]()
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(cpu_seconds() - c)
    return wall, cpu


def jnp_matmul_flops(n: int = 2048, dtype: str = "float32", reps: int = 10) -> float:
    """FLOP/s of a jitted ``n x n`` ``jnp.dot`` in ``dtype`` (fp32 accumulation), ``reps`` calls
    back to back after one untimed call: the peak that MFU figures divide by, measured in the
    same process as the step (bench_train on CPU, device_check's bf16 on a GPU)."""
    import jax
    import jax.numpy as jnp

    dt = getattr(jnp, dtype)
    a = jax.random.normal(jax.random.key(0), (n, n), dt)
    b = jax.random.normal(jax.random.key(1), (n, n), dt)
    f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32).astype(dt))
    f(a, b).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        r = f(a, b)
    r.block_until_ready()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def fmt_num(x: float, digits: int = 0) -> str:
    """``12,345`` / ``1.23``; ``n/a`` for None or non-finite."""
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return "n/a"
    return f"{x:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command as a user would type it, for the section heading."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--json", "--results"):
            skip = a == "--json"  # --results takes an optional path; a following flag is not it
        elif not a.startswith(("--json=", "--results=")):
            shown.append(a)
    return " ".join([f"python benchmarks/{os.path.basename(script)}", *shown])


def section(title_command: str, machine: str, body: str) -> str:
    """The markdown section a run prints (and appends to RESULTS.md with ``--results``)."""
    return f"## {utc_stamp()} — `{title_command}`\n\n{machine}\n\n{body.rstrip()}\n"


def append_results(text: str, path: str = RESULTS_MD) -> str:
    """Append ``text`` (a section) to ``path`` after a blank line; returns the path."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + text)
    return path


def write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, default=float)


def publish(text: str, res: dict, args, total_s: float | None = None) -> dict:
    """Print a run's section, then write ``--json`` and append ``--results`` as asked."""
    print(text)
    if total_s is not None:
        print(f"(total {total_s:.0f} s)")
    if args.json:
        write_json(args.json, res)
    if args.results:
        print(f"appended to {append_results(text, args.results)}")
    return res


def add_common_flags(parser) -> None:
    """``--quick``, ``--json PATH`` and ``--results [PATH]`` (append the section; off by default)."""
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test (< 30 s)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the raw numbers as JSON")
    parser.add_argument("--results", nargs="?", const=RESULTS_MD, default=None, metavar="PATH",
                        help=f"append the markdown section to PATH (default {os.path.relpath(RESULTS_MD, REPO_ROOT)})")
