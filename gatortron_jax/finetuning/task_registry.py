"""Sentence / pair benchmark tasks (RE, NLI, STS, span QA):
name → reader, kind, metric, label set and default data directory.

Every reader turns one split into :class:`TaskExample` s — ``text_a`` (+ ``text_b`` for pair
tasks), a string label or a float score, and for relation extraction the character offsets of
the two entity markers in ``text_a`` — plus a summary dict (examples read, skipped examples
with file/line/id, relation candidate stats). Bad input is an ``InputError`` naming file and
example id unless ``TaskDataConfig.strict`` is False; then it is skipped, counted and listed.

Built-in tasks (``kind``, metric; default data dir):

    chemprot_re       classification, micro-F1 over CPR:3/4/5/6/9 (``false`` excluded); data/task_samples/chemprot_style
    n2c2_2018_re      classification over brat candidate pairs, micro-F1 excluding ``none``; data/ner_samples/brat_n2c2_2018
    mednli            classification, accuracy; data/task_samples/mednli_style
    n2c2_2019_sts     regression, Pearson r; data/task_samples/sts_style
    biosses_sts       regression, Pearson r; ../shared/data/BIOSSES
    emrqa_medication, emrqa_relation, bioasq_factoid   span QA (kind ``qa``), SQuAD EM/F1; data/task_samples/emrqa_style

:func:`register_seqio_task` also registers one as a ``seqio`` task (string features ``id``,
``text_a``, ``text_b``, ``label``), which is how the benchmark Mixtures include them.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Any, Callable

from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.core.paths import REPO_ROOT

TASK_SAMPLES = os.path.join(REPO_ROOT, "data", "task_samples")
NER_SAMPLES = os.path.join(REPO_ROOT, "data", "ner_samples")
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
KINDS = ("classification", "regression", "qa")

N2C2_2018_ATTRIBUTES = ("ADE", "Dosage", "Duration", "Form", "Frequency", "Reason", "Route", "Strength")


@dataclasses.dataclass(frozen=True)
class TaskExample:
    id: str
    text_a: str
    text_b: str | None
    label: Any  # str (classification) or float (regression); None when unlabeled
    source: str = ""
    markers: tuple[int, int] | None = None  # char offsets of the [E1]/[E2] "entity start" in text_a
    ref: Any = None  # the underlying reader object (e.g. RelationExample for brat output)


@dataclasses.dataclass
class ExampleSet:
    examples: list[TaskExample]
    summary: dict[str, Any]
    documents: list | None = None  # brat documents (relation extraction) for writing predictions


@dataclasses.dataclass(frozen=True)
class SequenceTask:
    name: str
    kind: str  # classification | regression | qa
    metric: str  # relation_micro_f1 | accuracy | pearson | squad
    reader: Callable[..., ExampleSet]  # reader(path, *, strict, split, data) -> ExampleSet
    data_dir: str | None
    split_files: dict[str, str]  # split -> file or directory name under data_dir ("{split}" filled in)
    labels: tuple[str, ...] | None = None  # fixed label set (None: from the train split)
    negative_label: str | None = None  # excluded from micro-F1
    representation: str = "pooled"  # default classifier input
    pair: bool = True  # two segments ([CLS] a [SEP] b [SEP])

    def split_path(self, split: str, data_dir: str | None = None, split_name: str | None = None) -> str:
        base = data_dir or self.data_dir
        if not base:
            raise ConfigError(f"task {self.name}: no data_dir; bind TaskDataConfig.data_dir")
        if not os.path.isdir(base):
            raise InputError(f"task {self.name}: data_dir {base} does not exist")
        pattern = self.split_files.get(split, "{split}")
        path = os.path.join(base, pattern.format(split=split_name or split))
        if os.path.exists(path):
            return path
        matches = sorted(glob.glob(glob.escape(path) + ".*"))
        if len(matches) == 1:
            return matches[0]
        raise InputError(f"task {self.name}: split {split!r} not found: expected {path} ({len(matches)} {path}.* found)")

    def read(self, split: str, data_dir: str | None = None, split_name: str | None = None, *,
             strict: bool = True, data=None) -> ExampleSet:
        return self.reader(self.split_path(split, data_dir, split_name), strict=strict, split=split, data=data)


# ----------------------------------------------------------------------------- readers


def _summary_dict(s) -> dict[str, Any]:
    return {"examples": s.examples, "labels": dict(s.labels), "problems": dict(s.problems),
            "skipped": len(s.skipped_examples),
            "skipped_examples": [{"where": w, "id": i, "reason": r} for w, i, r in s.skipped_examples]}


def read_chemprot(path: str, *, strict: bool = True, split: str = "train", data=None) -> ExampleSet:
    from gatortron_jax.annotations.formats.chemprot import read_chemprot_tsv
    from gatortron_jax.annotations.formats.task_common import ExampleReadSummary

    summary = ExampleReadSummary()
    rows = read_chemprot_tsv(path, strict=strict, summary=summary)
    out = []
    for r in rows:
        c, g = r.chemical_span, r.gene_span
        if c is None or g is None:  # markers missing: the reader's text has no @CHEMICAL$/@GENE$
            if strict:
                raise InputError(f"{r.source}: example {r.id!r}: no @CHEMICAL$/@GENE$ mask in the sentence")
            summary.skip("no @CHEMICAL$/@GENE$ mask", r.source, r.id)
            continue
        out.append(TaskExample(r.id, r.text, None, r.label, r.source, (c[0], g[0])))
    summary.examples = len(out)
    summary.log()
    return ExampleSet(out, _summary_dict(summary))


def read_nli(path: str, *, strict: bool = True, split: str = "train", data=None) -> ExampleSet:
    from gatortron_jax.annotations.formats.nli import read_nli_jsonl
    from gatortron_jax.annotations.formats.task_common import ExampleReadSummary

    summary = ExampleReadSummary()
    rows = read_nli_jsonl(path, strict=strict, summary=summary)
    summary.log()
    return ExampleSet([TaskExample(r.id, r.premise, r.hypothesis, r.label, r.source) for r in rows],
                      _summary_dict(summary))


def _sts_reader(score_range):
    def read(path: str, *, strict: bool = True, split: str = "train", data=None) -> ExampleSet:
        from gatortron_jax.annotations.formats.sts import read_sts_tsv
        from gatortron_jax.annotations.formats.task_common import ExampleReadSummary

        summary = ExampleReadSummary()
        rows = read_sts_tsv(path, score_range=score_range, strict=strict, summary=summary)
        summary.log()
        return ExampleSet([TaskExample(r.id, r.sentence1, r.sentence2, float(r.score), r.source) for r in rows],
                          _summary_dict(summary))

    return read


def read_n2c2_2018_relations(path: str, *, strict: bool = True, split: str = "train", data=None) -> ExampleSet:
    """brat documents → candidate (attribute, Drug) pairs with entity markers; negative
    sampling only on the train split (``TaskDataConfig.negative_ratio``)."""
    from gatortron_jax.annotations.formats.brat import read_brat_dir
    from gatortron_jax.finetuning.relations import CandidateConfig, build_relation_examples

    docs = read_brat_dir(path, strict=strict)
    if not docs:
        raise InputError(f"{path}: no brat documents")
    cfg = CandidateConfig(
        window_sentences=getattr(data, "window_sentences", 0) if data is not None else 0,
        allowed_pairs=tuple((a, "Drug") for a in N2C2_2018_ATTRIBUTES), negative_label="none",
        negative_ratio=getattr(data, "negative_ratio", None) if (data is not None and split == "train") else None,
        typed_markers=getattr(data, "typed_markers", False) if data is not None else False,
    )
    rels, stats = build_relation_examples(docs, cfg, strict=strict)
    out = [TaskExample(r.id, r.text, None, r.label, r.source, (r.e1_start, r.e2_start), r) for r in rels]
    summary = {"examples": len(out), "documents": len(docs), "labels": dict(stats.labels),
               "relation_stats": stats.describe(), "gold_relations": stats.gold_relations,
               "gold_not_candidates": dict(stats.gold_not_candidates),
               "skipped": len(stats.skipped_relations),
               "skipped_examples": [{"where": w, "id": i, "reason": r} for w, i, r in stats.skipped_relations]}
    return ExampleSet(out, summary, docs)


def read_qa(path: str, *, strict: bool = True, split: str = "train", data=None) -> ExampleSet:
    """SQuAD-style JSON → ``QAExample`` s (``examples`` hold the reader's objects as they are)."""
    from gatortron_jax.annotations.formats.squad import read_squad_json
    from gatortron_jax.annotations.formats.task_common import ExampleReadSummary

    summary = ExampleReadSummary()
    rows = read_squad_json(path, strict=strict, allow_unanswered=split == "predict", summary=summary)
    summary.log()
    return ExampleSet(list(rows), _summary_dict(summary))


# ----------------------------------------------------------------------------- registry

_TASKS: dict[str, SequenceTask] = {}


def register_task(task: SequenceTask) -> SequenceTask:
    if task.kind not in KINDS:
        raise ConfigError(f"task {task.name}: kind {task.kind!r} not in {KINDS}")
    _TASKS[task.name] = task
    return task


def _register_builtins() -> None:
    if _TASKS:
        return
    from gatortron_jax.annotations.formats.chemprot import CHEMPROT_LABELS
    from gatortron_jax.annotations.formats.nli import MEDNLI_LABELS
    from gatortron_jax.annotations.formats.sts import BIOSSES_RANGE, N2C2_2019_RANGE

    register_task(SequenceTask("chemprot_re", "classification", "relation_micro_f1", read_chemprot,
                               os.path.join(TASK_SAMPLES, "chemprot_style"), {}, CHEMPROT_LABELS, "false",
                               "entity_start", pair=False))
    register_task(SequenceTask("n2c2_2018_re", "classification", "relation_micro_f1", read_n2c2_2018_relations,
                               os.path.join(NER_SAMPLES, "brat_n2c2_2018"), {},
                               tuple(f"{a}-Drug" for a in N2C2_2018_ATTRIBUTES) + ("none",), "none", "entity_start",
                               pair=False))
    register_task(SequenceTask("mednli", "classification", "accuracy", read_nli,
                               os.path.join(TASK_SAMPLES, "mednli_style"), {s: "mli_{split}_v1.jsonl" for s in
                                                                           ("train", "dev", "test")},
                               MEDNLI_LABELS))
    register_task(SequenceTask("n2c2_2019_sts", "regression", "pearson", _sts_reader(N2C2_2019_RANGE),
                               os.path.join(TASK_SAMPLES, "sts_style"),
                               {s: "clinicalsts_{split}.tsv" for s in ("train", "dev", "test")}))
    register_task(SequenceTask("biosses_sts", "regression", "pearson", _sts_reader(BIOSSES_RANGE),
                               os.path.join(SHARED_DATA, "BIOSSES"), {s: "{split}.tsv" for s in ("train", "dev", "test")}))
    for name in ("emrqa_medication", "emrqa_relation", "bioasq_factoid"):
        register_task(SequenceTask(name, "qa", "squad", read_qa, os.path.join(TASK_SAMPLES, "emrqa_style"),
                                   {s: "{split}.json" for s in ("train", "dev", "test")}))


def get_task(name: str) -> SequenceTask:
    _register_builtins()
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}; registered: {sorted(_TASKS)}")
    return _TASKS[name]


def registered_tasks() -> list[str]:
    _register_builtins()
    return sorted(_TASKS)


# ----------------------------------------------------------------------------- seqio


def register_seqio_task(name: str, data_dir: str | None = None) -> str:
    """Registers sequence task ``name`` as a ``seqio`` Task (string features ``id``, ``text_a``,
    ``text_b``, ``label``; splits train/dev/test read through the task's own reader from
    ``data_dir`` or its default), so it can join a seqio Mixture. Returns the name.

    The benchmark Mixtures (``gatortron_jax/benchmark/suite.py``) are built from these; there is
    no multi-task training over a Mixture yet, so none is registered here without a consumer.
    """
    import seqio

    task = get_task(name)
    base = data_dir or task.data_dir

    def dataset_fn(split: str, shuffle_files: bool = False, seed: int | None = None):
        import tensorflow as tf

        exs = task.read(split, base).examples
        return tf.data.Dataset.from_tensor_slices({
            "id": [e.id for e in exs], "text_a": [e.text_a for e in exs],
            "text_b": [e.text_b or "" for e in exs], "label": [str(e.label) for e in exs]})

    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(name, source=seqio.FunctionDataSource(dataset_fn, splits=["train", "dev", "test"]),
                           output_features={}, preprocessors=[])
    return name
