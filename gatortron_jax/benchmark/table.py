"""The results table (``results.md`` / ``results.json``) and side-by-side comparison of two.

Scores are shown as mean ± sample standard deviation over seeds with every per-seed value, the
way a paper's table should be read. A comparison of two checkpoints' tables gives, per task,
both means, the difference and — when both have at least two seeds — an exact two-sided
permutation test over the pooled per-seed scores (every split of the pooled values into the two
groups' sizes; no distributional assumption, exact for the handful of seeds a table has).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any, Mapping, Sequence

from gatortron_jax.core.errors import InputError


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0.0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def permutation_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided p of |mean(a) - mean(b)| under exchangeability of the pooled values."""
    pooled = list(a) + list(b)
    observed = abs(sum(a) / len(a) - sum(b) / len(b))
    total = sum(pooled)
    hits = count = 0
    for idx in itertools.combinations(range(len(pooled)), len(a)):
        sa = sum(pooled[i] for i in idx)
        diff = abs(sa / len(a) - (total - sa) / len(b))
        hits += diff >= observed - 1e-12
        count += 1
    return hits / count


def rows_by_task(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for r in summary["runs"]:
        row = rows.setdefault(r["task"], {"task": r["task"], "paper_name": r.get("paper_name") or r["task"],
                                          "metric": r["metric"], "seeds": [], "scores": [], "wall_seconds": 0.0})
        row["seeds"].append(r["seed"])
        row["scores"].append(r["score"])
        if r.get("official"):  # the challenge script's figure (scoring.tasks), beside ours
            row.setdefault("official", []).append(r["official"]["f1"])
        row["wall_seconds"] += r["wall_seconds"]
    for row in rows.values():
        row["mean"], row["sd"] = mean_sd(row["scores"])
    return rows


def format_markdown(summary: Mapping[str, Any]) -> str:
    rows = rows_by_task(summary)
    lines = [f"# Benchmark: {summary['mixture']}", "",
             f"Init checkpoint `{summary['init_checkpoint']}` ({summary['init_checkpoint_fingerprint'][:19]}…), "
             f"{summary['seeds']} seed(s){', quick budget' if summary.get('quick') else ''}; test split. "
             "Each score's recipe (commands, fingerprints, versions, hardware) is in "
             "`runs/<task>/seed<N>/result.json` and `results.json`.", "",
             "The last column is the challenge's own scorer as `score` reproduces it (i2b2 2014 de-id Strict, "
             "n2c2 2018 strict concepts or relations, conlleval), where one exists.", "",
             "| task | metric | mean ± sd | per seed | wall (s) | official scorer, mean ± sd |",
             "|---|---|---|---|---|---|"]
    for row in rows.values():
        per_seed = ", ".join(f"{s}: {v:.4f}" for s, v in zip(row["seeds"], row["scores"]))
        official = "—"
        if row.get("official"):
            official = "{:.4f} ± {:.4f}".format(*mean_sd(row["official"]))
        lines.append(f"| {row['paper_name']} | {row['metric']} | {row['mean']:.4f} ± {row['sd']:.4f} | {per_seed} "
                     f"| {row['wall_seconds']:.0f} | {official} |")
    for s in summary.get("skipped", []):
        lines.append(f"| {s['task']} | — | skipped: data not found | looked for {', '.join(s['missing'])} | | |")
    return "\n".join(lines) + "\n"


def write_tables(summary: Mapping[str, Any], output: str) -> tuple[str, str]:
    paths = []
    for name, text in (("results.json", json.dumps(summary, indent=2)), ("results.md", format_markdown(summary))):
        path = os.path.join(output, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]


def _load(path: str) -> Mapping[str, Any]:
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a benchmark results.json ({e})") from None


def compare(path_a: str, path_b: str) -> str:
    """A markdown table of two results side by side, with a permutation-test p where seeds allow."""
    a, b = _load(path_a), _load(path_b)
    ra, rb = rows_by_task(a), rows_by_task(b)
    lines = [f"A: `{a['init_checkpoint']}`  B: `{b['init_checkpoint']}`", "",
             "| task | metric | A mean ± sd | B mean ± sd | B − A | p (permutation) |", "|---|---|---|---|---|---|"]
    for task in [t for t in ra if t in rb]:
        x, y = ra[task], rb[task]
        p = (f"{permutation_p_value(x['scores'], y['scores']):.3f}"
             if len(x["scores"]) > 1 and len(y["scores"]) > 1 else "n/a (needs ≥ 2 seeds each)")
        lines.append(f"| {x['paper_name']} | {x['metric']} | {x['mean']:.4f} ± {x['sd']:.4f} | "
                     f"{y['mean']:.4f} ± {y['sd']:.4f} | {y['mean'] - x['mean']:+.4f} | {p} |")
    only = sorted(set(ra) ^ set(rb))
    if only:
        lines.append(f"\nIn one table only: {', '.join(only)}")
    return "\n".join(lines) + "\n"
