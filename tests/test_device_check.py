"""``benchmarks/device_check.py --dry_run``: the accelerator check runs end to end on CPU at tiny sizes.

No speed thresholds: the numbers must be consistent with each other (rates = work / time, MFU =
model FLOPs / time / peak) and bf16 must agree with fp32; RESULTS.md is not touched by a dry run.
"""

import json
import math
import os
import subprocess
import sys

import pytest


# Slow (~27 s on 2 cores): a benchmark script's smoke test, not a user command. Run it (`pytest -m slow
# tests/test_device_check.py`) before a device session; the pieces it times are the library's, each
# tested in the default run (train step, tagger fine-tune/predict, bf16 vs fp32 agreement).
@pytest.mark.slow
def test_device_check_dry_run(repo_root, tmp_path):
    results = repo_root / "benchmarks" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    out = tmp_path / "dc.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "device_check.py"), "--dry_run",
                           "--json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "| check | result |" in proc.stdout and "Machine:" in proc.stdout and "appended to" not in proc.stdout
    assert (results.read_bytes() if results.exists() else None) == before
    r = json.loads(out.read_text())
    assert r["dry_run"] is True and r["facts"]["platform"] == "cpu" and r["facts"]["devices"] >= 1
    train, tagger = r["train"], r["tagger"]
    assert r["matmul_bf16_flops_per_s"] > 0 and train["step_s"] > 0 and train["loss_finite"]
    assert math.isclose(r["mfu_vs_measured_peak"], train["flops"] / train["step_s"] / r["matmul_bf16_flops_per_s"])
    assert math.isclose(tagger["finetune_rows_per_s"] * tagger["finetune_step_s"], 4)  # batch 4 in the dry run
    assert math.isclose(r["notes_per_s"], tagger["predict_windows_per_s"] / r["windows_per_note"])
    assert r["windows_per_note"] >= 1
    agree = r["agreement"]
    assert agree["argmax_agreement"] >= 0.9 and agree["hidden_min_cosine"] > 0.99
    assert 0 < agree["hidden_max_abs_diff"] < 0.1 * agree["hidden_max_abs"]  # bf16 differs, but a little
