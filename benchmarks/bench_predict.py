"""Throughput of clinical NER ``predict`` on long notes, and where its time goes.

    python benchmarks/bench_predict.py           # 64 notes of 5–20k characters, ~40 s on 2 cores
    python benchmarks/bench_predict.py --quick   # 6 short-ish notes (smoke test)
    python benchmarks/bench_predict.py --crf --batch_size 16 --max_length 128 --overlap 32

Real notes run to thousands of tokens, far past the model's window, so ``gatortron-jax predict``
tokenises each note with character offsets, cuts it into overlapping windows (ending at sentence
boundaries where it can), batches the windows through the jitted tagger and merges the window
predictions back into character-offset entities. This benchmark runs exactly that path —
``ner_predict.read_raw_notes`` → ``NERPredictor.predict`` → ``ner_predict.write_predictions``,
as ``cmd_predict`` does — on a model dir written the way fine-tuning writes one (``config.json``
+ ``vocab/`` + orbax params; here a randomly initialised tiny tagger, ``gin/models/tiny.gin``
shapes, i2b2 2010 labels, the sample SentencePiece vocabulary), over long synthetic notes made by
concatenating notes from :mod:`gatortron_jax.sample_data.corpus` up to 5–20k characters each.

Reported (median over ``--repeats`` timed passes after a warm-up pass that compiles):

* notes/s, characters/s, unique note tokens/s (each token once) and window tokens/s (what the
  model actually runs, [CLS]/[SEP] and the overlap included; their ratio is the overlap cost);
* the share of predict time in each phase, timed by wrapping the library functions the real
  path calls (so the path itself is unchanged): SentencePiece tokenisation with offsets, window
  planning, window feature stacking, batch assembly + host→device put, the jitted forward
  (blocked until ready), merging window predictions per token, and tags → character entities;
  plus reading the notes and writing brat output, which the CLI also does.

Checks (the run fails if one does not hold): as many notes come back as went in, in order, with
the same ids and text; every entity span lies inside its note and carries that note's text; one
``.ann`` file is written per note; every note token is owned by exactly one window.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time

import common

common.quiet_tensorflow()

LABEL_TYPES = ("problem", "test", "treatment")  # i2b2 2010 concepts


def make_long_notes(n: int, min_chars: int, max_chars: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (id, text) notes, each synthetic notes joined by a blank line to a random 5–20k chars."""
    from gatortron_jax.sample_data import corpus as synthetic

    rng = random.Random(seed)
    length_rng = random.Random(seed + 1)
    notes, k = [], 0
    for i in range(n):
        target = length_rng.randint(min_chars, max_chars)
        parts, size = [], -2
        while size < target:  # size = len("\n\n".join(parts))
            parts.append(synthetic.generate_note(rng, k))
            size += len(parts[-1]) + 2
            k += 1
        text = "\n\n".join(parts)
        if len(text) > max_chars:  # whole notes overshoot: cut at the last line break that fits
            cut = text.rfind("\n", min_chars, max_chars)
            text = text[:cut] if cut > 0 else text[:max_chars]
        notes.append((f"long_{i:04d}", text))
    return notes


def write_model_dir(model_dir: str, max_length: int, overlap: int, use_crf: bool, seed: int = 0,
                    o_bias: float = 0.0) -> None:
    """A model dir as ``finetune_ner`` writes it, with randomly initialised params (0 fine-tuning steps).

    ``o_bias`` is added to the classifier bias of label ``O``: 0 leaves the random tagger as is
    (it tags almost every token); a few units makes it tag sparsely, like a trained model.
    """
    import jax
    import optax

    from gatortron_jax.cli import gin_config

    from gatortron_jax.core import partitioning
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.text.vocab import load_vocabulary
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.token_classification import EncoderForTokenClassification
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.models.model_dir import copy_vocab
    from gatortron_jax.core.train_state import create_train_state

    gin_config.parse(["gin/models/tiny.gin"], [])
    enc = gin_config.build(EncoderConfig)
    if max_length > enc.max_position_embeddings:
        raise SystemExit(f"--max_length {max_length} > the tiny model's {enc.max_position_embeddings} positions")
    vocab_file = os.path.join(common.REPO_ROOT, "data/sample_vocab/spm.model")
    vocab = load_vocabulary(vocab_file)
    labels = windowing.label_list(LABEL_TYPES, "BIO")
    model = EncoderForTokenClassification(enc, len(labels), use_crf=use_crf)
    partitioner = partitioning.Partitioner(partitioning.create_mesh(-1, 1, 1))
    state, _ = create_train_state(model, optax.identity(), partitioner, jax.random.key(seed))
    params = state.params
    if o_bias:
        bias = params["classifier"]["bias"]
        params = {**params, "classifier": {**params["classifier"], "bias": bias.at[0].add(o_bias)}}
    os.makedirs(model_dir, exist_ok=True)
    config = {
        "model_config": enc.to_dict(),
        "vocab": {"path": copy_vocab(model_dir, vocab_file), "size": vocab.vocab_size,
                  "lowercase": getattr(vocab, "lowercase", None)},
        "ner": {"labels": labels, "label_scheme": "BIO", "use_crf": use_crf, "max_length": max_length,
                "overlap": overlap, "task": "i2b2_2010_ner", "output_format": "i2b2_2010"},
        "finetune": {"note": "bench_predict.py: random initialisation, 0 fine-tuning steps"},
    }
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    ckpt = Checkpointer(model_dir, max_to_keep=1)
    ckpt.save(0, {"params": params}, {"epoch": 0}, force=True)
    ckpt.close()


class PhaseTimer:
    """Accumulates wall time per phase by wrapping functions the real predict path calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, fn, block: bool = False):
        import jax

        def timed(*args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            if block:
                out = jax.block_until_ready(out)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
            self.calls[name] = self.calls.get(name, 0) + 1
            return out

        return timed


class _TimedTokenizer:
    """Stands in for ``OffsetTokenizer`` (same attributes), timing each call."""

    def __init__(self, inner, timer: PhaseTimer) -> None:
        self._inner = inner
        self._call = timer.wrap("tokenise", inner.__call__)

    def __call__(self, text):
        return self._call(text)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@contextlib.contextmanager
def instrumented(predictor, timer: PhaseTimer):
    """Patch timing wrappers into the module globals the predict path looks up; restore after."""
    from gatortron_jax.core import batching
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.inference import ner_predict

    patches = [(windowing, name) for name in ("encode_documents", "plan_windows", "window_features",
                                              "predictions_to_documents", "merge_window_predictions",
                                              "tags_to_entities")]
    patches += [(batching, "pad_rows"), (ner_predict, "predict_encoded")]
    saved = [(mod, name, getattr(mod, name)) for mod, name in patches]
    saved_tok, saved_fwd = predictor.tokenizer, predictor._predict
    try:
        for mod, name, fn in saved:
            setattr(mod, name, timer.wrap(name, fn))
        predictor.tokenizer = _TimedTokenizer(saved_tok, timer)
        predictor._predict = timer.wrap("forward", saved_fwd, block=True)
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
        predictor.tokenizer, predictor._predict = saved_tok, saved_fwd


def check_outputs(notes_in, docs_out, written: list[str]) -> dict:
    """The benchmark must not be able to drop or mangle a note silently."""
    problems = []
    if len(docs_out) != len(notes_in):
        problems.append(f"{len(notes_in)} notes in, {len(docs_out)} out")
    for a, b in zip(notes_in, docs_out):
        if a.id != b.id or a.text != b.text:
            problems.append(f"note {a.id!r} came back as {b.id!r} (text equal: {a.text == b.text})")
            break
    entities = 0
    for d in docs_out:
        for e in d.entities:
            entities += 1
            for s, t in e.spans:
                if not 0 <= s < t <= len(d.text) or (e.text and e.text != d.text[s:t]):
                    problems.append(f"note {d.id}: entity {e.id} span ({s}, {t}) is outside or mislabelled")
                    break
    anns = [p for p in written if p.endswith(".ann")]
    if len(anns) != len(notes_in):
        problems.append(f"{len(anns)} .ann files written for {len(notes_in)} notes")
    if problems:
        raise AssertionError("predict output check failed: " + "; ".join(problems[:5]))
    return {"notes_in": len(notes_in), "notes_out": len(docs_out), "ann_files": len(anns), "entities": entities}


def run(args: argparse.Namespace) -> dict:
    import jax

    from gatortron_jax.core import batching
    from gatortron_jax.finetuning import windowing
    from gatortron_jax.inference import ner_predict

    work = tempfile.mkdtemp(prefix="bench_predict_")
    try:
        t = time.perf_counter()
        notes = make_long_notes(args.notes, args.min_chars, args.max_chars, seed=args.seed)
        notes_dir = os.path.join(work, "notes")
        os.makedirs(notes_dir)
        for doc_id, text in notes:
            with open(os.path.join(notes_dir, doc_id + ".txt"), "w", encoding="utf-8", newline="") as f:
                f.write(text)
        gen_s = time.perf_counter() - t

        t = time.perf_counter()
        model_dir = os.path.join(work, "model")
        write_model_dir(model_dir, args.max_length, args.overlap, args.crf, seed=args.seed, o_bias=args.o_bias)
        model_dir_s = time.perf_counter() - t

        t = time.perf_counter()
        predictor = ner_predict.NERPredictor(model_dir, batch_size=args.batch_size)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        warm_docs = ner_predict.read_raw_notes(notes_dir)[:1]
        predictor.predict(warm_docs)  # compiles (every batch is padded to one shape)
        compile_s = time.perf_counter() - t

        # Sizes, from the library's own encoding of the notes (not timed).
        docs = ner_predict.read_raw_notes(notes_dir)
        encoded, _ = windowing.encode_documents(docs, predictor.tokenizer, predictor.max_length, predictor.overlap)
        unique_tokens = sum(len(e.ids) for e in encoded)
        windows = sum(len(e.windows) for e in encoded)
        window_tokens = sum(w.end - w.start + 2 for e in encoded for w in e.windows)
        for e in encoded:  # every token owned by exactly one window (raises otherwise)
            windowing.token_owners(e.windows, len(e.ids))
        batches = -(-windows // predictor.batch_size)
        padded_positions = batches * predictor.batch_size * predictor.max_length
        chars = sum(len(d.text) for d in docs)
        del encoded

        passes = []
        for r in range(args.repeats):
            out_dir = os.path.join(work, f"out{r}")
            timer = PhaseTimer()
            t0 = time.perf_counter()
            notes_in = ner_predict.read_raw_notes(notes_dir)
            t1 = time.perf_counter()
            with instrumented(predictor, timer):
                docs_out = predictor.predict(notes_in)
            t2 = time.perf_counter()
            written = ner_predict.write_predictions(docs_out, out_dir, "brat")
            t3 = time.perf_counter()
            checks = check_outputs(notes_in, docs_out, written)
            passes.append(dict(read_s=t1 - t0, predict_s=t2 - t1, write_s=t3 - t2, total_s=t3 - t0,
                               phases=dict(timer.seconds), calls=dict(timer.calls), **checks))
            shutil.rmtree(out_dir, ignore_errors=True)
        if passes[0]["calls"].get("forward") != batches:
            raise AssertionError(f"expected {batches} forward batches, timed {passes[0]['calls'].get('forward')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for p in passes:  # exclusive phase times (the wrapped functions nest)
        g = lambda key: p["phases"].get(key, 0.0)  # noqa: E731
        p["breakdown"] = {
            "tokenise": g("tokenise"),
            "plan_windows": g("plan_windows"),
            "encode_other": g("encode_documents") - g("tokenise") - g("plan_windows"),
            "window_features": g("window_features"),
            "forward": g("forward"),
            "batching": g("predict_encoded") - g("window_features") - g("forward") - g("predictions_to_documents"),
            "merge": g("merge_window_predictions"),
            "to_entities": g("tags_to_entities"),
            "decode_other": g("predictions_to_documents") - g("merge_window_predictions") - g("tags_to_entities"),
        }
        p["breakdown"]["predict_other"] = p["predict_s"] - sum(p["breakdown"].values())
    # The median pass by predict time is reported whole, so its phases add up to its total.
    median_pass = sorted(passes, key=lambda p: p["predict_s"])[(len(passes) - 1) // 2]
    predict_s, breakdown = median_pass["predict_s"], median_pass["breakdown"]
    med = lambda key: common.median(p[key] for p in passes)  # noqa: E731
    total_s = med("total_s")
    groups = {
        "tokenise_window": breakdown["tokenise"] + breakdown["plan_windows"] + breakdown["encode_other"]
        + breakdown["window_features"],
        "forward": breakdown["forward"] + breakdown["batching"],
        "decode": breakdown["merge"] + breakdown["to_entities"] + breakdown["decode_other"],
    }
    return dict(
        config=dict(notes=args.notes, min_chars=args.min_chars, max_chars=args.max_chars,
                    batch_size=predictor.batch_size, max_length=predictor.max_length, overlap=predictor.overlap,
                    crf=args.crf, labels=len(predictor.labels), repeats=args.repeats, o_bias=args.o_bias,
                    hidden=predictor.model.config.hidden_size, layers=predictor.model.config.num_layers,
                    devices=jax.device_count()),
        sizes=dict(notes=len(docs), chars=chars, unique_tokens=unique_tokens, windows=windows,
                   window_tokens=window_tokens, batches=batches, padded_positions=padded_positions,
                   chars_per_note_min=min(len(d.text) for d in docs), chars_per_note_max=max(len(d.text) for d in docs),
                   tokens_per_note_mean=unique_tokens / len(docs)),
        setup=dict(generate_notes_s=gen_s, write_model_dir_s=model_dir_s, load_s=load_s, first_predict_s=compile_s),
        passes=passes, predict_s=predict_s, total_s=total_s, read_s=med("read_s"), write_s=med("write_s"),
        breakdown=breakdown, groups=groups,
        rates=dict(notes_per_s=len(docs) / predict_s, chars_per_s=chars / predict_s,
                   unique_tok_per_s=unique_tokens / predict_s, window_tok_per_s=window_tokens / predict_s,
                   windows_per_s=windows / predict_s,
                   forward_window_tok_per_s=window_tokens / breakdown["forward"],
                   forward_padded_pos_per_s=padded_positions / breakdown["forward"],
                   end_to_end_notes_per_s=len(docs) / total_s),
        checks=dict(notes_in=passes[0]["notes_in"], notes_out=passes[0]["notes_out"],
                    ann_files=passes[0]["ann_files"], entities=passes[0]["entities"],
                    all_passes_equal_counts=len({(p["notes_out"], p["entities"]) for p in passes}) == 1),
        peak_rss_mb=common.peak_rss_mb(),
    )


PHASES = (
    ("tokenise", "tokenise (SentencePiece + char offsets)", "tokenise_window"),
    ("plan_windows", "plan windows (sentence/word boundaries, overlap)", "tokenise_window"),
    ("encode_other", "encode: other", "tokenise_window"),
    ("window_features", "stack window features", "tokenise_window"),
    ("batching", "batch assembly (pad_rows) + device put/get", "forward"),
    ("forward", "jitted forward (blocked until ready)", "forward"),
    ("merge", "merge window predictions per token", "decode"),
    ("to_entities", "tags → character-offset entities", "decode"),
    ("decode_other", "decode: other (label lookup)", "decode"),
    ("predict_other", "predict: unaccounted", "other"),
)


def report(res: dict) -> str:
    c, z, r, b, s = res["config"], res["sizes"], res["rates"], res["breakdown"], res["setup"]
    p = res["predict_s"]
    head = [
        f"Model: random-init tiny tagger (hidden {c['hidden']}, {c['layers']} layers, {c['labels']} BIO labels, "
        f"{'CRF' if c['crf'] else 'softmax'}{', O bias +%g' % c['o_bias'] if c['o_bias'] else ''}), "
        f"windows of {c['max_length']} tokens with overlap {c['overlap']}, "
        f"batch {c['batch_size']}, {c['devices']} device(s). Notes: {z['notes']} synthetic long notes, "
        f"{z['chars_per_note_min']:,}–{z['chars_per_note_max']:,} chars ({z['chars']:,} chars, "
        f"{z['unique_tokens']:,} tokens, {z['windows']:,} windows in {z['batches']} batches).",
        f"Median of {c['repeats']} timed pass(es) after one compiling pass (phases: the median pass). "
        f"Setup: notes {s['generate_notes_s']:.1f} s, "
        f"model dir {s['write_model_dir_s']:.1f} s, load {s['load_s']:.1f} s, first predict (compile) "
        f"{s['first_predict_s']:.1f} s; peak RSS {res['peak_rss_mb']:,.0f} MiB.",
        "",
    ]
    t1 = common.markdown_table(
        ["notes/s", "chars/s", "unique note tokens/s", "window tokens/s", "windows/s", "window/unique tokens",
         "padding share of forward positions", "forward-only window tokens/s", "predict s",
         "read + predict + write s"],
        [[common.fmt_num(r["notes_per_s"], 2), common.fmt_num(r["chars_per_s"]), common.fmt_num(r["unique_tok_per_s"]),
          common.fmt_num(r["window_tok_per_s"]), common.fmt_num(r["windows_per_s"], 1),
          common.fmt_num(z["window_tokens"] / max(z["unique_tokens"], 1), 3),
          f"{1 - z['window_tokens'] / z['padded_positions']:.1%}",
          common.fmt_num(r["forward_window_tok_per_s"]), common.fmt_num(p, 2), common.fmt_num(res["total_s"], 2)]],
    )
    rows = [[label, group, common.fmt_num(b[key], 3), f"{b[key] / p:.1%}"] for key, label, group in PHASES]
    rows.append(["**predict total**", "", common.fmt_num(p, 3), "100.0%"])
    rows.append(["read notes (`read_raw_notes`)", "outside predict", common.fmt_num(res["read_s"], 3), ""])
    rows.append(["write brat (`write_predictions`)", "outside predict", common.fmt_num(res["write_s"], 3), ""])
    t2 = common.markdown_table(["phase", "group", "seconds", "share of predict"], rows)
    gr = res["groups"]
    k = res["checks"]
    tail = [
        f"- Time split: **tokenisation/windowing {gr['tokenise_window'] / p:.1%}**, **forward (incl. batching) "
        f"{gr['forward'] / p:.1%}**, **decoding to offsets {gr['decode'] / p:.1%}**.",
        f"- Checks: notes in {k['notes_in']} = notes out {k['notes_out']} = .ann files {k['ann_files']} (ids and text "
        f"round-trip, every token owned by one window, every entity span inside its note); {k['entities']:,} "
        f"entities decoded ({k['entities'] / max(z['unique_tokens'], 1):.2f} per token"
        + ("; random weights tag almost every token, a trained model far fewer: `--o_bias 0.8` gives ~0.1)."
           if not c["o_bias"] else ")."),
    ]
    return "\n".join(head + [t1, "", t2, ""] + tail)


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=None, help="number of long notes")
    parser.add_argument("--min_chars", type=int, default=None)
    parser.add_argument("--max_chars", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32, help="windows per forward (CLI default 32)")
    parser.add_argument("--max_length", type=int, default=128, help="window length incl. [CLS]/[SEP]")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--crf", action="store_true", help="CRF head (Viterbi decode in the jitted forward)")
    parser.add_argument("--o_bias", type=float, default=0.0,
                        help="add to the random tagger's 'O' logit bias (0.8: ~0.1 entities per token, like a trained "
                        "model; 0: the raw random tagger, ~0.9)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    common.add_common_flags(parser)
    args = parser.parse_args(argv)
    quick = dict(notes=6, min_chars=5000, max_chars=8000, repeats=1)
    full = dict(notes=64, min_chars=5000, max_chars=20000, repeats=3)
    for key, v in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, v)
    if args.notes < 1 or args.repeats < 1 or not 0 < args.min_chars <= args.max_chars:
        parser.error("need --notes >= 1, --repeats >= 1 and 0 < --min_chars <= --max_chars")

    t0 = time.perf_counter()
    res = run(args)
    res["wall_s"] = time.perf_counter() - t0
    text = common.section(common.command_line(__file__, argv), common.machine_line("jax", "sentencepiece"),
                          report(res))
    return common.publish(text, res, args, res["wall_s"])


if __name__ == "__main__":
    main()
