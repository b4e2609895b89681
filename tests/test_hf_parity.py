"""Our encoder reproduces HF transformers' MegatronBert / Bert numerics (fp32, CPU).

An independent reference: random HF models are built in PyTorch, their weights mapped onto
the Flax params, and last hidden states and MLM logits compared with padding and token types.
"""

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from gatortron_jax.convert.hf import config_from_hf, params_from_hf  # noqa: E402
from gatortron_jax.models.heads import EncoderForMLM  # noqa: E402

SHAPES = [
    # (model_type, hidden, layers, heads, intermediate, vocab)
    ("megatron-bert", 64, 2, 4, 128, 300),
    ("megatron-bert", 48, 3, 3, 96, 257),  # odd head count, head dim 16, odd vocab
    ("bert", 64, 2, 4, 128, 300),
]


def _hf_model(model_type, hidden, layers, heads, inter, vocab):
    kwargs = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=inter, max_position_embeddings=64, type_vocab_size=2,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    if model_type == "bert":
        model = transformers.BertForMaskedLM(transformers.BertConfig(**kwargs))
    else:
        model = transformers.MegatronBertForMaskedLM(transformers.MegatronBertConfig(**kwargs))
    with torch.no_grad():  # HF zero-inits biases / unit LN: randomise so every tensor is exercised
        for name, p in model.named_parameters():
            if "bias" in name or "LayerNorm" in name or name.endswith(("ln.weight",)):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-H{s[1]}-L{s[2]}-A{s[3]}-V{s[5]}")
@pytest.mark.parametrize("scan", [True, False])
def test_hidden_states_and_logits_match_transformers(shape, scan):
    hf = _hf_model(*shape)
    config = config_from_hf(hf.config.to_dict(), scan_layers=scan, use_pooler=False, dropout_rate=0.0,
                            attention_dropout_rate=0.0)
    state = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    params = params_from_hf(state, config)

    rng = np.random.default_rng(1)
    ids = rng.integers(0, shape[5], size=(3, 20))
    types = rng.integers(0, 2, size=(3, 20))
    mask = np.ones((3, 20), np.int64)
    mask[1, 13:] = 0  # padded row
    mask[2, 5:] = 0
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                 attention_mask=torch.tensor(mask), output_hidden_states=True)
    ref_hidden, ref_logits = out.hidden_states[-1].numpy(), out.logits.numpy()

    logits, hidden = EncoderForMLM(config).apply(
        {"params": params}, jnp.asarray(ids), jnp.asarray(types), None, jnp.asarray(mask)
    )
    keep = mask.astype(bool)  # padded positions are undefined in both implementations
    np.testing.assert_allclose(np.asarray(hidden)[keep], ref_hidden[keep], atol=1e-4)
    np.testing.assert_allclose(np.asarray(logits)[keep], ref_logits[keep], atol=1e-4)
