"""An operating point for recall: per-type probability thresholds chosen on dev, stored in the model dir.

Why: a release is judged by what leaks, so de-identification is tuned for recall, not F1 (the
Mayo/nference ensemble runs at recall 0.992). Argmax decoding leaves a token ``O`` whenever
``p(O)`` is the largest probability, even when ``p(O)`` is 0.6 and 0.4 of the mass says PHI.

Rule (the same numpy/jax code at selection and at inference): a token the model labels PHI
keeps its label; a token it labels ``O`` becomes PHI of its most probable PHI type ``t`` (mass
``p(B-t) + p(I-t)`` [+ ``E-``/``S-``]) when that mass reaches ``threshold[t]``; it is added as
``I-t`` and decoded with the repairing decoder, so it extends a neighbouring ``t`` entity or
starts one. Its score is that mass. Thresholds only *add* PHI: argmax is the point with every
threshold at :data:`NEVER`, and lowering a threshold can only raise recall.

Selection (:func:`choose_operating_point`): dev windows run through the model once; for each
grid value every type's threshold is set to it and the dev notes decoded (plus the pattern
spans, when a recipe is given); ``threshold[t]`` is the *highest* grid value at which the gold
spans of type ``t`` reach ``target_recall`` (argmax when it already does), else the highest grid
value that gives its best recall. Types interact (a token is added as its most probable type,
which may be another type than the span it covers), so the combined point is measured again; while a
type that reached the target in the sweep at ``g`` falls below it there, every threshold is capped
at the next grid value down from the highest (at ``g`` the sweep's condition holds again); every
type still below the target is in ``unreached``. A gold span counts as recalled when every letter
and digit in it is covered by a predicted span of any type: nothing of it would survive a
mask (the leakage report's criterion). Every type reaching the target makes the micro recall
reach it too. The result, with the dev numbers it was chosen on, is ``config.json``'s
``operating_point`` section.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Mapping, Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document
from gatortron_jax.annotations.patterns import PatternMatcher, PatternRecipe, Span
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.finetuning import windowing
from gatortron_jax.models.model_dir import read_model_info, write_config

log = logging.getLogger("gatortron_jax")

NEVER = 2.0  # a threshold no probability reaches: that type is decoded by argmax alone
GRID = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002, 0.001)
SECTION, PATTERNS_SECTION = "operating_point", "patterns"
_ALNUM = re.compile(r"\w", re.UNICODE)


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """Per-type thresholds (a type absent from ``thresholds`` is decoded by argmax alone)."""

    thresholds: Mapping[str, float]
    target_recall: float
    with_patterns: bool = False  # chosen with the pattern recognizers beside the model
    dev: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # what it was chosen on and measured

    def __post_init__(self) -> None:
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError(f"--target_recall {self.target_recall}: must be in (0, 1]")
        bad = {t: v for t, v in self.thresholds.items() if not 0.0 < float(v) <= NEVER}
        if bad:
            raise ConfigError(f"operating point: thresholds must be in (0, {NEVER}]: {bad}")

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": {t: float(v) for t, v in sorted(self.thresholds.items())},
                "target_recall": self.target_recall, "with_patterns": self.with_patterns, "dev": dict(self.dev)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = SECTION) -> "OperatingPoint":
        try:
            return cls({str(t): float(v) for t, v in d["thresholds"].items()}, float(d["target_recall"]),
                       bool(d.get("with_patterns", False)), dict(d.get("dev", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{where}: not an operating point ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------- the rule


@dataclasses.dataclass(frozen=True)
class LabelTables:
    """A label list's PHI types: label → type matrix ``[K, T]`` (O → none), each type's ``I-``
    label, and the ``O`` label."""

    types: tuple[str, ...]
    type_matrix: np.ndarray  # [K, T] float32
    i_label: np.ndarray  # [T] int32
    o_id: int

    @classmethod
    def of(cls, labels: Sequence[str]) -> "LabelTables":
        if "O" not in labels:
            raise ConfigError("operating point: the label list has no 'O' label")
        types = tuple(sorted({lab[2:] for lab in labels if lab[:2] in ("B-", "I-", "E-", "S-")}))
        matrix = np.zeros((len(labels), len(types)), np.float32)
        i_label = np.zeros(len(types), np.int32)
        for k, lab in enumerate(labels):
            if lab[:2] in ("B-", "I-", "E-", "S-"):
                matrix[k, types.index(lab[2:])] = 1.0
        for t, typ in enumerate(types):
            if f"I-{typ}" not in labels:
                raise ConfigError(f"operating point: label list has no I-{typ} (BIO/BIOES schemes only)")
            i_label[t] = labels.index(f"I-{typ}")
        return cls(types, matrix, i_label, labels.index("O"))

    def label_thresholds(self, thresholds: Mapping[str, float], n_labels: int) -> np.ndarray:
        """``[K]``: each ``I-`` label's type threshold (NEVER for types without one)."""
        unknown = sorted(set(thresholds) - set(self.types))
        if unknown:
            raise ConfigError(f"operating point: types {unknown} are not labels of this model")
        out = np.full(n_labels, NEVER, np.float32)
        for t, typ in enumerate(self.types):
            out[self.i_label[t]] = thresholds.get(typ, NEVER)
        return out


def phi_candidates(xp, marginals, tables: LabelTables):
    """Per token: the ``I-`` label of its most probable PHI type and that type's mass (numpy or jax)."""
    mass = marginals @ xp.asarray(tables.type_matrix)
    best = xp.argmax(mass, axis=-1)
    return xp.asarray(tables.i_label)[best], xp.max(mass, axis=-1)


def apply_thresholds(xp, labels, scores, best_label, best_mass, label_thresholds, o_id: int):
    """The rule of the module docstring: (labels, scores) with PHI added where ``O`` was argmax."""
    best_label = best_label.astype(labels.dtype)
    added = (labels == o_id) & (best_mass >= xp.asarray(label_thresholds)[best_label])
    return xp.where(added, best_label, labels), xp.where(added, best_mass, scores)


# ----------------------------------------------------------------------------- model dir


def _update_section(model_dir: str, name: str, value: dict[str, Any] | None) -> None:
    info = read_model_info(model_dir)
    if value is None:
        info.pop(name, None)
    else:
        info[name] = value
    write_config(model_dir, info)


def save_operating_point(model_dir: str, op: OperatingPoint) -> None:
    _update_section(model_dir, SECTION, op.to_dict())


def load_operating_point(model_dir: str, info: Mapping[str, Any] | None = None) -> OperatingPoint | None:
    """The stored operating point, or None when the model dir has none (argmax)."""
    info = read_model_info(model_dir) if info is None else info
    d = info.get(SECTION)
    return None if d is None else OperatingPoint.from_dict(d, f"{model_dir}/config.json: {SECTION}")


def save_patterns(model_dir: str, recipe: PatternRecipe | None) -> None:
    """Store ``recipe`` (None: remove the stored one: the model alone from then on)."""
    _update_section(model_dir, PATTERNS_SECTION, None if recipe is None else recipe.to_dict())


def load_patterns(model_dir: str, info: Mapping[str, Any] | None = None) -> PatternRecipe | None:
    info = read_model_info(model_dir) if info is None else info
    d = info.get(PATTERNS_SECTION)
    return None if d is None else PatternRecipe.from_dict(d, f"{model_dir}/config.json: {PATTERNS_SECTION}")


# ----------------------------------------------------------------------------- selection


def coverage(text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """``[len(text) + 1]`` bool: characters under any of ``spans``."""
    mask = np.zeros(len(text) + 1, bool)
    for s, e in spans:
        mask[s:e] = True
    return mask


def recalled(text: str, cov: np.ndarray, start: int, end: int) -> bool:
    """The criterion: every letter and digit of ``text[start:end]`` is covered (``cov``: :func:`coverage`)."""
    need = [start + m.start() for m in _ALNUM.finditer(text[start:end])]
    return bool(cov[need].all()) if need else True


def span_recall(gold: Sequence[Document], predicted: Sequence[Sequence[tuple[int, int]]]) -> dict[str, Any]:
    """Binary (any-type) recall of gold spans under the leak-free criterion, per gold type and
    micro, and precision (predicted spans overlapping a gold span)."""
    hit: dict[str, int] = {}
    total: dict[str, int] = {}
    tp_pred = n_pred = 0
    for doc, spans in zip(gold, predicted):
        cov = coverage(doc.text, spans)
        gold_mask = coverage(doc.text, [s for e in doc.entities for s in e.spans])
        for e in doc.entities:
            for s, t in e.spans:
                total[e.type] = total.get(e.type, 0) + 1
                hit[e.type] = hit.get(e.type, 0) + recalled(doc.text, cov, s, t)
        n_pred += len(spans)
        tp_pred += sum(bool(gold_mask[s:e].any()) for s, e in spans)
    n_gold = sum(total.values())
    return {"recall": sum(hit.values()) / n_gold if n_gold else 1.0,
            "precision": tp_pred / n_pred if n_pred else 1.0, "gold": n_gold, "predicted": n_pred,
            "missed": n_gold - sum(hit.values()),
            "by_type": {t: {"recall": hit[t] / total[t], "gold": total[t], "missed": total[t] - hit[t]}
                        for t in sorted(total)}}


@dataclasses.dataclass
class DevRun:
    """Gold dev notes run through the model once: the channels every threshold setting is
    decoded from (``ScoringTagger(..., candidates=True).predict_channels``)."""

    gold: Sequence[Document]
    encoded: list
    rows: list
    channels: np.ndarray  # [R, L, 4]: label, score, best PHI type's I- label, its mass
    labels: Sequence[str]
    tables: LabelTables

    @classmethod
    def of(cls, tagger, gold: Sequence[Document]) -> "DevRun":
        if not gold or not any(d.entities for d in gold):
            raise InputError("operating point: the dev notes carry no gold PHI to choose thresholds on")
        plain = [Document(d.id, d.text, [], [], d.source) for d in gold]
        encoded, _ = windowing.encode_documents(plain, tagger.tokenizer, tagger.max_length, tagger.overlap,
                                                first_subword=tagger.first_subword)
        features, rows = windowing.window_features(encoded, tagger.tokenizer, tagger.max_length)
        return cls(gold, encoded, rows, tagger.predict_channels(features), list(tagger.labels),
                   LabelTables.of(tagger.labels))

    def spans(self, thresholds: Mapping[str, float] | None, matcher: PatternMatcher | None) -> list[list[Span]]:
        """Each note's PHI spans at ``thresholds`` (None: argmax, strict decoding), merged with the patterns."""
        lab = self.channels[..., 0].astype(np.int64)
        if thresholds is not None:
            lab, _ = apply_thresholds(np, lab, self.channels[..., 1], self.channels[..., 2].astype(np.int64),
                                      self.channels[..., 3], self.tables.label_thresholds(thresholds, len(self.labels)),
                                      self.tables.o_id)
        docs = windowing.predictions_to_documents(self.encoded, self.rows, lab, self.labels, repair=thresholds is not None)
        out = []
        for d in docs:
            found = [Span(e.start, e.end, e.type, "model") for e in d.entities]
            out.append(matcher.merge(d.text, found) if matcher is not None else found)
        return out

    def measure(self, thresholds: Mapping[str, float] | None, matcher: PatternMatcher | None) -> dict[str, Any]:
        return span_recall(self.gold, [[(s.start, s.end) for s in doc] for doc in self.spans(thresholds, matcher)])


def choose_operating_point(dev: DevRun, target_recall: float, *, patterns: PatternRecipe | None = None,
                           grid: Sequence[float] = GRID) -> OperatingPoint:
    """Thresholds per type for ``target_recall`` on the gold dev notes of ``dev``."""
    if not 0.0 < target_recall <= 1.0:
        raise ConfigError(f"--target_recall {target_recall}: must be in (0, 1]")
    matcher = PatternMatcher(patterns) if patterns is not None else None
    types = dev.tables.types
    sweep = [(NEVER, dev.measure(None, matcher))] + [(g, dev.measure({t: g for t in types}, matcher))
                                                     for g in sorted(grid, reverse=True)]
    thresholds, unreached = {}, []
    for typ in sorted({e.type for d in dev.gold for e in d.entities}):
        if typ not in types:
            unreached.append(typ)  # the model has no label for it: only patterns can find it
            continue
        recall_at = [(g, m["by_type"][typ]["recall"]) for g, m in sweep]
        ok = [g for g, r in recall_at if r >= target_recall]
        if not ok:  # the highest threshold that reaches this type's best recall
            best = max(r for _, r in recall_at)
            ok = [g for g, r in recall_at if r == best]
            unreached.append(typ)
        thresholds[typ] = max(ok)
    thresholds = {t: v for t, v in thresholds.items() if v < NEVER}
    chosen = dev.measure(thresholds, matcher)
    # Types interact: a token is added as its *most probable* PHI type, so a span of type A may be
    # covered in the uniform sweep by tokens whose best type is B; with B's own (higher) threshold
    # that cover is gone. A type that reached the target in the sweep at g but falls below it at
    # the combined point: every threshold is capped at the next grid value down, from the highest
    # threshold towards g (where the sweep's condition holds again), stopping as soon as no
    # such type is left; types that never reached the target are not chased (``unreached``).
    for cap in sorted(grid, reverse=True):
        fallen = [t for t in thresholds if t not in unreached and chosen["by_type"][t]["recall"] < target_recall]
        if not fallen or cap < min(thresholds[t] for t in fallen):
            break
        trial = {t: v for t, v in ((t, min(thresholds.get(t, NEVER), cap)) for t in types) if v < NEVER}
        if trial == thresholds:
            continue
        measured = dev.measure(trial, matcher)
        if measured["recall"] >= chosen["recall"]:
            thresholds, chosen = trial, measured
    # every type below the target at the chosen point (a type the model has no label for may be
    # covered by others' spans)
    unreached = sorted(t for t, m in chosen["by_type"].items() if m["recall"] < target_recall)
    info = {"criterion": "gold span recalled when every letter/digit of it is under a predicted span (any type)",
            "notes": len(dev.gold), "argmax_model": _brief(dev.measure(None, None)), "argmax": _brief(sweep[0][1]),
            "chosen": _brief(chosen), "by_type": chosen["by_type"], "unreached": unreached, "grid": list(grid)}
    log.info("operating point for recall %.3f: dev recall %.4f (argmax %.4f), precision %.4f (argmax %.4f)%s",
             target_recall, chosen["recall"], sweep[0][1]["recall"], chosen["precision"], sweep[0][1]["precision"],
             f"; types below the target: {unreached}" if unreached else "")
    return OperatingPoint(thresholds, target_recall, patterns is not None, info)


def _brief(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("recall", "precision", "gold", "predicted", "missed")}


def calibrate(tagger, gold: Sequence[Document], target_recall: float,
              patterns: PatternRecipe | None = None, *,
              dev: DevRun | None = None) -> tuple[OperatingPoint, dict[str, dict[str, Any]]]:
    """The operating point for ``target_recall`` (with ``patterns`` when given) and the table
    ``evaluate`` reports: binary span recall/precision at argmax and at the operating point,
    the model alone and with the patterns (the model-alone point is chosen on its own)."""
    dev = DevRun.of(tagger, gold) if dev is None else dev  # ``dev``: the notes already run (evaluate reuses it)
    alone = choose_operating_point(dev, target_recall)
    op = choose_operating_point(dev, target_recall, patterns=patterns) if patterns is not None else alone
    table = {"argmax, model": alone.dev["argmax_model"], "operating point, model": alone.dev["chosen"]}
    if patterns is not None:
        table.update({"argmax, model + patterns": op.dev["argmax"], "operating point, model + patterns": op.dev["chosen"]})
    return op, table
