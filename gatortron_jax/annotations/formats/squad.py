"""SQuAD-style QA JSON (v1.1 and v2.0), the form emrQA (CliniRC/PAR-emrQA conversions) and
BioASQ factoid (BLURB/BioBERT conversions) are distributed in::

    {"version": ..., "data": [{"title": ..., "paragraphs": [{"context": ...,
        "qas": [{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": N}],
                 "is_impossible": false}]}]}]}

``answer_start`` is a character offset into ``context``. Each answer is checked against the
context: exact text at the offset is accepted; otherwise, if the text occurs elsewhere in the
context, the occurrence nearest to ``answer_start`` is used and the repair is counted
(``summary.problems['answer_start repaired']``); if it does not occur at all the question is
bad input. v2 questions with ``"is_impossible": true`` have no answers (``plausible_answers``
are ignored). A question with no answers and no ``is_impossible`` flag is an error unless
``allow_unanswered=True`` (test files of some conversions omit answers).

Errors name the file, the JSON location (``data[i].paragraphs[j].qas[k]``) and the question
id; with ``strict=False`` the question is skipped and listed instead.
"""

from __future__ import annotations

import dataclasses
import json

from gatortron_jax.annotations.formats.task_common import ExampleReadSummary, read_text_file, reject
from gatortron_jax.core.errors import InputError


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclasses.dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]  # empty when unanswerable
    is_impossible: bool
    source: str  # file#data[i].paragraphs[j].qas[k]
    title: str = ""


def _locate(context: str, text: str, start: int) -> int | None:
    if start >= 0 and context[start:start + len(text)] == text:
        return start
    best, i = None, context.find(text)
    while i >= 0:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1)
    return best


def read_squad_json(path: str, *, strict: bool = True, allow_unanswered: bool = False,
                    summary: ExampleReadSummary | None = None) -> list[QAExample]:
    own = summary is None
    summary = summary if summary is not None else ExampleReadSummary()
    summary.format = "squad_json"
    try:
        root = json.loads(read_text_file(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno})") from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise InputError(f"{path}: expected a JSON object with a 'data' list (SQuAD layout)")
    out: list[QAExample] = []
    seen: set[str] = set()
    for i, article in enumerate(root["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise InputError(f"{path}#data[{i}]: missing field 'paragraphs'")
        title = str(article.get("title", ""))
        for j, para in enumerate(paragraphs):
            pwhere = f"{path}#data[{i}].paragraphs[{j}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str) or not isinstance(para.get("qas"), list):
                raise InputError(f"{pwhere}: missing field 'context' or 'qas'")
            context = para["context"]
            for k, qa in enumerate(para["qas"]):
                where = f"{pwhere}.qas[{k}]"
                if not isinstance(qa, dict):
                    reject(strict, summary, where, where, "expected a JSON object")
                    continue
                qid = str(qa.get("id") or where)
                if not isinstance(qa.get("question"), str) or not qa["question"].strip():
                    reject(strict, summary, where, qid, "missing field 'question'")
                    continue
                impossible = bool(qa.get("is_impossible", False))
                raw_answers = qa.get("answers", [])
                if not isinstance(raw_answers, list):
                    reject(strict, summary, where, qid, "'answers' is not a list")
                    continue
                answers, bad = [], None
                if not impossible:
                    for n, a in enumerate(raw_answers):
                        if not isinstance(a, dict) or not isinstance(a.get("text"), str) or not isinstance(a.get("answer_start"), int):
                            bad = f"answers[{n}]: missing field 'text' or integer 'answer_start'"
                            break
                        if not a["text"].strip():
                            bad = f"answers[{n}]: empty answer text"
                            break
                        pos = _locate(context, a["text"], a["answer_start"])
                        if pos is None:
                            bad = f"answers[{n}]: answer span not found in context (answer_start {a['answer_start']})"
                            break
                        if pos != a["answer_start"]:
                            summary.problem("answer_start repaired", f"{where} ({qid}) answers[{n}]")
                        answers.append(Answer(a["text"], pos))
                    if bad is None and not answers and not allow_unanswered:
                        bad = "no answers and not marked is_impossible"
                if bad:
                    reject(strict, summary, where, qid, bad)
                    continue
                if qid in seen:
                    raise InputError(f"{where}: duplicate question id {qid!r}")
                seen.add(qid)
                out.append(QAExample(id=qid, question=qa["question"], context=context, answers=tuple(answers),
                                     is_impossible=impossible, source=where, title=title))
                summary.labels["unanswerable" if impossible else "answerable"] += 1
    summary.examples += len(out)
    summary.documents += sum(len(a.get("paragraphs", [])) for a in root["data"] if isinstance(a, dict))
    if not out:
        raise InputError(f"{path}: no questions found")
    if own:
        summary.log()
    return out
