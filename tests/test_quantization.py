"""Dynamic int8 inference (``EncoderConfig.matmul_quantization="dynamic_int8"``, ``--int8``).

``int8_einsum`` against numpy's fp32 einsum (every equation the encoder uses) and against exact
integer arithmetic; a tiny tagger's logits with the flag against without; the flag unset keeps
the exact path; training with it set is refused; ``predict --int8`` records the setting.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.quantization import int8_dot_general, int8_einsum
from gatortron_jax.models.token_classification import EncoderForTokenClassification
from tiny_models import TINY

# (equation, x shape, kernel shape): the CPU attention path's q/k/v and output projections, the
# GPU/TPU path's, and a dense layer's (nn.Dense's dot_general: last axis x first axis).
EQUATIONS = [("bsh,hnd->bnsd", (2, 9, 32), (32, 4, 8)), ("bsh,hnd->bsnd", (2, 9, 32), (32, 4, 8)),
             ("bnsd,ndh->bsh", (2, 4, 9, 8), (4, 8, 32)), ("bsnd,ndh->bsh", (2, 9, 4, 8), (4, 8, 32)),
             ("bsh,hf->bsf", (2, 9, 32), (32, 64))]


def _rel_err(got, ref) -> float:
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("equation,x_shape,w_shape", EQUATIONS)
def test_int8_einsum_is_close_to_the_fp32_einsum(equation, x_shape, w_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    x[0, 0] *= 30.0  # an outlier row must not cost the other rows their precision (per-row scales)
    w = (rng.standard_normal(w_shape) * 0.02).astype(np.float32)
    b = rng.standard_normal(w_shape[-1]).astype(np.float32) * 0.01
    ref = np.einsum(equation, x.astype(np.float64), w.astype(np.float64)) + b
    got = jax.jit(lambda a, k, c: int8_einsum(equation, a, k, c))(x, w, b)
    assert got.shape == ref.shape and got.dtype == jnp.float32
    assert _rel_err(got, ref) < 2e-2
    assert _rel_err(np.asarray(got)[1], ref[1]) < 2e-2  # rows without the outlier keep their own scale
    assert _rel_err(got, ref) > 0  # it did quantise


def test_int8_accumulates_exactly_in_int32():
    # Every row of x and every output column of w reaches 127, so both scales are exactly 1 and
    # the result must be the integer matmul (by hand: 127*127 + 2*(-3) + 0 = 16123; -127 + 381 + 20 = 274; ...).
    x = np.array([[127, 2, 0], [-1, -127, 5]], np.float32)
    w = np.array([[127, -127], [-3, 1], [4, 127]], np.float32)
    np.testing.assert_array_equal(np.asarray(int8_einsum("sh,hf->sf", x, w)),
                                  [[16123, -16127], [274, 635]])
    rng = np.random.default_rng(1)  # and at a depth where every product sum stays exact in fp32 (< 2^24)
    x = rng.integers(-127, 128, size=(5, 512)).astype(np.float32)
    w = rng.integers(-127, 128, size=(512, 7)).astype(np.float32)
    x[:, 0], w[0, :] = 127, -127
    exact = x.astype(np.int64) @ w.astype(np.int64)
    assert np.abs(exact).max() < 2**24
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda a, k: int8_einsum("sh,hf->sf", a, k))(x, w)), exact)
    dn = (((1,), (0,)), ((), ()))
    np.testing.assert_array_equal(np.asarray(int8_dot_general(x, w, dn)), exact)


def _tagger_logits(config: EncoderConfig, params=None):
    model = EncoderForTokenClassification(config, 7)
    rng = np.random.default_rng(2)
    ids = jnp.asarray(rng.integers(5, config.vocab_size, size=(4, 48)))
    segments = np.ones((4, 48), np.int32)
    segments[1, 30:] = 0  # padding
    segments[2, 20:] = 2  # two packed documents
    if params is None:
        params = model.init(jax.random.key(0), ids)["params"]
    apply = jax.jit(lambda p, i, s: model.apply({"params": p}, i, None, None, s))
    return params, np.asarray(apply(params, ids, jnp.asarray(segments))), segments > 0


@pytest.fixture(scope="module")
def reference():
    """A tiny tagger with weights large enough that its logits are not near-ties
    (initializer 0.2), and its fp32 logits."""
    return _tagger_logits(TINY.replace(initializer_range=0.2))


@pytest.mark.parametrize("platform", ["cpu", "gpu"])  # the CPU attention path and the HeadProjection path
def test_tiny_tagger_int8_logits_agree_with_fp32(reference, platform):
    params, ref, real = reference
    config = TINY.replace(initializer_range=0.2, target_platform=platform, attention_impl="xla" if platform == "gpu"
                          else None)
    _, got, _ = _tagger_logits(config.replace(matmul_quantization="dynamic_int8"), params)
    agreement = float((got.argmax(-1) == ref.argmax(-1))[real].mean())
    assert agreement >= 0.95, agreement
    assert 0 < _rel_err(got[real], ref[real]) < 5e-2


def test_unset_flag_is_the_exact_path(reference):
    params, ref, _ = reference
    old = {k: v for k, v in TINY.replace(initializer_range=0.2).to_dict().items() if k != "matmul_quantization"}
    config = EncoderConfig.from_dict(old)  # a config.json written before the field existed
    assert config.matmul_quantization is None
    _, got, _ = _tagger_logits(config, params)
    np.testing.assert_array_equal(got, ref)
    model = EncoderForTokenClassification(config, 7)
    ids = jnp.zeros((1, 8), jnp.int32)
    hlo = jax.jit(lambda p: model.apply({"params": p}, ids)).lower(params).as_text()
    assert "i8" not in hlo and "s8" not in hlo  # no int8 anywhere in the program
    q = EncoderForTokenClassification(config.replace(matmul_quantization="dynamic_int8"), 7)
    assert "i8" in jax.jit(lambda p: q.apply({"params": p}, ids)).lower(params).as_text()


def test_config_validates_and_training_is_refused(reference):
    with pytest.raises(ConfigError, match="matmul_quantization"):
        TINY.replace(matmul_quantization="int4")
    params = reference[0]
    model = EncoderForTokenClassification(TINY.replace(matmul_quantization="dynamic_int8"), 7)
    with pytest.raises(ConfigError, match="inference only"):
        model.apply({"params": params}, jnp.zeros((1, 8), jnp.int32), deterministic=False,
                    rngs={"dropout": jax.random.key(0)})


def test_inference_commands_take_int8_and_the_tagger_uses_it(tmp_path, repo_root):
    from gatortron_jax.cli import flags
    from gatortron_jax.cli.main import build_parser
    from gatortron_jax.inference.ner_predict import NERModelDir
    from gatortron_jax.inference.stream import ScoringTagger
    from test_predict_stream import make_model_dir

    parser = build_parser()
    for argv in (["predict", "--checkpoint", "m", "--input", "i", "--output", "o"],
                 ["deid", "--checkpoint", "m", "--input", "i", "--output", "o"],
                 ["evaluate", "--checkpoint", "m"], ["embed", "--checkpoint", "m", "--input", "i", "--output", "o"]):
        assert flags.quantize_of(parser.parse_args(argv)) is None
        assert flags.quantize_of(parser.parse_args([*argv, "--int8"])) == "dynamic_int8"
        if argv[0] != "embed":  # the other inference lever (embed: fp32 only)
            assert parser.parse_args([*argv, "--dtype", "bfloat16"]).dtype == "bfloat16"
    model_dir = make_model_dir(tmp_path / "ner", repo_root)
    stored = (model_dir / "config.json").read_bytes()
    tagger = ScoringTagger(str(model_dir), batch_size=2, quantize="dynamic_int8")
    assert tagger.model.config.matmul_quantization == tagger.matmul_quantization == "dynamic_int8"
    assert NERModelDir(str(model_dir)).model.config.matmul_quantization is None  # the default: exact path
    assert (model_dir / "config.json").read_bytes() == stored  # the model dir is not touched


@pytest.mark.slow  # two streamed predict runs through the CLI (~30 s on 2 busy cores)
def test_predict_int8_flag_is_recorded_in_the_summary(tmp_path, repo_root, capsys):
    from test_predict_stream import make_model_dir, make_notes, predict, read_rows, write_txt_tree

    model_dir = make_model_dir(tmp_path / "ner", repo_root)
    inp = write_txt_tree(tmp_path / "notes", make_notes(6))
    assert predict(model_dir, inp, tmp_path / "fp32", "--format", "none") == 0
    assert predict(model_dir, inp, tmp_path / "int8", "--format", "none", "--int8") == 0
    summaries = {k: json.loads((tmp_path / k / "summary.json").read_text()) for k in ("fp32", "int8")}
    assert summaries["fp32"]["matmul_quantization"] is None
    assert summaries["int8"]["matmul_quantization"] == "dynamic_int8"
    assert summaries["int8"]["notes_predicted"] == summaries["fp32"]["notes_predicted"] == 6
    spans = {k: {(r["note_id"], r["start"], r["end"], r["type"]) for r in read_rows(tmp_path / k / "entities.jsonl")}
             for k in ("fp32", "int8")}
    assert spans["fp32"]
    overlap = len(spans["fp32"] & spans["int8"]) / len(spans["fp32"] | spans["int8"])
    assert overlap >= 0.8, overlap
    capsys.readouterr()
    assert predict(model_dir, inp, tmp_path / "fp32", "--format", "none", "--int8") == 2  # never resumes fp32
    assert "different settings (matmul_quantization)" in capsys.readouterr().err
