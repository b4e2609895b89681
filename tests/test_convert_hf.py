"""HF directory → model dir → HF directory, against transformers (PyTorch, CPU, fp32).

Random MegatronBert/Bert models (odd head dims, type vocab 2, padded vocab rows) are saved the
way users download them, imported through ``import_hf``, restored from the orbax model dir and
compared with transformers on padded, token-typed batches; then exported and reloaded with
``transformers.AutoModel*``.
"""

import argparse
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from gatortron_jax.cli import main as cli  # noqa: E402
from gatortron_jax.core import partitioning  # noqa: E402
from gatortron_jax.convert.hf_dir import export_hf, import_hf
from gatortron_jax.models.model_dir import load_model_dir  # noqa: E402
from gatortron_jax.core.errors import InputError  # noqa: E402
from gatortron_jax.models.heads import EncoderForMLM  # noqa: E402

WORDS = ["the", "patient", "was", "given", "mg", "pain", "denies", "chest", "##s", "##ing", "of", "and"]


def write_vocab(path, n_entries, upper=False):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w.capitalize() if upper else w for w in WORDS]
    tokens += [f"w{i}" for i in range(n_entries - len(tokens))]
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")


def hf_model(kind, model_type, hidden, layers, heads, inter, vocab, seed=0):
    kwargs = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=inter, max_position_embeddings=32, type_vocab_size=2,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    prefix = "Bert" if model_type == "bert" else "MegatronBert"
    cfg = getattr(transformers, prefix + "Config")(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, prefix + kind)(cfg)
    with torch.no_grad():  # randomise zero biases / unit LNs so every tensor is exercised
        for name, p in model.named_parameters():
            if "bias" in name or "LayerNorm" in name or name.endswith("ln.weight"):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def save_hf_dir(model, path, *, safetensors=True, vocab_entries=None, tokenizer_config=None):
    model.save_pretrained(path, safe_serialization=safetensors)
    write_vocab(os.path.join(path, "vocab.txt"), vocab_entries or model.config.vocab_size)
    if tokenizer_config is not None:
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f)
    return str(path)


def batch(vocab):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, vocab, size=(3, 20))
    types = rng.integers(0, 2, size=(3, 20))
    mask = np.ones((3, 20), np.int64)
    mask[1, 13:] = 0
    mask[2, 5:] = 0
    return ids, types, mask


def hf_outputs(model, ids, types, mask):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                    attention_mask=torch.tensor(mask), output_hidden_states=True)
    return out.hidden_states[-1].numpy(), out.logits.numpy()


SHAPES = [
    # (HF class, model_type, hidden, layers, heads, intermediate, vocab, scan, safetensors)
    ("ForMaskedLM", "megatron-bert", 45, 2, 5, 70, 301, True, True),  # head dim 9, odd vocab
    ("ForMaskedLM", "bert", 36, 3, 4, 50, 259, False, True),  # head dim 9, per-layer params
    ("ForPreTraining", "megatron-bert", 32, 2, 2, 64, 256, True, False),  # pooler + NSP, pytorch_model.bin
    ("ForPreTraining", "bert", 24, 2, 3, 40, 130, True, False),  # head dim 8
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[1]}-{s[0]}-H{s[2]}-A{s[4]}-scan{s[7]}")
def test_import_parity_export_reload_roundtrip(tmp_path, shape):
    kind, model_type, hidden, layers, heads, inter, vocab, scan, safetensors = shape
    hf = hf_model(kind, model_type, hidden, layers, heads, inter, vocab)
    hf_dir = save_hf_dir(hf, tmp_path / "hf", safetensors=safetensors, vocab_entries=vocab - 7)  # padded rows
    summary = import_hf(hf_dir, str(tmp_path / "model"), scan_layers=scan)
    assert summary["embedding_rows"] == vocab and summary["vocab_entries"] == vocab - 7
    assert summary["has_pooler"] == (kind == "ForPreTraining")
    assert bool(summary["ignored"]["task_heads"]) == (kind == "ForPreTraining")  # NSP head noted

    config, params, vocab_obj = load_model_dir(str(tmp_path / "model"))
    assert config.post_ln == (model_type == "bert") and config.scan_layers == scan
    assert vocab_obj.vocab_size == vocab - 7
    ids, types, mask = batch(vocab)
    if kind == "ForPreTraining":
        with torch.no_grad():
            out = hf(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                     attention_mask=torch.tensor(mask), output_hidden_states=True)
        ref_hidden, ref_logits = out.hidden_states[-1].numpy(), out.prediction_logits.numpy()
    else:
        ref_hidden, ref_logits = hf_outputs(hf, ids, types, mask)
    logits, hidden_states = EncoderForMLM(config).apply(
        {"params": params}, jnp.asarray(ids), jnp.asarray(types), None, jnp.asarray(mask))
    keep = mask.astype(bool)
    hidden_diff = np.abs(np.asarray(hidden_states)[keep] - ref_hidden[keep]).max()
    logit_diff = np.abs(np.asarray(logits)[keep] - ref_logits[keep]).max()
    print(f"max abs diff: hidden {hidden_diff:.2e}, logits {logit_diff:.2e}")
    assert hidden_diff < 1e-4 and logit_diff < 1e-4

    out_dir = str(tmp_path / "export")
    export_hf(str(tmp_path / "model"), out_dir)
    # bit-for-bit: every tensor we keep (NSP head, buffers and tied decoder are not kept)
    from safetensors.numpy import load_file

    exported = load_file(os.path.join(out_dir, "model.safetensors"))
    original = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    kept = {k for k in original if "seq_relationship" not in k and "position_ids" not in k
            and not k.startswith("cls.predictions.decoder")}
    assert set(exported) == kept
    for k in kept:
        assert exported[k].dtype == original[k].dtype and np.array_equal(exported[k], original[k]), k

    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(out_dir).eval()
    re_hidden, re_logits = hf_outputs(reloaded, ids, types, mask)
    np.testing.assert_array_equal(re_hidden[keep], ref_hidden[keep])
    np.testing.assert_array_equal(re_logits[keep], ref_logits[keep])
    if kind == "ForPreTraining":  # AutoModel (with pooler) loads it too: identical pooled output
        base = transformers.AutoModel.from_pretrained(out_dir).eval()
        with torch.no_grad():
            a = base(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).pooler_output
            b = hf.bert(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).pooler_output
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_sharded_restore_on_8_devices(tmp_path):
    hf = hf_model("ForMaskedLM", "megatron-bert", 32, 2, 4, 64, 256)
    hf_dir = save_hf_dir(hf, tmp_path / "hf", vocab_entries=200)
    import_hf(hf_dir, str(tmp_path / "model"))
    partitioner = partitioning.Partitioner(partitioning.create_mesh(2, 2, 2, devices=jax.devices()[:8]))
    config, params, _ = load_model_dir(str(tmp_path / "model"), partitioner)
    _, single, _ = load_model_dir(str(tmp_path / "model"))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, single)
    wi = params["encoder"]["layers"]["mlp"]["wi"]["kernel"]  # [layers, embed->fsdp, mlp->tensor]
    assert wi.sharding.mesh.shape == {"data": 2, "fsdp": 2, "tensor": 2}
    assert wi.addressable_shards[0].data.shape == (2, 16, 32)
    ids, types, mask = batch(256)
    with partitioner.activate():
        logits, _ = jax.jit(lambda p, i, t, m: EncoderForMLM(config).apply({"params": p}, i, t, None, m))(
            params, jnp.asarray(ids[:2]), jnp.asarray(types[:2]), jnp.asarray(mask[:2]))
    _, ref_logits = hf_outputs(hf, ids[:2], types[:2], mask[:2])
    keep = mask[:2].astype(bool)
    assert np.abs(np.asarray(logits)[keep] - ref_logits[keep]).max() < 1e-4


def test_casing_decision_and_cli(tmp_path, capsys):
    hf = hf_model("ForMaskedLM", "bert", 16, 1, 2, 32, 64)
    # no tokenizer_config: inferred from the (capitalised) vocabulary → cased
    hf_dir = save_hf_dir(hf, tmp_path / "hf", vocab_entries=64)
    write_vocab(os.path.join(hf_dir, "vocab.txt"), 64, upper=True)
    assert cli.main(["import-hf", hf_dir, str(tmp_path / "m1")]) == 0
    out = capsys.readouterr().out
    assert "cased: inferred from the vocabulary" in out and "padding rows" in out
    assert json.load(open(tmp_path / "m1" / "config.json"))["vocab"]["lowercase"] is False
    # tokenizer_config.json wins over inference; the flag wins over both
    with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True}, f)
    assert cli.main(["import-hf", hf_dir, str(tmp_path / "m2")]) == 0
    assert "do_lower_case" in capsys.readouterr().out
    assert json.load(open(tmp_path / "m2" / "config.json"))["vocab"]["lowercase"] is True
    assert cli.main(["import-hf", hf_dir, str(tmp_path / "m3"), "--cased"]) == 0
    assert json.load(open(tmp_path / "m3" / "config.json"))["vocab"]["lowercase"] is False
    assert cli.main(["export-hf", str(tmp_path / "m3"), str(tmp_path / "out")]) == 0
    assert "BertForMaskedLM" in capsys.readouterr().out
    assert json.load(open(tmp_path / "out" / "tokenizer_config.json"))["do_lower_case"] is False
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert tok("The Patient")["input_ids"] == [2, 5, 6, 3]
    # tokenizer.json only (no vocab.txt / tokenizer_config.json): vocab and casing come from it
    tj_dir = tmp_path / "hf_tokjson"
    shutil.copytree(hf_dir, tj_dir)
    os.remove(tj_dir / "vocab.txt")
    os.remove(tj_dir / "tokenizer_config.json")
    tok.backend_tokenizer.save(str(tj_dir / "tokenizer.json"))
    summary = import_hf(str(tj_dir), str(tmp_path / "m4"))
    assert summary["lowercase"] is False and "normalizer.lowercase" in summary["lowercase_source"]
    assert open(tmp_path / "m4" / "vocab" / "vocab.txt").read() == open(os.path.join(hf_dir, "vocab.txt")).read()
    assert not (tmp_path / "m4" / ".import_tmp").exists()
    # an existing model dir is not overwritten
    assert cli.main(["import-hf", hf_dir, str(tmp_path / "m3")]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


class _NotWeights:  # any non-tensor global makes a pickle not weights-only
    pass


def test_malformed_checkpoint_dirs_name_file_and_key(tmp_path, capsys):
    hf = hf_model("ForMaskedLM", "megatron-bert", 16, 1, 2, 32, 64)
    good = save_hf_dir(hf, tmp_path / "good", vocab_entries=60)

    def variant(name, edit=None):
        d = tmp_path / name
        shutil.copytree(good, d)
        if edit:
            edit(str(d))
        return str(d)

    def set_config(**changes):
        def edit(d):
            cfg = json.load(open(os.path.join(d, "config.json")))
            cfg.update(changes)
            json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        return edit

    cases = {
        "missing_config": (lambda d: os.remove(os.path.join(d, "config.json")), r"config\.json: missing"),
        "unknown_type": (set_config(model_type="roberta"), r"config\.json.*model_type 'roberta'"),
        "shape": (set_config(intermediate_size=48),
                  r"model\.safetensors: bert\.encoder\.layer\.0\.intermediate\.dense\.weight has shape \(32, 16\)"),
        "missing_key": (set_config(num_hidden_layers=2), r"model\.safetensors: missing tensor bert\.encoder\.layer\.1\."),
        "no_weights": (lambda d: os.remove(os.path.join(d, "model.safetensors")), r"no weights found"),
    }

    def pickle_edit(d):
        os.remove(os.path.join(d, "model.safetensors"))
        state = dict(hf.state_dict())
        state["evil"] = argparse.Namespace(x=1)
        torch.save(state, os.path.join(d, "pytorch_model.bin"))

    cases["pickle"] = (pickle_edit, r"pytorch_model\.bin: refused to load: the pickle is not weights-only.*argparse\.Namespace")
    for name, (edit, pattern) in cases.items():
        with pytest.raises(InputError, match=pattern):
            import_hf(variant(name, edit), str(tmp_path / f"out_{name}"))
    # the CLI prints it as one line
    capsys.readouterr()
    assert cli.main(["import-hf", str(tmp_path / "pickle"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pytorch_model.bin" in err

    # a malformed model dir: missing config, then a checkpoint whose shapes disagree with config.json
    with pytest.raises(InputError, match=r"config\.json: missing"):
        load_model_dir(str(tmp_path / "nowhere"))
    import_hf(good, str(tmp_path / "model"))
    cfg_path = tmp_path / "model" / "config.json"
    info = json.load(open(cfg_path))
    info["model_config"]["mlp_dim"] = 48
    json.dump(info, open(cfg_path, "w"))
    with pytest.raises(InputError, match=r"checkpoints/0/state: parameter .*mlp/wi/bias has shape \(1, 32\)"):
        load_model_dir(str(tmp_path / "model"))
