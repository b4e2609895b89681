"""Fine-tuning: the real CLI finetune → evaluate → predict → deid on the synthetic samples,
layer-wise LR decay, CRF head training, and (slow) NCBI-disease end to end."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cli_run import run_cli
from gatortron_jax.cli import main as cli
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.finetuning.supervised import layerwise_lr_scale
from tiny_models import TINY, save_random_mlm_model as _save_random_mlm_model  # noqa: F401 (imported by others)


def _run_cli(repo_root, *args):
    return run_cli(repo_root, *args)


def test_layerwise_lr_decay_scales_by_depth():
    updates = {
        "encoder": {"embeddings": {"w": jnp.ones((2,))}, "layers": {"k": jnp.ones((3, 2))},
                    "final_ln": {"scale": jnp.ones((2,))}},
        "classifier": {"kernel": jnp.ones((2, 2))},
    }
    out, _ = layerwise_lr_scale(0.5, 3).update(updates, None)
    np.testing.assert_allclose(out["encoder"]["embeddings"]["w"], 0.5 ** 4)
    np.testing.assert_allclose(out["encoder"]["layers"]["k"][:, 0], [0.125, 0.25, 0.5])
    np.testing.assert_allclose(out["encoder"]["final_ln"]["scale"], 1.0)
    np.testing.assert_allclose(out["classifier"]["kernel"], 1.0)


def test_cli_finetune_evaluate_predict_deid_on_samples(repo_root, tiny_pretrained, tmp_path, capsys, caplog,
                                                        monkeypatch):
    """Fast e2e on the shipped synthetic samples with tiny settings (the real CLI)."""
    monkeypatch.chdir(repo_root)
    init = tiny_pretrained
    out = tmp_path / "ner"
    tiny = ["--gin.NERDataConfig.max_length=64", "--gin.NERDataConfig.overlap=16",
            "--gin.NERTrainConfig.num_epochs=2", "--gin.NERTrainConfig.batch_size=8",
            "--gin.NERTrainConfig.max_steps_per_epoch=4", "--gin.NERTrainConfig.layerwise_lr_decay=0.9"]
    r = _run_cli(repo_root, "finetune", "--gin_file=gin/finetune/sample_ner.gin", f"--init_checkpoint={init}",
                 f"--model_dir={out}", *tiny)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "encoder initialised from" in r.stderr and "dev strict F1" in r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["ner"]["task"] == "i2b2_2010_ner" and cfg["ner"]["labels"][0] == "O"
    assert cfg["ner"]["max_length"] == 64 and cfg["finetune"]["seed"] == 0
    assert len(cfg["data"]["fingerprints"]["train"]) == 64 and cfg["result"]["best_epoch"] >= 1
    assert (out / "vocab/spm.model").is_file() and os.listdir(out / "checkpoints")

    # The other commands in-process through cli.main (same parser and code; no interpreter start-up).
    eval_json = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--gin_file=gin/finetune/sample_ner.gin", f"--checkpoint={out}",
                     f"--output={eval_json}"]) == 0
    printed = capsys.readouterr().out
    assert "strict P" in printed and "lenient P" in printed and "micro" in printed
    ev = json.loads(eval_json.read_text())
    assert ev["split"] == "test" and set(ev["scores"]) >= {"strict", "lenient"}

    notes = repo_root / "data/ner_samples/i2b2_2010/test"
    for fmt, pattern in (("brat", "*.ann"), ("i2b2", "*.con"), ("jsonl", "entities.jsonl")):
        assert cli.main(["predict", "--checkpoint", str(out), "--input", str(notes),
                         "--output", str(tmp_path / fmt), "--format", fmt]) == 0
        assert list((tmp_path / fmt).rglob(pattern)), fmt
    assert cli.main(["deid", "--checkpoint", str(out), "--input", str(notes), "--output",
                     str(tmp_path / "deid"), "--mode", "surrogate"]) == 0
    assert (tmp_path / "deid/deid_summary.json").is_file() and list((tmp_path / "deid").rglob("*.ann"))

    # Input policy on raw notes: a note with undecodable bytes still comes out (U+FFFD, one
    # PHI-free warning naming file and byte offset); --strict makes it one error line instead.
    bad = tmp_path / "bad_notes"
    bad.mkdir()
    (bad / "good.txt").write_text("Patient denies chest pain.\n", encoding="utf-8")
    (bad / "bad.txt").write_bytes(b"SECRETNAME has a cough \xff\xfe and fever.\n")
    capsys.readouterr()
    caplog.clear()
    assert cli.main(["predict", "--checkpoint", str(out), "--input", str(bad), "--output",
                     str(tmp_path / "bad_out"), "--format", "brat"]) == 0
    warned = [r.getMessage() for r in caplog.records if "U+FFFD" in r.getMessage()]
    assert any(str(bad / "bad.txt") in m and "byte offset 23" in m for m in warned), warned
    assert not any("SECRETNAME" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in (tmp_path / "bad_out").rglob("*.ann")) == ["bad.ann", "good.ann"]
    assert (tmp_path / "bad_out/bad.txt").read_text(encoding="utf-8").count("\ufffd") == 2
    assert cli.main(["predict", "--strict", "--checkpoint", str(out), "--input", str(bad), "--output",
                     str(tmp_path / "bad_strict")]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad / 'bad.txt'}: not valid UTF-8 at byte offset 23" in err and "SECRETNAME" not in err


# Slow (~12 s): the CRF's forward algorithm and Viterbi are checked against brute-force enumeration in
# tests/test_crf.py (default run); the fine-tuning loop and predictor run in the default CLI test above.
@pytest.mark.slow
def test_crf_head_trains_in_process(repo_root, tmp_path):
    """The CRF head through the library entry point: loss falls, checkpoint restores for prediction."""
    from gatortron_jax.inference.ner_predict import NERPredictor
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.finetuning.config import NERDataConfig, NERTrainConfig
    from gatortron_jax.core.optimizer import OptimizerConfig

    data = NERDataConfig(task="n2c2_2018_ner", vocab_path=str(repo_root / "data/sample_vocab/spm.model"),
                         max_length=64, overlap=16, label_scheme="BIOES")
    train = NERTrainConfig(num_epochs=2, batch_size=8, eval_batch_size=8, use_crf=True, max_steps_per_epoch=5,
                           patience=None)
    result = finetune(str(tmp_path / "crf"), data, train, OptimizerConfig(learning_rate=3e-3),
                                       model_config=TINY)
    losses = [h["train_loss"] for h in result["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    predictor = NERPredictor(str(tmp_path / "crf"))
    assert predictor.model.use_crf and predictor.labels[1].startswith("B-")


@pytest.mark.slow
def test_ncbi_disease_end_to_end(shared_data, repo_root, tmp_path):
    """Tiny model on NCBI-disease: strict F1 clearly above the trivial (all-O) baseline of 0."""
    from gatortron_jax.finetuning.loop import finetune
    from gatortron_jax.finetuning.config import NERDataConfig, NERTrainConfig
    from gatortron_jax.core.optimizer import OptimizerConfig

    data_dir = shared_data / "NCBI-disease-IOB"
    if not (data_dir / "train.tsv").is_file():
        pytest.skip("NCBI-disease-IOB not present")
    config = EncoderConfig(vocab_size=4096, hidden_size=128, num_layers=2, num_heads=4, mlp_dim=512,
                           max_position_embeddings=128, dropout_rate=0.1, attention_dropout_rate=0.1)
    data = NERDataConfig(task="conll_ner", data_dir=str(data_dir), dev_split="devel",
                         vocab_path=str(repo_root / "data/sample_vocab/spm.model"), max_length=64, overlap=16)
    train = NERTrainConfig(num_epochs=int(os.environ.get("NCBI_EPOCHS", "8")), batch_size=32, eval_batch_size=64,
                           patience=None, log_every=100)
    out = tmp_path / "ncbi"
    result = finetune(str(out), data, train, OptimizerConfig(learning_rate=2e-3),
                                       model_config=config)
    from gatortron_jax.inference.evaluate import evaluate_ner

    test = evaluate_ner(str(out), data, split="test")
    test_f1 = test["scores"]["strict"]["micro"]["f1"]
    report = {"dev_strict_f1": result["best_dev_strict_f1"], "test_strict_f1": test_f1,
              "history": result["history"]}
    print("NCBI", json.dumps(report, indent=1))
    assert result["best_dev_strict_f1"] > 0.3 and test_f1 > 0.3
