"""Regenerate docs/scaling.md's target-compiler grid: GatorTron base / medium / large on H100 nodes
and TPU slices, each cell one ``gatortron-jax plan --target ... --json`` command.

Why a driver: each cell is a deviceless compile of minutes (TPU up to ~12 min on a loaded 2-core
box), so the grid is run once in the background, one compile at a time, one JSON per cell
(``OUT/<id>.json``); a rerun skips cells already done, so a partial run is usable and the table
can be regenerated from the JSON without compiling (``--print_only``).

The cells are data (``CELLS``), built from one rule:

* sequence 512 with 96 sparse MLM predictions per row, as every ``gin/gpu`` / ``gin/tpu`` recipe;
* per-device batch: the size's H100 recipe (``gin/gpu/*.gin``: base 32, medium 16, large 8 rows
  of 512 per device), halved on TPU v5e (16 GiB per chip, as the ``gin/tpu/*v5e*`` recipes do);
  the global batch is that times the device count;
* remat: the platform's recipe (H100: base ``qkv_proj``, medium/large ``dots_no_batch``; TPU:
  base ``dots``, medium/large ``dots_no_batch``); compute bfloat16, fp32 master weights;
* mesh: on H100 FSDP inside a node (fsdp=8) and data parallel across nodes; on TPU FSDP over the
  whole slice (one ICI torus), as ``gin/tpu/*.gin``;
* a cell that does not fit is a result; the driver then tries one fallback, ``--remat full`` at
  the same batch, and reports both rows.

Usage (from the repository root; H100 cells first, then TPU)::

    nohup nice -n 10 python tools/plan_grid.py > /tmp/grid.log 2>&1 &   # cells missing in docs/plan_grid
    python tools/plan_grid.py --print_only                              # the markdown table + commands
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

GiB = 1024**3

# size -> (per-device batch on H100/v5p, H100 remat, TPU remat)
RECIPES: dict[str, tuple[int, str, str]] = {
    "base": (32, "qkv_proj", "dots"),
    "medium": (16, "dots_no_batch", "dots_no_batch"),
    "large": (8, "dots_no_batch", "dots_no_batch"),
}
# column -> (target name, devices, mesh (data, fsdp, tensor) as a function of devices, v5e?)
TARGETS: dict[str, tuple[str, int, tuple[int, int, int], bool]] = {
    "1x8 H100": ("h100", 8, (1, 8, 1), False),
    "4x8 H100": ("h100", 32, (4, 8, 1), False),
    "16x8 H100": ("h100", 128, (16, 8, 1), False),
    "v5p-128": ("tpu-v5p-128", 64, (1, 64, 1), False),
    "v5p-256": ("tpu-v5p-256", 128, (1, 128, 1), False),
    "v5e-256": ("tpu-v5e-256", 256, (1, 256, 1), True),
}
FALLBACK = {"remat": "full"}  # the one fallback tried for a cell that does not fit


def cell(size: str, column: str, **override: Any) -> dict[str, Any]:
    """One grid cell from the rule in the module docstring (``override`` for a fallback)."""
    per_device, gpu_remat, tpu_remat = RECIPES[size]
    target, n, mesh, v5e = TARGETS[column]
    per_device = per_device // 2 if v5e else per_device
    row = {
        "id": f"{size}_{column.replace(' ', '_').lower()}", "size": size, "column": column, "target": target,
        "mesh": mesh, "batch": per_device * n, "per_device": per_device,
        "remat": tpu_remat if target.startswith("tpu") else gpu_remat, "dtype": "bfloat16",
    }
    row.update(override)
    if override:
        row["id"] += "_" + "_".join(f"{k}-{v}" for k, v in override.items())
    return row


# H100 cells first (a compile is ~1 min), then TPU (several minutes each); the two TPU cells that
# docs/scaling.md had before the grid (large on v5p-256 and v5e-256, 6-12 min each) last.
_FIRST_RUN_ELSEWHERE = ("large_v5p-256", "large_v5e-256")
CELLS: list[dict[str, Any]] = sorted(
    (cell(size, column) for column in TARGETS for size in RECIPES),
    key=lambda c: (c["target"].startswith("tpu"), c["id"] in _FIRST_RUN_ELSEWHERE))


def plan_args(row: dict[str, Any]) -> list[str]:
    """The ``plan`` arguments of one cell (without ``--json``)."""
    d, f, t = row["mesh"]
    return ["plan", "--target", row["target"], f"--gin_file=gin/models/{row['size']}.gin",
            "--mesh", f"data={d},fsdp={f},tensor={t}", "--batch", str(row["batch"]), "--seq", "512", "--max_predictions", "96",
            "--remat", row["remat"], "--dtype", row["dtype"]]


def command(row: dict[str, Any]) -> str:
    return "gatortron-jax " + " ".join(plan_args(row))


def run_cell(row: dict[str, Any], out: str) -> dict[str, Any] | None:
    """Compile one cell unless its JSON exists; None if the command failed (its log is kept)."""
    path = os.path.join(out, row["id"] + ".json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    tmp = path + ".partial"
    print(f"[{time.strftime('%H:%M:%S')}] {command(row)}", flush=True)
    t0 = time.time()
    with open(os.path.join(out, row["id"] + ".log"), "w") as log:
        rc = subprocess.call([sys.executable, "-m", "gatortron_jax.cli", *plan_args(row), "--json", tmp],
                             stdout=log, stderr=subprocess.STDOUT)
    print(f"[{time.strftime('%H:%M:%S')}] {row['id']}: exit {rc} after {time.time() - t0:.0f} s", flush=True)
    if rc != 0 or not os.path.exists(tmp):
        return None
    with open(tmp) as f:
        report = json.load(f)
    report["wall_s"] = time.time() - t0
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    os.remove(tmp)
    return report


def rows_with_fallbacks(out: str, run: bool) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every cell with its report (None: not run yet), each not-fitting cell followed by its fallback."""
    result = []
    for row in CELLS:
        report = run_cell(row, out) if run else _load(row, out)
        result.append((row, report))
        if report is not None and report.get("fits") is False:
            fb = cell(row["size"], row["column"], **FALLBACK)
            result.append((fb, run_cell(fb, out) if run else _load(fb, out)))
    return result


def _load(row: dict[str, Any], out: str) -> dict[str, Any] | None:
    path = os.path.join(out, row["id"] + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _gib(b: float | None) -> str:
    return "—" if b is None else f"{b / GiB:.2f} GiB"


def markdown_row(row: dict[str, Any], r: dict[str, Any] | None) -> str:
    d, f, t = row["mesh"]
    head = (f"| {row['size']} | {row['column']} | {d},{f},{t} | {row['batch']} ({row['per_device']}) | "
            f"{row['remat']} | ")
    if r is None:
        return head + "not run yet | | | | |"
    mem = r["memory_per_device"]
    proxy = (r.get("cpu_proxy") or {}).get("total")
    if r.get("compiler_message"):
        verdict = "**DOES NOT FIT** (compiler: RESOURCE_EXHAUSTED)"
    else:
        verdict = "FITS" if r.get("fits") else "**DOES NOT FIT**"
    rl = r.get("roofline")
    tokens = f"{rl['tokens_per_s']:,.0f} ({rl['mfu']:.1%})" if rl and r.get("fits") else "—"
    total = f"**{_gib(mem.get('total'))}**" if "total" in mem else "**— (refused)**"
    return (head + f"{_gib(proxy)} | {total} of {r['hbm_bytes'] / GiB:.0f} | {verdict} | {tokens} | "
            f"{r['time_s']['compile']:.0f} s |")


HEADER = ("| model | target | mesh (d,f,t) | batch (per dev) | remat | CPU proxy total | **target total** (of HBM) "
          "| verdict | est. tokens/s (MFU) | compile |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/plan_grid", help="one JSON (and log) per cell; done cells are skipped")
    p.add_argument("--print_only", action="store_true", help="print the table from the JSON already there")
    p.add_argument("--only", default=None, help="comma-separated cell ids to run (default: all)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    global CELLS
    if args.only:
        CELLS = [c for c in CELLS if c["id"] in args.only.split(",")]
    rows = rows_with_fallbacks(args.out, run=not args.print_only)
    print(HEADER)
    for row, report in rows:
        print(markdown_row(row, report))
    print("\nCommands, in row order:\n\n```bash")
    for row, _ in rows:
        print(command(row))
    print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
