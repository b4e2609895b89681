"""NER / de-identification tasks: a reader, a data directory and splits, registered by name.

Each task is registered twice, from one call to :func:`register_ner_task`:

* in a Python registry (:func:`get_ner_task`) whose ``documents(split)`` returns
  :class:`~gatortron_jax.annotations.documents.Document` lists — fine-tuning, evaluation and
  prediction work on these because windowing and scoring need character offsets;
* as a ``seqio`` task of the same name whose examples are ``{"id", "text", "entities"}``
  (entities as a JSON string of ``[type, [[start, end], ...]]``), for users who build their
  own ``tf.data`` pipelines or mixtures over the reader output.

Built-in tasks (data dirs default to the synthetic samples under ``data/ner_samples`` and
``data/deid_samples``; the de-id tasks are flagged ``deid=True``, so ``evaluate`` adds the
binary / per-category / HIPAA tables;
bind ``NERDataConfig.data_dir`` in gin to point at the real, DUA-protected data):

    i2b2_2010_ner   i2b2 2010 concepts  (<split>/ of .txt + .con)
    i2b2_2012_ner   i2b2 2012 events/timexes (<split>/ of .xml)
    n2c2_2018_ner   n2c2 2018 medications (<split>/ of brat .txt + .ann)
    i2b2_2014_deid  i2b2 2014 PHI as shipped (<split>/ of 2014 de-id XML), PHI TYPE labels
    i2b2_2014_deid_category  the same XML, the 7 PHI categories as labels
    i2b2_2014_deid_brat      i2b2 2014 PHI converted to brat (<split>/ of .txt + .ann)
    i2b2_2006_deid  i2b2 2006 PHI (<split>.xml, inline <PHI TYPE=...> tags)
    meddocan_deid   MEDDOCAN (IberLEF 2019, Spanish): <split>/xml/ of i2b2-2014-layout XML under
                    <MEDDOCAN>, 22 PHI TYPE labels; no default data (bind NERDataConfig.data_dir)
    conll_ner       CoNLL/BIO TSV (<split>/ directory or <split>.tsv/.conll/... file)

A new dataset is one call: ``register_ner_task("my_ner", reader=read_brat_dir,
data_dir="/data/my_ner", splits={"train": "train", "dev": "valid", "test": "test"})``.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from typing import Callable, Mapping

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.core.paths import REPO_ROOT

SAMPLES_DIR = os.path.join(REPO_ROOT, "data", "ner_samples")
DEID_SAMPLES_DIR = os.path.join(REPO_ROOT, "data", "deid_samples")
DEFAULT_SPLITS = {"train": "train", "dev": "dev", "test": "test"}
_CONLL_EXTENSIONS = (".tsv", ".conll", ".bio", ".iob", ".txt", ".iob2")

Reader = Callable[[str], list[Document]]


@dataclasses.dataclass(frozen=True)
class NERTask:
    name: str
    reader: Reader
    data_dir: str | None
    splits: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SPLITS))
    output_format: str = "brat"  # how `predict --format i2b2` writes: i2b2_2010 | i2b2_2012 | i2b2_2014 | brat
    deid: bool = False  # PHI task: `evaluate` adds the de-id scores (evaluation/deid_metrics.py)

    def split_path(self, split: str) -> str:
        if not self.data_dir:
            raise ConfigError(f"task {self.name}: no data_dir; bind NERDataConfig.data_dir")
        name = self.splits.get(split, split)
        path = os.path.join(self.data_dir, name)
        if os.path.exists(path):
            return path
        matches = sorted(glob.glob(glob.escape(path) + ".*"))
        if len(matches) == 1:
            return matches[0]
        if not os.path.isdir(self.data_dir):
            raise InputError(f"task {self.name}: data_dir {self.data_dir} does not exist")
        raise InputError(
            f"task {self.name}: split {split!r} not found: expected {path}/ or one {path}.* file "
            f"({len(matches)} found)"
        )

    def documents(self, split: str, *, strict: bool = False) -> list[Document]:
        """The split's documents; ``strict`` (the input policy) makes mismatched annotations errors."""
        path = self.split_path(split)
        docs = self.reader(path, strict=strict)
        if not docs:
            raise InputError(f"task {self.name}: no documents in {path}")
        return docs


_TASKS: dict[str, NERTask] = {}


def _seqio_dataset_fn(task: NERTask):
    def dataset_fn(split: str, shuffle_files: bool = False, seed: int | None = None):
        import tensorflow as tf

        docs = task.documents(split)
        ids = [d.id for d in docs]
        texts = [d.text for d in docs]
        ents = [json.dumps([[e.type, [list(s) for s in e.spans]] for e in d.entities]) for d in docs]
        return tf.data.Dataset.from_tensor_slices({"id": ids, "text": texts, "entities": ents})

    return dataset_fn


def register_ner_task(
    name: str,
    reader: Reader,
    data_dir: str | None,
    *,
    splits: Mapping[str, str] | None = None,
    output_format: str = "brat",
    deid: bool = False,
) -> NERTask:
    """Registers (or replaces) NER task ``name``; ``reader(path, *, strict)`` gets a split dir or file."""
    import seqio

    task = NERTask(name, reader, data_dir, dict(splits or DEFAULT_SPLITS), output_format, deid)
    _TASKS[name] = task
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(_seqio_dataset_fn(task), splits=list(task.splits)),
        output_features={},
        preprocessors=[],
    )
    return task


def get_ner_task(name: str, data_dir: str | None = None, splits: Mapping[str, str] | None = None) -> NERTask:
    """The registered task ``name``, re-pointed at ``data_dir``/``splits`` when given."""
    _register_builtins()
    if name not in _TASKS:
        raise ConfigError(f"unknown NER task {name!r}; registered: {sorted(_TASKS)}")
    task = _TASKS[name]
    if data_dir is not None or splits is not None:
        task = register_ner_task(
            name, task.reader, data_dir if data_dir is not None else task.data_dir,
            splits=dict(splits) if splits is not None else task.splits, output_format=task.output_format,
            deid=task.deid,
        )
    return task


def registered_tasks() -> list[str]:
    _register_builtins()
    return sorted(_TASKS)


# ----------------------------------------------------------------------------- readers


def read_conll_path(path: str, *, strict: bool = False) -> list[Document]:
    """A CoNLL file, or every CoNLL file in a directory (sorted)."""
    from gatortron_jax.annotations.formats.conll import read_conll

    if os.path.isfile(path):
        return read_conll(path)
    files = sorted(
        os.path.join(root, f) for root, _, names in os.walk(path) for f in names if f.endswith(_CONLL_EXTENSIONS)
    )
    if not files:
        raise InputError(f"{path}: no CoNLL files ({', '.join(_CONLL_EXTENSIONS)})")
    docs = []
    for f in files:
        docs += read_conll(f, doc_id_prefix=os.path.splitext(os.path.relpath(f, path))[0].replace(os.sep, "/"))
    return docs


# The annotated-note readers take the input policy as an argument (``--strict`` on the CLI sets
# NERDataConfig.strict; annotations/input_policy.py): by default an annotation whose offsets do not match its note is
# dropped with a file:line warning and counted in the reader's summary; strict, it is an error.


def read_brat_path(path: str, *, strict: bool = False) -> list[Document]:
    from gatortron_jax.annotations.formats.brat import read_brat_dir

    return read_brat_dir(path, strict=strict)


def read_i2b2_2010_path(path: str, *, strict: bool = False) -> list[Document]:
    from gatortron_jax.annotations.formats.i2b2_2010 import read_i2b2_2010_dir

    return read_i2b2_2010_dir(path, strict=strict)


def read_i2b2_2012_path(path: str, *, strict: bool = False) -> list[Document]:
    from gatortron_jax.annotations.formats.i2b2_2012 import read_i2b2_2012_dir

    return read_i2b2_2012_dir(path, strict=strict)


def read_i2b2_2014_types(path: str, *, strict: bool = False) -> list[Document]:
    """2014 de-id XML, labelled by TYPE (PATIENT, DOCTOR, HOSPITAL, ...: 23 types). The default
    because surrogates need the type (a HOSPITAL is not replaced like a CITY), the challenge
    scores per type, and every type maps to exactly one category, so category and HIPAA
    scores follow from type predictions but not the reverse."""
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    return read_i2b2_2014_dir(path, strict=strict, label="type")


def read_i2b2_2014_categories(path: str, *, strict: bool = False) -> list[Document]:
    """2014 de-id XML labelled by the 7 categories (fewer, better-populated labels)."""
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    return read_i2b2_2014_dir(path, strict=strict, label="category")


def read_i2b2_2006(path: str, *, strict: bool = False) -> list[Document]:
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2006_path

    return read_i2b2_2006_path(path, strict=strict)


_DEID_BUILTINS = {
    "i2b2_2014_deid": (read_i2b2_2014_types, os.path.join(DEID_SAMPLES_DIR, "i2b2_2014"), "i2b2_2014"),
    "i2b2_2014_deid_category": (read_i2b2_2014_categories, os.path.join(DEID_SAMPLES_DIR, "i2b2_2014"),
                                "i2b2_2014"),
    "i2b2_2014_deid_brat": (read_brat_path, os.path.join(SAMPLES_DIR, "brat_deid"), "brat"),
    "i2b2_2006_deid": (read_i2b2_2006, os.path.join(DEID_SAMPLES_DIR, "i2b2_2006"), "brat"),
    # Public but not shipped: gin/finetune/meddocan.gin binds the <split>/xml layout; data_dir is the user's.
    "meddocan_deid": (read_i2b2_2014_types, None, "i2b2_2014"),
}

_BUILTINS = {
    "i2b2_2010_ner": (read_i2b2_2010_path, "i2b2_2010", "i2b2_2010"),
    "i2b2_2012_ner": (read_i2b2_2012_path, "i2b2_2012", "i2b2_2012"),
    "n2c2_2018_ner": (read_brat_path, "brat_n2c2_2018", "brat"),
    "conll_ner": (read_conll_path, "conll", "brat"),
}


def _register_builtins() -> None:
    for name, (reader, sample, fmt) in _BUILTINS.items():
        if name not in _TASKS:
            register_ner_task(name, reader, os.path.join(SAMPLES_DIR, sample), output_format=fmt)
    for name, (reader, data_dir, fmt) in _DEID_BUILTINS.items():
        if name not in _TASKS:
            register_ner_task(name, reader, data_dir, output_format=fmt, deid=True)


# ----------------------------------------------------------------------------- fingerprints


def documents_fingerprint(docs: list[Document]) -> str:
    """sha256 over ids, texts and annotations: identifies the exact data a model saw."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode())
        h.update(b"\0")
        h.update(d.text.encode())
        for e in sorted(d.entities, key=lambda e: (e.spans, e.type)):
            h.update(f"\0{e.type}:{e.spans}".encode())
        h.update(b"\1")
    return h.hexdigest()
