"""The real CLI: pretrain on the shipped sample, resume, gin overrides, one-line errors."""

import json
import os

import pytest

from cli_run import run_cli
from gatortron_jax.cli import main as cli

TINY_RUN = [
    "--gin_file=gin/pretrain/sample_tiny.gin",
    "--gin.TrainConfig.batch_size=4",
    "--gin.TrainConfig.seq_len=64",
    "--gin.TrainConfig.log_every=2",
    "--gin.TrainConfig.eval_every=4",
    "--gin.TrainConfig.eval_batches=1",
    "--gin.TrainConfig.checkpoint_every=2",
]


def _run_cli(repo_root, *args):
    return run_cli(repo_root, *args)  # one CPU device, a deadline only for a hung run


# Slow: two console-script start-ups. In the default suite, test_resilience's runs check the same:
# what a finished run writes (checkpoints, events, config, vocab, operative gin) and a resume that
# continues (steps k→12, not from scratch).
@pytest.mark.slow
def test_pretrain_writes_checkpoints_events_and_resumes(repo_root, tmp_path):
    model_dir = tmp_path / "run"
    first = _run_cli(repo_root, "pretrain", f"--model_dir={model_dir}", *TINY_RUN, "--gin.TrainConfig.num_steps=4")
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["2", "4"]
    assert list((model_dir / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((model_dir / "config.json").read_text())
    assert config["train_config"]["seq_len"] == 64  # the gin override reached the run
    assert config["vocab"] == {"path": "vocab/spm.model", "size": 4000, "lowercase": None}
    assert (model_dir / "vocab" / "spm.model").read_bytes() == (repo_root / "data/sample_vocab/spm.model").read_bytes()
    assert "steps 0→4" in first.stderr and "step 4/4 | loss" in first.stderr

    second = _run_cli(repo_root, "pretrain", f"--model_dir={model_dir}", *TINY_RUN, "--gin.TrainConfig.num_steps=6")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stderr and "steps 4→6" in second.stderr
    assert "step 2/6" not in second.stderr  # did not restart from scratch
    assert "6" in os.listdir(model_dir / "checkpoints")
    assert "TrainConfig.num_steps = 6" in (model_dir / "operative_config.gin").read_text()


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def chdir_repo(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


def test_empty_corpus_dir(capsys, tmp_path, chdir_repo):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN,
                                   f"--gin.MLMDataConfig.corpus_dir='{empty}'"])
    assert str(empty) in err and "no *.txt" in err


def test_non_utf8_file_names_file_and_offset(capsys, tmp_path, chdir_repo):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Patient seen in clinic today for follow up of hypertension.\n" * 5)
    (corpus / "bad.txt").write_bytes(b"BP 120/80 \xff\xfe then more text\n")
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN, "--strict",
                                   f"--gin.MLMDataConfig.corpus_dir='{corpus}'"])
    assert "bad.txt" in err and "UTF-8" in err and "10" in err  # byte offset of \xff
    assert "BP 120/80" not in err  # never echo note text


def test_missing_vocab(capsys, tmp_path, chdir_repo):
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN,
                                   f"--gin.MLMDataConfig.vocab_path='{tmp_path}/nope.model'"])
    assert "nope.model" in err


def test_gin_typo(capsys, tmp_path, chdir_repo):
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN, "--gin.TrainConfig.num_stepz=3"])
    assert "num_stepz" in err and "TrainConfig" in err
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", "--gin_file=gin/pretrain/nope.gin"])
    assert "nope.gin" in err


def test_missing_required_binding(capsys, tmp_path, chdir_repo):
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", "--gin_file=gin/models/tiny.gin"])
    assert "MLMDataConfig" in err and "corpus_dir" in err


def test_wrongly_typed_binding_names_binding_and_type(capsys, tmp_path, chdir_repo):
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN,
                                   "--gin.TrainConfig.num_steps='five'"])
    assert "TrainConfig.num_steps" in err and "expected int" in err and "five" in err
    err = _one_line_error(capsys, ["pretrain", f"--model_dir={tmp_path}/m", *TINY_RUN,
                                   "--gin.OptimizerConfig.learning_rate='fast'"])
    assert "OptimizerConfig.learning_rate" in err and "expected float" in err
