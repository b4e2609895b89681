"""Smoke test for ``benchmarks/bench_forward.py`` (encoder forward, ours vs HF) and a check of the
FLOP count it divides by.

The script runs once with ``--quick`` as a user would (a subprocess, one CPU device); the test
checks what must hold on any machine: both stacks computed the same hidden states (same
weights), rates are counted work over measured time, ratios are finite, the attention
ablation ran every variant to the same numbers. No speed thresholds.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


def _load_bench(repo_root):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_forward", repo_root / "benchmarks" / "bench_forward.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def test_forward_flops_match_a_count_by_hand(repo_root):
    bench = _load_bench(repo_root)
    # 1 layer, H=4, FFN=8, batch 1 x 2: q,k,v,out 4 x (2*4*4) + FFN 2 x (2*4*8) per token = 256;
    # scores and probs @ v: 2 x (2 * 2 positions * 4) per token = 32; 2 tokens.
    assert bench.forward_flops(1, 4, 8, 1, 2) == 2 * (256 + 32)


def test_bench_forward_quick(repo_root, tmp_path):
    out = tmp_path / "forward.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "bench_forward.py"), "--quick", "--ablation", "minilm",
         "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "appended to" not in proc.stdout and "Machine:" in proc.stdout and "UTC" in proc.stdout
    assert "| shape | stack | min ms |" in proc.stdout
    res = json.loads(out.read_text())
    assert res["peak"]["jax_gflops"] > 0 and res["peak"]["torch_gflops"] > 0
    assert set(res["shapes"]) == {"minilm", "base"}
    for r in res["shapes"].values():
        assert r["max_abs_diff"] < 1e-4  # same weights, same numbers
        for side in ("ours", "hf"):
            z = r[side]
            assert len(z["runs_s"]) == res["config"]["runs"] and z["min_s"] == min(z["runs_s"])
            assert math.isclose(z["tokens_per_s"], r["tokens"] / z["min_s"], rel_tol=1e-9)
            assert math.isclose(z["gflops"], r["flops"] / z["min_s"] / 1e9, rel_tol=1e-9)
        assert math.isclose(r["speedup_min"], r["hf"]["min_s"] / r["ours"]["min_s"], rel_tol=1e-9)
        assert f"{r['speedup_min']:.2f}x (min)" in proc.stdout
    variants = res["ablation"]["minilm"]
    assert len(variants) == 10 and all(v["max_abs_diff"] < 1e-5 for v in variants.values())


@pytest.mark.slow  # the int8 path's correctness is tests/test_quantization.py's (default run); this is the bench flag
def test_bench_forward_quantize_times_int8_beside_fp32(repo_root):
    bench = _load_bench(repo_root)
    r = bench.run_shape("minilm", bench.QUICK_SHAPES["minilm"], 1, 0, "dynamic_int8")
    assert r["quantize"] == "dynamic_int8" and len(r["ours_fp32"]["runs_s"]) == 1
    assert 1e-5 < r["max_abs_diff"] < 0.2  # int8 against HF's fp32: close, but not fp32-exact
    assert math.isclose(r["quantized_speedup_min"], r["ours_fp32"]["min_s"] / r["ours"]["min_s"], rel_tol=1e-9)
