"""Benchmark tasks and the seqio Mixtures that group them.

A benchmark task is a fine-tuning task already in the registries (``finetuning.ner_tasks`` /
``finetuning.task_registry``, each also a seqio Task) plus what a table needs on top: the gin
recipe it is fine-tuned with, where its files sit under ``--data_root`` (so DUA data is the
user's to place, and absent data is reported, not guessed), and which number of ``evaluate``'s
JSON is its score. Mixtures are seqio Mixtures over those task names, so a user adds a task
the way they add any seqio task, then :func:`register_benchmark_task` and a Mixture.

Three Mixtures ship: ``public_biomedical`` (NCBI-disease NER, ChemProt RE, BIOSSES STS: the
shape of BLURB's subset, over ``../shared/data``'s layout, runs anywhere), ``public_deid``
(MEDDOCAN, the public de-id corpus, scored on dev because its test split is held back) and
``gatortron_clinical`` (the paper's clinical tasks, behind data-use agreements).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import seqio

from gatortron_jax.core.errors import ConfigError

NER, SEQUENCE = "ner", "sequence"


@dataclasses.dataclass(frozen=True)
class BenchmarkTask:
    """One row of the table: a registered fine-tuning task and how the benchmark runs it."""

    name: str  # the registered task (and seqio Task) name
    kind: str  # NER (NERDataConfig/NERTrainConfig) or SEQUENCE (TaskDataConfig/TaskTrainConfig)
    gin_file: str  # the fine-tuning recipe
    data_subdir: str  # under --data_root
    required_files: tuple[str, ...]  # files or split dirs, relative to the data dir; all must exist or it is skipped
    metric: str  # label in the table
    bindings: tuple[str, ...] = ()  # extra gin bindings (e.g. split names of this layout)
    paper_name: str = ""
    # --quick only, after the generic budget: what this task needs for a number worth reading
    # (a tiny train set keeps its epochs; a large dev set is sampled for model selection).
    quick_extra: tuple[str, ...] = ()

    @property
    def data_prefix(self) -> str:
        return "NERDataConfig" if self.kind == NER else "TaskDataConfig"

    @property
    def train_prefix(self) -> str:
        return "NERTrainConfig" if self.kind == NER else "TaskTrainConfig"

    def data_dir(self, data_root: str) -> str:
        return os.path.join(data_root, self.data_subdir)

    def missing_files(self, data_root: str) -> list[str]:
        base = self.data_dir(data_root)
        return [os.path.join(base, f) for f in self.required_files if not os.path.exists(os.path.join(base, f))]

    def quick_bindings(self, max_steps: int, epochs: int) -> tuple[str, ...]:
        """A small budget for small machines: few epochs, capped steps per epoch, no early stop."""
        p = self.train_prefix
        return (f"{p}.num_epochs={epochs}", f"{p}.max_steps_per_epoch={max_steps}", f"{p}.patience=None",
                *self.quick_extra)

    def score_of(self, result: Mapping[str, Any]) -> float:
        """The table's number from ``evaluate``'s JSON."""
        if self.kind == NER:
            return float(result["scores"]["strict"]["micro"]["f1"])
        return float(result["value"])

    def official_of(self, result: Mapping[str, Any]) -> dict[str, Any] | None:
        """The challenge script's headline figure from ``evaluate``'s JSON (``official``), if any."""
        from gatortron_jax.scoring.tasks import official_headline

        return official_headline(result.get("official") or result.get("scores", {}).get("official"))


_BENCHMARK_TASKS: dict[str, BenchmarkTask] = {}
_MIXTURES: dict[str, tuple[str, ...]] = {}


def register_benchmark_task(task: BenchmarkTask) -> BenchmarkTask:
    if task.kind not in (NER, SEQUENCE):
        raise ConfigError(f"benchmark task {task.name}: kind {task.kind!r} not in {(NER, SEQUENCE)}")
    _BENCHMARK_TASKS[task.name] = task
    return task


def register_mixture(name: str, task_names: Sequence[str]) -> None:
    """A seqio Mixture (equal rates) over benchmark tasks; each must be a registered benchmark task."""
    _register_builtins()
    unknown = [t for t in task_names if t not in _BENCHMARK_TASKS]
    if unknown:
        raise ConfigError(f"mixture {name}: not benchmark tasks: {unknown}; known: {sorted(_BENCHMARK_TASKS)}")
    _MIXTURES[name] = tuple(task_names)
    _ensure_seqio_tasks(task_names)
    seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, [(t, 1.0) for t in task_names])


def _ensure_seqio_tasks(task_names: Sequence[str]) -> None:
    """Every task of a Mixture must be a seqio Task: NER tasks register themselves, sequence tasks
    through :func:`~gatortron_jax.finetuning.task_registry.register_seqio_task`."""
    from gatortron_jax.finetuning import ner_tasks, task_registry

    for name in task_names:
        if name in seqio.TaskRegistry.names():
            continue
        if _BENCHMARK_TASKS[name].kind == NER:
            ner_tasks.get_ner_task(name)  # registers the seqio task as a side effect
        else:
            task_registry.register_seqio_task(name)


def benchmark_task(name: str) -> BenchmarkTask:
    _register_builtins()
    if name not in _BENCHMARK_TASKS:
        raise ConfigError(f"unknown benchmark task {name!r}; registered: {sorted(_BENCHMARK_TASKS)}")
    return _BENCHMARK_TASKS[name]


def mixture_tasks(name: str) -> list[BenchmarkTask]:
    """The benchmark tasks of a seqio Mixture, in the order it was registered with (the paper's
    table order; seqio itself keeps a Mixture's tasks sorted by name)."""
    _register_builtins()
    try:
        members = [t.name for t in seqio.MixtureRegistry.get(name).tasks]
    except ValueError:
        raise ConfigError(f"unknown benchmark mixture {name!r}; registered: {sorted(_MIXTURES)}") from None
    order = [t for t in _MIXTURES.get(name, ()) if t in members] + sorted(set(members) - set(_MIXTURES.get(name, ())))
    return [benchmark_task(t) for t in order]


def mixtures() -> list[str]:
    _register_builtins()
    return sorted(_MIXTURES)


def _register_builtins() -> None:
    if _BENCHMARK_TASKS:
        return
    ner_splits = ("NERDataConfig.train_split='train'", "NERDataConfig.dev_split='devel'",
                  "NERDataConfig.test_split='test'")
    for t in (
        # --- public: ../shared/data's layout ---
        BenchmarkTask("conll_ner", NER, "gin/finetune/conll_ner.gin", "NCBI-disease-IOB",
                      ("train.tsv", "devel.tsv", "test.tsv"), "strict entity F1", ner_splits, "NCBI-disease"),
        BenchmarkTask("chemprot_re", SEQUENCE, "gin/finetune/chemprot.gin", "ChemProt/blue_style",
                      ("train.tsv", "dev.tsv", "test.tsv"), "micro F1 (CPR:3/4/5/6/9)", (), "ChemProt",
                      quick_extra=("TaskDataConfig.max_dev_examples=2000",)),  # dev: 11,772 pairs
        BenchmarkTask("biosses_sts", SEQUENCE, "gin/finetune/biosses_sts.gin", "BIOSSES",
                      ("train.tsv", "dev.tsv", "test.tsv"), "Pearson r", (), "BIOSSES",
                      quick_extra=("TaskTrainConfig.num_epochs=20",)),  # 64 train pairs: 8 steps an epoch
        # --- clinical (data-use agreements): the paper's table ---
        BenchmarkTask("i2b2_2010_ner", NER, "gin/finetune/i2b2_2010.gin", "i2b2_2010", ("train", "dev", "test"),
                      "strict entity F1", (), "2010 i2b2 NER"),
        BenchmarkTask("i2b2_2012_ner", NER, "gin/finetune/i2b2_2012.gin", "i2b2_2012", ("train", "dev", "test"),
                      "strict entity F1", (), "2012 i2b2 NER"),
        BenchmarkTask("n2c2_2018_ner", NER, "gin/finetune/n2c2_2018.gin", "n2c2_2018", ("train", "dev", "test"),
                      "strict entity F1", (), "2018 n2c2 NER"),
        BenchmarkTask("n2c2_2018_re", SEQUENCE, "gin/finetune/n2c2_2018_re.gin", "n2c2_2018",
                      ("train", "dev", "test"), "micro F1", (), "2018 n2c2 RE"),
        BenchmarkTask("mednli", SEQUENCE, "gin/finetune/mednli.gin", "mednli",
                      ("mli_train_v1.jsonl", "mli_dev_v1.jsonl", "mli_test_v1.jsonl"), "accuracy", (), "MedNLI"),
        BenchmarkTask("n2c2_2019_sts", SEQUENCE, "gin/finetune/n2c2_2019_sts.gin", "n2c2_2019_sts",
                      ("clinicalsts_train.tsv", "clinicalsts_dev.tsv", "clinicalsts_test.tsv"), "Pearson r", (),
                      "2019 n2c2 STS"),
        BenchmarkTask("emrqa_medication", SEQUENCE, "gin/finetune/emrqa_medication.gin", "emrqa_medication",
                      ("train.json", "dev.json", "test.json"), "F1", (), "emrQA medication"),
        BenchmarkTask("emrqa_relation", SEQUENCE, "gin/finetune/emrqa_relation.gin", "emrqa_relation",
                      ("train.json", "dev.json", "test.json"), "F1", (), "emrQA relation"),
        BenchmarkTask("i2b2_2014_deid", NER, "gin/finetune/i2b2_2014_deid.gin", "i2b2_2014_deid",
                      ("train", "dev", "test"), "strict entity F1", (), "2014 i2b2 de-id"),
        # --- public de-id (../shared/data/MEDDOCAN): its test split is held back, so the table's number is
        # dev (model selection on dev too: read it as an upper estimate, like the published dev figures).
        BenchmarkTask("meddocan_deid", NER, "gin/finetune/meddocan.gin", "MEDDOCAN",
                      ("README.md", "train/xml", "dev/xml"), "strict entity F1 (dev; MEDDOCAN subtrack 1)",
                      ("NERDataConfig.test_split='dev/xml'",), "MEDDOCAN"),
    ):
        register_benchmark_task(t)
    register_mixture("public_biomedical", ["conll_ner", "chemprot_re", "biosses_sts"])
    register_mixture("public_deid", ["meddocan_deid"])
    register_mixture("gatortron_clinical", ["i2b2_2010_ner", "i2b2_2012_ner", "n2c2_2018_ner", "n2c2_2018_re",
                                            "mednli", "n2c2_2019_sts", "emrqa_medication", "emrqa_relation",
                                            "i2b2_2014_deid"])
