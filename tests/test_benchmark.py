"""The benchmark command: a Mixture's tasks fine-tuned and scored per seed into a table with
recipes; absent data skipped with the files looked for; resumable; a score re-runs from its
recipe to the same number; two tables compare with an exact permutation test."""

import json
import math
import os
import shutil

import pytest

from gatortron_jax.benchmark import suite
from gatortron_jax.benchmark.runner import rerun_recipe
from gatortron_jax.benchmark.table import compare, mean_sd, permutation_p_value
from gatortron_jax.cli import main as cli


def test_mean_sd_and_exact_permutation_test():
    mean, sd = mean_sd([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82) and sd == pytest.approx(0.02)
    assert mean_sd([0.5]) == (0.5, 0.0)
    # 3 vs 3 fully separated: only the observed split and its mirror reach the gap -> 2 / C(6,3)
    assert permutation_p_value([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]) == pytest.approx(2 / 20)
    assert permutation_p_value([1.0, 2.0], [1.0, 2.0]) == pytest.approx(1.0)


def test_public_mixture_is_a_seqio_mixture_of_benchmark_tasks():
    import seqio

    tasks = suite.mixture_tasks("public_biomedical")
    assert [t.name for t in tasks] == ["conll_ner", "chemprot_re", "biosses_sts"]
    assert {t.name for t in seqio.MixtureRegistry.get("public_biomedical").tasks} == {t.name for t in tasks}
    assert "gatortron_clinical" in suite.mixtures()


def test_quick_budget_order_task_extras_then_user_bindings(tmp_path):
    from gatortron_jax.benchmark.runner import BenchmarkConfig, run_commands

    cfg = BenchmarkConfig(init_checkpoint=str(tmp_path), mixture="public_biomedical", data_root=str(tmp_path),
                          output=str(tmp_path / "o"), quick=True, extra_bindings=("TaskTrainConfig.num_epochs=2",))
    finetune, evaluate = run_commands(suite.benchmark_task("biosses_sts"), 0, cfg, str(tmp_path / "run"))
    epochs = [a for a in finetune if ".num_epochs=" in a]
    # the generic quick budget, BIOSSES's own (64 pairs: 8 steps an epoch), then the user's: last wins in gin
    assert epochs == ["--gin.TaskTrainConfig.num_epochs=1", "--gin.TaskTrainConfig.num_epochs=20",
                      "--gin.TaskTrainConfig.num_epochs=2"]
    assert "--gin.TaskTrainConfig.max_steps_per_epoch=300" in finetune and evaluate[0] == "evaluate"
    chemprot, _ = run_commands(suite.benchmark_task("chemprot_re"), 0, cfg, str(tmp_path / "run"))
    assert "--gin.TaskDataConfig.max_dev_examples=2000" in chemprot


def _data_root(shared_data, tmp_path, with_ncbi: bool):
    """BIOSSES (and the tiny NCBI slice) laid out like ../shared/data; ChemProt deliberately absent."""
    root = tmp_path / "data_root"
    if with_ncbi:
        shutil.copytree(shared_data / "tiny_fixtures" / "NCBI-disease-IOB", root / "NCBI-disease-IOB")
    (root / "BIOSSES").mkdir(parents=True)
    for split in ("train", "dev", "test"):
        shutil.copyfile(shared_data / "BIOSSES" / f"{split}.tsv", root / "BIOSSES" / f"{split}.tsv")
    return root


def test_benchmark_cli_table_skips_and_recipe(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch):
    """Default suite: one tiny BIOSSES run through the CLI, its table, the skipped tasks and the
    recorded recipe (resume, recipe re-run and compare: the slow tests below)."""
    _benchmark_flow(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch, with_ncbi=False, full=False)


@pytest.mark.slow  # two more tiny runs (~40 s)
def test_benchmark_resume_recipe_rerun_compare(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch):
    """BIOSSES: seed 0, resumed with seed 1 (seed 0 not redone), recipe re-run, compare."""
    _benchmark_flow(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch, with_ncbi=False, full=True)


@pytest.mark.slow
def test_benchmark_with_ner_task(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch):
    """The same flow with the NER task too (NCBI tiny slice): 5 runs."""
    _benchmark_flow(shared_data, repo_root, tiny_pretrained, tmp_path, monkeypatch, with_ncbi=True, full=True)


def _benchmark_flow(shared_data, repo_root, init, tmp_path, monkeypatch, with_ncbi, full):
    import jax

    monkeypatch.chdir(repo_root)
    jax.devices()  # this process keeps its 8 simulated devices (initialised before XLA_FLAGS changes) ...
    monkeypatch.setenv("XLA_FLAGS", "")  # ... while the runs, subprocesses, get one CPU device each
    root, out = _data_root(shared_data, tmp_path, with_ncbi), tmp_path / "bench"
    tasks = (["conll_ner"] if with_ncbi else []) + ["biosses_sts"]
    argv = ["benchmark", f"--init_checkpoint={init}", "--mixture=public_biomedical", f"--data_root={root}",
            f"--output={out}", "--quick", "--quick_steps=2", "--gin.NERDataConfig.max_length=64",
            "--gin.NERDataConfig.overlap=16", "--gin.TaskDataConfig.max_length=64",
            "--gin.NERTrainConfig.batch_size=8", "--gin.TaskTrainConfig.batch_size=8",
            "--gin.TaskTrainConfig.num_epochs=1"]  # after --quick's own budgets (BIOSSES keeps 20 epochs)
    assert cli.main(argv + ["--seeds=1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(r["task"], r["seed"]) for r in results["runs"]] == [(t, 0) for t in tasks]
    skipped = {s["task"]: s["missing"] for s in results["skipped"]}
    assert "chemprot_re" in skipped and ("conll_ner" in skipped) != with_ncbi
    assert any(p.endswith(os.path.join("ChemProt", "blue_style", "train.tsv")) for p in skipped["chemprot_re"])
    first = {r["task"]: r for r in results["runs"]}
    for r in results["runs"]:
        assert math.isfinite(r["score"])
        rec = r["recipe"]
        assert rec["init_checkpoint_fingerprint"].startswith("sha256:") and rec["seed"] == 0
        assert set(rec["data_fingerprints"]) and all(v.startswith("sha256:") for v in rec["data_fingerprints"].values())
        assert rec["packages"]["jax"] and rec["hardware"]["platform"] == "cpu" and rec["commands"][0][1] == "finetune"
    md = (out / "results.md").read_text()
    assert "| BIOSSES | Pearson r |" in md and "skipped" in md
    assert ("| NCBI-disease | strict entity F1 |" in md) == with_ncbi
    if not full:
        return

    # resume: a second seed; finished (task, seed) runs are not redone
    stamp = (out / "runs" / "biosses_sts" / "seed0" / "finetune.log").stat().st_mtime_ns
    assert cli.main(argv + ["--seeds=2"]) == 0
    results2 = json.loads((out / "results.json").read_text())
    assert sorted((r["task"], r["seed"]) for r in results2["runs"]) == sorted((t, s) for t in tasks for s in (0, 1))
    assert (out / "runs" / "biosses_sts" / "seed0" / "finetune.log").stat().st_mtime_ns == stamp
    assert {r["task"]: r["score"] for r in results2["runs"] if r["seed"] == 0} == {
        t: r["score"] for t, r in first.items()}
    assert "± " in (out / "results.md").read_text()

    # the recorded recipe re-runs to the same number (CPU, same seed)
    assert rerun_recipe(first["biosses_sts"], str(tmp_path / "rerun")) == first["biosses_sts"]["score"]

    # two tables side by side
    table = compare(str(out), str(out / "results.json"))
    assert "| BIOSSES |" in table and "+0.0000" in table and "1.000" in table
