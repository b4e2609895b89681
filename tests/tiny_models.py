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
