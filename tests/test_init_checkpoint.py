"""``pretrain --init_checkpoint``: continued MLM training starts from the imported model.

A random MegatronBert MLM (padded vocabulary rows, an MLM head biased towards one word so it
is far from any fresh initialisation) is saved as transformers does, imported with the real
``import-hf`` CLI, and continued with ``pretrain --init_checkpoint`` at learning rate 1e-12 (one step moves no weight measurably). The
first eval loss must equal transformers' own MLM loss of that model on the same eval batches
(the reference is independent of our model code), and a fresh model's must not.
"""

import logging
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from gatortron_jax.cli import main as cli  # noqa: E402
from gatortron_jax.pretraining import cache_pipeline, trainer  # noqa: E402
from gatortron_jax.pretraining.config import TrainConfig  # noqa: E402
from gatortron_jax.pretraining.corpus_cache import CorpusCache  # noqa: E402
from gatortron_jax.models.model_dir import vocab_of  # noqa: E402

WORDS = ["the", "patient", "was", "given", "mg", "pain", "denies", "chest", "of", "and"]
ENTRIES, ROWS, SEQ = 37, 40, 32  # vocab.txt entries < embedding rows (padded, as GatorTron's)


def _hf_dir(path):
    cfg = transformers.MegatronBertConfig(vocab_size=ROWS, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=SEQ, type_vocab_size=2,
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = transformers.MegatronBertForMaskedLM(cfg).eval()
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tokens += [f"w{i}" for i in range(ENTRIES - len(tokens))]
    with torch.no_grad():
        model.cls.predictions.bias[tokens.index("patient")] += 4.0  # far from a fresh head
    model.save_pretrained(path, safe_serialization=True)
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return model


def _eval_loss(caplog) -> float:
    found = re.findall(r"eval step 1 \| loss ([0-9.]+)", caplog.text)
    assert found, caplog.text[-2000:]
    return float(found[0])


@pytest.mark.slow  # two in-process pretrain runs (prepare + compile each): ~40 s CPU, ~2 min on a shared 2-core box
def test_continued_pretraining_starts_at_the_imported_models_loss(tmp_path, repo_root, monkeypatch, caplog):
    monkeypatch.chdir(repo_root)
    caplog.set_level(logging.INFO)
    hf = tmp_path / "hf"
    hf_model = _hf_dir(hf)
    assert cli.main(["import-hf", str(hf), str(tmp_path / "imported")]) == 0
    corpus = tmp_path / "notes"
    for split, n in (("train", 6), ("validation", 4)):
        (corpus / split).mkdir(parents=True)
        rng = np.random.default_rng(len(split))
        for i in range(n):  # 60 one-piece words: exactly two chunks of SEQ - 2, one chunk per row
            (corpus / split / f"{i}.txt").write_text(" ".join(rng.choice(WORDS, size=60)))
    run = ["--gin_file=gin/pretrain/sample_tiny.gin", f"--gin.MLMDataConfig.corpus_dir='{corpus}'",
           f"--gin.TrainConfig.seq_len={SEQ}", "--gin.TrainConfig.batch_size=8", "--gin.TrainConfig.num_steps=1",
           "--gin.TrainConfig.eval_every=1", "--gin.TrainConfig.eval_batches=1", "--gin.TrainConfig.max_predictions=None",
           "--gin.OptimizerConfig.learning_rate=1e-12", "--gin.OptimizerConfig.warmup_steps=0"]
    continued = tmp_path / "continued"
    assert cli.main(["pretrain", f"--model_dir={continued}", f"--init_checkpoint={tmp_path / 'imported'}", *run]) == 0
    ours = _eval_loss(caplog)
    assert "initialised encoder and MLM head from" in caplog.text

    # transformers' loss of the HF model on the very eval batches the run used.
    vocab = vocab_of(str(continued))
    tables = cache_pipeline.MaskingTables.from_vocabulary(vocab)
    batches = trainer._eval_batches(CorpusCache(str(continued / "corpus_cache")),
                                    TrainConfig(seq_len=SEQ, eval_batches=1), 8, tables, 1)
    total = weight = 0.0
    for b in batches:
        assert (b["segment_ids"] == 1).all()  # one chunk per row: HF's plain attention mask is exact
        with torch.no_grad():
            logits = hf_model(input_ids=torch.tensor(b["input_ids"], dtype=torch.long)).logits[..., :ENTRIES]
        logp = torch.log_softmax(logits.double(), -1).numpy()
        nll = -np.take_along_axis(logp, b["mlm_targets"][..., None], -1)[..., 0]
        total += float((nll * b["mlm_weights"]).sum())
        weight += float(b["mlm_weights"].sum())
    reference = total / weight
    assert ours == pytest.approx(reference, abs=2e-4)

    caplog.clear()
    fresh = ["--gin.EncoderConfig.vocab_size=40", "--gin.EncoderConfig.hidden_size=32",
             "--gin.EncoderConfig.num_layers=1", "--gin.EncoderConfig.num_heads=2", "--gin.EncoderConfig.mlp_dim=64",
             f"--gin.EncoderConfig.max_position_embeddings={SEQ}",
             f"--gin.MLMDataConfig.vocab_path='{continued / 'vocab' / 'vocab.txt'}'"]
    assert cli.main(["pretrain", f"--model_dir={tmp_path / 'fresh'}", *run, *fresh]) == 0
    assert abs(_eval_loss(caplog) - reference) > 0.1  # the imported weights, not a fresh init, gave `ours`
