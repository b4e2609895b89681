"""Run a benchmark Mixture: for each task and seed, fine-tune with the task's recipe, score on
test, and record the recipe next to the score. Resumable: a (task, seed) whose ``result.json``
exists is not run again.

Each run is the ``gatortron-jax`` command in a subprocess — ``finetune`` then ``evaluate
--split test`` — so the recipe stored with a score *is* the command that produced it (re-run it
and the same number comes out on CPU with the same seed), a task that crashes or runs out of
memory is reported without taking the table down, and memory goes back between runs. Start-up
costs ~5 s per run, nothing next to a fine-tune. Cost grows with tasks x seeds; the paper's
clinical table at 3 seeds is ~30 fine-tunes of GatorTron-base.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Any

from gatortron_jax.benchmark.suite import BenchmarkTask, mixture_tasks
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.finetuning.recipe import model_dir_fingerprint, package_versions, tree_sha256

log = logging.getLogger("gatortron_jax")

RESULT_FILE = "result.json"


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    init_checkpoint: str
    mixture: str
    data_root: str
    output: str
    seeds: int = 1
    tasks: tuple[str, ...] = ()  # subset of the mixture; empty: all
    quick: bool = False  # small budget: quick_epochs epochs of at most quick_steps steps
    quick_steps: int = 300
    quick_epochs: int = 1
    extra_bindings: tuple[str, ...] = ()  # applied to every fine-tune (e.g. a batch size for a small GPU)


def git_revision() -> str | None:
    from gatortron_jax.core.paths import REPO_ROOT

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def hardware() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "devices": len(devices),
            "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def _cli() -> list[str]:
    return [sys.executable, "-m", "gatortron_jax.cli"]


def run_commands(task: BenchmarkTask, seed: int, cfg: BenchmarkConfig, run_dir: str) -> tuple[list[str], list[str]]:
    """(finetune argv, evaluate argv) for one (task, seed): the recipe."""
    data_dir = os.path.abspath(task.data_dir(cfg.data_root))
    bindings = [f"{task.data_prefix}.data_dir='{data_dir}'", *task.bindings, f"{task.train_prefix}.seed={seed}"]
    if cfg.quick:
        bindings += task.quick_bindings(cfg.quick_steps, cfg.quick_epochs)
    bindings += list(cfg.extra_bindings)
    model_dir = os.path.join(run_dir, "model")
    finetune = ["finetune", f"--gin_file={task.gin_file}", f"--init_checkpoint={os.path.abspath(cfg.init_checkpoint)}",
                f"--model_dir={model_dir}", *[f"--gin.{b}" for b in bindings]]
    evaluate = ["evaluate", f"--checkpoint={model_dir}", "--split=test",
                f"--output={os.path.join(run_dir, 'eval_test.json')}"]
    return finetune, evaluate


def _split_fingerprints(task: BenchmarkTask, data_root: str) -> dict[str, str]:
    base = task.data_dir(data_root)
    return {f: "sha256:" + tree_sha256(os.path.join(base, f)) for f in task.required_files}


def run_one(task: BenchmarkTask, seed: int, cfg: BenchmarkConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune + evaluate one (task, seed) unless its result exists; returns the result record."""
    run_dir = os.path.join(cfg.output, "runs", task.name, f"seed{seed}")
    result_path = os.path.join(run_dir, RESULT_FILE)
    if os.path.isfile(result_path):
        with open(result_path) as f:
            record = json.load(f)
        log.info("benchmark %s seed %d: done before (%s %.4f); skipped", task.name, seed, task.metric, record["score"])
        return record
    if os.path.isdir(run_dir):  # a run killed part-way: start that (task, seed) over
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    finetune, evaluate = run_commands(task, seed, cfg, run_dir)
    tick = time.time()
    for argv in (finetune, evaluate):
        log.info("benchmark %s seed %d: gatortron-jax %s", task.name, seed, argv[0])
        with open(os.path.join(run_dir, f"{argv[0]}.log"), "w") as logf:
            proc = subprocess.run([*_cli(), *argv], stdout=logf, stderr=subprocess.STDOUT,
                                  env=_child_env(cfg.output))
        if proc.returncode:
            raise InputError(f"benchmark {task.name} seed {seed}: `gatortron-jax {argv[0]}` failed with status "
                             f"{proc.returncode}; see {os.path.join(run_dir, argv[0] + '.log')}")
    with open(os.path.join(run_dir, "eval_test.json")) as f:
        evaluation = json.load(f)
    record = {
        "task": task.name, "paper_name": task.paper_name, "seed": seed, "metric": task.metric,
        "score": task.score_of(evaluation), "official": task.official_of(evaluation),
        "wall_seconds": time.time() - tick,
        "recipe": {
            "commands": [["gatortron-jax", *finetune], ["gatortron-jax", *evaluate]],
            "gin_file": task.gin_file, "seed": seed, "quick": cfg.quick,
            "init_checkpoint": os.path.abspath(cfg.init_checkpoint),
            "init_checkpoint_fingerprint": shared["init_fingerprint"],
            "data_dir": os.path.abspath(task.data_dir(cfg.data_root)),
            "data_fingerprints": _split_fingerprints(task, cfg.data_root),
            "metric_implementation": _metric_implementation(task),
            # de-id: the stored operating point and pattern recipe (which recognizers, their type map)
            "decoding": evaluation.get("recipe", {}).get("decoding"),
            "packages": shared["packages"], "git_revision": shared["git_revision"], "hardware": shared["hardware"],
        },
    }
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, result_path)  # atomic: a result file means the run finished
    log.info("benchmark %s seed %d: %s %.4f (%.0f s)", task.name, seed, task.metric, record["score"],
             record["wall_seconds"])
    return record


def _metric_implementation(task: BenchmarkTask) -> str:
    if task.kind == "ner":
        return "gatortron_jax.evaluation.ner_metrics.entity_scores (strict: exact type and span; micro)"
    from gatortron_jax.finetuning import task_registry

    return f"gatortron_jax.evaluation ({task_registry.get_task(task.name).metric})"


def _child_env(output: str | None = None) -> dict[str, str]:
    """The runs' environment: TF quiet, and XLA's compiled programs kept in ``OUT/jax_cache``.

    Every (task, seed) is two fresh processes (finetune, evaluate) compiling the same shapes
    (one train step and one predict per length bucket: ~2-5 s each for MiniLM on 2 CPU cores);
    JAX's persistent compilation cache lets the second seed, and evaluate after finetune,
    load them instead. A cached program is the one that would be compiled, so no number moves.
    A JAX_COMPILATION_CACHE_DIR already set is kept.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if output:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.abspath(output), "jax_cache"))
    return env


def select_tasks(cfg: BenchmarkConfig) -> tuple[list[BenchmarkTask], list[dict[str, Any]]]:
    """(tasks to run, skipped tasks with the files that were looked for)."""
    tasks = mixture_tasks(cfg.mixture)
    if cfg.tasks:
        unknown = sorted(set(cfg.tasks) - {t.name for t in tasks})
        if unknown:
            raise ConfigError(f"--tasks {unknown}: not in mixture {cfg.mixture} ({[t.name for t in tasks]})")
        tasks = [t for t in tasks if t.name in cfg.tasks]
    run, skipped = [], []
    for t in tasks:
        missing = t.missing_files(cfg.data_root)
        if missing:
            log.warning("benchmark %s: skipped, data not found under %s (looked for %s)", t.name,
                        cfg.data_root, ", ".join(missing))
            skipped.append({"task": t.name, "missing": missing})
        else:
            run.append(t)
    return run, skipped


def run_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Every (task, seed) of the mixture whose data is present; writes OUT/results.{json,md}."""
    from gatortron_jax.benchmark.table import write_tables

    if cfg.seeds < 1:
        raise ConfigError(f"--seeds {cfg.seeds}: must be >= 1")
    if not os.path.isfile(os.path.join(cfg.init_checkpoint, "config.json")):
        raise InputError(f"{cfg.init_checkpoint}: no config.json (not a model dir; create one with pretrain or import-hf)")
    tasks, skipped = select_tasks(cfg)
    os.makedirs(cfg.output, exist_ok=True)
    shared = {"init_fingerprint": "sha256:" + model_dir_fingerprint(cfg.init_checkpoint), "packages": package_versions(),
              "git_revision": git_revision(), "hardware": hardware()}
    records = [run_one(t, seed, cfg, shared) for t in tasks for seed in range(cfg.seeds)]
    summary = {"mixture": cfg.mixture, "init_checkpoint": os.path.abspath(cfg.init_checkpoint),
               "init_checkpoint_fingerprint": shared["init_fingerprint"], "seeds": cfg.seeds, "quick": cfg.quick,
               "data_root": os.path.abspath(cfg.data_root), "runs": records, "skipped": skipped}
    write_tables(summary, cfg.output)
    return summary


def rerun_recipe(record: dict[str, Any], run_dir: str) -> float:
    """Re-run a recorded (task, seed) from its recipe into ``run_dir``; returns the new score."""
    from gatortron_jax.benchmark.suite import benchmark_task

    finetune, evaluate = (list(c[1:]) for c in record["recipe"]["commands"])
    model_dir = os.path.join(run_dir, "model")
    out = os.path.join(run_dir, "eval_test.json")
    finetune = [a if not a.startswith("--model_dir=") else f"--model_dir={model_dir}" for a in finetune]
    evaluate = [f"--checkpoint={model_dir}" if a.startswith("--checkpoint=") else
                f"--output={out}" if a.startswith("--output=") else a for a in evaluate]
    for argv in (finetune, evaluate):
        proc = subprocess.run([*_cli(), *argv], capture_output=True, text=True, env=_child_env())
        if proc.returncode:
            raise InputError(f"re-run of {record['task']} seed {record['seed']}: {argv[0]} failed: "
                             f"{proc.stderr.strip().splitlines()[-1:]}")
    with open(out) as f:
        return benchmark_task(record["task"]).score_of(json.load(f))


__all__ = ["BenchmarkConfig", "run_benchmark", "rerun_recipe", "run_commands", "select_tasks"]
