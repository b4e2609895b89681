"""Megatron-LM ``.pt`` / NeMo ``.nemo`` → model dir → Megatron, against transformers (PyTorch, CPU, fp32).

The checkpoints are built here, independently of ``convert/megatron_*.py``, from random HF
``MegatronBertForPreTraining`` models by the published mapping (transformers 4.x
``convert_megatron_bert_checkpoint.py`` read backwards; Megatron's
``fix_query_key_value_ordering`` for the QKV layouts): odd head dim (9), padded vocab rows,
TP 1/2/4, checkpoint_version 0/1/2/3, legacy and mcore ``.nemo`` with TE ``_extra_state``.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
yaml = pytest.importorskip("yaml")

from gatortron_jax.cli import main as cli  # noqa: E402
from gatortron_jax.convert.megatron_read import import_megatron  # noqa: E402
from gatortron_jax.convert.megatron_write import export_megatron  # noqa: E402
from gatortron_jax.core.errors import InputError  # noqa: E402
from gatortron_jax.models.heads import EncoderForMLM  # noqa: E402
from gatortron_jax.models.model_dir import load_model_dir, vocab_of  # noqa: E402
from test_convert_hf import hf_model, write_vocab  # noqa: E402

HIDDEN, LAYERS, HEADS, FFN, VOCAB, ROWS, ENTRIES = 36, 2, 4, 52, 301, 304, 290  # head dim 9; 3 padded rows


# ---- an independent Megatron writer (published mapping) ------------------------------------------
def _qkv_rows(q, k, v, version):
    """One partition's q/k/v ([np*hn, ...] each) in the checkpoint_version's row order."""
    hn = HIDDEN // HEADS
    q, k, v = (x.reshape(-1, hn, *x.shape[1:]) for x in (q, k, v))  # [np, hn, ...]
    if version == 0:
        stacked = np.stack([q, k, v], axis=0)  # [3, np, hn]
    elif version == 1:
        stacked = np.stack([q, k, v], axis=2)  # [np, hn, 3]
    else:
        stacked = np.stack([q, k, v], axis=1)  # [np, 3, hn]
    return stacked.reshape(-1, *q.shape[2:])


def megatron_shards_from_hf(hf, tp, version):
    """Per-rank dicts in canonical legacy names (``layers.N.self_attention...``)."""
    sd = {k: v.detach().numpy().copy() for k, v in hf.state_dict().items()}
    pad = ROWS - VOCAB
    word = np.concatenate([sd["bert.embeddings.word_embeddings.weight"], np.zeros((pad, HIDDEN), np.float32)])
    lm_bias = np.concatenate([sd["cls.predictions.bias"], np.zeros((pad,), np.float32)])
    hpr, fpr, vpr = HIDDEN // tp, FFN // tp, ROWS // tp
    shards = []
    for r in range(tp):
        s = {"embedding.word_embeddings.weight": word[r * vpr:(r + 1) * vpr],
             "embedding.position_embeddings.weight": sd["bert.embeddings.position_embeddings.weight"],
             "embedding.tokentype_embeddings.weight": sd["bert.embeddings.token_type_embeddings.weight"]}
        for i in range(LAYERS):
            b = f"bert.encoder.layer.{i}."
            for wb in ("weight", "bias"):
                q, k, v = (sd[f"{b}attention.self.{p}.{wb}"][r * hpr:(r + 1) * hpr] for p in ("query", "key", "value"))
                s[f"layers.{i}.self_attention.query_key_value.{wb}"] = _qkv_rows(q, k, v, version)
                s[f"layers.{i}.input_layernorm.{wb}"] = sd[f"{b}attention.ln.{wb}"]
                s[f"layers.{i}.post_attention_layernorm.{wb}"] = sd[f"{b}ln.{wb}"]
            s[f"layers.{i}.self_attention.dense.weight"] = sd[f"{b}attention.output.dense.weight"][:, r * hpr:(r + 1) * hpr]
            s[f"layers.{i}.self_attention.dense.bias"] = sd[f"{b}attention.output.dense.bias"]
            s[f"layers.{i}.mlp.dense_h_to_4h.weight"] = sd[f"{b}intermediate.dense.weight"][r * fpr:(r + 1) * fpr]
            s[f"layers.{i}.mlp.dense_h_to_4h.bias"] = sd[f"{b}intermediate.dense.bias"][r * fpr:(r + 1) * fpr]
            s[f"layers.{i}.mlp.dense_4h_to_h.weight"] = sd[f"{b}output.dense.weight"][:, r * fpr:(r + 1) * fpr]
            s[f"layers.{i}.mlp.dense_4h_to_h.bias"] = sd[f"{b}output.dense.bias"]
        s.update({"final_layernorm.weight": sd["bert.encoder.ln.weight"], "final_layernorm.bias": sd["bert.encoder.ln.bias"],
                  "pooler.dense.weight": sd["bert.pooler.dense.weight"], "pooler.dense.bias": sd["bert.pooler.dense.bias"],
                  "lm_head.dense.weight": sd["cls.predictions.transform.dense.weight"],
                  "lm_head.dense.bias": sd["cls.predictions.transform.dense.bias"],
                  "lm_head.layernorm.weight": sd["cls.predictions.transform.LayerNorm.weight"],
                  "lm_head.layernorm.bias": sd["cls.predictions.transform.LayerNorm.bias"],
                  "lm_head.bias": lm_bias[r * vpr:(r + 1) * vpr],
                  "binary_head.weight": sd["cls.seq_relationship.weight"],
                  "binary_head.bias": sd["cls.seq_relationship.bias"]})
        shards.append({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in s.items()})
    return shards


def _megatron_nested(shard, version):
    """Megatron-LM's BertModel.state_dict_for_save_checkpoint() layout (attention/transformer before v2)."""
    attn, body = ("attention", "transformer") if version < 2 else ("self_attention", "encoder")
    lm = {"embedding": {}, body: {}, "pooler": {}}
    model = {"language_model": lm, "lm_head": {}, "binary_head": {}}
    for k, v in shard.items():
        head, _, rest = k.partition(".")
        if head == "embedding":
            lm["embedding"][rest.split(".")[0]] = {"weight": v}
        elif head in ("layers", "final_layernorm"):
            lm[body][k.replace("self_attention", attn)] = v
        elif head == "pooler":
            lm["pooler"][rest] = v
        else:
            model[head][rest] = v
    return model


def megatron_args(tp, lower=True):
    return argparse.Namespace(num_layers=LAYERS, hidden_size=HIDDEN, ffn_hidden_size=FFN, num_attention_heads=HEADS,
                              max_position_embeddings=32, padded_vocab_size=ROWS, layernorm_epsilon=1e-12,
                              tokenizer_type="BertWordPieceLowerCase" if lower else "BertWordPieceCase",
                              tensor_model_parallel_size=tp, params_dtype=torch.float32, hidden_dropout=0.0,
                              attention_dropout=0.0)


def write_megatron_pt(shards, root, version, *, args=True, iteration=None, single=False):
    """release/ (or iter_N/) mp_rank_XX/model_optim_rng.pt, or one file; with RNG state (numpy arrays)."""
    paths = []
    for r, shard in enumerate(shards):
        ckpt = {"model": _megatron_nested(shard, version), "iteration": iteration or 0,
                "rng_state": [{"random_rng_state": (3, (1, 2), None), "np_rng_state": np.random.RandomState(0).get_state(),
                               "torch_rng_state": torch.get_rng_state()}]}
        if version:
            ckpt["checkpoint_version"] = float(version)  # absent means 0, as Megatron reads it
        if args:
            ckpt["args"] = megatron_args(len(shards))
        sub = "release" if iteration is None else f"iter_{iteration:07d}"
        path = os.path.join(root, "MegatronBERT.pt") if single else os.path.join(root, sub, f"mp_rank_{r:02d}",
                                                                                 "model_optim_rng.pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save(ckpt, path)
        paths.append(path)
    if not single:
        with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
            f.write("release" if iteration is None else str(iteration))
    write_vocab(os.path.join(root, "vocab.txt"), ENTRIES)
    return paths


_MCORE = [("layers.{i}.input_layernorm.", "layers.{i}.self_attention.linear_qkv.layer_norm_"),
          ("layers.{i}.self_attention.query_key_value.", "layers.{i}.self_attention.linear_qkv."),
          ("layers.{i}.self_attention.dense.", "layers.{i}.self_attention.linear_proj."),
          ("layers.{i}.post_attention_layernorm.", "layers.{i}.mlp.linear_fc1.layer_norm_"),
          ("layers.{i}.mlp.dense_h_to_4h.", "layers.{i}.mlp.linear_fc1."),
          ("layers.{i}.mlp.dense_4h_to_h.", "layers.{i}.mlp.linear_fc2.")]


def nemo_key(k, mcore):
    head = k.partition(".")[0]
    if not mcore:
        return {"embedding": "model.language_model.", "layers": "model.language_model.encoder.",
                "final_layernorm": "model.language_model.encoder.", "pooler": "model.language_model."}.get(head, "model.") + k
    for i in range(LAYERS):
        for old, new in _MCORE:
            if k.startswith(old.format(i=i)):
                k = new.format(i=i) + k[len(old.format(i=i)):]
    k = k.replace("lm_head.layernorm.", "lm_head.layer_norm.").replace("lm_head.bias", "output_layer.bias")
    return ("model.encoder." if head in ("layers", "final_layernorm") else "model.") + k


def write_nemo(shards, path, *, mcore, lower=True):
    tmp = str(path) + ".d"
    os.makedirs(tmp)
    cfg = {"mcore_bert": mcore, "num_layers": LAYERS, "hidden_size": HIDDEN, "ffn_hidden_size": FFN,
           "num_attention_heads": HEADS, "max_position_embeddings": 32, "layernorm_epsilon": 1e-12,
           "tensor_model_parallel_size": len(shards), "pipeline_model_parallel_size": 1,
           "tokenizer": {"library": "megatron", "type": "BertWordPieceLowerCase" if lower else "BertWordPieceCase",
                         "vocab_file": "nemo:a1b2c3_vocab.txt"}}
    with open(os.path.join(tmp, "model_config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f)
    write_vocab(os.path.join(tmp, "a1b2c3_vocab.txt"), ENTRIES)
    names = ["model_config.yaml", "a1b2c3_vocab.txt"]
    for r, shard in enumerate(shards):
        sd = {nemo_key(k, mcore): v for k, v in shard.items()}
        if mcore:  # TE extra state: BytesIO / tensors, skipped by the importer
            sd["model.encoder.layers.0.self_attention.core_attention._extra_state"] = io.BytesIO(b"te")
            sd["model.encoder.layers.0.mlp.linear_fc1._extra_state"] = None
        rel = "model_weights.ckpt" if len(shards) == 1 else (
            f"tp_rank_{r:02d}_pp_rank_000/model_weights.ckpt" if mcore else f"mp_rank_{r:02d}/model_weights.ckpt")
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        torch.save(sd, os.path.join(tmp, rel))
        names.append(rel)
    with tarfile.open(path, "w") as tar:
        for n in names:
            tar.add(os.path.join(tmp, n), arcname="./" + n)
    shutil.rmtree(tmp)
    return str(path)


# ---- reference comparison ------------------------------------------------------------------------
def reference_model():
    return hf_model("ForPreTraining", "megatron-bert", HIDDEN, LAYERS, HEADS, FFN, VOCAB, seed=3)


def assert_matches_transformers(model_dir, hf):
    config, params, vocab = load_model_dir(model_dir)
    assert config.vocab_size == ROWS and vocab.vocab_size == ENTRIES and config.use_pooler
    rng = np.random.default_rng(1)
    ids, types = rng.integers(0, ENTRIES, size=(3, 20)), rng.integers(0, 2, size=(3, 20))
    mask = np.ones((3, 20), np.int64)
    mask[1, 13:] = 0
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types), attention_mask=torch.tensor(mask),
                 output_hidden_states=True)
    logits, hidden = EncoderForMLM(config).apply({"params": params}, jnp.asarray(ids), jnp.asarray(types), None,
                                                 jnp.asarray(mask))
    keep = mask.astype(bool)
    h = np.abs(np.asarray(hidden)[keep] - out.hidden_states[-1].numpy()[keep]).max()
    lg = np.abs(np.asarray(logits)[keep][:, :VOCAB] - out.prediction_logits.numpy()[keep]).max()
    assert h < 1e-4 and lg < 1e-4, (h, lg)
    return params


CASES = [  # (layout, tp, checkpoint_version)
    ("pt-file-ngc", 1, 0),  # MegatronBERT.pt without args + config.json / hparam.yaml beside it (NGC gatortron_og)
    ("pt-dir", 2, 1),  # iter_0000100/, attention + transformer keys
    ("pt-dir", 4, 3),  # release/
    ("nemo-legacy", 2, 3),
    ("nemo-mcore", 4, 3),  # tp_rank_0X_pp_rank_000/, TE names + _extra_state, bf16
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-tp{c[1]}-v{c[2]}")
def test_import_matches_transformers(tmp_path, case):
    layout, tp, version = case
    hf = reference_model()
    if layout == "nemo-mcore":  # bf16 weights (numpy has no bf16): the reference gets the same rounding
        with torch.no_grad():
            for p in hf.parameters():
                p.copy_(p.bfloat16().float())
    shards = megatron_shards_from_hf(hf, tp, version)
    if layout == "nemo-mcore":
        shards = [{k: v.bfloat16() for k, v in shard.items()} for shard in shards]
    if layout == "pt-file-ngc":
        src = str(tmp_path / "ngc")
        write_megatron_pt(shards, src, version, args=False, single=True)
        with open(os.path.join(src, "config.json"), "w") as f:
            json.dump({"hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_layers": LAYERS,
                       "max_position_embeddings": 32, "layernorm_epsilon": 1e-12}, f)
        with open(os.path.join(src, "hparam.yaml"), "w") as f:
            yaml.safe_dump({"cfg": {"tokenizer": {"type": "BertWordPieceCase"}}}, f)
        src = os.path.join(src, "MegatronBERT.pt")
    elif layout == "pt-dir":
        src = str(tmp_path / "megatron")
        write_megatron_pt(shards, src, version, iteration=100 if version == 1 else None)
    else:
        src = write_nemo(shards, tmp_path / "model.nemo", mcore=layout == "nemo-mcore")
    override = False if layout == "pt-dir" and tp == 4 else None  # --cased beats tokenizer_type=...LowerCase
    s = import_megatron(src, str(tmp_path / "model"), lowercase=override)
    assert s["tensor_parallel"] == tp and s["checkpoint_version"] == version
    assert s["embedding_rows"] == ROWS and s["vocab_entries"] == ENTRIES and s["has_pooler"] and s["has_mlm_head"]
    assert s["ignored"]["task_heads"] == ["cls.seq_relationship.bias", "cls.seq_relationship.weight"]
    if override is None:
        assert s["lowercase"] == (layout != "pt-file-ngc")  # ...Case from hparam.yaml, else ...LowerCase
        assert "tokenizer_type=BertWordPiece" in s["lowercase_source"]
    else:
        assert s["lowercase"] is False and s["lowercase_source"] == "command-line flag"
        assert vocab_of(str(tmp_path / "model")).lowercase is False  # stored
    if layout == "nemo-mcore":
        assert len(s["ignored"]["skipped_extra_state"]) == 2 * tp
    assert_matches_transformers(str(tmp_path / "model"), hf)


@pytest.mark.parametrize("tp", [1, 2, 4])
@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_merge_partitions_gives_the_hf_tensors_bit_for_bit(tp, version):
    """The merge alone (no JAX): every QKV layout x TP degree → exactly transformers' tensors."""
    from gatortron_jax.convert.megatron_keys import canonicalise, merge_partitions, to_hf_state

    hf = reference_model()
    shards = megatron_shards_from_hf(hf, tp, version)
    canon = [canonicalise({k: v for k, v in s.items()}, f"rank{r}")[0] for r, s in enumerate(shards)]
    state = to_hf_state(merge_partitions(canon, version=version, heads=HEADS, head_dim=HIDDEN // HEADS,
                                         sources=[f"rank{r}" for r in range(tp)]))
    reference = {k: v.detach().numpy() for k, v in hf.state_dict().items() if "position_ids" not in k
                 and not k.startswith("cls.predictions.decoder")}
    assert set(state) == set(reference)
    for k, v in reference.items():
        np.testing.assert_array_equal(state[k][:VOCAB] if v.shape[0] == VOCAB else state[k], v, err_msg=k)
    if version == 1 or HEADS // tp > 1:  # the layout matters (v0 = v2 with one head per partition)
        wrong = 3 if version in (0, 1) else 0
        canon = [canonicalise(dict(s), f"rank{r}")[0] for r, s in enumerate(shards)]  # the merge consumed them
        bad = to_hf_state(merge_partitions(canon, version=wrong, heads=HEADS, head_dim=HIDDEN // HEADS,
                                           sources=[f"rank{r}" for r in range(tp)]))
        assert not np.array_equal(bad["bert.encoder.layer.0.attention.self.query.weight"],
                                  reference["bert.encoder.layer.0.attention.self.query.weight"])


def test_canonical_names_of_every_variant():
    from gatortron_jax.convert.megatron_keys import canonical_name

    expected = {
        "language_model.transformer.layers.3.attention.query_key_value.weight":
            "layers.3.self_attention.query_key_value.weight",  # Megatron < 2 (.pt)
        "model.language_model.encoder.layers.0.self_attention.dense.bias": "layers.0.self_attention.dense.bias",
        "model.encoder.layers.1.input_layernorm.weight": "layers.1.input_layernorm.weight",  # mcore local spec
        "model.encoder.layers.1.pre_mlp_layernorm.bias": "layers.1.post_attention_layernorm.bias",
        "model.encoder.layers.1.self_attention.linear_qkv.layer_norm_weight": "layers.1.input_layernorm.weight",  # TE
        "model.encoder.layers.1.mlp.linear_fc1.layer_norm_bias": "layers.1.post_attention_layernorm.bias",
        "model.encoder.layers.1.mlp.linear_fc2.weight": "layers.1.mlp.dense_4h_to_h.weight",
        "model.encoder.final_layernorm.weight": "final_layernorm.weight",
        "model.lm_head.layer_norm.bias": "lm_head.layernorm.bias", "model.output_layer.bias": "lm_head.bias",
        "model.output_layer.weight": "output_layer.weight", "model.pooler.dense.weight": "pooler.dense.weight",
        "language_model.pooler.dense.weight": "pooler.dense.weight", "binary_head.bias": "binary_head.bias",
        "model.language_model.encoder.layers.0.self_attention.rotary_emb.inv_freq": None,
        "model.decoder.layers.0.self_attention.linear_qkv.weight": None,
    }
    assert {k: canonical_name(k) for k in expected} == expected


CLINICAL = ["the patient denies chest pain", "Patient was given mg of pain and chest", "denies pain"]


def test_cli_import_embed_export_roundtrip(tmp_path, capsys):
    hf = reference_model()
    shards = megatron_shards_from_hf(hf, 2, 3)
    src = str(tmp_path / "megatron")
    write_megatron_pt(shards, src, 3)
    model = str(tmp_path / "model")
    assert cli.main(["import-megatron", src, model]) == 0
    printed = capsys.readouterr().out
    assert "megatron-lm" in printed and "2 tensor-parallel shard(s)" in printed and "uncased (lowercase)" in printed
    assert "tokenizer_type=BertWordPieceLowerCase" in printed
    assert "training state not imported: iteration, rng_state" in printed and "NSP binary_head" in printed
    params = assert_matches_transformers(model, hf)

    # embed: our hidden states for clinical sentences = transformers' (padded vocab rows never used)
    (tmp_path / "notes.txt").write_text("\n".join(CLINICAL) + "\n", encoding="utf-8")
    assert cli.main(["embed", "--checkpoint", model, "--input", str(tmp_path / "notes.txt"),
                     "--output", str(tmp_path / "emb.npz")]) == 0
    npz, vocab = np.load(tmp_path / "emb.npz"), vocab_of(model)
    for i, line in enumerate(CLINICAL):
        ids = [vocab.cls_id] + vocab.encode(line) + [vocab.sep_id]
        assert vocab.unk_id not in ids
        with torch.no_grad():
            ref = hf.bert(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
        assert np.abs(npz[str(i)] - ref).max() < 1e-4

    # export with the same TP: every tensor equals the independently built checkpoint (binary head is fresh)
    out = str(tmp_path / "export")
    assert cli.main(["export-megatron", model, out, "--tensor_parallel", "2"]) == 0
    for r in range(2):
        with torch.serialization.safe_globals([argparse.Namespace]):  # all a Megatron user needs for our export
            mine = torch.load(os.path.join(out, "release", f"mp_rank_{r:02d}", "model_optim_rng.pt"), weights_only=True)
        assert mine["checkpoint_version"] == 3.0 and mine["args"].padded_vocab_size == ROWS
        theirs = _megatron_nested(shards[r], 3)
        flat_m, flat_t = _flat(mine["model"]), _flat(theirs)
        assert set(flat_m) == set(flat_t)
        for k in flat_t:
            if not k.startswith("binary_head"):
                assert torch.equal(flat_m[k], flat_t[k]), k

    # export → import round trips bit for bit: TP 4 .pt and TP 2 .nemo
    for extra, target in ((["--tensor_parallel", "4"], str(tmp_path / "tp4")),
                          (["--tensor_parallel", "2", "--nemo"], str(tmp_path / "m.nemo"))):
        assert cli.main(["export-megatron", model, target, *extra]) == 0
        again = str(tmp_path / (os.path.basename(target) + ".model"))
        assert cli.main(["import-megatron", target, again]) == 0
        _, params2, _ = load_model_dir(again)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params2)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert "nemo-legacy" in capsys.readouterr().out


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_errors_name_file_and_key(tmp_path, capsys):
    hf = reference_model()
    shards = megatron_shards_from_hf(hf, 2, 3)
    src = str(tmp_path / "m")
    paths = write_megatron_pt(shards, src, 3)
    ckpt = torch.load(paths[1], weights_only=False)
    ckpt["model"]["language_model"]["encoder"]["layers.0.adapter.linear_in.weight"] = torch.zeros(2)
    torch.save(ckpt, paths[1])
    with pytest.raises(InputError, match=r"mp_rank_01/model_optim_rng.pt: 1 unexpected tensor\(s\).*"
                                         r"language_model.encoder.layers.0.adapter.linear_in.weight"):
        import_megatron(src, str(tmp_path / "out1"))

    ckpt["model"]["language_model"]["encoder"].pop("layers.0.adapter.linear_in.weight")
    ckpt["optimizer"] = {"hook": _Payload()}
    torch.save(ckpt, paths[1])
    assert cli.main(["import-megatron", src, str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mp_rank_01/model_optim_rng.pt: refused to load" in err
    assert "posix.system" in err or "nt.system" in err

    ckpt.pop("optimizer")
    ckpt["model"]["language_model"]["encoder"]["final_layernorm.weight"] += 1  # replicated, must match rank 0
    torch.save(ckpt, paths[1])
    with pytest.raises(InputError, match=r"mp_rank_01/model_optim_rng.pt: replicated tensor final_layernorm.weight "
                                         r"differs from .*mp_rank_00/model_optim_rng.pt"):
        import_megatron(src, str(tmp_path / "out2b"))

    shutil.rmtree(os.path.dirname(paths[1]))  # a missing shard
    with pytest.raises(InputError, match=r"tensor-parallel ranks \[0\] .*|tensor_model_parallel_size=2 but"):
        import_megatron(src, str(tmp_path / "out3"))


@pytest.mark.slow
def test_transformers_4x_converter_reads_our_export(tmp_path):
    """Independent check: transformers 4.x's own convert_megatron_checkpoint on our TP-1 export."""
    wheel_dir = tmp_path / "wheel"
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "transformers==4.46.3", "-d", str(wheel_dir)], check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"cannot download a transformers 4.x wheel: {e}")
    wheel = next(wheel_dir.glob("transformers-4*.whl"))
    member = "transformers/models/megatron_bert/convert_megatron_bert_checkpoint.py"
    with zipfile.ZipFile(wheel) as z:
        (tmp_path / "hf4_convert.py").write_bytes(z.read(member))
    sys.path.insert(0, str(tmp_path))
    try:
        import hf4_convert
    finally:
        sys.path.remove(str(tmp_path))

    hf = reference_model()
    src = str(tmp_path / "megatron")
    write_megatron_pt(megatron_shards_from_hf(hf, 2, 1), src, 1)
    import_megatron(src, str(tmp_path / "model"))
    out = str(tmp_path / "export.pt")
    export_megatron(str(tmp_path / "model"), out)
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(out, weights_only=True)
    converted = hf4_convert.convert_megatron_checkpoint(None, ckpt, transformers.MegatronBertConfig())
    reference = hf.state_dict()
    for k, v in reference.items():
        if "seq_relationship" in k or "position_ids" in k:
            continue
        got = converted["cls.predictions.bias" if k == "cls.predictions.decoder.bias" else k]  # tied
        if v.shape[0] == VOCAB:  # vocabulary tensors: ours keep the padded rows
            assert got.shape[0] == ROWS and not got[VOCAB:].any()
            got = got[:VOCAB]
        assert torch.equal(got, v), k
    assert converted["bert.embeddings.word_embeddings.weight"].shape[0] == ROWS  # padded_vocab_size from our args
