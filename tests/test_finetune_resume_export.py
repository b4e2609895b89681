"""Fine-tuning as researchers run it: a killed ``finetune`` resumes bitwise through the real CLI,
a changed configuration is one error, ``evaluate`` writes the recipe, ``export-hf`` of every
head kind reloads in transformers with our logits, and length buckets change no prediction."""

import hashlib
import json
import pathlib
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.cli import main as cli
from gatortron_jax.models.config import EncoderConfig

from cli_run import cli_cmd, interrupt_when, kill_when, run_cli
from tiny_models import TINY

NER_ARGS = ["--gin_file=gin/finetune/sample_ner.gin", "--gin.NERDataConfig.max_length=64",
            "--gin.NERDataConfig.overlap=16", "--gin.NERTrainConfig.num_epochs=4", "--gin.NERTrainConfig.batch_size=8",
            "--gin.NERTrainConfig.max_steps_per_epoch=3", "--gin.NERTrainConfig.patience=None",
            "--gin.NERTrainConfig.checkpoint_every_steps=2"]  # a resume point inside each epoch too


def _state_tree(step_dir: pathlib.Path):
    import orbax.checkpoint as ocp

    with ocp.PyTreeCheckpointer() as c:
        return c.restore(str(step_dir / "state"))


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}/{k}"))
        else:
            out[f"{prefix}/{k}"] = np.asarray(v)
    return out


@pytest.mark.slow  # three real CLI runs: ~1.5 min of CPU on 2 idle cores
def test_cli_finetune_kill_resume_bitwise_then_evaluate_recipe(repo_root, tiny_pretrained, tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(repo_root)
    init = tiny_pretrained
    run = lambda out: [*NER_ARGS, f"--init_checkpoint={init}", f"--model_dir={out}"]  # noqa: E731

    reference = tmp_path / "reference"
    r = run_cli(repo_root, "finetune", *run(reference))
    assert r.returncode == 0, r.stderr[-3000:]
    killed = tmp_path / "killed"
    resume_dir = killed / "train_state" / "checkpoints"  # killed once the first resume point is written
    kill_when(cli_cmd("finetune", *run(killed)), repo_root,
              lambda _err: resume_dir.is_dir() and any(p.name.isdigit() for p in resume_dir.iterdir()))
    r = run_cli(repo_root, "finetune", *run(killed))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr and "after epoch" in r.stderr
    ref_cfg, got_cfg = (json.loads((d / "config.json").read_text()) for d in (reference, killed))
    keep = ("epoch", "train_loss", "dev_strict_f1", "train_tokens")
    assert [{k: h[k] for k in keep} for h in got_cfg["result"]["history"]] == \
        [{k: h[k] for k in keep} for h in ref_cfg["result"]["history"]]
    assert len(ref_cfg["result"]["history"]) == 4
    best = str(ref_cfg["result"]["best_epoch"])
    ref, got = (_flat(_state_tree(d / "checkpoints" / best)["params"]) for d in (reference, killed))
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert not (killed / "train_state").exists()  # finished: the resume state is removed

    # SIGTERM (a scheduler's preemption notice): the resume point is saved at the next step,
    # exit status 75; the requeued rerun ends bitwise where the uninterrupted run did
    terminated = tmp_path / "terminated"
    got = interrupt_when(cli_cmd("finetune", *run(terminated)), repo_root,
                         lambda err: "SIGTERM saves the resume point" in err, signal.SIGTERM)
    assert got.returncode == 75, got.stderr[-3000:]
    assert "preemption notice (SIGTERM): resume point saved" in got.stderr
    r = run_cli(repo_root, "finetune", *run(terminated))
    assert r.returncode == 0 and "resumed from" in r.stderr, r.stderr[-3000:]
    got = _flat(_state_tree(terminated / "checkpoints" / best)["params"])
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)

    # the same command again: nothing to do; a different configuration: one error line
    r = run_cli(repo_root, "finetune", *run(killed))
    assert r.returncode == 0 and "nothing to do" in r.stderr
    assert cli.main(["finetune", *run(killed), "--gin.NERTrainConfig.seed=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ".seed: 0 in the model dir, 1 now" in err[0]

    # evaluate: the recipe next to the scores
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", f"--checkpoint={killed}", f"--output={out}"]) == 0
    rec = json.loads(out.read_text())["recipe"]
    assert rec["seed"] == 0 and rec["config"]["train_config"]["num_epochs"] == 4
    assert rec["config"]["init_checkpoint"] == str(init.resolve())
    assert len(rec["init_checkpoint_fingerprint"]) == 64 and len(rec["model_fingerprint"]) == 64
    assert rec["packages"]["jax"] == jax.__version__
    test_dir = repo_root / "data/ner_samples/i2b2_2010/test"
    manifest = sorted(f"{p.relative_to(test_dir).as_posix()}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                      for p in test_dir.rglob("*") if p.is_file())
    assert rec["data_files"]["test"]["sha256"] == hashlib.sha256("".join(manifest).encode()).hexdigest()
    assert set(rec["data_files"]) == {"train", "dev", "test"}


# ----------------------------------------------------------------------------- export-hf of heads


def _ours_and_hf(model_dir: pathlib.Path, out: pathlib.Path):
    """(our head model, its params, the transformers model loaded from the export)."""
    import transformers

    from gatortron_jax.convert.hf_dir import _load_finetuned
    from gatortron_jax.finetuning import adapters
    from gatortron_jax.models.model_dir import model_config_of, read_model_info

    assert cli.main(["export-hf", str(model_dir), str(out)]) == 0
    info = read_model_info(str(model_dir))
    adapter = adapters.for_model_info(info)
    model = adapter.build_model(model_config_of(str(model_dir), info), info[adapter.section])
    params, _ = _load_finetuned(str(model_dir), info)
    arch = json.loads((out / "config.json").read_text())["architectures"][0]
    auto = {"ForTokenClassification": transformers.AutoModelForTokenClassification,
            "ForSequenceClassification": transformers.AutoModelForSequenceClassification,
            "ForQuestionAnswering": transformers.AutoModelForQuestionAnswering}
    hf_cls = next(v for k, v in auto.items() if arch.endswith(k))
    hf_model = hf_cls.from_pretrained(str(out)).eval()
    return model, params, hf_model, arch


def _inputs(vocab_size: int):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab_size, (3, 24)).astype(np.int32)
    seg = np.ones_like(ids)
    seg[1, 17:] = 0
    ids[1, 17:] = 0
    types = np.zeros_like(ids)
    types[:, 12:] = 1
    return ids, seg, types


@pytest.mark.slow  # four fine-tunes + four transformers loads: ~1 min of CPU
def test_export_hf_token_sequence_and_qa_heads_match_transformers(repo_root, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from gatortron_jax.core.optimizer import OptimizerConfig
    from gatortron_jax.finetuning.config import NERDataConfig, NERTrainConfig, TaskDataConfig, TaskTrainConfig
    from gatortron_jax.finetuning.loop import finetune

    vocab = str(repo_root / "data/sample_vocab/spm.model")
    bert = TINY.replace(post_ln=True)  # BertFor* (post-LN); TINY itself is MegatronBertFor* (pre-LN)
    one = dict(num_epochs=1, batch_size=8, eval_batch_size=8, max_steps_per_epoch=1, patience=None)
    opt = OptimizerConfig(learning_rate=1e-2, warmup_steps=0)  # big steps: heads far from their init
    runs = {
        "ner": (NERDataConfig(task="n2c2_2018_ner", vocab_path=vocab, max_length=64, overlap=16),
                NERTrainConfig(**one), bert),
        "re": (TaskDataConfig(task="chemprot_re", vocab_path=vocab, max_length=64),
               TaskTrainConfig(**one, representation="pooled"), TINY),
        "sts": (TaskDataConfig(task="n2c2_2019_sts", vocab_path=vocab, max_length=64), TaskTrainConfig(**one), bert),
        "qa": (TaskDataConfig(task="emrqa_medication", vocab_path=vocab, max_length=64, doc_stride=24,
                              max_query_length=16), TaskTrainConfig(**one), TINY),
    }
    seen = set()
    for name, (data, train, config) in runs.items():
        model_dir = tmp_path / name
        finetune(str(model_dir), data, train, opt, model_config=config)
        model, params, hf_model, arch = _ours_and_hf(model_dir, tmp_path / f"{name}_hf")
        seen.add(arch)
        ids, seg, types = _inputs(config.vocab_size)
        with torch.no_grad():
            theirs = hf_model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(seg),
                              token_type_ids=torch.tensor(types, dtype=torch.long))
        if name == "qa":
            s, e = model.apply({"params": params}, jnp.asarray(ids), jnp.asarray(types), None, jnp.asarray(seg))
            pairs = [(s, theirs.start_logits), (e, theirs.end_logits)]
        else:
            ours = model.apply({"params": params}, jnp.asarray(ids), jnp.asarray(types), None, jnp.asarray(seg))
            pairs = [(ours, theirs.logits[..., 0] if name == "sts" else theirs.logits)]
        for o, t in pairs:
            o, t = np.asarray(o), t.numpy()
            if o.ndim == 3 or (o.ndim == 2 and name == "qa"):  # per-token outputs: real tokens only
                o, t = o[seg.astype(bool)], t[seg.astype(bool)]
            assert o.shape == t.shape and np.ptp(o) > 0, name
            np.testing.assert_allclose(o, t, atol=1e-4, rtol=0, err_msg=name)
        cfg = json.loads((tmp_path / f"{name}_hf" / "config.json").read_text())
        if name == "ner":
            labels = json.loads((model_dir / "config.json").read_text())["ner"]["labels"]
            assert cfg["id2label"] == {str(i): l for i, l in enumerate(labels)} and cfg["label2id"]["O"] == 0
    assert seen == {"BertForTokenClassification", "MegatronBertForSequenceClassification",
                    "BertForSequenceClassification", "MegatronBertForQuestionAnswering"}


# ----------------------------------------------------------------------------- length buckets


def test_length_buckets_change_no_prediction_and_bound_shapes():
    from gatortron_jax.core.batching import bucket_lengths, predict_rows
    from gatortron_jax.models.token_classification import EncoderForTokenClassification, predict_labels

    config = EncoderConfig(vocab_size=64, hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32,
                           max_position_embeddings=128)
    model = EncoderForTokenClassification(config, 5)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    rng = np.random.default_rng(0)
    n, L = 40, 128
    lengths = rng.integers(3, L + 1, n)
    feats = {"input_ids": np.zeros((n, L), np.int32), "segment_ids": np.zeros((n, L), np.int32),
             "label_mask": np.zeros((n, L), np.float32)}
    for i, k in enumerate(lengths):
        feats["input_ids"][i, :k] = rng.integers(1, 64, k)
        feats["segment_ids"][i, :k] = 1
        feats["label_mask"][i, 1:k - 1] = 1
    shapes = []

    def fn(p, batch):
        shapes.append(batch["input_ids"].shape)
        return predict_labels(model, p, batch)

    jitted = jax.jit(fn)
    full = predict_rows(jitted, params, feats, 8)
    buckets = bucket_lengths(L)
    bucketed = predict_rows(jitted, params, feats, 8, length_buckets=buckets)
    assert bucketed.shape == full.shape == (n, L)
    mask = feats["segment_ids"].astype(bool)
    np.testing.assert_array_equal(bucketed[mask], full[mask])
    assert {s[1] for s in shapes} <= set(buckets) and len(set(shapes)) <= len(buckets)
