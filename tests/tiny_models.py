"""Tiny models for tests: the one encoder configuration fine-tuning tests share, and a random
"pretrained" model directory in the pretrain format (what ``--init_checkpoint`` reads).

Sessions build the directory once (``tiny_pretrained`` in conftest.py); tests that need a
variant (another config) call :func:`save_random_mlm_model` themselves.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from gatortron_jax.models.config import EncoderConfig

TINY = EncoderConfig(vocab_size=4096, hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64,
                     max_position_embeddings=64, dropout_rate=0.0, attention_dropout_rate=0.0)


def save_random_mlm_model(model_dir: pathlib.Path, repo_root: pathlib.Path, config: EncoderConfig = TINY) -> None:
    """A 'pretrained' model dir in the pretrain format: random EncoderForMLM params (key 0) + the sample vocab."""
    import jax
    import optax

    from gatortron_jax.core import partitioning
    from gatortron_jax.core.checkpoints import Checkpointer
    from gatortron_jax.core.train_state import create_train_state
    from gatortron_jax.models.heads import EncoderForMLM

    partitioner = partitioning.Partitioner(partitioning.create_mesh(-1, 1, 1))
    state, _ = create_train_state(EncoderForMLM(config), optax.identity(), partitioner, jax.random.key(0))
    ckpt = Checkpointer(str(model_dir), async_save=False)
    ckpt.save(1, {"params": state.params}, {"step": 1}, force=True)
    ckpt.close()
    (model_dir / "vocab").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo_root / "data/sample_vocab/spm.model", model_dir / "vocab/spm.model")
    (model_dir / "config.json").write_text(json.dumps(
        {"model_config": config.to_dict(), "vocab": {"path": "vocab/spm.model", "size": 4000, "lowercase": None}}))


DEID_WINDOW, DEID_OVERLAP = 32, 8  # 32-token windows: notes span many windows (issue 23)


def finetune_deid_tagger(repo_root: pathlib.Path, init: pathlib.Path, out: pathlib.Path, all_subwords: bool,
                         *extra: str) -> pathlib.Path:
    """Fine-tune the tiny model at ``init`` on the shipped synthetic i2b2 2014 de-id sample:
    32-token windows, 15 epochs of 21 steps (~0.2 s each once compiled; 3 epochs left test F1
    ~0.05, 15 reach ~0.46); ``extra``: more CLI arguments (gin bindings)."""
    import json

    from gatortron_jax.cli import main as cli

    code = cli.main([
        "finetune", f"--gin_file={repo_root / 'gin/finetune/sample_deid.gin'}", f"--init_checkpoint={init}",
        f"--model_dir={out}",
        f"--gin.NERDataConfig.max_length={DEID_WINDOW}", f"--gin.NERDataConfig.overlap={DEID_OVERLAP}",
        f"--gin.NERDataConfig.label_all_subwords={all_subwords}",
        "--gin.NERTrainConfig.num_epochs=15", "--gin.NERTrainConfig.patience=None", "--gin.NERTrainConfig.batch_size=16",
        "--gin.NERTrainConfig.max_steps_per_epoch=25", "--gin.OptimizerConfig.learning_rate=3e-3", *extra,
    ])
    assert code == 0
    assert json.loads((out / "config.json").read_text())["ner"]["label_all_subwords"] is all_subwords
    return out
