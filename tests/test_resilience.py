"""Preemption-safe training through the real CLI: SIGKILL at a random step and during a save,
SIGTERM, non-finite losses — and no note text in logs or event files."""

import json
import pathlib
import random
import re
import signal

import numpy as np
import orbax.checkpoint as ocp
import pytest

from cli_run import cli_cmd, interrupt_when, kill_when, run_cli
from gatortron_jax.cli import main as cli

SENTINEL = "Quokkaberg Zyxwvutsky"  # a fake patient name: must never reach logs or event files

RUN = [
    "--gin_file=gin/pretrain/sample_tiny.gin",
    "--gin.EncoderConfig.hidden_size=32", "--gin.EncoderConfig.num_layers=1", "--gin.EncoderConfig.num_heads=2",
    "--gin.EncoderConfig.mlp_dim=64", "--gin.EncoderConfig.dropout_rate=0.1",  # dropout: exercises RNG replay
    "--gin.TrainConfig.batch_size=4", "--gin.TrainConfig.seq_len=32", "--gin.TrainConfig.max_predictions=None",
    "--gin.TrainConfig.num_steps=12", "--gin.TrainConfig.log_every=1", "--gin.TrainConfig.eval_every=6",
    "--gin.TrainConfig.eval_batches=1", "--gin.TrainConfig.checkpoint_every=3", "--gin.TrainConfig.keep_checkpoints=10",
    "--gin.OptimizerConfig.warmup_steps=2",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    words = ("patient denies chest pain shortness of breath metoprolol 25 mg daily follow up in clinic "
             "blood pressure stable hemoglobin a1c improved continue lisinopril").split()
    for split, n in (("train", 12), ("validation", 3)):
        (root / split).mkdir()
        for i in range(n):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(40, 120)))
            (root / split / f"n{i}.txt").write_text(f"Name: {SENTINEL}\n{body}\n")
    return root


def _cmd(model_dir, corpus, *extra):
    return cli_cmd("pretrain", f"--model_dir={model_dir}", *RUN, f"--gin.MLMDataConfig.corpus_dir='{corpus}'", *extra)


def _run(repo_root, model_dir, corpus, *extra, log=None):
    proc = run_cli(repo_root, *_cmd(model_dir, corpus, *extra)[1:])
    if log is not None:
        log.append(proc.stderr)
    return proc


def _final_params(model_dir, step=12):
    path = pathlib.Path(model_dir) / "checkpoints" / str(step) / "state"
    with ocp.PyTreeCheckpointer() as c:
        return c.restore(str(path))["params"]


def _flat(tree):
    out = {}
    def walk(t, prefix):
        for k, v in t.items():
            walk(v, f"{prefix}/{k}") if isinstance(v, dict) else out.__setitem__(f"{prefix}/{k}", np.asarray(v))
    walk(tree, "")
    return out


def test_sigkill_anywhere_then_resume_is_bitwise_identical(repo_root, corpus, tmp_path):
    logs: list[str] = []
    reference = tmp_path / "reference"
    assert _run(repo_root, reference, corpus, log=logs).returncode == 0, logs[-1][-2000:]
    # What a finished run leaves (test_cli_pretrain's first check, which is slow now): the
    # checkpoints, TensorBoard events, the config with the gin overrides, the vocab, the operative gin.
    assert sorted(int(p.name) for p in (reference / "checkpoints").iterdir()) == [3, 6, 9, 12]
    assert list((reference / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((reference / "config.json").read_text())
    assert config["train_config"]["seq_len"] == 32 and config["train_config"]["num_steps"] == 12
    assert config["vocab"] == {"path": "vocab/spm.model", "size": 4000, "lowercase": None}
    assert (reference / "vocab/spm.model").read_bytes() == (repo_root / "data/sample_vocab/spm.model").read_bytes()
    assert "TrainConfig.num_steps = 12" in (reference / "operative_config.gin").read_text()
    assert "steps 0→12" in logs[-1] and "step 12/12 | loss" in logs[-1]

    killed = tmp_path / "killed"
    kill_step = random.Random().randint(2, 7)  # an arbitrary step, usually between checkpoints
    logs.append(kill_when(_cmd(killed, corpus), repo_root, lambda err: f"step {kill_step}/12 |" in err))

    def saving(_err):  # a save is in flight (uncommitted tmp dir) after a committed one
        ckpts = killed / "checkpoints"
        names = [p.name for p in ckpts.iterdir()] if ckpts.is_dir() else []
        return any("tmp" in n for n in names) and any(n.isdigit() for n in names)
    logs.append(kill_when(_cmd(killed, corpus), repo_root, saving))
    committed = [p for p in (killed / "checkpoints").iterdir() if p.name.isdigit()]
    assert committed, "a committed checkpoint survives a kill during the next save"

    final = _run(repo_root, killed, corpus, log=logs)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "resumed from" in final.stderr
    ref, got = _flat(_final_params(reference)), _flat(_final_params(killed))
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)

    # PHI hygiene: no note text in console logs, TensorBoard events, configs.
    for text in logs:
        assert SENTINEL not in text
    for path in list(reference.rglob("*")) + list(killed.rglob("*")):
        if path.is_file() and "checkpoints" not in path.parts:
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_sigterm_checkpoints_and_asks_to_requeue(repo_root, corpus, tmp_path):
    model_dir = tmp_path / "m"
    cmd = _cmd(model_dir, corpus, "--gin.TrainConfig.checkpoint_every=100")
    got = interrupt_when(cmd, repo_root, lambda err: "step 4/12 |" in err, signal.SIGTERM)
    assert got.returncode == 75, got.stderr[-2000:]
    steps = [int(p.name) for p in (model_dir / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(steps) == 1 and 4 <= steps[0] < 12
    again = run_cli(repo_root, *cmd[1:])
    assert again.returncode == 0 and f"steps {steps[0]}→12" in again.stderr, again.stderr[-2000:]
    assert "resumed from" in again.stderr and "step 2/12 |" not in again.stderr  # did not restart from scratch


@pytest.mark.slow  # three CLI start-ups (~1 min on 2 cores); test_resume_position_names_what_changed is the fast check
def test_resume_with_changed_batch_or_corpus_is_one_error_line(repo_root, tmp_path):
    """The saved data position only means something for the same corpus, global batch and process count."""
    corpus = tmp_path / "notes"
    (corpus / "train").mkdir(parents=True)
    (corpus / "validation").mkdir()
    for i in range(6):
        (corpus / "train" / f"n{i}.txt").write_text("patient seen in clinic today blood pressure stable " * 8)
    (corpus / "validation" / "v.txt").write_text("follow up in clinic " * 10)
    model_dir = tmp_path / "m"
    first = _run(repo_root, model_dir, corpus, "--gin.TrainConfig.num_steps=3", "--gin.TrainConfig.eval_every=0")
    assert first.returncode == 0, first.stderr[-2000:]

    def one_error(*extra):
        proc = _run(repo_root, model_dir, corpus, "--gin.TrainConfig.num_steps=6", *extra)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
        return errors[0]

    assert "TrainConfig.batch_size changed (4 -> 8)" in one_error("--gin.TrainConfig.batch_size=8")
    (corpus / "train" / "n0.txt").write_text("a changed note " * 20)
    assert "corpus (manifest fingerprint) changed" in one_error()


def test_resume_position_names_what_changed():
    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.pretraining.trainer import _resume_position

    expected = {"manifest": "a" * 64, "global_batch": 16, "process_count": 2, "seq_len": 128, "seed": 0}
    meta = {"data_position": {**expected, "positions": [[3, 7], [3, 9]]}}
    assert _resume_position(meta, expected, 10, "m").to_list() == [3, 7]  # process 0's own position
    for key, value, name in (("global_batch", 32, "TrainConfig.batch_size changed (16 -> 32)"),
                             ("process_count", 4, "process count changed (2 -> 4)"),
                             ("manifest", "b" * 64, "corpus (manifest fingerprint) changed")):
        with pytest.raises(ConfigError, match=re.escape(name)):
            _resume_position(meta, {**expected, key: value}, 10, "m")
    with pytest.raises(ConfigError, match="no data position"):
        _resume_position({}, expected, 10, "m")


def test_consecutive_nonfinite_steps_stop_the_run(repo_root, corpus, tmp_path, capsys, monkeypatch):
    """In this process (cli.main: the CLI's code without a start-up; 8 simulated devices, so a global
    batch of 8): a learning rate of 1e38 makes every step non-finite; the run stops with one line."""
    monkeypatch.chdir(repo_root)
    argv = _cmd(tmp_path / "m", corpus, "--gin.TrainConfig.batch_size=8", "--gin.TrainConfig.eval_every=0",
                "--gin.OptimizerConfig.learning_rate=1e38", "--gin.OptimizerConfig.warmup_steps=0",
                "--gin.OptimizerConfig.clip_grad_norm=None", "--gin.TrainConfig.max_consecutive_nonfinite=2")[1:]
    assert cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "consecutive steps with a non-finite" in errors[0], errors
