"""Smoke tests for the ``benchmarks/`` scripts: bench_data, bench_predict, bench_train, profile_step.

Each script runs once with ``--quick`` as a user would run it (a subprocess, one CPU device),
writes its raw numbers with ``--json``, and the test checks properties that must hold on any
machine: every note comes back, rates equal counted work over measured time, ratios are finite,
the markdown table and machine line are printed, nothing is appended to RESULTS.md. No speed thresholds.

The default suite runs bench_train and profile_step; bench_data and bench_predict (minutes
each) are ``slow``. Every script's imports of the library are checked in the default suite
(names that a module split renamed would break the scripts first).
"""

import ast
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest


# A deadline for a hung script, not a speed bound: --quick runs take a minute or two on an idle
# 2-core machine and several times that beside other work.
TIMEOUT_S = 1800


def _run(repo_root, tmp_path, script: str, *extra: str):
    out = tmp_path / f"{script}.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")  # one CPU device, as a user runs it
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / script), "--quick", "--json", str(out), *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "appended to" not in proc.stdout, "a run without --results must not write benchmarks/RESULTS.md"
    assert "Machine:" in proc.stdout and "jax " in proc.stdout and "UTC" in proc.stdout
    return json.loads(out.read_text()), proc.stdout


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


@pytest.mark.slow  # minutes: the pipeline at several worker counts and two resume positions
def test_bench_data_quick(repo_root, tmp_path):
    res, stdout = _run(repo_root, tmp_path, "bench_data.py")
    assert "| measurement | batches/s |" in stdout and "pipeline / trainer" in stdout
    c = res["config"]
    assert c["gin"] == ["gin/pretrain/sample_tiny.gin"] and c["devices"] == 1
    per_batch = c["batch_size"] * c["seq_len"]
    for kind in ("pipeline", "tfdata", "trainer_memory", "trainer_pipeline"):
        assert res["runs"][kind], kind
        for r in res["runs"][kind]:
            assert r["wall_s"] > 0 and r["batches"] >= 1
            assert r["tokens"] == r["batches"] * per_batch  # every batch is full: B x L
            assert 0 < r["nonpad_tokens"] <= r["tokens"]
            assert _close(r["tok_per_s"], r["tokens"] / r["wall_s"])
            assert _close(r["batches_per_s"], r["batches"] / r["wall_s"])
            assert _close(r["nonpad_tok_per_s"], r["nonpad_tokens"] / r["wall_s"])
    for kind in ("pipeline", "tfdata"):  # ~15% of the non-special tokens are masked
        for r in res["runs"][kind]:
            assert 0.05 < r["masked"] / r["nonpad_tokens"] < 0.3
            assert r["first_batch_s"] > 0
    s = res["summary"]
    ratio, fed = res["pipeline_over_trainer"], res["fed_over_memory"]
    assert math.isfinite(ratio) and ratio > 0 and math.isfinite(fed) and fed > 0
    assert _close(ratio, s["pipeline"]["tok_per_s"] / s["trainer_memory"]["tok_per_s"])
    assert _close(fed, s["trainer_pipeline"]["tok_per_s"] / s["trainer_memory"]["tok_per_s"])
    assert f"pipeline / trainer = {ratio:.2f}" in stdout
    # The cache pipeline against the raw-text one, and the resume cost at two data positions.
    for kind in ("cache_host", "cache_workers", "rawtext_device"):
        for r in res["runs"][kind]:
            assert r["tokens"] == r["batches"] * per_batch and 0.05 < r["masked"] / r["nonpad_tokens"] < 0.3
    best = max(s["cache_host"]["tok_per_s"], s["cache_workers"]["tok_per_s"])
    assert _close(res["cache_over_raw"], best / s["tfdata"]["tok_per_s"])
    assert f"cache / raw-text = {res['cache_over_raw']:.2f}x" in stdout
    rz = res["resume"]
    assert rz["step0"] > 0 and rz["step100k"] > 0 and rz["position"][0] > 0 and "resume cost" in stdout


@pytest.mark.slow  # minutes: HF pipeline and ours on two scenarios, then peak RSS at 1x and 10x
def test_bench_predict_quick(repo_root, tmp_path):
    res, stdout = _run(repo_root, tmp_path, "bench_predict.py", "--int8")
    assert "| notes | run | seconds | notes/s | tokens/s |" in stdout and "HF pipeline" in stdout
    assert set(res["scenarios"]) == {"long", "mixed"}
    for name, z in res["scenarios"].items():
        hf = z["hf"]
        assert hf["seconds"] > 0 and _close(hf["notes_per_s"], z["notes"] / hf["seconds"])
        assert _close(hf["tokens_per_s"], z["tokens"] / hf["seconds"])
        for o in z["ours"].values():  # rates are counted work over measured time
            assert o["seconds"] > 0 and _close(o["notes_per_s"], z["notes"] / o["seconds"])
            assert _close(o["tokens_per_s"], z["tokens"] / o["seconds"])
            assert o["windows"] >= 1 and o["our_tokens"] > 0
            # same weights in both stacks: most entities agree exactly (windows differ at cuts)
            assert 0.5 < o["agreement"]["f1"] <= 1.0, (name, o["agreement"])
        assert math.isfinite(z["ratio"]) and z["ratio"] > 0
        assert _close(z["ratio"], hf["seconds"] / z["ours"]["tokenize " + z["best_tokenize"]]["seconds"])
        assert _close(z["ratio_int8"], hf["seconds"] / z["ours"]["int8, tokenize inline"]["seconds"])
        assert set(z["first_pass_s"]) == {"fp32", "dynamic_int8"}
        assert f"ours / HF = {z['ratio']:.2f}x" in stdout
    r = res["rss"]
    assert len(r) == 2 and all(v["peak_rss_mb"] > 0 for v in r.values())
    assert math.isfinite(res["rss_ratio"]) and "peak RSS at 10x" in stdout


def test_benchmark_scripts_import_what_exists(repo_root):
    """Every ``gatortron_jax`` import in every benchmark script (top level and inside functions)
    names a module that imports and an attribute it has."""
    scripts = sorted((repo_root / "benchmarks").glob("*.py"))
    assert {p.name for p in scripts} >= {"bench_data.py", "bench_predict.py", "bench_train.py", "profile_step.py"}
    checked = 0
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gatortron_jax"):
                wanted = [(node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                wanted = [(a.name, None) for a in node.names if a.name.startswith("gatortron_jax")]
            else:
                continue
            for module_name, attr in wanted:
                try:
                    module = importlib.import_module(module_name)
                    if attr is not None and not hasattr(module, attr):  # a submodule its package does not import
                        importlib.import_module(f"{module_name}.{attr}")
                except ImportError as e:
                    raise AssertionError(f"benchmarks/{path.name}:{node.lineno}: {e}") from e
                checked += 1
    assert checked > 10


def test_common_helpers(repo_root, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_common", repo_root / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert common.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert common.command_line("/x/bench_data.py", ["--quick", "--json", "o.json", "--results", "--steps=3"]) == \
        "python benchmarks/bench_data.py --quick --steps=3"
    target = tmp_path / "R.md"
    target.write_text("# head\n")
    text = common.section("python benchmarks/bench_data.py", common.machine_line(), "| a |\n|---|\n")
    common.append_results(text, str(target))
    written = target.read_text()
    assert written.startswith("# head\n\n## ") and "`python benchmarks/bench_data.py`" in written
    assert common.fmt_num(float("nan")) == "n/a" and common.fmt_num(12345.6) == "12,346"
    assert common.rss_mb() > 0 and common.peak_rss_mb() > 0 and common.cpu_count() >= 1


# Slow: four child processes (peak, HF, ours dense and sparse), ~25 s. The default run keeps the
# same kind of check on bench_forward (test_bench_forward.py), profile_step and device_check's dry
# run, and test_planning checks the FLOPs formula MFU divides by, by hand.
@pytest.mark.slow
def test_bench_train_quick(repo_root, tmp_path):
    """HF vs ours on the tiny shape: ratios are HF time / our time, MFU is FLOPs / time / peak.

    Each figure is checked against the figures it came from (and the step FLOPs against the
    planner's formula computed here), never against a bound: a peak measured while other work
    runs can make MFU exceed 1, which says nothing about the code."""
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.planning.flops import analytic_flops

    res, stdout = _run(repo_root, tmp_path, "bench_train.py")
    assert "| shape | seq | batch | impl | train tok/s | train vs HF |" in stdout and "torch " in stdout
    rows = {r["impl"]: r for r in res["rows"]}
    assert set(rows) == {"hf", "ours-dense", "ours-sparse"}
    peak = res["peak_gflops"]
    assert math.isfinite(peak) and peak > 0 and f"{peak:.1f} GFLOP/s" in stdout
    # bench_train's "tiny" shape (H256 L4, vocab 8192), written out here as the reference
    cfg = EncoderConfig(vocab_size=8192, hidden_size=256, num_layers=4, num_heads=4, mlp_dim=1024,
                        max_position_embeddings=512)
    hf = rows["hf"]
    for r in rows.values():
        tokens = r["batch"] * r["seq"]
        assert r["shape"] == "tiny" and r["seq"] == 128 and r["batch"] == 8
        for key in ("train_tok_s", "fwd_tok_s", "enc_tok_s", "rss_mb", "mfu"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["impl"], key)
        assert _close(r["ratio_train"], r["train_tok_s"] / hf["train_tok_s"])
        assert _close(r["ratio_fwd"], r["fwd_tok_s"] / hf["fwd_tok_s"])
        assert _close(r["ratio_enc"], r["enc_tok_s"] / hf["enc_tok_s"])
        # MFU is the step's model FLOPs over its measured time over the measured peak
        flops = analytic_flops(cfg, r["batch"], r["seq"], predicted_tokens=r["predicted"])["model"]
        assert _close(r["train_gflop"], flops / 1e9)
        assert _close(r["mfu"], r["train_gflop"] * r["train_tok_s"] / tokens / peak)
        assert f"{r['mfu']:.1%}" in stdout
    # HF and our dense path project every position; the sparse path only the masked ones (~15%)
    assert hf["predicted"] == rows["ours-dense"]["predicted"] == 8 * 128
    assert 0 < rows["ours-sparse"]["predicted"] < 0.3 * 8 * 128
    assert rows["ours-sparse"]["train_gflop"] < rows["ours-dense"]["train_gflop"] == hf["train_gflop"]
    assert rows["hf"]["ratio_train"] == 1.0 and not res["ablations"]


# The train-step profile runs with the slow tests (as does device_check's dry run, which builds the
# same train step): the default run profiles the encoder forward (the same trace-to-table code).
@pytest.mark.parametrize("mode", [pytest.param((), marks=pytest.mark.slow), ("--forward", "minilm", "--quick")],
                         ids=["train_step", "forward"])
def test_profile_step_accounts_for_the_step(repo_root, tmp_path, mode):
    """The per-op profile of the real step (or encoder forward): every op is matched to HLO, categories add up."""
    res, stdout = _run(repo_root, tmp_path, "profile_step.py", "--steps", "2", "--top", "5", *mode)
    assert "| category | ms/step |" in stdout and "| op | ms/step |" in stdout
    cats = res["categories"]
    assert cats.get("matmul", 0) > 0 and _close(sum(cats.values()), res["ops_ms"], rel=1e-6)
    assert res["executing_ms"] > 0 and len(res["ops"]) > (10 if mode else 20)
    assert all(r["shape"] and r["category"] in ("matmul", "scan", "copy", "other") for r in res["ops"])
    if mode:  # the forward only: no optimizer, no gradient ops
        assert stdout.count("Encoder forward, minilm") == 1
        assert not any("transpose(jvp" in r["op_name"] or "adam" in r["op_name"].lower() for r in res["ops"])