"""Span QA (emrQA, BioASQ factoid; SQuAD-style JSON) for the fine-tuning loop.

``[CLS] question [SEP] context-window [SEP]``; long contexts are cut into windows every
``doc_stride`` tokens (``text.windows.stride_windows``). A window that does not hold the whole
gold answer, and an unanswerable question, is trained to point at [CLS] (SQuAD v2 / BERT).
Decoding: n-best valid spans over all windows of a question (``qa_metrics.n_best_spans``, max
answer length), the null score for v2 data (any unanswerable question in the train split), then
SQuAD v1.1 exact match / token F1 (``qa_metrics.squad_scores``, percent). Questions longer than
``max_query_length`` and answers no token covers are counted, never silent.

config.json section ``sequence_task`` with kind ``qa`` (and ``with_null``).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from gatortron_jax.evaluation.qa_metrics import n_best_spans, null_score, select_answer, squad_scores
from gatortron_jax.finetuning import task_registry
from gatortron_jax.finetuning.adapters.base import Adapter, Prepared
from gatortron_jax.finetuning.adapters.sequence import SECTION, read_splits, task_data_info, task_section
from gatortron_jax.finetuning.config import TaskDataConfig
from gatortron_jax.models import span_qa
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.text.offsets import OffsetTokenizer
from gatortron_jax.text.windows import stride_windows

log = logging.getLogger("gatortron_jax")


def encode_qa(examples: Sequence, tokenizer: OffsetTokenizer, max_length: int, data,
              where: str = "") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
    """(features, row → example index, row offsets [N, L, 2] (-1 off-context), stats)."""
    rows_feats, rows_ex, rows_off = [], [], []
    stats = {"questions": len(examples), "windows": 0, "question_truncated": 0, "answer_not_tokenizable": 0,
             "answer_outside_all_windows": 0, "answer_not_tokenizable_ids": []}
    for qi, ex in enumerate(examples):
        q_ids = tokenizer(ex.question)[0]
        if len(q_ids) > data.max_query_length:
            stats["question_truncated"] += 1
            q_ids = q_ids[: data.max_query_length]
        c_ids, c_starts, c_ends = tokenizer(ex.context)
        budget = max_length - len(q_ids) - 3
        wins = stride_windows(len(c_ids), budget, data.doc_stride) if len(c_ids) else [(0, 0)]
        span = None
        if ex.answers:
            a = ex.answers[0]
            toks = np.nonzero((c_ends > a.start) & (c_starts < a.end))[0]
            if len(toks):
                span = (int(toks[0]), int(toks[-1]))
            else:
                stats["answer_not_tokenizable"] += 1
                stats["answer_not_tokenizable_ids"].append(ex.id)
        found = False
        for w0, w1 in wins:
            ids = np.full(max_length, tokenizer.pad_id, np.int32)
            tt = np.zeros(max_length, np.int32)
            seg = np.zeros(max_length, np.int32)
            cmask = np.zeros(max_length, bool)
            off = np.full((max_length, 2), -1, np.int64)
            row = [tokenizer.cls_id, *q_ids.tolist(), tokenizer.sep_id]
            c0 = len(row)
            row += [*c_ids[w0:w1].tolist(), tokenizer.sep_id]
            ids[: len(row)] = row
            tt[c0: len(row)] = 1
            seg[: len(row)] = 1
            cmask[0] = True
            cmask[c0: c0 + w1 - w0] = True
            off[c0: c0 + w1 - w0, 0] = c_starts[w0:w1]
            off[c0: c0 + w1 - w0, 1] = c_ends[w0:w1]
            sp = ep = 0
            if span is not None and w0 <= span[0] and span[1] < w1:
                sp, ep, found = c0 + span[0] - w0, c0 + span[1] - w0, True
            rows_feats.append((ids, tt, seg, cmask, sp, ep))
            rows_ex.append(qi)
            rows_off.append(off)
        if span is not None and not found:
            stats["answer_outside_all_windows"] += 1
    stats["windows"] = len(rows_ex)
    feats = {
        "input_ids": np.stack([r[0] for r in rows_feats]), "token_type_ids": np.stack([r[1] for r in rows_feats]),
        "segment_ids": np.stack([r[2] for r in rows_feats]), "context_mask": np.stack([r[3] for r in rows_feats]),
        "start_positions": np.asarray([r[4] for r in rows_feats], np.int32),
        "end_positions": np.asarray([r[5] for r in rows_feats], np.int32),
        "weights": np.ones(len(rows_feats), np.float32),
    }
    if stats["question_truncated"] or stats["answer_not_tokenizable"] or stats["answer_outside_all_windows"]:
        log.warning("%s: %s", where or "qa", {k: v for k, v in stats.items() if k != "answer_not_tokenizable_ids"})
    return feats, np.asarray(rows_ex), np.stack(rows_off), stats


def predict_logits(model, params, batch):
    """[B, L, 2] start/end logits (stacked so row batches concatenate)."""
    def fn(module, batch):
        s, e = module(batch["input_ids"], batch.get("token_type_ids"), None, batch.get("segment_ids"),
                      batch.get("context_mask"), deterministic=True)
        return jnp.stack([s, e], axis=-1)

    return nn.apply(fn, model)({"params": params}, batch)


def decode(examples: Sequence, rows_ex: np.ndarray, offsets: np.ndarray, logits: np.ndarray, data,
           with_null: bool) -> dict[str, str]:
    out = {}
    for qi, ex in enumerate(examples):
        r = np.nonzero(rows_ex == qi)[0]
        s, e = logits[r, :, 0], logits[r, :, 1]
        cands = n_best_spans(s, e, offsets[r], data.n_best, data.max_answer_length)
        out[ex.id] = select_answer(ex.context, cands, null_score(s, e) if with_null else None, data.null_threshold)
    return out


def score(examples: Sequence, answers: dict[str, str]) -> dict[str, Any]:
    gold = {ex.id: [a.text for a in ex.answers] for ex in examples}
    sc = squad_scores(gold, answers)
    return {"metric": "f1", "value": sc["f1"], **sc}


class SpanQAAdapter(Adapter):
    section = SECTION
    data_config_name = "TaskDataConfig"

    def prepare(self, data: TaskDataConfig, train, tokenizer, enc_config: EncoderConfig) -> Prepared:
        task = task_registry.get_task(data.task)
        train_set, dev_set, train_ex, dev_ex = read_splits(task, data)
        with_null = any(e.is_impossible for e in train_set.examples)
        train_feats, _, _, train_enc = encode_qa(train_ex, tokenizer, data.max_length, data, f"{task.name}/train")
        dev_feats, dev_rows, dev_off, dev_enc = encode_qa(dev_ex, tokenizer, data.max_length, data, f"{task.name}/dev")
        log.info("task %s (%s, %s): %d train / %d dev questions → %d / %d windows", task.name, task.kind,
                 task.metric, len(train_ex), len(dev_ex), train_enc["windows"], dev_enc["windows"])
        return Prepared(train_feats, dev_feats, (dev_ex, dev_rows, dev_off, data, with_null),
                        task_section(task, data, None, None, with_null),
                        task_data_info(task, data, train_set, dev_set, train_ex, dev_ex, train_enc, dev_enc))

    def build_model(self, enc_config: EncoderConfig, section: Mapping[str, Any], train=None):
        return span_qa.EncoderForQuestionAnswering(enc_config)

    def loss_of(self, model, params, batch, rng):
        return span_qa.forward_loss(model, params, batch, rng)

    def predict_of(self, model, params, batch):
        return predict_logits(model, params, batch)

    def score(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]:
        dev_ex, dev_rows, dev_off, data, with_null = prepared.dev
        return score(dev_ex, decode(dev_ex, dev_rows, dev_off, outputs, data, with_null))

    def describe_model(self, prepared: Prepared, train) -> str:
        return "span QA, start/end logits"
