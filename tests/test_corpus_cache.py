"""The tokenized corpus cache and the training stream read from it.

prepare-corpus: sharding over hosts does not change the output, a killed prepare redoes only
missing shards, an unchanged input is not re-read, bad input is one error line (strict).
Stream: a global permutation per epoch, disjoint per-process shards whose union is the
1-process epoch, masks that depend only on (seed, epoch, chunk), packing that never splits
a chunk, the same batches from worker processes, and resume from a saved position.
"""

import json
import pathlib
import random

import numpy as np
import pytest

from gatortron_jax.cli import main as cli
from gatortron_jax.pretraining import cache_pipeline as cp
from gatortron_jax.pretraining import prepare
from gatortron_jax.pretraining.corpus_cache import CorpusCache
from gatortron_jax.text.vocab import load_vocabulary
from gatortron_jax.pretraining.corpus import TextCorpusSource

VOCAB = str(pathlib.Path(__file__).resolve().parents[1] / "data/sample_vocab/spm.model")
SEQ = 32


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    """A flat (hash-split) corpus: 30 .txt notes and one .jsonl file of 10 notes."""
    root = tmp_path_factory.mktemp("notes")
    rng = random.Random(0)
    words = ("patient denies chest pain shortness of breath metoprolol 25 mg daily follow up in clinic "
             "blood pressure stable hemoglobin a1c improved continue lisinopril").split()
    for i in range(30):
        (root / f"n{i:02d}.txt").write_text(" ".join(rng.choice(words) for _ in range(rng.randint(5, 90))) + "\n")
    (root / "batch.jsonl").write_text("".join(
        json.dumps({"text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 60)))}) + "\n" for _ in range(10)))
    return root


def _prepare(notes, out, **kw):
    return prepare.prepare_corpus(str(notes), VOCAB, str(out), prepare.PrepareOptions(seq_len=SEQ,
                                  validation_fraction=0.2), shard_mb=kw.pop("shard_mb", 0.0005), **kw)


def _files(d):
    return {p.name: p.read_bytes() for p in d.iterdir() if p.suffix in (".npy",)}


@pytest.fixture(scope="module")
def cache_dir(notes, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    assert _prepare(notes, out)["manifest"] is not None
    return out


def test_prepare_on_two_host_shards_equals_one(notes, cache_dir, tmp_path):
    two = tmp_path / "two"
    first = _prepare(notes, two, shard=0, num_shards=2, num_workers=2)  # 2 local worker processes
    assert first["manifest"] is None  # host 1's shards are still missing
    second = _prepare(notes, two, shard=1, num_shards=2)
    assert second["manifest"] is not None and first["written"] and second["written"]
    assert sorted(first["written"] + second["written"]) == list(range(second["shards"]))
    assert second["shards"] >= 4
    assert _files(two) == _files(cache_dir)
    one = json.loads((cache_dir / "manifest.json").read_text())
    assert second["manifest"]["splits"] == one["splits"] and second["manifest"]["fingerprint"] == one["fingerprint"]


def test_prepare_counts_match_the_raw_reader_and_chunking(notes, cache_dir):
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    vocab = load_vocabulary(VOCAB)
    source = TextCorpusSource(str(notes), validation_fraction=0.2)
    for split in ("train", "validation"):
        docs = [d for d in source.iter_records(split) if d.skip_reason is None]
        lens = [len(vocab.encode(d.text)) for d in docs]
        assert manifest["splits"][split]["documents"] == len(docs)
        assert manifest["splits"][split]["tokens"] == sum(lens)
        assert manifest["splits"][split]["chunks"] == sum(-(-n // (SEQ - 2)) for n in lens)
    # The chunks, in order, are the documents' token ids cut into SEQ-2 pieces (multiset check).
    train = CorpusCache(str(cache_dir)).split("train")
    got = sorted(tuple(c.tolist()) for c in train.chunks(range(train.num_chunks)))
    want = []
    for d in source.iter_records("train"):
        ids = vocab.encode(d.text)
        want += [tuple(ids[i:i + SEQ - 2]) for i in range(0, len(ids), SEQ - 2)]
    assert got == sorted(want)
    assert manifest["num_sources"] == 31 and manifest["sources"][0]["path"] == "batch.jsonl"


def test_rerun_redoes_only_missing_shards_and_skips_unchanged_input(notes, tmp_path):
    out = tmp_path / "c"
    full = _prepare(notes, out)
    before = _files(out)
    again = _prepare(notes, out)
    assert again["up_to_date"] and again["written"] == []
    (out / "manifest.json").unlink()
    (out / "shard-00002.json").unlink()  # as if killed before shard 2 committed
    (out / "train-00002.tokens.npy").write_bytes(b"half a file")
    redo = _prepare(notes, out)
    assert redo["written"] == [2] and _files(out) == before and redo["manifest"]["fingerprint"] == full["manifest"]["fingerprint"]


def test_prepare_corpus_cli_strict_one_error_line(tmp_path, capsys, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.txt").write_text("fine text here\n")
    (bad / "b.txt").write_bytes(b"BP 120/80 \xff then\n")
    args = ["prepare-corpus", "--input", str(bad), "--vocab_path", VOCAB, "--output", str(tmp_path / "c"), "--seq_len", "32"]
    assert cli.main([*args, "--strict"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "b.txt" in err[0] and "byte offset 10" in err[0] and "BP 120" not in err[0]
    assert cli.main(args) == 0  # default policy: replaced and counted in the manifest's input report
    report = json.loads((tmp_path / "c" / "manifest.json").read_text())["input_report"]
    assert sum(r["flagged"].get("replaced_bytes", 0) for r in report["splits"].values()) == 1


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_feistel_is_a_permutation_that_changes_per_epoch(n):
    a = cp.FeistelPermutation(n, seed=3, epoch=0)(np.arange(n))
    b = cp.FeistelPermutation(n, seed=3, epoch=1)(np.arange(n))
    assert sorted(a.tolist()) == list(range(n)) == sorted(b.tolist())
    if n >= 64:
        assert not np.array_equal(a, b) and not np.array_equal(a, np.arange(n))


def _epoch_chunks(split, process_index, process_count, rows=3):
    spec = cp.StreamSpec("", "train", SEQ, rows, seed=5, process_index=process_index, process_count=process_count,
                         num_epochs=1)
    planner = cp.BatchPlanner(split, spec)
    out = []
    while (plan := planner.next_plan()) is not None:
        out += plan.chunk_ids.tolist()
    return out


def test_two_processes_read_disjoint_chunks_that_make_up_the_one_process_epoch(cache_dir):
    split = CorpusCache(str(cache_dir)).split("train")
    single = _epoch_chunks(split, 0, 1)
    p0, p1 = _epoch_chunks(split, 0, 2), _epoch_chunks(split, 1, 2)
    assert not set(p0) & set(p1)
    assert sorted(p0 + p1) == sorted(single) == list(range(split.num_chunks))
    assert single != sorted(single)  # shuffled
    assert sorted(p0 + p1) != p0 + p1


def _tables(whole_word=False):
    return cp.MaskingTables.from_vocabulary(load_vocabulary(VOCAB), whole_word=whole_word)


def _segments(batch):
    """{(row, segment): (targets, inputs, weights)} for every packed chunk."""
    out = {}
    for r in range(batch["segment_ids"].shape[0]):
        for s in np.unique(batch["segment_ids"][r]):
            if s:
                m = batch["segment_ids"][r] == s
                out[(r, s)] = tuple(batch[k][r][m] for k in ("mlm_targets", "input_ids", "mlm_weights", "position_ids"))
    return out


@pytest.mark.parametrize("whole_word", [False, True])
def test_rows_pack_whole_chunks_and_masks_follow_the_chunk(cache_dir, whole_word):
    cache = CorpusCache(str(cache_dir))
    split, tables = cache.split("train"), _tables(whole_word)
    spec = cp.StreamSpec(str(cache_dir), "train", SEQ, 4, seed=1)
    planner = cp.BatchPlanner(split, spec)
    plan = planner.next_plan()
    batch = cp.build_batch(split, plan, tables, SEQ, 4, seed=1)
    vocab = load_vocabulary(VOCAB)
    segs = _segments(batch)
    assert len(segs) == plan.chunk_ids.size  # one segment per chunk, none split
    for (r, s), chunk in zip(sorted(segs), plan.chunk_ids[np.lexsort((plan.segments, plan.rows))]):
        targets, inputs, weights, positions = segs[(r, s)]
        body = split.chunk(int(chunk))
        assert targets.tolist() == [vocab.cls_id, *body.tolist(), vocab.sep_id]
        assert positions.tolist() == list(range(body.size + 2))
        assert weights[0] == 0 and weights[-1] == 0  # specials never selected
        changed = inputs != targets
        assert not (changed & (weights == 0)).any()  # only selected positions are corrupted
    # The same chunk in another row, batch size and process count gets the same mask.
    other = cp.build_batch(split, cp.Plan(plan.chunk_ids[::-1].copy(), plan.epochs, np.arange(plan.chunk_ids.size),
                                          np.zeros(plan.chunk_ids.size, np.int64),
                                          np.ones(plan.chunk_ids.size, np.int64), plan.end),
                           tables, SEQ, plan.chunk_ids.size, seed=1)
    for row, chunk in enumerate(plan.chunk_ids[::-1]):
        r, s = [(r, s) for (r, s), c in zip(sorted(segs), plan.chunk_ids[np.lexsort((plan.segments, plan.rows))])
                if c == chunk][0]
        m = other["segment_ids"][row] > 0
        assert np.array_equal(other["input_ids"][row][m], segs[(r, s)][1])
    # Another epoch: a different mask for the same chunks.
    later = cp.build_batch(split, cp.Plan(plan.chunk_ids, plan.epochs + 1, plan.rows, plan.offsets, plan.segments,
                                          plan.end), tables, SEQ, 4, seed=1)
    assert not np.array_equal(later["mlm_weights"], batch["mlm_weights"])


def test_mask_statistics(cache_dir):
    cache = CorpusCache(str(cache_dir))
    spec = cp.StreamSpec(str(cache_dir), "train", SEQ, 8, seed=2)
    vocab = load_vocabulary(VOCAB)
    with cp.CacheBatches(cache, spec, _tables()) as it:
        batches = [next(it) for _ in range(40)]
    t = np.concatenate([b["mlm_targets"] for b in batches]).ravel()
    x = np.concatenate([b["input_ids"] for b in batches]).ravel()
    w = np.concatenate([b["mlm_weights"] for b in batches]).ravel() > 0
    real = (t > 0) & ~np.isin(t, sorted(vocab.special_ids))
    assert abs(w[real].mean() - 0.15) < 0.02
    assert abs((x[w] == vocab.mask_id).mean() - 0.8) < 0.05
    assert abs((x[w] == t[w]).mean() - 0.1) < 0.05
    assert not w[~real].any()


def test_workers_resume_and_reruns_give_identical_batches(cache_dir):
    cache = CorpusCache(str(cache_dir))
    spec = cp.StreamSpec(str(cache_dir), "train", SEQ, 4, seed=9)
    tables = _tables(True)
    with cp.CacheBatches(cache, spec, tables) as it:
        ref = [next(it) for _ in range(25)]  # > one epoch of this small corpus
        assert it.position.epoch >= 1
    with cp.CacheBatches(cache, spec, tables, num_workers=2) as it:
        par = [next(it) for _ in range(25)]
    with cp.CacheBatches(cache, spec, tables) as it:
        head = [next(it) for _ in range(11)]
        saved = it.position
    with cp.CacheBatches(cache, spec, tables, saved) as it:
        tail = [next(it) for _ in range(14)]
    for got in (par, head + tail):
        for a, b in zip(ref, got):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_eval_stream_ends_and_pads_the_last_batch(cache_dir):
    cache = CorpusCache(str(cache_dir))
    spec = cp.StreamSpec(str(cache_dir), "validation", SEQ, 4, seed=0, shuffle=False, num_epochs=1)
    with cp.CacheBatches(cache, spec, _tables()) as it:
        batches = list(it)
    segs = sum(len(_segments(b)) for b in batches)
    assert segs == cache.num_chunks("validation")


def test_cache_task_is_registered_in_seqio(cache_dir):
    import seqio

    from gatortron_jax.pretraining import seqio_tasks

    task = seqio_tasks.register_mlm_cache_task("test_cache_task", str(cache_dir), VOCAB)
    assert seqio.TaskRegistry.get("test_cache_task") is task
    assert task.source.num_input_examples("train") == CorpusCache(str(cache_dir)).num_chunks("train")
    first = next(task.source.get_dataset("train", shuffle=False).as_numpy_iterator())["inputs"]
    vocab = load_vocabulary(VOCAB)
    assert first.tolist() == [vocab.cls_id, *task.source.cache.split("train").chunk(0).tolist(), vocab.sep_id]


def test_startup_reads_only_the_manifest(notes, tmp_path):
    """A run on a prepared cache never reads the notes (here: deleted) nor any token shard."""
    import shutil

    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.pretraining.config import MLMDataConfig
    from gatortron_jax.pretraining.trainer import open_corpus_cache

    copy = tmp_path / "notes"
    shutil.copytree(notes, copy)
    out = tmp_path / "cache"
    prepare.prepare_corpus(str(copy), VOCAB, str(out), prepare.PrepareOptions(seq_len=SEQ))
    shutil.rmtree(copy)
    cache = open_corpus_cache(MLMDataConfig(corpus_dir=str(out), vocab_path=VOCAB), SEQ, str(tmp_path / "run"))
    assert cache.num_chunks("train") > 0 and not cache._splits  # no index or token file opened yet
    assert json.loads((tmp_path / "run" / "input_report.json").read_text())["validated"]
    with pytest.raises(ConfigError, match="--seq_len 64"):
        open_corpus_cache(MLMDataConfig(corpus_dir=str(out), vocab_path=VOCAB), 64, str(tmp_path / "run"))


def test_wordpiece_casing_decision_reaches_the_tokenizer(tmp_path):
    """Continued pretraining passes the checkpoint's stored casing (import-hf --cased/--lowercase)."""
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "patient", "denies"]))
    notes = tmp_path / "n"
    notes.mkdir()
    (notes / "a.txt").write_text("PATIENT denies")
    chunks = {}
    for lowercase in (True, False):
        out = tmp_path / f"c{lowercase}"
        prepare.prepare_corpus(str(notes), str(tmp_path / "vocab.txt"), str(out),
                               prepare.PrepareOptions(seq_len=SEQ, validation_fraction=0.0, lowercase=lowercase))
        chunks[lowercase] = CorpusCache(str(out)).split("train").chunk(0).tolist()
    assert chunks[True] == [5, 6] and chunks[False] == [1, 6]
